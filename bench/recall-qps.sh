#!/usr/bin/env bash
# One command from a data-set directory to the recall-QPS plot and CSV of docs/results.md: the engine's sweeps
# (bench/specs/SET.yaml) with faiss and hnswlib on the same axes. SET is mnist (MNIST, L2: IVF-PQ, SPANN, HNSW;
# the plot in docs/results.md) or glove (GloVe-100, inner product: IVF-PQ, IVF-RaBitQ, SPANN, HNSW).
#
#   bench/recall-qps.sh mnist /tmp/mnist out/mnist [NQ]       (bench/mnist-recall-qps.sh does the same)
#   bench/recall-qps.sh glove /tmp/glove100 out/glove [NQ]
#
# Writes OUT/peers.jsonl (bench/peers/run_peers.py; faiss and hnswlib from Debian's python3-faiss and
# python3-hnswlib when installed, otherwise a message and the engine alone), OUT/recall-qps.png and
# OUT/recall-qps.csv. NQ (default 0 = all queries) limits the queries on both sides; THREADS (default 2) the
# threads on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bench/recall-qps.sh mnist|glove DATA_DIR OUT_DIR [NQ]"
set_name=${1:?$usage}
data=${2:?$usage}
out=${3:?$usage}
nq=${4:-0}
case "$set_name" in
  mnist) faiss=(--faiss-specs 'IVF256,PQ98x4fs,RFlat;HNSW32' --nprobe 2,4,6,8,12,16 --k-factor 2,4 --ef 10,20,40,80,160) ;;
  glove) faiss=(--faiss-specs 'IVF1024,PQ50x4fs,RFlat;IVF1024,RaBitQfs4,RFlat;HNSW32' --nprobe 8,16,32,64,128,256
                --k-factor 2,4,8,16 --ef 20,40,80,160,320) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
threads=${THREADS:-2}
mkdir -p "$out"

peers=()
if /usr/bin/python3 bench/peers/run_peers.py --data "$data" --nq "$nq" --threads "$threads" \
     "${faiss[@]}" \
     --out "$out/peers.jsonl" && [ -s "$out/peers.jsonl" ]; then
  peers=(--peers "$out/peers.jsonl")
else
  echo "recall-qps: no peer rows (see the message above); plotting the engine alone" >&2
fi

dotnet build engine/Engine.Cli -c Release -v q -nologo >/dev/null
engine() { dotnet engine/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll "$@"; }
engine bench --data "$data" --specs "bench/specs/$set_name.yaml" --nq "$nq" --threads "$threads" --latency-queries 500 \
  "${peers[@]}" --plot "$out/recall-qps.png" --csv "$out/recall-qps.csv"
