#!/usr/bin/python3
"""hnswlib M16/efC200 at high ef (480..1200) on an inner-product data set: the GloVe-100 recall >= 0.99 row of
docs/results.md, which peers.py's ef grid (up to 480) does not reach. Usage: PYTHONPATH=PREFIX bench/hnsw/hnswlib_high_ef.py DIR"""
import numpy as np, hnswlib, time, sys
def vecs(p, t):
    a = np.fromfile(p, dtype=np.int32); return a.reshape(-1, a[0] + 1)[:, 1:].view(t).copy()
D = sys.argv[1]
xb = vecs(D + '/base.fvecs', np.float32); xq = vecs(D + '/query.fvecs', np.float32); gt = vecs(D + '/gt.ivecs', np.int32)[:, :10]
p = hnswlib.Index(space='ip', dim=xb.shape[1]); t = time.perf_counter()
p.init_index(max_elements=len(xb), ef_construction=200, M=16); p.add_items(xb, np.arange(len(xb)), num_threads=2)
print('hnswlib build', round(time.perf_counter() - t, 1), hnswlib.__file__)
p.set_num_threads(2)
for ef in (480, 640, 800, 1000, 1200):
    p.set_ef(ef); t = time.perf_counter(); I, _ = p.knn_query(xq, k=10); dt = time.perf_counter() - t
    r = sum(len(set(I[i].tolist()) & set(gt[i].tolist())) for i in range(len(xq))) / (10 * len(xq))
    print('hnswlib ef', ef, 'recall', round(r, 5), 'qps', round(len(xq) / dt))
