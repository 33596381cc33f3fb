"""search(eps=...): the RaBitQ error-bound confidence ε₀ (IvfSearchParameters.BoundEpsilon) from Python."""

import math

import numpy as np
import pytest

import minedex


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def rabitq():
    x = data(3000, 16, 41)
    index = minedex.Index("IVF16,RaBitQ,RFlat", 16)
    index.train(x)
    index.add(x)
    flat = minedex.Index("Flat", 16)
    flat.add(x)
    return index, flat


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


def test_eps_reaches_the_error_bound(rabitq):
    index, flat = rabitq
    q = data(60, 16, 42)
    _, truth = flat.search(q, 10)
    d_default, i_default = index.search(q, 10, probes=16, refine=32)
    d_same, i_same = index.search(q, 10, probes=16, refine=32, eps=np.float32(1.9))
    _, i_tight = index.search(q, 10, probes=16, refine=32, eps=0.05)
    # eps=1.9 is the engine default (RaBitQCodec.DefaultEpsilon): the same search, bit for bit.
    np.testing.assert_array_equal(i_same, i_default)
    np.testing.assert_array_equal(d_same, d_default)
    assert recall(i_default, truth) >= 0.95
    # A bound far tighter than its confidence needs stops the refine stage too early: fewer true neighbours.
    assert recall(i_tight, truth) < recall(i_default, truth) - 0.1


@pytest.mark.parametrize("eps", [0, 0.0, -1.0, 16.5, math.nan, math.inf, -math.inf])
def test_eps_out_of_range_is_rejected_with_the_engines_wording(rabitq, eps):
    index, _ = rabitq
    with pytest.raises(minedex.InvalidArgumentError, match="must be a number greater than 0 and at most 16"):
        index.search(data(2, 16, 1), 3, eps=eps)


@pytest.mark.parametrize("eps", ["1.9", True, [1.0]])
def test_eps_of_the_wrong_type_is_a_type_error(rabitq, eps):
    index, _ = rabitq
    with pytest.raises(TypeError, match="eps must be a number"):
        index.search(data(2, 16, 1), 3, eps=eps)


def test_eps_on_an_index_without_an_error_bound_is_refused():
    index = minedex.Index("IVF4,PQ4", 8)
    x = data(500, 8, 3)
    index.train(x)
    index.add(x)
    with pytest.raises(minedex.EngineError, match="eps"):
        index.search(x[:2], 3, eps=1.0)
