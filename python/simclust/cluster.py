"""Clustering estimators in the scikit-learn style, backed by the Rust core.

Parameters are keyword-only (except ``n_clusters``) and stored verbatim by
``__init__``; ``fit`` validates them, returns ``self`` and sets the learned
attributes, whose names end in ``_``.

Example:
    >>> import numpy as np
    >>> from simclust import KMeans
    >>> X = np.array([[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.8]])
    >>> km = KMeans(2, metric="euclidean", random_state=0).fit(X)
    >>> km.predict([[0.95, 0.05]]).tolist() == [km.labels_[0]]
    True

"""

from __future__ import annotations

import secrets
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.exceptions import NotFittedError, ParameterError

__all__ = ["KMeans"]


class KMeans:
    """K-means clustering: spherical (cosine, the default) or Euclidean.

    A thin estimator over :func:`simclust.ops.kmeans`, which documents the
    algorithm (greedy k-means++ seeding, Lloyd iterations with bounds,
    deterministic for any thread count).

    Args:
        n_clusters: number of clusters, ``1 <= n_clusters <= N``.
        metric: ``"cosine"`` (spherical k-means on unit-normalised rows) or
            ``"euclidean"``.
        init: ``"k-means++"``, ``"random"`` or an ``(n_clusters, D)`` array.
        n_init: independent seedings; the lowest objective wins.
        max_iter: maximum Lloyd iterations per seeding.
        tol: stop when the objective's relative decrease is at most ``tol``.
        random_state: seed; ``None`` draws a fresh one at each ``fit``.
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

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(c, 0.1, (20, 3)) for c in (0.0, 5.0)])
        >>> km = KMeans(2, metric="euclidean", random_state=0).fit(X)
        >>> sorted(np.bincount(km.labels_).tolist())
        [20, 20]
        >>> km.get_params()["metric"]
        'euclidean'

    """

    labels_: npt.NDArray[np.int64]
    cluster_centers_: npt.NDArray[np.float32]
    inertia_: float
    n_iter_: int
    converged_: bool
    n_empty_reseeded_: int
    n_features_in_: int

    _PARAMS = (
        "n_clusters",
        "metric",
        "init",
        "n_init",
        "max_iter",
        "tol",
        "random_state",
        "n_threads",
    )

    def __init__(
        self,
        n_clusters: int,
        *,
        metric: str = "cosine",
        init: ops.KMeansInit = "k-means++",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-4,
        random_state: int | None = None,
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

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters by name and return ``self``.

        Raises:
            ParameterError: an unknown parameter name.

        """
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(unknown)} for KMeans; "
                f"valid: {', '.join(self._PARAMS)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:  # noqa: N803
        """Cluster the rows of ``X`` (N x D); ``y`` is ignored. Returns ``self``."""
        seed = secrets.randbits(64) if self.random_state is None else self.random_state
        out = ops._kmeans_fit(
            X,
            self.n_clusters,
            metric=self.metric,
            init=self.init,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=seed,
            n_threads=self.n_threads,
            progress=None,
            stacklevel=3,
        )
        self.labels_ = out.labels
        self.cluster_centers_ = out.centroids
        self.inertia_ = out.objective
        self.n_iter_ = out.n_iter
        self.converged_ = out.converged
        self.n_empty_reseeded_ = out.n_reseeded
        self.n_features_in_ = int(out.centroids.shape[1])
        return self

    def fit_predict(self, X: npt.ArrayLike, y: object = None) -> npt.NDArray[np.int64]:  # noqa: N803
        """Fit, then return ``labels_``."""
        return self.fit(X).labels_

    def _centers(self) -> npt.NDArray[np.float32]:
        try:
            return self.cluster_centers_
        except AttributeError:
            raise NotFittedError(
                "this KMeans instance is not fitted yet: call fit(X) first"
            ) from None

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int64]:  # noqa: N803
        """The closest learned centroid of each row of ``X`` (lowest index on ties)."""
        labels, _ = ops.kmeans_assign(
            X, self._centers(), metric=self.metric, n_threads=self.n_threads
        )
        return labels

    def score(self, X: npt.ArrayLike, y: object = None) -> float:  # noqa: N803
        """Minus the objective of ``X`` assigned to the learned centroids (higher is better)."""
        _, objective = ops.kmeans_assign(
            X, self._centers(), metric=self.metric, n_threads=self.n_threads
        )
        return -objective

    @property
    def centroids_(self) -> npt.NDArray[np.float32]:
        """Alias of ``cluster_centers_`` (the name simclust's strategies use)."""
        return self._centers()

    def __repr__(self) -> str:
        """``KMeans(n_clusters=8, metric='euclidean')``: the non-default parameters."""
        defaults = {
            "metric": "cosine",
            "init": "k-means++",
            "n_init": 1,
            "max_iter": 100,
            "tol": 1e-4,
            "random_state": None,
            "n_threads": None,
        }
        parts = [f"n_clusters={self.n_clusters!r}"]
        for name in self._PARAMS[1:]:
            value = getattr(self, name)
            if isinstance(value, np.ndarray) or value != defaults[name]:
                shown = f"array{value.shape}" if isinstance(value, np.ndarray) else repr(value)
                parts.append(f"{name}={shown}")
        return f"KMeans({', '.join(parts)})"
