"""numpy -> C pointer conversions (internal). Validation lives in _validate."""

import ctypes

F32P = ctypes.POINTER(ctypes.c_float)
I64P = ctypes.POINTER(ctypes.c_int64)


def fptr(a):
    """float* of a float32 array (NULL for an empty one)."""
    return a.ctypes.data_as(F32P) if a.size else None


def iptr(a):
    """int64_t* of an int64 array (NULL for an empty one)."""
    return a.ctypes.data_as(I64P) if a.size else None
