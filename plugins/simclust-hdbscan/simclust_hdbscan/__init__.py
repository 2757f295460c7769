"""simclust-hdbscan: scikit-learn's HDBSCAN as the simclust strategy ``hdbscan``.

The plugin is found through the ``simclust`` entry-point group (this module is the
entry point's value) and registers :class:`HDBSCANStrategy` under the name
``hdbscan`` with :func:`simclust_register_strategies`.

Example:
    >>> import simclust
    >>> simclust.get_host().strategies.get("hdbscan").distribution
    'simclust-hdbscan'

"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
from simclust.base import Graph, Strategy
from simclust.exceptions import ParameterError
from simclust.host import Registry, hookimpl

__all__ = ["HDBSCANStrategy", "simclust_register_strategies"]

_METHODS = ("eom", "leaf")


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


class HDBSCANStrategy(Strategy):
    """HDBSCAN (density-based, hierarchical) on the unit-normalised embeddings.

    Runs :class:`sklearn.cluster.HDBSCAN` with the Euclidean metric on the rows the
    pipeline passes to :meth:`fit`, which are already unit-normalised. On unit vectors
    the Euclidean distance is a monotone function of the cosine similarity,
    ``d = sqrt(2 - 2 cos)``, so the neighbour orders, core distances and the cluster
    hierarchy are exactly those of the cosine geometry (while scikit-learn can still use
    its KD-tree for the Euclidean metric). A cosine similarity ``s`` corresponds to the
    distance ``sqrt(2 - 2 s)``: to merge clusters closer than ``s = 0.9`` set
    ``cluster_selection_epsilon = sqrt(0.2) ~ 0.447``.

    Rows that belong to no cluster are noise (label ``-1``); cluster ids are ``0..k-1``.

    Args:
        min_cluster_size: the smallest group of rows HDBSCAN calls a cluster (>= 2).
        min_samples: neighbours (the row itself included) that make a row a core
            point; larger is more conservative, more rows become noise. ``None``: equal
            to ``min_cluster_size``.
        cluster_selection_epsilon: clusters closer than this Euclidean distance (on the
            unit sphere, see above) are merged; ``0.0`` disables it.
        cluster_selection_method: ``"eom"`` (excess of mass: the most persistent
            clusters, the default) or ``"leaf"`` (the leaves of the condensed tree:
            smaller, more homogeneous clusters).
        n_jobs: parallel jobs for the neighbour searches (``None``: one, ``-1``: all
            cores); scikit-learn's ``n_jobs``.
        allow_single_cluster: allow HDBSCAN to return a single cluster when the data
            has no finer structure.

    Attributes:
        labels_: int64 cluster of each row (``-1`` = noise).
        probabilities_: float64 strength of each row's membership in its cluster, in
            ``[0, 1]`` (``0`` for noise).
        n_clusters_: the number of clusters found.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(c, 0.02, (10, 3)) for c in ([1, 0, 0], [0, 1, 0])])
        >>> X = np.vstack([X, [[0.0, 0.0, 1.0]]])  # one outlier
        >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
        >>> s = HDBSCANStrategy(min_cluster_size=5).fit(X)
        >>> s.n_clusters_, np.bincount(s.labels_[s.labels_ >= 0]).tolist(), int(s.labels_[-1])
        (2, [10, 10], -1)

    """

    probabilities_: npt.NDArray[np.float64]
    n_clusters_: int

    def __init__(
        self,
        *,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        cluster_selection_epsilon: float = 0.0,
        cluster_selection_method: Literal["eom", "leaf"] = "eom",
        n_jobs: int | None = None,
        allow_single_cluster: bool = False,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.cluster_selection_method = cluster_selection_method
        self.n_jobs = n_jobs
        self.allow_single_cluster = allow_single_cluster

    def _validate(self, n_rows: int | None = None) -> None:
        """Raise :class:`ParameterError` for an invalid parameter (``n_rows``: the data's)."""
        where = "hdbscan"
        mcs = self.min_cluster_size
        if not _is_int(mcs) or mcs < 2:
            raise ParameterError(f"{where}: min_cluster_size must be an int >= 2, got {mcs!r}")
        ms = self.min_samples
        if ms is not None and (not _is_int(ms) or ms < 1):
            raise ParameterError(f"{where}: min_samples must be an int >= 1 or None, got {ms!r}")
        eps = self.cluster_selection_epsilon
        if (
            isinstance(eps, bool)
            or not isinstance(eps, int | float | np.integer | np.floating)
            or not math.isfinite(float(eps))
            or eps < 0
        ):
            raise ParameterError(
                f"{where}: cluster_selection_epsilon must be a finite float >= 0 "
                f"(a Euclidean distance between unit vectors, sqrt(2 - 2 cos)), got {eps!r}"
            )
        if self.cluster_selection_method not in _METHODS:
            raise ParameterError(
                f"{where}: cluster_selection_method must be 'eom' or 'leaf', "
                f"got {self.cluster_selection_method!r}"
            )
        nj = self.n_jobs
        if nj is not None and (not _is_int(nj) or nj == 0):
            raise ParameterError(
                f"{where}: n_jobs must be a non-zero int or None (-1 = all cores), got {nj!r}"
            )
        if not isinstance(self.allow_single_cluster, bool | np.bool_):
            raise ParameterError(
                f"{where}: allow_single_cluster must be a bool, got {self.allow_single_cluster!r}"
            )
        if n_rows is not None:
            effective = mcs if ms is None else ms
            if effective > n_rows:
                which = (
                    f"min_samples ({ms})"
                    if ms is not None
                    else f"min_samples (None, i.e. min_cluster_size = {mcs})"
                )
                raise ParameterError(
                    f"{where}: {which} must be at most the number of rows ({n_rows}); "
                    "lower min_samples or min_cluster_size"
                )

    def graph_spec(self) -> None:
        """HDBSCAN builds its own neighbour structures: no graph. Checks the parameters."""
        self._validate()
        return None

    def fit(self, X: npt.NDArray[np.float32], *, graph: Graph | None = None) -> Self:  # noqa: N803
        """Cluster the (unit-normalised) rows; set ``labels_``, ``probabilities_``, ``n_clusters_``.

        Args:
            X: N x D unit-normalised embeddings (the pipeline normalises them; rows of
                other norms are clustered by Euclidean distance as they are).
            graph: ignored (HDBSCAN needs no simclust graph).

        Raises:
            ParameterError: an invalid parameter, or ``min_samples`` larger than N.
            ImportError: scikit-learn is not installed.

        """
        x = np.asarray(X)
        if x.ndim != 2:
            raise ParameterError(f"hdbscan: X must be 2-D (N x D), got shape {x.shape}")
        self._validate(int(x.shape[0]))
        try:
            from sklearn.cluster import HDBSCAN  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
            raise ImportError(
                "the 'hdbscan' strategy needs scikit-learn >= 1.3: pip install scikit-learn"
            ) from exc
        model = HDBSCAN(
            min_cluster_size=int(self.min_cluster_size),
            min_samples=None if self.min_samples is None else int(self.min_samples),
            cluster_selection_epsilon=float(self.cluster_selection_epsilon),
            cluster_selection_method=self.cluster_selection_method,
            allow_single_cluster=bool(self.allow_single_cluster),
            metric="euclidean",
            n_jobs=self.n_jobs,
            copy=True,
        )
        model.fit(x)
        raw = np.asarray(model.labels_)
        # scikit-learn marks rows with inf (-2) or NaN (-3) apart; simclust has one noise id.
        labels = np.where(raw < 0, -1, raw).astype(np.int64)
        self.labels_ = labels
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(labels.max()) + 1 if labels.size else 0
        return self


@hookimpl
def simclust_register_strategies(registry: Registry[type[Any]]) -> None:
    """Register :class:`HDBSCANStrategy` as the strategy ``hdbscan``."""
    registry.register("hdbscan", HDBSCANStrategy)
