"""Multi-vector retrieval with MUVERA: each item is a set of token vectors, scored by Chamfer (MaxSim) similarity.

>>> import numpy as np, minedex
>>> index = minedex.MultiVectorIndex(8, ksim=3, dproj=4, reps=8)
>>> ids = index.add([np.random.rand(5, 8), np.random.rand(3, 8)])
>>> S, I = index.search([np.random.rand(4, 8)], k=2)

A token set is a (n_tokens, d) array (numpy, torch CPU tensor or nested lists); a batch is a list of them, or one
(n, n_tokens, d) array when every item has the same number of tokens.
"""

import ctypes
from ctypes import POINTER, c_char_p, c_float, c_int, c_int32, c_int64, c_void_p

import numpy as np

from . import _arrays as arr
from . import _validate as v
from ._handle import NativeObject
from ._native import ArgumentTypeError, EngineError, InvalidArgumentError, check, has, lib

_SIGNATURES = {
    "engine_mv_create": (c_int, [c_int32, c_char_p, c_char_p, c_char_p, POINTER(c_void_p)]),
    "engine_mv_load": (c_int, [c_char_p, POINTER(c_void_p)]),
    "engine_mv_free": (c_int, [c_void_p]),
    "engine_mv_train": (c_int, [c_void_p, POINTER(c_float), POINTER(c_int64), c_int64, c_int32, c_int32]),
    "engine_mv_add": (c_int, [c_void_p, POINTER(c_float), POINTER(c_int64), c_int64, c_int32, POINTER(c_int64),
                              POINTER(c_int64), c_int32]),
    "engine_mv_search": (c_int, [c_void_p, POINTER(c_float), POINTER(c_int64), c_int64, c_int32, c_int32,
                                 POINTER(c_float), POINTER(c_int64), c_int32, c_char_p]),
    "engine_mv_search_exact": (c_int, [c_void_p, POINTER(c_float), POINTER(c_int64), c_int64, c_int32, c_int32,
                                       POINTER(c_float), POINTER(c_int64), c_int32]),
    "engine_mv_remove": (c_int, [c_void_p, POINTER(c_int64), c_int64, POINTER(c_int64)]),
    "engine_mv_count": (c_int, [c_void_p, POINTER(c_int64), POINTER(c_int64)]),
    "engine_mv_dimension": (c_int, [c_void_p, POINTER(c_int32)]),
    "engine_mv_description": (c_int, [c_void_p, c_char_p, c_int64, POINTER(c_int64)]),
    "engine_mv_save": (c_int, [c_void_p, c_char_p]),
}

_AVAILABLE = has("engine_mv_create")
if _AVAILABLE:
    for _name, (_restype, _argtypes) in _SIGNATURES.items():
        _fn = getattr(lib, _name)
        _fn.restype, _fn.argtypes = _restype, _argtypes

_TOKENS = ("f16", "f32")


def _require():
    if not _AVAILABLE:
        raise EngineError("The loaded libengine.so has no multi-vector exports (engine_mv_*); rebuild it with "
                          "bindings/python/build.sh.", 5)


def token_sets(items, name):
    """A batch of token sets as ``(tokens (T, d) float32, offsets (n + 1,) int64, d)`` for the C ABI.

    ``items`` is a list/tuple of (n_i, d) arrays (a 1-D array is one token) or one (n, t, d) array. An item without
    tokens and tokens of different lengths raise :class:`InvalidArgumentError` naming the item; a value that is not
    an array of real numbers raises :class:`ArgumentTypeError`. ``d`` is None for an empty batch."""
    if isinstance(items, (str, bytes, dict)) or np.isscalar(items) or items is None:
        raise ArgumentTypeError(f"{name} must be a list of (n_tokens, d) token arrays or one (n, n_tokens, d) array, "
                                f"got {type(items).__name__}.")
    if isinstance(items, np.ndarray) or v.is_torch_tensor(items):
        if items.ndim != 3:
            raise InvalidArgumentError(f"{name} as one array must be 3-D (n, n_tokens, d); got shape {tuple(items.shape)}. "
                                       "Pass a list of (n_tokens, d) arrays for token sets of different sizes.")
        n, t, d = (int(x) for x in items.shape)
        if n and t == 0:
            raise InvalidArgumentError(f"{name}[0] has no tokens; every multi-vector item needs at least one token.")
        return v.rows(items.reshape(n * t, d), name), np.arange(n + 1, dtype=np.int64) * t, d
    try:
        items = list(items)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be a list of (n_tokens, d) token arrays, got {type(items).__name__}.") from None
    parts, offsets, d = [], [0], None
    for i, item in enumerate(items):
        label = f"{name}[{i}]"
        a = v.rows(item, label)
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise InvalidArgumentError(f"{label} has no tokens (shape {a.shape}); every multi-vector item needs at least one token.")
        if d is None:
            d = a.shape[1]
        elif a.shape[1] != d:
            raise InvalidArgumentError(f"Mixed dimensions: {label} has tokens of d={a.shape[1]}, but {name}[0] has d={d}.")
        parts.append(a)
        offsets.append(offsets[-1] + a.shape[0])
    tokens = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(tokens, dtype=np.float32), np.asarray(offsets, dtype=np.int64), d


class MultiVectorIndex(NativeObject):
    """A MUVERA multi-vector index living in the native engine (the C# ``MultiVectorIndex``).

    Every item is a set of token vectors of dimension ``d``; its fixed-dimensional encoding (FDE) lives in a
    single-vector inner-product index of any spec (``fde_spec``: ``"Flat"``, ``"HNSW32"``, ``"IVF256,Flat"``...).
    A search takes the FDE index's top ``candidates`` and re-ranks them by exact Chamfer similarity.

    Parameters
    ----------
    d : int
        Token dimension.
    fde_spec : str
        Composition string of the FDE index.
    ksim, dproj, reps, final, fill, seed
        FDE parameters: SimHash bits (2**ksim buckets), inner projection dimension (0 = none), repetitions, final
        count-sketch dimension (0 = none), fill empty document buckets, seed.
    tokens : str
        ``"f16"`` (default, half the memory) or ``"f32"`` token storage for the re-rank.
    """

    _free = staticmethod(lib.engine_mv_free) if _AVAILABLE else None
    _what = "multi-vector index"

    def __init__(self, d, fde_spec="Flat", ksim=4, dproj=16, reps=20, final=0, fill=True, seed=42, tokens="f16"):
        _require()
        d = v.integer(d, "d (the token dimension)")
        values = {"ksim": ksim, "dproj": dproj, "reps": reps, "final": final, "seed": seed}
        opts = [f"{key}={v.integer(value, key)}" for key, value in values.items()]
        if not isinstance(fill, (bool, np.bool_)):
            raise ArgumentTypeError(f"fill must be a bool, got {type(fill).__name__} {fill!r}.")
        opts.append(f"fill={int(bool(fill))}")
        if tokens not in _TOKENS:
            raise InvalidArgumentError(f"tokens must be 'f16' or 'f32', got {tokens!r}.")
        handle = ctypes.c_void_p()
        check(lib.engine_mv_create(d, ",".join(opts).encode("utf-8"), v.text(fde_spec, "fde_spec"),
                                   tokens.encode("utf-8"), ctypes.byref(handle)))
        self._h = handle.value
        self._d = d

    @classmethod
    def load(cls, path):
        """Loads a directory written by :meth:`save` (or by the C# engine / C API)."""
        _require()
        handle = ctypes.c_void_p()
        check(lib.engine_mv_load(v.path(path), ctypes.byref(handle)))
        self = cls.__new__(cls)
        self._h = handle.value
        out = ctypes.c_int32()
        check(lib.engine_mv_dimension(self._h, ctypes.byref(out)))
        self._d = out.value
        return self

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def d(self):
        """Token dimension."""
        return self._d

    def _counts(self):
        items, tokens = ctypes.c_int64(), ctypes.c_int64()
        check(lib.engine_mv_count(self._handle(), ctypes.byref(items), ctypes.byref(tokens)))
        return items.value, tokens.value

    @property
    def ntotal(self):
        """Number of items (same as ``len(index)``)."""
        return self._counts()[0]

    def __len__(self):
        return self.ntotal

    @property
    def token_count(self):
        """Tokens stored over all items."""
        return self._counts()[1]

    @property
    def description(self):
        """E.g. ``"MUVERA(ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42),F16|Flat"``."""
        return self._text(lib.engine_mv_description)

    def __repr__(self):
        if not self._h:
            return "<minedex.MultiVectorIndex closed>"
        return f"<minedex.MultiVectorIndex {self.description!r} d={self.d} ntotal={self.ntotal}>"

    # ----------------------------------------------------------------------------------------------- operations
    def _sets(self, items, name):
        tokens, offsets, d = token_sets(items, name)
        return tokens, offsets, self._d if d is None else d

    def train(self, items, threads=0):
        """Trains the FDE index (IVF centroids, codebooks) on the document FDEs of ``items``; nothing for Flat/HNSW."""
        tokens, offsets, d = self._sets(items, "items")
        threads = v.integer(threads, "threads")
        check(lib.engine_mv_train(self._handle(), arr.fptr(tokens), arr.iptr(offsets), offsets.shape[0] - 1, d, threads))

    def add(self, items, ids=None, threads=0, return_type="numpy"):
        """Adds token sets. ``ids`` (n,) int64, non-negative and unique; default: consecutive ids after the largest
        id added through this object (starting at ``len(index)``). Returns the ids used. Automatic ids are refused
        (:class:`minedex.EngineError`, code 5) once they would pass 2**63 - 1, an empty add included once id
        2**63 - 1 has been added, as :meth:`minedex.Index.add` does."""
        kind = v.return_type(return_type)
        tokens, offsets, d = self._sets(items, "items")
        n = offsets.shape[0] - 1
        threads = v.integer(threads, "threads")
        if ids is None:
            first = ctypes.c_int64(0)
            check(lib.engine_mv_add(self._handle(), arr.fptr(tokens), arr.iptr(offsets), n, d, None,
                                    ctypes.byref(first), threads))
            return v.output(np.arange(first.value, first.value + n, dtype=np.int64), kind)
        ids = v.ids(ids, "ids", n)
        check(lib.engine_mv_add(self._handle(), arr.fptr(tokens), arr.iptr(offsets), n, d, arr.iptr_given(ids), None,
                                threads))
        return v.output(ids, kind)

    def search(self, queries, k, candidates=None, reps=None, threads=0, exact=False, probes=None, ef=None,
               return_type="numpy"):
        """The k items of largest Chamfer similarity to each query token set.

        MUVERA search re-ranks the FDE index's top ``candidates`` (default max(10 k, 100)) with exact Chamfer, using
        the first ``reps`` repetitions of the query FDE (default all); ``probes`` (IVF) and ``ef`` (HNSW) go to the FDE
        index. ``exact=True`` is brute-force Chamfer over every item (the ground truth; the other knobs must be None).
        Returns ``(S, I)``: float32 similarities and int64 ids of shape (nq, k), best first, padded with -inf / -1.
        """
        kind = v.return_type(return_type)
        tokens, offsets, d = self._sets(queries, "queries")
        nq = offsets.shape[0] - 1
        k = v.integer(k, "k")
        threads = v.integer(threads, "threads")
        S = np.empty((nq, max(k, 0)), dtype=np.float32)
        I = np.empty((nq, max(k, 0)), dtype=np.int64)
        knobs = {"candidates": candidates, "reps": reps, "probes": probes, "ef": ef}
        params = [f"{key}={v.integer(value, key)}" for key, value in knobs.items() if value is not None]
        if exact:
            if params:
                raise InvalidArgumentError(f"exact=True searches every item; {', '.join(params)} has no meaning there.")
            check(lib.engine_mv_search_exact(self._handle(), arr.fptr(tokens), arr.iptr(offsets), nq, d, k,
                                             arr.fptr(S), arr.iptr(I), threads))
        else:
            check(lib.engine_mv_search(self._handle(), arr.fptr(tokens), arr.iptr(offsets), nq, d, k, arr.fptr(S),
                                       arr.iptr(I), threads, ",".join(params).encode("utf-8")))
        return v.output(S, kind), v.output(I, kind)

    def remove(self, ids):
        """Removes ``ids`` (absent ids are ignored): FDEs leave the FDE index, tokens are dropped. Returns how many."""
        ids = v.ids(ids, "ids")
        out = ctypes.c_int64()
        check(lib.engine_mv_remove(self._handle(), arr.iptr(ids), ids.shape[0], ctypes.byref(out)))
        return out.value

    def save(self, path):
        """Writes the index into the directory ``path`` (loadable by :meth:`load`, the C API and C#)."""
        check(lib.engine_mv_save(self._handle(), v.path(path)))


def load_multivector(path):
    """Loads a multi-vector index saved by :meth:`MultiVectorIndex.save` (same as ``MultiVectorIndex.load``)."""
    return MultiVectorIndex.load(path)
