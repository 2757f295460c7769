"""The contracts every clustering strategy, metric, loader and embedder follows.

Built-in and third-party plugins implement the same four base classes and register
them through the hooks in :mod:`simclust.hookspecs`:

* :class:`Strategy`: keyword-only constructor parameters stored verbatim,
  ``get_params()``, ``fit(X, *, graph=None) -> self``, learned attributes end in ``_``
  (``labels_``). Strategies that cluster a similarity graph say which graph they need
  with :meth:`Strategy.graph_spec`; the pipeline builds it once and shares it.
* :class:`Metric`: ``compute(ctx) -> {frame name: frame}`` over the unit-normalised
  embeddings, the labels and (when ``needs_graph``) the graph, returning frames with
  the schemas declared in ``outputs``.
* :class:`Loader`: turns a path into embeddings (and optional ids and per-row columns).
* :class:`Embedder`: turns image files into embeddings.

The parameters of strategies, metrics and embedders are read from their constructor's
signature: its keyword-only arguments, their type annotations and defaults are what
configuration files are validated against (:func:`parameters`).

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
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Self

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import ops
from simclust.exceptions import ParameterError

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
    "check_value",
    "parameters",
]

Progress = Callable[[int, int], object]
"""``progress(done, total)``; long steps call it about ten times a second."""

GraphKind = Literal["knn", "threshold"]


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One declared parameter of a strategy, metric or embedder.

    Attributes:
        name: the keyword argument's name (also the config key).
        annotation: its resolved type annotation (``float``, ``int | None``,
            ``Literal["knn", "threshold"]``, ``tuple[float, ...]``).
        default: its default value (``inspect.Parameter.empty`` when required).

    Example:
        >>> Param("k", int, 10).type_name
        'int'

    """

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is inspect.Parameter.empty

    @property
    def type_name(self) -> str:
        """The annotation written the way a user reads it."""
        return _type_name(self.annotation)


def parameters(cls: type) -> tuple[Param, ...]:
    """Return the declared (keyword-only) constructor parameters of a plugin class.

    Raises:
        TypeError: the constructor has positional parameters, ``*args``/``**kwargs``,
            or a parameter without a type annotation (a plugin-authoring error).

    Example:
        >>> class Demo(Strategy):
        ...     def __init__(self, *, threshold: float = 0.9, k: int | None = None) -> None:
        ...         self.threshold, self.k = threshold, k
        ...     def fit(self, X, *, graph=None):
        ...         return self
        >>> [(p.name, p.type_name, p.default) for p in parameters(Demo)]
        [('threshold', 'float', 0.9), ('k', 'int | None', None)]

    """
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return ()
    sig = inspect.signature(init)
    try:
        hints = typing.get_type_hints(init)
    except Exception as exc:  # a forward reference the module cannot resolve
        raise TypeError(f"{cls.__qualname__}.__init__ has unresolvable annotations: {exc}") from exc
    out: list[Param] = []
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(
                f"{cls.__qualname__}.__init__ parameter {name!r} must be keyword-only "
                "(write `def __init__(self, *, ...)`; no *args or **kwargs)"
            )
        if name not in hints:
            raise TypeError(
                f"{cls.__qualname__}.__init__ parameter {name!r} needs a type annotation"
            )
        out.append(Param(name, hints[name], p.default))
    return tuple(out)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return "None"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (tuple, list, Sequence) or (
        isinstance(origin, type) and issubclass(origin, Sequence)
    ):
        inner = _type_name(args[0]) if args else "Any"
        return f"list of {inner}"
    if annotation is Any:
        return "any value"
    return getattr(annotation, "__name__", str(annotation))


def _matches(value: Any, annotation: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits ``annotation``; returns the (possibly converted) value."""
    if annotation is Any:
        return True, value
    if annotation is type(None) or annotation is None:
        return value is None, value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, converted = _matches(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is not None and (
        origin in (tuple, list) or (isinstance(origin, type) and issubclass(origin, Sequence))
    ):
        if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
            return False, value
        inner = args[0] if args else Any
        items = []
        for item in value:
            ok, converted = _matches(item, inner)
            if not ok:
                return False, value
            items.append(converted)
        return True, tuple(items) if origin is tuple else items
    if annotation is bool:
        return isinstance(value, bool | np.bool_), value
    if annotation is int:
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
        return ok, int(value) if ok else value
    if annotation is float:
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool | np.bool_
        )
        return ok, float(value) if ok else value
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value  # an annotation simclust cannot check (e.g. a Protocol)


def check_value(owner: str, param: Param, value: Any) -> Any:
    """Check ``value`` against ``param``'s annotation; return it (ints widened to float).

    Raises:
        ParameterError: naming the owner, the parameter, the expected and the given type.

    Example:
        >>> check_value("strategy 'kmeans'", Param("n_clusters", int), 8)
        8
        >>> try:
        ...     check_value("strategy 'kmeans'", Param("n_clusters", int), "8")
        ... except ParameterError as e:
        ...     print(e)
        strategy 'kmeans' parameter 'n_clusters' expects int, got str '8'

    """
    ok, converted = _matches(value, param.annotation)
    if not ok:
        raise ParameterError(
            f"{owner} parameter {param.name!r} expects {param.type_name}, "
            f"got {type(value).__name__} {value!r}"
        )
    return converted


class _Parametrized:
    """``get_params`` / ``set_params`` over the declared constructor parameters."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters by name, as stored by ``__init__``."""
        return {p.name: getattr(self, p.name) for p in parameters(type(self))}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters by name and return ``self``.

        Raises:
            ParameterError: an unknown parameter name (the valid ones are listed).

        """
        valid = {p.name for p in parameters(type(self))}
        unknown = sorted(set(params) - valid)
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(unknown)} for {type(self).__name__}; "
                f"valid: {', '.join(sorted(valid)) or '(none)'}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class GraphSpec:
    """Which similarity graph a strategy or metric needs.

    Attributes:
        kind: ``"knn"`` (each row's ``k`` exact nearest neighbours) or ``"threshold"``
            (every pair with cosine similarity ``>= threshold``, the ε-graph).
        k: neighbours per row for ``"knn"``.
        threshold: the similarity an edge needs; for ``"knn"`` ``None`` keeps every
            kNN edge.

    Example:
        >>> GraphSpec("threshold", threshold=0.9)
        GraphSpec(kind='threshold', k=10, threshold=0.9)

    """

    kind: GraphKind = "knn"
    k: int = 10
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("knn", "threshold"):
            raise ParameterError(f"graph kind must be 'knn' or 'threshold', got {self.kind!r}")
        if self.kind == "threshold" and self.threshold is None:
            raise ParameterError("a 'threshold' graph needs a threshold")


@dataclass(frozen=True)
class Graph:
    """An undirected similarity graph over the rows: edges ``src < dst``, unique.

    Example:
        >>> g = Graph(GraphSpec("threshold", threshold=0.5), 3,
        ...           np.array([0], np.uint32), np.array([2], np.uint32),
        ...           np.array([0.7], np.float32))
        >>> g.n_edges
        1

    """

    spec: GraphSpec
    n_nodes: int
    src: npt.NDArray[np.uint32]
    dst: npt.NDArray[np.uint32]
    similarity: npt.NDArray[np.float32]

    @property
    def n_edges(self) -> int:
        """The number of undirected edges."""
        return int(self.src.size)

    def at_least(self, threshold: float) -> Graph:
        """The subgraph of the edges with ``similarity >= threshold``."""
        built_at = self.spec.threshold
        if built_at is not None and np.float32(built_at) >= np.float32(threshold):
            return self  # every edge already passed a threshold at least as high
        keep = self.similarity >= np.float32(threshold)
        return Graph(self.spec, self.n_nodes, self.src[keep], self.dst[keep], self.similarity[keep])

    def frame(self) -> pl.DataFrame:
        """The edges as a frame with :data:`simclust.frames.EDGES_SCHEMA`."""
        from simclust.frames import edges_frame

        return edges_frame(self.src, self.dst, self.similarity)


# --------------------------------------------------------------------------- strategies


class Strategy(_Parametrized, abc.ABC):
    """A clustering strategy: assigns every row a cluster id (``-1`` = noise).

    Subclasses write ``__init__(self, *, ...)`` that only stores its keyword-only,
    annotated parameters (their names, types and defaults are the strategy's config
    keys), and :meth:`fit`. ``fit`` receives unit-normalised float32 rows and, when
    :meth:`graph_spec` returns a spec, the graph built to it. It sets ``labels_``
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


# --------------------------------------------------------------------------- metrics


@dataclass
class MetricContext:
    """Everything a metric may use; built once per run by the pipeline.

    Attributes:
        X: the unit-normalised float32 embeddings (N x D, C-order). Do not modify.
        labels: int64 cluster of each row (``-1`` = noise).
        graph: the run's similarity graph, or ``None`` when no step asked for one.
        ids: one string id per row (file names, or the row index as text).
        rows: extra per-row input columns a loader provided (e.g. class annotations),
            or ``None``.
        n_threads: threads for the kernels (``None`` = default).
        progress: optional ``progress(done, total)`` callback for long metrics.

    """

    X: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    graph: Graph | None = None
    ids: Sequence[str] | None = None
    rows: pl.DataFrame | None = None
    n_threads: int | None = None
    progress: Progress | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    """Scratch space shared by the metrics of one run."""

    @property
    def n_rows(self) -> int:
        """The number of rows."""
        return int(self.X.shape[0])

    @property
    def labelling(self) -> ops.Labelling:
        """The rows gathered by cluster, built on first use and shared by every metric.

        Pass it to the :mod:`simclust.ops` metric functions in place of ``X, labels``
        so that a run validates, normalises and gathers its rows once.
        """
        lab = self.cache.get("labelling")
        if lab is None:
            lab = self.cache["labelling"] = ops.Labelling(
                self.X, self.labels, n_threads=self.n_threads
            )
        return lab


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
