#!/usr/bin/python3
"""Best QPS per system and spec at recall@k floors from an `engine bench --csv` file (engine and peer rows), with
the ratio of the engine's best IVF row to faiss' best IVF row and to hnswlib's best row, and memory per vector.

    summarize.py ENGINE_CSV [N_BASE_VECTORS]
"""
import csv
import sys

FLOORS = (0.90, 0.95, 0.99)


def main(path, n):
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        r['recall'] = float(r['recall'])
        r['qps'] = float(r['qps'])
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
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
