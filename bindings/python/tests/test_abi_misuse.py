"""Misuse of handles, copies, paths and ids through the Python binding: refused with the engine's status, never an
alias of a native object, a different file or a silently wrapped id."""

import copy
import os
import pickle
import threading

import numpy as np
import pytest

import minedex
from minedex._native import lib


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("clone", [pickle.dumps, copy.copy, copy.deepcopy], ids=["pickle", "copy", "deepcopy"])
def test_an_index_cannot_be_pickled_or_copied_into_a_second_owner_of_its_handle(clone):
    # Copies used to share the raw handle: collecting the copy freed the original's native index (and an unpickled
    # handle in another process pointed at nothing).
    index = minedex.Index("Flat", 4)
    index.add(data(10, 4, 1))
    with pytest.raises(TypeError, match="save"):
        clone(index)
    assert len(index) == 10
    mv = minedex.MultiVectorIndex(4)
    with pytest.raises(TypeError, match="save"):
        clone(mv)
    assert len(mv) == 0
    cutoff = minedex.CalibratedCutoff.fit([[0.9, 0.8, 0.1, 0.05]], [[1, 1, 0, 0]], top_k=2, iterations=5)
    with pytest.raises(TypeError):
        clone(cutoff)
    assert cutoff.threshold == cutoff.threshold


def test_a_stale_handle_never_reaches_a_newer_object():
    # Native handle values used to be GCHandle addresses, which the runtime reuses: a double free after another
    # create freed the new index, and a wrong-kind free destroyed the object it was given.
    a = minedex.Index("Flat", 4)
    stale = a._h
    a.close()
    b = minedex.Index("Flat", 4)
    b.add(data(3, 4, 2))
    assert stale != b._h
    assert lib.engine_index_free(stale) == 2
    assert len(b) == 3
    assert lib.engine_range_result_free(b._h) == 2
    assert b"engine_index" in lib.engine_last_error()
    assert len(b) == 3
    b.close()


def test_a_path_that_is_not_utf8_is_refused_not_saved_elsewhere(tmp_path):
    index = minedex.Index("Flat", 4)
    index.add(data(5, 4, 3))
    target = os.path.join(os.fsencode(tmp_path), b"bad\xff.idx")
    with pytest.raises(minedex.InvalidArgumentError, match="UTF-8"):
        index.save(target)
    with pytest.raises(minedex.InvalidArgumentError, match="UTF-8"):
        index.save(os.fsdecode(target))  # the same bytes as a str with a surrogate escape
    with pytest.raises(minedex.InvalidArgumentError, match="UTF-8"):
        minedex.load(target)
    assert os.listdir(tmp_path) == []  # before the fix: a file named "bad\ufffd.idx"


def test_automatic_ids_after_the_largest_id_are_refused_not_restarted():
    index = minedex.Index("Flat", 4)
    index.add(data(2, 4, 4))
    index.add(data(1, 4, 5), ids=[2**63 - 1])
    with pytest.raises(minedex.EngineError, match="automatic ids") as e:
        index.add(data(1, 4, 6))  # used to return id 2, below the largest id added
    assert e.value.code == 5
    assert len(index) == 3


def test_a_rejected_multivector_add_keeps_automatic_ids():
    rng = np.random.default_rng(7)
    items = [rng.standard_normal((3, 8)).astype(np.float32) for _ in range(6)]
    mv = minedex.MultiVectorIndex(8, ksim=2, dproj=4, reps=2, fde_spec="IVF2,Flat", tokens="f32")
    with pytest.raises(minedex.EngineError) as e:
        mv.add(items)  # IVF FDE index not trained yet: status 5, and the ids must not be used up
    assert e.value.code == 5
    mv.train(items)
    assert list(mv.add(items)) == [0, 1, 2, 3, 4, 5]


def test_close_while_other_threads_search_is_safe():
    x = data(2000, 16, 8)
    for spec in ("Flat", "HNSW16", "IVF8,Flat"):
        index = minedex.Index(spec, 16)
        index.train(x)
        index.add(x)
        errors, done = [], threading.Event()

        def search():
            while not done.is_set():
                try:
                    _, labels = index.search(x[:50], 5, threads=1)
                    assert labels.min() >= 0 and labels.max() < 2000
                except minedex.EngineError as err:
                    errors.append(err)
                    return

        threads = [threading.Thread(target=search) for _ in range(3)]
        for t in threads:
            t.start()
        index.close()
        done.set()
        for t in threads:
            t.join()
        assert all(err.code == 2 for err in errors), [str(err) for err in errors]


def test_sparse_tensor_is_a_type_error_of_the_binding():
    torch = pytest.importorskip("torch")
    with minedex.Index("Flat", 4) as index:
        with pytest.raises(minedex.ArgumentTypeError, match="dense"):
            index.search(torch.zeros(2, 4).to_sparse(), 1)
