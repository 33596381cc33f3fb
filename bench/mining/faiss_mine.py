#!/usr/bin/env python3
"""Reference hard-negative mining with faiss + numpy, the same pipeline as `engine mine` (top sampling).

Pipeline: IndexFlatL2 over the corpus, exact top-`depth` per anchor, exact positive scores, drop the positives,
sign-safe relative margin (drop neg > pos - |pos|*m), absolute margin, score bounds, rank window
[range_min, range_max) over surviving candidates, first `negatives` survivors, rows that fall short are dropped.
Scores are larger-is-closer: negative squared L2 distance. Output rows match the engine's JSONL:
{"anchor":i,"positives":[...],"negatives":[...],"scores":[...],"positive_scores":[...]}.

Usage (MNIST):
  /usr/bin/python3 bench/mining/faiss_mine.py --corpus /tmp/mnist/base.fvecs --anchors /tmp/mnist/query.fvecs \
      --positives /tmp/mnist/gt.ivecs --positives-take 1 --negatives 20 --range 10:200 --relative-margin 0.05 \
      --out /tmp/faiss_mine.jsonl
"""
import argparse
import json
import time

import faiss
import numpy as np


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def read_ivecs_rows(path, take):
    raw = np.fromfile(path, dtype=np.int32)
    rows, off = [], 0
    while off < len(raw):
        n = int(raw[off])
        row = raw[off + 1: off + 1 + n]
        rows.append(row[:take] if take > 0 else row)
        off += 1 + n
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--anchors", required=True)
    ap.add_argument("--positives", required=True)
    ap.add_argument("--positives-take", type=int, default=0)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--range", default="0:100")
    ap.add_argument("--depth", type=int, default=0, help="0 = engine's automatic depth")
    ap.add_argument("--relative-margin", type=float, default=None)
    ap.add_argument("--absolute-margin", type=float, default=None)
    ap.add_argument("--min-score", type=float, default=None)
    ap.add_argument("--max-score", type=float, default=None)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.threads > 0:
        faiss.omp_set_num_threads(a.threads)
    range_min, range_max = (int(x) for x in a.range.split(":"))
    if range_min >= range_max or a.negatives > range_max - range_min:
        raise SystemExit("bad window")

    t0 = time.perf_counter()
    xb = read_fvecs(a.corpus)
    xq = read_fvecs(a.anchors)
    pos = read_ivecs_rows(a.positives, a.positives_take)
    assert len(pos) == len(xq), "one positives row per anchor"
    t_read = time.perf_counter() - t0

    t1 = time.perf_counter()
    index = faiss.IndexFlatL2(xb.shape[1])
    index.add(xb)
    filters = any(v is not None for v in (a.relative_margin, a.absolute_margin, a.min_score, a.max_score))
    stats = dict(positives=0, margin=0, score_bounds=0, below_range_min=0, shortfall_rows=0, rows=0)
    with open(a.out, "w") as out:
        for s in range(0, len(xq), a.batch):
            q = xq[s: s + a.batch]
            max_excl = max(len(p) for p in pos[s: s + a.batch])
            depth = a.depth or (range_max + max_excl + (range_max if filters else 0))
            depth = min(depth, index.ntotal)
            dist, ids = index.search(q, depth)
            for i in range(len(q)):
                ai = s + i
                p = pos[ai].astype(np.int64)
                diff = xb[p] - q[i]
                pscores = -(diff * diff).sum(axis=1)
                pa = float(pscores.min())
                ceiling = np.inf
                if a.absolute_margin is not None:
                    ceiling = min(ceiling, pa - a.absolute_margin)
                if a.relative_margin is not None:
                    ceiling = min(ceiling, pa - abs(pa) * a.relative_margin)
                row_ids, row_scores = ids[i], -dist[i]
                valid = row_ids >= 0
                is_pos = np.isin(row_ids, p)
                stats["positives"] += int((is_pos & valid).sum())
                keep = valid & ~is_pos
                margin = keep & (row_scores > ceiling)
                stats["margin"] += int(margin.sum())
                keep &= ~margin
                if a.min_score is not None or a.max_score is not None:
                    lo = -np.inf if a.min_score is None else a.min_score
                    hi = np.inf if a.max_score is None else a.max_score
                    bounds = keep & ((row_scores < lo) | (row_scores > hi))
                    stats["score_bounds"] += int(bounds.sum())
                    keep &= ~bounds
                surv_ids, surv_scores = row_ids[keep], row_scores[keep]
                stats["below_range_min"] += min(range_min, len(surv_ids))
                window_ids = surv_ids[range_min:range_max][: a.negatives]
                window_scores = surv_scores[range_min:range_max][: a.negatives]
                if len(window_ids) < a.negatives:
                    stats["shortfall_rows"] += 1
                    continue
                stats["rows"] += 1
                out.write(json.dumps({
                    "anchor": ai, "positives": [int(x) for x in p],
                    "negatives": [int(x) for x in window_ids],
                    "scores": [float(x) for x in window_scores],
                    "positive_scores": [float(x) for x in pscores],
                }, separators=(",", ":")) + "\n")
    t_mine = time.perf_counter() - t1
    stats.update(read_seconds=round(t_read, 3), index_and_mine_seconds=round(t_mine, 3), faiss=faiss.__version__,
                 threads=faiss.omp_get_max_threads())
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
