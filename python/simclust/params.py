"""Plugin parameters: what the constructor of a strategy, metric, loader or embedder declares.

A plugin class's parameters are read from its constructor's signature (:func:`parameters`):
its named arguments, their type annotations (or, unannotated, a scikit-learn estimator's
``_parameter_constraints`` or the type of the default) and defaults. Configuration values
are checked against them with :func:`check_value`, and a class is checked when it is
registered with :func:`check_plugin_class`. The base classes of :mod:`simclust.base` get
``get_params``/``set_params``/``repr`` from ``_Parametrized``.

This module imports no other simclust module but :mod:`simclust.exceptions`.
:mod:`simclust.base` re-exports :class:`Param`, :func:`parameters`, :func:`check_value`
and :func:`check_plugin_class`; plugin authors import them from there.

Example:
    >>> class Demo:
    ...     def __init__(self, *, k: int = 10) -> None:
    ...         self.k = k
    >>> [(p.name, p.type_name, p.default) for p in parameters(Demo)]
    [('k', 'int', 10)]

"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np

from simclust.exceptions import ParameterError

__all__ = ["Param", "check_plugin_class", "check_value", "parameters"]


@dataclass(frozen=True)
class Param:
    """One declared parameter of a strategy, metric or embedder.

    Attributes:
        name: the keyword argument's name (also the config key).
        annotation: its resolved type annotation (``float``, ``int | None``,
            ``Literal["knn", "threshold"]``, ``tuple[float, ...]``).
        default: its default value (``inspect.Parameter.empty`` when required).
        constraints: for an unannotated parameter of a scikit-learn estimator, its
            entry of the class's ``_parameter_constraints`` (what values are checked
            against instead of ``annotation``); else ``None``.

    Example:
        >>> Param("k", int, 10).type_name
        'int'

    """

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty
    constraints: tuple[Any, ...] | None = None

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is inspect.Parameter.empty

    @property
    def type_name(self) -> str:
        """The annotation (or constraints) written the way a user reads it."""
        if self.constraints is not None:
            return _constraints_text(self.constraints)
        return _type_name(self.annotation)


def parameters(cls: type) -> tuple[Param, ...]:
    """Return the declared constructor parameters of a plugin class.

    Every named parameter of ``__init__`` after ``self`` is one: keyword-only or
    positional-or-keyword (simclust always passes them by keyword). What values it
    takes is, in this order: its type annotation; for an unannotated parameter of a
    scikit-learn estimator, its entry in the class's ``_parameter_constraints``; else
    the type of its default (``bool``, ``int``, ``float`` or ``str``; a default of
    ``None`` or of another type accepts any value).

    Raises:
        TypeError: the constructor has ``*args``/``**kwargs`` or positional-only
            parameters, or a parameter with neither a type annotation nor a default (a
            plugin-authoring error).

    Example:
        >>> class Demo:
        ...     def __init__(self, *, threshold: float = 0.9, k: int | None = None) -> None:
        ...         self.threshold, self.k = threshold, k
        ...     def fit(self, X, *, graph=None):
        ...         return self
        >>> [(p.name, p.type_name, p.default) for p in parameters(Demo)]
        [('threshold', 'float', 0.9), ('k', 'int | None', None)]
        >>> class SklearnStyle:
        ...     def __init__(self, n_clusters=2, *, linkage="ward", memory=None):
        ...         self.n_clusters, self.linkage, self.memory = n_clusters, linkage, memory
        ...     def fit(self, X, y=None):
        ...         return self
        >>> [(p.name, p.type_name) for p in parameters(SklearnStyle)]
        [('n_clusters', 'int'), ('linkage', 'str'), ('memory', 'any value')]

    """
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return ()
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError) as exc:  # a builtin or extension type's __init__
        raise TypeError(f"{cls.__qualname__}.__init__ has no readable signature: {exc}") from exc
    try:
        hints = typing.get_type_hints(init)
    except Exception as exc:  # a forward reference the module cannot resolve
        raise TypeError(f"{cls.__qualname__}.__init__ has unresolvable annotations: {exc}") from exc
    declared = getattr(cls, "_parameter_constraints", None)
    out: list[Param] = []
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if p.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise TypeError(
                f"{cls.__qualname__}.__init__ takes {star}{name}: parameters must be named "
                "(no *args or **kwargs), they are the config keys"
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"{cls.__qualname__}.__init__ parameter {name!r} is positional-only; "
                "simclust passes parameters by keyword"
            )
        if name in hints:
            out.append(Param(name, hints[name], p.default))
        elif p.default is inspect.Parameter.empty:
            raise TypeError(
                f"{cls.__qualname__}.__init__ parameter {name!r} needs a type annotation "
                "or a default"
            )
        else:
            constraints = _sklearn_constraints(declared, name)
            out.append(Param(name, _type_of_default(p.default), p.default, constraints))
    return tuple(out)


def _type_of_default(default: Any) -> Any:
    """The type an unannotated parameter's values are checked against."""
    for kind in (bool, int, float, str):
        if type(default) is kind:
            return kind
    return Any  # None (scikit-learn's "not set"), a tuple, an object: any value


def _sklearn_constraints(declared: Any, name: str) -> tuple[Any, ...] | None:
    """``name``'s entry of a scikit-learn ``_parameter_constraints``, if sklearn reads it."""
    if not isinstance(declared, Mapping) or not isinstance(declared.get(name), list):
        return None
    constraints = tuple(declared[name])
    try:
        _constraints_text(constraints)  # scikit-learn understands them
    except Exception:
        return None
    return constraints


def _constraints_text(constraints: tuple[Any, ...]) -> str:
    """scikit-learn's own description of what satisfies ``constraints``."""
    from sklearn.utils._param_validation import make_constraint

    shown = [str(c) for c in map(make_constraint, constraints) if not c.hidden]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


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
    if isinstance(origin, type):  # e.g. npt.NDArray[...]: an instance of the origin
        return isinstance(value, origin), value
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
    if param.constraints is not None:
        ok, converted = _satisfies(value, param), value
    else:
        ok, converted = _matches(value, param.annotation)
    if not ok:
        raise ParameterError(
            f"{owner} parameter {param.name!r} expects {param.type_name}, "
            f"got {type(value).__name__} {value!r}"
        )
    return converted


def _satisfies(value: Any, param: Param) -> bool:
    """Whether ``value`` satisfies ``param``'s scikit-learn constraints."""
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    assert param.constraints is not None
    try:
        validate_parameter_constraints(
            {param.name: list(param.constraints)}, {param.name: value}, caller_name="simclust"
        )
    except InvalidParameterError:
        return False
    return True


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


_REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "strategy": ("fit",),
    "metric": ("compute",),
    "loader": ("can_load", "load"),
    "embedder": ("embed",),
}


def check_plugin_class(kind: str, obj: object) -> None:
    """Check, when ``obj`` is registered as a ``kind``, that it has what the kind needs.

    Every kind needs a class whose parameters :func:`parameters` can read (named
    ``__init__`` parameters with an annotation or a default; no ``*args``/``**kwargs``)
    and does not leave abstract methods. A strategy needs ``fit`` (subclassing
    :class:`simclust.base.Strategy` is optional, see
    :class:`simclust.base.StrategyLike`); one with a
    ``graph_spec`` method needs a ``fit`` that takes ``graph=``. A metric needs
    ``compute``, a loader ``can_load`` and ``load``, an embedder ``embed``, a distance
    its declaration (:meth:`simclust.distances.Distance.check_declaration`).

    Raises:
        TypeError: naming the missing or wrong piece.

    Example:
        >>> from sklearn.cluster import DBSCAN
        >>> check_plugin_class("strategy", DBSCAN)
        >>> class NoFit:
        ...     def __init__(self, *, k: int = 3) -> None:
        ...         self.k = k
        >>> check_plugin_class("strategy", NoFit)
        Traceback (most recent call last):
        ...
        TypeError: NoFit has no fit method; a strategy needs __init__ parameters, fit(X) and labels_

    """
    if not isinstance(obj, type):
        raise TypeError(f"{obj!r} is not a class; register the class itself")
    name = obj.__qualname__
    parameters(obj)
    if kind == "distance":
        check = getattr(obj, "check_declaration", None)
        if not callable(check):
            raise TypeError(
                f"{name} is not a distance; a distance subclasses simclust.distances.Distance"
            )
        check()  # raises TypeError naming the wrong attribute
    for method in _REQUIRED_METHODS.get(kind, ()):
        if not callable(getattr(obj, method, None)):
            need = {
                "strategy": "a strategy needs __init__ parameters, fit(X) and labels_",
                "metric": "a metric subclasses simclust.base.Metric and implements compute(ctx)",
                "loader": "a loader implements can_load(path) and load(path)",
                "embedder": "an embedder implements embed(paths)",
            }[kind]
            raise TypeError(f"{name} has no {method} method; {need}")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise TypeError(f"{name} does not implement the abstract method(s) {missing}")
    if kind == "strategy" and hasattr(obj, "graph_spec"):
        if not callable(getattr(obj, "graph_spec", None)):
            raise TypeError(f"{name}.graph_spec is not a method")
        try:
            fit_params = inspect.signature(getattr(obj, "fit")).parameters.values()  # noqa: B009
        except (TypeError, ValueError):
            return  # a fit simclust cannot introspect: it will be called as documented
        takes_graph = any(
            (p.name == "graph" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
            or p.kind is inspect.Parameter.VAR_KEYWORD
            for p in fit_params
        )
        if not takes_graph:
            raise TypeError(
                f"{name} has graph_spec() but its fit does not take graph=; write "
                "fit(self, X, *, graph=None) (or drop graph_spec to get no graph)"
            )
