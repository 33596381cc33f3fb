"""ctypes declarations of the C ABI in bindings/native/engine.h (internal)."""

import ctypes
import os
from ctypes import POINTER, c_char_p, c_float, c_int, c_int32, c_int64, c_void_p

_LIB_NAME = "libengine.so"        # portable build: x86-64-v3 (AVX2, FMA, BMI2), the C ABI's libengine.so
_LIB_NAME_V4 = "libengine-v4.so"  # the same code compiled for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), when the wheel has it
_ISA_ENV = "MINEDEX_ISA"         # "x86-64-v3" forces the portable build; unset (or "auto") picks by CPU
# x86-64-v4 as the psABI defines it: NativeAOT's x86-64-v4 build refuses to start without every one of these
_V4_FLAGS = frozenset(("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"))

STATUS_NAMES = {
    0: "ok",
    1: "invalid argument",
    2: "invalid handle",
    3: "io",
    4: "corrupt",
    5: "invalid state",
    6: "out of memory",
    99: "internal",
}


class EngineError(Exception):
    """An error reported by the native engine.

    ``str(err)`` is the engine's own message (it names the argument and the problem); ``err.code`` is the
    ``engine_status`` value from minedex.h and ``err.status`` its name (``"invalid argument"``, ``"corrupt"``...).
    """

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code
        self.status = STATUS_NAMES.get(code, "unknown")


class InvalidArgumentError(EngineError, ValueError):
    """A bad argument value (out of range, NaN, NUL in a string, wrong dimension...): code 1, also a ValueError."""

    def __init__(self, message, code=1):
        super().__init__(message, code)


class ArgumentTypeError(EngineError, TypeError):
    """An argument of the wrong type (a float or bool where an integer is needed, complex vectors, float ids...):
    code 1, also a TypeError."""

    def __init__(self, message, code=1):
        super().__init__(message, code)


class CorruptFileError(EngineError):
    """A file that fails a checksum or a structural check: code 4, "corrupt" — an index file the engine refuses
    (``minedex.load``) or a mined-rows file read here (``read_mined``). ``CorruptFileError(path, message)`` names the
    file; ``CorruptFileError(message)`` keeps the engine's message, which names it already."""

    def __init__(self, path_or_message, message=None, code=4):
        text = path_or_message if message is None else f"{os.fsdecode(path_or_message)}: {message}"
        super().__init__(text, code)


def _cpu_flags():
    """The CPU feature flags the kernel reports (Linux /proc/cpuinfo); empty when unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def choose_library(directory, flags, isa=None, exists=os.path.exists):
    """(path, isa) of the native library to load from ``directory``: the x86-64-v4 (AVX-512) build when the CPU has
    every x86-64-v4 flag and the file is there, else the portable x86-64-v3 build. ``isa`` (``MINEDEX_ISA``) may force
    "x86-64-v3"; "x86-64-v4" is honoured only on a CPU that has it (the build would refuse to start otherwise)."""
    isa = (isa or "auto").strip().lower()
    if isa not in ("auto", "x86-64-v3", "x86-64-v4"):
        raise ImportError(f"{_ISA_ENV}={isa!r}: expected 'auto', 'x86-64-v3' or 'x86-64-v4'.")
    v4 = os.path.join(directory, _LIB_NAME_V4)
    missing = _V4_FLAGS.difference(flags)
    has_v4 = not missing
    if isa == "x86-64-v4" and not has_v4:
        raise ImportError(f"{_ISA_ENV}=x86-64-v4, but this CPU lacks {sorted(missing)}.")
    if isa == "x86-64-v4" and not exists(v4):
        raise ImportError(f"{_ISA_ENV}=x86-64-v4, but {v4} is not there (a wheel built without it).")
    if isa != "x86-64-v3" and has_v4 and exists(v4):
        return v4, "x86-64-v4"
    return os.path.join(directory, _LIB_NAME), "x86-64-v3"


def _library_path():
    """(path, isa): MINEDEX_LIBRARY as given (isa "custom"), else the best build next to this file."""
    override = os.environ.get("MINEDEX_LIBRARY")
    if override:
        return override, "custom"
    return choose_library(os.path.dirname(os.path.abspath(__file__)), _cpu_flags(), os.environ.get(_ISA_ENV))


def _load():
    global library_path, library_isa
    library_path, library_isa = _library_path()
    path = library_path
    if not os.path.exists(path):
        raise ImportError(
            f"{path} not found: install the wheel (pip install ./bindings/python), build the library into the source tree "
            "with bindings/python/build.sh, or set MINEDEX_LIBRARY to a libengine.so")
    lib = ctypes.CDLL(path)
    f32p, i64p, i32p = POINTER(c_float), POINTER(c_int64), POINTER(c_int32)
    sigs = {
        "engine_version": (c_char_p, []),
        "engine_last_error": (c_char_p, []),
        "engine_index_create": (c_int, [c_char_p, c_int32, c_char_p, POINTER(c_void_p)]),
        "engine_index_load": (c_int, [c_char_p, POINTER(c_void_p)]),
        "engine_index_free": (c_int, [c_void_p]),
        "engine_index_train": (c_int, [c_void_p, f32p, c_int64, c_int32]),
        "engine_index_add": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, i64p]),
        "engine_index_search": (c_int, [c_void_p, f32p, c_int64, c_int32, c_int32, f32p, i64p,
                                        c_int32, c_int32, c_float]),
        "engine_index_search_with": (c_int, [c_void_p, f32p, c_int64, c_int32, c_int32, f32p, i64p,
                                             c_int32, c_char_p]),
        "engine_index_remove": (c_int, [c_void_p, i64p, c_int64, i64p]),
        "engine_index_count": (c_int, [c_void_p, i64p]),
        "engine_index_dimension": (c_int, [c_void_p, i32p]),
        "engine_index_metric": (c_int, [c_void_p, i32p]),
        "engine_index_is_trained": (c_int, [c_void_p, i32p]),
        "engine_index_description": (c_int, [c_void_p, c_char_p, c_int64, i64p]),
        "engine_index_reconstruct": (c_int, [c_void_p, c_int64, f32p, c_int32, i32p]),
        "engine_index_save": (c_int, [c_void_p, c_char_p]),
        "engine_index_range_search": (c_int, [c_void_p, f32p, c_int64, c_int32, c_float, c_int32, c_char_p,
                                              POINTER(c_void_p)]),
        "engine_range_result_size": (c_int, [c_void_p, i64p, i64p]),
        "engine_range_result_copy": (c_int, [c_void_p, i64p, i64p, f32p]),
        "engine_range_result_free": (c_int, [c_void_p]),
        "engine_knn_graph": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, c_char_p, c_int32, c_int32, c_char_p,
                                     i64p, f32p, c_char_p, c_int64, i64p]),
        "engine_near_duplicates": (c_int, [i64p, c_int64, c_int32, i64p, f32p, c_char_p, c_float, i64p, i64p]),
        "engine_label_propagation": (c_int, [i64p, c_int64, c_int32, i64p, f32p, c_char_p, i32p, c_int32, ctypes.c_double,
                                             c_int32, ctypes.c_double, f32p, i32p]),
        "engine_mine": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, i64p, i64p, i64p, i64p, c_char_p,
                                i64p, f32p, c_int32, c_char_p, c_int64, i64p]),
        "engine_mine_to_file": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, i64p, i64p, i64p, i64p, c_char_p,
                                        c_char_p, c_char_p, c_int64, i64p]),
        "engine_mine_with_occurrence": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, i64p, i64p, i64p, i64p,
                                                i64p, i32p, c_int64, c_char_p, i64p, f32p, c_int32, c_char_p,
                                                c_int64, i64p]),
        "engine_mine_to_file_with_occurrence": (c_int, [c_void_p, f32p, c_int64, c_int32, i64p, i64p, i64p, i64p,
                                                        i64p, i64p, i32p, c_int64, c_char_p, c_char_p, c_char_p,
                                                        c_int64, i64p]),
        "engine_mine_audit": (c_int, [c_void_p, c_void_p, f32p, c_int64, c_int32, i64p, i64p, i64p, i64p, i64p,
                                      c_char_p, c_char_p, c_int64, i64p]),
        "engine_cutoff_fit": (c_int, [f32p, POINTER(ctypes.c_uint8), i64p, c_int64, c_int32, c_int32, POINTER(c_void_p)]),
        "engine_cutoff_info": (c_int, [c_void_p, i32p, POINTER(ctypes.c_double), POINTER(ctypes.c_double)]),
        "engine_cutoff_apply": (c_int, [c_void_p, f32p, i64p, c_int64, POINTER(ctypes.c_uint8)]),
        "engine_cutoff_evaluate": (c_int, [c_void_p, f32p, POINTER(ctypes.c_uint8), i64p, c_int64,
                                           POINTER(ctypes.c_double)]),
        "engine_cutoff_free": (c_int, [c_void_p]),
        "engine_hubness": (c_int, [c_void_p, i64p, c_int64, f32p, c_int64, c_int32, c_char_p, POINTER(c_int32),
                                   c_char_p, c_int64, i64p]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


lib = _load()


def check(code):
    """Raises EngineError (InvalidArgumentError for code 1) with the native thread-local message when ``code`` is not 0."""
    if code != 0:
        raw = lib.engine_last_error()
        message = raw.decode("utf-8", "replace") if raw else "unknown engine error"
        # The engine's "invalid argument" is a ValueError too, like the checks done on the Python side.
        raise (InvalidArgumentError if code == 1 else CorruptFileError if code == 4 else EngineError)(message, code=code)


def has(name):
    """True when the loaded library exports ``name``."""
    return hasattr(lib, name)
