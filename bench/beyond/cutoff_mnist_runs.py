"""MNIST relevance runs for `engine cutoff` (see docs/beyond-negatives.md): test images as queries, their 50 nearest
training images (exact L2) as candidates scored by -distance, relevant = same digit. Writes train.run (queries 0..999), test.run (1000..1999), qrels."""
import numpy as np, faiss, sys
def rv(p, dt):
    raw = np.fromfile(p, dtype=np.int32); return raw.reshape(-1, raw[0] + 1)[:, 1:].view(dt)
d = sys.argv[1]
x = rv(f"{d}/base.fvecs", np.float32).copy(); q = rv(f"{d}/query.fvecs", np.float32)[:2000].copy()
def labels(p, n):
    arr = np.fromfile(p, dtype=np.uint8)  # one byte per row (engine data fetch mnist)
    assert len(arr) == n, f"{p}: {len(arr)} labels for {n} rows"
    return arr
lb = labels(f"{d}/base.labels", len(x)); lq = labels(f"{d}/query.labels", 10000)[:2000]
index = faiss.IndexFlatL2(x.shape[1]); index.add(x)
D, I = index.search(q, 50)
with open("qrels", "w") as qr:
    for name, lo, hi in (("train.run", 0, 1000), ("test.run", 1000, 2000)):
        with open(name, "w") as f:
            for i in range(lo, hi):
                for r in range(50):
                    f.write(f"q{i} Q0 {I[i, r]} {r + 1} {-np.sqrt(D[i, r]):.4f} flat\n")
                    qr.write(f"q{i} 0 {I[i, r]} {int(lb[I[i, r]] == lq[i])}\n")
print("relevant share", np.mean(lb[I] == lq[:, None]))
