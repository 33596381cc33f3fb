"""Table of bench/binary/equal-bytes.sh: one row per (spec, probes, refine) with the list code's bytes per vector.

    python3 bench/binary/equal_bytes_table.py DATADIR OUTDIR SET [SET ...]

Reads OUTDIR/SET.jsonl (`engine bench --json` rows) and OUTDIR/SET.tiers ("TIER SPEC" lines), writes
OUTDIR/equal-bytes.csv and OUTDIR/equal-bytes.md and prints the markdown table.
"""

import csv
import json
import math
import os
import re
import struct
import sys

CODEC = re.compile(r"(?:^|,)(BIN(\d)(?:nr)?|PQ(\d+)(x4fs|x4)?(?:nr)?|RaBitQ(?:fs)?(\d*))(?:,|$)")


def dimension(data_dir):
    """d from meta.json, else from the first row header of base.fvecs."""
    meta = os.path.join(data_dir, "meta.json")
    if os.path.exists(meta):
        with open(meta, encoding="utf-8") as f:
            d = json.load(f).get("d")
        if d:
            return int(d)
    with open(os.path.join(data_dir, "base.fvecs"), "rb") as f:
        return struct.unpack("<i", f.read(4))[0]


def codec_of(spec):
    m = CODEC.search(spec)
    if not m:
        raise SystemExit(f"equal-bytes: no BIN/PQ/RaBitQ list encoding in spec '{spec}'")
    return m


def code_bytes(spec, d):
    """Bytes of one list code (no id, no refine store)."""
    m = codec_of(spec)
    if m.group(2):  # BIN{b}: b planes of ceil(d/64) words + two floats
        return 8 * int(m.group(2)) * math.ceil(d / 64) + 8
    if m.group(3):  # PQ{m}: m bytes; x4 / x4fs: m/2
        sub = int(m.group(3))
        return math.ceil(sub / 2) if m.group(4) else sub
    bits = int(m.group(5) or 1)  # RaBitQ{b}: 3 floats + b bit planes of ceil(d/8) bytes
    return 12 + bits * math.ceil(d / 8)


def main(data, out, sets):
    rows = []
    for name in sets:
        d = dimension(os.path.join(data, name))
        tier_of = {}
        with open(os.path.join(out, f"{name}.tiers"), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    tier, spec = line.split(None, 1)
                    tier_of[codec_of(spec.strip()).group(1)] = int(tier)
        with open(os.path.join(out, f"{name}.jsonl"), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                spec = r["spec"]
                params = r.get("params", {})
                rows.append({
                    "set": name, "tier": tier_of.get(codec_of(spec).group(1), 0), "spec": spec,
                    "code_bytes": code_bytes(spec, d), "f32_bytes": 4 * d,
                    "probes": params.get("probes", ""), "refine": params.get("refine", ""),
                    "recall_at_10": r["recall"], "qps": r["qps"],
                })
    rows.sort(key=lambda r: (r["set"], r["tier"], r["code_bytes"], r["spec"], float(r["probes"] or 0), float(r["refine"] or 0)))
    fields = ["set", "tier", "spec", "code_bytes", "f32_bytes", "probes", "refine", "recall_at_10", "qps"]
    with open(os.path.join(out, "equal-bytes.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    lines = ["| set | tier | spec | bytes / vector (f32) | probes | refine | recall@10 | QPS |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['tier']} | {r['spec']} | {r['code_bytes']} ({r['f32_bytes']}) | {r['probes']} | "
                     f"{r['refine']} | {r['recall_at_10']:.4f} | {r['qps']:.1f} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(out, "equal-bytes.md"), "w", encoding="utf-8") as f:
        f.write(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
