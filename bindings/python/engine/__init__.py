"""Python bindings of the embedded vector index engine (ctypes over libengine.so, numpy-first).

>>> import numpy as np, engine
>>> index = engine.Index("Flat", 4, metric="l2")
>>> ids = index.add(np.eye(4, dtype=np.float32))
>>> D, I = index.search(np.eye(4, dtype=np.float32)[:1], k=2)

Build the native library first with ``bindings/python/build.sh``.
"""

from ._native import ArgumentTypeError, EngineError, InvalidArgumentError, lib as _lib
from .index import Index, load

__all__ = ["ArgumentTypeError", "EngineError", "Index", "InvalidArgumentError", "load", "version"]


def version():
    """Version string of the native library."""
    return _lib.engine_version().decode("utf-8")


__version__ = version()
