#!/usr/bin/env python3
"""Compares two mining JSONL outputs: per-anchor Jaccard of the negative id sets and exact-list agreement.

Usage: /usr/bin/python3 bench/mining/compare_jsonl.py A.jsonl B.jsonl
"""
import json
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows[r["anchor"]] = r["negatives"]
    return rows


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    common = sorted(set(a) & set(b))
    jac = [len(set(a[k]) & set(b[k])) / max(1, len(set(a[k]) | set(b[k]))) for k in common]
    same = sum(1 for k in common if a[k] == b[k])
    print(json.dumps({
        "rows_a": len(a), "rows_b": len(b), "common_anchors": len(common),
        "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
        "mean_jaccard": (sum(jac) / len(jac)) if jac else None,
        "min_jaccard": min(jac) if jac else None,
        "identical_lists": same,
    }))


if __name__ == "__main__":
    main()
