#!/usr/bin/env python3
"""minedex's two native builds side by side: libengine.so (x86-64-v3, AVX2) and libengine-v4.so (x86-64-v4,
AVX-512), each in its own process (MINEDEX_ISA), alternating for --rounds rounds on the same saved index.

  PYTHONPATH=bindings/python /usr/bin/python3 bench/python/native_builds.py --data /tmp/glove100 \\
      --index 'IVF1024,PQ50x4fs,RFlat' --params '{"probes": 32, "refine": 4}' --params '{"probes": 48, "refine": 8}'

The index is built once with minedex (train + add of the base vectors) and saved under --cache; queries are the first --nq
of the queries as one batch, k = 10, --threads threads; each setting is timed for --seconds and reports its best and
median batch. Prints one JSON line per (round, build) and a summary line with the median ratios (v4 / v3).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers"))
import run_peers  # noqa: E402  (the data-set readers every bench script shares)


def child(args):
    import minedex
    # queries and ground truth only: the base vectors are in the saved index
    xq = run_peers.read_matrix(run_peers.find(args.data, "query", (".fvecs", ".bvecs", ".npy")))[:args.nq]
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    gt = run_peers.read_matrix(run_peers.find(args.data, "gt", (".ivecs", ".npy")))[:args.nq, :10]
    idx = minedex.load(args.cache)
    out = {"isa": minedex.native_library()["isa"]}
    for p in args.params:
        params = json.loads(p)
        qps = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            t = time.perf_counter()
            _, ids = idx.search(xq, 10, threads=args.threads, **params)
            qps.append(len(xq) / (time.perf_counter() - t))
        recall = float(np.mean([len(set(ids[i]) & set(gt[i])) / 10 for i in range(len(xq))]))
        out[p] = {"recall": round(recall, 4), "best": round(max(qps)), "median": round(float(np.median(qps)))}
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--params", action="append", required=True, help="search knobs as JSON (repeatable)")
    ap.add_argument("--metric", default=None, help="default: meta.json's metric")
    ap.add_argument("--cache", default=None, help="saved index path (default: /tmp/minedex-<data>-<spec>.idx)")
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cache is None:
        safe = "".join(c if c.isalnum() else "_" for c in args.index)
        args.cache = f"/tmp/minedex-{os.path.basename(os.path.abspath(args.data))}-{safe}.idx"
    if args.child:
        return child(args)
    import minedex
    from minedex._native import _V4_FLAGS, _cpu_flags
    missing = sorted(_V4_FLAGS - _cpu_flags())
    if missing:
        raise SystemExit(f"native_builds.py: this CPU lacks {missing} (x86-64-v4, AVX-512): only the portable build "
                         "runs here, there is nothing to compare.")
    if not os.path.exists(args.cache):
        _, metric, xb, _, _ = run_peers.load(args.data)
        ix = minedex.Index(args.index, xb.shape[1], metric=args.metric or metric)
        ix.train(xb)
        ix.add(xb)
        ix.save(args.cache)
        print(f"built {args.index} -> {args.cache}", file=sys.stderr)
    rows = {"x86-64-v3": [], "x86-64-v4": []}
    for _ in range(args.rounds):
        for isa in ("x86-64-v3", "x86-64-v4"):
            env = dict(os.environ, MINEDEX_ISA=isa)
            env.pop("MINEDEX_LIBRARY", None)
            run = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:], "--cache", args.cache],
                                 capture_output=True, text=True, env=env)
            if run.returncode != 0:
                raise SystemExit(run.stderr)
            line = run.stdout.strip().splitlines()[-1]
            print(line, flush=True)
            rows[isa].append(json.loads(line))
    summary = {"index": args.index, "threads": args.threads, "nq": args.nq}
    for p in args.params:
        v3 = float(np.median([r[p]["median"] for r in rows["x86-64-v3"]]))
        v4 = float(np.median([r[p]["median"] for r in rows["x86-64-v4"]]))
        summary[p] = {"v3_median_qps": round(v3), "v4_median_qps": round(v4), "ratio": round(v4 / v3, 2),
                      "recall": rows["x86-64-v4"][0][p]["recall"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
