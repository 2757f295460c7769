"""Conformance checks for strategy and metric plugins, and a host builder for tests.

A plugin's classes are checked against the contracts of a strategy (a
:class:`simclust.base.Strategy` subclass, or any class with named ``__init__``
parameters, ``fit(X)`` and ``labels_``, such as a scikit-learn clusterer; see
:class:`simclust.base.StrategyLike`) and of a :class:`simclust.base.Metric` by small
named checks run in order (modelled on scikit-learn's ``check_estimator``). A failing
check raises :class:`AssertionError` whose message starts with the check's name and
names the class::

    check_labels failed for strategy 'my-strategy' (MyStrategy): labels_ has shape (59,), ...

Use :func:`check_strategy` / :func:`check_metric` in one test, or
:func:`parametrize_with_checks` to get one pytest test per check. Every check runs on
seeded, unit-normalised float32 data from :func:`simclust.testing.make_embeddings`.

The checks live in :mod:`simclust.testing.strategy_checks` and
:mod:`simclust.testing.metric_checks`; this module gathers them.

Example:
    >>> from simclust.default_plugins.strategies import ConnectedComponents
    >>> check_strategy(ConnectedComponents)
    >>> [name for name, _ in strategy_checks(ConnectedComponents)][:3]
    ['check_interface', 'check_parameters', 'check_init_stores_params']
    >>> from sklearn.cluster import AgglomerativeClustering
    >>> check_strategy(AgglomerativeClustering(n_clusters=3))

"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from simclust.base import Metric, Strategy
from simclust.exceptions import PluginError
from simclust.host import BUILTIN_PLUGIN, Host, PluginInfo, build_host, get_plugin_manager
from simclust.params import parameters
from simclust.testing._check_common import Check, _cls, _same, _stored
from simclust.testing.metric_checks import RowsFactory as RowsFactory
from simclust.testing.metric_checks import check_metric, metric_checks
from simclust.testing.strategy_checks import check_strategy, strategy_checks

if TYPE_CHECKING:
    import pytest

__all__ = [
    "check_metric",
    "check_strategy",
    "make_host",
    "metric_checks",
    "parametrize_with_checks",
    "strategy_checks",
]


# --------------------------------------------------------------------------- pytest


def _obj_id(obj: Any) -> str:
    if isinstance(obj, type):
        return obj.__name__
    try:
        defaults = {p.name: p.default for p in parameters(type(obj))}
        changed = {k: v for k, v in _stored(obj).items() if not _same(defaults.get(k), v)}
    except Exception:
        changed = {}
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def parametrize_with_checks(objs: Sequence[Any]) -> pytest.MarkDecorator:
    """A ``pytest.mark.parametrize`` over every check of every strategy or metric.

    The decorated test takes the arguments ``obj`` and ``check`` and calls
    ``check(obj)``; each check is its own test, with an id such as
    ``ThresholdMedoid(threshold=0.8)-check_labels``. pytest is imported only when this
    is called.

    Args:
        objs: strategy and metric classes or instances, in any mix.

    Raises:
        TypeError: an object is neither a strategy nor a metric.

    Example:
        >>> from simclust.default_plugins.metrics import Intra
        >>> from simclust.default_plugins.strategies import ConnectedComponents
        >>> mark = parametrize_with_checks([ConnectedComponents(threshold=0.8), Intra])
        >>> mark.args[0], len(mark.args[1]) > 10
        ('obj, check', True)
        >>> mark.args[1][0].id
        'ConnectedComponents(threshold=0.8)-check_interface'

    """
    import pytest

    params = []
    for obj in objs:
        cls = _cls(obj)
        gen: Iterator[tuple[str, Check]]
        if issubclass(cls, Metric):
            gen = metric_checks(obj)
        elif issubclass(cls, Strategy) or callable(getattr(cls, "fit", None)):
            gen = strategy_checks(obj)
        else:
            raise TypeError(f"{cls.__qualname__} is neither a simclust Strategy nor a Metric")
        for check_name, check in gen:
            params.append(pytest.param(obj, check, id=f"{_obj_id(obj)}-{check_name}"))
    return pytest.mark.parametrize("obj, check", params)


# --------------------------------------------------------------------------- hosts


def make_host(
    *plugins: object | tuple[str, object], builtins: bool = True, strict: bool = True
) -> Host:
    """Build a :class:`~simclust.host.Host` from given plugin objects (no entry points).

    What :func:`simclust.get_host` does, with ``autoload=False`` and your plugins
    registered in-process: the registration hooks run plugin by plugin, so names,
    clashes and failures behave exactly as for installed plugins.

    Args:
        *plugins: plugin modules or objects (registered under their ``__name__``, or
            their class name for instances), or ``(name, plugin)`` pairs.
        builtins: keep the built-in plugin ``simclust.default_plugins``.
        strict: a plugin whose registration hook fails raises :class:`PluginError`;
            with ``strict=False`` it is dropped with a warning.

    Raises:
        PluginError: a plugin is invalid (e.g. a hook or hook argument that does not
            exist) or blocked, a registration hook failed, or two plugins registered
            one name.

    Example:
        >>> import simclust
        >>> from sklearn.cluster import DBSCAN
        >>> class MyPlugin:
        ...     @simclust.hookimpl
        ...     def simclust_register_strategies(self, registry):
        ...         registry.register("my-dbscan", DBSCAN)
        >>> host = make_host(("my-plugin", MyPlugin()))
        >>> host.strategies.get("my-dbscan").plugin
        'my-plugin'

    """
    pm = get_plugin_manager(autoload=False, strict=strict)
    info: dict[str, PluginInfo] = {}
    if not builtins and pm.get_plugin(BUILTIN_PLUGIN) is not None:
        pm.unregister(name=BUILTIN_PLUGIN)
    for item in plugins:
        if isinstance(item, tuple):
            plugin_name, plugin = item
        else:
            plugin = item
            plugin_name = getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            registered = pm.register(plugin, name=plugin_name)
        except Exception as exc:  # pluggy: a hook argument the spec lacks, a duplicate
            raise PluginError(
                f"plugin {plugin_name!r} failed to register: {type(exc).__name__}: {exc}"
            ) from exc
        if registered is None:
            raise PluginError(f"plugin {plugin_name!r} is blocked (SIMCLUST_BLOCK_PLUGINS)")
        info[plugin_name] = PluginInfo(plugin_name, None, None)
    try:
        pm.check_pending()
    except Exception as exc:
        raise PluginError(f"plugin {getattr(exc, 'plugin', '?')!r}: {exc}") from exc
    return build_host(pm, strict=strict, plugins=info)
