#!/usr/bin/env bash
# SPANN coded postings against raw f32 postings on one data set, in one run (issue 12 §3; docs/results.md):
#
#   bench/spann/coded-vs-raw.sh DATA_DIR OUT_DIR "RAW_SPEC" "CODED_SPEC" PROBES [NQ]
#
# e.g. bench/spann/coded-vs-raw.sh /tmp/glove100 /tmp/spann-glove "SPANN(size=256,max=640)" \
#        "SPANN(size=256,max=640,codec=RaBitQfs4)" 32,64
#      bench/spann/coded-vs-raw.sh /tmp/mnist /tmp/spann-mnist SPANN "SPANN(codec=RaBitQfs1)" 12,16
# Each spec builds its own durable index (engine bench), 2 threads (THREADS overrides), k = 10, the first NQ queries
# (default 2000), QPS = the best of 3 passes and at least MIN_SECONDS (default 1) of passes; ROUNDS (default 2) runs
# the two specs alternately and keeps each setting's best QPS. Prints one row per spec and probes: recall@10, QPS,
# posting reads per query, resident bytes as a share of the raw vectors, and the coded / raw QPS ratio.
# Run it on a quiet machine: a build or test beside it makes every ratio meaningless.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:?usage: coded-vs-raw.sh DATA_DIR OUT_DIR RAW_SPEC CODED_SPEC PROBES [NQ]}
out=${2:?usage}; raw=${3:?usage}; coded=${4:?usage}; probes=${5:?usage}; nq=${6:-2000}
threads=${THREADS:-2}; rounds=${ROUNDS:-2}; min_seconds=${MIN_SECONDS:-1}
mkdir -p "$out"
dotnet build engine/Engine.Cli -c Release -v q -nologo >/dev/null
for ((r = 1; r <= rounds; r++)); do
  for spec in "$raw" "$coded"; do
    tag=$([ "$spec" = "$raw" ] && echo raw || echo coded)
    dotnet engine/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll bench --data "$data" --index "$spec" --sweep "probes=$probes" \
      --nq "$nq" --threads "$threads" --min-seconds "$min_seconds" --latency-queries 0 --csv "$out/$tag-round$r.csv" >&2
  done
done
/usr/bin/python3 - "$data" "$out" "$rounds" <<'PY'
import csv, json, os, sys
data, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = json.load(open(os.path.join(data, 'meta.json')))
raw_bytes = meta['n'] * meta['d'] * 4
best = {}
for tag in ('raw', 'coded'):
    for r in range(1, rounds + 1):
        for row in csv.DictReader(open(os.path.join(out, f'{tag}-round{r}.csv'))):
            if row['system'] != 'engine':
                continue
            key = (tag, row['spec'], row['params'])
            if key not in best or float(row['qps']) > float(best[key]['qps']):
                best[key] = row
print('| postings | spec | params | recall@10 | QPS | posting reads / query | resident / raw vectors | coded / raw |')
print('|---|---|---|---|---|---|---|---|')
for (tag, spec, params), row in sorted(best.items(), key=lambda kv: (kv[0][0] != 'raw', kv[0][2])):
    base = next((v for (t, s, p), v in best.items() if t == 'raw' and p == params), None)
    ratio = f"{float(row['qps']) / float(base['qps']):.2f}x" if base is not None and tag == 'coded' else ''
    mem = f"{100 * float(row['memory_bytes']) / raw_bytes:.1f} %" if row.get('memory_bytes') else ''
    print(f"| {tag} | `{spec}` | {params} | {float(row['recall']):.4f} | {float(row['qps']):,.0f} | {row.get('reads_per_query', '')} | {mem} | {ratio} |")
PY
