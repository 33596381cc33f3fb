#!/usr/bin/env bash
# One command from the MNIST data-set directory to the recall-QPS plot and CSV of docs/results.md: the engine's
# IVF-PQ, SPANN and HNSW sweeps (bench/specs/mnist.json) with faiss and hnswlib on the same axes.
#
#   bench/mnist-recall-qps.sh /tmp/mnist out/mnist [NQ]
#
# Writes OUT/peers.jsonl (bench/peers/run_peers.py; faiss and hnswlib from Debian's python3-faiss and
# python3-hnswlib when installed, otherwise a message and the engine alone), OUT/recall-qps.png and
# OUT/recall-qps.csv. NQ (default 0 = all 10 000) limits the queries on both sides; THREADS (default 2) the
# threads on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/mnist-recall-qps.sh DATA_DIR OUT_DIR [NQ]}
out=${2:?usage: bench/mnist-recall-qps.sh DATA_DIR OUT_DIR [NQ]}
nq=${3:-0}
threads=${THREADS:-2}
mkdir -p "$out"

peers=()
if /usr/bin/python3 bench/peers/run_peers.py --data "$data" --nq "$nq" --threads "$threads" \
     --faiss-specs 'IVF256,PQ98x4fs,RFlat;HNSW32' --nprobe 2,4,6,8,12,16 --k-factor 2,4 --ef 10,20,40,80,160 \
     --out "$out/peers.jsonl" && [ -s "$out/peers.jsonl" ]; then
  peers=(--peers "$out/peers.jsonl")
else
  echo "mnist-recall-qps: no peer rows (see the message above); plotting the engine alone" >&2
fi

dotnet build engine/Engine.Cli -c Release -v q -nologo >/dev/null
engine() { dotnet engine/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll "$@"; }
engine bench --data "$data" --specs bench/specs/mnist.json --nq "$nq" --threads "$threads" --latency-queries 500 \
  "${peers[@]}" --plot "$out/recall-qps.png" --csv "$out/recall-qps.csv"
