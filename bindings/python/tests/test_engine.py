"""Tests of the Python bindings over libengine.so (build it first with bindings/python/build.sh)."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import minedex

PKG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def brute_force(x, q, k, metric):
    """Exact reference in float64: (scores-as-reported, ids) of the FlatIndex semantics."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    if metric == "l2":
        dist = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    else:
        dist = q64 @ x64.T
        order = np.argsort(-dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_flat_matches_numpy_exact_search(metric):
    x, q, k = data(2000, 24, 1), data(50, 24, 2), 10
    with minedex.Index("Flat", 24, metric) as index:
        ids = index.add(x)
        assert np.array_equal(ids, np.arange(2000))
        D, I = index.search(q, k)
    assert D.shape == (50, k) and D.dtype == np.float32 and I.dtype == np.int64
    ref_d, ref_i = brute_force(x, q, k, metric)
    np.testing.assert_allclose(D, ref_d, rtol=1e-4, atol=1e-4)
    # Same neighbours; a swap is only allowed between two candidates whose reference scores tie.
    for row in range(q.shape[0]):
        for j in np.nonzero(I[row] != ref_i[row])[0]:
            got = brute_force(x[I[row, j]:I[row, j] + 1], q[row:row + 1], 1, metric)[0][0, 0]
            assert abs(got - ref_d[row, j]) < 1e-4
    assert (I == ref_i).mean() > 0.99


def test_thread_counts_and_python_threads_give_identical_results():
    x, q = data(3000, 16, 3), data(64, 16, 4)
    index = minedex.Index("Flat", 16)
    index.add(x)
    D1, I1 = index.search(q, 5, threads=1)
    D0, I0 = index.search(q, 5, threads=0)
    assert np.array_equal(I1, I0) and np.array_equal(D1, D0)
    results = [None] * 4

    def work(t):
        results[t] = index.search(q, 5, threads=2)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for D, I in results:
        assert np.array_equal(I, I1) and np.array_equal(D, D1)


def test_padding_when_k_exceeds_count():
    index = minedex.Index("Flat", 3, "ip")
    index.add(np.eye(3, dtype=np.float32), ids=[7, 8, 9])
    D, I = index.search(np.array([[1, 0, 0]], dtype=np.float32), 5)
    assert I[0, 0] == 7 and set(I[0, 1:3]) == {8, 9}
    assert list(I[0, 3:]) == [-1, -1]
    assert np.all(np.isneginf(D[0, 3:]))
    empty = minedex.Index("Flat", 3)
    D, I = empty.search(np.zeros((2, 3), dtype=np.float32), 2)
    assert np.all(I == -1) and np.all(np.isposinf(D))


def test_ids_remove_reconstruct_and_auto_ids():
    x = data(10, 4, 5)
    index = minedex.Index("Flat", 4)
    assert list(index.add(x[:3], ids=[100, 5, 6])) == [100, 5, 6]
    auto = index.add(x[3:5])
    assert list(auto) == [101, 102]
    assert len(index) == 5
    np.testing.assert_array_equal(index.reconstruct(5), x[1])
    assert index.remove([5, 999]) == 1
    assert len(index) == 4
    with pytest.raises(KeyError):
        index.reconstruct(5)
    D, I = index.search(x[1], 1)
    assert I[0, 0] != 5
    assert index.description == "Flat" and index.metric == "l2" and index.d == 4 and index.is_trained


def test_save_load_roundtrip_same_and_fresh_process(tmp_path):
    x, q = data(500, 12, 6), data(20, 12, 7)
    index = minedex.Index("Flat", 12, "cosine")
    index.add(x, ids=np.arange(500) * 3)
    D, I = index.search(q, 7)
    path = tmp_path / "flat.idx"
    index.save(str(path))
    with open(path, "rb") as f:
        assert f.read(8) == b"ENGNIDX\0"  # the C# IndexFileWriter container
    loaded = minedex.load(path)
    assert len(loaded) == 500 and loaded.metric == "cosine" and loaded.d == 12
    D2, I2 = loaded.search(q, 7)
    assert np.array_equal(I, I2) and np.array_equal(D, D2)
    np.save(tmp_path / "q.npy", q)
    script = (
        "import sys, numpy as np; sys.path[:0] = [p for p in sys.argv[1:2] if p]; import minedex;"
        "ix = minedex.load(sys.argv[2]); D, I = ix.search(np.load(sys.argv[3]), 7); np.save(sys.argv[4], I)"
    )
    # The child imports the same minedex as this process (the installed one in CI, the source tree otherwise).
    source = PKG_DIR if os.path.dirname(os.path.dirname(os.path.abspath(minedex.__file__))) == os.path.abspath(PKG_DIR) else ""
    subprocess.run([sys.executable, "-c", script, source, str(path), str(tmp_path / "q.npy"),
                    str(tmp_path / "i.npy")], check=True)
    assert np.array_equal(np.load(tmp_path / "i.npy"), I)


def test_corrupt_and_missing_files_raise(tmp_path):
    index = minedex.Index("Flat", 4)
    index.add(data(50, 4, 8))
    path = tmp_path / "a.idx"
    index.save(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "bad.idx"
    bad.write_bytes(bytes(blob))
    with pytest.raises(minedex.CorruptFileError) as e:  # the same class read_mined raises for a damaged rows file
        minedex.load(bad)
    assert e.value.status == "corrupt" and isinstance(e.value, minedex.EngineError)
    truncated = tmp_path / "short.idx"
    truncated.write_bytes(bytes(blob[:20]))
    with pytest.raises(minedex.CorruptFileError) as e:
        minedex.load(truncated)
    assert e.value.status == "corrupt"
    with pytest.raises(minedex.EngineError) as e:
        minedex.load(tmp_path / "missing.idx")
    assert e.value.status == "io" and "missing.idx" in str(e.value)


@pytest.mark.parametrize("call, needle", [
    (lambda ix: ix.add(np.zeros((2, 5), np.float32)), "dimension"),
    (lambda ix: ix.train(np.zeros((2, 3), np.float32)), "dimension"),
    (lambda ix: ix.search(np.zeros((1, 5), np.float32), 1), "dimension"),
    (lambda ix: ix.add(np.array([[1, np.nan, 0, 0]], np.float32)), "non-finite"),
    (lambda ix: ix.add(np.array([[1, np.inf, 0, 0]], np.float32)), "non-finite"),
    (lambda ix: ix.search(np.array([[np.nan, 0, 0, 0]], np.float32), 1), "non-finite"),
    (lambda ix: ix.search(np.zeros((1, 4), np.float32), 0), "k must be at least 1"),
    (lambda ix: ix.search(np.zeros((1, 4), np.float32), -3), "k must be at least 1"),
    (lambda ix: ix.search(np.zeros((1, 4), np.float32), 1, threads=-1), "threads"),
    (lambda ix: ix.search(np.zeros((1, 4), np.float32), 1, probes=8), "probes"),
    (lambda ix: ix.search(np.zeros((1, 4), np.float32), 1, refine=2.0), "refine"),
    (lambda ix: ix.add(np.zeros((2, 4), np.float32), ids=[-1, 3]), "negative"),
    (lambda ix: ix.add(np.zeros((2, 4), np.float32), ids=[3, 3]), "already present"),
    (lambda ix: ix.add(np.zeros((2, 4), np.float32), ids=[3]), "one id per vector"),
    (lambda ix: ix.add(np.zeros((2, 2, 4), np.float32)), "2-D"),
    (lambda ix: ix.add([["a", "b", "c", "d"]]), "float32"),
])
def test_bad_input_raises_engine_error(call, needle):
    index = minedex.Index("Flat", 4)
    index.add(np.ones((3, 4), np.float32), ids=[0, 1, 2])
    with pytest.raises(minedex.EngineError) as e:
        call(index)
    assert needle.lower() in str(e.value).lower()
    # A rejected call changes nothing and the index stays usable.
    assert len(index) == 3
    D, I = index.search(np.ones((1, 4), np.float32), 3)
    assert sorted(I[0]) == [0, 1, 2]


@pytest.mark.parametrize("spec, d, metric, needle", [
    ("IVF9,Nope", 4, "l2", "spec"),
    ("Flat", 0, "l2", "dimension"),
    ("Flat", -4, "l2", "dimension"),
    ("Flat", 4, "manhattan", "metric"),
])
def test_bad_construction_raises(spec, d, metric, needle):
    with pytest.raises(minedex.EngineError) as e:
        minedex.Index(spec, d, metric)
    assert needle in str(e.value).lower()
    assert e.value.code == 1


def test_closed_index_raises_and_close_is_idempotent():
    index = minedex.Index("Flat", 2)
    index.close()
    index.close()
    with pytest.raises(minedex.EngineError) as e:
        len(index)
    assert e.value.status == "invalid handle"


def test_native_handle_checks_and_thread_local_errors():
    from minedex._native import lib
    assert lib.engine_index_free(None) == 0
    assert lib.engine_index_free(12345) == 2
    assert b"handle" in lib.engine_last_error()
    messages = {}

    def fail(name, d):
        try:
            minedex.Index("Flat", d)
        except minedex.EngineError:
            pass
        messages[name] = lib.engine_last_error()

    a = threading.Thread(target=fail, args=("a", -1))
    a.start(); a.join()
    b = threading.Thread(target=fail, args=("b", 0))
    b.start(); b.join()
    assert b"-1" in messages["a"] and b"0" in messages["b"] and messages["a"] != messages["b"]


def test_empty_batches_are_accepted():
    index = minedex.Index("Flat", 4)
    assert len(index.add(np.zeros((0, 4), np.float32))) == 0
    D, I = index.search(np.zeros((0, 4), np.float32), 3)
    assert D.shape == (0, 3)
    assert index.remove([]) == 0


def test_hnsw_spec_through_the_c_abi(tmp_path):
    """HNSW specs go through the same create/add/search/remove/save/load calls as every index (default ef)."""
    x, q, k = data(2000, 16, 21), data(40, 16, 22), 10
    with minedex.Index("HNSW16,efC100", 16) as index:
        with pytest.raises(minedex.EngineError, match="ef"):
            minedex.Index("Flat", 16).search(q, k, ef=8)  # Flat has no ef
        index.add(x)
        _, I = index.search(q, k)
        _, ref_i = brute_force(x, q, k, "l2")
        recall = np.mean([len(set(I[r]) & set(ref_i[r])) / k for r in range(q.shape[0])])
        assert recall > 0.9
        with pytest.raises(minedex.EngineError):
            index.search(q, k, probes=4)  # an HNSW index has no probes: a clear error
        with pytest.raises(minedex.EngineError, match="1..1048576"):
            index.search(q, k, ef=0)
        _, I1 = index.search(q, k, ef=1)
        assert (I1 >= 0).all()  # ef below k is raised to k
        _, I2 = index.search(q, k, ef=200)
        recall2 = np.mean([len(set(I2[r]) & set(ref_i[r])) / k for r in range(q.shape[0])])
        assert recall2 >= recall and recall2 > 0.97
        assert index.remove(np.arange(10)) == 10
        path = str(tmp_path / "h.idx")
        index.save(path)
    with minedex.load(path) as loaded:
        assert len(loaded) == 1990
        _, I2 = loaded.search(q, k)
        assert not np.isin(I2, np.arange(10)).any()


def test_ivf_hnsw_quantizer_ef_through_the_c_abi():
    """IVF{n}_HNSW{M}: quantizer_ef reaches the graph over the centroids; an IVF without the graph rejects it, as C# does."""
    x, q, k = data(3000, 16, 31), data(40, 16, 32), 10
    _, ref_i = brute_force(x, q, k, "l2")
    with minedex.Index("IVF256_HNSW4,Flat", 16) as graph, minedex.Index("IVF64,Flat", 16) as flat:
        graph.train(x)
        graph.add(x)
        flat.train(x)
        flat.add(x)
        recall = lambda I: np.mean([len(set(I[r]) & set(ref_i[r])) / k for r in range(q.shape[0])])
        _, narrow = graph.search(q, k, probes=4, quantizer_ef=1)
        _, wide = graph.search(q, k, probes=4, quantizer_ef=256)
        assert recall(wide) > recall(narrow)
        with pytest.raises(minedex.EngineError, match="quantizer_ef"):
            flat.search(q, k, quantizer_ef=32)
        with pytest.raises(minedex.EngineError, match="1..1048576"):
            graph.search(q, k, quantizer_ef=0)


def test_soar_spill_through_the_c_abi(tmp_path):
    """IVF{n}(soar): every vector is filed in two lists, yet a search returns each id once; at equal probes the spilled
    index finds more neighbours; remove takes both copies; a saved file keeps the spec; a bad weight is an
    InvalidArgumentError naming it, as in C#."""
    x, q, k = data(3000, 16, 51), data(60, 16, 52), 10
    _, ref_i = brute_force(x, q, k, "l2")
    recall = lambda I: np.mean([len(set(I[r]) & set(ref_i[r])) / k for r in range(q.shape[0])])
    with minedex.Index("IVF64(soar),PQ8x4fs,RFlat", 16) as soar, minedex.Index("IVF64,PQ8x4fs,RFlat", 16) as plain:
        for index in (soar, plain):
            index.train(x)
            index.add(x)
        _, spilled = soar.search(q, k, probes=2, refine=4)
        _, single = plain.search(q, k, probes=2, refine=4)
        assert all(len(set(row)) == k for row in spilled)
        assert recall(spilled) > recall(single) + 0.02
        assert soar.remove(np.arange(0, 3000, 2)) == 1500
        _, after = soar.search(q, k, probes=64, refine=8)
        assert not np.isin(after, np.arange(0, 3000, 2)).any()
        assert all(len(set(row)) == k for row in after)
        path = str(tmp_path / "soar.idx")
        soar.save(path)
    with minedex.load(path) as loaded:
        assert loaded.description == "IVF64(soar),PQ8x4fs,RFlat"
        assert len(loaded) == 1500
        np.testing.assert_array_equal(loaded.search(q, k, probes=64, refine=8)[1], after)
    with pytest.raises(minedex.InvalidArgumentError, match="SOAR weight"):
        minedex.Index("IVF64(soar=-1),Flat", 16)


def test_rabitq_eps_through_the_c_abi():
    """eps reaches RaBitQ's error-bound re-ranking (a bound too tight re-scores too few candidates and loses recall
    against the default 1.9); wrong types, out-of-range values and indexes without a bound are rejected as C# rejects
    them."""
    x, q, k = data(3000, 32, 41), data(40, 32, 42), 10
    _, ref_i = brute_force(x, q, k, "l2")
    with minedex.Index("IVF32,RaBitQfs1,RFlat", 32) as rabitq, minedex.Index("IVF32,PQ8x4fs,RFlat", 32) as pq:
        for index in (rabitq, pq):
            index.train(x)
            index.add(x)
        recall = lambda I: np.mean([len(set(I[r]) & set(ref_i[r])) / k for r in range(q.shape[0])])
        _, tight = rabitq.search(q, k, probes=32, refine=16, eps=0.25)
        _, default = rabitq.search(q, k, probes=32, refine=16, eps=np.float32(1.9))
        _, implicit = rabitq.search(q, k, probes=32, refine=16)
        np.testing.assert_array_equal(default, implicit)  # 1.9 is the default
        assert recall(default) > recall(tight) + 0.03
        with pytest.raises(minedex.InvalidArgumentError, match="eps"):
            rabitq.search(q, k, eps=0.0)
        with pytest.raises(minedex.InvalidArgumentError, match="eps"):
            rabitq.search(q, k, eps=16.5)
        with pytest.raises(minedex.InvalidArgumentError, match="eps"):
            rabitq.search(q, k, eps=float("nan"))
        with pytest.raises(TypeError, match="eps"):
            rabitq.search(q, k, eps="2")
        with pytest.raises(TypeError, match="eps"):
            rabitq.search(q, k, eps=True)
        with pytest.raises(minedex.EngineError, match="eps"):
            pq.search(q, k, eps=2.0)


def test_add_in_parts_equals_one_call_and_is_all_or_nothing(monkeypatch):
    import minedex.index as index_module
    rng = np.random.default_rng(31)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    whole = minedex.Index("Flat", 8, metric="l2")
    whole.add(x)
    whole.add(x, ids=np.arange(100, 150))
    monkeypatch.setattr(index_module, "MAX_CALL_VALUES", 8 * 7)  # 7 rows per native call
    parts = minedex.Index("Flat", 8, metric="l2")
    np.testing.assert_array_equal(parts.add(x), np.arange(50))
    np.testing.assert_array_equal(parts.add(x, ids=np.arange(100, 150)), np.arange(100, 150))
    assert len(parts) == 100
    D1, I1 = whole.search(x[:5], 5)
    D2, I2 = parts.search(x[:5], 5)
    np.testing.assert_array_equal(I1, I2)
    # a duplicate id in a later part: the parts already added are taken back
    bad_ids = np.arange(200, 250)
    bad_ids[40] = 3
    with pytest.raises(minedex.InvalidArgumentError):
        parts.add(x, ids=bad_ids)
    assert len(parts) == 100
    y = x.copy()
    y[45, 2] = np.nan
    with pytest.raises(minedex.InvalidArgumentError, match="row 45"):
        parts.add(y)
    assert len(parts) == 100


def test_mine_hard_negatives_trains_on_a_sample_above_one_call(monkeypatch):
    import minedex.index as index_module
    rng = np.random.default_rng(32)
    c = rng.standard_normal((400, 8)).astype(np.float32)
    q = c[:20] + 0.01 * rng.standard_normal((20, 8)).astype(np.float32)
    ref = minedex.mine_hard_negatives(q, c, np.arange(20), index="Flat", metric="l2", range_max=10,
                                      num_negatives=2, verbose=False)
    monkeypatch.setattr(index_module, "MAX_CALL_VALUES", 8 * 64)
    got = minedex.mine_hard_negatives(q, c, np.arange(20), index="Flat", metric="l2", range_max=10,
                                      num_negatives=2, verbose=False)
    np.testing.assert_array_equal(ref.negatives, got.negatives)


def test_spann_fast_scan_codes_search_save_and_load(tmp_path):
    # SPANN postings holding RaBitQ codes in fast-scan blocks: self-queries find themselves, a saved directory loads
    # back (postings then read in place from the mapped file) with the same results, and a bad codec is named.
    x = data(3000, 24, 41)
    index = minedex.Index("SPANN(size=32,codec=RaBitQfs4)", 24, "cosine")
    index.train(x)
    index.add(x)
    D, I = index.search(x[:50], 5)
    assert np.mean(I[:, 0] == np.arange(50)) >= 0.98
    path = tmp_path / "spann"
    index.save(str(path))
    loaded = minedex.load(path)
    D2, I2 = loaded.search(x[:50], 5)
    assert np.array_equal(I, I2) and np.allclose(D, D2, atol=1e-6)
    with pytest.raises(ValueError) as e:
        minedex.Index("SPANN(codec=RaBitQfs2)", 24)
    assert "RaBitQfs2" in str(e.value)
