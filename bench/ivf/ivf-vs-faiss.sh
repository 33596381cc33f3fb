#!/usr/bin/env bash
# IVF-PQ / IVF-RaBitQ against native faiss (and hnswlib) on one data set, in one run, for docs/results.md (issue 12):
#
#   PYTHONPATH=/work/peers/native bench/ivf/ivf-vs-faiss.sh DATA_DIR OUT_DIR NLIST M [NQ]
#
# NLIST lists, PQ with M sub-quantizers (M must divide d). Engine specs (SPECS_EXTRA adds more, ';'-separated):
# residual and raw ("nr") fast-scan codes with RFlat and Refine(SQ8). faiss specs (FAISS_SPECS overrides): its
# fast-scan PQ (raw: its factory default), residual PQ ("fsr"), both with RFlat and Refine(SQ8), and RaBitQ
# fast-scan (1 and 4 bits) with RFlat. Both sides sweep probes 1..64 and refine factors 1..16, 2 threads, k = 10,
# the first NQ queries (default 2000), QPS = the best pass of at least 3 and at least MIN_SECONDS (default 1) of timed
# passes per setting on both sides (the same rule: engine bench / run_peers.py --min-seconds). Writes OUT/peers.jsonl,
# OUT/engine.csv (engine and peer rows) and OUT/summary.md (best QPS per system at recall 0.90 / 0.95 / 0.99,
# ratios, bytes per vector).
# PROBES and REFINE (comma lists) override both sides' sweeps, SPECS (';'-separated) the engine's specs; ROUNDS=n runs
# both sides n times alternately and keeps each setting's best QPS (OUT/merged.csv).
# Run it on a quiet machine: a build or test beside it makes every ratio meaningless.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:?usage: ivf-vs-faiss.sh DATA_DIR OUT_DIR NLIST M [NQ]}
out=${2:?usage}; nlist=${3:?usage}; m=${4:?usage}; nq=${5:-2000}
threads=${THREADS:-2}
min_seconds=${MIN_SECONDS:-1}
mkdir -p "$out"
probes_list=${PROBES:-1,2,4,6,8,12,16,24,32,48,64}   # PROBES / REFINE override the sweeps of both sides
refine_list=${REFINE:-1,2,4,8,16}
probes="[${probes_list//,/, }]"
refine="[${refine_list//,/, }]"
if [ -n "${SPECS:-}" ]; then IFS=';' read -r -a specs <<< "$SPECS"   # SPECS replaces the engine's default specs
else specs=("IVF$nlist,PQ${m}x4fs,RFlat" "IVF$nlist,PQ${m}x4fsnr,RFlat" "IVF$nlist,PQ${m}x4fs,Refine(SQ8)" "IVF$nlist,PQ${m}x4fsnr,Refine(SQ8)"); fi
if [ -n "${SPECS_EXTRA:-}" ]; then IFS=';' read -r -a extra <<< "$SPECS_EXTRA"; specs+=("${extra[@]}"); fi
{
  echo '{"runs": ['
  sep=''
  for s in "${specs[@]}"; do
    printf '%s{"index": "%s", "sweep": {"probes": %s, "refine": %s}}\n' "$sep" "$s" "$probes" "$refine"
    sep=','
  done
  echo ']}'
} > "$out/specs.json"
faiss_specs=${FAISS_SPECS:-"IVF$nlist,PQ${m}x4fs,RFlat;IVF$nlist,PQ${m}x4fsr,RFlat;IVF$nlist,PQ${m}x4fs,Refine(SQ8);IVF$nlist,RaBitQfs,RFlat;IVF$nlist,RaBitQfs4,RFlat"}
dotnet build engine/Engine.Cli -c Release -v q -nologo >/dev/null
# ROUNDS > 1: the peers and the engine run alternately ROUNDS times (OUT/roundN/), and each setting keeps its best QPS
# over the rounds (summarize.py --merged OUT/merged.csv), so a slow spell of a shared machine during one side's turn
# does not decide a ratio.
rounds=${ROUNDS:-1}
csvs=()
for ((r = 1; r <= rounds; r++)); do
  dir=$out
  if [ "$rounds" -gt 1 ]; then dir=$out/round$r; mkdir -p "$dir"; fi
  /usr/bin/python3 bench/peers/run_peers.py --data "$data" --nq "$nq" --threads "$threads" --faiss-specs "$faiss_specs" \
    --nprobe "$probes_list" --k-factor "$refine_list" --ef 10,20,40,80,160,320,640 --min-seconds "$min_seconds" --out "$dir/peers.jsonl"
  dotnet engine/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll bench --data "$data" --specs "$out/specs.json" --nq "$nq" \
    --threads "$threads" --min-seconds "$min_seconds" --latency-queries 0 --peers "$dir/peers.jsonl" --csv "$dir/engine.csv" --plot "$dir/recall-qps.png"
  csvs+=("$dir/engine.csv")
done
n_base=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/meta.json"))["n"])' "$data" 2>/dev/null || echo 0)
/usr/bin/python3 bench/ivf/summarize.py "${csvs[@]}" "$n_base" --merged "$out/merged.csv" > "$out/summary.md"
cat "$out/summary.md"
