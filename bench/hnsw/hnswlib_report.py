#!/usr/bin/python3
"""hnswlib's half of the HNSW comparison; prints the same lines as
`dotnet run -c Release --project bench/Engine.Benchmarks -- hnsw DIR [SPEC] [NQ]` prints for the engine.

Usage: PYTHONPATH=PREFIX /usr/bin/python3 bench/hnsw/hnswlib_report.py DIR [M] [NQ]
(PREFIX: where ../shared/peers/build-native-peers.sh put a -march=native hnswlib; Debian's python3-hnswlib has no
AVX code and would flatter the engine). Builds M (default 16) / efConstruction 200 with 2 threads, then per ef:
recall@10, process CPU time per query of a one-thread batch query (best of 3), and wall-clock p50 / p99 of
single-query calls (includes ~1-2 us of Python call overhead per query).
"""
import json, os, sys, time
import numpy as np
import hnswlib

EFS = (10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320)

def vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    return a.reshape(-1, a[0] + 1)[:, 1:].view(dtype).copy()

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    meta = json.load(open(os.path.join(root, 'meta.json')))
    xb = vecs(os.path.join(root, 'base.fvecs'), np.float32)
    xq = vecs(os.path.join(root, 'query.fvecs'), np.float32)
    gt = vecs(os.path.join(root, 'gt.ivecs'), np.int32)
    nq = min(len(xq), int(sys.argv[3])) if len(sys.argv) > 3 else len(xq)
    xq, gt = xq[:nq], gt[:nq, :10]
    n, d = xb.shape
    space = {'l2': 'l2', 'ip': 'ip', 'cosine': 'cosine'}[meta['metric']]
    index = hnswlib.Index(space=space, dim=d)
    rss0 = rss()
    wall, cpu = time.perf_counter(), time.process_time()
    index.init_index(max_elements=n, ef_construction=200, M=m)
    index.add_items(xb, np.arange(n), num_threads=2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    grown = rss() - rss0  # what the index made resident (the data arrays were loaded before)
    print('hnswlib M%d efC200 on %s n=%d d=%d nq=%d: build wall %.2f s, cpu %.2f s (2 threads), %.0f B/vector resident growth (%s)'
          % (m, meta.get('name', root), n, d, nq, wall, cpu, grown / n, hnswlib.__file__))
    index.set_num_threads(1)
    for ef in EFS:
        index.set_ef(max(ef, 10))
        index.knn_query(xq, k=10)
        best = float('inf')
        for _ in range(3):
            c = time.process_time()
            labels, _ = index.knn_query(xq, k=10)
            best = min(best, time.process_time() - c)
        hits = sum(len(set(labels[i].tolist()) & set(gt[i].tolist())) for i in range(nq))
        lat = np.empty(nq)
        for i in range(nq):
            q = xq[i:i + 1]
            t = time.perf_counter()
            index.knn_query(q, k=10)
            lat[i] = (time.perf_counter() - t) * 1e6
        lat.sort()
        print('ef %d recall %.4f cpu_us_per_query %.1f p50_us %.1f p99_us %.1f'
              % (ef, hits / (10 * nq), best / nq * 1e6, lat[nq // 2], lat[min(nq - 1, int(nq * 0.99))]))

if __name__ == '__main__':
    main()
