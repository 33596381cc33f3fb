#!/usr/bin/env python3
"""Instance-level retrieval on MNIST: does engine-mined hard negatives beat in-batch training? (issue 15, section 4)

Task: a distorted copy of an image (shift <= 2 px, an erased 8x8 patch, intensity x 0.7-1.3, Gaussian noise
sigma 0.1) must retrieve its clean source. Training pairs: (distorted train image, clean train image), fresh
distortions every epoch. Evaluation: distorted copies of the 10 000 test images (a fixed distortion seed that no
training run uses) search the 10 000 clean test images; recall@1.

Encoder: MLP 784 -> 256 -> 64, L2-normalised, InfoNCE (MultipleNegativesRankingLoss) with temperature --tau.
Every strategy uses the in-batch negatives (the other positives of the batch); extra negatives (one per anchor) are
appended to the candidate set and shared across the batch, as sentence-transformers does with (anchor, positive,
negative) triplets:

  in_batch               no extra negatives
  in_batch_random        + one uniformly random clean image per anchor
  in_batch_mined         + one engine-mined negative per anchor, ranks --range-min..--range-max (top of window),
                         re-mined every epoch with the current encoder on an exact ("Flat") index
  in_batch_mined_far     the same from a farther window (--far-range, default ranks 10-100, random in the window)
  in_batch_mined_margin  + relative margin --relative-margin (negatives at most (1 - m) x the positive's score)
  in_batch_curriculum    random negatives for --warmup epochs, then mined (ranks --range-min..--range-max)
  in_batch_refresher     mined through minedex.Refresher on an ANN index (--ann, --ann-probes) with no extra forward
                         pass: every step pushes its positives' embeddings (computed for the loss anyway) into the
                         refresher, each epoch swaps in the snapshot of everything pushed and re-embeds only what the
                         staleness bound (--max-staleness) needs; queries are the anchors' embeddings of the last
                         epoch (the same images, last epoch's distortion). --warmup epochs of random negatives first
                         (they fill the bank; 0 = one embedding pass to start). --fresh-queries embeds this epoch's
                         anchors for mining instead (one forward pass); --online mines every step with that step's
                         anchor embeddings (no forward pass, one small search per step); --online-async searches for
                         the next batch in a background thread during the current step (a no-grad forward of its
                         anchors); --mine-ahead M searches for M batches per background call; --overlap searches
                         with this step's anchor embeddings in the background while the positives are embedded;
                         --refresh-every N also swaps in a snapshot built in the background every N steps;
                         --background-embed moves the no-grad embedding of the async mode into the worker thread
  in_batch_clustered     batches made of k-NN neighbourhoods (--group images each) of the bank, from the second
                         epoch: every in-batch negative is a near neighbour (no extra negatives)
  in_batch_random_bank_mined   in_batch_random + --bank-negatives per-anchor negatives mined from the bank, scored
                         with their bank embeddings (no gradient through them, no forward pass)
  in_batch_random_bank_random  the same with random bank entries (the control)

Selection options of the mined strategies (all but in_batch_mined_far): --sampling top (default) / random / simans /
softmax picks the negatives from the rank window (the miner's sampling_strategy, with --temperature, --simans-a,
--simans-b), --max-hand-outs c hands each clean image out at most c times per mining call, --handout-gamma g (online
refresher, sampling other than top) weights each candidate by its hand-outs so far in the epoch to the power -g (the
miner's hubness_gamma); --verbose-handouts logs per epoch how the hand-outs spread over the images. --tau is the loss
temperature of every strategy (each strategy has its own best: docs/training.md, tenth run).

Tuning protocol: --validation N trains on all but the last N training images and evaluates on those (distortion seed
--eval-seed + 1); the test images are then never read. Choose options that way, then run once on the test images.

Output: progress on stderr, then ONE JSON line on stdout:
  {"in_batch": r@1, "in_batch_random": ..., ..., "per_seed": {strategy: [r@1 per seed]}, "seeds": [...],
   "timing": {strategy: {"total_s": s, "mining_s": s}}, ...}
where r@1 is the mean over --seeds and the timings are summed over seeds.

  /usr/bin/python3 bindings/python/examples/train_instance.py --data /tmp/mnist --epochs 3

Where mining pays (docs/training.md, eighth run: +4.1 points over one random negative per anchor, +2.4 with seven
extra negatives of which three mined, at 5-7 % of the training thread's time), chosen with --validation:

  /usr/bin/python3 bindings/python/examples/train_instance.py --data /tmp/mnist --epochs 3 --seeds 1,2,3 \
      --encoder cnn --batch 64 --warmup 0 --online --online-async --background-embed --retrain-every 0 \
      --ann IVF1024,Flat --ann-probes 8 --threads 2 --strategies in_batch_random,in_batch_refresher

and against the strongest baseline found (tenth run: fifteen random negatives per anchor at their best temperature,
0.6741) three mined + twelve random at a lower temperature score 0.6984 (+2.4, seeds 1-7, 3-4 % mining):

  COMMON="--data /tmp/mnist --epochs 3 --seeds 1,2,3,4,5,6,7 --encoder cnn --batch 64 --warmup 0 --online --online-async \
      --background-embed --retrain-every 0 --ann IVF1024,Flat --ann-probes 8 --threads 2 --extra-negatives 15"
  /usr/bin/python3 bindings/python/examples/train_instance.py $COMMON --strategies in_batch_random --tau 0.07
  /usr/bin/python3 bindings/python/examples/train_instance.py $COMMON --strategies in_batch_refresher --tau 0.05 \
      --mined-per-anchor 3 --refresh-every 200

Data: --data DIR with base.fvecs (training images) and query.fvecs (test images), raw 0-255 pixels (as
`engine data fetch mnist --out DIR` writes them). Needs numpy, torch and minedex (installed, or the source tree with
MINEDEX_LIBRARY pointing at libengine.so).
"""
import argparse
import concurrent.futures
import copy as copy_module
import json
import os
import sys
import time

import numpy as np
import torch

try:
    import minedex
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import minedex

STRATEGIES = ("in_batch", "in_batch_random", "in_batch_mined", "in_batch_mined_far", "in_batch_mined_margin",
              "in_batch_curriculum", "in_batch_refresher", "in_batch_clustered", "in_batch_random_bank_mined",
              "in_batch_random_bank_random")


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError(f"{path} is empty.")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise ValueError(f"{path} is not an fvecs file (dimension {d}, {raw.size} words).")
    return raw.view(np.float32).reshape(-1, d + 1)[:, 1:].copy()


def distort(images, rng):
    """Distorted copies of (n, 784) images in [0, 1]: shift <= 2 px, erased 8x8 patch, intensity x U(0.7, 1.3),
    Gaussian noise sigma 0.1."""
    n = images.shape[0]
    x = images.reshape(n, 28, 28)
    out = np.zeros_like(x)
    dy = rng.integers(-2, 3, n)
    dx = rng.integers(-2, 3, n)
    for sy in range(-2, 3):
        for sx in range(-2, 3):
            sel = np.nonzero((dy == sy) & (dx == sx))[0]
            if sel.size == 0:
                continue
            ys, yd = (slice(0, 28 - sy), slice(sy, 28)) if sy >= 0 else (slice(-sy, 28), slice(0, 28 + sy))
            xs, xd = (slice(0, 28 - sx), slice(sx, 28)) if sx >= 0 else (slice(-sx, 28), slice(0, 28 + sx))
            out[sel[:, None, None], np.arange(28)[yd][None, :, None], np.arange(28)[xd][None, None, :]] = \
                x[sel][:, ys, xs]
    py = rng.integers(0, 21, n)
    px = rng.integers(0, 21, n)
    rows = np.arange(8)
    out[np.arange(n)[:, None, None], (py[:, None] + rows)[:, :, None], (px[:, None] + rows)[:, None, :]] = 0.0
    out *= rng.uniform(0.7, 1.3, n).astype(np.float32)[:, None, None]
    out += rng.normal(0.0, 0.1, out.shape).astype(np.float32)
    return out.reshape(n, 784).astype(np.float32)


class Encoder(torch.nn.Module):
    """MLP 784 -> 256 -> 64, or (kind "cnn") a small CNN: two 3x3 stride-2 convolutions (16 and 32 channels, ReLU) and
    a linear map of the 32 x 7 x 7 features to 64 (about 1.6x the MLP's multiply-adds per image)."""
    def __init__(self, kind="mlp"):
        super().__init__()
        self.kind = kind
        if kind == "cnn":
            self.net = torch.nn.Sequential(
                torch.nn.Unflatten(1, (1, 28, 28)),
                torch.nn.Conv2d(1, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
                torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
                torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 64))
        elif kind == "mlp":
            self.net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
        else:
            raise ValueError(f"unknown encoder '{kind}' (mlp or cnn)")

    def forward(self, x):
        return torch.nn.functional.normalize(self.net(x), dim=1)


# No-grad embedding batch per encoder: torch's CPU convolutions slow down ~10x once a batch's activations leave the
# cache (the CNN over 50 000 images: 5.5-7 s in batches of 4 096, 0.4-0.7 s in batches of 512-1 024, 2 threads),
# while the MLP's matrix products want the largest batch (0.25 s at 4 096, 0.5 s at 1 024).
EMBED_BATCH = {"cnn": 1024, "mlp": 4096}


def embed(model, x, batch=None):
    batch = batch or EMBED_BATCH[model.kind]
    model.eval()
    with torch.no_grad():
        parts = [model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)]
    model.train()
    return torch.cat(parts).numpy()


def recall_at_1(model, clean, distorted):
    g = torch.from_numpy(embed(model, clean))
    q = torch.from_numpy(embed(model, distorted))
    hits = 0
    for i in range(0, len(q), 2048):
        best = (q[i:i + 2048] @ g.T).argmax(dim=1)
        hits += int((best == torch.arange(i, min(i + 2048, len(q)))).sum())
    return hits / len(q)


def mined_negatives(negatives, n, rng, k=1, mined=0):
    """(rows, k) extra negatives: the first `mined` columns of the mined ids (all k when 0), the rest uniformly random;
    slots whose window ran short get a random image too (counted)."""
    m = k if mined <= 0 else min(mined, k)
    got = np.asarray(negatives)[:, :m]
    neg = np.concatenate([got, rng.integers(0, n, (got.shape[0], k - m))], axis=1) if m < k else got.copy()
    short = neg[:, :m] < 0
    neg[:, :m][short] = rng.integers(0, n, int(short.sum()))
    return neg, int(short.sum())


def sampling_opts(args, seed):
    """The miner's selection options of the mined strategies (except in_batch_mined_far, random in its window):
    --sampling top / random / simans / softmax, with --temperature (softmax), --simans-a / --simans-b (SimANS), and the
    per-call hand-out cap --max-hand-outs (0 = none)."""
    opts = {"sampling_strategy": args.sampling, "seed": seed}
    if args.sampling == "softmax":
        opts["temperature"] = args.temperature
    if args.sampling == "simans":
        opts.update(simans_a=args.simans_a, simans_b=args.simans_b)
    if args.max_hand_outs > 0:
        opts["max_hand_outs_per_item"] = args.max_hand_outs
    return opts


def clustered_order(neighbors, group, rng):
    """A permutation of 0..n-1 made of neighbourhoods: seeds in random order, each followed by up to group - 1 of
    its not yet placed k-NN neighbours; the groups are shuffled, so consecutive batches hold several of them."""
    n = neighbors.shape[0]
    placed = np.zeros(n, dtype=bool)
    groups = []
    for s in rng.permutation(n):
        if placed[s]:
            continue
        nb = neighbors[s]
        nb = nb[(nb >= 0)]
        nb = nb[~placed[nb]][:group - 1]
        g = np.concatenate(([s], nb))
        placed[g] = True
        groups.append(g)
    return np.concatenate([groups[i] for i in rng.permutation(len(groups))])


def train(strategy, seed, train_x, test_x, test_q, args, log):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(train_x)
    K = args.extra_negatives
    model = Encoder(args.encoder)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    positives = np.arange(n, dtype=np.int64)
    mining_s = 0.0
    refresher = None
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # --online-async: one search ahead

    def mine_batch(queries, ids, at, b):  # --online: one batch's anchors against the refresher's current snapshot
        opts = {k: v for k, v in mine_opts.items() if k not in ("metric", "threads")}  # the current epoch's
        opts["seed"] = mine_opts["seed"] * 100_000 + b  # a fresh sampling stream per batch
        if args.handout_gamma > 0:  # images handed out often this epoch are sampled less: weight count ** -gamma
            seen = np.flatnonzero(handouts)
            opts.update(hubness_gamma=args.handout_gamma, k_occurrence=(seen, handouts[seen]))
        return refresher.mine(queries, positives[ids], step=at, range_min=args.range_min, range_max=args.range_max,
                              search_params={"probes": args.ann_probes}, **opts,
                              threads=1)  # one small search: a second thread only contends with torch's
    def embed_and_mine(copy, rows, ids, b):  # --background-embed: the worker thread embeds the anchors too
        with torch.no_grad():
            q = copy(torch.from_numpy(rows))
        return mine_batch(q, ids, None, b)
    mining_model = copy_module.deepcopy(model) if args.background_embed else None
    step = 0
    mined_cols = K if args.mined_per_anchor <= 0 else min(K, args.mined_per_anchor)  # the mined columns of a row
    handouts = np.zeros(n, dtype=np.int64)  # --handout-gamma: mined hand-outs per image in the current epoch

    def count_handouts(rows):  # only --handout-gamma reads the running counts
        if args.handout_gamma > 0:
            got = negatives[rows, :mined_cols]
            np.add.at(handouts, got[got >= 0], 1)
    # The embeddings the training steps compute anyway, kept for strategies that mine without re-embedding: every
    # clean image is a positive once per epoch (bank), every anchor once per epoch (anchor_bank, last epoch's
    # distortion). At most one epoch stale, and free: no extra forward pass.
    keeps_bank = strategy in ("in_batch_refresher", "in_batch_clustered") or "bank" in strategy
    bank = np.zeros((n, 64), dtype=np.float32) if keeps_bank else None
    anchor_bank = np.zeros((n, 64), dtype=np.float32) if strategy == "in_batch_refresher" else None
    start = time.perf_counter()
    for epoch in range(args.epochs):
        anchors = distort(train_x, rng)
        negatives, bank_neg, order = None, None, None
        handouts[:] = 0
        mine_opts = dict(metric="ip", num_negatives=mined_cols, verbose=False, seed=seed * 1000 + epoch, threads=args.threads)
        mine_opts.update(sampling_opts(args, seed * 1000 + epoch))
        t0 = time.perf_counter()
        warm = epoch < args.warmup
        if strategy in ("in_batch_random", "in_batch_random_bank_mined", "in_batch_random_bank_random") or \
                (strategy in ("in_batch_curriculum", "in_batch_refresher") and warm):
            negatives = rng.integers(0, n, (n, K))
        elif strategy in ("in_batch_mined", "in_batch_curriculum", "in_batch_mined_margin", "in_batch_mined_far"):
            q = embed(model, anchors)
            c = embed(model, train_x)
            lo, hi = (args.far_range if strategy == "in_batch_mined_far" else (args.range_min, args.range_max))
            extra = {"relative_margin": args.relative_margin} if strategy == "in_batch_mined_margin" else {}
            if strategy == "in_batch_mined_far":
                extra["sampling_strategy"] = "random"
            found = minedex.mine_hard_negatives(
                q, c, positives, index="Flat", range_min=lo, range_max=hi, **dict(mine_opts, **extra))
            negatives, short = mined_negatives(found.negatives, n, rng, K, args.mined_per_anchor)
            log(f"  {strategy} seed {seed} epoch {epoch}: mined, {short} short rows filled at random")
        elif strategy == "in_batch_refresher":
            if refresher is None:  # the first snapshot: the bank the warm-up epochs filled (or, without warm-up, one
                if epoch == 0:     # embedding pass over the corpus and the anchors)
                    bank[:] = embed(model, train_x)
                    if not args.online and not args.fresh_queries:  # epoch 0's queries (online modes embed their own)
                        anchor_bank[:] = embed(model, anchors)
                # step 0: the bank was filled over the warm-up steps, so its vectors count as old as the first one
                refresher = minedex.Refresher(bank, index=args.ann, metric="ip", max_staleness=args.max_staleness, step=0,
                                              retrain_every=None if args.retrain_every == 0 else args.retrain_every)
            else:
                # vectors the steps did not refresh (the batches leave n % batch images out each epoch) would break
                # the staleness bound during the coming epoch: re-embed them now, oldest first, as the protocol says
                late = refresher.overdue(step + n // args.batch)
                if late:
                    ids = refresher.due(late)
                    refresher.push(ids, embed(model, train_x[ids]), step)
                # swap in the snapshot holding every vector pushed so far; --refresh-nowait: built in the background
                # while the first steps of the epoch still mine on the previous one (the online modes only), unless
                # the previous one would break the staleness bound within the next step
                too_old = step + 1 - refresher.snapshot.oldest > args.max_staleness
                refresher.refresh(wait=not (args.refresh_nowait and args.online) or too_old)
            if args.online:  # mined per step below, from the anchors' embeddings of that step
                mining_s += time.perf_counter() - t0
                t0 = None
            queries = anchor_bank if args.online else embed(model, anchors) if args.fresh_queries else anchor_bank
            found = None if args.online else refresher.mine(queries, positives, step=step, range_min=args.range_min, range_max=args.range_max,
                                   search_params={"probes": args.ann_probes},
                                   **{k: v for k, v in mine_opts.items() if k != "metric"})
            if found is not None:
                negatives, short = mined_negatives(found.negatives, n, rng, K, args.mined_per_anchor)
                log(f"  {strategy} seed {seed} epoch {epoch}: snapshot {refresher.snapshot.number}, max staleness "
                    f"{int(np.max(found.staleness)) if len(found.staleness) else 0} steps, {short} short rows")
            else:
                negatives = np.full((n, K), -1, dtype=np.int64)
        if strategy == "in_batch_clustered" and epoch > 0:
            nb, _, _ = minedex.knn_graph(bank, args.group - 1, metric="ip", threads=args.threads)
            order = clustered_order(nb, args.group, rng)
        if strategy == "in_batch_random_bank_mined" and epoch > 0:
            found = minedex.mine_hard_negatives(
                bank, bank, positives, index=args.ann, search_params={"probes": args.ann_probes},
                range_min=args.range_min, range_max=args.range_max,
                **dict(mine_opts, num_negatives=args.bank_negatives))
            bank_neg = np.asarray(found.negatives)
            short = bank_neg < 0
            bank_neg[short] = rng.integers(0, n, int(short.sum()))
        elif strategy == "in_batch_random_bank_random" and epoch > 0:
            bank_neg = rng.integers(0, n, (n, args.bank_negatives))
        if t0 is not None:
            mining_s += time.perf_counter() - t0
        if order is None:
            order = rng.permutation(n)
        pending = None  # --online-async: the search started for the batch at offset b (this step's)
        for b in range(0, n - args.batch + 1, args.batch):
            idx = order[b:b + args.batch]
            a = model(torch.from_numpy(anchors[idx]))
            if refresher is not None and args.online and not args.overlap:  # this step's anchors query the snapshot
                t0 = time.perf_counter()
                if args.online_async:
                    # The search for this group of --mine-ahead batches ran in the background during the previous
                    # group's steps (no-grad embeddings of its anchors with the model of then); at a group's first
                    # step, collect it and start the next group's search, to run under this group's steps. With
                    # --background-embed the worker also embeds the next anchors, with a copy of the model as of now
                    # (the same weights); the copy is refreshed only here, after the one task that read it was
                    # collected. (Two groups ahead was tried: queries one step staler cost the whole lead over
                    # random negatives.)
                    group = args.batch * args.mine_ahead
                    if b % group == 0:
                        ids = order[b:b + group]
                        ids = ids[:len(ids) - len(ids) % args.batch]  # whole batches only
                        if pending is not None:
                            found = pending.result()
                        else:  # an epoch's first group: nothing was started for it
                            with torch.no_grad():
                                found = mine_batch(model(torch.from_numpy(anchors[ids])), ids, step, b)
                        negatives[ids], _ = mined_negatives(found.negatives, n, rng, K, args.mined_per_anchor)
                        count_handouts(ids)
                        nxt = order[b + group:b + 2 * group]
                        nxt = nxt[:len(nxt) - len(nxt) % args.batch]
                        pending = None
                        if len(nxt) and args.background_embed:
                            with torch.no_grad():
                                for pc, pm in zip(mining_model.parameters(), model.parameters()):
                                    pc.copy_(pm)
                            pending = executor.submit(embed_and_mine, mining_model, anchors[nxt], nxt, b + group)
                        elif len(nxt):
                            with torch.no_grad():
                                q_next = model(torch.from_numpy(anchors[nxt]))
                            # step None: staleness is measured at the latest pushed step when the search runs (this
                            # step's push may land first; an explicit, older step would then be rejected)
                            pending = executor.submit(mine_batch, q_next, nxt, None, b + group)
                else:
                    found = mine_batch(a.detach(), idx, step, b)
                    negatives[idx], _ = mined_negatives(found.negatives, n, rng, K, args.mined_per_anchor)
                    count_handouts(idx)
                mining_s += time.perf_counter() - t0
            if refresher is not None and args.online and args.overlap:
                # this step's anchor embeddings (computed for the loss anyway, no extra forward pass) search in the
                # background while the positives go through the model; the mined images follow in a second forward
                t0 = time.perf_counter()
                pending = executor.submit(mine_batch, a.detach(), idx, step, b)
                mining_s += time.perf_counter() - t0
                p_pos = model(torch.from_numpy(train_x[idx]))
                t0 = time.perf_counter()
                found = pending.result()
                negatives[idx], _ = mined_negatives(found.negatives, n, rng, K, args.mined_per_anchor)
                count_handouts(idx)
                mining_s += time.perf_counter() - t0
                p = torch.cat([p_pos, model(torch.from_numpy(train_x[negatives[idx].reshape(-1)]))])
            else:
                cand = [train_x[idx]]
                if negatives is not None:
                    cand.append(train_x[negatives[idx].reshape(-1)])
                p = model(torch.from_numpy(np.concatenate(cand)))
            logits = a @ p.T / args.tau
            if negatives is not None:  # a mined or random image equal to another anchor's positive is not a negative
                dup = torch.from_numpy(negatives[idx].reshape(-1)[None, :] == idx[:, None])
                logits[:, len(idx):] = logits[:, len(idx):].masked_fill(dup, float("-inf"))
            if bank_neg is not None:  # per-anchor negatives from the bank: stale embeddings, no gradient through them
                bn = torch.from_numpy(bank[bank_neg[idx]])
                extra = torch.einsum("bd,bmd->bm", a, bn) / args.tau
                extra = extra.masked_fill(torch.from_numpy(bank_neg[idx] == idx[:, None]), float("-inf"))
                logits = torch.cat([logits, extra], dim=1)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if bank is not None:
                bank[idx] = p[:len(idx)].detach().numpy()
            if anchor_bank is not None:
                anchor_bank[idx] = a.detach().numpy()
            if refresher is not None:  # the positives' fresh embeddings go to the live table (no forward pass)
                t0 = time.perf_counter()
                # --refresh-every N: every N steps a snapshot of everything pushed so far is built in the background
                # and swapped in when ready (mining meanwhile stays on the current one)
                refresher.push(idx, bank[idx], step, refresh=args.refresh_every > 0 and step % args.refresh_every == 0)
                mining_s += time.perf_counter() - t0
        if negatives is not None and args.verbose_handouts:  # how concentrated the epoch's (mined) negatives were
            ho = negatives[order[:n - n % args.batch], :mined_cols]
            counts = np.bincount(ho[ho >= 0], minlength=n)
            top = np.sort(counts)[-max(1, n // 100):].sum()
            log(f"  {strategy} seed {seed} epoch {epoch}: {counts.sum()} hand-outs to {np.count_nonzero(counts)} "
                f"images, max {counts.max()} per image, top 1 % of images get {top / max(1, counts.sum()):.1%}")
    if refresher is not None:
        refresher.close()
    executor.shutdown()
    total = time.perf_counter() - start
    r1 = recall_at_1(model, test_x, test_q)
    log(f"{strategy} seed {seed}: recall@1 {r1:.4f}, {total:.1f} s (mining/refresh {mining_s:.1f} s)")
    return r1, total, mining_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="1,2", help="comma-separated training seeds (results are their mean)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--train-limit", type=int, default=0, help="use only the first N training images (0 = all)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--range-min", type=int, default=0)
    ap.add_argument("--range-max", type=int, default=32)
    ap.add_argument("--far-range", default="10:100")
    ap.add_argument("--relative-margin", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=1, help="random-negative epochs of the curriculum")
    ap.add_argument("--group", type=int, default=32, help="neighbourhood size of the clustered batches")
    ap.add_argument("--extra-negatives", type=int, default=1,
                    help="extra negatives per anchor (random or mined, by strategy), all shared across the batch")
    ap.add_argument("--mined-per-anchor", type=int, default=0,
                    help="mined strategies: how many of the --extra-negatives are mined (0 = all); the rest are random")
    ap.add_argument("--encoder", default="mlp", choices=("mlp", "cnn"))
    ap.add_argument("--bank-negatives", type=int, default=16, help="per-anchor negatives taken from the embedding bank")
    ap.add_argument("--online", action="store_true",
                    help="in_batch_refresher: mine every step with that step's anchor embeddings (no extra forward pass)")
    ap.add_argument("--online-async", action="store_true",
                    help="with --online: search for the next batch in a background thread while this one trains "
                         "(its anchors embedded without gradient by the model of the step before)")
    ap.add_argument("--overlap", action="store_true",
                    help="with --online: search with this step's anchor embeddings in a background thread while the "
                         "positives go through the model, then embed the mined images (no no-grad forward pass)")
    ap.add_argument("--refresh-every", type=int, default=0,
                    help="in_batch_refresher: also start a background refresh every N steps (0 = only at epoch starts)")
    ap.add_argument("--background-embed", action="store_true",
                    help="with --online-async: the worker thread also embeds the next anchors (with a copy of the "
                         "model), so the training step only collects the mined negatives")
    ap.add_argument("--refresh-nowait", action="store_true",
                    help="with --online: the epoch-start refresh does not wait; mining uses the previous snapshot until "
                         "the new one is swapped in")
    ap.add_argument("--mine-ahead", type=int, default=1,
                    help="with --online-async: mine this many batches per background search (one call per group, "
                         "queries embedded when the previous group starts)")
    ap.add_argument("--fresh-queries", action="store_true",
                    help="in_batch_refresher: embed this epoch's anchors for mining (default: last epoch's, from the steps)")
    ap.add_argument("--ann", default="IVF256,Flat")
    ap.add_argument("--ann-probes", type=int, default=16)
    ap.add_argument("--retrain-every", type=int, default=1,
                    help="in_batch_refresher: train the ANN index (k-means) afresh every k-th snapshot, the others "
                         "reuse the last training (0 = train only the first)")
    ap.add_argument("--max-staleness", type=int, default=0,
                    help="staleness bound in steps for the refresher (0 = 2 epochs' worth of steps)")
    ap.add_argument("--sampling", default="top", choices=("top", "random", "simans", "softmax"),
                    help="mined strategies: how negatives are picked from the rank window (the miner's sampling_strategy)")
    ap.add_argument("--temperature", type=float, default=0.05, help="--sampling softmax: p ~ exp(score / T)")
    ap.add_argument("--simans-a", type=float, default=3.0, help="--sampling simans: p ~ exp(-a |s - s_pos - b|)")
    ap.add_argument("--simans-b", type=float, default=0.0)
    ap.add_argument("--max-hand-outs", type=int, default=0,
                    help="mined strategies: hand each clean image out as a negative at most this often per mining call")
    ap.add_argument("--validation", type=int, default=0,
                    help="tuning mode: hold out the last N training images and evaluate on them (distortion seed "
                         "--eval-seed + 1) instead of the test images, which are then never read")
    ap.add_argument("--eval-seed", type=int, default=20260)
    ap.add_argument("--threads", type=int, default=1, help="torch and engine threads")
    ap.add_argument("--handout-gamma", type=float, default=0.0,
                    help="online refresher: weight each candidate by (its mined hand-outs so far this epoch) ** -gamma "
                         "(the miner's hubness_gamma; needs --sampling random, simans or softmax)")
    ap.add_argument("--verbose-handouts", action="store_true",
                    help="log per epoch how the extra negatives' hand-outs spread over the images (first --mined-per-anchor columns)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    lo, hi = args.far_range.split(":")
    args.far_range = (int(lo), int(hi))
    seeds = [int(s) for s in args.seeds.split(",")]
    strategies = args.strategies.split(",")
    for s in strategies:
        if s not in STRATEGIES:
            raise SystemExit(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    if args.overlap and (not args.online or args.online_async):
        raise SystemExit("--overlap needs --online and excludes --online-async")
    if args.background_embed and not args.online_async:
        raise SystemExit("--background-embed needs --online --online-async")
    if args.refresh_nowait and not args.online:
        raise SystemExit("--refresh-nowait needs --online (epoch-level mining needs the new snapshot at once)")
    if args.refresh_every < 0:
        raise SystemExit("--refresh-every must be >= 0")
    if args.mine_ahead < 1:
        raise SystemExit("--mine-ahead must be at least 1")
    if args.handout_gamma < 0 or not np.isfinite(args.handout_gamma):
        raise SystemExit("--handout-gamma must be a finite number >= 0")
    if args.handout_gamma > 0 and (not args.online or args.sampling == "top"):
        raise SystemExit("--handout-gamma needs --online and --sampling random, simans or softmax (top ignores weights)")
    if args.tau <= 0 or not np.isfinite(args.tau):
        raise SystemExit("--tau must be a finite number > 0")
    if args.eval_seed in seeds or (args.validation and args.eval_seed + 1 in seeds):
        raise SystemExit("--eval-seed must differ from the training seeds")
    train_x = read_fvecs(os.path.join(args.data, "base.fvecs")) / np.float32(255.0)
    test_x = read_fvecs(os.path.join(args.data, "query.fvecs")) / np.float32(255.0)
    if train_x.shape[1] != 784 or test_x.shape[1] != 784:
        raise SystemExit("expected 784-dimensional MNIST images")
    eval_seed = args.eval_seed
    if args.validation:  # options are chosen on held-out training images; the test images stay unseen
        if not 0 < args.validation < len(train_x):
            raise SystemExit(f"--validation must be in 1..{len(train_x) - 1}")
        train_x, test_x = train_x[:-args.validation], train_x[-args.validation:]
        eval_seed += 1
    if args.train_limit:
        train_x = train_x[:args.train_limit]
    train_x = np.ascontiguousarray(train_x, dtype=np.float32)
    test_x = np.ascontiguousarray(test_x, dtype=np.float32)
    if args.max_staleness == 0:
        args.max_staleness = 2 * (len(train_x) // args.batch)
    test_q = distort(test_x, np.random.default_rng(eval_seed))

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    result = {"per_seed": {}, "timing": {}}
    for s in strategies:
        rs, tot, mine = [], 0.0, 0.0
        for seed in seeds:
            r1, t, m = train(s, seed, train_x, test_x, test_q, args, log)
            rs.append(round(r1, 4))
            tot += t
            mine += m
        result[s] = round(float(np.mean(rs)), 4)
        result["per_seed"][s] = rs
        result["timing"][s] = {"total_s": round(tot, 1), "mining_s": round(mine, 1)}
    result.update(seeds=seeds, epochs=args.epochs, train_images=len(train_x), eval_seed=eval_seed,
                  evaluated_on="validation" if args.validation else "test", eval_images=len(test_x),
                  sampling=args.sampling, threads=args.threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
