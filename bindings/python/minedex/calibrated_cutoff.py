"""Per-query calibrated relevance cutoff (the engine's CalibratedCutoff, the Cosine-Adapter idea).

A small logistic model maps each candidate's score through query-dependent features (the raw score, the score
standardised by its query's own top-k mean and spread, and its gap to the query's best score); one global threshold
on the model's probability then decides relevance. :meth:`CalibratedCutoff.evaluate` compares it with the plain
global threshold on raw scores (both chosen for the best F1 on the training queries).

Queries are given either as a list of per-query 1-D arrays (``scores[i]``, ``relevant[i]``), or as flat arrays with
``lims`` (query i owns ``scores[lims[i]:lims[i+1]]``, the layout ``Index.range_search`` returns). Scores are
larger-is-closer: for an l2 range search pass ``-D``.

>>> import numpy as np
>>> from minedex.calibrated_cutoff import CalibratedCutoff
>>> cutoff = CalibratedCutoff.fit([np.array([0.9, 0.8, 0.1])], [np.array([True, True, False])], top_k=2)
>>> keep = cutoff.apply([np.array([0.95, 0.2])])
"""

import ctypes

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._native import ArgumentTypeError, EngineError, InvalidArgumentError, check, lib

_U8P = ctypes.POINTER(ctypes.c_uint8)

__all__ = ["CalibratedCutoff"]


def _flat(values, lims, name, kind):
    """(flat 1-D array, lims int64) from per-query arrays or a flat array plus lims; ``kind`` "score" or "flag"."""
    if lims is None:
        if isinstance(values, (str, bytes, np.ndarray)) or not hasattr(values, "__len__"):
            raise ArgumentTypeError(f"{name} must be a list of per-query arrays (or a flat array with lims=), "
                                    f"got {type(values).__name__}.")
        parts = [_one(x, f"{name}[{i}]", kind) for i, x in enumerate(values)]
        lims = np.zeros(len(parts) + 1, dtype=np.int64)
        lims[1:] = np.cumsum([p.shape[0] for p in parts])
        flat = np.concatenate(parts) if parts else _one([], name, kind)
        return np.ascontiguousarray(flat), lims
    lims = v.ids(lims, "lims")
    if lims.shape[0] == 0:
        raise InvalidArgumentError("lims must hold n_queries + 1 offsets (at least [0]).")
    flat = _one(values, name, kind)
    if int(lims[-1]) != flat.shape[0]:
        raise InvalidArgumentError(f"lims ends at {int(lims[-1])} but {name} holds {flat.shape[0]} values.")
    return flat, lims


def _one(x, name, kind):
    a = v.ids_array(x, name).reshape(-1)
    if kind == "score":
        if a.size and a.dtype.kind not in "fiu":
            raise ArgumentTypeError(f"{name} must hold real numbers, got dtype {a.dtype}.")
        return np.ascontiguousarray(a, dtype=np.float32)
    if a.size and a.dtype.kind not in "biu":
        raise ArgumentTypeError(f"{name} must be booleans (or 0/1 integers), got dtype {a.dtype}.")
    if a.size and a.dtype.kind in "iu" and not np.isin(a, (0, 1)).all():
        raise InvalidArgumentError(f"{name} must hold only 0 and 1 (relevant or not).")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _labelled(scores, relevant, lims):
    s, lims_s = _flat(scores, lims, "scores", "score")
    r, lims_r = _flat(relevant, lims, "relevant", "flag")
    if not np.array_equal(lims_s, lims_r):
        raise InvalidArgumentError("scores and relevant must have the same number of queries and the same length per query.")
    return s, r, lims_s


class CalibratedCutoff:
    """A fitted calibrated cutoff (owns a native handle; :meth:`close` or a ``with`` block frees it early)."""

    def __init__(self, handle):
        self._h = handle

    @classmethod
    def fit(cls, scores, relevant, lims=None, top_k=10, iterations=300):
        """Fits the model and both thresholds on labelled queries (deterministic).

        ``top_k`` (>= 1) top scores per query give its statistics; ``iterations`` (>= 1) full-batch gradient steps.
        Needs at least one relevant and one non-relevant candidate in all. NaN/infinite scores, mismatched lengths
        or a single class raise :class:`minedex.InvalidArgumentError` (a ValueError); wrong types TypeError.
        """
        s, r, lims = _labelled(scores, relevant, lims)
        top_k = v.integer(top_k, "top_k")
        iterations = v.integer(iterations, "iterations")
        out = ctypes.c_void_p()
        check(lib.engine_cutoff_fit(arr.fptr(s), r.ctypes.data_as(_U8P) if r.size else None,
                                    lims.ctypes.data_as(arr.I64P), lims.shape[0] - 1, top_k, iterations,
                                    ctypes.byref(out)))
        return cls(out)

    def _handle(self):
        if not self._h:
            # code 2 ("invalid handle"), as every other closed native object (docs/bindings-python.md)
            raise EngineError("This CalibratedCutoff was closed.", 2)
        return self._h

    def _info(self):
        top_k, threshold, plain = ctypes.c_int32(), ctypes.c_double(), ctypes.c_double()
        check(lib.engine_cutoff_info(self._handle(), ctypes.byref(top_k), ctypes.byref(threshold), ctypes.byref(plain)))
        return top_k.value, threshold.value, plain.value

    @property
    def top_k(self):
        """Top scores per query used for its statistics."""
        return self._info()[0]

    @property
    def threshold(self):
        """The global threshold on the calibrated probability."""
        return self._info()[1]

    @property
    def plain_threshold(self):
        """The best global threshold on raw scores (the baseline)."""
        return self._info()[2]

    def apply(self, scores, lims=None):
        """Which candidates the calibrated cutoff keeps: a list of bool arrays (one per query), or with ``lims`` one
        flat bool array aligned with ``scores``."""
        s, lims_ = _flat(scores, lims, "scores", "score")
        keep = np.zeros(s.shape[0], dtype=np.uint8)
        check(lib.engine_cutoff_apply(self._handle(), arr.fptr(s), lims_.ctypes.data_as(arr.I64P), lims_.shape[0] - 1,
                                      keep.ctypes.data_as(_U8P) if keep.size else None))
        flags = keep.astype(bool)
        return flags if lims is not None else [flags[lims_[i]:lims_[i + 1]] for i in range(lims_.shape[0] - 1)]

    def evaluate(self, scores, relevant, lims=None):
        """Precision, recall and F1 (micro-averaged) of the calibrated cutoff and of the plain global threshold:
        ``{"calibrated": {"precision", "recall", "f1"}, "plain": {...}}``."""
        s, r, lims = _labelled(scores, relevant, lims)
        q = np.zeros(6, dtype=np.float64)
        check(lib.engine_cutoff_evaluate(self._handle(), arr.fptr(s), r.ctypes.data_as(_U8P) if r.size else None,
                                         lims.ctypes.data_as(arr.I64P), lims.shape[0] - 1,
                                         q.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        names = ("precision", "recall", "f1")
        return {"calibrated": dict(zip(names, map(float, q[:3]))), "plain": dict(zip(names, map(float, q[3:])))}

    def close(self):
        """Frees the native model (idempotent)."""
        if self._h:
            h, self._h = self._h, None
            check(lib.engine_cutoff_free(h))

    def __reduce_ex__(self, protocol):
        # A copy would share the native handle (and free it when collected); the model is not serialisable yet.
        raise TypeError("cannot pickle or copy a minedex CalibratedCutoff: it owns a native model; fit it again instead.")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass
