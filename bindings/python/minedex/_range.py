"""Range search over an Index (internal; the public entry is :meth:`minedex.Index.range_search`)."""

import ctypes
import numbers

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._native import ArgumentTypeError, check, lib


def radius_value(radius):
    """``radius`` as a Python float; bools, strings and other non-reals raise ArgumentTypeError. The range (finite,
    >= 0 for l2, [-1, 1] for cosine) is checked by the engine, which raises InvalidArgumentError with its message."""
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, numbers.Real):
        raise ArgumentTypeError(f"radius must be a real number, got {type(radius).__name__} {radius!r}.")
    return float(radius)


def range_search(index, q, radius, threads=0, params=""):
    """Runs engine_index_range_search and copies the CSR result into numpy arrays ``(lims, D, I)``."""
    q = v.rows(q, "queries")
    radius = radius_value(radius)
    threads = v.integer(threads, "threads")
    result = ctypes.c_void_p()
    check(lib.engine_index_range_search(index._handle(), arr.fptr(q), q.shape[0], q.shape[1], radius, threads,
                                        params.encode("utf-8"), ctypes.byref(result)))
    try:
        nq, total = ctypes.c_int64(), ctypes.c_int64()
        check(lib.engine_range_result_size(result, ctypes.byref(nq), ctypes.byref(total)))
        lims = np.empty(nq.value + 1, dtype=np.int64)
        ids = np.empty(total.value, dtype=np.int64)
        distances = np.empty(total.value, dtype=np.float32)
        check(lib.engine_range_result_copy(result, lims.ctypes.data_as(arr.I64P), arr.iptr(ids), arr.fptr(distances)))
    finally:
        check(lib.engine_range_result_free(result))
    return lims, distances, ids
