#!/usr/bin/env bash
# `engine knn-graph` (automatic: the list-major self-join) against faiss IndexFlat self-search on each data set:
# one JSON line per set with the engine's wall time, peak RSS and report, faiss' time and the graph's recall@K.
#
#   PEERS=/work/peers/native bench/beyond/knn-graph-bench.sh K DATA_DIR[:SAMPLE]...
#
# DATA_DIR:SAMPLE searches only SAMPLE seeded rows with faiss (recall estimate; faiss time for the sample only).
# PEERS is put on PYTHONPATH (natively built faiss, ../shared/peers/build-native-peers.sh); run on a quiet machine.
set -euo pipefail
k=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
cli="$here/../../engine/Engine.Cli/bin/Release/net10.0/Engine.Cli"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for spec in "$@"; do
  data=${spec%%:*}
  sample=0
  [[ $spec == *:* ]] && sample=${spec##*:}
  /usr/bin/time -f '%e %M' -o "$out/time" "$cli" knn-graph --data "$data" --k "$k" --out "$out/g.ivecs" --json >"$out/report.json" 2>/dev/null
  read -r wall rss <"$out/time"
  peer=$(PYTHONPATH=${PEERS:-} /usr/bin/python3 "$here/knn_graph_vs_faiss.py" "$data" "$out/g.ivecs" "$k" "$sample")
  /usr/bin/python3 - "$wall" "$rss" "$out/report.json" "$peer" <<'PY'
import json, sys
wall, rss, report, peer = float(sys.argv[1]), int(sys.argv[2]), json.load(open(sys.argv[3])), json.loads(sys.argv[4])
row = {"input": report["input"], "n": report["n"], "d": report["d"], "metric": report["metric"], "k": report["k"],
       "engine_index": report["index"], "engine_search": report["search"], "sampled_recall": report.get("sampled_recall"),
       "engine_wall_s": wall, "engine_peak_rss_mb": round(rss / 1024), "recall_at_k": round(peer["recall_at_k"], 4),
       "faiss_searched": peer["searched"], "faiss_flat_s": peer["faiss_flat_self_search_seconds"],
       "faiss_version": peer["faiss_version"], "faiss_threads": peer["faiss_threads"]}
if peer["searched"] == report["n"]:
    row["speedup_vs_faiss_flat"] = round(peer["faiss_flat_self_search_seconds"] / wall, 2)
print(json.dumps(row))
PY
done
