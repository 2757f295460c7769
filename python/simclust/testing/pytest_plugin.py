"""An opt-in pytest plugin with fixtures for testing simclust plugins.

Enable it in your plugin's ``tests/conftest.py`` (or in a test module)::

    pytest_plugins = ["simclust.testing.pytest_plugin"]

Fixtures:

* ``simclust_clean_env``: removes every ``SIMCLUST_*`` environment variable for the
  test (``SIMCLUST_BLOCK_PLUGINS``, ``SIMCLUST_DISABLE_PLUGIN_AUTOLOAD``,
  ``SIMCLUST_TRACE_PLUGINS``, ``SIMCLUST_NUM_THREADS``...), so the developer's shell
  does not change what a test sees.
* ``simclust_host``: a :class:`~simclust.host.Host` with only the built-in plugins
  (no entry points are loaded, so other installed plugins cannot interfere).
* ``simclust_host_factory``: ``factory(*plugins, builtins=True, strict=True)`` builds
  a host with your plugin modules or objects registered in-process (see
  :func:`simclust.testing.make_host`).
* ``embeddings``: seeded unit-norm float32 embeddings,
  ``make_embeddings(200, 16, n_clusters=4, seed=0)``.

Example:
    A plugin's test using the fixtures::

        import simclust_medoid.plugin

        def test_registered(simclust_host_factory, embeddings):
            host = simclust_host_factory(simclust_medoid.plugin)
            res = simclust.analyze(embeddings, strategy="threshold-medoid", host=host)
            assert res.assignments.height == len(embeddings)

"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest

from simclust.host import Host
from simclust.testing.checks import make_host
from simclust.testing.datasets import make_embeddings

__all__ = ["embeddings", "simclust_clean_env", "simclust_host", "simclust_host_factory"]

HostFactory = Callable[..., Host]
"""``factory(*plugins, builtins=True, strict=True) -> Host``."""


@pytest.fixture
def simclust_clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove every ``SIMCLUST_*`` environment variable for the duration of the test."""
    for key in list(os.environ):
        if key.startswith("SIMCLUST_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def simclust_host(simclust_clean_env: None) -> Host:
    """A host with the built-in plugins only (entry points are not loaded)."""
    return make_host()


@pytest.fixture
def simclust_host_factory(simclust_clean_env: None) -> HostFactory:
    """Build hosts with the given plugins registered in-process (no entry points).

    Call it as ``simclust_host_factory(plugin_module_or_object, ("name", other))``;
    keyword arguments ``builtins`` and ``strict`` are :func:`make_host`'s.
    """

    def factory(
        *plugins: object | tuple[str, object], builtins: bool = True, strict: bool = True
    ) -> Host:
        return make_host(*plugins, builtins=builtins, strict=strict)

    return factory


@pytest.fixture
def embeddings() -> npt.NDArray[np.float32]:
    """Seeded unit-norm float32 embeddings: ``make_embeddings(200, 16, n_clusters=4, seed=0)``."""
    return make_embeddings(200, 16, n_clusters=4, seed=0)
