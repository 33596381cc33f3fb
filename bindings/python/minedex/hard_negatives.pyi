from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from .cluster import ClusterIndex
from .index import ArrayLike, IdLists, Index, PathLike, ReturnType

OutputFormat = Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"]

class HardNegatives:
    columns: Dict[str, List[Any]]
    query_rows: npt.NDArray[np.int64]
    positives: List[List[int]]
    negatives: Any
    scores: Any
    positive_scores: List[npt.NDArray[np.float32]]
    report: Dict[str, Any]
    output_format: OutputFormat
    row_query: npt.NDArray[np.int64]
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> Dict[str, Any]: ...
    def __iter__(self) -> Iterator[Dict[str, Any]]: ...
    def to_pandas(self) -> Any: ...
    def to_dataset(self) -> Any: ...
    def write_jsonl(self, path: PathLike) -> int: ...

def pair_scores(metric: str, q: npt.NDArray[np.float32], p: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
def format_report(report: Mapping[str, Any], margins: Optional[Mapping[str, Optional[float]]] = ...) -> str: ...

def mine_hard_negatives(
    query_embeddings: ArrayLike,
    corpus_embeddings: Optional[ArrayLike],
    positives: IdLists,
    *,
    queries: Optional[Sequence[str]] = ...,
    corpus: Optional[Sequence[str]] = ...,
    index: Union[str, Index, ClusterIndex] = ...,
    metric: Literal["cosine", "ip", "l2"] = ...,
    range_min: int = ...,
    range_max: Optional[int] = ...,
    max_score: Optional[float] = ...,
    min_score: Optional[float] = ...,
    absolute_margin: Optional[float] = ...,
    relative_margin: Optional[float] = ...,
    num_negatives: int = ...,
    sampling_strategy: Literal["top", "random", "uniform", "simans", "softmax"] = ...,
    include_positives: bool = ...,
    output_format: Union[OutputFormat, Literal["n-tuple-scores"]] = ...,
    output_scores: bool = ...,
    batch_size: int = ...,
    anchor_column_name: str = ...,
    positive_column_name: str = ...,
    exclusions: Optional[IdLists] = ...,
    rescore_exact: Optional[bool] = ...,
    seed: int = ...,
    threads: int = ...,
    verbose: bool = ...,
    k_occurrence: Union[Tuple[ArrayLike, ArrayLike], Mapping[int, int], None] = ...,
    query_block_size: int = ...,
    search_params: Optional[Mapping[str, int]] = ...,
    return_type: ReturnType = ...,
    duplicate_threshold: Optional[float] = ...,
    positive_anchor: Literal["min", "mean", "max"] = ...,
    max_hand_outs_per_item: int = ...,
    simans_a: float = ...,
    simans_b: float = ...,
    temperature: float = ...,
    hubness_gamma: float = ...,
) -> HardNegatives: ...
