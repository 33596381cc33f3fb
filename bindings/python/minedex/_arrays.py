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



_NOTHING = (ctypes.c_int64 * 1)()  # 8 aligned bytes behind the pointers below


def fptr_given(a):
    """float* of a float32 array that is given, even an empty one (never NULL: where NULL means "not given", as for
    engine_hubness's queries, an empty array must still reach the library as given)."""
    return a.ctypes.data_as(F32P) if a.size else ctypes.cast(_NOTHING, F32P)


def iptr_given(a):
    """int64_t* of an int64 array that is given, even an empty one (never NULL: engine_index_add reads NULL ids as
    "assign automatic ids", so an explicit empty id list must not become NULL)."""
    return a.ctypes.data_as(I64P) if a.size else ctypes.cast(_NOTHING, I64P)
