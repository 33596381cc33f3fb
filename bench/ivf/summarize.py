#!/usr/bin/python3
"""Best QPS per system and spec at recall@k floors from `engine bench --csv` files (engine and peer rows), with
the ratio of the engine's best IVF row to faiss' best IVF row and to hnswlib's best row, and memory per vector.

    summarize.py ENGINE_CSV [ENGINE_CSV ...] [N_BASE_VECTORS] [--merged FILE]

Several CSV files are rounds of the same sweep (ivf-vs-faiss.sh ROUNDS=n, the systems run alternately): each setting
(system, spec, params) keeps its best QPS over the rounds, so a slow spell on a shared machine that hit one side in one
round does not decide a ratio. A setting whose recall differs between rounds (a peer built non-deterministically) keeps
one point per recall; --merged writes the merged rows as one CSV.
"""
import argparse
import csv
import sys

FLOORS = (0.90, 0.95, 0.99)


def merge(paths):
    """Rows of all files, one per (system, spec, params, recall): the best QPS over the files, in first-seen order."""
    merged, fields = {}, None
    for path in paths:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            fields = fields or reader.fieldnames
            for r in reader:
                r['recall'] = float(r['recall'])
                r['qps'] = float(r['qps'])
                # the recall is part of the key: deterministic searches repeat it exactly, while a peer whose build is
                # not deterministic (hnswlib on several threads) gives each round its own point
                key = (r['system'], r['spec'], r['params'], round(r['recall'], 9))
                old = merged.get(key)
                if old is None or r['qps'] > old['qps']:
                    merged[key] = r
    return list(merged.values()), fields


def main(paths, n, merged_out=None):
    rows, fields = merge(paths)
    if merged_out:
        with open(merged_out, 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=fields, lineterminator='\n')
            w.writeheader()
            w.writerows(rows)
    out = ['| floor | system | spec | params | recall@10 | QPS | bytes/vector |', '|---|---|---|---|---|---|---|']
    ratios = []
    for floor in FLOORS:
        best = {}
        for r in rows:
            if r['recall'] < floor:
                continue
            key = (r['system'], r['spec'])
            if key not in best or r['qps'] > best[key]['qps']:
                best[key] = r
        for (system, spec), r in sorted(best.items(), key=lambda kv: -kv[1]['qps']):
            mem = r.get('memory_bytes') or ''
            per = f"{int(mem) / n:.0f}" if mem and n else ''
            out.append(f"| {floor:.2f} | {system} | `{spec}` | {r['params']} | {r['recall']:.4f} | {r['qps']:,.0f} | {per} |")

        def top(pred):
            c = [r for k, r in best.items() if pred(*k)]
            return max(c, key=lambda r: r['qps']) if c else None
        eng = top(lambda s, spec: s == 'engine' and spec.startswith(('IVF', 'OPQ')))
        fai = top(lambda s, spec: s.startswith('faiss') and 'IVF' in spec)
        hns = top(lambda s, spec: s.startswith('hnswlib'))
        def ratio(a, b):
            return f"{a['qps'] / b['qps']:.2f}x (`{a['spec']}` {a['params']} vs `{b['spec']}` {b['params']})" if a and b else 'n/a'
        ratios.append(f"- recall >= {floor:.2f}: engine/faiss IVF {ratio(eng, fai)}; engine/hnswlib {ratio(eng, hns)}")
    print('\n'.join(out))
    print()
    print('\n'.join(ratios))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('files', nargs='+', help='engine bench CSV files (rounds), then optionally the base vector count')
    ap.add_argument('--merged', help='write the merged rows (best QPS per setting over the rounds) to this CSV')
    a = ap.parse_args()
    files, count = a.files, 0
    if len(files) > 1 and files[-1].isdigit():
        files, count = files[:-1], int(files[-1])
    main(files, count, a.merged)
