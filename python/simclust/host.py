"""The plugin host: a pluggy manager and the registries its plugins fill.

Load order (:func:`get_plugin_manager`): hook specifications, blocked names
(``SIMCLUST_BLOCK_PLUGINS``, comma-separated plugin or distribution names), the
built-in plugins (:mod:`simclust.default_plugins`), then the ``simclust`` entry points
unless ``SIMCLUST_DISABLE_PLUGIN_AUTOLOAD`` is set, then ``check_pending()``.
``SIMCLUST_TRACE_PLUGINS=1`` prints every hook call to stderr.

:func:`get_host` then calls the registration hooks plugin by plugin (built-ins first,
then third-party plugins by name), so every registered name knows the plugin and
distribution that provided it, and a plugin that fails is named in the error.

Example:
    >>> from simclust import get_host
    >>> host = get_host(autoload=False)
    >>> "kmeans" in host.strategies
    True
    >>> host.strategies.get("kmeans").plugin
    'simclust.default_plugins'

"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy
import polars as pl

from simclust import hookspecs
from simclust.exceptions import PluginError, UnknownNameError

if TYPE_CHECKING:
    from simclust.base import Embedder, Loader, Metric, StrategyLike
    from simclust.distances import Distance

__all__ = [
    "ENTRY_POINT_GROUP",
    "Host",
    "PluginInfo",
    "Registration",
    "Registry",
    "build_host",
    "get_host",
    "get_plugin_manager",
    "hookimpl",
]

ENTRY_POINT_GROUP = "simclust"
"""The entry-point group third-party plugins publish under."""

BUILTIN_PLUGIN = "simclust.default_plugins"
"""The name the built-in plugin is registered under."""

hookimpl = pluggy.HookimplMarker("simclust")
"""Marker for hook implementations: ``@simclust.hookimpl``."""

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
T = TypeVar("T")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _normalise(distribution: str) -> str:
    """A distribution name in PEP 503 normal form (``Simclust_X`` == ``simclust-x``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _blocked_names() -> set[str]:
    raw = os.environ.get("SIMCLUST_BLOCK_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its registered name and the distribution that installed it."""

    name: str
    distribution: str | None
    version: str | None


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One registered implementation: its name, the object and who provided it."""

    name: str
    kind: str
    obj: T
    plugin: str
    distribution: str | None

    @property
    def provider(self) -> str:
        """Who provides it, for messages: ``built-in`` or ``plugin 'x' from dist``."""
        if self.plugin == BUILTIN_PLUGIN:
            return "built-in"
        if self.distribution and self.distribution != self.plugin:
            return f"plugin {self.plugin!r} from {self.distribution}"
        return f"plugin {self.plugin!r}"


@dataclass
class Registry(Generic[T]):
    """Name -> implementation for one kind (strategy, metric, loader, embedder or distance).

    Plugins receive a registry in their registration hook and call :meth:`register`.

    Example:
        >>> from sklearn.cluster import DBSCAN
        >>> reg = Registry("strategy")
        >>> reg.register("dbscan", DBSCAN)
        >>> reg.names()
        ['dbscan']

    """

    kind: str
    _items: dict[str, Registration[T]] = field(default_factory=dict)
    _plugin: str = "<direct>"
    _distribution: str | None = None

    def register(self, name: str, obj: T, *, replace: bool = False) -> None:
        """Register ``obj`` under ``name`` (kebab-case).

        The class is checked here, before any run (:func:`simclust.params.check_plugin_class`):
        a strategy needs named ``__init__`` parameters and ``fit`` (a scikit-learn
        clusterer qualifies as it is), a metric ``compute``, and so on.

        Raises:
            PluginError: ``name`` is not kebab-case, or is taken and ``replace`` is false,
                or ``obj`` lacks what its kind needs (the missing piece is named).

        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"plugin {self._plugin!r} registered the {self.kind} name {name!r}; "
                "names must be kebab-case (lowercase letters, digits and single hyphens)"
            )
        who = f"plugin {self._plugin!r}" + (
            f" (distribution {self._distribution})"
            if self._distribution and self._distribution != self._plugin
            else ""
        )
        old = self._items.get(name)
        if old is not None and not replace:
            raise PluginError(
                f"{who} registered the {self.kind} {name!r}, which "
                f"is already provided ({old.provider}); pass replace=True to replace it"
            )
        from simclust.params import check_plugin_class

        try:
            check_plugin_class(self.kind, obj)
        except TypeError as exc:
            raise PluginError(f"{who} registered the {self.kind} {name!r}: {exc}") from None
        self._items[name] = Registration(name, self.kind, obj, self._plugin, self._distribution)

    def get(self, name: str) -> Registration[T]:
        """Return the registration of ``name``.

        Raises:
            UnknownNameError: listing every available name and its provider.

        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; available: {self.describe()}"
            ) from None

    def describe(self) -> str:
        """``name (provider), ...`` for error messages.

        Example:
            >>> get_host(autoload=False).strategies.describe()
            'connected-components (built-in), kmeans (built-in)'

        """
        if not self._items:
            return "(none)"
        return ", ".join(f"{r.name} ({r.provider})" for r in self._items.values())

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def registrations(self) -> list[Registration[T]]:
        """All registrations in registration order."""
        return list(self._items.values())

    def snapshot(self) -> dict[str, Registration[T]]:
        """A copy of the registrations, for :meth:`restore`."""
        return dict(self._items)

    def restore(self, snapshot: dict[str, Registration[T]]) -> None:
        """Put back the registrations of a :meth:`snapshot` (undoing a failed plugin)."""
        self._items.clear()
        self._items.update(snapshot)

    def remove_plugin(self, plugin: str) -> None:
        """Remove every name ``plugin`` registered."""
        for key in [k for k, r in self._items.items() if r.plugin == plugin]:
            del self._items[key]

    def _bound(self, plugin: str, distribution: str | None) -> Registry[T]:
        view: Registry[T] = Registry(self.kind, self._items, plugin, distribution)
        return view

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _distribution_of(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = ep.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def get_plugin_manager(
    *, autoload: bool | None = None, strict: bool = True
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-in and (optionally) installed plugins.

    Nothing is loaded at import time; each call builds a fresh manager.

    Args:
        autoload: load the ``simclust`` entry points; default: unless the
            environment variable ``SIMCLUST_DISABLE_PLUGIN_AUTOLOAD`` is set.
        strict: a plugin that fails to import raises :class:`PluginError`; with
            ``strict=False`` it is skipped with a warning.

    Raises:
        PluginError: a plugin failed to import (naming the plugin and its
            distribution), or implements a hook that does not exist.

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> pm.get_plugin("simclust.default_plugins") is not None
        True

    """
    from simclust import default_plugins

    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    blocked = _blocked_names()
    blocked_dists = {_normalise(name) for name in blocked}
    for name in blocked:
        pm.set_blocked(name)
    distributions: dict[str, PluginInfo] = {}
    if BUILTIN_PLUGIN not in blocked:
        pm.register(default_plugins, name=BUILTIN_PLUGIN)
        distributions[BUILTIN_PLUGIN] = PluginInfo(BUILTIN_PLUGIN, "simclust", None)
    if autoload is None:
        autoload = not _env_flag("SIMCLUST_DISABLE_PLUGIN_AUTOLOAD")
    if autoload:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda e: e.name):
            dist, version = _distribution_of(ep)
            if ep.name in blocked or (dist is not None and _normalise(dist) in blocked_dists):
                continue
            seen = distributions.get(ep.name)
            if seen is not None or pm.get_plugin(ep.name) is not None:
                if seen is not None and _normalise(seen.distribution or "") == _normalise(
                    dist or ""
                ):
                    continue  # the same distribution seen twice on sys.path
                err = PluginError(
                    f"two plugins are named {ep.name!r}: from distribution "
                    f"{seen.distribution if seen else 'simclust'} and from {dist or 'unknown'}; "
                    "uninstall one or block it with SIMCLUST_BLOCK_PLUGINS"
                )
                if strict:
                    raise err
                warnings.warn(f"{err}; the second skipped", RuntimeWarning, stacklevel=2)
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except (Exception, SystemExit) as exc:  # sys.exit() at import is a failure too
                err = PluginError(
                    f"plugin {ep.name!r} (distribution {dist or 'unknown'}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                )
                if strict:
                    raise err from exc
                warnings.warn(f"{err}; skipped", RuntimeWarning, stacklevel=2)
                continue
            distributions[ep.name] = PluginInfo(ep.name, dist, version)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from exc
    if _env_flag("SIMCLUST_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _plugin_info(
    pm: pluggy.PluginManager, given: Mapping[str, PluginInfo]
) -> dict[str, PluginInfo]:
    """The distribution and version of each plugin on ``pm``, in registration order.

    ``given`` first; the built-ins are simclust's; an entry-point plugin's come from
    the installed entry point whose loaded object it is.
    """
    info: dict[str, PluginInfo] = {}
    eps: importlib.metadata.EntryPoints | None = None
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        if name in given:
            info[name] = given[name]
        elif name == BUILTIN_PLUGIN:
            info[name] = PluginInfo(name, "simclust", _own_version())
        else:
            if eps is None:
                eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            for ep in eps:
                if ep.name == name and _loaded_object(ep) is plugin:
                    dist, version = _distribution_of(ep)
                    info[name] = PluginInfo(name, dist, version)
                    break
    return info


def _loaded_object(ep: importlib.metadata.EntryPoint) -> object:
    """What ``ep.load()`` returned, if its module is imported (without importing it)."""
    obj: object = sys.modules.get(ep.module)
    for attr in (ep.attr or "").split("."):
        if attr and obj is not None:
            obj = getattr(obj, attr, None)
    return obj


def _own_version() -> str | None:
    from simclust._native import __version__

    return __version__


_REGISTRATION_HOOKS = (
    ("strategy", "simclust_register_strategies"),
    ("metric", "simclust_register_metrics"),
    ("loader", "simclust_register_loaders"),
    ("embedder", "simclust_register_embedders"),
    ("distance", "simclust_register_distances"),
)


@dataclass
class Host:
    """A plugin manager and the registries its plugins filled.

    Example:
        >>> host = get_host(autoload=False)
        >>> sorted(host.metrics.names())
        ['centroid', 'edge', 'inter', 'intra', 'silhouette']

    """

    pm: pluggy.PluginManager
    strategies: Registry[type[StrategyLike]]
    metrics: Registry[type[Metric]]
    loaders: Registry[type[Loader]]
    embedders: Registry[type[Embedder]]
    plugin_info: dict[str, PluginInfo] = field(default_factory=dict)
    """Every loaded plugin's distribution and version, by plugin name, built-ins first."""
    distances: Registry[type[Distance]] = field(default_factory=lambda: Registry("distance"))
    """What the geometry metrics measure (:mod:`simclust.distances`)."""

    def registry(self, kind: str) -> Registry[type[Any]]:
        """The registry for ``kind``: strategy, metric, loader, embedder or distance."""
        registries: dict[str, Registry[type[Any]]] = {
            "strategy": self.strategies,
            "metric": self.metrics,
            "loader": self.loaders,
            "embedder": self.embedders,
            "distance": self.distances,
        }
        return registries[kind]

    def plugins(self) -> list[PluginInfo]:
        """Every loaded plugin with its distribution, built-ins first."""
        return list(self.plugin_info.values())

    def table(self) -> pl.DataFrame:
        """Every registered name: ``kind, name, plugin, distribution, version``."""
        info = self.plugin_info
        rows = []
        for kind, _ in _REGISTRATION_HOOKS:
            for reg in self.registry(kind).registrations():
                version = info[reg.plugin].version if reg.plugin in info else None
                rows.append((kind, reg.name, reg.plugin, reg.distribution, version))
        schema = {
            "kind": pl.String,
            "name": pl.String,
            "plugin": pl.String,
            "distribution": pl.String,
            "version": pl.String,
        }
        return pl.DataFrame(rows, schema=schema, orient="row")

    def run_finished(self, result: Any, config: dict[str, Any]) -> None:
        """Fire ``simclust_run_finished`` plugin by plugin, naming a plugin that fails."""
        for name, dist in self._implementers("simclust_run_finished"):
            self._call_one("simclust_run_finished", name, dist, result=result, config=config)

    def _implementers(self, hook: str) -> list[tuple[str, str | None]]:
        """Plugins implementing ``hook``: the built-ins first, then by name."""
        info = self.plugin_info
        names = {impl.plugin_name for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        order = sorted(names, key=lambda n: (n != BUILTIN_PLUGIN, n))
        return [(n, info[n].distribution if n in info else None) for n in order]

    def _call_one(self, hook: str, name: str, dist: str | None, **kwargs: Any) -> None:
        """Call one plugin's implementation of ``hook`` (through pluggy, so tracing sees it)."""
        others = [
            impl.plugin
            for impl in getattr(self.pm.hook, hook).get_hookimpls()
            if impl.plugin_name != name
        ]
        caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
        try:
            caller(**kwargs)
        except PluginError:
            raise
        except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the run
            where = f"{name!r}" + (f" (distribution {dist})" if dist and dist != name else "")
            raise PluginError(
                f"plugin {where} failed in {hook}: {type(exc).__name__}: {exc}"
            ) from exc

    def _drop_plugin(self, name: str) -> None:
        """Forget everything plugin ``name`` registered and unregister it."""
        for kind, _ in _REGISTRATION_HOOKS:
            self.registry(kind).remove_plugin(name)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.plugin_info.pop(name, None)


def get_host(*, autoload: bool | None = None, strict: bool = True) -> Host:
    """Build the plugin manager and fill the registries (see the module docstring).

    Raises:
        PluginError: a plugin failed to load or to register (it is named), or two
            plugins registered the same name.

    Example:
        >>> host = get_host(autoload=False)
        >>> host.strategies.names()[:2]
        ['connected-components', 'kmeans']

    """
    return build_host(get_plugin_manager(autoload=autoload, strict=strict), strict=strict)


def build_host(
    pm: pluggy.PluginManager,
    *,
    strict: bool = True,
    plugins: Mapping[str, PluginInfo] | None = None,
) -> Host:
    """Fill the registries from the plugins registered on ``pm``.

    :func:`get_host` calls it on a manager from :func:`get_plugin_manager`; tests and
    applications may register plugin objects on such a manager first
    (``pm.register(obj, name="my-plugin")``) and build a host from it.

    The host records each plugin's distribution and version (:meth:`Host.plugins`,
    :meth:`Host.table`, a run's manifest): the built-ins are simclust's, an entry-point
    plugin's are read from its installed metadata, and ``plugins`` gives them for
    plugins registered by hand (``{"my-plugin": PluginInfo("my-plugin", "my-dist",
    "1.0")}``); a hand-registered plugin not in ``plugins`` is not listed.

    Raises:
        PluginError: as :func:`get_host`.

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> class Extra:
        ...     @hookimpl
        ...     def simclust_register_strategies(self, registry):
        ...         from simclust.default_plugins.strategies import ConnectedComponents
        ...         registry.register("single-linkage", ConnectedComponents)
        >>> _ = pm.register(Extra(), name="extra")
        >>> build_host(pm).strategies.get("single-linkage").plugin
        'extra'

    """
    strategies: Registry[type[StrategyLike]] = Registry("strategy")
    metrics: Registry[type[Metric]] = Registry("metric")
    loaders: Registry[type[Loader]] = Registry("loader")
    embedders: Registry[type[Embedder]] = Registry("embedder")
    distances: Registry[type[Distance]] = Registry("distance")
    host = Host(
        pm,
        strategies,
        metrics,
        loaders,
        embedders,
        _plugin_info(pm, plugins or {}),
        distances,
    )
    for kind, hook in _REGISTRATION_HOOKS:
        reg = host.registry(kind)
        for name, dist in host._implementers(hook):
            before = reg.snapshot()
            try:
                host._call_one(hook, name, dist, registry=reg._bound(name, dist))
            except PluginError as exc:
                reg.restore(before)
                if strict:
                    raise
                warnings.warn(f"{exc}; skipped", RuntimeWarning, stacklevel=2)
                host._drop_plugin(name)
    return host
