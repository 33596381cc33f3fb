"""A torch training loop that keeps its hard-negative index fresh with minedex.Refresher (ANCE-style asynchronous
refresh), on seeded synthetic data so that it runs anywhere:

    python3 bindings/python/examples/refresh_training.py --steps 200 --refresh-every 20 --fraction 0.2

The protocol, every step: mine negatives for the batch's queries on the current snapshot (rows carry the snapshot
number and the staleness of their vectors); train on (query, positive, negatives) with an InfoNCE loss. Every
``--refresh-every`` steps: re-embed the ``--fraction`` of the corpus whose vectors are oldest (``refresher.due``),
push them, and start a background rebuild; mining goes on against the previous snapshot until the new one is swapped
in. ``--max-staleness`` makes the refresher refuse snapshots with older vectors (the trainer then re-embeds what is
due and waits for the rebuild). Prints one JSON line: recall@1 before/after, snapshots used, the staleness seen,
and the time spent mining and refreshing against the whole loop.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

try:
    import minedex
except ImportError:  # not installed: use the source tree (after bindings/python/build.sh)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import minedex


def synthetic(seed, n, d_in, classes):
    """Corpus items in clusters; a query is a noisy copy of its corpus item (its positive)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d_in)) * 2.0
    corpus = centres[rng.integers(0, classes, n)] + rng.standard_normal((n, d_in))
    queries = corpus + 0.8 * rng.standard_normal((n, d_in))
    return torch.tensor(corpus, dtype=torch.float32), torch.tensor(queries, dtype=torch.float32)


def embed(encoder, x, batch=4096):
    with torch.no_grad():
        return torch.cat([torch.nn.functional.normalize(encoder(x[i:i + batch]), dim=1) for i in range(0, len(x), batch)])


def recall_at_1(encoder, corpus, queries, ids):
    c, q = embed(encoder, corpus), embed(encoder, queries[ids])
    with minedex.Index("Flat", c.shape[1], "ip") as index:
        index.add(c)
        _, top = index.search(q, 1)
    return float((top[:, 0] == ids.numpy()).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--negatives", type=int, default=4)
    ap.add_argument("--refresh-every", type=int, default=20)
    ap.add_argument("--fraction", type=float, default=0.2, help="share of the corpus re-embedded at each refresh")
    ap.add_argument("--max-staleness", type=int, default=None)
    ap.add_argument("--index", default="Flat")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.refresh_every < 1 or not 0 < args.fraction <= 1:
        ap.error("--steps and --refresh-every must be >= 1 and --fraction in (0, 1]")

    torch.manual_seed(args.seed)
    corpus, queries = synthetic(args.seed, args.n, 32, 40)
    encoder = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    held_out = torch.arange(args.n - 500, args.n)
    train_ids = np.arange(args.n - 500)
    before = recall_at_1(encoder, corpus, queries, held_out)
    rng = np.random.default_rng(args.seed)
    per_refresh = max(1, int(args.fraction * args.n))
    mining_s = refresh_s = 0.0
    snapshots, staleness = set(), []
    start = time.perf_counter()
    with minedex.Refresher(embed(encoder, corpus), args.index, "ip", max_staleness=args.max_staleness) as refresher:
        for step in range(1, args.steps + 1):
            t = time.perf_counter()
            if step % args.refresh_every == 0:
                due = refresher.due(per_refresh)  # the oldest vectors first
                refresher.push(due, embed(encoder, corpus[due]), step, refresh=True)  # rebuilt in the background
            if args.max_staleness is not None and step - refresher.snapshot.oldest > args.max_staleness:
                overdue = refresher.overdue(step)
                if overdue:
                    due = refresher.due(overdue)
                    refresher.push(due, embed(encoder, corpus[due]), step)
                refresher.refresh(wait=True)  # the bound needs the new snapshot before mining
            refresh_s += time.perf_counter() - t
            ids = rng.choice(train_ids, args.batch, replace=False)
            t = time.perf_counter()
            q = embed(encoder, queries[ids])
            mined = refresher.mine(q, ids, step=step, num_negatives=args.negatives, range_min=2,
                                   output_format="n-tuple", sampling_strategy="top", verbose=False)
            mining_s += time.perf_counter() - t
            snapshots.update(mined.columns["snapshot"])
            staleness.extend(mined.columns["staleness"])
            keep = np.flatnonzero((mined.negatives >= 0).all(axis=1))
            if keep.size == 0:
                continue
            rows = torch.as_tensor(mined.query_rows[keep])
            qv = torch.nn.functional.normalize(encoder(queries[ids][rows]), dim=1)
            pv = torch.nn.functional.normalize(encoder(corpus[ids][rows]), dim=1)
            nv = torch.nn.functional.normalize(encoder(corpus[torch.as_tensor(mined.negatives[keep])]), dim=2)
            logits = torch.cat([(qv * pv).sum(1, keepdim=True), torch.einsum("bd,bnd->bn", qv, nv)], dim=1) / 0.1
            in_batch = qv @ pv.T / 0.1  # in-batch negatives too
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(keep), dtype=torch.long)) + \
                torch.nn.functional.cross_entropy(in_batch, torch.arange(len(keep)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    total = time.perf_counter() - start
    print(json.dumps({
        "recall_at_1_before": round(before, 4),
        "recall_at_1_after": round(recall_at_1(encoder, corpus, queries, held_out), 4),
        "snapshots_used": len(snapshots),
        "staleness_max": int(max(staleness)) if staleness else 0,
        "staleness_mean": round(float(np.mean(staleness)), 2) if staleness else 0.0,
        "timing": {"total_s": round(total, 3), "mining_s": round(mining_s, 3), "refresh_s": round(refresh_s, 3)},
    }))


if __name__ == "__main__":
    main()
