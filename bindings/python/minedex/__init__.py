"""minedex: an embedded vector index with hard-negative mining built in (ctypes over the NativeAOT libengine.so).

numpy arrays, torch CPU tensors (zero-copy when contiguous float32) and lists go in; numpy arrays come out, or
torch tensors with ``return_type="torch"``.

>>> import numpy as np, minedex
>>> index = minedex.Index("Flat", 4, metric="l2")
>>> ids = index.add(np.eye(4, dtype=np.float32))
>>> D, I = index.search(np.eye(4, dtype=np.float32)[:1], k=2)

Mining in sentence-transformers' terms: :func:`mine_hard_negatives`.
"""

from ._native import ArgumentTypeError, EngineError, InvalidArgumentError, lib as _lib
from .index import Index, load
from .hard_negatives import HardNegatives, mine_hard_negatives
from .mined_file import CorruptFileError, read_mined
from .refresher import Refresher, Snapshot, StaleSnapshotError
from .graph import knn_graph, label_propagation, near_duplicates

__all__ = ["ArgumentTypeError", "CorruptFileError", "EngineError", "HardNegatives", "Index", "InvalidArgumentError",
           "Refresher", "Snapshot", "StaleSnapshotError", "load", "mine_hard_negatives", "native_library", "read_mined",
           "version"]
__all__ += ["knn_graph", "label_propagation", "near_duplicates"]
from .calibrated_cutoff import CalibratedCutoff
__all__ += ["CalibratedCutoff"]


def version():
    """Version string of the native library (Directory.Build.props' Version, the same as the package's)."""
    return _lib.engine_version().decode("utf-8")


def native_library():
    """Which native build this process loaded: ``{"path": ..., "isa": ...}``, isa "x86-64-v4" (the AVX-512 build,
    chosen on CPUs that have every x86-64-v4 feature), "x86-64-v3" (the portable AVX2 build; ``MINEDEX_ISA=x86-64-v3``
    forces it) or "custom" (``MINEDEX_LIBRARY`` named the file)."""
    from . import _native
    return {"path": _native.library_path, "isa": _native.library_isa}


__version__ = version()

from .multivector import MultiVectorIndex, load_multivector  # noqa: E402
__all__ += ["MultiVectorIndex", "load_multivector"]
from .cluster import ClusterError, ClusterIndex  # noqa: E402
__all__ += ["ClusterError", "ClusterIndex"]
