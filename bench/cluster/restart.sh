#!/bin/bash
# Time to the first answer after a silo restart (docs/scale-out.md, "Shard replica").
# usage: bench/cluster/restart.sh ENGINE_DLL SPEC LABEL [DATA_DIR=/tmp/mnist] [WORK=/tmp/rs]
# Starts one silo, loads DATA_DIR/base.fvecs into a 1-shard R = 1 collection with SPEC, stops the silo (SIGTERM),
# starts a new one on the same data directory and runs `engine mine --cluster` with 50 anchors twice (the first call
# opens the replica; the second shows the client's own start-up cost).
set -euo pipefail
E="dotnet $1"; SPEC=$2; L=$3; DATA=${4:-/tmp/mnist}; WORK=${5:-/tmp/rs}; D=$WORK/$L
rm -rf "$D"; mkdir -p "$D"
/usr/bin/python3 - "$DATA" "$D" <<'PY'
import sys, numpy as np
data, out = sys.argv[1], sys.argv[2]
def rd(p, dt):
    a = np.fromfile(p, dtype=dt); d = a[:1].view(np.int32)[0]; return a.reshape(-1, d + 1)[:, 1:]
q = rd(f'{data}/query.fvecs', np.float32)[:50]; gt = rd(f'{data}/gt.ivecs', np.int32)[:50]
with open(f'{out}/anchors.fvecs', 'wb') as f:
    for r in q: np.int32(q.shape[1]).tofile(f); r.astype(np.float32).tofile(f)
with open(f'{out}/pos.ivecs', 'wb') as f:
    for r in gt: np.int32(1).tofile(f); np.int32(r[0]).tofile(f)
PY
start() {
  $E cluster silo --port 31001 --gateway 31002 --data-dir "$D/data" --rebalance-delay -1 > "$D/$1.log" 2>&1 & PID=$!
  until grep -q "silo ready" "$D/$1.log"; do sleep 0.2; done
}
start silo1
/usr/bin/time -f "$L load %e s" $E cluster load --cluster 127.0.0.1:31002 --collection m --corpus "$DATA/base.fvecs" \
  --index "$SPEC" --shards 1 --replicas 1 --training-size 1000 > /dev/null
kill -TERM $PID; wait $PID || true
start silo2
for i in 1 2; do
  /usr/bin/time -o "$D/t$i" -f "$L call $i after restart %e s" $E mine --cluster 127.0.0.1:31002 --collection m \
    --corpus "$DATA/base.fvecs" --anchors "$D/anchors.fvecs" --positives "$D/pos.ivecs" --negatives 4 --range 0:30 \
    --shortfall keep --out "$D/m$i.jsonl" > "$D/mine$i.log" 2>&1
  cat "$D/t$i"
done
kill -TERM $PID; wait $PID || true
du -sh "$D/data"
