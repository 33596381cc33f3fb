"""k-NN graphs, near-duplicate groups and label propagation (the engine's KnnGraphBuilder, NearDuplicates and
LabelPropagation over the C ABI)."""

import ctypes

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._mining import _report
from ._native import check, lib
from ._range import radius_value

I32P = ctypes.POINTER(ctypes.c_int32)


def knn_graph(x, k, index=None, metric="l2", ids=None, threads=0, probes=None, ef=None):
    """The k nearest neighbours of every row of ``x`` (n, d), self excluded.

    With ``index`` (a :class:`minedex.Index` holding the rows of ``x`` under ``ids``, default 0..n-1) the graph comes
    from its search (``probes`` / ``ef`` as in :meth:`Index.search`). Without it the engine builds an index over ``x``
    (ids 0..n-1) and chooses its setting by a sampled recall check (recall@k >= 0.95; exact below 20000 points).

    Returns ``(neighbors, distances, report)``: int64 and float32 arrays of shape (n, k), best first, padded with -1;
    ``report`` a dict (index, search, auto, sampled_recall). ``k >= n`` raises ValueError.
    """
    x = v.rows(x, "x")
    n, d = x.shape
    k = v.integer(k, "k")
    threads = v.integer(threads, "threads")
    width = max(k, 0)
    neighbors = np.empty((n, width), dtype=np.int64)
    distances = np.empty((n, width), dtype=np.float32)
    params = []
    if ef is not None:
        params.append(f"ef={v.integer(ef, 'ef', 1, 1 << 20)}")
    if probes is not None:
        params.append(f"probes={v.integer(probes, 'probes', 1)}")
    if index is None:
        if ids is not None or params:
            raise v.InvalidArgumentError("ids, probes and ef apply with an index; without one the engine numbers the "
                                         "rows 0..n-1 and chooses the search setting itself.")
        handle, id_ptr, metric_b, params_b = None, None, v.text(metric, "metric"), None
    else:
        handle, metric_b = index._handle(), None
        id_arr = None if ids is None else v.ids(ids, "ids", n)
        id_ptr = None if id_arr is None else arr.iptr(id_arr)
        params_b = ",".join(params).encode("utf-8") if params else None
    report = _report(lambda buf, cap, needed: lib.engine_knn_graph(
        handle, arr.fptr(x), n, d, id_ptr, metric_b, k, threads, params_b, neighbors.ctypes.data_as(arr.I64P),
        distances.ctypes.data_as(arr.F32P), buf, cap, needed))
    return neighbors, distances, report


def _graph(neighbors, distances, ids):
    nb = np.ascontiguousarray(neighbors)
    if nb.ndim != 2:
        raise v.InvalidArgumentError(f"neighbors must be a 2-D (n, k) array; got shape {nb.shape}.")
    n, k = nb.shape
    nb = _neighbor_ids(nb)
    ds = v.rows(distances, "distances") if np.asarray(distances).size else np.zeros((n, k), np.float32)
    if ds.shape != (n, k):
        raise v.InvalidArgumentError(f"distances has shape {ds.shape} but neighbors {(n, k)}.")
    id_arr = None if ids is None else v.ids(ids, "ids", n)
    return n, k, nb, ds, id_arr


def _neighbor_ids(nb):
    if nb.size and nb.dtype.kind not in "iu":
        raise v.ArgumentTypeError(f"neighbors must be integers; got dtype {nb.dtype}.")
    return np.ascontiguousarray(nb, dtype=np.int64)


def near_duplicates(neighbors, distances, threshold, metric="l2", ids=None):
    """Near-duplicate groups of a graph from :func:`knn_graph`: connected components (union-find) of the edges with
    squared l2 distance <= ``threshold`` (similarity >= ``threshold`` for ip / cosine).

    Returns ``(representative, groups)``: per row the smallest id of its group (int64, shape (n,)) and the group
    count. Deduplicate with ``ids[representative == ids]`` (ids default to 0..n-1). An empty graph (n = 0) gives an
    empty ``representative`` and 0 groups.
    """
    n, k, nb, ds, id_arr = _graph(neighbors, distances, ids)
    threshold = radius_value(threshold)
    rep = np.empty(n, dtype=np.int64)
    groups = ctypes.c_int64()
    check(lib.engine_near_duplicates(None if id_arr is None else arr.iptr(id_arr), n, k, arr.iptr(nb), arr.fptr(ds),
                                     v.text(metric, "metric"), threshold, arr.iptr(rep),
                                     ctypes.byref(groups)))
    return rep, groups.value


def label_propagation(neighbors, distances, labels, classes, metric="l2", ids=None, alpha=0.9, iterations=10, gamma=3.0):
    """ZLaP-style label propagation over a graph from :func:`knn_graph`.

    ``labels`` (n,) holds a class in 0..classes-1 or -1 for unlabelled rows. Returns ``(scores, predicted)``: float32
    (n, classes) and int32 (n,) argmax classes (-1 for rows not connected to any labelled row). At least one row must
    be labelled (an empty graph raises :class:`minedex.InvalidArgumentError`).
    """
    n, k, nb, ds, id_arr = _graph(neighbors, distances, ids)
    lab = np.asarray(labels)
    if lab.size and lab.dtype.kind not in "iu":
        raise v.ArgumentTypeError(f"labels must be integers; got dtype {lab.dtype}.")
    lab = np.ascontiguousarray(lab.reshape(-1), dtype=np.int32)
    if lab.shape[0] != n:
        raise v.InvalidArgumentError(f"labels holds {lab.shape[0]} entries for {n} graph rows.")
    classes = v.integer(classes, "classes")
    iterations = v.integer(iterations, "iterations")
    alpha, gamma = radius_value(alpha), radius_value(gamma)
    scores = np.empty((n, max(classes, 0)), dtype=np.float32)
    predicted = np.empty(n, dtype=np.int32)
    check(lib.engine_label_propagation(None if id_arr is None else arr.iptr(id_arr), n, k, arr.iptr(nb), arr.fptr(ds),
                                       v.text(metric, "metric"), lab.ctypes.data_as(I32P) if n else None, classes,
                                       alpha, iterations, gamma, arr.fptr(scores),
                                       predicted.ctypes.data_as(I32P) if n else None))
    return scores, predicted
