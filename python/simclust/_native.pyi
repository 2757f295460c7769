# Hand-written stub of the Rust extension (checked by `python -m mypy.stubtest simclust._native`).
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__version__: str

_Progress = Callable[[int, int], object] | None

def default_num_threads() -> int: ...
def normalize(
    x: npt.NDArray[np.float32], *, n_threads: int | None = None
) -> npt.NDArray[np.float32]: ...
def knn(
    x: npt.NDArray[np.float32],
    k: int,
    *,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def knn_query(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    k: int,
    *,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def threshold_edges(
    x: npt.NDArray[np.float32],
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def knn_edges(
    x: npt.NDArray[np.float32],
    k: int,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def connected_components(
    n: int,
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    *,
    n_threads: int | None = None,
) -> npt.NDArray[np.int64]: ...
def threshold_sweep(
    n: int,
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    similarity: npt.NDArray[np.float32],
    thresholds: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
def bridge_similarity(
    n: int,
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    similarity: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]: ...
