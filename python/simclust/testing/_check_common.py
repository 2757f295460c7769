"""What the conformance checks share: their data, helpers and the checks every kind runs.

:mod:`simclust.testing.strategy_checks` and :mod:`simclust.testing.metric_checks` build
their checks from these; :mod:`simclust.testing.checks` is the public module.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from simclust.exceptions import ParameterError
from simclust.params import Param, check_value, parameters
from simclust.testing.datasets import make_embeddings

Check = Callable[[Any], None]
"""A check: ``check(cls_or_instance)``; raises :class:`AssertionError` when it fails."""

_N, _D, _K, _SEED = 60, 8, 3, 0
"""The checks' data: ``make_embeddings(60, 8, n_clusters=3, seed=0)``."""

_DATA = f"make_embeddings({_N}, {_D}, n_clusters={_K}, seed={_SEED})"


class _CheckError(Exception):
    """A check's own finding (turned into an AssertionError naming check and class)."""


# --------------------------------------------------------------------------- data


def _data() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Fresh (writable) copies of the checks' embeddings and ground-truth labels."""
    X, y = make_embeddings(_N, _D, n_clusters=_K, seed=_SEED, return_labels=True)  # noqa: N806
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)


def _noisy_labels(y: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``y`` with rows 0 and 1 as noise (-1) and row 2 a singleton cluster of its own."""
    out = y.copy()
    out[[0, 1]] = -1
    out[2] = int(y.max()) + 1
    return out


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


# --------------------------------------------------------------------------- helpers


def _cls(obj: Any) -> Any:
    return obj if isinstance(obj, type) else type(obj)


def _subject(kind: str, obj: Any, name: str | None) -> str:
    cls_name = _cls(obj).__name__
    return f"{kind} {name!r} ({cls_name})" if name else f"{kind} {cls_name}"


def _instance(obj: Any) -> Any:
    """A fresh, unfitted instance: default-constructed, or a clone of ``obj``'s params."""
    cls = _cls(obj)
    if isinstance(obj, type):
        try:
            return cls()
        except Exception as exc:
            raise _CheckError(
                f"cannot construct {cls.__qualname__}() with its defaults "
                f"({type(exc).__name__}: {exc}); pass an instance to check instead"
            ) from exc
    return cls(**_stored(obj))


def _stored(inst: Any) -> dict[str, Any]:
    """The parameters as ``inst`` stores them: ``get_params()``, else its attributes.

    ``get_params`` is optional (a duck-typed strategy stores its parameters under their
    own names, as scikit-learn estimators do).
    """
    if callable(getattr(inst, "get_params", None)):
        return dict(inst.get_params(deep=False))
    return {p.name: getattr(inst, p.name) for p in _params(inst)}


def _params(obj: Any) -> tuple[Param, ...]:
    try:
        return parameters(_cls(obj))
    except TypeError as exc:
        raise _CheckError(str(exc)) from exc


def _other_value(annotation: Any, default: Any) -> tuple[bool, Any]:
    """A value of type ``annotation`` different from ``default`` (``(False, None)``: none)."""
    empty = default is inspect.Parameter.empty
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        for a in args:
            if empty or a != default:
                return True, a
        return False, None
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if a is type(None):
                continue
            ok, value = _other_value(a, default if _fits(default, a) else inspect.Parameter.empty)
            if ok:
                return True, value
        if type(None) in args and not empty and default is not None:
            return True, None
        return False, None
    if annotation is bool:
        return True, (not default) if isinstance(default, bool) else True
    if annotation is int:
        ok = isinstance(default, int) and not isinstance(default, bool)
        return True, default + 1 if ok else 1
    if annotation is float:
        if isinstance(default, int | float) and not isinstance(default, bool) and default:
            return True, float(default) / 2
        return True, 0.5
    if annotation is str:
        return True, f"{default}-other" if isinstance(default, str) else "other"
    return False, None


def _fits(value: Any, annotation: Any) -> bool:
    if annotation in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(annotation, type) and isinstance(value, annotation)


def _same(a: Any, b: Any) -> bool:
    """Stored verbatim: the same object, or an equal value of the same type."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _wrap(check_name: str, kind: str, name: str | None, fn: Check) -> Check:
    def check(obj: Any) -> None:
        try:
            fn(obj)
        except _CheckError as exc:
            raise AssertionError(
                f"{check_name} failed for {_subject(kind, obj, name)}: {exc}"
            ) from None
        except Exception as exc:
            raise AssertionError(
                f"{check_name} failed for {_subject(kind, obj, name)}: {type(exc).__name__}: {exc}"
            ) from exc

    check.__name__ = check.__qualname__ = check_name
    return check


# --------------------------------------------------------------------------- shared checks


def _check_base_class(base: type) -> Check:
    def run(obj: Any) -> None:
        cls = _cls(obj)
        if not issubclass(cls, base):
            raise _CheckError(f"{cls.__qualname__} does not subclass simclust.base.{base.__name__}")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise _CheckError(f"{cls.__qualname__} does not implement {missing}")

    return run


def _check_parameters(obj: Any) -> None:
    """Keyword-only annotated parameters whose defaults fit their annotations."""
    for p in _params(obj):
        if not p.required:
            try:
                check_value(_cls(obj).__qualname__, p, p.default)
            except ParameterError as exc:
                raise _CheckError(f"the default of {p.name!r} does not fit: {exc}") from exc


def _check_init_stores_params(obj: Any) -> None:
    """``__init__`` stores every parameter verbatim under its own name."""
    cls = _cls(obj)
    params = _params(obj)
    if isinstance(obj, type):
        base = _stored(_instance(obj))
        want = {p.name: p.default for p in params}
        for key, value in want.items():
            if not _same(base.get(key, inspect.Parameter.empty), value):
                raise _CheckError(
                    f"{cls.__qualname__}() stores {key}={base.get(key)!r}, "
                    f"but the default is {value!r}; __init__ must store parameters unchanged"
                )
    else:
        base = _stored(obj)
    for p in params:
        ok, value = _other_value(p.annotation, base.get(p.name, p.default))
        if not ok:
            continue
        kwargs = {**base, p.name: value}
        try:
            got = _stored(cls(**kwargs))[p.name]
        except (AttributeError, KeyError) as exc:
            raise _CheckError(
                f"__init__ does not store parameter {p.name!r} as self.{p.name} ({exc})"
            ) from exc
        if not _same(got, value):
            raise _CheckError(
                f"{cls.__qualname__}({p.name}={value!r}).get_params()[{p.name!r}] is {got!r}; "
                "__init__ must store parameters unchanged (validate them in fit)"
            )
    public_learned = [k for k in vars(_instance(obj)) if k.endswith("_") and not k.startswith("_")]
    if public_learned:
        raise _CheckError(f"__init__ sets learned attribute(s) {public_learned}; set them in fit")


def _check_set_params(obj: Any) -> None:
    """``set_params`` (when there is one) round-trips, returns self, rejects unknown names.

    An unknown name must raise ``ValueError`` (simclust's ``ParameterError`` is one, and
    so is scikit-learn's error).
    """
    inst = _instance(obj)
    if not callable(getattr(inst, "set_params", None)):
        return  # optional for a duck-typed strategy
    params = _stored(inst)
    if inst.set_params(**params) is not inst:
        raise _CheckError("set_params(...) must return self")
    if _stored(inst) != params:
        raise _CheckError("set_params(**get_params()) changed get_params()")
    for p in _params(obj):
        ok, value = _other_value(p.annotation, params.get(p.name, p.default))
        if ok:
            got = _stored(inst.set_params(**{p.name: value}))[p.name]
            if not _same(got, value):
                raise _CheckError(f"set_params({p.name}={value!r}) left {p.name}={got!r}")
    try:
        inst.set_params(no_such_parameter_xyz=1)
    except ValueError:
        pass
    except Exception as exc:
        raise _CheckError(
            f"set_params(no_such_parameter_xyz=1) raised {type(exc).__name__}, "
            "expected a ValueError such as simclust.ParameterError"
        ) from exc
    else:
        raise _CheckError("set_params(no_such_parameter_xyz=1) did not raise ParameterError")
