"""faiss IndexIVFFlat batch QPS and recall@10 on a data set directory (base/query/gt.ivecs, meta.json): the peer of
the IVF-Flat list-major join table in docs/ivf.md (Search, item 6).

    PYTHONPATH=/work/peers/native /usr/bin/python3 bench/ivf/faiss_ivfflat.py DATA_DIR LISTS NPROBE[,NPROBE...]

All queries in one search call, best of 3 per nprobe; one JSON line per nprobe."""
import faiss, numpy as np, time, sys, json
def rv(p, dt):
    raw = np.fromfile(p, dtype=np.int32); return raw.reshape(-1, raw[0] + 1)[:, 1:].view(dt).copy()
d = sys.argv[1]; lists = int(sys.argv[2]); metric = json.load(open(f"{d}/meta.json"))["metric"]
x = rv(f"{d}/base.fvecs", np.float32); q = rv(f"{d}/query.fvecs", np.float32); gt = rv(f"{d}/gt.ivecs", np.int32)[:, :10]
mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
if metric == "cosine": faiss.normalize_L2(x); faiss.normalize_L2(q)
index = faiss.index_factory(x.shape[1], f"IVF{lists},Flat", mt); index.train(x); index.add(x)
for p in map(int, sys.argv[3].split(",")):
    index.nprobe = p
    best = 0
    for r in range(3):
        t = time.perf_counter(); _, I = index.search(q, 10); s = time.perf_counter() - t; best = max(best, len(q) / s)
    rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    print(json.dumps({"faiss": faiss.__version__, "spec": f"IVF{lists},Flat", "nprobe": p, "recall": round(rec, 5), "qps": round(best, 1)}))
