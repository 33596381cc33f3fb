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
    import platform
    x64 = ("libengine-v4.so",) if platform.machine().lower() in ("x86_64", "amd64") else ()  # the AVX-512 build
    for name in ("py.typed", "__init__.pyi", "index.pyi", "hard_negatives.pyi", "refresher.pyi", "mined_file.pyi", "multivector.pyi", "libengine.so") + x64:
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


V4 = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")


def test_loader_picks_the_avx512_build_only_where_it_can_run(tmp_path):
    from minedex._native import choose_library
    d = str(tmp_path)
    both = lambda p: True  # noqa: E731
    portable_only = lambda p: not p.endswith("libengine-v4.so")  # noqa: E731
    assert choose_library(d, V4 + ("avx2",), None, both) == (os.path.join(d, "libengine-v4.so"), "x86-64-v4")
    assert choose_library(d, V4, "auto", both)[1] == "x86-64-v4"
    # one x86-64-v4 flag missing (e.g. avx512cd), no AVX-512 at all, or a wheel without the build: portable
    assert choose_library(d, V4[:2] + V4[3:], None, both) == (os.path.join(d, "libengine.so"), "x86-64-v3")
    assert choose_library(d, ("avx2", "fma"), None, both)[1] == "x86-64-v3"
    assert choose_library(d, V4, None, portable_only)[1] == "x86-64-v3"
    # MINEDEX_ISA forces the portable build; forcing x86-64-v4 where it cannot run is a clear ImportError
    assert choose_library(d, V4, "x86-64-v3", both)[1] == "x86-64-v3"
    assert choose_library(d, V4, " X86-64-V4 ", both)[1] == "x86-64-v4"
    import pytest
    with pytest.raises(ImportError, match="lacks"):
        choose_library(d, ("avx2",), "x86-64-v4", both)
    with pytest.raises(ImportError, match="not there"):
        choose_library(d, V4, "x86-64-v4", portable_only)
    with pytest.raises(ImportError, match="expected"):
        choose_library(d, V4, "avx512", both)


def _cpu_has_v4():
    from minedex._native import _cpu_flags
    return set(V4) <= _cpu_flags()


def test_loaded_build_matches_the_cpu():
    info = minedex.native_library()
    assert os.path.isfile(info["path"])
    if os.environ.get("MINEDEX_LIBRARY"):
        assert info["isa"] == "custom"
        return
    import platform
    here = os.path.dirname(os.path.abspath(minedex.__file__))
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert os.path.isfile(os.path.join(here, "libengine-v4.so"))  # every x86-64 build ships both
    forced = os.environ.get("MINEDEX_ISA", "auto").strip().lower()
    expected = "x86-64-v4" if _cpu_has_v4() and forced != "x86-64-v3" else "x86-64-v3"
    assert info["isa"] == expected
    assert os.path.basename(info["path"]) == ("libengine-v4.so" if expected == "x86-64-v4" else "libengine.so")


def test_portable_and_avx512_builds_give_the_same_answers():
    """The two builds run the same code with other SIMD kernels: exact search returns the same ids, IVF-PQ
    fast-scan (integer lookup sums, float refine) the same top-10 for all but a rare tie."""
    import json
    import subprocess
    import sys
    script = (
        "import sys, json, numpy as np; sys.path[:0] = [p for p in sys.argv[1:2] if p]\n"
        "import minedex\n"
        "rng = np.random.default_rng(7); x = rng.standard_normal((4000, 48)).astype(np.float32)\n"
        "q = rng.standard_normal((200, 48)).astype(np.float32); out = {'isa': minedex.native_library()['isa']}\n"
        "for spec, kw in (('Flat', {}), ('IVF32,PQ24x4fs,RFlat', {'probes': 8, 'refine': 4})):\n"
        "    ix = minedex.Index(spec, 48, metric='l2'); ix.train(x) if spec != 'Flat' else None; ix.add(x)\n"
        "    D, I = ix.search(q, 10, **kw); out[spec] = I.tolist()\n"
        "print(json.dumps(out))\n")
    src = "" if os.environ.get("MINEDEX_TEST_INSTALLED") else os.path.dirname(os.path.dirname(os.path.abspath(minedex.__file__)))
    runs = {}
    for isa in ("x86-64-v3", "auto"):
        env = {k: v for k, v in os.environ.items() if k != "MINEDEX_LIBRARY"}
        env["MINEDEX_ISA"] = isa
        run = subprocess.run([sys.executable, "-c", script, src], capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        runs[isa] = json.loads(run.stdout.strip().splitlines()[-1])
    assert runs["x86-64-v3"]["isa"] == "x86-64-v3"
    assert runs["auto"]["isa"] == ("x86-64-v4" if _cpu_has_v4() else "x86-64-v3")
    assert runs["x86-64-v3"]["Flat"] == runs["auto"]["Flat"]
    a, b = runs["x86-64-v3"]["IVF32,PQ24x4fs,RFlat"], runs["auto"]["IVF32,PQ24x4fs,RFlat"]
    same = sum(len(set(r) & set(s)) for r, s in zip(a, b)) / (10 * len(a))
    assert same >= 0.99, same
