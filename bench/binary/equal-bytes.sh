#!/usr/bin/env bash
# Binary codes against PQ fast-scan and RaBitQ at (nearly) equal bytes per vector, all IVF with an exact refine store,
# on MNIST (784-d, L2) and GloVe-100 (100-d, inner product): docs/binary-codes.md's equal-bytes table.
#
#   bench/binary/equal-bytes.sh DATADIR OUTDIR
#
# DATADIR/mnist and DATADIR/glove100 are data-set directories; a missing one is fetched with
# `engine data fetch mnist|glove100 --out DATADIR/NAME`. Writes OUTDIR/NAME.yaml (the runs), OUTDIR/NAME.jsonl
# (`engine bench --json` rows), OUTDIR/equal-bytes.csv and OUTDIR/equal-bytes.md (set, tier, spec, code bytes per
# vector, probes, refine, recall@10, QPS). Code bytes are the list codes alone (no ids, no refine store):
#   BIN{b}: 8·b·ceil(d/64) + 8,  PQ{m}x4fs: m/2,  PQ{m}: m,  RaBitQ{b}: 12 + b·ceil(d/8).
# Environment: NQ (queries, default 0 = all), THREADS (default 2), REPEATS (default 3), SETS (default
# "mnist glove100"), MNIST_NLIST (default 256), GLOVE_NLIST (default 1024), MNIST_PROBES / GLOVE_PROBES and
# MNIST_REFINE / GLOVE_REFINE (sweep lists, e.g. "8,16,32").
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: bench/binary/equal-bytes.sh DATADIR OUTDIR"
data=${1:?$usage}
out=${2:?$usage}
nq=${NQ:-0}
threads=${THREADS:-2}
repeats=${REPEATS:-3}
mkdir -p "$out"

dotnet build engine/Engine.Cli -c Release -v q -nologo >/dev/null
engine() { dotnet engine/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll "$@"; }

# tiers: "TIER SPEC" lines per set; each tier holds a BIN, a PQ and a RaBitQ code of close sizes (PQ's M must divide d).
mnist_tiers() {
  local n=$1
  cat <<TIERS
1 IVF$n,BIN1,RFlat
1 IVF$n,PQ196x4fs,RFlat
1 IVF$n,RaBitQ1,RFlat
2 IVF$n,BIN2,RFlat
2 IVF$n,PQ392x4fs,RFlat
2 IVF$n,RaBitQ2,RFlat
4 IVF$n,BIN4,RFlat
4 IVF$n,PQ392,RFlat
4 IVF$n,RaBitQ4,RFlat
TIERS
}
glove_tiers() {
  local n=$1
  cat <<TIERS
1 IVF$n,BIN1,RFlat
1 IVF$n,PQ50x4fs,RFlat
1 IVF$n,RaBitQ1,RFlat
2 IVF$n,BIN2,RFlat
2 IVF$n,PQ100x4fs,RFlat
2 IVF$n,RaBitQ2,RFlat
4 IVF$n,BIN4,RFlat
4 IVF$n,PQ50,RFlat
4 IVF$n,RaBitQ4,RFlat
TIERS
}

for set in ${SETS:-mnist glove100}; do
  dir="$data/$set"
  if [ ! -f "$dir/base.fvecs" ]; then
    echo "equal-bytes: fetching $set into $dir" >&2
    engine data fetch "$set" --out "$dir"
  fi
  case "$set" in
    mnist) tiers=$(mnist_tiers "${MNIST_NLIST:-256}"); probes=${MNIST_PROBES:-8,16,32}; refine=${MNIST_REFINE:-2,4,8} ;;
    glove100) tiers=$(glove_tiers "${GLOVE_NLIST:-1024}"); probes=${GLOVE_PROBES:-16,32,64,128}; refine=${GLOVE_REFINE:-4,8,16} ;;
    *) echo "equal-bytes: unknown set '$set' (mnist or glove100)" >&2; exit 2 ;;
  esac
  {
    echo "# written by bench/binary/equal-bytes.sh"
    echo "runs:"
    while read -r _ spec; do
      echo "  - index: \"$spec\""
      echo "    sweep: {probes: [$probes], refine: [$refine]}"
    done <<<"$tiers"
  } >"$out/$set.yaml"
  printf '%s\n' "$tiers" >"$out/$set.tiers"
  echo "equal-bytes: $set ($(wc -l <"$out/$set.tiers") specs)" >&2
  engine bench --data "$dir" --specs "$out/$set.yaml" --nq "$nq" --threads "$threads" --repeats "$repeats" \
    --latency-queries 0 --json >"$out/$set.jsonl"
done

/usr/bin/python3 bench/binary/equal_bytes_table.py "$data" "$out" ${SETS:-mnist glove100}
