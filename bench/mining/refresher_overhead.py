#!/usr/bin/env python3
"""Wall-time cost of mining through minedex.Refresher in a training loop, measured in alternating pairs.

Runs bindings/python/examples/train_instance.py once per (repeat, seed) for the baseline strategy and then for the
refresher strategy, each in its own process, so both see the same machine state; prints one line per run and a JSON
summary: the refresher's wall time over its pair's baseline (per pair, median, mean), and the share of the
refresher's wall time its training thread spends in mining calls, refreshes and the embedding done only for mining
(the script's "mining_s"). Single runs vary by +-15 % on a shared 2-core VM; pairs and medians are what to quote.

  /usr/bin/python3 bench/mining/refresher_overhead.py --data /tmp/mnist --seeds 1,2,3 --repeats 2 -- \\
      --epochs 3 --warmup 0 --online --online-async --retrain-every 0 --ann IVF1024,Flat --ann-probes 8 --threads 2

Everything after "--" goes to train_instance.py for both strategies.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bindings", "python", "examples", "train_instance.py")


def summarize(runs, baseline, strategy):
    """runs: dicts with strategy, seed, repeat, recall, total_s, mining_s. Pairs (seed, repeat) having both
    strategies; returns the per-pair wall ratios, their median and mean, the mining shares of the refresher's runs
    and the summed totals."""
    by = {(r["strategy"], r["seed"], r["repeat"]): r for r in runs}
    pairs = sorted({(r["seed"], r["repeat"]) for r in runs
                    if (baseline, r["seed"], r["repeat"]) in by and (strategy, r["seed"], r["repeat"]) in by})
    if not pairs:
        raise ValueError(f"no (seed, repeat) pair has both {baseline} and {strategy} runs")
    ratios = [by[(strategy, s, k)]["total_s"] / by[(baseline, s, k)]["total_s"] for s, k in pairs]
    shares = [by[(strategy, s, k)]["mining_s"] / by[(strategy, s, k)]["total_s"] for s, k in pairs]
    return {"pairs": len(pairs), "wall_ratio": [round(x, 3) for x in ratios],
            "wall_ratio_median": round(statistics.median(ratios), 3), "wall_ratio_mean": round(statistics.fmean(ratios), 3),
            "mining_share": [round(x, 3) for x in shares], "mining_share_median": round(statistics.median(shares), 3),
            "total_s": {baseline: round(sum(by[(baseline, s, k)]["total_s"] for s, k in pairs), 1),
                        strategy: round(sum(by[(strategy, s, k)]["total_s"] for s, k in pairs), 1)},
            "recall": {name: round(statistics.fmean(by[(name, s, k)]["recall"] for s, k in pairs), 4)
                       for name in (baseline, strategy)}}


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline", default="in_batch_random")
    ap.add_argument("--strategy", default="in_batch_refresher")
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for repeat in range(1, args.repeats + 1):
        for seed in seeds:
            for name in (args.baseline, args.strategy):
                cmd = [sys.executable, SCRIPT, "--data", args.data, "--seeds", str(seed), "--strategies", name, *extra]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                run = {"strategy": name, "seed": seed, "repeat": repeat, "recall": r[name],
                       "total_s": r["timing"][name]["total_s"], "mining_s": r["timing"][name]["mining_s"]}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    print(json.dumps(summarize(runs, args.baseline, args.strategy)))


if __name__ == "__main__":
    main()
