"""The contracts every clustering strategy, metric, loader and embedder follows.

Built-in and third-party plugins implement the same four base classes and register
them through the hooks in :mod:`simclust.hookspecs`:

* :class:`Strategy`: constructor parameters stored verbatim, ``get_params()``,
  ``fit(X, *, graph=None) -> self``, learned attributes end in ``_`` (``labels_``).
  Strategies that cluster a similarity graph say which graph they need with
  :meth:`Strategy.graph_spec`; the pipeline builds it once and shares it. The base
  class is optional: any class with named ``__init__`` parameters, ``fit(X)`` and
  ``labels_`` (:class:`StrategyLike`, scikit-learn's clusterer contract) is a strategy;
  the pipeline calls it through :func:`strategy_graph_spec` and :func:`fit_strategy`.
* :class:`Metric`: ``compute(ctx) -> {frame name: frame}`` over the embeddings (as
  the run's distance reads them: unit-normalised for cosine), the labels and (when
  ``needs_graph``) the graph, returning frames with the schemas declared in
  ``outputs`` (:meth:`Metric.declared_outputs` under the run's distance).
* :class:`Loader`: turns a path into embeddings (and optional ids and per-row columns).
* :class:`Embedder`: turns image files into embeddings.

The parameters of strategies, metrics and embedders are read from their constructor's
signature: its named arguments, their type annotations (or, unannotated, a
scikit-learn estimator's ``_parameter_constraints`` or the type of the default) and
defaults are what configuration files are validated against (:func:`parameters`, from
:mod:`simclust.params`).

Example:
    >>> import numpy as np
    >>> class Halves(Strategy):
    ...     '''Rows with a positive first coordinate form cluster 1, the rest cluster 0.'''
    ...     def __init__(self, *, axis: int = 0) -> None:
    ...         self.axis = axis
    ...     def fit(self, X, *, graph=None):
    ...         self.labels_ = (np.asarray(X)[:, self.axis] > 0).astype(np.int64)
    ...         return self
    >>> [p.name for p in parameters(Halves)]
    ['axis']
    >>> Halves(axis=0).fit(np.array([[1.0, 0.0], [-1.0, 0.0]])).labels_.tolist()
    [1, 0]

"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, Self

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import ops
from simclust.distances import Cosine, Distance
from simclust.graph import Graph, GraphSpec, SearchSettings
from simclust.params import Param, _Parametrized, check_plugin_class, check_value, parameters
from simclust.progress import Progress as Progress

__all__ = [
    "Embedder",
    "EmbedderOutput",
    "Graph",
    "GraphSpec",
    "LoadedData",
    "Loader",
    "Metric",
    "MetricContext",
    "Param",
    "Strategy",
    "StrategyLike",
    "check_plugin_class",
    "check_value",
    "fit_strategy",
    "parameters",
    "strategy_graph_spec",
]


# --------------------------------------------------------------------------- strategies


class Strategy(_Parametrized, abc.ABC):
    """A clustering strategy: assigns every row a cluster id (``-1`` = noise).

    Subclasses write ``__init__(self, *, ...)`` that only stores its annotated
    parameters (their names, types and defaults are the strategy's config keys), and
    :meth:`fit`. Subclassing is optional (see :class:`StrategyLike`); it adds
    ``get_params``/``set_params``/``repr``. In a run, ``fit`` receives float32 rows as the
    run's distance reads them (unit-normalised under the default ``cosine``, as given under
    ``euclidean``) and, when :meth:`graph_spec` returns a spec, the (cosine) graph built to
    it. It sets ``labels_``
    (int64, one per row, ids ``>= 0`` or ``-1`` for noise) and returns ``self``.

    Example:
        >>> class OneCluster(Strategy):
        ...     def fit(self, X, *, graph=None):
        ...         self.labels_ = np.zeros(len(X), dtype=np.int64)
        ...         return self
        >>> OneCluster().fit(np.eye(3, dtype=np.float32)).labels_.tolist()
        [0, 0, 0]

    """

    labels_: npt.NDArray[np.int64]

    def graph_spec(self) -> GraphSpec | None:
        """The graph ``fit`` needs (``None``: it needs none, the default)."""
        return None

    @abc.abstractmethod
    def fit(self, X: npt.NDArray[np.float32], *, graph: Graph | None = None) -> Self:  # noqa: N803
        """Cluster the rows of ``X``; set ``labels_``; return ``self``."""


class StrategyLike(Protocol):
    """What simclust needs of a strategy: scikit-learn's clusterer contract.

    A class with named ``__init__`` parameters (stored as they are), ``fit(X)`` and,
    after ``fit``, ``labels_`` is a strategy, whether or not it subclasses
    :class:`Strategy`: any scikit-learn clusterer (``AgglomerativeClustering``,
    ``DBSCAN``, ...) registers as it is. Optional: ``graph_spec()`` (the graph ``fit``
    needs; without it, none is built), and then ``fit`` takes ``graph=`` (see
    :func:`fit_strategy`). :func:`check_plugin_class` checks a class when it is
    registered.
    """

    def fit(self, X: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N803
        """Cluster the rows of ``X`` and set ``labels_``."""


def strategy_graph_spec(strategy: object) -> GraphSpec | None:
    """The graph ``strategy`` asks for: its ``graph_spec()``, or ``None`` without one.

    The result is returned as the strategy gave it (the pipeline checks that it is a
    :class:`GraphSpec` or ``None`` and names the strategy otherwise).

    Example:
        >>> from sklearn.cluster import DBSCAN
        >>> strategy_graph_spec(DBSCAN()) is None
        True

    """
    method = getattr(strategy, "graph_spec", None)
    if method is None:
        return None
    spec: GraphSpec | None = method()
    return spec


def fit_strategy(
    strategy: StrategyLike,
    X: npt.NDArray[np.float32],  # noqa: N803
    graph: Graph | None = None,
) -> npt.NDArray[Any]:
    """Fit ``strategy`` on ``X`` and return its ``labels_``.

    ``graph`` (the graph built to the strategy's :func:`strategy_graph_spec`) is passed
    as ``fit(X, graph=graph)``; without one ``fit(X)`` is called, as scikit-learn
    clusterers are. The labels are returned as the strategy set them.

    Raises:
        AttributeError: ``fit`` did not set ``labels_``.

    Example:
        >>> from sklearn.cluster import AgglomerativeClustering
        >>> X = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
        >>> fit_strategy(AgglomerativeClustering(n_clusters=2), X).tolist()
        [0, 0, 1]

    """
    if graph is None:
        strategy.fit(X)
    else:
        strategy.fit(X, graph=graph)
    try:
        labels = strategy.labels_  # type: ignore[attr-defined]
    except AttributeError:
        raise AttributeError(
            f"{type(strategy).__name__}.fit did not set labels_ (one cluster id per row)"
        ) from None
    return np.asarray(labels)


# --------------------------------------------------------------------------- metrics


@dataclass
class MetricContext:
    """Everything a metric may use; built once per run by the pipeline.

    Attributes:
        X: the float32 embeddings (N x D, C-order) as the run's ``distance`` reads them:
            unit-normalised for a ``cosine`` kernel, as given for ``euclidean`` and
            ``dot``. Do not modify.
        labels: int64 cluster of each row (``-1`` = noise).
        graph: the run's similarity graph, or ``None`` when no step asked for one.
        ids: one string id per row (file names, or the row index as text).
        rows: extra per-row input columns a loader provided (e.g. class annotations),
            or ``None``.
        n_threads: threads for the kernels (``None`` = default).
        progress: optional ``progress(done, total)`` callback for long metrics.
        search: the run's search settings; the :attr:`labelling`'s nearest-cluster
            searches follow its ``method`` (``certified`` is exact there), ``nprobe``
            and ``recall_rows``.
        distance: what the geometry metrics measure (``[metrics] distance``, a
            :class:`simclust.distances.Distance` class); the :attr:`labelling` measures
            in it.

    """

    X: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    graph: Graph | None = None
    ids: Sequence[str] | None = None
    rows: pl.DataFrame | None = None
    n_threads: int | None = None
    progress: Progress | None = None
    search: SearchSettings = field(default_factory=SearchSettings)
    distance: type[Distance] = Cosine
    cache: dict[str, Any] = field(default_factory=dict)
    """Scratch space shared by the metrics of one run."""

    @property
    def n_rows(self) -> int:
        """The number of rows."""
        return int(self.X.shape[0])

    @property
    def labelling(self) -> ops.Labelling:
        """The rows grouped by cluster (no copy), built on first use and shared by every metric.

        Pass it to the :mod:`simclust.ops` metric functions in place of ``X, labels``
        so that a run validates and groups its rows once.
        """
        lab = self.cache.get("labelling")
        if lab is None:
            method = "exact" if self.search.method == "certified" else self.search.method
            # the nearest-cluster searches keep Labelling's own nprobe default unless set
            nprobe: dict[str, Any] = {}
            if self.search.nprobe is not None:
                nprobe["nprobe"] = self.search.nprobe
            lab = self.cache["labelling"] = ops.Labelling(
                self.X,
                self.labels,
                distance=self.distance,
                n_threads=self.n_threads,
                search=method,
                recall_rows=self.search.recall_rows,
                **nprobe,
            )
        return lab

    @property
    def searches(self) -> dict[str, dict[str, Any]]:
        """What the metrics' nearest-cluster searches did (:attr:`ops.Labelling.searches`)."""
        lab = self.cache.get("labelling")
        out = dict(lab.searches) if lab is not None else {}
        # a distributed backend's searches (the metrics it computed by tasks)
        out.update(self.cache.get("backend searches", {}))
        return out


class Metric(_Parametrized, abc.ABC):
    """A metric: turns embeddings + labels (+ graph) into named Polars frames.

    ``outputs`` declares, for each frame the metric returns, its exact schema. Frames
    named ``"clusters"`` (keyed by ``cluster``) and ``"assignments"`` (keyed by
    ``index``) are joined into the run's frames of those names, so their other column
    names must not clash with another metric's; ``"inter"`` becomes the inter-cluster
    frame; any other name becomes an extra table of the result (``Result.tables``).
    Numpy arrays may be returned too, under names declared in ``arrays``.

    Example:
        >>> class Sizes(Metric):
        ...     outputs = {"clusters": {"cluster": pl.Int64(), "n_rows": pl.UInt32()}}
        ...     def compute(self, ctx):
        ...         df = pl.DataFrame({"cluster": ctx.labels}).filter(pl.col("cluster") >= 0)
        ...         out = df.group_by("cluster").len("n_rows").sort("cluster")
        ...         return {"clusters": out.cast({"n_rows": pl.UInt32})}
        >>> ctx = MetricContext(np.eye(3, dtype=np.float32), np.array([0, 0, 1]))
        >>> Sizes().compute(ctx)["clusters"].rows()
        [(0, 2), (1, 1)]

    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {}
    arrays: ClassVar[tuple[str, ...]] = ()
    needs_graph: ClassVar[bool] = False

    def declared_outputs(self, distance: type[Distance]) -> Mapping[str, Mapping[str, pl.DataType]]:
        """The frames :meth:`compute` returns under the run's ``distance``.

        ``outputs`` by default (a metric whose columns do not depend on the distance);
        the built-in geometry metrics return their schemas renamed by
        :meth:`simclust.distances.Distance.rename` (``sim_mean`` -> ``dist_mean``).
        """
        return self.outputs

    def validate(self) -> None:
        """Check the parameters' values; the pipeline calls it before clustering.

        Raise :class:`~simclust.exceptions.ParameterError` naming the bad parameter.
        """

    @abc.abstractmethod
    def compute(self, ctx: MetricContext) -> Mapping[str, pl.DataFrame | np.ndarray]:
        """Compute the frames declared in ``outputs`` (and arrays named in ``arrays``)."""


# --------------------------------------------------------------------------- loaders


class LoadedData(NamedTuple):
    """What a loader returns.

    Attributes:
        X: N x D embeddings (any real dtype; the pipeline converts and checks them).
        ids: one string id per row (e.g. file names) or ``None`` (row numbers are used).
        rows: extra per-row columns (class labels, captions...) or ``None``.
        bad_files: files that could not be read (``path``, ``error``) or ``None``.

    """

    X: npt.ArrayLike
    ids: Sequence[str] | None = None
    rows: pl.DataFrame | None = None
    bad_files: pl.DataFrame | None = None


class Loader(_Parametrized, abc.ABC):
    """Reads embeddings from a path.

    ``can_load(path)`` says whether this loader understands ``path`` (by suffix or by
    looking inside); the pipeline asks the registered loaders in order and uses the
    first that says yes, unless the config names one. ``load`` returns
    :class:`LoadedData`.

    Example:
        >>> class Txt(Loader):
        ...     def can_load(self, path):
        ...         return Path(path).suffix == ".txt"
        ...     def load(self, path, *, progress=None):
        ...         return LoadedData(np.loadtxt(path, ndmin=2))
        >>> Txt().can_load("x.txt")
        True

    """

    def bind(self, host: Any) -> None:
        """Receive the run's plugin host before :meth:`load` (e.g. to find embedders)."""

    @abc.abstractmethod
    def can_load(self, path: Path) -> bool:
        """Whether this loader reads ``path``."""

    @abc.abstractmethod
    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Read ``path``."""


class EmbedderOutput(NamedTuple):
    """What an embedder returns: the features of the readable images, in input order."""

    features: npt.NDArray[np.float32]
    paths: list[Path]
    bad_files: pl.DataFrame


class Embedder(_Parametrized, abc.ABC):
    """Turns image files into embeddings (``embed(paths) -> EmbedderOutput``).

    Unreadable images are listed in ``bad_files`` (columns ``path``, ``error``), never
    fatal.
    """

    @abc.abstractmethod
    def embed(self, paths: Sequence[Path], *, progress: Progress | None = None) -> EmbedderOutput:
        """Embed the images at ``paths``."""
