from ._native import ArgumentTypeError as ArgumentTypeError, EngineError as EngineError, InvalidArgumentError as InvalidArgumentError
from .hard_negatives import HardNegatives as HardNegatives, mine_hard_negatives as mine_hard_negatives
from .index import Index as Index, load as load

__all__ = ["ArgumentTypeError", "EngineError", "HardNegatives", "Index", "InvalidArgumentError", "load",
           "mine_hard_negatives", "version"]
__version__: str

def version() -> str: ...
