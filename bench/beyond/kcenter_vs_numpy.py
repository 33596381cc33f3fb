"""`engine select --method kcenter` against a straightforward numpy greedy farthest-point with the same seed.

    python3 bench/beyond/kcenter_vs_numpy.py DATA_DIR N SEED SELECTED.txt REPORT.json

The numpy greedy starts where the engine does (the row with the smallest CounterRng hash (seed, stream 2, row): the
SplitMix64 chain of engine/Engine/Mining/CounterRng.cs) and takes the farthest row (lowest on ties) each step.
Prints one JSON line: numpy seconds, both covering radii, and whether the selections are identical."""

import json
import sys
import time

import numpy as np

M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def counter_hash(seed, stream, counter):
    h = mix(seed ^ 0x9E3779B97F4A7C15)
    h = mix(h ^ stream)
    return mix(h ^ ((counter * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & M64))


def main():
    data, n_sel, seed, selected_path, report_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    raw = np.fromfile(f"{data}/base.fvecs", dtype=np.int32)
    x = raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32).copy()
    t0 = time.perf_counter()
    first = min(range(len(x)), key=lambda i: (counter_hash(seed, 2, i), i))
    chosen = [first]
    mind = ((x - x[first]) ** 2).sum(1)
    mind[first] = -np.inf
    while len(chosen) < n_sel:
        nxt = int(np.argmax(mind))
        chosen.append(nxt)
        mind = np.minimum(mind, ((x - x[nxt]) ** 2).sum(1))
        mind[chosen] = -np.inf
    radius = float(np.sqrt(mind.max()))
    seconds = time.perf_counter() - t0
    engine = [int(t) for t in open(selected_path).read().split()]
    report = json.load(open(report_path))
    print(json.dumps({"n": len(x), "d": int(x.shape[1]), "selected": n_sel, "numpy_seconds": round(seconds, 2),
                      "numpy_radius": radius, "engine_radius": report["covering_radius"],
                      "identical_selection": engine == chosen}))


main()
