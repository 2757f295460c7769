"""Shared pytest configuration for the simclust test suite.

The reference implementations and data generators live in ``_reference.py``
next to this file; make it importable whatever pytest's import mode is.
"""

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def rng():
    """A fresh seeded generator per test."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="class")
def runtime():
    """A local Ray runtime (2 CPUs, 512 MB store) for one test class, started on 127.0.0.1
    by the executor and shut down after it (the Ray tests' shared runtime)."""
    import ray
    from simclust.distributed import RayExecutor

    ex = RayExecutor(num_cpus=2, object_store_memory=512 * 1024 * 1024)
    yield ex
    ex.close()
    assert not ray.is_initialized()


# Throwaway plugin distributions the host tests install into a temporary venv; they
# are data, not test modules (one raises at import on purpose).
collect_ignore = ["plugin_fixtures"]
