"""bench/python/native_builds.py on a tiny data set: both builds run, each in its own process, and the summary
holds one ratio per setting (needs the source tree's libengine.so and libengine-v4.so: bindings/python/build.sh)."""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write_vecs(path, x, dtype):
    rows = np.empty((len(x), x.shape[1] + 1), dtype=np.int32)
    rows[:, 0] = x.shape[1]
    rows[:, 1:] = x.astype(dtype).view(np.int32)
    rows.tofile(path)


def test_tiny_comparison_prints_both_builds_and_a_summary(tmp_path):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2000, 16)).astype(np.float32)
    query = rng.standard_normal((50, 16)).astype(np.float32)
    gt = np.argsort(((query[:, None, :] - base[None, :, :]) ** 2).sum(-1), axis=1)[:, :10]
    write_vecs(tmp_path / "base.fvecs", base, np.float32)
    write_vecs(tmp_path / "query.fvecs", query, np.float32)
    write_vecs(tmp_path / "gt.ivecs", gt, np.int32)
    (tmp_path / "meta.json").write_text(json.dumps({"metric": "l2"}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
    env.pop("MINEDEX_LIBRARY", None)
    run = subprocess.run([sys.executable, os.path.join(HERE, "native_builds.py"), "--data", str(tmp_path),
                          "--index", "IVF16,Flat", "--params", '{"probes": 16}', "--nq", "50", "--seconds", "0.05",
                          "--rounds", "1", "--cache", str(tmp_path / "ix.idx")],
                         capture_output=True, text=True, env=env, timeout=300)
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    from minedex._native import _V4_FLAGS, _cpu_flags
    if not _V4_FLAGS <= _cpu_flags():  # no AVX-512 here: a clear refusal, not a crash of the v4 child
        assert run.returncode != 0 and "x86-64-v4" in run.stderr, run.stderr
        return
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.strip().splitlines()]
    assert [line["isa"] for line in lines[:2]] == ["x86-64-v3", "x86-64-v4"]
    summary = lines[-1]
    s = summary['{"probes": 16}']
    assert s["recall"] == 1.0  # all 16 lists probed: exact
    assert s["ratio"] > 0 and s["v3_median_qps"] > 0 and s["v4_median_qps"] > 0
