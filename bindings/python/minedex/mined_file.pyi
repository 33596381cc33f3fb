from typing import Any, Dict

from ._native import EngineError
from .index import PathLike

class CorruptFileError(EngineError):
    def __init__(self, path: PathLike, message: str) -> None: ...

def crc32c(data: bytes, state: int = ...) -> int: ...
def read_mined(path: PathLike, verify: bool = ...) -> Dict[str, Any]: ...
