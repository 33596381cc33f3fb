"""Issue 11 through the Python bindings: no silent wrapping or truncation (defect 6), bounded knobs (5), the same
error for any thread count (3), empty mining inputs (4) and vectors whose norm overflows float32 (7)."""

import glob
import os

import numpy as np
import pytest

import minedex


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.fixture
def flat():
    index = minedex.Index("Flat", 4)
    index.add(data(10, 4, 1))
    return index


def assert_value_error(call, needle):
    with pytest.raises(ValueError) as e:
        call()
    assert isinstance(e.value, minedex.EngineError) and e.value.code == 1
    assert needle.lower() in str(e.value).lower(), str(e.value)


def assert_type_error(call, needle):
    with pytest.raises(TypeError) as e:
        call()
    assert isinstance(e.value, minedex.EngineError) and e.value.code == 1
    assert needle.lower() in str(e.value).lower(), str(e.value)


# ------------------------------------------------------------------------------------------- defect 6: integers
def test_reconstruct_id_beyond_int64_is_rejected_not_wrapped(flat):
    np.testing.assert_array_equal(flat.reconstruct(5), flat.reconstruct(np.int64(5)))
    assert_value_error(lambda: flat.reconstruct(2**64 + 5), "id")
    assert_value_error(lambda: flat.reconstruct(2**63), "id")
    assert_type_error(lambda: flat.reconstruct(5.0), "id")
    assert_type_error(lambda: flat.reconstruct(True), "bool")
    with pytest.raises(KeyError):
        flat.reconstruct(-(2**63))


@pytest.mark.parametrize("k, kind, needle", [
    (2.7, TypeError, "k must be an integer"),
    (2.0, TypeError, "k must be an integer"),
    ("3", TypeError, "k must be an integer"),
    (True, TypeError, "bool"),
    (np.float32(3), TypeError, "k must be an integer"),
    (2**32 + 1, ValueError, "out of range"),
    (2**31, ValueError, "out of range"),
])
def test_k_must_be_an_integer_in_range(flat, k, kind, needle):
    with pytest.raises(kind) as e:
        flat.search(data(1, 4, 2), k)
    assert needle.lower() in str(e.value).lower()
    assert isinstance(e.value, minedex.EngineError)


def test_numpy_integer_scalars_are_accepted(flat):
    D, I = flat.search(data(2, 4, 2), np.int32(3), threads=np.int64(1))
    assert I.shape == (2, 3)
    D2, I2 = flat.search(data(2, 4, 2), 3, threads=1)
    assert np.array_equal(I, I2)


@pytest.mark.parametrize("name", ["threads", "probes", "refine"])
def test_search_knobs_beyond_int32_are_rejected_not_wrapped(name):
    index = minedex.Index("IVF4,Flat", 4)
    index.train(data(200, 4, 3))
    index.add(data(200, 4, 3))
    q = data(1, 4, 4)
    assert_value_error(lambda: index.search(q, 1, **{name: 2**32 + 1}), name)
    assert_type_error(lambda: index.search(q, 1, **{name: 1.5}), name)
    assert_type_error(lambda: index.search(q, 1, **{name: "2"}), name)


def test_probes_2_pow_32_plus_1_does_not_act_as_1():
    index = minedex.Index("IVF8,Flat", 4)
    index.train(data(400, 4, 5))
    index.add(data(400, 4, 5))
    with pytest.raises(ValueError):
        index.search(data(1, 4, 6), 1, probes=2**32 + 1)


def test_dimension_must_be_an_integer():
    assert_type_error(lambda: minedex.Index("Flat", 4.0), "integer")
    assert_type_error(lambda: minedex.Index("Flat", "4"), "integer")
    assert_value_error(lambda: minedex.Index("Flat", 2**32 + 4), "out of range")


# ----------------------------------------------------------------------------------------------- defect 6: ids
@pytest.mark.parametrize("ids, kind", [
    (np.array([5000.7, 1.0]), TypeError),
    (np.array([5000.0, 1.0]), TypeError),
    ([5000.7, 1.0], TypeError),
    (np.array([True, False]), TypeError),
    (["1", "2"], TypeError),
    (np.array([2**63, 1], dtype=np.uint64), ValueError),
    ([2**64, 1], TypeError),
])
def test_float_bool_string_and_too_large_ids_are_rejected(ids, kind):
    index = minedex.Index("Flat", 4)
    with pytest.raises(kind):
        index.add(data(2, 4, 7), ids=ids)
    with pytest.raises(kind):
        index.remove(ids)
    assert len(index) == 0


def test_integer_id_dtypes_are_accepted():
    index = minedex.Index("Flat", 4)
    for dt in (np.int8, np.int32, np.uint32, np.uint64):
        before = len(index)
        index.add(data(2, 4, 8), ids=np.array([before * 10, before * 10 + 1], dtype=dt))
        assert len(index) == before + 2
    assert index.remove(np.array([], dtype=np.float64)) == 0  # an empty array holds no bad id


def test_mining_id_lists_must_be_integers():
    index = minedex.Index("Flat", 4)
    index.add(data(50, 4, 9))
    anchors = data(3, 4, 10)
    with pytest.raises(TypeError):
        index.mine([[1.5], [2], [3]], anchors=anchors)
    with pytest.raises(TypeError):
        index.mine(np.array([1.0, 2.0, 3.0]), anchors=anchors)
    with pytest.raises(TypeError):
        index.mine([[1], [2], [3]], anchor_ids=[0.5, 1, 2])
    with pytest.raises(TypeError):
        index.mine([[1], [2], [3]], anchors=anchors, exclusions=[[4.2], [], []])
    with pytest.raises(TypeError):
        index.mine([[1], [2], [3]], anchors=anchors, num_negatives=2.9)
    with pytest.raises(TypeError):
        index.hubness(np.arange(50), k=2.5)
    with pytest.raises(TypeError):
        index.mine([[1], [2], [3]], anchors=anchors, sampling="uniform", hubness_gamma=1.0,
                   k_occurrence=(np.arange(50), np.full(50, 1.5)))
    negatives, _, _ = index.mine([[1], [2], [3]], anchors=anchors, num_negatives=np.int64(2), threads=np.int32(1))
    assert negatives.shape == (3, 2)


# --------------------------------------------------------------------------------------------- defect 6: strings
def test_spec_metric_and_paths_with_nul_are_rejected(tmp_path):
    assert_value_error(lambda: minedex.Index("Flat\0garbage", 4), "NUL")
    assert_value_error(lambda: minedex.Index("Flat", 4, "l2\0x"), "NUL")
    assert_type_error(lambda: minedex.Index(b"Flat", 4), "string")
    index = minedex.Index("Flat", 4)
    index.add(data(3, 4, 11))
    target = tmp_path / "a.idx"
    assert_value_error(lambda: index.save(str(target) + "\0.bak"), "NUL")
    assert not target.exists()
    index.save(target)
    assert_value_error(lambda: minedex.load(str(target) + "\0junk"), "NUL")
    assert_value_error(lambda: minedex.load(bytes(target) + b"\0junk"), "NUL")
    assert_type_error(lambda: minedex.load(42), "path")
    assert len(minedex.load(target)) == 3
    with pytest.raises(ValueError):
        index.mine([[0]], anchors=data(1, 4, 12), output=str(tmp_path / "o.jsonl") + "\0x")
    with pytest.raises(ValueError):
        index.mine([[0]], anchors=data(1, 4, 12), sampling="top\0x")


# ---------------------------------------------------------------------------------------------- defect 6: arrays
@pytest.mark.parametrize("bad", [
    np.ones((2, 4), dtype=np.complex64) * (1 + 2j),
    np.ones((2, 4), dtype=np.complex128),
    np.ones((2, 4), dtype=bool),
    np.array([["1", "2", "3", "4"]]),
    [[1 + 1j, 0, 0, 0]],
])
def test_complex_bool_and_string_vectors_are_rejected(flat, bad):
    with pytest.raises(TypeError):
        flat.add(bad)
    with pytest.raises(TypeError):
        flat.search(bad, 1)
    with pytest.raises(TypeError):
        flat.train(bad)
    assert len(flat) == 10


def test_integer_vectors_are_still_accepted(flat):
    D, I = flat.search(np.array([[1, 0, 0, 0]], dtype=np.int32), 1)
    assert I.shape == (1, 1)


def test_nan_option_is_rejected():
    index = minedex.Index("Flat", 4)
    index.add(data(20, 4, 13))
    assert_value_error(lambda: index.mine([[1]], anchors=data(1, 4, 14), relative_margin=float("nan")), "relative_margin")
    assert_type_error(lambda: index.mine([[1]], anchors=data(1, 4, 14), seed=[1]), "seed")


# ------------------------------------------------------------------------------------------ defect 5: knob bounds
def spann(n=1500, d=8, seed=15):
    index = minedex.Index("SPANN(size=16,max=64)", d)
    x = data(n, d, seed)
    index.train(x)
    index.add(x)
    return index, x


def test_spann_probes_bounds():
    index, x = spann()
    D1, I1 = index.search(x[:4], 5, threads=1, probes=2**31 - 1)  # clamped to the posting count, no OOM
    assert I1.shape == (4, 5) and np.all(I1[:, 0] == np.arange(4))
    assert_value_error(lambda: index.search(x[:1], 5, probes=-1), "probes")
    assert_value_error(lambda: index.search(x[:1], 5, threads=-1), "threads")
    assert_value_error(lambda: index.search(x[:1], 5, refine=2), "refine")  # SPANN has no refine knob


def test_ivf_probes_and_refine_bounds():
    index = minedex.Index("IVF8,PQ4,RFlat", 8)
    x = data(1000, 8, 16)
    index.train(x)
    index.add(x)
    index.search(x[:2], 3, probes=8, refine=65536)
    assert_value_error(lambda: index.search(x[:2], 3, probes=9), "probes")
    assert_value_error(lambda: index.search(x[:2], 3, refine=65537), "refine")
    assert_value_error(lambda: index.search(x[:2], 3, refine=-1), "refine")
    assert_value_error(lambda: index.search(x[:2], 3, probes=-5), "probes")


def test_mining_threads_and_hubness_k_bounds():
    index = minedex.Index("Flat", 4)
    index.add(data(30, 4, 17))
    assert_value_error(lambda: index.mine([[1]], anchors=data(1, 4, 18), threads=-1), "threads")
    assert_value_error(lambda: index.mine([[1]], anchors=data(1, 4, 18), num_negatives=0), "numnegatives")
    assert_value_error(lambda: index.hubness(np.arange(30), k=0), "k")
    assert_value_error(lambda: index.hubness(np.arange(30), k=3, threads=-2), "threads")


# ----------------------------------------------------------------------------- defect 3: same error for any thread count
@pytest.mark.parametrize("threads", [1, 4])
def test_corrupt_spann_postings_give_corrupt_for_any_thread_count(tmp_path, threads):
    index, x = spann(n=2000, d=8, seed=19)
    index.save(tmp_path / "spann")
    index.close()
    loaded = minedex.load(tmp_path / "spann")
    postings = glob.glob(str(tmp_path / "spann" / "postings-*.dat"))
    assert len(postings) == 1
    size = os.path.getsize(postings[0])
    with open(postings[0], "r+b") as f:  # damage every block in place while the index is open
        f.write(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes())
    with pytest.raises(minedex.EngineError) as e:
        loaded.search(x[:64], 5, threads=threads)
    assert e.value.code == 4 and e.value.status == "corrupt", (e.value.code, str(e.value))
    assert "postings-0.dat" in str(e.value)
    try:
        loaded.close()  # background maintenance may have met the damage too; that is reported, not hidden
    except minedex.EngineError as closing:
        assert closing.code == 4


# ------------------------------------------------------------------------------------------ defect 4: empty inputs
def test_mining_an_empty_index_or_no_anchors():
    empty = minedex.Index("Flat", 4)
    assert_value_error(lambda: empty.mine([[0]], anchors=data(1, 4, 20)), "empty")
    index = minedex.Index("Flat", 4)
    index.add(data(10, 4, 21))
    negatives, scores, report = index.mine([], anchors=np.zeros((0, 4), np.float32), num_negatives=2, range_max=5)
    assert negatives.shape == (0, 2) and scores.shape == (0, 2)


# --------------------------------------------------------------------------------- defect 7: norms that overflow
def test_vectors_whose_norm_overflows_float32_are_rejected(flat):
    huge = data(3, 4, 22)
    huge[1] = 1e20
    assert_value_error(lambda: flat.add(huge), "row 1")
    assert_value_error(lambda: flat.search(huge, 2), "row 1")
    assert len(flat) == 10
    assert_value_error(lambda: flat.add(np.full((1, 4), 1e300)), "beyond float32's range")  # float64 beyond float32, named
    ivf = minedex.Index("IVF2,PQ2", 4)
    assert_value_error(lambda: ivf.train(np.vstack([data(100, 4, 23), huge])), "row 101")
