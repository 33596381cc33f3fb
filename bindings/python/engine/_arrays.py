"""numpy <-> C pointer conversions with engine-style error messages (internal)."""

import ctypes

import numpy as np

from ._native import EngineError

F32P = ctypes.POINTER(ctypes.c_float)
I64P = ctypes.POINTER(ctypes.c_int64)


def rows(x, name):
    """Returns ``x`` as a C-contiguous float32 (n, d) array; a 1-D array is one row."""
    try:
        a = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise EngineError(f"{name} cannot be converted to float32: {e}") from None
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise EngineError(f"{name} must be a 2-D array (n, d); got shape {a.shape}.")
    return a


def ids(values, name, expected=None):
    """Returns ``values`` as a C-contiguous int64 1-D array (checked against ``expected`` length)."""
    try:
        a = np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise EngineError(f"{name} cannot be converted to int64: {e}") from None
    if expected is not None and a.shape[0] != expected:
        raise EngineError(f"Got {expected} vectors but {a.shape[0]} {name}: there must be exactly one id per vector.")
    return a


def fptr(a):
    """float* of a float32 array (NULL for an empty one)."""
    return a.ctypes.data_as(F32P) if a.size else None


def iptr(a):
    """int64_t* of an int64 array (NULL for an empty one)."""
    return a.ctypes.data_as(I64P) if a.size else None
