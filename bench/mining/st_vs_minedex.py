#!/usr/bin/env python3
"""minedex.mine_hard_negatives (exact and ANN with exact re-scoring) against the sentence-transformers-style exact
pipeline (faiss IndexFlatIP over normalised embeddings, top range_max + 1 per query, numpy masking and top-n), in
one run on the same seeded synthetic embeddings. Prints one JSON line: seconds per pipeline (index build included),
the speed-up of each minedex variant over the faiss pipeline, and the Jaccard overlap of their (query, negative)
pairs with the faiss pipeline's.

  /usr/bin/python3 bench/mining/st_vs_minedex.py --queries 100000 --corpus 1000000 --dim 384   # the issue's size
  /usr/bin/python3 bench/mining/st_vs_minedex.py --queries 10000 --corpus 100000 --dim 128     # a quick run

Needs python3-faiss and minedex (installed, or the source tree after bindings/python/build.sh).
"""
import argparse
import json
import os
import sys
import time

import faiss
import numpy as np

try:
    import minedex
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import minedex


def data(seed, q, n, d, topics):
    """Unit vectors around ``topics`` centres; query i is a noisy copy of corpus item i (its positive)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, d)).astype(np.float32)
    corpus = np.empty((n, d), np.float32)
    for first in range(0, n, 100_000):
        rows = min(100_000, n - first)
        corpus[first:first + rows] = centres[rng.integers(0, topics, rows)] + rng.standard_normal((rows, d), np.float32)
    queries = corpus[:q] + 0.5 * rng.standard_normal((q, d), np.float32)
    faiss.normalize_L2(corpus)
    faiss.normalize_L2(queries)
    return queries, corpus


def faiss_pipeline(queries, corpus, num_negatives, range_min, range_max, relative_margin, batch):
    """sentence-transformers' use_faiss path: IndexFlatIP, k = range_max + 1, positives and margin to -inf, top-n."""
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    out = np.full((len(queries), num_negatives), -1, np.int64)
    for first in range(0, len(queries), batch):
        qb = queries[first:first + batch]
        scores, ids = index.search(qb, range_max + 1)
        own = np.arange(first, first + len(qb))[:, None]
        pos = np.sum(qb * corpus[own[:, 0]], axis=1, keepdims=True)
        scores[ids == own] = -np.inf
        if relative_margin is not None:
            scores[scores > pos - np.abs(pos) * relative_margin] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :range_max][:, range_min:range_min + num_negatives]
        kept_scores = np.take_along_axis(scores, order, axis=1)
        chosen = np.take_along_axis(ids, order, axis=1)
        chosen[~np.isfinite(kept_scores)] = -1
        out[first:first + len(qb)] = chosen
    return out


def pairs(negatives):
    rows, cols = np.nonzero(negatives >= 0)
    return set(zip(rows.tolist(), negatives[rows, cols].tolist()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--corpus", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--negatives", type=int, default=5)
    ap.add_argument("--range-min", type=int, default=0)
    ap.add_argument("--range-max", type=int, default=None, help="default: range_min + 10 * negatives + 1")
    ap.add_argument("--relative-margin", type=float, default=0.05)
    ap.add_argument("--ann", default="HNSW32,efC100", help="minedex index spec of the ANN run ('' skips it)")
    ap.add_argument("--search", default="", help="knobs of the ANN search, e.g. probes=16 or ef=128")
    ap.add_argument("--skip-exact", action="store_true", help="skip the exact minedex run")
    ap.add_argument("--batch-size", type=int, default=1024,
                    help="queries per engine search (large batches let IVF-Flat lists answer by the list-major GEMM join)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    range_max = args.range_max or args.range_min + 10 * args.negatives + 1
    queries, corpus = data(args.seed, args.queries, args.corpus, args.dim, args.topics)
    result = {"queries": args.queries, "corpus": args.corpus, "dim": args.dim, "range_max": range_max,
              "ann": args.ann, "search": args.search, "batch_size": args.batch_size}

    t = time.perf_counter()
    reference = faiss_pipeline(queries, corpus, args.negatives, args.range_min, range_max, args.relative_margin,
                               16384)
    result["faiss_flat_ip_s"] = round(time.perf_counter() - t, 2)
    ref_pairs = pairs(reference)
    options = dict(num_negatives=args.negatives, range_min=args.range_min, range_max=range_max,
                   relative_margin=args.relative_margin, output_format="n-tuple", verbose=False, metric="ip")
    runs = ([] if args.skip_exact else [("minedex_flat", "Flat")]) + ([("minedex_ann", args.ann)] if args.ann else [])
    for name, spec in runs:
        t = time.perf_counter()
        knobs = {k: int(x) for k, x in (p.split("=") for p in args.search.split(",") if p)} if spec != "Flat" else {}
        mined = minedex.mine_hard_negatives(queries, corpus, np.arange(args.queries), index=spec,
                                            search_params=knobs or None, batch_size=args.batch_size, **options)
        seconds = time.perf_counter() - t
        got = pairs(mined.negatives)
        result[f"{name}_s"] = round(seconds, 2)
        result[f"{name}_speedup"] = round(result["faiss_flat_ip_s"] / seconds, 2)
        result[f"{name}_jaccard"] = round(len(got & ref_pairs) / max(len(got | ref_pairs), 1), 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
