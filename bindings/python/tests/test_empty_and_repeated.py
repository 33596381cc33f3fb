"""C ABI / Python audit leftovers: empty automatic adds at the end of the id range, empty graphs, settings given
twice, an empty hubness query bank, and the per-thread error text of threads that exit. Each refusal has the same
kind as in C# and the C ABI (status 1 -> InvalidArgumentError, status 5 -> EngineError with code 5)."""

import ctypes
import json
import os
import threading

import numpy as np
import pytest

import minedex
from minedex._native import check, lib

D = 8


def data(n, seed):
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


def test_an_empty_automatic_add_returns_no_ids_and_keeps_the_counter():
    index = minedex.Index("Flat", D)
    index.add(data(3, 1))
    assert index.add(np.zeros((0, D), np.float32)).shape == (0,)
    assert list(index.add(data(1, 2))) == [3]


def test_an_empty_automatic_add_after_the_largest_id_is_refused_not_int64_min():
    index = minedex.Index("Flat", D)
    index.add(data(1, 3), ids=[2**63 - 1])
    with pytest.raises(minedex.EngineError, match="No automatic ids are left") as e:
        index.add(np.zeros((0, D), np.float32))  # used to return ids starting at -2**63
    assert e.value.code == 5 and not isinstance(e.value, minedex.InvalidArgumentError)
    # Explicit ids, even none, are not automatic ids (an empty id list used to reach the library as NULL = automatic).
    assert index.add(np.zeros((0, D), np.float32), ids=[]).shape == (0,)
    assert len(index) == 1
    mv = minedex.MultiVectorIndex(D, ksim=2, dproj=4, reps=2, tokens="f32")
    mv.add([data(2, 4)], ids=[2**63 - 1])
    with pytest.raises(minedex.EngineError, match="No automatic ids are left") as e:
        mv.add([])
    assert e.value.code == 5
    assert mv.add([], ids=[]).shape == (0,)


def test_near_duplicates_of_an_empty_graph_are_zero_groups():
    rep, groups = minedex.near_duplicates(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32), 0.5)
    assert rep.shape == (0,) and groups == 0


def test_label_propagation_of_an_empty_graph_is_refused_by_its_own_check():
    with pytest.raises(minedex.InvalidArgumentError, match="No row is labelled"):
        minedex.label_propagation(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32), [], classes=2)


def _hubness_raw(index, options):
    ids = np.arange(len(index), dtype=np.int64)
    occ = np.zeros(ids.shape[0], dtype=np.int32)
    return lib.engine_hubness(index._handle(), ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), ids.shape[0], None,
                              0, D, options, occ.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), None, 0, None)


def test_a_json_option_given_twice_is_refused_naming_it():
    # Python keyword arguments cannot repeat; the C ABI's JSON can, and used to let the last one win.
    index = minedex.Index("Flat", D)
    index.add(data(40, 5))
    check(_hubness_raw(index, json.dumps({"k": 3}).encode()))
    with pytest.raises(minedex.InvalidArgumentError, match="Option 'k' is given twice"):
        check(_hubness_raw(index, b'{"k": 3, "top_hubs": 2, "k": 5}'))


def test_a_search_knob_under_two_aliases_is_refused():
    index = minedex.Index("IVF4,Flat", D)
    x = data(200, 6)
    index.train(x)
    index.add(x)
    dist = np.empty((1, 5), np.float32)
    lab = np.empty((1, 5), np.int64)

    def search_with(params):
        return lib.engine_index_search_with(index._handle(), x[:1].ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 1,
                                            D, 5, dist.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                            lab.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), 1, params)

    check(search_with(b"nprobe=3"))
    with pytest.raises(minedex.InvalidArgumentError, match="'nprobe' sets probes"):
        check(search_with(b"probes=2,nprobe=3"))


def test_hubness_over_an_empty_query_bank_is_refused_naming_nq():
    index = minedex.Index("Flat", D)
    index.add(data(40, 7))
    ids = np.arange(40)
    with pytest.raises(minedex.InvalidArgumentError, match="nq is 0"):
        index.hubness(ids, queries=np.zeros((0, D), np.float32), k=3)  # used to analyse the corpus instead
    occ, report = index.hubness(ids, queries=data(5, 8), k=3)
    assert report["queries"] == 5 and occ.sum() == 15
    occ, report = index.hubness(ids, k=3)
    assert report["queries"] == 40


def _resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_error_text_of_threads_that_exit_is_released():
    index = minedex.Index("Flat", D)
    index.add(data(40, 9))
    big = ('{"' + "k" * (1 << 20) + '": 1}').encode()
    failures = []

    def fail():
        try:
            check(_hubness_raw(index, big))
        except minedex.InvalidArgumentError as e:
            failures.append(len(str(e)) > (1 << 20) and str(e).startswith("Unknown option 'kk"))

    def run(count):
        for _ in range(count):
            t = threading.Thread(target=fail)
            t.start()
            t.join()

    run(20)
    before = _resident_mib()
    run(200)
    grown = _resident_mib() - before
    assert len(failures) == 220 and all(failures)
    # The text used to be native memory that no one freed when its thread exited: about 1 MiB per thread here.
    assert grown < 100, f"resident memory grew by {grown:.0f} MiB over 200 failing threads"
