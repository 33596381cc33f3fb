"""Recall and time of `engine knn-graph` against faiss IndexFlat self-search (the exact graph).

    python3 bench/beyond/knn_graph_vs_faiss.py DATA_DIR GRAPH.ivecs [K] [SAMPLE]

DATA_DIR/base.fvecs is the vector set the graph was built from (ids = row numbers), DATA_DIR/meta.json its metric
(l2: IndexFlatL2; ip: IndexFlatIP; cosine: IndexFlatIP on normalised rows). Prints one JSON line with faiss'
self-search seconds and the graph's recall@K against the exact graph (self excluded). With SAMPLE, only that many
seeded rows are searched (for sets whose full self-search takes too long): the recall is then a sample estimate and
the faiss time is for the sample only."""

import json
import sys
import time

import faiss
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def main():
    data, graph_path = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    sample = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    metric = json.load(open(f"{data}/meta.json")).get("metric", "l2")
    x = read_vecs(f"{data}/base.fvecs", np.float32)
    graph = read_vecs(graph_path, np.int32)
    if metric == "cosine":
        faiss.normalize_L2(x)
    index = faiss.IndexFlatL2(x.shape[1]) if metric == "l2" else faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    rows = np.arange(len(x)) if sample <= 0 else np.sort(np.random.default_rng(7).choice(len(x), sample, replace=False))
    t0 = time.perf_counter()
    _, ids = index.search(x[rows], k + 1)
    seconds = time.perf_counter() - t0
    exact = np.array([[j for j in row if j != i][:k] for i, row in zip(rows, ids)])
    hits = sum(len(set(a) & set(b)) for a, b in zip(graph[rows, :k], exact))
    print(json.dumps({"n": int(x.shape[0]), "d": int(x.shape[1]), "metric": metric, "k": k, "searched": int(len(rows)),
                      "faiss_flat_self_search_seconds": round(seconds, 3), "faiss_threads": faiss.omp_get_max_threads(),
                      "faiss_version": faiss.__version__, "recall_at_k": hits / exact.size}))


main()
