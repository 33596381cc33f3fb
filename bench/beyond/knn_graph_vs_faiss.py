"""Recall and time of `engine knn-graph` against faiss IndexFlat self-search (the exact graph).

    python3 bench/beyond/knn_graph_vs_faiss.py DATA_DIR GRAPH.ivecs [K]

DATA_DIR/base.fvecs is the vector set the graph was built from (ids = row numbers); prints one JSON line with
faiss' self-search seconds and the graph's recall@K against the exact graph (self excluded)."""

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
    x = read_vecs(f"{data}/base.fvecs", np.float32)
    graph = read_vecs(graph_path, np.int32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    t0 = time.perf_counter()
    _, ids = index.search(x, k + 1)
    seconds = time.perf_counter() - t0
    exact = np.array([[j for j in row if j != i][:k] for i, row in enumerate(ids)])
    hits = sum(len(set(a) & set(b)) for a, b in zip(graph[:, :k], exact))
    print(json.dumps({"n": int(x.shape[0]), "d": int(x.shape[1]), "k": k, "faiss_flat_self_search_seconds": round(seconds, 3),
                      "faiss_threads": faiss.omp_get_max_threads(), "recall_at_k": hits / exact.size}))


main()
