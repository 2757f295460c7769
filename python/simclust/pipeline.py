"""The pipeline: config -> load -> normalise -> graph -> strategy -> metrics -> Result.

Graphs and the outlier scores are built from the unit rows (cosine); the strategy and
the metrics read the rows as the run's distance does (:mod:`simclust.distances`).

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
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import config as config_mod
from simclust import frames, ops
from simclust.base import (
    LoadedData,
    Metric,
    MetricContext,
    StrategyLike,
    fit_strategy,
    strategy_graph_spec,
)
from simclust.duplicates import dedup_graph, find_duplicates, row_files
from simclust.exceptions import (
    ConfigError,
    PluginError,
)
from simclust.graph import (
    Graph,
    GraphSpec,
    SearchSettings,
    build_run_graphs,
    sweep_thresholds,
)
from simclust.host import Host, Registration, get_host
from simclust.inputs import LoadBackend, read_input, read_run_input
from simclust.outdir import check_output_dir
from simclust.outliers import outlier_scores
from simclust.plugin_calls import (
    MetricOutputs,
    check_labels,
    declared_outputs,
    instantiate,
    plugin_call,
    run_frames,
    sort_metric_outputs,
)
from simclust.progress import StageProgress, for_stage
from simclust.result import SWEEP_SCHEMA, Result

if TYPE_CHECKING:
    from simclust.distributed import DistributedBackend


def graph_backend(run: Mapping[str, Any]) -> DistributedBackend | None:
    """The graph backend of ``[run]``: ``None`` (native), or the Ray plan on its cluster."""
    if run["backend"] != "ray":
        return None
    from simclust.distributed import DistributedBackend, RayExecutor

    return DistributedBackend(RayExecutor(run["address"], num_cpus=run["threads"]))


__all__ = ["Result", "StageProgress", "StageTimer", "analyze", "load_input", "run"]


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
    backend: LoadBackend | None = None,
) -> LoadedData:
    """Read ``path`` with the configured loader or the first that accepts it.

    The ``load`` stage of a run (:func:`simclust.inputs.read_input`, by ``backend``'s
    tasks where it can), reporting its progress as stage ``load``.

    Raises:
        ConfigError: the path does not exist, or no loader reads it.
        InvalidInputError: the input cannot be read.

    """
    return read_input(path, cfg, host, progress=for_stage(progress, "load"), backend=backend)


# --------------------------------------------------------------------------- stages


def _unit_rows(arr: npt.NDArray[Any], threads: int | None) -> npt.NDArray[np.float32]:
    """Stage ``normalize``: the rows scaled to unit norm, once per run, read-only.

    Rows that are unit already (most embeddings) are used in place: a memory-mapped
    input stays mapped and is not copied.
    """
    x = ops.normalize(arr, copy=False, n_threads=threads).view()
    x.flags.writeable = False  # plugins get read-only views: none can corrupt the next
    return x


@dataclass
class _Plugins:
    """The run's strategy and metrics, built and validated before any work is done."""

    strategy_reg: Registration[Any]
    strategy: StrategyLike
    strategy_spec: GraphSpec | None
    metrics: list[tuple[Registration[Any], Metric]]
    backend: DistributedBackend | None = None  # fits the strategies it can (kmeans)
    progress: StageProgress | None = None


def _plugins(cfg: Mapping[str, Any], host: Host, threads: int | None) -> _Plugins:
    """Instantiate the strategy and the metrics; ask for the graph; check parameters."""
    sreg = host.strategies.get(cfg["cluster"]["strategy"])
    sparams = dict(cfg["cluster"]["params"])
    if "n_threads" in sparams and sparams["n_threads"] is None:
        sparams["n_threads"] = threads
    strat = instantiate(sreg, sparams)
    spec = _strategy_graph_spec(sreg, strat)
    metrics = [
        (reg, instantiate(reg, cfg["metrics"]["params"][reg.name]))
        for reg in (host.metrics.get(name) for name in cfg["metrics"]["use"])
    ]
    for reg, metric in metrics:  # bad parameters fail before any work is done
        with plugin_call(reg, "validate"):
            metric.validate()
    return _Plugins(sreg, strat, spec, metrics)


def _strategy_graph_spec(reg: Registration[Any], strat: StrategyLike) -> GraphSpec | None:
    """The graph the strategy's ``fit`` needs (``None``: none)."""
    with plugin_call(reg, "graph_spec"):
        spec = strategy_graph_spec(strat)
    if spec is not None and not isinstance(spec, GraphSpec):
        raise PluginError(
            f"strategy {reg.name!r} ({reg.provider}) returned {type(spec).__name__} "
            "from graph_spec, not a GraphSpec or None"
        )
    return spec


def _graph_spec(plugins: _Plugins, cfg: Mapping[str, Any], n: int) -> GraphSpec | None:
    """The run's graph: the strategy's, else ``[graph]``, else a kNN graph for metrics."""
    if plugins.strategy_spec is not None:
        return plugins.strategy_spec
    if cfg["graph"] is None and not any(m.needs_graph for _, m in plugins.metrics):
        return None
    # a graph only the config or the metrics ask for: each row's 10 nearest by default
    g = cfg["graph"] or {"kind": "knn", "k": max(1, min(10, n - 1)), "threshold": None}
    return GraphSpec(g["kind"], k=g["k"], threshold=g["threshold"])


def _fit(
    plugins: _Plugins, x: npt.NDArray[np.float32], graph: Graph | None
) -> npt.NDArray[np.int64]:
    """Stage ``cluster``: fit the strategy (with the graph when it asked for one)."""
    reg, strat, on = plugins.strategy_reg, plugins.strategy, plugins.backend
    with plugin_call(reg, "fit"):  # a backend fits what it can (kmeans), else natively:
        labels = None if on is None else on.fit_strategy(strat, x, plugins.progress)
        if labels is None:
            labels = fit_strategy(strat, x, graph if plugins.strategy_spec is not None else None)
    return check_labels(reg, labels, int(x.shape[0]))


def _compute_metrics(
    plugins: _Plugins, ctx: MetricContext, timer: StageTimer, progress: StageProgress | None
) -> MetricOutputs:
    """Stages ``metric:<name>``: run each metric and check what it returns."""
    inter = pl.DataFrame(schema=ctx.distance.rename(frames.INTER_SCHEMA))
    out = MetricOutputs([], [], inter, {}, {})
    for reg, metric in plugins.metrics:
        stage = f"metric:{reg.name}"
        ctx.progress = for_stage(progress, stage)
        with timer.stage(stage), plugin_call(reg, "compute"):
            # a backend computes what it can (intra, centroid, inter), else natively
            on = plugins.backend
            by_backend = None if on is None else on.compute_metric(metric, ctx)
            returned = metric.compute(ctx) if by_backend is None else by_backend
            declared = declared_outputs(metric, ctx.distance)
        owner = f"metric {reg.name!r} ({reg.provider})"
        sort_metric_outputs(owner, metric, returned, out, declared)
    return out


# --------------------------------------------------------------------------- analyze


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
    search: str | None = None,
    backend: str | None = None,
    address: str | None = None,
    distance: str | None = None,
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
        search: how graphs are searched: ``"exact"``, ``"ivf"`` (approximate, recall
            measured), ``"certified"`` (exact threshold graphs, pruned) or ``"auto"``
            (the default: exact while the brute force is small, else ``ivf``); see
            :class:`simclust.graph.SearchSettings`.
        max_edges: the similarity graph's edge budget (default the config's
            ``[run] max_edges``, else 100 M, about 1.2 GB): a graph estimated to be
            larger is refused before it is built.
        backend: where the run computes: ``"native"`` (default: this process) or
            ``"ray"``: the similarity graphs (the run's and the outlier scores' kNN
            search) are built by Ray tasks over row-block pairs, the same edges; the
            rest runs here (:mod:`simclust.distributed`, ``docs/distributed.md``).
            Needs ``pip install "simclust[ray]"``; searches ``exact``, ``ivf``,
            ``certified`` and ``auto`` (``docs/distributed.md``).
        address: the Ray cluster to join (``"auto"``, ``"127.0.0.1:6379"``); default:
            the runtime this process has started, else a local one on 127.0.0.1.
        distance: what the geometry metrics measure (``[metrics] distance``, default
            ``"cosine"``; ``"euclidean"``, a plugin's: :mod:`simclust.distances`). The
            strategy and metrics read the rows as it does; k-means' ``metric`` and it
            default to each other. Graphs stay cosine.
        progress: ``progress(stage, done, total)`` (see :data:`StageProgress`).
        host: a plugin host (default: :func:`simclust.get_host`).
        **strategy_params: parameters of the strategy, validated against its declared
            parameters (e.g. ``threshold=0.9``, ``n_clusters=100``).

    Raises:
        ConfigError: unknown strategy/metric/parameter names, wrong types, missing input;
            ``backend="ray"`` without Ray installed.
        InvalidInputError: NaN/Inf or zero rows (listed), unreadable files.
        PluginError: a plugin failed (it is named).
        DistributedError: a Ray task failed for good (the stage and block pair named).

    Example:
        >>> import numpy as np
        >>> from simclust.testing import make_embeddings
        >>> X, y = make_embeddings(300, 16, n_clusters=3, seed=0, return_labels=True)
        >>> res = analyze(X, strategy="kmeans", n_clusters=3, metrics=["intra", "silhouette"])
        >>> res.clusters.height, res.clusters["sim_mean"].min() > 0
        (3, True)
        >>> res = analyze(X, strategy="kmeans", n_clusters=3, distance="euclidean")
        >>> res.config["cluster"]["params"]["metric"], "dist_mean" in res.clusters.columns
        ('euclidean', True)

    """
    host = host if host is not None else get_host()
    path = X_or_path if isinstance(X_or_path, str | Path) else None
    raw = config_mod.overlay(
        config,
        path=path,
        strategy=strategy,
        params=strategy_params,
        metrics=metrics,
        distance=distance,
        threads=n_threads,
        max_edges=max_edges,
        search=search,
        backend=backend,
        address=address,
    )
    cfg = config_mod.resolve(raw, host)
    edges = graph_backend(cfg["run"])  # before any work: a missing Ray fails here
    try:
        return _analyze(X_or_path, path, cfg, host, ids, rows, progress, edges)
    finally:
        if edges is not None:
            edges.close()


def _analyze(
    X_or_path: npt.ArrayLike | str | Path | None,  # noqa: N803
    path: str | Path | None,
    cfg: dict[str, Any],
    host: Host,
    ids: Sequence[str] | npt.ArrayLike | None,
    rows: pl.DataFrame | None,
    progress: StageProgress | None,
    edges: DistributedBackend | None,
) -> Result:
    """:func:`analyze` once its config is resolved and its graph backend joined."""
    threads = cfg["run"]["threads"]
    timer = StageTimer(progress)

    with timer.stage("load"):
        data = read_run_input(
            X_or_path, cfg, host, ids, rows, progress=for_stage(progress, "load"), backend=edges
        )
    dedup_cfg, files = cfg["dedup"], None
    if dedup_cfg is not None:  # largest-file without files fails before any work
        from_path = X_or_path is None or path is not None
        files = row_files(
            dedup_cfg["keep"], cfg["input"]["path"] if from_path else None, None, data.ids.to_list()
        )
    distance = host.distances.get(cfg["metrics"]["distance"]).obj
    with timer.stage("normalize"):
        x = _unit_rows(data.x, threads)
        x_metric = distance.rows(data.x, x)
        fingerprint = _fingerprint(data.x)
        if edges is not None:  # rows read by tasks: the backend cuts its blocks there
            edges.derived(data.x, x, unit=True)
            edges.derived(data.x, x_metric, unit=x_metric is x)
    plugins = replace(_plugins(cfg, host, threads), backend=edges, progress=progress)

    graph = sweep_graph = None
    settings = SearchSettings(**cfg["search"])
    spec = _graph_spec(plugins, cfg, int(x.shape[0]))
    if spec is not None:
        given = (cfg.get("graph") or {}).get("sweep")
        thresholds = sweep_thresholds(spec, given)

        def build(ts: npt.NDArray[np.float64]) -> tuple[Graph, Graph]:
            return build_run_graphs(
                x,
                spec,
                ts,
                n_threads=threads,
                progress=for_stage(progress, "graph"),
                max_edges=cfg["run"]["max_edges"],
                search=settings,
                backend=edges,
            )

        with timer.stage("graph"):
            try:
                graph, sweep_graph = build(thresholds)
            except ConfigError:
                if given or spec.threshold is None:
                    raise
                # the default sweep's graph below the threshold is over the budget: sweep
                # from the graph's own threshold (whose graph may still be refused)
                thresholds = thresholds[thresholds >= spec.threshold - 1e-9]
                if not thresholds.size:
                    thresholds = np.asarray([spec.threshold], dtype=np.float64)
                graph, sweep_graph = build(thresholds)
    # before the metrics: a big run's kNN search for the scores holds a copy of the rows,
    # which must not meet the metrics' state (peak memory)
    with timer.stage("outliers"):
        scores, outlier_search = outlier_scores(
            x,
            sweep_graph,  # a kNN run's is its complete kNN graph
            search=settings,
            n_threads=threads,
            progress=for_stage(progress, "outliers"),
            max_edges=cfg["run"]["max_edges"],
            backend=edges,
        )
    with timer.stage("cluster"):
        labels = _fit(plugins, x_metric, graph)

    ids, rows = data.ids.to_list(), data.rows
    ctx = MetricContext(
        x_metric, labels, graph, ids, rows, threads, search=settings, distance=distance
    )
    parts = _compute_metrics(plugins, ctx, timer, progress)
    parts.row_parts.append(("the outlier scores", scores))
    clusters, assignments = run_frames(labels, data.ids, parts, distance)

    sweep = pl.DataFrame(schema=SWEEP_SCHEMA)
    if sweep_graph is not None:
        with timer.stage("sweep"):
            # the forest when the graph has one: the same components at every threshold
            sweep = ops.threshold_sweep(labels.size, *sweep_graph.spanning(), thresholds)
    dedup: dict[str, Any] = {}
    if dedup_cfg is not None:
        with timer.stage("dedup"):
            dgraph = dedup_graph(
                x,
                dedup_cfg["threshold"],
                built=sweep_graph,
                n_threads=threads,
                progress=for_stage(progress, "dedup"),
                max_edges=cfg["run"]["max_edges"],
                search=settings,
                backend=edges,
            )
            parts.tables["duplicates"], parts.tables["duplicate_pairs"] = find_duplicates(
                x, dgraph, data.ids, keep=dedup_cfg["keep"], files=files, n_threads=threads
            )
        dedup = {**dedup_cfg, "graph_search": dict(dgraph.search)}
    if data.bad_files is not None:
        parts.tables["bad_files"] = data.bad_files
    matrix = parts.arrays.pop("centroid_matrix", np.zeros((0, 0), np.float32))
    matrix_ids = parts.arrays.pop("centroid_matrix_clusters", np.zeros(0, np.int64))
    result = Result(
        assignments=assignments,
        clusters=clusters,
        inter=parts.inter,
        edges=graph.frame(data.ids)
        if graph is not None
        else pl.DataFrame(schema=frames.EDGES_SCHEMA),
        sweep=sweep,
        centroid_matrix=np.asarray(matrix, dtype=np.float32),
        centroid_matrix_clusters=np.asarray(matrix_ids, dtype=np.int64),
        config=cfg,
        versions=_versions(host),
        fingerprint=fingerprint,
        timings=timer.timings,
        tables=parts.tables,
        arrays=parts.arrays,
        graph_search=graph.record if graph is not None else {},
        metric_searches=ctx.searches,
        outlier_search=outlier_search,
        dedup=dedup,
    )
    observed = result.copy()  # observers cannot change what is returned or written
    host.run_finished(observed, observed.config)
    return result


def run(
    config: str | Path | Mapping[str, Any],
    *,
    progress: StageProgress | None = None,
    host: Host | None = None,
) -> tuple[Result, Path]:
    r"""Run a config (a TOML path or mapping) and write the result to ``[output] dir``.

    The output folder is checked before any work (:func:`simclust.outdir.check_output_dir`:
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
