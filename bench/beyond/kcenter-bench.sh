#!/usr/bin/env bash
# k-center greedy: `engine select --method kcenter` against the straightforward numpy greedy, same seed, same first
# centre, alternating runs; prints one JSON line per data set with the medians, the ratio and whether the selections
# are identical. Both timings exclude loading the file (engine: the report's `seconds`; numpy: its own clock).
#
#   bench/beyond/kcenter-bench.sh N SEED REPEATS DATA_DIR...     e.g.  bench/beyond/kcenter-bench.sh 200 7 5 /tmp/mnist
#
# Needs a built CLI (dotnet build -c Release engine/Engine.Cli) and /usr/bin/python3 with numpy. Run it on a quiet
# machine.
set -euo pipefail
n=$1 seed=$2 repeats=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
cli="$here/../../engine/Engine.Cli/bin/Release/net10.0/Engine.Cli"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for data in "$@"; do
  engine=() numpy=() identical=true radius=""
  for ((r = 0; r < repeats; r++)); do
    "$cli" select --data "$data" --method kcenter --n "$n" --seed "$seed" --out "$out/sel.txt" --report "$out/rep.json" >/dev/null 2>&1
    engine+=("$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$out/rep.json")")
    line=$(/usr/bin/python3 "$here/kcenter_vs_numpy.py" "$data" "$n" "$seed" "$out/sel.txt" "$out/rep.json")
    numpy+=("$(echo "$line" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['numpy_seconds'])")")
    same=$(echo "$line" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['identical_selection'])")
    [[ $same == True ]] || identical=false
    radius=$(echo "$line" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['engine_radius'])")
  done
  /usr/bin/python3 - "$data" "$n" "$identical" "$radius" "${engine[*]}" "${numpy[*]}" "$out/rep.json" <<'PY'
import json, statistics, sys
data, n, identical, radius, engine, numpy_, rep = sys.argv[1:8]
e = [float(v) for v in engine.split()]
p = [float(v) for v in numpy_.split()]
r = json.load(open(rep))
print(json.dumps({"data": data, "n": r["n"], "selected": int(n), "engine_s": e, "numpy_s": p,
                  "engine_median_s": statistics.median(e), "numpy_median_s": statistics.median(p),
                  "speedup": round(statistics.median(p) / statistics.median(e), 2), "identical_selection": identical == "true",
                  "radius": float(radius), "f32_distances": r["distance_evaluations"], "byte_bounds": r["bound_evaluations"]}))
PY
done
