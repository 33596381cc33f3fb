#!/usr/bin/env python3
"""mine_hard_negatives on a Flat index of more than 2^31 - 1 floats (5.7 M x 384 random rows, 200 queries): the
blocked Flat store and the parted Index.add at work. Needs ~18 GiB of memory. PYTHONPATH=bindings/python."""
import time, resource, numpy as np, minedex
n, d, nq = 5_700_000, 384, 200
t = time.perf_counter()
rng = np.random.default_rng(5)
c = np.empty((n, d), dtype=np.float32)
for s in range(0, n, 500_000):
    c[s:s + 500_000] = rng.standard_normal((min(500_000, n - s), d), dtype=np.float32)
q = c[:nq] + np.float32(0.05) * rng.standard_normal((nq, d), dtype=np.float32)
print(f"corpus {n} x {d} = {n * d:,} floats (2^31 - 1 = {2**31 - 1:,}); generated in {time.perf_counter() - t:.1f} s", flush=True)
t = time.perf_counter()
got = minedex.mine_hard_negatives(q, c, np.arange(nq), index="Flat", metric="ip", range_max=32, num_negatives=3,
                                  verbose=False, threads=2)
el = time.perf_counter() - t
print(f"mined {nq} queries in {el:.1f} s; rows {len(got)}; first negatives {got.negatives[0].tolist()}; "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB", flush=True)
