"""k-NN graph, near-duplicates and label propagation through the Python binding, against numpy references."""

import numpy as np
import pytest

import minedex


def exact_graph(x, k, metric="l2"):
    x64 = x.astype(np.float64)
    if metric == "l2":
        dist = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(dist, np.inf)
        return np.argsort(dist, axis=1, kind="stable")[:, :k]
    if metric == "cosine":
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    sim = x64 @ x64.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_auto_graph_on_small_data_is_exact(metric):
    x = np.random.default_rng(1).standard_normal((600, 10)).astype(np.float32)
    nb, ds, report = minedex.knn_graph(x, 6, metric=metric)
    assert nb.shape == (600, 6) and ds.shape == (600, 6)
    assert report["index"] == "Flat" and report["auto"] is True
    ref = exact_graph(x, 6, metric)
    agree = sum(len(set(nb[i]) & set(ref[i])) for i in range(600))
    assert agree >= 600 * 6 * 0.995
    assert not np.any(nb == np.arange(600)[:, None])


def test_graph_from_an_index_with_ids_and_knobs():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    ids = np.arange(3000, dtype=np.int64) * 3 + 7
    index = minedex.Index("IVF16,Flat", 8)
    index.train(x)
    index.add(x, ids)
    nb, ds, report = minedex.knn_graph(x, 5, index=index, ids=ids, probes=16)
    assert report["search"] == {"probes": "16"} and report["auto"] is False
    ref = ids[exact_graph(x, 5)]
    agree = sum(len(set(nb[i]) & set(ref[i])) for i in range(3000))
    assert agree >= 3000 * 5 * 0.995
    with pytest.raises(ValueError, match="below the number"):
        minedex.knn_graph(x[:5], 5)
    with pytest.raises(ValueError):
        minedex.knn_graph(x, 5, ids=ids)


def test_near_duplicates_and_label_propagation():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((200, 6)).astype(np.float32) * 3
    dup = base[:40] + rng.uniform(-5e-4, 5e-4, (40, 6)).astype(np.float32)
    x = np.vstack([base, dup])
    nb, ds, _ = minedex.knn_graph(x, 4)
    rep, groups = minedex.near_duplicates(nb, ds, 1e-3)
    assert groups == 200
    assert np.array_equal(rep[200:], np.arange(40)) and np.array_equal(rep[:200], np.arange(200))
    kept = np.arange(len(x))[rep == np.arange(len(x))]
    assert len(kept) == 200
    with pytest.raises(ValueError, match="threshold"):
        minedex.near_duplicates(nb, ds, -1.0)

    centers = np.array([[5, 0, 0, 0], [-5, 0, 0, 0], [0, 5, 0, 0]], dtype=np.float32)
    truth = rng.integers(0, 3, 900)
    pts = (centers[truth] + rng.standard_normal((900, 4)) * 0.7).astype(np.float32)
    nb, ds, _ = minedex.knn_graph(pts, 10)
    labels = np.full(900, -1)
    for c in range(3):
        labels[np.nonzero(truth == c)[0][:3]] = c
    scores, predicted = minedex.label_propagation(nb, ds, labels, 3)
    assert scores.shape == (900, 3)
    assert (predicted == truth).mean() >= 0.95
    with pytest.raises(ValueError, match="labelled"):
        minedex.label_propagation(nb, ds, np.full(900, -1), 3)
