from typing import Any, Dict

from ._native import CorruptFileError as CorruptFileError
from .index import PathLike

def crc32c(data: bytes, state: int = ...) -> int: ...
def read_mined(path: PathLike, verify: bool = ...) -> Dict[str, Any]: ...
