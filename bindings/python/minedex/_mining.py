"""mine() and hubness() of minedex.Index (internal; see Index.mine / Index.hubness)."""

import ctypes
import json

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._native import EngineError, check, lib


class IdLists:
    """Id lists in CSR form: ``offsets`` (n + 1,) and ``values`` int64 arrays, list i = values[offsets[i]:offsets[i+1]]
    (internal: how mine_hard_negatives hands large positive and exclusion lists to :func:`csr` without Python loops)."""

    __slots__ = ("offsets", "values")

    def __init__(self, offsets, values):
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.values = np.ascontiguousarray(values, dtype=np.int64)

    def __len__(self):
        return self.offsets.shape[0] - 1

    def block(self, first, last):
        """Lists first..last-1 (offsets rebased to 0)."""
        off = self.offsets[first:last + 1]
        return IdLists(off - off[0], self.values[off[0]:off[-1]])

    def lists(self):
        """As a list of Python int lists."""
        return [a.tolist() for a in np.split(self.values, self.offsets[1:-1])] if len(self) else []


def csr(lists, n, name):
    """(offsets, values) int64 arrays from a list of id lists, a 2-D id array (one row per anchor), a 1-D array
    (one id per anchor) or :class:`IdLists`."""
    if isinstance(lists, IdLists):
        if len(lists) != n:
            raise v.InvalidArgumentError(f"Got {n} anchors but {len(lists)} {name} lists: there must be one list per anchor.")
        return lists.offsets, lists.values
    if v.is_torch_tensor(lists):
        lists = v.ids_array(lists, name)
    if isinstance(lists, np.ndarray) and lists.ndim in (1, 2):
        a = v.ids(lists, name)  # flattened
        width = 1 if lists.ndim == 1 else lists.shape[1]
        if lists.shape[0] != n:
            raise v.InvalidArgumentError(f"Got {n} anchors but {lists.shape[0]} {name} rows: there must be one per anchor.")
        return np.arange(0, n * width + 1, width, dtype=np.int64), a
    if isinstance(lists, (str, bytes)) or not hasattr(lists, "__len__"):
        raise v.ArgumentTypeError(f"{name} must be a list of id lists or an integer array, got {type(lists).__name__}.")
    parts = [v.ids(np.atleast_1d(np.asarray(x)) if not isinstance(x, (str, bytes)) else x, f"{name}[{i}]")
             for i, x in enumerate(lists)]
    if len(parts) != n:
        raise v.InvalidArgumentError(f"Got {n} anchors but {len(parts)} {name} lists: there must be one list per anchor.")
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    values = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return offsets, values


def _report(call):
    """Runs a native call that fills a JSON report buffer, growing the buffer if needed."""
    needed = ctypes.c_int64(0)
    cap = 1 << 16
    buf = ctypes.create_string_buffer(cap)
    check(call(buf, cap, ctypes.byref(needed)))
    if needed.value > cap:
        raise EngineError(f"report of {needed.value} bytes did not fit the {cap}-byte buffer", 99)
    return json.loads(buf.value.decode("utf-8"))


def occurrence_table(k_occurrence):
    """(ids int64, counts int32) arrays from a ``(ids, counts)`` pair or an ``{id: count}`` mapping."""
    if isinstance(k_occurrence, dict):
        ids_, counts = list(k_occurrence.keys()), list(k_occurrence.values())
    elif isinstance(k_occurrence, (tuple, list)) and len(k_occurrence) == 2:
        ids_, counts = k_occurrence
    else:
        raise v.ArgumentTypeError("k_occurrence must be an (ids, counts) pair of arrays (e.g. (ids, index.hubness(ids)[0])) "
                          "or a {corpus id: N_k} dict.")
    ids_ = v.ids(ids_, "k_occurrence ids")
    return ids_, v.counts(counts, "k_occurrence counts", ids_.shape[0])


def mine(index, positives, anchors=None, anchor_ids=None, exclusions=None, num_negatives=3, output=None,
         k_occurrence=None, audit=None, **options):
    if audit is not None:
        from .index import Index
        if not isinstance(audit, Index):
            raise v.ArgumentTypeError(f"audit must be a minedex.Index (an exact index, e.g. 'Flat', holding the same ids "
                                      f"and vectors), got {type(audit).__name__}.")
        if k_occurrence is not None:
            raise v.InvalidArgumentError("audit does not take k_occurrence: audit a mining run without hubness-aware sampling.")
    if (anchors is None) == (anchor_ids is None):
        raise v.InvalidArgumentError("Give exactly one of anchors (vectors) and anchor_ids (corpus ids).")
    if anchors is not None:
        a = v.rows(anchors, "anchors")
        n, d, ids = a.shape[0], a.shape[1], None
    else:
        a, ids = np.zeros((0, index.d), np.float32), v.ids(anchor_ids, "anchor_ids")
        n, d = ids.shape[0], index.d
    p_off, p_val = csr(positives, n, "positives")
    e_off, e_val = csr(exclusions, n, "exclusions") if exclusions is not None else (None, None)
    width = v.integer(num_negatives, "num_negatives")
    opts = json.dumps(v.options(dict(options, num_negatives=width))).encode("utf-8")
    h = index._handle()
    # The ctypes pointers stay valid while the arrays above are alive (None = NULL).
    inputs = [h, arr.fptr(a) if anchors is not None else None, n, d, arr.iptr(ids) if ids is not None else None,
              p_off.ctypes.data_as(arr.I64P), arr.iptr(p_val),
              e_off.ctypes.data_as(arr.I64P) if e_off is not None else None,
              arr.iptr(e_val) if e_val is not None else None]
    if k_occurrence is not None:
        occ_ids, occ = occurrence_table(k_occurrence)
        inputs += [arr.iptr(occ_ids), occ.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) if occ.size else None,
                   occ_ids.shape[0]]
    if output is not None:
        fn = lib.engine_mine_to_file if k_occurrence is None else lib.engine_mine_to_file_with_occurrence
        report = _report(lambda buf, cap, need: fn(*inputs, opts, v.path(output, "output"), buf, cap, need))
        return _with_audit(report, audit, inputs, opts)
    negatives = np.empty((n, max(width, 0)), dtype=np.int64)
    scores = np.empty((n, max(width, 0)), dtype=np.float32)
    fn = lib.engine_mine if k_occurrence is None else lib.engine_mine_with_occurrence
    report = _report(lambda buf, cap, need: fn(
        *inputs, opts, arr.iptr(negatives) if negatives.size else None,
        arr.fptr(scores) if scores.size else None, width, buf, cap, need))
    return negatives, scores, _with_audit(report, audit, inputs, opts)


def _with_audit(report, audit, inputs, opts):
    """The mining report with ``report["audit"]``: engine_mine_audit of the same input and options against ``audit``."""
    if audit is not None:
        report["audit"] = _report(lambda buf, cap, need: lib.engine_mine_audit(
            inputs[0], audit._handle(), *inputs[1:], opts, buf, cap, need))
    return report


def hubness(index, ids, queries=None, k=10, **options):
    ids = v.ids(ids, "ids")
    occurrence = np.zeros(ids.shape[0], dtype=np.int32)
    q = v.rows(queries, "queries") if queries is not None else None
    opts = v.options(dict(options, k=v.integer(k, "k")))
    h = index._handle()
    report = _report(lambda buf, cap, need: lib.engine_hubness(
        h, arr.iptr(ids), ids.shape[0], arr.fptr_given(q) if q is not None else None,
        q.shape[0] if q is not None else 0, q.shape[1] if q is not None else index.d,
        json.dumps(opts).encode("utf-8"),
        occurrence.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) if occurrence.size else None, buf, cap, need))
    return occurrence, report
