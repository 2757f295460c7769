"""K-means in the Rust core: fit and assign."""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.exceptions import (
    ClusteringWarning,
    ParameterError,
)
from simclust.ops._coerce import (
    Progress,
    _as_count,
    _as_matrix,
    _as_seed,
    _as_threads,
)

KMeansInit = str | npt.ArrayLike
"""``"k-means++"``, ``"random"`` or an ``(n_clusters, D)`` array of initial centroids."""


class _KMeansOutput(NamedTuple):
    """Everything the core returns for one k-means fit (the estimator keeps it all)."""

    labels: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]
    objective: float
    n_iter: int
    converged: bool
    n_reseeded: int
    n_empty: int


def _as_metric(metric: str) -> str:
    if not isinstance(metric, str):
        raise ParameterError(f'metric must be "cosine" or "euclidean", got {metric!r}')
    return metric


def _kmeans_fit(
    x: npt.ArrayLike,
    n_clusters: int,
    *,
    metric: str,
    init: KMeansInit,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: int,
    n_threads: int | None,
    progress: Progress | None,
    stacklevel: int,
) -> _KMeansOutput:
    """Validate, run the core, warn about empty clusters; shared by ``kmeans`` and ``KMeans``."""
    xm = _as_matrix(x, "X")
    k = _as_count(n_clusters, "n_clusters")
    runs = _as_count(n_init, "n_init")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise ParameterError(f"tol must be a finite number >= 0, got {tol!r}")
    init_name = "k-means++"
    init_centroids: npt.NDArray[np.float32] | None = None
    if isinstance(init, str):
        init_name = init
    else:
        init_centroids = _as_matrix(init, "init")
        if runs > 1:
            warnings.warn(
                f"explicit initial centroids were given: running one initialisation "
                f"instead of n_init={runs}",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
    out = _KMeansOutput(
        *_native.kmeans(
            xm,
            k,
            metric=_as_metric(metric),
            init=init_name,
            init_centroids=init_centroids,
            n_init=runs,
            max_iter=_as_count(max_iter, "max_iter"),
            tol=float(tol),
            random_state=_as_seed(random_state),
            n_threads=_as_threads(n_threads),
            progress=progress,
        )
    )
    _warn_empty(out, k, metric, stacklevel + 1)
    return out


def _warn_empty(out: _KMeansOutput, k: int, metric: str, stacklevel: int) -> None:
    """The :class:`ClusteringWarning` of a fit that left clusters empty (if it did)."""
    if out.n_empty:
        warnings.warn(
            f"only {k - out.n_empty} of n_clusters={k} clusters are non-empty: X has fewer "
            f"distinct {'directions' if metric == 'cosine' else 'points'} than n_clusters. "
            "No row has the label of an empty cluster; its centroid stays where "
            "initialisation put it (a duplicate of another centroid).",
            ClusteringWarning,
            stacklevel=stacklevel + 1,
        )


def kmeans(
    x: npt.ArrayLike,
    n_clusters: int,
    *,
    metric: str = "cosine",
    init: KMeansInit = "k-means++",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-6,
    random_state: int = 0,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], float, int]:
    """K-means clustering of the rows of ``x``, in the Rust core.

    ``metric="cosine"`` (the default for embeddings) is spherical k-means:
    rows and centroids are unit-normalised and each row goes to the centroid
    of highest cosine similarity. ``metric="euclidean"`` is classic k-means
    on squared Euclidean distances.

    Initialisation: greedy ``"k-means++"`` (``2 + ln k`` candidates per step,
    as scikit-learn; on a uniform sample of ``32 * n_clusters`` rows, at
    least 8192, when there are more), ``"random"`` (distinct rows), or an
    ``(n_clusters, D)`` array (``n_init`` is then 1). Lloyd iterations stop
    when no label changes, when the objective's relative decrease is at most
    ``tol``, or after ``max_iter``; the returned labels are those of the
    returned centroids. Empty clusters are re-seeded with the rows farthest
    from their centroids. The result is bit-identical for any ``n_threads``.

    Args:
        x: N x D data.
        n_clusters: number of clusters, ``1 <= n_clusters <= N``.
        metric: ``"cosine"`` or ``"euclidean"``.
        init: ``"k-means++"``, ``"random"`` or initial centroids.
        n_init: independent seedings; the lowest objective wins.
        max_iter: maximum Lloyd iterations per seeding.
        tol: relative decrease of the objective below which iterations stop
            (0: until no label changes).
        random_state: seed, an integer in ``[0, 2**64 - 1]``.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback (Lloyd iterations).

    Returns:
        ``(labels, centroids, objective, n_iter)``: int64 labels of shape (N,)
        in ``0..n_clusters-1``; float32 centroids of shape (n_clusters, D)
        (unit norm under cosine); the objective, lower is better: under
        ``"euclidean"`` the sum of squared distances of the rows to their
        centroids (scikit-learn's ``inertia_``), under ``"cosine"`` the sum of
        cosine distances ``1 - cos(x, centroid)``; the Lloyd iterations run.

    Raises:
        ParameterError: ``n_clusters`` outside ``1..N``, a bad ``metric``,
            ``init``, ``n_init``, ``max_iter``, ``tol`` or ``random_state``.
        InvalidInputError: rows with NaN/Inf, or of zero norm under cosine
            (listed by index; in ``init`` too).
        ShapeError: ``x`` is not 2-D or is empty, ``init`` is not
            ``(n_clusters, D)``.

    Warns:
        ClusteringWarning: some clusters are empty because ``x`` has fewer
            distinct rows (directions, under cosine) than ``n_clusters``.

    Example:
        >>> X = [[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.8]]
        >>> labels, centroids, objective, n_iter = kmeans(X, 2, metric="euclidean")
        >>> bool(labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2])
        True
        >>> round(objective, 4)
        0.035

    """
    out = _kmeans_fit(
        x,
        n_clusters,
        metric=metric,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        n_threads=n_threads,
        progress=progress,
        stacklevel=3,
    )
    return out.labels, out.centroids, out.objective, out.n_iter


def kmeans_assign(
    x: npt.ArrayLike,
    centroids: npt.ArrayLike,
    *,
    metric: str = "cosine",
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], float]:
    """Assign each row of ``x`` to its closest centroid (k-means' predict).

    Returns:
        ``(labels, objective)``: int64 labels of shape (N,) (lowest index on
        ties) and the objective of this assignment, as in :func:`kmeans`.

    Example:
        >>> labels, objective = kmeans_assign([[1.0, 0.0], [0.0, 2.0]], [[0.0, 1.0], [1.0, 0.0]])
        >>> labels.tolist(), objective
        ([1, 0], 0.0)

    """
    return _native.kmeans_assign(
        _as_matrix(x, "X"),
        _as_matrix(centroids, "centroids"),
        metric=_as_metric(metric),
        n_threads=_as_threads(n_threads),
    )
