# Hand-written stub of the Rust extension (checked by `python -m mypy.stubtest simclust._native`).
from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "KMEANS_BLOCK_ALIGN",
    "Labelling",
    "Partition",
    "__version__",
    "auto_exact",
    "bridge_similarity",
    "centroid_matrix",
    "centroid_part",
    "certified_group_pair_edges",
    "cluster_sums",
    "connected_components",
    "default_n_lists",
    "intra_shift",
    "kmeans",
    "kmeans_assign",
    "kmeans_block_colmax",
    "kmeans_block_farthest",
    "kmeans_block_state",
    "kmeans_block_step",
    "kmeans_init_from_rows",
    "kmeans_init_rows",
    "kmeans_reseed",
    "kmeans_update",
    "knn",
    "knn_between",
    "knn_edges",
    "knn_merge",
    "knn_own_lists",
    "knn_probe_lists",
    "knn_query",
    "list_pair_edges",
    "nearest_centroids",
    "normalize",
    "pair_similarity",
    "pair_stats",
    "pair_sums",
    "partition_assign",
    "partition_train_rows",
    "partitioned_threshold_edges",
    "resolve_threads",
    "rows_are_unit",
    "spanning_forest",
    "threshold_edges",
    "threshold_edges_between",
    "threshold_sweep",
]

_Progress = Callable[[int, int], object] | None

def resolve_threads(n_threads: int | None = None) -> int: ...
def auto_exact(n: int, d: int) -> tuple[bool, float]: ...
def default_n_lists(n: int) -> int: ...
def normalize(
    x: npt.NDArray[np.float32], *, n_threads: int | None = None
) -> npt.NDArray[np.float32]: ...
def rows_are_unit(x: npt.NDArray[np.float32], *, n_threads: int | None = None) -> bool: ...
def pair_similarity(
    x: npt.NDArray[np.float32],
    a: npt.NDArray[np.uint32],
    b: npt.NDArray[np.uint32],
    *,
    n_threads: int | None = None,
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
def knn_between(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    k: int,
    *,
    floor_a: npt.NDArray[np.float32] | None = None,
    floor_b: npt.NDArray[np.float32] | None = None,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[
    tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]],
    tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]],
]: ...
def list_pair_edges(
    lists: list[npt.NDArray[np.float32]],
    starts: npt.NDArray[np.uint32],
    pairs: npt.NDArray[np.uint32],
    threshold: float,
    *,
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...

_KnnPart = tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], int]

def knn_own_lists(
    x: npt.NDArray[np.float32],
    bounds: npt.NDArray[np.uint64],
    start: int,
    k: int,
    *,
    n_threads: int | None = None,
) -> _KnnPart: ...
def knn_probe_lists(
    x: npt.NDArray[np.float32],
    bounds: npt.NDArray[np.uint64],
    start: int,
    q: npt.NDArray[np.float32],
    positions: npt.NDArray[np.uint32],
    offsets: npt.NDArray[np.uint64],
    members: npt.NDArray[np.uint32],
    floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]],
    query_floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]],
    k: int,
    *,
    n_threads: int | None = None,
) -> _KnnPart: ...
def knn_merge(
    n: int,
    k: int,
    rows: npt.NDArray[np.uint32],
    idx: npt.NDArray[np.uint32],
    sims: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def threshold_edges(
    x: npt.NDArray[np.float32],
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def threshold_edges_between(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
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
def spanning_forest(
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    similarity: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...

# --- cluster geometry (rust/simclust-py/src/metrics.rs) ---
@final
class Labelling:
    def __new__(
        cls,
        x: npt.NDArray[np.float32],
        labels: npt.NDArray[np.int64],
        *,
        measure: str = "cosine",
        n_threads: int | None = None,
        search: str = "auto",
        nprobe: int = 8,
        recall_rows: int = 1000,
    ) -> Labelling: ...
    @property
    def measure(self) -> str: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def cluster_ids(self) -> npt.NDArray[np.int64]: ...
    def intra_stats(self, *, progress: _Progress = None) -> dict[str, npt.NDArray[Any]]: ...
    def edge_stats(
        self, src: npt.NDArray[np.uint32], dst: npt.NDArray[np.uint32]
    ) -> dict[str, npt.NDArray[Any]]: ...
    def centroid_stats(
        self, *, with_centroids: bool = True, progress: _Progress = None
    ) -> dict[str, Any]: ...
    def inter_centroid(
        self,
        clusters: npt.NDArray[np.int64] | None = None,
        top_m: int | None = None,
        *,
        progress: _Progress = None,
    ) -> dict[str, Any]: ...
    def centroid_matrix(
        self, clusters: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
    def linkage(
        self,
        cluster_a: npt.NDArray[np.int64],
        cluster_b: npt.NDArray[np.int64],
        *,
        progress: _Progress = None,
    ) -> dict[str, npt.NDArray[Any]]: ...
    def silhouette(self, *, progress: _Progress = None) -> tuple[dict[str, Any], float]: ...
    def davies_bouldin(self) -> float: ...
    def calinski_harabasz(self) -> float: ...

def cluster_sums(
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    *,
    measure: str = "cosine",
    n_threads: int | None = None,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]: ...
def pair_sums(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32] | None = None,
    shift: float = 0.0,
    *,
    measure: str = "cosine",
    n_threads: int | None = None,
) -> tuple[int, float, float, float, float]: ...
def intra_shift(
    sum: npt.NDArray[np.float64], sq: float, n: int, *, measure: str = "cosine"
) -> float: ...
def pair_stats(
    parts: list[tuple[int, float, float, float, float]], shift: float
) -> tuple[int, float, float, float, float]: ...
def centroid_part(
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    *,
    measure: str = "cosine",
    sums: npt.NDArray[np.float64] | None = None,
    sizes: npt.NDArray[np.uint64] | None = None,
    n_threads: int | None = None,
) -> dict[str, Any]: ...
def nearest_centroids(
    centroids: npt.NDArray[np.float32],
    top_m: int | None = None,
    *,
    measure: str = "cosine",
    search: str = "auto",
    nprobe: int = 8,
    recall_rows: int = 1000,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> dict[str, Any]: ...
def centroid_matrix(
    centroids: npt.NDArray[np.float32], *, measure: str = "cosine", n_threads: int | None = None
) -> npt.NDArray[np.float32]: ...
def kmeans(
    x: npt.NDArray[np.float32],
    n_clusters: int,
    *,
    metric: str = "cosine",
    init: str = "k-means++",
    init_centroids: npt.NDArray[np.float32] | None = None,
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-6,
    random_state: int = 0,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], float, int, bool, int, int]: ...
def kmeans_assign(
    x: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    *,
    metric: str = "cosine",
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], float]: ...

KMEANS_BLOCK_ALIGN: int

def partition_train_rows(
    n: int, n_lists: int, *, train_size: int | None = None, seed: int = 0
) -> npt.NDArray[np.int64]: ...
def partition_assign(
    x: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], *, n_threads: int | None = None
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...

_KMeansBlockState = tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
]

def kmeans_block_state(n: int) -> _KMeansBlockState: ...
def kmeans_block_colmax(
    x: npt.NDArray[np.float32], *, n_threads: int | None = None
) -> npt.NDArray[np.float32]: ...
def kmeans_init_rows(
    n: int, n_clusters: int, *, init: str = "k-means++", random_state: int = 0, run: int = 0
) -> npt.NDArray[np.int64]: ...
def kmeans_init_from_rows(
    rows: npt.NDArray[np.float32],
    n: int,
    n_clusters: int,
    *,
    init: str = "k-means++",
    random_state: int = 0,
    run: int = 0,
    n_threads: int | None = None,
) -> npt.NDArray[np.float32]: ...
def kmeans_block_step(
    x: npt.NDArray[np.float32],
    state: _KMeansBlockState,
    centroids: npt.NDArray[np.float32],
    colmax: npt.NDArray[np.float32],
    n_total: int,
    *,
    drift: npt.NDArray[np.float32] | None = None,
    reseed_rows: npt.NDArray[np.uint32] | None = None,
    reseed_labels: npt.NDArray[np.uint32] | None = None,
    full: bool = False,
    rows_are_unit: bool = False,
    n_threads: int | None = None,
) -> tuple[
    _KMeansBlockState,
    int,
    npt.NDArray[np.float64],
    npt.NDArray[np.uint32],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...
def kmeans_block_farthest(
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    prev: npt.NDArray[np.int64],
    d2: npt.NDArray[np.float32],
    m: int,
    *,
    n_threads: int | None = None,
) -> tuple[
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float32],
]: ...
def kmeans_reseed(
    d2: npt.NDArray[np.float32],
    rows: npt.NDArray[np.uint64],
    labels: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32], int]: ...
def kmeans_update(
    sums: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    centroids: npt.NDArray[np.float32],
    colmax: npt.NDArray[np.float32],
    n_total: int,
    moved: npt.NDArray[np.float32],
    moved_old: npt.NDArray[np.int64],
    moved_new: npt.NDArray[np.uint32],
    *,
    n_threads: int | None = None,
) -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]
]: ...

_EdgesStats = tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], dict[str, Any]
]

_Group = tuple[
    int,
    npt.NDArray[np.uint64],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint32],
]
"""A certified search's group of panels: ``(first_cell, offsets, xs, order, cos,
centroids, lists)``."""

@final
class Partition:
    def __new__(
        cls,
        x: npt.NDArray[np.float32],
        n_lists: int | None = None,
        *,
        train_size: int | None = None,
        max_iter: int = 20,
        seed: int = 0,
        certified: bool = True,
        n_threads: int | None = None,
        progress: _Progress = None,
    ) -> Partition: ...
    @staticmethod
    def from_assignment(
        x: npt.NDArray[np.float32],
        centroids: npt.NDArray[np.float32],
        near: npt.NDArray[np.uint32],
        cos: npt.NDArray[np.float32],
        *,
        certified: bool = True,
        n_threads: int | None = None,
    ) -> Partition: ...
    @property
    def centroids(self) -> npt.NDArray[np.float32]: ...
    @property
    def n_lists(self) -> int: ...
    @property
    def list_sizes(self) -> npt.NDArray[np.uint64]: ...
    @property
    def order(self) -> npt.NDArray[np.uint32]: ...
    def list_pairs(
        self, nprobe: int, *, n_threads: int | None = None
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]: ...
    def certified_group_bounds(self, max_rows: int) -> npt.NDArray[np.uint64]: ...
    def certified_group(self, start: int, end: int) -> _Group: ...
    def pair_recall(
        self,
        src: npt.NDArray[np.uint32],
        dst: npt.NDArray[np.uint32],
        threshold: float,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> tuple[float | None, int]: ...
    def knn_recall(
        self,
        indices: npt.NDArray[np.uint32],
        similarities: npt.NDArray[np.float32],
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> tuple[float | None, int]: ...
    def knn_edges(
        self,
        k: int,
        threshold: float,
        nprobe: int,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: _Progress = None,
    ) -> _EdgesStats: ...
    def knn_search_k(self, k: int) -> int: ...
    def knn_probes(
        self,
        nprobe: int,
        similarities: npt.NDArray[np.float32] | None = None,
        *,
        n_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]: ...
    def knn_finish(
        self,
        k: int,
        threshold: float,
        indices: npt.NDArray[np.uint32],
        similarities: npt.NDArray[np.float32],
        pairs_computed: int,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: _Progress = None,
    ) -> _EdgesStats: ...
    def threshold_edges(
        self,
        threshold: float,
        *,
        certified: bool,
        nprobe: int = 1,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: _Progress = None,
    ) -> _EdgesStats: ...

def certified_group_pair_edges(
    a: _Group,
    b: _Group | None,
    threshold: float,
    *,
    n_threads: int | None = None,
) -> tuple[
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
    int,
    npt.NDArray[np.uint32],
]: ...
def partitioned_threshold_edges(
    x: npt.NDArray[np.float32],
    threshold: float,
    *,
    certified: bool,
    n_lists: int,
    train_size: int,
    nprobe: int = 8,
    recall_rows: int = 1000,
    seed: int = 0,
    n_threads: int | None = None,
    progress: _Progress = None,
) -> _EdgesStats: ...
