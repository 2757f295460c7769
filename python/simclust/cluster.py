"""Clustering estimators, scikit-learn estimators backed by the Rust core.

:class:`KMeans` derives from scikit-learn's ``ClusterMixin`` and ``BaseEstimator``:
``get_params``/``set_params``, ``repr``, ``clone``, ``Pipeline`` and ``GridSearchCV``
work as for scikit-learn's own estimators, and it passes
``sklearn.utils.estimator_checks.check_estimator``. Parameters are stored verbatim by
``__init__``; ``fit`` validates them, returns ``self`` and sets the learned attributes,
whose names end in ``_`` (scikit-learn's names: ``labels_``, ``cluster_centers_``,
``inertia_``, ``n_iter_``, ``n_features_in_``).

It is also the built-in ``kmeans`` strategy, registered as it is: a scikit-learn
clusterer needs no adapter to be a simclust strategy.

Example:
    >>> import numpy as np
    >>> from simclust import KMeans
    >>> X = np.array([[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.8]])
    >>> km = KMeans(2, metric="euclidean").fit(X)
    >>> km.predict([[0.95, 0.05]]).tolist() == [km.labels_[0]]
    True

"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import Tags
from sklearn.utils.validation import validate_data

from simclust import ops
from simclust.exceptions import NotFittedError

if TYPE_CHECKING:
    from simclust.distributed import DistributedBackend
    from simclust.progress import StageProgress

__all__ = ["KMeans"]


class KMeans(ClusterMixin, BaseEstimator):
    """K-means clustering: spherical (cosine, the default) or Euclidean.

    A scikit-learn estimator over :func:`simclust.ops.kmeans`, which documents the
    algorithm (greedy k-means++ seeding, Lloyd iterations with bounds, deterministic
    for any thread count).

    Args:
        n_clusters: number of clusters, ``1 <= n_clusters <= N``.
        metric: ``"cosine"`` (spherical k-means on unit-normalised rows) or
            ``"euclidean"``. In a run it and ``[metrics] distance`` default to each
            other: a Euclidean k-means reports Euclidean geometry of the raw rows.
        init: ``"k-means++"``, ``"random"`` or an ``(n_clusters, D)`` array.
        n_init: independent seedings; the lowest objective wins.
        max_iter: maximum Lloyd iterations per seeding.
        tol: stop when the objective's relative decrease is at most ``tol``.
        random_state: seed (default 0: the same data gives the same clusters);
            ``None`` draws a fresh one at each ``fit``.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).

    Attributes:
        labels_: int64 cluster of each training row.
        cluster_centers_: float32 ``(n_clusters, D)`` centroids (unit norm
            under cosine).
        inertia_: the objective, lower is better: under ``"euclidean"`` the
            sum of squared distances of the rows to their centroids (as
            scikit-learn), under ``"cosine"`` the sum of cosine distances
            ``1 - cos(x, centroid)``.
        n_iter_: Lloyd iterations of the winning seeding.
        converged_: whether it stopped because no label changed.
        n_empty_reseeded_: empty clusters re-seeded during that run.
        n_features_in_: the dimension ``D`` seen by ``fit``.
        feature_names_in_: the column names, when ``fit`` was given a frame with
            string column names (scikit-learn's convention).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(c, 0.1, (20, 3)) for c in (0.0, 5.0)])
        >>> km = KMeans(2, metric="euclidean").fit(X)
        >>> sorted(np.bincount(km.labels_).tolist())
        [20, 20]
        >>> km
        KMeans(metric='euclidean', n_clusters=2)

    """

    labels_: npt.NDArray[np.int64]
    cluster_centers_: npt.NDArray[np.float32]
    inertia_: float
    n_iter_: int
    converged_: bool
    n_empty_reseeded_: int
    n_features_in_: int

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric: Literal["cosine", "euclidean"] = "cosine",
        init: Literal["k-means++", "random"] | npt.NDArray[Any] = "k-means++",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-6,
        random_state: int | None = 0,
        n_threads: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Tags:
        """Dense 2-D real arrays only (no sparse, NaN, strings); a clusterer."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.input_tags.string = False
        tags.input_tags.categorical = False
        tags.non_deterministic = self.random_state is None
        return tags

    def _validate(self, X: Any, *, reset: bool) -> npt.NDArray[Any]:  # noqa: N803
        """scikit-learn's input checks (dense, 2-D, non-empty, real, ``n_features_in_``).

        Non-finite values and zero rows are left to :mod:`simclust.ops`, whose messages
        name the rows.
        """
        x: npt.NDArray[Any] = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=False,
            dtype="numeric",
            ensure_all_finite=False,
            ensure_min_samples=1,
            ensure_min_features=1,
        )
        return x

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:  # noqa: N803
        """Cluster the rows of ``X`` (N x D); ``y`` is ignored. Returns ``self``."""
        return self._fit(X, None, None)

    def _fit(
        self,
        X: npt.ArrayLike,  # noqa: N803
        backend: DistributedBackend | None,
        progress: StageProgress | None,
    ) -> Self:
        """:meth:`fit`, by ``backend``'s tasks when one is given and ``metric`` is cosine.

        The distributed k-means (:func:`simclust.distributed.distributed_kmeans`) gives
        the native result bit for bit; Euclidean k-means runs natively here.
        """
        x = self._validate(X, reset=True)
        seed = secrets.randbits(64) if self.random_state is None else self.random_state
        if backend is not None and self.metric == "cosine":
            out = backend.kmeans(
                x,
                self.n_clusters,
                init=self.init,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=seed,
                progress=progress,
            )
        else:
            out = ops._kmeans_fit(
                x,
                self.n_clusters,
                metric=self.metric,
                init=self.init,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=seed,
                n_threads=self.n_threads,
                progress=None,
                stacklevel=4,
            )
        self.labels_ = out.labels
        self.cluster_centers_ = out.centroids
        self.inertia_ = out.objective
        self.n_iter_ = out.n_iter
        self.converged_ = out.converged
        self.n_empty_reseeded_ = out.n_reseeded
        return self

    def _centers(self) -> npt.NDArray[np.float32]:
        try:
            return self.cluster_centers_
        except AttributeError:
            raise NotFittedError(
                f"this {type(self).__name__} instance is not fitted yet: call fit(X) first"
            ) from None

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int64]:  # noqa: N803
        """The closest learned centroid of each row of ``X`` (lowest index on ties)."""
        centers = self._centers()
        labels, _ = ops.kmeans_assign(
            self._validate(X, reset=False), centers, metric=self.metric, n_threads=self.n_threads
        )
        return labels

    def score(self, X: npt.ArrayLike, y: object = None) -> float:  # noqa: N803
        """Minus the objective of ``X`` assigned to the learned centroids (higher is better)."""
        centers = self._centers()
        _, objective = ops.kmeans_assign(
            self._validate(X, reset=False), centers, metric=self.metric, n_threads=self.n_threads
        )
        return -objective
