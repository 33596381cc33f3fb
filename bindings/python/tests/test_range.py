"""Range search through the Python binding: Flat equals a float64 numpy brute force on every metric; IVF recall has a
floor; bad radii raise the engine's InvalidArgumentError (ValueError) or ArgumentTypeError (TypeError)."""

import numpy as np
import pytest

import minedex


def values(x, q, metric):
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    if metric == "l2":
        return ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    return q64 @ x64.T


def gap_radius(row, metric, rank):
    """A radius in the widest gap among sorted values near ``rank``: float32 rounding cannot cross it."""
    s = np.sort(row) if metric == "l2" else -np.sort(-row)
    gaps = np.abs(np.diff(s[rank - 5:rank + 6]))
    i = rank - 5 + int(np.argmax(gaps))
    return float((s[i] + s[i + 1]) / 2)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_flat_range_search_is_the_brute_force_set(metric):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1500, 16)).astype(np.float32)
    q = rng.standard_normal((6, 16)).astype(np.float32)
    index = minedex.Index("Flat", 16, metric=metric)
    index.add(x)
    ref = values(x, q, metric)
    for i in range(len(q)):
        radius = gap_radius(ref[i], metric, 25 + 10 * i)
        lims, D, I = index.range_search(q[i:i + 1], radius)
        assert lims.tolist() == [0, len(I)]
        inside = np.nonzero(ref[i] <= radius if metric == "l2" else ref[i] >= radius)[0]
        assert sorted(I.tolist()) == sorted(inside.tolist())
        np.testing.assert_allclose(D, ref[i][I], rtol=1e-3, atol=1e-3)
        assert D.dtype == np.float32 and I.dtype == np.int64


def test_batch_lims_and_ivf_recall_floor():
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((20, 16)) * 4
    x = (centers[rng.integers(0, 20, 4000)] + rng.standard_normal((4000, 16))).astype(np.float32)
    q = (centers[rng.integers(0, 20, 40)] + rng.standard_normal((40, 16))).astype(np.float32)
    flat = minedex.Index("Flat", 16)
    flat.add(x)
    ivf = minedex.Index("IVF16,Flat", 16)
    ivf.train(x)
    ivf.add(x)
    radius = 14.0
    lims, D, I = flat.range_search(q, radius)
    assert lims.shape == (41,) and lims[0] == 0 and lims[-1] == len(I) and np.all(np.diff(lims) >= 0)
    assert len(I) > 40 * 5
    alims, aD, aI = ivf.range_search(q, radius, probes=4)
    hits = sum(len(set(I[lims[i]:lims[i + 1]]) & set(aI[alims[i]:alims[i + 1]])) for i in range(40))
    assert hits / len(I) >= 0.9
    assert np.all(aD <= radius)
    # all lists probed: the approximate index is exact
    elims, eD, eI = ivf.range_search(q, radius, probes=16)
    assert len(eI) == len(I)


def test_bad_radius_errors():
    index = minedex.Index("Flat", 4)
    index.add(np.eye(4, dtype=np.float32))
    for bad in (-1.0, float("nan"), float("inf"), 1e40):
        with pytest.raises(minedex.InvalidArgumentError, match="radius"):
            index.range_search(np.eye(4, dtype=np.float32), bad)
    with pytest.raises(TypeError):
        index.range_search(np.eye(4, dtype=np.float32), "1.0")
    cos = minedex.Index("Flat", 4, metric="cosine")
    with pytest.raises(ValueError, match="cosine"):
        cos.range_search(np.eye(4, dtype=np.float32), 1.5)
    # an empty result and an empty query batch are fine
    lims, D, I = index.range_search(np.full((1, 4), 100, dtype=np.float32), 0.5)
    assert lims.tolist() == [0, 0] and len(I) == 0
    lims, D, I = index.range_search(np.zeros((0, 4), dtype=np.float32), 0.5)
    assert lims.tolist() == [0]
