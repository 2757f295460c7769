"""Run configuration: TOML files that select everything by name, and their validation.

A config has these sections (all optional but ``[input]`` when a run reads a file)::

    [input]
    path = "embeddings.npy"        # .npy/.npz, .parquet, fastdup .dat, image folder
    # loader = "parquet"           # default: the first loader that reads the path
    # embedding_column = "vector"  # any other key is a parameter of the loader
    [graph]
    kind = "threshold"             # or "knn"
    k = 10                         # neighbours per row for "knn"
    threshold = 0.9
    # sweep = [0.8, 0.85, 0.9, 0.95]
    search = "auto"                # "exact", "ivf" (approximate, recall measured), "certified"
    # nprobe = 2                   # ivf: nearest lists compared (kNN 2, ε-graph 8)
    # n_lists = 2000               # ivf/certified: default 2 sqrt(N)
    # recall_rows = 1000           # ivf: seeded rows the recall is measured on
    [cluster]
    strategy = "connected-components"
    threshold = 0.9                # any other key is a parameter of the strategy
    [metrics]
    use = ["intra", "centroid", "inter"]
    distance = "cosine"            # or "euclidean", or a plugin's (simclust.distances)
    [metrics.inter]                # parameters of one metric
    top_m = 20
    [output]
    dir = "out"
    report = true
    [run]
    threads = 2                    # default: SIMCLUST_NUM_THREADS or all cores
    max_edges = 100_000_000        # refuse a similarity graph estimated to be larger
    # backend = "ray"              # "native" (default, this process) or "ray" (simclust[ray])
    # address = "auto"             # ray: the cluster to join; default: a local runtime
    [dedup]                        # also list near-duplicates (simclust.dedup)
    threshold = 0.95               # groups: components of the ε-graph at this similarity
    keep = "medoid"                # or "first", "largest-file" (an image folder's files)

``[metrics] distance`` is what every geometry metric measures (default ``cosine``;
``euclidean`` reports Euclidean distances of the rows as they are, under columns named
for them: ``dist_mean``, ``centroid_distance``...). A strategy with a ``metric``
parameter (k-means) and the distance default to each other: ``[cluster] metric =
"euclidean"`` alone makes the run's distance Euclidean, ``[metrics] distance =
"euclidean"`` alone makes k-means Euclidean. Graphs (``[graph]``, thresholds, the
outlier scores, dedup) are cosine whatever the distance.

Validation (:func:`resolve`) reports the key path and what is allowed: an unknown
strategy lists the available ones and the plugin that provides each; an unknown
parameter lists the strategy's parameters; a wrong type names the expected type.

Example:
    >>> from simclust import get_host
    >>> host = get_host(autoload=False)
    >>> cfg = resolve({"cluster": {"strategy": "kmeans", "n_clusters": 4}}, host)
    >>> cfg["cluster"]["params"]["n_clusters"], cfg["metrics"]["use"]
    (4, ['intra', 'centroid', 'inter'])
    >>> cfg = resolve({"cluster": {"strategy": "kmeans", "metric": "euclidean"}}, host)
    >>> cfg["metrics"]["distance"]
    'euclidean'
    >>> try:
    ...     resolve({"cluster": {"strategy": "kmeans", "n_clusters": "4"}}, host)
    ... except ConfigError as e:
    ...     print(e)
    cluster.n_clusters: strategy 'kmeans' parameter 'n_clusters' expects int, got str '4'

"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from simclust import ops
from simclust.exceptions import ConfigError, ParameterError, UnknownNameError
from simclust.graph import DEFAULT_MAX_EDGES, SEARCH_METHODS, SearchSettings
from simclust.host import Host
from simclust.params import check_value, parameters

__all__ = [
    "DEDUP_KEEP",
    "DEFAULT_DEDUP_KEEP",
    "DEFAULT_DEDUP_THRESHOLD",
    "DEFAULT_MAX_EDGES",
    "DEFAULT_METRICS",
    "DEFAULT_STRATEGY",
    "RUN_BACKENDS",
    "check_params",
    "load_config",
    "overlay",
    "resolve",
]

DEFAULT_STRATEGY = "connected-components"
DEFAULT_METRICS = ("intra", "centroid", "inter")
SECTIONS = ("input", "graph", "cluster", "metrics", "output", "run", "dedup")
DEDUP_KEEP = ("medoid", "first", "largest-file")
"""The policies choosing the file a near-duplicate group keeps (:mod:`simclust.duplicates`)."""
DEFAULT_DEDUP_KEEP = "medoid"
DEFAULT_DEDUP_THRESHOLD = 0.95
"""The similarity two rows need to be near-duplicates by default: edited copies (crops,
re-encodings, brightness changes) of one image under an embedding model."""
RUN_BACKENDS = ("native", "ray")
"""Where a run computes: ``native`` (this process, the Rust kernels' threads) or ``ray``
(the graph as tasks on a Ray cluster, :mod:`simclust.distributed`)."""
_GRAPH_KEYS = {"kind": "graph", "k": "k", "threshold": "threshold"}
_OUTPUT_KEYS: dict[str, type] = {"dir": str, "report": bool}


_PATH_KEYS = ("path", "features", "model")


def load_config(path: str | Path) -> dict[str, Any]:
    r"""Read a TOML config file; relative paths in it are taken from its folder.

    Paths are ``[input]``'s and ``[input.embedder_params]``'s values under the keys
    ``path``, ``features``, ``model`` or a key ending in ``_path`` / ``_file``, and
    ``[output] dir``.

    The result is the raw mapping (validate it with :func:`resolve`, which
    :func:`simclust.run` and :func:`simclust.analyze` do).

    Raises:
        ConfigError: the file is missing or is not valid TOML (with the line).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = p.write_text('[cluster]\nstrategy = "kmeans"\nn_clusters = 3\n')
        >>> load_config(p)["cluster"]
        {'strategy': 'kmeans', 'n_clusters': 3}

    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); TOML is UTF-8"
        ) from None
    except OSError as exc:  # a folder, no permission, an I/O error
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    base = p.resolve().parent
    for section, key in (("input", "path"), ("input", "features"), ("output", "dir")):
        table = raw.get(section)
        if isinstance(table, dict) and key in table and not isinstance(table[key], str):
            value = table[key]
            raise ConfigError(
                f"{section}.{key}: expected a string path, got {type(value).__name__} {value!r}"
            )

    def rebase(table: Any, keys: Sequence[str] = ()) -> None:
        if not isinstance(table, dict):
            return
        for key, value in table.items():
            is_path = key in keys or key in _PATH_KEYS or key.endswith(("_path", "_file"))
            if is_path and isinstance(value, str) and value and not Path(value).is_absolute():
                table[key] = str(base / value)

    rebase(raw.get("input"))
    if isinstance(raw.get("input"), dict):
        rebase(raw["input"].get("embedder_params"))
    rebase(raw.get("output"), ("dir",))
    return raw


_GRAPH_KEY_OF_PARAM = {"threshold": "threshold", "k": "k", "graph": "kind"}
"""Strategy parameters that are also ``[graph]`` keys: overriding one overrides both."""


def overlay(
    base: str | Path | Mapping[str, Any] | None = None,
    *,
    path: str | Path | None = None,
    strategy: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    distance: str | None = None,
    threads: int | None = None,
    max_edges: int | None = None,
    search: str | None = None,
    nprobe: int | None = None,
    backend: str | None = None,
    address: str | None = None,
    out: str | Path | None = None,
    report: bool | None = None,
) -> dict[str, Any]:
    """Overlay options (keyword arguments, command-line flags) on a raw config.

    The one place where options override a config, for :func:`simclust.analyze` and the
    command line alike. ``base`` is a TOML path (read with :func:`load_config`), a
    mapping in the config layout, or nothing. ``path`` becomes ``[input] path``;
    ``strategy`` and ``params`` go into ``[cluster]`` (another strategy than the base's
    drops the base's strategy parameters); a parameter that is also a ``[graph]`` key of
    the base (``threshold``, ``k``, ``graph`` as ``kind``) overrides it there too;
    ``metrics`` (names, or ``{name: {parameter: value}}``) replaces ``[metrics] use``,
    keeping the base's parameters of the metrics still used; ``distance`` becomes
    ``[metrics] distance``; ``threads``/``max_edges``/
    ``backend``/``address`` go into ``[run]``, ``search``/``nprobe`` into ``[graph]``,
    ``out``/``report`` into ``[output]``. The result is validated by :func:`resolve`.

    Raises:
        ConfigError: ``base`` is not a path or mapping, a section is not a table, or
            ``metrics`` is a single string.

    Example:
        >>> base = {"cluster": {"strategy": "kmeans", "n_clusters": 3}}
        >>> overlay(base, path="x.npy", params={"n_clusters": 5})
        {'cluster': {'strategy': 'kmeans', 'n_clusters': 5}, 'input': {'path': 'x.npy'}}
        >>> overlay(base, strategy="connected-components")["cluster"]
        {'strategy': 'connected-components'}
        >>> overlay({"graph": {"threshold": 0.8}}, params={"threshold": 0.9})["graph"]
        {'threshold': 0.9}

    """
    if base is None:
        raw: dict[str, Any] = {}
    elif isinstance(base, str | Path):
        raw = load_config(base)
    elif isinstance(base, Mapping):
        raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    else:
        raise ConfigError(f"config must be a path or a mapping, got {type(base).__name__}")

    def section(name: str) -> dict[str, Any]:
        value = raw.setdefault(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table ([{name}]), got {type(value).__name__}")
        return value

    if strategy is not None or params:
        cluster = section("cluster")
        if strategy is not None:
            if cluster.get("strategy", strategy) != strategy:
                cluster.clear()  # another strategy: the base's parameters do not apply
            cluster["strategy"] = strategy
        graph = raw.get("graph")
        for key, value in (params or {}).items():
            cluster[key] = value
            gkey = _GRAPH_KEY_OF_PARAM.get(key)
            if gkey is not None and isinstance(graph, dict) and gkey in graph:
                graph[gkey] = value
    if path is not None:
        inp = section("input")
        inp.pop("features", None)
        inp["path"] = str(path)
    if metrics is not None:
        if isinstance(metrics, str):
            raise ConfigError(f"metrics must be a list of names, got the string {metrics!r}")
        old = raw.get("metrics")
        old = old if isinstance(old, dict) else {}
        given = {k: dict(v) for k, v in metrics.items()} if isinstance(metrics, Mapping) else {}
        raw["metrics"] = {
            "use": list(metrics),
            **{k: v for k, v in old.items() if k in metrics and k not in given},
            **{k: v for k, v in old.items() if k == "distance"},
            **given,
        }
    for name, key, value in (
        ("metrics", "distance", distance),
        ("run", "threads", threads),
        ("run", "max_edges", max_edges),
        ("run", "backend", backend),
        ("run", "address", address),
        ("graph", "search", search),
        ("graph", "nprobe", nprobe),
        ("output", "dir", None if out is None else str(out)),
        ("output", "report", report),
    ):
        if value is not None:
            section(name)[key] = value
    return raw


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table ([{name}]), got {type(value).__name__}")
    return dict(value)


def check_params(
    where: str, owner: str, cls: type, given: Mapping[str, Any], *, skip: Sequence[str] = ()
) -> dict[str, Any]:
    """Validate ``given`` against ``cls``'s declared parameters; fill the defaults.

    ``where`` is the config key path the parameters sit at (named in every error) and
    ``owner`` what they belong to (e.g. ``"strategy 'kmeans'"``).

    Raises:
        ConfigError: an unknown parameter, a value of the wrong type, a missing
            required one.

    Example:
        >>> from simclust.default_plugins.strategies import ConnectedComponents
        >>> where, owner = "cluster", "strategy 'connected-components'"
        >>> check_params(where, owner, ConnectedComponents, {"threshold": 0.8})["threshold"]
        0.8

    """
    declared = {p.name: p for p in parameters(cls)}
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key in skip:
            continue
        if key not in declared:
            valid = ", ".join(declared) or "(none)"
            raise ConfigError(
                f"{where}.{key}: unknown parameter of {owner}; its parameters: {valid}"
            )
        try:
            out[key] = check_value(owner, declared[key], value)
        except ParameterError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    for name, p in declared.items():
        if name not in out:
            if p.required:
                raise ConfigError(
                    f"{where}.{name}: {owner} needs parameter {name!r} ({p.type_name})"
                )
            out[name] = p.default
    return out


def _lookup(host: Host, kind: str, name: Any, where: str) -> type:
    if not isinstance(name, str):
        raise ConfigError(f"{where}: expected a {kind} name (a string), got {name!r}")
    try:
        cls: type = host.registry(kind).get(name).obj
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cls


_SEARCH_KEYS = ("search", "nprobe", "n_lists", "recall_rows")


def _search(gr: dict[str, Any]) -> dict[str, Any]:
    """Pop and check the search keys of ``[graph]``; the resolved ``search`` section."""
    default = SearchSettings()
    method = gr.pop("search", default.method)
    if method not in SEARCH_METHODS:
        raise ConfigError(
            f"graph.search: expected one of {', '.join(SEARCH_METHODS)}, got {method!r}"
        )
    out: dict[str, Any] = {"method": method}
    for key, minimum in (("nprobe", 1), ("n_lists", 1), ("recall_rows", 0)):
        value = gr.pop(key, getattr(default, key))
        if value is None and key in ("nprobe", "n_lists"):
            out[key] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"graph.{key}: expected an int >= {minimum}, got {value!r}")
        out[key] = value
    return out


def _dedup(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """Check ``[dedup]``; ``None`` when the config has no such section."""
    if "dedup" not in raw:
        return None
    de = _section(raw, "dedup")
    threshold = de.pop("threshold", DEFAULT_DEDUP_THRESHOLD)
    keep = de.pop("keep", DEFAULT_DEDUP_KEEP)
    if de:
        raise ConfigError(f"dedup.{sorted(de)[0]}: unknown key; keys: threshold, keep")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigError(
            f"dedup.threshold: expected float, got {type(threshold).__name__} {threshold!r}"
        )
    if not -1.0 <= threshold <= 1.0:  # also NaN
        raise ConfigError(
            f"dedup.threshold: must be a cosine similarity in [-1, 1], got {threshold}"
        )
    if keep not in DEDUP_KEEP:
        raise ConfigError(f"dedup.keep: unknown policy {keep!r}; policies: {', '.join(DEDUP_KEEP)}")
    return {"threshold": float(threshold), "keep": keep}


def _distance(
    given: Any,
    strategy: str,
    scls: type,
    cl: Mapping[str, Any],
    params: dict[str, Any],
    host: Host,
) -> str:
    """``[metrics] distance``, checked; linked with the strategy's ``metric`` parameter.

    A strategy declaring ``metric`` (k-means) and the distance default to each other:
    a ``metric`` given alone (and naming a registered distance) is the distance, a
    distance given alone is the ``metric`` when the strategy accepts that value
    (``params`` is updated). Given both, each is kept as given.
    """
    metric = {p.name: p for p in parameters(scls)}.get("metric")
    if given is None:
        given = "cosine"
        named = cl.get("metric")
        if metric is not None and isinstance(named, str) and named in host.distances:
            given = named
    elif metric is not None and "metric" not in cl:
        try:
            params["metric"] = check_value(f"strategy {strategy!r}", metric, given)
        except ParameterError:
            pass  # a distance the strategy has no metric for: it keeps its default
    _lookup(host, "distance", given, "metrics.distance")
    return str(given)


def resolve(raw: Mapping[str, Any], host: Host) -> dict[str, Any]:
    """Validate a raw config and return it resolved: names checked, defaults filled.

    The result is a plain dict (it goes into ``manifest.json``)::

        {"input": {"path": str | None, "loader": str | None, "params": {...}},
         "graph": {"kind", "k", "threshold", "sweep"} | None,
         "search": {"method", "nprobe", "n_lists", "recall_rows"},
         "cluster": {"strategy": str, "params": {...}},
         "metrics": {"use": [names], "params": {name: {...}}, "distance": str},
         "output": {"dir": str | None, "report": bool},
         "run": {"threads": int | None, "max_edges": int,
                 "backend": "native" | "ray", "address": str | None},
         "dedup": {"threshold": float, "keep": str} | None}

    Raises:
        ConfigError: naming the key path and the allowed values or type.

    """
    raw = copy.deepcopy(dict(raw))
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}"
        )

    # [input]
    inp = _section(raw, "input")
    path = inp.pop("path", None)
    features = inp.pop("features", None)
    if path is not None and features is not None:
        raise ConfigError("input: give either path or features, not both")
    path = path if path is not None else features
    if path is not None and not isinstance(path, str):
        raise ConfigError(f"input.path: expected a string path, got {type(path).__name__}")
    loader = inp.pop("loader", None)
    loader_params: dict[str, Any] = {}
    if loader is not None:
        loader_params = check_params(
            "input", f"loader {loader!r}", _lookup(host, "loader", loader, "input.loader"), inp
        )
    elif inp:
        loader_params = dict(inp)  # checked once the loader is known (run time)

    # [cluster]
    cl = _section(raw, "cluster")
    strategy = cl.pop("strategy", DEFAULT_STRATEGY)
    scls = _lookup(host, "strategy", strategy, "cluster.strategy")
    declared = {p.name for p in parameters(scls)}

    # [graph]: kind/k/threshold are also the graph parameters of a graph strategy
    gr = _section(raw, "graph")
    search = _search(gr)  # how any graph of the run is searched; not a graph by itself
    graph_distance = gr.pop("distance", "cosine")
    if graph_distance != "cosine":
        raise ConfigError(
            f"graph.distance: graphs (ε and kNN) are built from cosine similarities only, got "
            f"{graph_distance!r}; a {graph_distance} graph is not supported yet. "
            "[metrics] distance sets what the geometry metrics measure"
        )
    unknown = sorted(set(gr) - {*_GRAPH_KEYS, "sweep"})
    if unknown:
        keys = ", ".join([*_GRAPH_KEYS, "sweep", "distance", *_SEARCH_KEYS])
        raise ConfigError(f"graph.{unknown[0]}: unknown key; keys: {keys}")
    for key, param in _GRAPH_KEYS.items():
        if key in gr and param in declared:
            if param in cl and cl[param] != gr[key]:
                raise ConfigError(
                    f"graph.{key} = {gr[key]!r} contradicts cluster.{param} = {cl[param]!r}"
                )
            cl.setdefault(param, gr[key])
    params = check_params("cluster", f"strategy {strategy!r}", scls, cl)

    graph: dict[str, Any] | None = None
    if gr:
        kind = gr.get("kind", "knn")
        if kind not in ("knn", "threshold"):
            raise ConfigError(f"graph.kind: expected 'knn' or 'threshold', got {kind!r}")
        k = gr.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool):
            raise ConfigError(f"graph.k: expected int, got {type(k).__name__} {k!r}")
        t = gr.get("threshold")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)):
            raise ConfigError(f"graph.threshold: expected float, got {type(t).__name__} {t!r}")
        if kind == "threshold" and t is None:
            raise ConfigError("graph.threshold: a 'threshold' graph needs a threshold")
        if t is not None and not -1.0 <= t <= 1.0:  # also NaN
            raise ConfigError(f"graph.threshold: must be a cosine similarity in [-1, 1], got {t}")
        sweep = gr.get("sweep")
        if sweep is not None and (
            not isinstance(sweep, list)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in sweep)
        ):
            raise ConfigError(f"graph.sweep: expected a list of floats, got {sweep!r}")
        bad = [v for v in sweep or () if not -1.0 <= v <= 1.0]
        if bad:
            raise ConfigError(
                f"graph.sweep: thresholds are cosine similarities in [-1, 1], got {bad[0]}"
            )
        graph = {
            "kind": kind,
            "k": k,
            "threshold": None if t is None else float(t),
            "sweep": None if sweep is None else [float(v) for v in sweep],
        }

    # [metrics]
    me = _section(raw, "metrics")
    use = me.pop("use", list(DEFAULT_METRICS))
    if isinstance(use, str) or not isinstance(use, Sequence):
        raise ConfigError(f"metrics.use: expected a list of metric names, got {use!r}")
    use = list(use)
    if len(set(use)) != len(use):
        raise ConfigError(f"metrics.use: a metric is listed twice: {use}")
    metric_params: dict[str, dict[str, Any]] = {}
    for name in use:
        mcls = _lookup(host, "metric", name, "metrics.use")
        given = me.pop(name, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"metrics.{name}: expected a table of parameters, got {given!r}")
        metric_params[name] = check_params(f"metrics.{name}", f"metric {name!r}", mcls, given)
    distance = _distance(me.pop("distance", None), strategy, scls, cl, params, host)
    if me:
        key = sorted(me)[0]
        raise ConfigError(
            f"metrics.{key}: parameters for a metric not in metrics.use "
            f"({', '.join(use) or 'none'})"
        )

    # [output]
    out = _section(raw, "output")
    for key, value in out.items():
        if key not in _OUTPUT_KEYS:
            raise ConfigError(f"output.{key}: unknown key; keys: {', '.join(_OUTPUT_KEYS)}")
        want = _OUTPUT_KEYS[key]
        ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"output.{key}: expected {want.__name__}, got {type(value).__name__} {value!r}"
            )
    # [run]
    rn = _section(raw, "run")
    threads = rn.pop("threads", None)
    max_edges = rn.pop("max_edges", DEFAULT_MAX_EDGES)
    backend = rn.pop("backend", "native")
    address = rn.pop("address", None)
    if rn:
        raise ConfigError(
            f"run.{sorted(rn)[0]}: unknown key; keys: threads, max_edges, backend, address"
        )
    if backend not in RUN_BACKENDS:
        raise ConfigError(
            f"run.backend: expected one of {', '.join(RUN_BACKENDS)}, got {backend!r}"
        )
    if address is not None and (not isinstance(address, str) or not address):
        raise ConfigError(
            f"run.address: expected a Ray address such as 'auto' or '127.0.0.1:6379', "
            f"got {address!r}"
        )
    if address is not None and backend != "ray":
        raise ConfigError("run.address: only for backend = 'ray' (the native backend runs here)")
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ConfigError(f"run.threads: expected a positive int, got {threads!r}")
    try:  # one rule for every thread count (and a set SIMCLUST_NUM_THREADS is checked here)
        ops.resolve_threads(threads)
    except ParameterError as exc:
        raise ConfigError(f"run.threads: {exc}") from None
    if not isinstance(max_edges, int) or isinstance(max_edges, bool) or max_edges < 1:
        raise ConfigError(f"run.max_edges: expected a positive int, got {max_edges!r}")
    return {
        "input": {"path": path, "loader": loader, "params": loader_params},
        "graph": graph,
        "cluster": {"strategy": strategy, "params": params},
        "metrics": {"use": use, "params": metric_params, "distance": distance},
        "search": search,
        "output": {"dir": out.get("dir"), "report": out.get("report", True)},
        "run": {"threads": threads, "max_edges": max_edges, "backend": backend, "address": address},
        "dedup": _dedup(raw),
    }
