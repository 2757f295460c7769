"""The hooks a simclust plugin can implement.

A plugin is a module (or object) with functions marked ``@simclust.hookimpl`` whose
names are hooks below, published under the entry-point group ``simclust``::

    [project.entry-points.simclust]
    my-plugin = "my_package.plugin"

Registration hooks receive a registry and call ``registry.register(name, cls)``; names
are kebab-case and unique across plugins (a plugin may pass ``replace=True`` to
replace another's). ``docs/hooks.md`` documents each hook with an example.

Example:
    >>> import simclust
    >>> class MyPlugin:
    ...     @simclust.hookimpl
    ...     def simclust_register_strategies(self, registry):
    ...         pass
    >>> pm = simclust.get_plugin_manager(autoload=False)
    >>> _ = pm.register(MyPlugin(), name="my-plugin")
    >>> pm.is_registered(pm.get_plugin("my-plugin"))
    True

"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from simclust.host import Registry
    from simclust.result import Result

__all__ = [
    "hookspec",
    "simclust_register_distances",
    "simclust_register_embedders",
    "simclust_register_loaders",
    "simclust_register_metrics",
    "simclust_register_strategies",
    "simclust_run_finished",
]

hookspec = pluggy.HookspecMarker("simclust")
"""Marker for hook specifications (used by this module only)."""


@hookspec
def simclust_register_strategies(registry: Registry[type[Any]]) -> None:
    """Register clustering strategies: ``registry.register("name", StrategyClass)``.

    Fires once when the host is built (:func:`simclust.get_host`). Classes follow
    scikit-learn's clusterer contract (:class:`simclust.base.StrategyLike`: named
    ``__init__`` parameters, ``fit(X)``, ``labels_``), e.g. :class:`simclust.base.Strategy`
    subclasses or scikit-learn clusterers as they are.
    """


@hookspec
def simclust_register_metrics(registry: Registry[type[Any]]) -> None:
    """Register metrics: ``registry.register("name", MetricClass)``.

    Fires once when the host is built. Classes follow :class:`simclust.base.Metric`.
    """


@hookspec
def simclust_register_loaders(registry: Registry[type[Any]]) -> None:
    """Register input loaders: ``registry.register("name", LoaderClass)``.

    Fires once when the host is built. Classes follow :class:`simclust.base.Loader`;
    when a config does not name a loader, the first registered one whose
    ``can_load(path)`` is true reads the input.
    """


@hookspec
def simclust_register_embedders(registry: Registry[type[Any]]) -> None:
    """Register image embedders: ``registry.register("name", EmbedderClass)``.

    Fires once when the host is built. Classes follow :class:`simclust.base.Embedder`;
    the image-folder loader uses the one the config names.
    """


@hookspec
def simclust_register_distances(registry: Registry[type[Any]]) -> None:
    """Register distances: ``registry.register("name", DistanceClass)``.

    Fires once when the host is built. Classes subclass
    :class:`simclust.distances.Distance`: they name the native kernel they run on
    (``cosine``, ``dot``, ``euclidean``), whether higher values are closer, and the name
    of each geometry column under them. A run measures its geometry metrics in the
    distance ``[metrics] distance`` names (default ``cosine``).
    """


@hookspec
def simclust_run_finished(result: Result, config: dict[str, Any]) -> None:
    """Observe a finished run: called after every successful :func:`simclust.analyze`.

    ``result`` is the :class:`simclust.Result` (before it is written), ``config`` the
    resolved configuration as a plain dict. An exception raised here fails the run and
    names the plugin.
    """
