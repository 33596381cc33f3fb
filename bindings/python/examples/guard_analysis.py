#!/usr/bin/env python3
"""Which false-negative guard settings keep same-class items out of the mined window (one-positive setting)?

Trains the example's MLP for one warm-up epoch of random negatives (as train_contrastive.py does before mining),
once with the nearest-same-class designated positive and once with a random same-class positive, then for 2000
anchors ranks all training items by the embedding's inner product and reports, for each guard setting, the share of
same-class items ("fn") among the first 50 surviving candidates (up to rank 6000), the share of anchors with fewer
than 8 survivors ("short") and the mean candidate score. Pure numpy on the embedding (no engine mining), so each
setting is cheap to compare.

    flock /tmp/bench.lock /usr/bin/python3 bindings/python/examples/guard_analysis.py --data /tmp/mnist
"""
import argparse, os, sys, time
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # train_contrastive imports minedex (installed, or this source tree)
import torch, train_contrastive as tc
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--data", required=True)
ap.add_argument("--threads", type=int, default=2)
cli = ap.parse_args()
torch.set_num_threads(cli.threads)
t0=time.time()
xb, yb, xq, yq = tc.load(cli.data, 0)
nnpos = tc.nearest_same_class(xb, yb, cli.threads)
rng0=np.random.default_rng(5)
by = {c: np.flatnonzero(yb==c) for c in range(10)}
rndpos = np.empty(len(xb), np.int64)
for c,m in by.items():
    p = m[rng0.integers(0,len(m),len(m))]; p[p==m] = m[(np.searchsorted(m,p[p==m])+1)%len(m)]; rndpos[m]=p
xt = torch.from_numpy(xb)
def warm(pos):
    torch.manual_seed(0); rng=np.random.default_rng(0)
    model = tc.make_model(torch, 784, 256, 64); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    anchors = rng.choice(len(xb), 10000, replace=False); negs = rng.integers(0, len(xb), (10000, 8))
    for b in range(0, 10000, 256):
        a_idx = anchors[b:b+256]; p_idx = pos[a_idx]; n_idx = negs[b:b+256]
        a, p = model(xt[a_idx]), model(xt[p_idx]); n = model(xt[n_idx.reshape(-1)]).reshape(len(a_idx), 8, -1)
        logits = torch.cat([(a*p).sum(-1, keepdim=True), torch.einsum("bd,bmd->bm", a, n)], 1)/0.1
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(a_idx), dtype=torch.long))
        opt.zero_grad(); loss.backward(); opt.step()
    return tc.embed(torch, model, xb)
for name, pos in (("nn", nnpos), ("random-class", rndpos)):
    emb = warm(pos)
    A = np.random.default_rng(1).choice(len(xb), 2000, replace=False)
    S = emb[A] @ emb.T
    S[np.arange(len(A)), A] = -9
    P = pos[A]; ps = S[np.arange(len(A)), P].copy(); S[np.arange(len(A)), P] = -9
    PC = emb[P] @ emb.T  # cos to positive
    same = yb[None,:] == yb[A][:,None]
    order = np.argsort(-S, axis=1)[:, :6000]
    So = np.take_along_axis(S, order, 1); sameo = np.take_along_axis(same, order, 1); pco = np.take_along_axis(PC, order, 1)
    print(f"== positive {name}: pos score pctl {np.percentile(ps,[10,50,90]).round(3)} ({time.time()-t0:.0f}s)")
    def share(keep, w=50, r0=0):
        # first w survivors after skipping r0 survivors
        cs = np.cumsum(keep, 1)
        sel = keep & (cs > r0) & (cs <= r0 + w)
        got = sel.sum(1)
        return (sameo & sel).sum() / max(sel.sum(),1), (got < 8).mean(), (So*sel).sum()/max(sel.sum(),1)
    allk = np.ones_like(sameo)
    print("top50            fn %.3f short %.3f meanscore %.3f" % share(allk))
    for r0 in (100, 300, 1000, 2000):
        print(f"range_min {r0:5d}  fn %.3f short %.3f meanscore %.3f" % share(allk, r0=r0))
    for m in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        ceil = ps - np.abs(ps)*m
        print(f"rel margin {m:.2f} fn %.3f short %.3f meanscore %.3f" % share(So <= ceil[:,None]))
    for t in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
        print(f"dup {t:.2f}       fn %.3f short %.3f meanscore %.3f" % share(pco <= t))
    for m,t in ((0.05,0.7),(0.1,0.6),(0.2,0.6),(0.3,0.5)):
        ceil = ps - np.abs(ps)*m
        print(f"rel {m} + dup {t} fn %.3f short %.3f meanscore %.3f" % share((So <= ceil[:,None]) & (pco <= t)))
    print("random negatives fn %.3f" % (yb[np.random.default_rng(2).integers(0,len(yb),(2000,8))] == yb[A][:,None]).mean())
print("total", time.time()-t0)
