"""The pipeline: config -> load -> normalise -> graph -> strategy -> metrics -> Result.

:func:`analyze` is the Python entry point; :func:`run` executes a config file and
writes the result. Strategies, metrics and loaders are looked up by name in the plugin
host, so a third-party plugin's names work exactly like the built-in ones.

Example:
    >>> import numpy as np
    >>> from simclust import analyze
    >>> X = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [-1, 0]], dtype=np.float32)
    >>> res = analyze(X, threshold=0.9)
    >>> res.assignments["cluster"].to_list()
    [0, 0, 1, 1, 2]
    >>> res.clusters.select("cluster", "size", "n_pairs").rows()
    [(0, 2, 1), (1, 2, 1), (2, 1, 0)]

"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import config as config_mod
from simclust import frames, ops
from simclust.base import (
    Graph,
    GraphSpec,
    LoadedData,
    Metric,
    MetricContext,
    Strategy,
)
from simclust.default_plugins.strategies import build_graph
from simclust.exceptions import (
    ConfigError,
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
    SimclustError,
)
from simclust.host import BUILTIN_PLUGIN, Host, Registration, get_host
from simclust.result import SWEEP_SCHEMA, Result, check_output_dir

__all__ = ["Result", "StageProgress", "StageTimer", "analyze", "load_input", "run"]

StageProgress = Callable[[str, int, int], object]
"""``progress(stage, done, total)``: stages are ``load``, ``normalize``, ``graph``,
``cluster``, ``metric:<name>`` and ``sweep``; each reports ``(0, total)`` when it starts
and ``(total, total)`` when it ends, and long kernels report in between."""

# --------------------------------------------------------------------------- helpers


def _versions(host: Host) -> dict[str, Any]:
    import pluggy

    from simclust._native import __version__

    return {
        "simclust": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "polars": pl.__version__,
        "pluggy": pluggy.__version__,
        "plugins": {p.name: p.version for p in host.plugins()},
    }


def _fingerprint(x: npt.NDArray[Any]) -> dict[str, Any]:
    """Digest of the input as float32 C-order, converted block by block (no full copy)."""
    h = hashlib.blake2b(digest_size=16)
    step = max(1, (1 << 24) // max(1, x.shape[1] * 4))
    for start in range(0, x.shape[0], step):
        h.update(np.ascontiguousarray(x[start : start + step], dtype=np.float32).tobytes())
    return {
        "rows": int(x.shape[0]),
        "dim": int(x.shape[1]),
        "dtype": "float32",
        "blake2b": h.hexdigest(),
    }


_PLUGIN_FAILURES = (Exception, SystemExit, pl.exceptions.PanicException)
"""What a plugin call may raise that becomes an error naming the plugin: a plugin's
``sys.exit()`` must not end the run silently, nor a Rust panic (a ``BaseException``)
inside a library it calls; KeyboardInterrupt passes unchanged."""


def _wrap_plugin_error(reg: Registration[Any], what: str, exc: BaseException) -> BaseException:
    """Name the plugin in a failure, keeping the error's type when it is simclust's.

    A built-in's simclust error passes unchanged. A plugin's ``ParameterError``,
    ``ShapeError`` or ``InvalidInputError`` (the user's parameters or data are wrong) is
    re-raised as the same type, prefixed with the plugin's name; anything else a plugin
    raises is a bug in the plugin: :class:`PluginError`.
    """
    if isinstance(exc, SystemExit):
        return PluginError(
            f"{reg.kind} {reg.name!r} ({reg.provider}) called sys.exit({exc.code!r}) "
            f"in {what}; a plugin must raise an exception instead"
        )
    if isinstance(exc, SimclustError):
        if reg.plugin == BUILTIN_PLUGIN or isinstance(exc, PluginError):
            return exc
        try:
            return type(exc)(f"{reg.kind} {reg.name!r} ({reg.provider}): {exc}")
        except Exception:  # a subclass with another constructor: fall through
            pass
    return PluginError(
        f"{reg.kind} {reg.name!r} ({reg.provider}) failed in {what}: {type(exc).__name__}: {exc}"
    )


def _os_reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _instantiate(reg: Registration[Any], params: Mapping[str, Any]) -> Any:
    try:
        return reg.obj(**params)
    except _PLUGIN_FAILURES as exc:
        raise _wrap_plugin_error(reg, "__init__", exc) from exc


def _check_frame(owner: str, name: str, df: Any, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    if not isinstance(df, pl.DataFrame):
        raise PluginError(
            f"{owner} returned {name!r} as {type(df).__name__}, not a polars DataFrame"
        )
    if dict(df.schema) != dict(schema):
        raise PluginError(
            f"{owner} returned frame {name!r} with schema {dict(df.schema)}, "
            f"but declared {dict(schema)}"
        )
    return df


def _merge(
    base: pl.DataFrame,
    key: str,
    parts: Sequence[tuple[str, pl.DataFrame]],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    """Left-join each metric's frame onto ``base`` by ``key``; then the full schema."""
    out = base
    owners: dict[str, str] = {c: "simclust" for c in base.columns}
    for owner, df in parts:
        extra = [c for c in df.columns if c != key and c not in ("size", "cluster")]
        for c in extra:
            if c in owners:
                raise PluginError(f"{owner} and {owners[c]} both produce column {c!r}")
            owners[c] = owner
        if df[key].is_duplicated().any():
            raise PluginError(f"{owner} returned duplicate {key!r} values")
        unknown = df[key].filter(~df[key].is_in(base[key].implode()) | df[key].is_null())
        if unknown.len():
            what = "clusters" if key == "cluster" else "rows"
            shown = ", ".join(str(v) for v in unknown.head(5).to_list())
            raise PluginError(
                f"{owner} returned {unknown.len()} {key!r} value(s) for {what} that do not "
                f"exist (e.g. {shown}); nothing is dropped silently"
            )
        out = out.join(df.select(key, *extra), on=key, how="left", maintain_order="left")
    full = [
        (pl.col(n) if n in out.columns else pl.lit(None)).cast(t).alias(n)
        for n, t in schema.items()
    ]
    rest = [c for c in out.columns if c not in schema]
    return out.select(*full, *rest)


def _id_text(value: Any, i: int) -> str:
    """One row id as text: a string, UTF-8 bytes, an integer or a path; else an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"ids[{i}] = {bytes(value)!r} is not UTF-8 text") from None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    what = "null" if value is None else f"{type(value).__name__} {value!r}"
    raise InvalidInputError(f"ids[{i}] is {what}; ids must be strings (or integers)")


def as_ids(ids: Sequence[Any] | npt.ArrayLike | pl.Series | None, n: int) -> pl.Series:
    """The ``id`` column: one string per row (default: the row number).

    Bytes are decoded as UTF-8; a null, a float or another object is an error (never
    its ``str()``, such as ``"None"`` or ``"b'x.png'"``).

    Raises:
        InvalidInputError: an id is null, not text or not UTF-8 (the row is named).
        ShapeError: not one id per row.

    Example:
        >>> as_ids([b"a.png", "b.png", 7], 3).to_list()
        ['a.png', 'b.png', '7']

    """
    if ids is None:
        return pl.Series("id", np.arange(n).astype(str), dtype=pl.String)
    if isinstance(ids, str | bytes):
        raise InvalidInputError(f"ids must be one id per row, got a single {type(ids).__name__}")
    if isinstance(ids, pl.Series):
        values_in = ids.to_list()
    elif isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ShapeError(f"ids must be 1-D (one id per row), got shape {ids.shape}")
        values_in = ids.tolist()
    else:
        values_in = list(ids)  # type: ignore[arg-type]
    if len(values_in) != n:
        raise ShapeError(f"ids has {len(values_in)} entries but the embeddings have {n} rows")
    values = [_id_text(v, i) for i, v in enumerate(values_in)]
    return pl.Series("id", values, dtype=pl.String)


def _stage_cb(progress: StageProgress | None, stage: str) -> ops.Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


class StageTimer:
    """Times named stages and reports their start and end to a ``StageProgress``.

    Example:
        >>> t = StageTimer(lambda stage, done, total: print(stage, done, total))
        >>> with t.stage("load"):
        ...     pass
        load 0 1
        load 1 1
        >>> list(t.timings)
        ['load']

    """

    def __init__(self, progress: StageProgress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``."""
        if self.progress is not None:
            self.progress(name, 0, 1)
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start
        if self.progress is not None:
            self.progress(name, 1, 1)


def load_input(
    path: str | Path,
    cfg: Mapping[str, Any],
    host: Host,
    *,
    progress: StageProgress | None = None,
) -> LoadedData:
    """Read ``path`` with the configured loader or the first that accepts it.

    Raises:
        ConfigError: the path does not exist, or no loader reads it.

    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"input.path: {str(p)!r} does not exist")
    name = cfg["input"].get("loader")
    if name is None:
        for reg in host.loaders.registrations():
            probe = _instantiate(reg, {})
            try:
                accepts = probe.can_load(p)
            except OSError as exc:  # e.g. a folder it may not list
                raise InvalidInputError(f"cannot read {str(p)!r}: {_os_reason(exc)}") from exc
            except _PLUGIN_FAILURES as exc:
                raise _wrap_plugin_error(reg, "can_load", exc) from exc
            if accepts:
                name = reg.name
                break
        else:
            raise ConfigError(
                f"input.path: no loader reads {str(p)!r}; loaders: {host.loaders.describe()}"
            )
    reg = host.loaders.get(name)
    params = config_mod._params(
        "input", f"loader {name!r}", reg.obj, cfg["input"].get("params", {})
    )
    loader = _instantiate(reg, params)
    try:
        loader.bind(host)
        data = loader.load(p, progress=_stage_cb(progress, "load"))
    except (SimclustError, KeyboardInterrupt):
        raise
    except OSError as exc:  # unreadable input (permissions, I/O): the user's to fix
        where = exc.filename if exc.filename is not None else p
        raise InvalidInputError(f"cannot read {str(where)!r}: {_os_reason(exc)}") from exc
    except _PLUGIN_FAILURES as exc:
        raise _wrap_plugin_error(reg, "load", exc) from exc
    if not isinstance(data, LoadedData):
        raise PluginError(f"loader {name!r} returned {type(data).__name__}, not LoadedData")
    return data


def _sweep_thresholds(spec: GraphSpec, cfg: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    given = (cfg.get("graph") or {}).get("sweep")
    if given:
        values = np.asarray(given, dtype=np.float64)
        if not np.all((values >= -1.0) & (values <= 1.0)):  # resolve() checks it too
            bad = values[~((values >= -1.0) & (values <= 1.0))][0]
            raise ConfigError(
                f"graph.sweep: thresholds are cosine similarities in [-1, 1], got {bad}"
            )
        return values
    lo = spec.threshold if spec.threshold is not None else 0.5
    lo = max(float(lo), -1.0)
    values = np.round(np.arange(np.ceil(lo * 100) / 100, 1.0 - 1e-9, 0.01), 2).astype(np.float64)
    return values if values.size else np.asarray([lo], dtype=np.float64)


def _sweep_spec(spec: GraphSpec, thresholds: npt.NDArray[np.float64]) -> GraphSpec:
    """The graph the sweep needs: ``spec``, or ``spec`` built at a lower threshold.

    Thresholds below the graph's are counted on the graph built at the lowest one
    (never on the graph cut at the higher threshold, which would miss edges).
    """
    if spec.threshold is None or not thresholds.size:
        return spec  # a kNN graph without a cut holds every kNN edge
    lowest = float(thresholds.min())
    if np.float32(lowest) >= np.float32(spec.threshold):
        return spec
    return GraphSpec(spec.kind, k=spec.k, threshold=lowest)


def _cut(graph: Graph, spec: GraphSpec) -> Graph:
    """``graph`` (built at a lower threshold) restricted to ``spec``'s threshold."""
    assert spec.threshold is not None
    keep = graph.similarity >= np.float32(spec.threshold)
    return _read_only(
        Graph(spec, graph.n_nodes, graph.src[keep], graph.dst[keep], graph.similarity[keep])
    )


def _read_only(graph: Graph) -> Graph:
    """The same graph with read-only edge arrays: a plugin cannot reorder the run's edges."""
    src, dst, sim = graph.src.view(), graph.dst.view(), graph.similarity.view()
    for a in (src, dst, sim):
        a.flags.writeable = False
    return Graph(graph.spec, graph.n_nodes, src, dst, sim)


def _as_matrix(x_in: Any) -> npt.NDArray[Any]:
    try:
        arr = np.asarray(x_in)
    except (ValueError, TypeError) as exc:  # ragged rows, objects numpy cannot stack
        raise InvalidInputError(f"the embeddings are not an N x D array of numbers: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(
            f"the embeddings must be a non-empty 2-D array (N x D), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"the embeddings must be real numbers, got dtype {arr.dtype}")
    return arr


# --------------------------------------------------------------------------- analyze


def _raw_config(
    config: str | Path | Mapping[str, Any] | None,
    strategy: str | None,
    metrics: Sequence[str] | Mapping[str, Mapping[str, Any]] | None,
    strategy_params: Mapping[str, Any],
    n_threads: int | None,
    max_edges: int | None = None,
) -> dict[str, Any]:
    if config is None:
        raw: dict[str, Any] = {}
    elif isinstance(config, str | Path):
        raw = config_mod.load_config(config)
    elif isinstance(config, Mapping):
        raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}
    else:
        raise ConfigError(f"config must be a path or a mapping, got {type(config).__name__}")
    cluster = dict(raw.get("cluster", {}))
    if strategy is not None:
        if cluster.get("strategy", strategy) != strategy:
            cluster = {}  # another strategy than the config's: its parameters do not apply
        cluster["strategy"] = strategy
    cluster.update(strategy_params)
    raw["cluster"] = cluster
    if metrics is not None:
        if isinstance(metrics, str):
            raise ConfigError(f"metrics must be a list of names, got the string {metrics!r}")
        me: dict[str, Any] = {"use": list(metrics)}
        if isinstance(metrics, Mapping):
            me.update({k: dict(v) for k, v in metrics.items()})
        raw["metrics"] = me
    for key, value in (("threads", n_threads), ("max_edges", max_edges)):
        if value is not None:
            run_section = raw.get("run", {})
            if not isinstance(run_section, Mapping):
                raise ConfigError(
                    f"run: expected a table ([run]), got {type(run_section).__name__}"
                )
            raw["run"] = {**run_section, key: value}
    return raw


def analyze(
    X_or_path: npt.ArrayLike | str | Path | None = None,  # noqa: N803
    *,
    strategy: str | None = None,
    metrics: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    ids: Sequence[str] | npt.ArrayLike | None = None,
    rows: pl.DataFrame | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    n_threads: int | None = None,
    max_edges: int | None = None,
    progress: StageProgress | None = None,
    host: Host | None = None,
    **strategy_params: Any,
) -> Result:
    """Cluster embeddings and measure the clusters' geometry; return the :class:`Result`.

    Args:
        X_or_path: an N x D array, or a path a loader reads (``.npy``/``.npz``,
            ``.parquet``, ...); ``None`` takes ``[input] path`` from ``config``.
        strategy: a registered strategy name (default: the config's, else
            ``"connected-components"``).
        metrics: metric names, or ``{name: {parameter: value}}`` (default: the
            config's, else ``("intra", "centroid", "inter")``).
        ids: one string id per row (default: the loader's ids, else the row number).
        rows: extra per-row columns for metrics, e.g. class annotations for
            ``label-purity`` (default: the loader's, e.g. a Parquet file's other columns).
        config: a TOML path or a mapping in the config layout (:mod:`simclust.config`);
            the keyword arguments here override it.
        n_threads: threads for every kernel (default ``SIMCLUST_NUM_THREADS`` or all).
        max_edges: the similarity graph's edge budget (default the config's
            ``[run] max_edges``, else 100 M, about 1.2 GB): a graph estimated to be
            larger is refused before it is built.
        progress: ``progress(stage, done, total)`` (see :data:`StageProgress`).
        host: a plugin host (default: :func:`simclust.get_host`).
        **strategy_params: parameters of the strategy, validated against its declared
            parameters (e.g. ``threshold=0.9``, ``n_clusters=100``).

    Raises:
        ConfigError: unknown strategy/metric/parameter names, wrong types, missing input.
        InvalidInputError: NaN/Inf or zero rows (listed), unreadable files.
        PluginError: a plugin failed (it is named).

    Example:
        >>> import numpy as np
        >>> from simclust.testing import make_embeddings
        >>> X, y = make_embeddings(300, 16, n_clusters=3, seed=0, return_labels=True)
        >>> res = analyze(X, strategy="kmeans", n_clusters=3, metrics=["intra", "silhouette"])
        >>> res.clusters.height, res.clusters["sim_mean"].min() > 0
        (3, True)

    """
    host = host if host is not None else get_host()
    raw = _raw_config(config, strategy, metrics, strategy_params, n_threads, max_edges)
    if X_or_path is not None and isinstance(X_or_path, str | Path):
        raw["input"] = {**dict(raw.get("input", {})), "path": str(X_or_path)}
        raw["input"].pop("features", None)
    cfg = config_mod.resolve(raw, host)
    threads = cfg["run"]["threads"]
    timer = StageTimer(progress)

    with timer.stage("load"):
        bad_files: pl.DataFrame | None = None
        if X_or_path is None or isinstance(X_or_path, str | Path):
            path = cfg["input"]["path"]
            if path is None:
                raise ConfigError("input.path: missing; give the embeddings file or image folder")
            data = load_input(path, cfg, host, progress=progress)
            x_in, bad_files = data.X, data.bad_files
            if rows is None:
                rows = data.rows
            if ids is None:
                ids = data.ids
        else:
            x_in = X_or_path
    arr = _as_matrix(x_in)
    n = int(arr.shape[0])
    id_series = as_ids(ids, n)
    if rows is not None and not isinstance(rows, pl.DataFrame):
        raise ParameterError(f"rows must be a polars DataFrame, got {type(rows).__name__}")
    if rows is not None and rows.height != n:
        raise ShapeError(f"the per-row columns (rows) have {rows.height} rows, not {n}")

    with timer.stage("normalize"):
        x = ops.normalize(arr, n_threads=threads).view()
        x.flags.writeable = False  # plugins get read-only views: none can corrupt the next
        fingerprint = _fingerprint(arr)

    sreg = host.strategies.get(cfg["cluster"]["strategy"])
    sparams = dict(cfg["cluster"]["params"])
    if "n_threads" in sparams and sparams["n_threads"] is None:
        sparams["n_threads"] = threads
    strat: Strategy = _instantiate(sreg, sparams)
    try:
        own_spec = spec = strat.graph_spec()
    except (SimclustError, KeyboardInterrupt):
        raise
    except _PLUGIN_FAILURES as exc:
        raise _wrap_plugin_error(sreg, "graph_spec", exc) from exc
    if own_spec is not None and not isinstance(own_spec, GraphSpec):
        raise PluginError(
            f"strategy {sreg.name!r} ({sreg.provider}) returned {type(own_spec).__name__} "
            "from graph_spec, not a GraphSpec or None"
        )

    mregs = [host.metrics.get(name) for name in cfg["metrics"]["use"]]
    metric_objs: list[tuple[Registration[Any], Metric]] = [
        (reg, _instantiate(reg, cfg["metrics"]["params"][reg.name])) for reg in mregs
    ]
    for reg, metric in metric_objs:  # bad parameters fail before any work is done
        try:
            metric.validate()
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAILURES as exc:
            raise _wrap_plugin_error(reg, "validate", exc) from exc
    if spec is None and (cfg["graph"] is not None or any(m.needs_graph for _, m in metric_objs)):
        # a graph only the metrics asked for: each row's 10 nearest (fewer on tiny inputs)
        g = cfg["graph"] or {"kind": "knn", "k": max(1, min(10, n - 1)), "threshold": None}
        spec = GraphSpec(g["kind"], k=g["k"], threshold=g["threshold"])
    graph: Graph | None = None
    sweep_graph: Graph | None = None
    if spec is not None:
        thresholds = _sweep_thresholds(spec, cfg)
        build_spec = _sweep_spec(spec, thresholds)
        with timer.stage("graph"):
            try:
                sweep_graph = build_graph(
                    x,
                    build_spec,
                    n_threads=threads,
                    progress=_stage_cb(progress, "graph"),
                    max_edges=cfg["run"]["max_edges"],
                )
            except ConfigError as exc:
                if build_spec is spec:
                    raise
                low = build_spec.threshold
                raise ConfigError(
                    f"graph.sweep: {low:g} is below the graph's threshold {spec.threshold:g}, "
                    f"so the sweep needs the graph at {low:g}, but {exc}"
                ) from None
        sweep_graph = _read_only(sweep_graph)
        graph = sweep_graph if build_spec is spec else _cut(sweep_graph, spec)

    with timer.stage("cluster"):
        try:
            strat.fit(x, graph=graph if own_spec is not None else None)
            labels_raw = strat.labels_
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAILURES as exc:
            raise _wrap_plugin_error(sreg, "fit", exc) from exc
    labels = _check_labels(sreg, labels_raw, n)

    ctx = MetricContext(x, labels, graph, id_series.to_list(), rows, threads)
    cluster_parts: list[tuple[str, pl.DataFrame]] = []
    row_parts: list[tuple[str, pl.DataFrame]] = []
    inter = pl.DataFrame(schema=frames.INTER_SCHEMA)
    tables: dict[str, pl.DataFrame] = {}
    arrays: dict[str, np.ndarray] = {}
    for reg, metric in metric_objs:
        stage = f"metric:{reg.name}"
        owner = f"metric {reg.name!r} ({reg.provider})"
        ctx.progress = _stage_cb(progress, stage)
        with timer.stage(stage):
            try:
                out = metric.compute(ctx)
            except KeyboardInterrupt:
                raise
            except _PLUGIN_FAILURES as exc:
                raise _wrap_plugin_error(reg, "compute", exc) from exc
        declared = type(metric).outputs
        if not isinstance(out, Mapping):
            raise PluginError(
                f"{owner} returned {type(out).__name__} from compute, not a mapping of "
                "frame names to frames"
            )
        for name, value in out.items():
            if name in declared:
                df = _check_frame(owner, name, value, declared[name])
                if name == "clusters":
                    cluster_parts.append((owner, df))
                elif name == "assignments":
                    row_parts.append((owner, df))
                elif name == "inter":
                    inter = df
                else:
                    tables[name] = df
            elif name in type(metric).arrays:
                arrays[name] = _check_array(owner, name, value)
            else:
                raise PluginError(f"{owner} returned {name!r}, which it does not declare")
        missing = sorted(set(declared) - set(out))
        if missing:
            raise PluginError(f"{owner} did not return the declared frame(s) {missing}")

    ids_present, sizes = np.unique(labels[labels >= 0], return_counts=True)
    base_clusters = pl.DataFrame(
        {
            "cluster": pl.Series(ids_present, dtype=pl.Int64),
            "size": pl.Series(sizes, dtype=pl.UInt32),
        }
    )
    clusters = _merge(base_clusters, "cluster", cluster_parts, frames.CLUSTERS_SCHEMA)
    base_rows = pl.DataFrame(
        {
            "index": pl.Series(np.arange(n), dtype=pl.UInt32),
            "id": id_series,
            "cluster": pl.Series(labels, dtype=pl.Int64),
        }
    )
    assignments = _merge(base_rows, "index", row_parts, frames.ASSIGNMENTS_SCHEMA)

    sweep = pl.DataFrame(schema=SWEEP_SCHEMA)
    edges = pl.DataFrame(schema=frames.EDGES_SCHEMA)
    if graph is not None and sweep_graph is not None:
        edges = graph.frame()
        with timer.stage("sweep"):
            sweep = ops.threshold_sweep(
                n, sweep_graph.src, sweep_graph.dst, sweep_graph.similarity, thresholds
            )
    if bad_files is not None:
        tables["bad_files"] = bad_files

    matrix = arrays.pop("centroid_matrix", np.zeros((0, 0), np.float32))
    matrix_ids = arrays.pop("centroid_matrix_clusters", np.zeros(0, np.int64))
    result = Result(
        assignments=assignments,
        clusters=clusters,
        inter=inter,
        edges=edges,
        sweep=sweep,
        centroid_matrix=np.asarray(matrix, dtype=np.float32),
        centroid_matrix_clusters=np.asarray(matrix_ids, dtype=np.int64),
        config=cfg,
        versions=_versions(host),
        fingerprint=fingerprint,
        timings=timer.timings,
        tables=tables,
        arrays=arrays,
    )
    observed = result.copy()  # observers cannot change what is returned or written
    host.run_finished(observed, observed.config)
    return result


def _check_array(owner: str, name: str, value: Any) -> npt.NDArray[Any]:
    """A metric's declared array: numeric (it is written to Parquet/JSON as numbers)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{owner} returned array {name!r} that numpy cannot read: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise PluginError(
            f"{owner} returned array {name!r} of dtype {arr.dtype}, not numbers "
            f"(bool, int or float)"
        )
    return arr


def _check_labels(reg: Registration[Any], labels: Any, n: int) -> npt.NDArray[np.int64]:
    owner = f"strategy {reg.name!r} ({reg.provider})"
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise PluginError(f"{owner} set labels_ of shape {lab.shape}, expected ({n},)")
    if lab.size and lab.dtype.kind not in "iu":
        raise PluginError(f"{owner} set labels_ of dtype {lab.dtype}, expected integers")
    lab = np.array(lab, dtype=np.int64)  # a copy: the plugin keeps its own array
    if lab.size and lab.min() < -1:
        raise PluginError(f"{owner} set labels below -1 (noise is -1)")
    lab.flags.writeable = False  # shared by every metric: none may change it
    return lab


def run(
    config: str | Path | Mapping[str, Any],
    *,
    progress: StageProgress | None = None,
    host: Host | None = None,
) -> tuple[Result, Path]:
    r"""Run a config (a TOML path or mapping) and write the result to ``[output] dir``.

    The output folder is checked before any work (:func:`simclust.result.check_output_dir`:
    absent, empty or a previous simclust result, never the input) and chosen before the
    ``simclust_run_finished`` hooks run, so an observer cannot redirect the write.

    Returns:
        The result and the folder it was written to (default ``out`` beside the config
        file, or in the working directory for a mapping).

    Raises:
        FileExistsError: the output folder is not one simclust may write into.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> np.save(d / "x.npy", np.eye(4, dtype=np.float32))
        >>> _ = (d / "run.toml").write_text('[input]\npath = "x.npy"\n[output]\ndir = "out"\n')
        >>> res, out = run(d / "run.toml")
        >>> out == d / "out", (out / "clusters.parquet").exists()
        (True, True)

    """
    if isinstance(config, str | Path):
        base = Path(config).resolve().parent
        config = config_mod.load_config(config)
    else:
        base = Path.cwd()
    output = config.get("output") if isinstance(config, Mapping) else None
    out_dir = output.get("dir") if isinstance(output, Mapping) else None
    out = Path(out_dir) if isinstance(out_dir, str) and out_dir else base / "out"
    inp = config.get("input") if isinstance(config, Mapping) else None
    inp_path = inp.get("path") if isinstance(inp, Mapping) else None
    check_output_dir(out, input_path=inp_path if isinstance(inp_path, str) else None)
    result = analyze(config=config, progress=progress, host=host)
    return result, result.write(out)
