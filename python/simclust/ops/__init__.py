"""Typed array operations over the Rust core: the building blocks of simclust.

Every function accepts any real numeric dtype and any memory order; arrays are
converted once, at this edge, to float32 C-order (``np.ascontiguousarray``),
and rows are L2-normalised inside the core, so similarities are cosine
similarities. Long calls run without the GIL and stop on Ctrl-C.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> idx, sim = ops.knn(X, 1)
    >>> idx[:, 0].tolist()
    [1, 0, 3, 2]

"""

from __future__ import annotations

from simclust.ops._coerce import EdgeArrays as EdgeArrays
from simclust.ops._coerce import EdgesLike as EdgesLike
from simclust.ops._coerce import LabelsLike as LabelsLike
from simclust.ops._coerce import Progress as Progress
from simclust.ops._coerce import resolve_threads
from simclust.ops._components import (
    bridge_similarity,
    connected_components,
    spanning_forest,
    threshold_sweep,
    weak_splits,
)
from simclust.ops._geometry import (
    CentroidStats,
    Labelling,
    Silhouette,
    calinski_harabasz,
    centroid_similarity_matrix,
    centroid_stats,
    cluster_linkage,
    davies_bouldin,
    edge_stats,
    inter_centroid,
    intra_stats,
    silhouette,
)
from simclust.ops._kmeans import KMeansInit as KMeansInit
from simclust.ops._kmeans import _kmeans_fit as _kmeans_fit
from simclust.ops._kmeans import kmeans, kmeans_assign
from simclust.ops._knn_parts import KnnPart, knn_merge, knn_own_lists, knn_probe_lists
from simclust.ops._pairs import pair_similarity
from simclust.ops._partition import (
    CertifiedGroup,
    GroupPairEdges,
    Partition,
    SearchStats,
    certified_group_pair_edges,
    default_n_lists,
    partitioned_threshold_edges,
)
from simclust.ops._similarity import (
    auto_exact,
    knn,
    knn_between,
    knn_edges,
    list_pair_edges,
    normalize,
    threshold_edges,
    threshold_edges_between,
)

__all__ = [
    "CentroidStats",
    "CertifiedGroup",
    "GroupPairEdges",
    "KnnPart",
    "Labelling",
    "Partition",
    "SearchStats",
    "Silhouette",
    "auto_exact",
    "bridge_similarity",
    "calinski_harabasz",
    "centroid_similarity_matrix",
    "centroid_stats",
    "certified_group_pair_edges",
    "cluster_linkage",
    "connected_components",
    "davies_bouldin",
    "default_n_lists",
    "edge_stats",
    "inter_centroid",
    "intra_stats",
    "kmeans",
    "kmeans_assign",
    "knn",
    "knn_between",
    "knn_edges",
    "knn_merge",
    "knn_own_lists",
    "knn_probe_lists",
    "list_pair_edges",
    "normalize",
    "pair_similarity",
    "partitioned_threshold_edges",
    "resolve_threads",
    "silhouette",
    "spanning_forest",
    "threshold_edges",
    "threshold_edges_between",
    "threshold_sweep",
    "weak_splits",
]
