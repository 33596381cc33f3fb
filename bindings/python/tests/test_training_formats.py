"""The sentence-transformers layouts of mine_hard_negatives, pinned byte for byte.

tests/fixtures/training-formats/expected holds what this package's layout code (``_layout`` and
``HardNegatives.write_jsonl``) writes for the mined rows of rows.json; the C# writer (Engine.Mining.Output.
TrainingJsonlWriter, tests MiningOutputFormatPythonTests) is checked against the same files. A change of the Python
layout that is not mirrored in C# (or the reverse) fails one of the two; regenerate with
``python3 tests/fixtures/training-formats/generate.py`` after a deliberate change and update the C# side.
"""

import importlib.util
import os

import minedex.hard_negatives as hn

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "fixtures", "training-formats")


def _generator():
    spec = importlib.util.spec_from_file_location("training_formats_generate", os.path.join(FIXTURES, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layouts_equal_the_pinned_files(tmp_path):
    import json

    with open(os.path.join(FIXTURES, "expected", "missing_rows.json"), encoding="utf-8") as f:
        missing_rows = json.load(f)
    seen = 0
    for name, result, missing in _generator().layouts(hn):
        path = tmp_path / (name + ".jsonl")
        assert result.write_jsonl(path) == len(result)
        with open(os.path.join(FIXTURES, "expected", name + ".jsonl"), "rb") as f:
            assert path.read_bytes() == f.read(), name
        assert missing == missing_rows[name], name
        seen += 1
    assert seen == len(missing_rows) == 20
