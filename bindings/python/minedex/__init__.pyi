from ._native import ArgumentTypeError as ArgumentTypeError, EngineError as EngineError, InvalidArgumentError as InvalidArgumentError
from .hard_negatives import HardNegatives as HardNegatives, mine_hard_negatives as mine_hard_negatives
from .index import Index as Index, load as load
from .mined_file import CorruptFileError as CorruptFileError, read_mined as read_mined
from .refresher import Refresher as Refresher, Snapshot as Snapshot, StaleSnapshotError as StaleSnapshotError

__all__ = ["ArgumentTypeError", "CorruptFileError", "EngineError", "HardNegatives", "Index", "InvalidArgumentError",
           "Refresher", "Snapshot", "StaleSnapshotError", "load", "mine_hard_negatives", "native_library", "read_mined",
           "version"]
__version__: str

def version() -> str: ...
def native_library() -> dict[str, str]: ...
from .graph import knn_graph as knn_graph, label_propagation as label_propagation, near_duplicates as near_duplicates
from .calibrated_cutoff import CalibratedCutoff as CalibratedCutoff
from .multivector import MultiVectorIndex as MultiVectorIndex, load_multivector as load_multivector
from .cluster import ClusterError as ClusterError, ClusterIndex as ClusterIndex
