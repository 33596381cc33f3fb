from ._native import ArgumentTypeError as ArgumentTypeError, EngineError as EngineError, InvalidArgumentError as InvalidArgumentError
from .hard_negatives import HardNegatives as HardNegatives, mine_hard_negatives as mine_hard_negatives
from .index import Index as Index, load as load
from .refresher import Refresher as Refresher, Snapshot as Snapshot, StaleSnapshotError as StaleSnapshotError

__all__ = ["ArgumentTypeError", "EngineError", "HardNegatives", "Index", "InvalidArgumentError", "Refresher",
           "Snapshot", "StaleSnapshotError", "load", "mine_hard_negatives", "version"]
__version__: str

def version() -> str: ...
