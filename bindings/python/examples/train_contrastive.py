#!/usr/bin/env python3
"""Contrastive embedding training with negatives mined by the engine, re-mined every epoch.

Trains an MLP 784 -> 256 -> 64 (L2-normalised output) with InfoNCE on labelled vectors (MNIST-like). Every training
item has ONE known positive, a designated pair fixed for the whole run (default --positive nearest: its nearest
same-class item in the input space, found once with the engine; --positive random: a random same-class item drawn
every epoch). Five ways of choosing the negatives of each (anchor, positive) pair are compared:

  random            M negatives drawn uniformly from the training corpus (labels not used)
  in_batch          the other positives of the batch (classic in-batch InfoNCE, labels not used)
  mined             engine-mined hard negatives with all same-class items known as positives and excluded: per
                    class, the engine mines in an index of the other classes' items (plus the class's designated
                    positives, all listed as positives of every anchor of the class)
  mined_unlabelled  engine-mined hard negatives with only the pair's positive known: plain top-k ranks (uniform draw
                    from the window), so same-class items ("false negatives") are handed out
  guarded           the same one-positive setting with the engine's false-negative guards: relative margin to the
                    positive (--guard-margin), rank window (--guard-range-min, --window), near-duplicate threshold
                    (--guard-dup, off by default), hubness-aware sampling (--hubness-gamma: weight N_k^-gamma with
                    N_k from minedex hubness over the epoch's index, --hub-k, --hub-sample), a deeper candidate list
                    so rows the guards empty are padded from survivors (--guard-extra-depth), and rows still short
                    re-mined with a milder margin (--guard-fallback-margin) before random items fill the rest

Mining strategies start with --warmup-epochs epochs of random negatives (ANCE-style warm-up: mining with a
random-init network finds nothing meaningful), then re-embed the whole training corpus before every epoch, rebuild an
exact ("Flat", inner product) engine index over the new embeddings and mine again: negatives follow the model.

Evaluation (--eval test, default): held-out precision@10 = for each item of the held-out query/test split, the share
of its 10 nearest embedded training (base) items that carry its class. --eval classes keeps the classes --holdout out
of training and searches their query items among their base items (held-out classes).

Output: one JSON line on stdout
  {"random": p, "in_batch": p, "mined": p, "mined_unlabelled": p, "guarded": p,
   "false_negative_share": {"mined_unlabelled": s, "guarded": s}}
where false_negative_share is the share of the negatives actually used in training that have the anchor's label
(over all epochs, warm-up included). Progress goes to stderr, ending with one "mining log:" JSON line per mined
epoch (random fills, rows padded from deeper survivors, fallback rows, skipped counts, false-negative share, time).

Data: --data DIR with base.fvecs, query.fvecs (fvecs: int32 d, then d float32 per row), base.labels and
query.labels (one uint8 or int32 per row). Needs numpy and torch (Debian: python3-numpy python3-torch).

    /usr/bin/python3 bindings/python/examples/train_contrastive.py --data /tmp/mnist --epochs 3
"""

import argparse
import json
import os
import sys
import time

import numpy as np

try:
    import minedex
except ImportError:  # not installed: use the source tree (after bindings/python/build.sh)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import minedex

STRATEGIES = ["random", "in_batch", "mined", "mined_unlabelled", "guarded"]
# Defaults of the guarded strategy (see docs/bindings-python.md for the measurements behind them).
GUARD = {"margin": 0.6, "range_min": 0, "dup": -1.0, "extra_depth": 6000, "fallback_margin": 0.5,
         "hubness_gamma": 0.5, "hub_k": 10, "hub_sample": 0}


# ----------------------------------------------------------------------------------------------------------- data
def read_fvecs(path, limit=None):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise SystemExit(f"{path} is empty")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise SystemExit(f"{path} is not an fvecs file (first dimension {d}, {raw.size} words)")
    rows = raw.reshape(-1, d + 1)
    if np.any(rows[:, 0] != d):
        raise SystemExit(f"{path} has rows of different dimensions")
    if limit:
        rows = rows[:limit]
    return rows[:, 1:].copy().view(np.float32)


def read_labels(path, n):
    size = os.path.getsize(path)
    if size == n:
        return np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if size == 4 * n:
        return np.fromfile(path, dtype=np.int32).astype(np.int64)
    raise SystemExit(f"{path}: {size} bytes does not hold {n} uint8 or int32 labels")


def load(data_dir, max_base):
    xb = read_fvecs(os.path.join(data_dir, "base.fvecs"))
    xq = read_fvecs(os.path.join(data_dir, "query.fvecs"))
    yb = read_labels(os.path.join(data_dir, "base.labels"), len(xb))
    yq = read_labels(os.path.join(data_dir, "query.labels"), len(xq))
    if max_base and len(xb) > max_base:
        keep = np.random.default_rng(0).choice(len(xb), max_base, replace=False)
        keep.sort()
        xb, yb = xb[keep], yb[keep]
    scale = max(float(xb.max()), 1e-12)  # MNIST pixels are 0..255
    return xb / scale, yb, xq / scale, yq


# ---------------------------------------------------------------------------------------------------------- model
def make_model(torch, d_in, hidden, d_out):
    nn = torch.nn

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))

        def forward(self, x):
            return nn.functional.normalize(self.net(x), dim=-1)

    return Mlp()


def embed(torch, model, x, batch=8192):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch])).numpy())
    model.train()
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


# ------------------------------------------------------------------------------------------------------- negatives
def same_class_positive(rng, labels, anchors, by_class):
    """A random other item of the anchor's class for each anchor."""
    pos = np.empty(len(anchors), dtype=np.int64)
    for c, members in by_class.items():
        mask = labels[anchors] == c
        if not mask.any():
            continue
        pick = members[rng.integers(0, len(members), mask.sum())]
        clash = pick == anchors[mask]
        pick[clash] = members[(np.searchsorted(members, pick[clash]) + 1) % len(members)]
        pos[mask] = pick
    return pos


def nearest_same_class(x, labels, threads):
    """The designated positive of every item: its nearest other item of the same class (exact L2, engine Flat)."""
    pos = np.full(len(x), -1, dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        xc = np.ascontiguousarray(x[members])
        with minedex.Index("Flat", x.shape[1], "l2") as index:
            index.add(xc)
            _, ids = index.search(xc, 2, threads=threads)
        own = ids[:, 0] == np.arange(len(members))
        pos[members] = members[np.where(own, ids[:, 1], ids[:, 0])]
    return pos


def mine_epoch(args, strategy, emb, labels, anchors, positives, rng, epoch, log=None):
    """Negatives (len(anchors), M) for a mining strategy, from minedex indexes over the current embeddings.

    Rows the engine leaves short (the guards dropped every candidate down to the candidate depth) are filled with
    uniform random items; for `guarded`, short rows are first re-mined with the milder --guard-fallback-margin.
    Per-epoch counts go to stderr and, when `log` is a list, are appended to it as a dict."""
    m = args.negatives
    common = dict(range_min=0, range_max=args.window, seed=epoch, threads=args.threads, sampling="uniform")
    if strategy == "mined":
        return mine_labelled(args, emb, labels, anchors, positives, common)
    t0 = time.time()
    hub_s, fallback_rows = 0.0, 0
    with minedex.Index("Flat", emb.shape[1], "ip") as index:
        index.add(emb)  # ids = row numbers of the training corpus
        options = dict(common)
        if strategy == "guarded":
            options.update(guard_options(args, index, len(emb)))
            if args.hubness_gamma > 0:
                t1 = time.time()
                ids = np.arange(len(emb))
                occ, _ = index.hubness(ids, k=args.hub_k, sample_size=args.hub_sample, seed=epoch,
                                       threads=args.threads)
                options.update(hubness_gamma=args.hubness_gamma, k_occurrence=(ids, occ))
                hub_s = time.time() - t1
        neg, _, report = index.mine(positives[:, None], anchor_ids=anchors, num_negatives=m, shortfall="pad",
                                    **options)
        short_rows = np.flatnonzero((neg < 0).any(axis=1))
        if strategy == "guarded" and args.guard_fallback_margin >= 0 and len(short_rows):
            fallback = dict(options, relative_margin=args.guard_fallback_margin)
            extra, _, _ = index.mine(positives[short_rows, None], anchor_ids=anchors[short_rows], num_negatives=m,
                                     shortfall="pad", **fallback)
            for row, more in zip(short_rows, extra):
                have = [int(v) for v in neg[row] if v >= 0]
                add = [int(v) for v in more if v >= 0 and v not in have][:m - len(have)]
                neg[row, :len(have) + len(add)] = have + add
                fallback_rows += 1 if add else 0
    short = neg < 0  # still short: random items
    if short.any():
        neg[short] = rng.integers(0, len(labels), short.sum())
    sk, sf = report["skipped"], report["shortfall"]
    entry = {"strategy": strategy, "epoch": epoch + 1, "rows": len(anchors), "negatives": int(neg.size),
             "random_fill_rows": int(short.any(axis=1).sum()), "random_fill_negatives": int(short.sum()),
             "random_fill_share": round(float(short.mean()), 4), "padded_from_deeper_rows": sf["padded_rows"],
             "fallback_rows": fallback_rows, "skipped_margin": sk["margin"],
             "skipped_near_duplicates": sk["near_duplicates"], "false_negative_share":
                 round(float((labels[neg] == labels[anchors][:, None]).mean()), 4),
             "hubness_s": round(hub_s, 1), "mine_s": round(time.time() - t0, 1)}
    if log is not None:
        log.append(entry)
    print(f"    {strategy} epoch {epoch + 1}: {report['negatives_written']} negatives mined "
          f"({sf['padded_rows']} rows padded from deeper survivors, {fallback_rows} rows filled by the fallback "
          f"margin), skipped margin={sk['margin']} near-duplicates={sk['near_duplicates']}, random fills "
          f"{entry['random_fill_negatives']} negatives in {entry['random_fill_rows']} rows "
          f"(share {entry['random_fill_share']:.4f}), false negatives {entry['false_negative_share']:.4f}, "
          f"{entry['mine_s']:.1f} s (hubness {hub_s:.1f} s)", file=sys.stderr)
    return neg


def guard_options(args, index, n):
    """Mining options of the guarded strategy (each guard is off with a negative value)."""
    r0 = max(args.guard_range_min, 0)
    g = dict(range_min=r0, range_max=r0 + args.window, candidate_depth=r0 + args.window + args.guard_extra_depth)
    if args.guard_margin >= 0:
        g["relative_margin"] = args.guard_margin
    if args.guard_dup >= 0:
        g["duplicate_threshold"] = args.guard_dup
    return g


def mine_labelled(args, emb, labels, anchors, positives, common):
    """`mined`: every same-class item is a known positive. Per class c the engine mines in an index of the other
    classes' items plus this epoch's class-c designated positives, which are listed as positives of every class-c
    anchor, so no same-class item can be handed out."""
    neg = np.empty((len(anchors), args.negatives), dtype=np.int64)
    for c in np.unique(labels[anchors]):
        rows = np.flatnonzero(labels[anchors] == c)
        known = np.unique(positives[rows])
        pool = np.concatenate([np.flatnonzero(labels != c), known])
        with minedex.Index("Flat", emb.shape[1], "ip") as index:
            index.add(np.ascontiguousarray(emb[pool]), ids=pool)
            got, _, _ = index.mine([known] * len(rows), anchors=np.ascontiguousarray(emb[anchors[rows]]),
                                   num_negatives=args.negatives, shortfall="pad", **common)
        neg[rows] = got
    return neg


# --------------------------------------------------------------------------------------------------------- training
def train(args, torch, strategy, xtr, ytr, designated, log=None):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = make_model(torch, xtr.shape[1], args.hidden, args.dim)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    by_class = {c: np.flatnonzero(ytr == c) for c in np.unique(ytr)}
    xt = torch.from_numpy(xtr)
    tau = args.temperature
    false_neg = used = 0
    for epoch in range(args.epochs):
        t0 = time.time()
        pool = np.arange(len(xtr)) if designated is None else np.flatnonzero(designated >= 0)
        anchors = rng.choice(pool, min(args.anchors_per_epoch, len(pool)), replace=False)
        if designated is not None:
            positives = designated[anchors]
        else:
            positives = same_class_positive(rng, ytr, anchors, by_class)
        negatives = None
        if strategy == "random" or (strategy != "in_batch" and epoch < args.warmup_epochs):
            negatives = rng.integers(0, len(xtr), (len(anchors), args.negatives))
        elif strategy != "in_batch":
            emb = embed(torch, model, xtr)
            negatives = mine_epoch(args, strategy, emb, ytr, anchors, positives, rng, epoch, log)
        if negatives is not None:
            false_neg += int((ytr[negatives] == ytr[anchors][:, None]).sum())
            used += negatives.size
        total = 0.0
        for b in range(0, len(anchors), args.batch):
            a_idx, p_idx = anchors[b:b + args.batch], positives[b:b + args.batch]
            a, p = model(xt[a_idx]), model(xt[p_idx])
            if negatives is None:  # in-batch: the other positives are the negatives
                logits = a @ p.T / tau
                target = torch.arange(len(a_idx))
                same = torch.from_numpy(ytr[a_idx][:, None] == ytr[p_idx][None, :])
                false_neg += int(same.sum()) - len(a_idx)
                used += len(a_idx) * (len(a_idx) - 1)
            else:
                n_idx = negatives[b:b + args.batch]
                n = model(xt[n_idx.reshape(-1)]).reshape(len(a_idx), n_idx.shape[1], -1)
                logits = torch.cat([(a * p).sum(-1, keepdim=True), torch.einsum("bd,bmd->bm", a, n)], dim=1) / tau
                target = torch.zeros(len(a_idx), dtype=torch.long)
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(a_idx)
        print(f"  {strategy} epoch {epoch + 1}/{args.epochs}: loss {total / len(anchors):.4f} "
              f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return model, (false_neg / used if used else 0.0)


def precision_at_10(torch, model, xb, yb, xq, yq, threads):
    eb, eq = embed(torch, model, xb), embed(torch, model, xq)
    with minedex.Index("Flat", eb.shape[1], "ip") as index:
        index.add(eb)
        _, ids = index.search(eq, 10, threads=threads)
    return float((yb[ids] == yq[:, None]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory with base/query .fvecs and .labels")
    ap.add_argument("--eval", choices=["test", "classes"], default="test",
                    help="test: held-out query split among all training items; classes: held-out classes")
    ap.add_argument("--holdout", default="7,8,9", help="--eval classes: classes kept out of training")
    ap.add_argument("--positive", choices=["nearest", "random"], default="nearest",
                    help="the one known positive: nearest same-class item in the input space (fixed), or a random "
                         "same-class item drawn every epoch")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--anchors-per-epoch", type=int, default=10000)
    ap.add_argument("--warmup-epochs", type=int, default=1,
                    help="mining strategies train on random negatives for this many epochs before mining starts")
    ap.add_argument("--negatives", type=int, default=8, help="negatives per anchor (M)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--window", type=int, default=50, help="mining: size of the rank window over survivors")
    ap.add_argument("--guard-margin", type=float, default=GUARD["margin"],
                    help="guarded: relative margin, drop candidates scoring above pos - |pos|*m (negative = off)")
    ap.add_argument("--guard-range-min", type=int, default=GUARD["range_min"],
                    help="guarded: skip this many best surviving candidates")
    ap.add_argument("--guard-dup", type=float, default=GUARD["dup"],
                    help="guarded: near-duplicate cosine to the positive (negative = off)")
    ap.add_argument("--guard-extra-depth", type=int, default=GUARD["extra_depth"],
                    help="guarded: candidates fetched beyond the window, for padding rows the guards empty")
    ap.add_argument("--guard-fallback-margin", type=float, default=GUARD["fallback_margin"],
                    help="guarded: rows still short after padding are re-mined with this milder relative margin "
                         "before random items fill them (negative = off)")
    ap.add_argument("--hubness-gamma", type=float, default=GUARD["hubness_gamma"],
                    help="guarded: hubness-aware sampling, weight max(N_k, 1)^-gamma (0 = off)")
    ap.add_argument("--hub-k", type=int, default=GUARD["hub_k"], help="guarded: k of the k-occurrence N_k")
    ap.add_argument("--hub-sample", type=int, default=GUARD["hub_sample"],
                    help="guarded: N_k from a seeded sample of this many training items as queries (0 = all)")
    ap.add_argument("--max-base", type=int, default=0, help="subsample the base set (0 = all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads or os.cpu_count() or 1)

    start = time.time()
    xb, yb, xq, yq = load(args.data, args.max_base)
    if args.eval == "classes":
        holdout = np.array([int(c) for c in args.holdout.split(",") if c.strip()], dtype=np.int64)
        train_mask = ~np.isin(yb, holdout)
        xtr, ytr = np.ascontiguousarray(xb[train_mask]), yb[train_mask]
        xb_e, yb_e = np.ascontiguousarray(xb[~train_mask]), yb[~train_mask]
        eval_q = np.isin(yq, holdout)
        xq_e, yq_e = np.ascontiguousarray(xq[eval_q]), yq[eval_q]
        what = f"held-out classes {holdout.tolist()}"
    else:
        xtr, ytr, xb_e, yb_e, xq_e, yq_e = xb, yb, xb, yb, xq, yq
        what = "all training items"
    if len(xtr) == 0 or len(xb_e) == 0 or len(xq_e) == 0:
        raise SystemExit("--holdout leaves no training or no evaluation data")
    designated = None
    if args.positive == "nearest":
        t0 = time.time()
        designated = nearest_same_class(xtr, ytr, args.threads)
        print(f"designated positives (nearest same-class item) in {time.time() - t0:.1f} s", file=sys.stderr)
    print(f"train {len(xtr)} vectors ({len(np.unique(ytr))} classes), evaluate {len(xq_e)} held-out queries among "
          f"{len(xb_e)} base vectors ({what})", file=sys.stderr)

    result, fn_share, mining_log = {}, {}, []
    for strategy in [s.strip() for s in args.strategies.split(",") if s.strip()]:
        if strategy not in STRATEGIES:
            raise SystemExit(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
        t0 = time.time()
        model, share = train(args, torch, strategy, xtr, ytr, designated, mining_log)
        result[strategy] = round(precision_at_10(torch, model, xb_e, yb_e, xq_e, yq_e, args.threads), 4)
        fn_share[strategy] = round(share, 4)
        print(f"{strategy}: held-out precision@10 {result[strategy]:.4f}, false-negative share {share:.4f} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)
    result["false_negative_share"] = {k: fn_share[k] for k in ("mined_unlabelled", "guarded") if k in fn_share}
    for e in mining_log:
        print(f"mining log: {json.dumps(e)}", file=sys.stderr)
    print(f"false-negative share of every strategy: {json.dumps(fn_share)}; total {time.time() - start:.0f} s",
          file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
