"""The installed package: one version everywhere, stubs and py.typed shipped, the library inside the package."""

import os
import re

import minedex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_version_comes_from_directory_build_props():
    with open(os.path.join(ROOT, "Directory.Build.props"), encoding="utf-8") as f:
        (expected,) = re.findall(r"<Version>\s*([^<\s]+)\s*</Version>", f.read())
    assert minedex.__version__ == minedex.version() == expected
    if os.environ.get("MINEDEX_TEST_INSTALLED"):
        from importlib.metadata import version
        assert version("minedex") == expected


def test_typing_files_and_library_ship_inside_the_package():
    here = os.path.dirname(os.path.abspath(minedex.__file__))
    for name in ("py.typed", "__init__.pyi", "index.pyi", "hard_negatives.pyi", "refresher.pyi", "mined_file.pyi", "multivector.pyi", "libengine.so"):
        assert os.path.isfile(os.path.join(here, name)), name
    if os.environ.get("MINEDEX_TEST_INSTALLED"):
        assert "site-packages" in here or "dist-packages" in here


def test_public_names_match_the_stubs():
    with open(os.path.join(os.path.dirname(minedex.__file__), "__init__.pyi"), encoding="utf-8") as f:
        stub = f.read()
    for name in minedex.__all__:
        assert re.search(rf"\b{name}\b", stub), name
    import inspect
    from minedex import hard_negatives
    with open(hard_negatives.__file__[:-3] + ".pyi", encoding="utf-8") as f:
        hstub = f.read()
    params = inspect.signature(minedex.mine_hard_negatives).parameters
    for name in params:
        if name != "guards":
            assert re.search(rf"\b{name}:", hstub), name
    for guard in hard_negatives.GUARDS:
        assert re.search(rf"\b{guard}:", hstub), guard


def test_works_without_torch(tmp_path):
    """torch is optional: with it unimportable, minedex imports, takes numpy and lists, and return_type='torch'
    is a clear ImportError."""
    import subprocess
    import sys
    script = (
        "import sys; sys.modules['torch'] = None; sys.path[:0] = [p for p in sys.argv[1:2] if p]\n"
        "import numpy as np, minedex\n"
        "ix = minedex.Index('Flat', 3); ix.add([[0, 0, 1], [0, 1, 0], [1, 0, 0]])\n"
        "D, I = ix.search(np.eye(3, dtype=np.float32), 1); assert I[:, 0].tolist() == [2, 1, 0]\n"
        "r = minedex.mine_hard_negatives(np.eye(3), np.eye(3), [0, 1, 2], num_negatives=1, verbose=False)\n"
        "assert len(r) == 3\n"
        "try:\n"
        "    ix.search(np.eye(3), 1, return_type='torch')\n"
        "except ImportError as e:\n"
        "    assert 'needs PyTorch' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    here = os.path.dirname(os.path.dirname(os.path.abspath(minedex.__file__)))
    source = here if not os.environ.get("MINEDEX_TEST_INSTALLED") else ""
    subprocess.run([sys.executable, "-c", script, source], check=True, cwd=tmp_path)
