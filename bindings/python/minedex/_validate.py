"""Argument validation of every public entry point (internal).

ctypes converts silently: an int wider than the C type wraps (``2**64 + 5`` becomes 5), ``int()`` truncates floats
(``2.7`` becomes 2) and parses strings (``'3'``), numpy casts float ids to int64 and complex vectors to float32 by
dropping digits, and a C string ends at the first NUL. Every value therefore passes through one of these functions
before it reaches the library. They raise :class:`ArgumentTypeError` (a ``TypeError``) for a value of the wrong type
and :class:`InvalidArgumentError` (a ``ValueError``) for one out of range; both are :class:`EngineError` with code 1
("invalid argument"), the status the C ABI gives for the same mistakes.
"""

import operator
import os

import numpy as np

from ._native import ArgumentTypeError, InvalidArgumentError

INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)

# Array kinds accepted as vectors: floating point and (exactly convertible) integers. Complex numbers, booleans,
# strings, bytes, objects and dates are rejected rather than converted.
_VECTOR_KINDS = "fiu"
_ID_KINDS = "iu"


def integer(value, name, lo=INT32[0], hi=INT32[1]):
    """``value`` as a Python int in [lo, hi].

    Accepts int and numpy integer scalars (anything with ``__index__``); rejects bool, float (even 3.0), str and
    everything else with ArgumentTypeError, and values outside [lo, hi] with InvalidArgumentError."""
    if isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be an integer, got the bool {value!r}.")
    try:
        v = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.") from None
    if not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} = {v} is out of range: it must be in {lo}..{hi}.")
    return v


def optional_integer(value, name, lo=INT32[0], hi=INT32[1], default=0):
    """:func:`integer`, with None meaning ``default``."""
    return default if value is None else integer(value, name, lo, hi)


def text(value, name):
    """A str without NUL characters, as UTF-8 bytes (a C string ends at the first NUL)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {type(value).__name__} {value!r}.")
    if "\0" in value:
        raise InvalidArgumentError(f"{name} contains a NUL character at position {value.index(chr(0))}: {value!r}.")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"{name} is not valid Unicode text: {e}") from None


# The metric names the library accepts (Metric.ParseMetric in the engine), each mapped to its short name.
_METRIC_NAMES = {"l2": "l2", "euclidean": "l2", "ip": "ip", "inner_product": "ip", "innerproduct": "ip", "dot": "ip",
                 "cosine": "cosine", "angular": "cosine"}


def metric(value, name="metric"):
    """A metric name as the library spells it ("l2", "ip" or "cosine"), from any name the library accepts
    (case-insensitive: euclidean, inner_product, dot, angular too)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {type(value).__name__} {value!r}.")
    short = _METRIC_NAMES.get(value.strip().lower())
    if short is None:
        raise InvalidArgumentError(f"{name} must be 'l2', 'ip' or 'cosine' (or euclidean, inner_product, dot, angular), "
                                   f"got {value!r}.")
    return short


def path(value, name="path"):
    """A file-system path (str, bytes or os.PathLike) as bytes, without NUL characters."""
    try:
        raw = os.fsencode(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be a str, bytes or os.PathLike path, got {type(value).__name__}.") from None
    if b"\0" in raw:
        raise InvalidArgumentError(f"{name} contains a NUL byte at position {raw.index(0)}: {value!r}.")
    if not raw:
        raise InvalidArgumentError(f"{name} is empty.")
    return raw


def is_torch_tensor(x):
    """True for a torch.Tensor (or subclass such as nn.Parameter), without importing torch."""
    module = type(x).__module__
    return (module == "torch" or module.startswith("torch.")) and hasattr(x, "detach") and hasattr(x, "__dlpack__")


def _from_torch(t, name):
    """A numpy view of a CPU tensor: zero-copy through DLPack; detached first, so a tensor that requires grad is
    read, never an error; bfloat16 (which numpy lacks) is widened to float32."""
    if t.device.type != "cpu":
        raise InvalidArgumentError(f"{name} is a torch tensor on {t.device}; move it to the CPU first (tensor.cpu()).")
    if str(t.layout) != "torch.strided":
        raise ArgumentTypeError(f"{name} is a {t.layout} torch tensor; pass a dense one (tensor.to_dense()).")
    t = t.detach()
    if t.is_complex():
        raise ArgumentTypeError(f"{name} must hold real numbers convertible to float32; got torch dtype {t.dtype} "
                                "(complex values would lose their imaginary part).")
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    t = t.resolve_neg() if hasattr(t, "resolve_neg") else t  # lazy negation bit: DLPack cannot carry it
    try:
        return np.from_dlpack(t)
    except (BufferError, RuntimeError, TypeError, ValueError):  # dtypes DLPack/numpy disagree on
        return t.numpy()


def _array(values, name):
    if isinstance(values, (str, bytes)):
        raise ArgumentTypeError(f"{name} must be an array, got {type(values).__name__} {values!r}.")
    if is_torch_tensor(values):
        return _from_torch(values, name)
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as e:  # ragged lists, unconvertible objects
        raise ArgumentTypeError(f"{name} cannot be converted to an array: {e}") from None


def ids_array(values, name):
    """A torch tensor or array-like as a numpy array keeping its shape (for id lists given as one tensor)."""
    return _array(values, name)


RETURN_TYPES = ("numpy", "torch")


def return_type(value):
    """Checks a ``return_type`` argument: "numpy" (default) or "torch"."""
    if value not in RETURN_TYPES:
        raise InvalidArgumentError(f"return_type must be 'numpy' or 'torch', got {value!r}.")
    return value


def output(a, kind):
    """``a`` as the caller asked: the numpy array itself, or a torch tensor sharing its memory."""
    if kind == "numpy":
        return a
    try:
        import torch
    except ImportError:
        raise ImportError("return_type='torch' needs PyTorch (pip install torch); the default 'numpy' does not.") from None
    return torch.from_numpy(a)


def rows(x, name):
    """``x`` as a C-contiguous float32 (n, d) array; a 1-D array is one row.

    Only real numbers are accepted: complex (whose imaginary part a cast would drop), bool, string and object
    arrays raise ArgumentTypeError."""
    a = _array(x, name)
    if a.size and a.dtype.kind not in _VECTOR_KINDS:
        raise ArgumentTypeError(
            f"{name} must hold real numbers convertible to float32; got dtype {a.dtype}"
            + (" (complex values would lose their imaginary part)." if a.dtype.kind == "c" else "."))
    wide = a.dtype.kind == "f" and a.dtype.itemsize > 4  # float64 and wider can exceed float32 (no integer can)
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf: named below, not reported as inf
        f = np.ascontiguousarray(a, dtype=np.float32)
    if wide and f.size and not np.isfinite(f).all():
        overflow = np.isinf(f) & np.isfinite(a)
        if overflow.any():
            at = np.unravel_index(int(np.argmax(overflow)), a.shape)
            raise InvalidArgumentError(
                f"{name}{list(at)} = {a[at]!r} is beyond float32's range (±3.4028235e38): vectors are stored as "
                "float32.")
    a = f
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise InvalidArgumentError(f"{name} must be a 2-D array (n, d); got shape {a.shape}.")
    return a


def ids(values, name, expected=None):
    """``values`` as a C-contiguous int64 1-D array (checked against ``expected`` length).

    The array must have an integer dtype (a list of Python ints is fine): float ids (5000.7), bools and strings
    raise ArgumentTypeError instead of being truncated; unsigned values above 2**63 - 1 raise InvalidArgumentError
    instead of wrapping."""
    a = _array(values, name).reshape(-1)
    if a.size == 0:
        a = np.zeros(0, dtype=np.int64)  # np.asarray([]) is float64
    elif a.dtype.kind not in _ID_KINDS:
        raise ArgumentTypeError(f"{name} must be integers (an integer array); got dtype {a.dtype}.")
    elif a.dtype.kind == "u" and a.dtype.itemsize >= 8 and int(a.max()) > INT64[1]:
        raise InvalidArgumentError(f"{name} holds {int(a.max())}, above the largest id {INT64[1]}.")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if expected is not None and a.shape[0] != expected:
        raise InvalidArgumentError(
            f"Got {expected} vectors but {a.shape[0]} {name}: there must be exactly one id per vector.")
    return a


def counts(values, name, expected):
    """Non-negative-or-not int32 counts (one per id), integer dtype only."""
    a = _array(values, name).reshape(-1)
    if a.size == 0:
        a = np.zeros(0, dtype=np.int32)
    elif a.dtype.kind not in _ID_KINDS:
        raise ArgumentTypeError(f"{name} must be integers (N_k), got dtype {a.dtype}.")
    elif int(a.min()) < INT32[0] or int(a.max()) > INT32[1]:
        raise InvalidArgumentError(f"{name} do not fit in int32.")
    if a.shape[0] != expected:
        raise InvalidArgumentError(f"k_occurrence has {expected} ids but {a.shape[0]} counts: there must be one count per id.")
    return np.ascontiguousarray(a, dtype=np.int32)


def bound_epsilon(value, name="eps"):
    """RaBitQ error-bound confidence ε₀ (IvfSearchParameters.BoundEpsilon): a real number in (0, 16]. A bool, str or
    other type raises ArgumentTypeError; NaN, infinities and values outside (0, 16] raise InvalidArgumentError with
    the wording of the engine's own check."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{name} must be a number, got {type(value).__name__}.")
    v = float(value)
    if not (v > 0 and v <= 16):
        raise InvalidArgumentError(f"Search parameter '{name}={v!r}': must be a number greater than 0 and at most 16.")
    return v


def options(opts):
    """Keyword options for the JSON option object: numpy scalars become Python numbers; bool stays bool; values
    JSON cannot carry (NaN, infinities, other types) are rejected here with the option's name."""
    out = {}
    for key, value in opts.items():
        if isinstance(value, np.bool_):
            value = bool(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        if isinstance(value, float) and not np.isfinite(value):
            raise InvalidArgumentError(f"Option '{key}' must be a finite number, got {value!r}.")
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ArgumentTypeError(f"Option '{key}' must be a number, a bool, a string or None, got {type(value).__name__}.")
        if isinstance(value, str) and "\0" in value:
            raise InvalidArgumentError(f"Option '{key}' contains a NUL character: {value!r}.")
        out[key] = value
    return out
