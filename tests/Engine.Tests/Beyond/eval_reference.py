"""Independent reference for EvalTests: reads the same run / qrels / vectors / pairs files and prints the metrics
as JSON (pytrec_eval conventions: linear-gain NDCG, map_cut divides by all relevant, queries without relevant
documents skipped, judged queries missing from the run score 0). Usage:
    eval_reference.py RUN QRELS K1,K2 VECTORS.npy PAIRS.txt"""

import json
import math
import sys

import numpy as np


def lines(path):
    for line in open(path):
        line = line.strip()
        if line:
            yield line


def read_qrels(path):
    q = {}
    for line in lines(path):
        if line.startswith("{"):
            o = json.loads(line)
            q.setdefault(str(o["query"]), {})[str(o["doc"])] = int(o.get("relevance", 1))
        else:
            qid, _, doc, rel = line.split()
            q.setdefault(qid, {})[doc] = int(rel)
    return q


def read_run(path):
    run, scored = {}, {}
    for line in lines(path):
        if line.startswith("{"):
            o = json.loads(line)
            run.setdefault(str(o["query"]), []).extend(str(i) for i in o["ids"])
        else:
            p = line.split()
            scored.setdefault(p[0], []).append((float(p[4]), p[2]))
    for qid, entries in scored.items():
        # stable sort by score descending
        run.setdefault(qid, []).extend(doc for _, doc in sorted(entries, key=lambda e: -e[0]))
    out = {}
    for qid, docs in run.items():
        seen, ranked = set(), []
        for d in docs:
            if d not in seen:
                seen.add(d)
                ranked.append(d)
        out[qid] = ranked
    return out


def metrics(run, qrels, k):
    rows = []
    for qid in sorted(qrels):
        judged = qrels[qid]
        rel = [g for g in judged.values() if g > 0]
        if not rel:
            continue
        top = run.get(qid, [])[:k]
        grades = [judged.get(d, 0) for d in top]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(grades) if g > 0)
        ideal = sorted(rel, reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        hits = [i for i, g in enumerate(grades) if g > 0]
        mrr = 1.0 / (hits[0] + 1) if hits else 0.0
        ap = sum((n + 1) / (i + 1) for n, i in enumerate(hits)) / len(rel)
        rows.append((dcg / idcg, mrr, len(hits) / len(rel), ap, len(hits) / k))
    m = np.array(rows, dtype=np.float64).mean(axis=0)
    return {f"ndcg@{k}": m[0], f"mrr@{k}": m[1], f"recall@{k}": m[2], f"map@{k}": m[3], f"p@{k}": m[4]}, len(rows)


def embedding(vectors, pairs):
    x = vectors.astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    align = float(np.mean([np.linalg.norm(u[a] - u[b]) ** 2 for a, b in pairs]))
    sq = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    iu = np.triu_indices(len(u), 1)
    uniform = float(np.log(np.mean(np.exp(-2 * sq[iu]))))
    s = np.linalg.svd(x, compute_uv=False)
    p = s / np.abs(s).sum() + 1e-7
    rankme = float(np.exp(-(p * np.log(p)).sum()))
    return {"alignment": align, "uniformity": uniform, "effective_rank": rankme}


def main():
    run_path, qrels_path, ks, vec_path, pairs_path = sys.argv[1:6]
    run, qrels = read_run(run_path), read_qrels(qrels_path)
    out = {"retrieval": {}}
    for k in (int(t) for t in ks.split(",")):
        m, n = metrics(run, qrels, k)
        out["retrieval"].update(m)
        out["retrieval"]["queries"] = n
    pairs = [tuple(int(t) for t in line.split()) for line in open(pairs_path) if line.strip()]
    out["embedding"] = embedding(np.load(vec_path), pairs)
    print(json.dumps(out))


main()
