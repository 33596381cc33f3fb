from typing import Any, Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .index import Index

def knn_graph(x: Any, k: int, index: Optional[Index] = ..., metric: str = ..., ids: Optional[Any] = ..., threads: int = ...,
              probes: Optional[int] = ..., ef: Optional[int] = ...) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], Dict[str, Any]]: ...
def near_duplicates(neighbors: Any, distances: Any, threshold: float, metric: str = ...,
                    ids: Optional[Any] = ...) -> Tuple[npt.NDArray[np.int64], int]: ...
def label_propagation(neighbors: Any, distances: Any, labels: Any, classes: int, metric: str = ..., ids: Optional[Any] = ...,
                      alpha: float = ..., iterations: int = ..., gamma: float = ...) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]: ...
