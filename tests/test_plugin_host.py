# ruff: noqa: N803, N806  (X: the embedding matrix)
"""The plugin host with real installed distributions, and the registries in-process.

A session fixture creates a throwaway virtual environment, makes it see this
environment's packages (and the editable simclust), and pip-installs the plugin
distributions under ``tests/plugin_fixtures/`` plus the tutorial plugin of
``docs/plugins.md``. Each test then runs Python in that environment, so plugins are
found through their ``simclust`` entry points exactly as for a user, and
``SIMCLUST_BLOCK_PLUGINS`` keeps the deliberately broken ones out of the tests that
are not about them.

The fixtures (all installed together):

========================  ==============  ==========================================
distribution              entry point     behaviour
========================  ==============  ==========================================
simclust-signsplit 0.3.1  ``signsplit``   strategy ``sign-split``, metric
                                          ``axis-mean``, ``simclust_run_finished``
simclust-importfail       ``importfail``  raises at import
simclust-regfail          ``regfail``     registers ``regfail-strategy``, then raises
                                          in ``simclust_register_metrics``
simclust-fitfail          ``fitfail``     strategy ``fit-fail`` raises in ``fit``
simclust-clash            ``clash``       registers ``clash-extra``, then ``kmeans``
simclust-dupname          ``signsplit``   a second distribution using the entry-point
                                          name ``signsplit``
simclust-medoid 0.1.0     ``medoid``      the docs/plugins.md tutorial plugin
========================  ==============  ==========================================
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import simclust
from simclust import ConfigError, PluginError, UnknownNameError
from simclust.base import Embedder as EmbedderBase
from simclust.base import EmbedderOutput, LoadedData, Loader, Strategy
from simclust.host import PluginInfo, Registry, build_host, get_plugin_manager
from simclust.testing import make_host

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "plugin_fixtures"
TUTORIAL = TESTS.parent / "docs" / "plugins.md"

BROKEN = ("importfail", "regfail", "fitfail", "clash")
"""Entry-point names of the broken fixtures: blocked unless a test allows one."""
DUPLICATE = "simclust-dupname"
"""Blocked by distribution name (its entry-point name is the good plugin's)."""


# --------------------------------------------------------------------------- the venv


def _extract_tutorial(dest: Path) -> Path:
    """Write the files of docs/plugins.md (code blocks with ``title="path"``) to ``dest``."""
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = re.findall(r'^```\w+ title="([^"]+)"\n(.*?)^```$', text, re.M | re.S)
    assert blocks, "docs/plugins.md has no titled code blocks"
    for rel, body in blocks:
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return dest


def _pip_runner(python: Path) -> list[str]:
    """How to run pip for ``python``: this interpreter's pip (``--python``) if it has a
    recent one, so the venv can be created without ensurepip (much faster)."""
    try:
        import pip

        if tuple(int(p) for p in pip.__version__.split(".")[:2]) >= (22, 3):
            return [sys.executable, "-m", "pip", "--python", str(python)]
    except ImportError:
        pass
    return [str(python), "-m", "pip"]


def _create_venv(venv: Path) -> tuple[Path, list[str]]:
    fast = _pip_runner(venv / "bin" / "python")[0] == sys.executable
    args = [sys.executable, "-m", "venv", *(["--without-pip"] if fast else []), str(venv)]
    subprocess.run(args, check=True, capture_output=True)
    python = venv / "bin" / "python"
    return python, _pip_runner(python)


def _ensure_wheel_building(python: Path, pip: list[str]) -> None:
    """setuptools < 70.1 builds wheels only with the ``wheel`` package: install a newer
    one into the venv (from the package index, or pip's cache)."""
    probe = (
        "import importlib.util\n"
        "try:\n"
        "    import setuptools\n"
        "except ImportError:\n"
        "    print(False)\n"
        "else:\n"
        "    v = tuple(int(p) for p in setuptools.__version__.split('.')[:2])\n"
        "    print(v >= (70, 1) or importlib.util.find_spec('wheel') is not None)\n"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    if out.stdout.strip() == "True":
        return
    up = subprocess.run([*pip, "install", "-q", "setuptools>=70.1"], capture_output=True, text=True)
    if up.returncode != 0:
        pytest.skip(
            "cannot build the plugin fixtures: the venv needs setuptools>=70.1 (or the "
            f"'wheel' package) and installing it failed:\n{up.stderr[-2000:]}"
        )


@dataclass
class PluginVenv:
    """The throwaway environment with the fixture plugins installed."""

    python: Path
    others: tuple[str, ...]
    """Entry-point names of plugins installed in the main environment (always blocked)."""
    tutorial: Path
    """The extracted docs/plugins.md project."""

    def env(
        self, *, allow: tuple[str, ...] = (), block: tuple[str, ...] = (), **extra: str
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMCLUST_", "PYTHON"))}
        blocked = [*self.others, *(b for b in (*BROKEN, DUPLICATE) if b not in allow), *block]
        env["SIMCLUST_BLOCK_PLUGINS"] = ",".join(blocked)
        env.update(extra)
        return env

    def run(
        self,
        code: str,
        *,
        allow: tuple[str, ...] = (),
        block: tuple[str, ...] = (),
        cwd: Path | None = None,
        expect_ok: bool = True,
        **extra: str,
    ) -> Run:
        prelude = (
            "import json, sys, warnings\n"
            "import numpy as np\n"
            "import simclust\n"
            "from simclust import PluginError, ConfigError\n"
            "def emit(**kw):\n"
            "    print('@@' + json.dumps(kw, default=str), flush=True)\n"
        )
        proc = subprocess.run(
            [str(self.python), "-c", prelude + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=self.env(allow=allow, block=block, **extra),
            timeout=180,
        )
        if expect_ok and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        data: dict[str, object] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("@@"):
                data.update(json.loads(line[2:]))
        return Run(proc.returncode, proc.stdout, proc.stderr, data)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    data: dict[str, object]


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory) -> PluginVenv:
    root = tmp_path_factory.mktemp("plugin-venv")
    python, pip = _create_venv(root / "venv")
    # Before the venv sees the main environment: pip must not upgrade anything there.
    _ensure_wheel_building(python, pip)
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The main environment's packages, and simclust itself: it is installed editable
    # (a simclust.pth pointing at python/), and .pth files of a directory only named in
    # another .pth are not processed, so add the folder holding the package directly.
    simclust_dir = Path(simclust.__file__).resolve().parent
    main_purelib = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "_simclust_main_env.pth").write_text(
        f"{main_purelib}\n{simclust_dir.parent}\n", encoding="utf-8"
    )
    seen = subprocess.run(
        [python, "-c", "import simclust; print(simclust.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    ).stdout.strip()
    assert Path(seen).resolve() == simclust_dir / "__init__.py", seen

    # pip builds local projects in place (build/, *.egg-info): install copies.
    sources = root / "src"
    dirs = []
    for fixture in sorted(p for p in FIXTURES.iterdir() if (p / "pyproject.toml").exists()):
        dirs.append(shutil.copytree(fixture, sources / fixture.name))
    tutorial = _extract_tutorial(sources / "simclust-medoid")
    dirs.append(tutorial)
    installed = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + [str(d) for d in dirs],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    others = tuple(sorted({ep.name for ep in importlib.metadata.entry_points(group="simclust")}))
    return PluginVenv(python, others, tutorial)


def _write_embeddings(path: Path, n: int = 40, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    np.save(path, X)
    return X


def _config(
    tmp_path: Path, strategy: str, *extra: str, metrics=("intra",), metric_lines=()
) -> Path:
    lines = [
        "[input]",
        'path = "x.npy"',
        "[cluster]",
        f'strategy = "{strategy}"',
        *extra,
        "[metrics]",
        f"use = {json.dumps(list(metrics))}",
        *metric_lines,
        "[output]",
        'dir = "out"',
        "report = false",
    ]
    cfg = tmp_path / "run.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


# --------------------------------------------------------------------------- found and listed


def test_temp_venv_sees_this_simclust_and_the_fixture_distributions(plugin_venv):
    r = plugin_venv.run(
        """
        import importlib.metadata as md
        eps = md.entry_points(group="simclust")
        eps = sorted((ep.name, ep.dist.metadata["Name"]) for ep in eps)
        emit(file=simclust.__file__, eps=eps)
        """
    )
    assert Path(r.data["file"]).resolve() == Path(simclust.__file__).resolve()
    eps = {tuple(e) for e in r.data["eps"]}
    assert {
        ("signsplit", "simclust-signsplit"),
        ("signsplit", "simclust-dupname"),
        ("importfail", "simclust-importfail"),
        ("regfail", "simclust-regfail"),
        ("fitfail", "simclust-fitfail"),
        ("clash", "simclust-clash"),
        ("medoid", "simclust-medoid"),
    } <= eps


def test_good_plugin_is_listed_with_distribution_and_version(plugin_venv):
    r = plugin_venv.run(
        """
        host = simclust.get_host()
        emit(table=host.table().rows(), plugins=[list(p.__dict__.values()) for p in host.plugins()])
        """
    )
    rows = {tuple(row) for row in r.data["table"]}
    assert ("strategy", "sign-split", "signsplit", "simclust-signsplit", "0.3.1") in rows
    assert ("metric", "axis-mean", "signsplit", "simclust-signsplit", "0.3.1") in rows
    assert (
        "strategy",
        "kmeans",
        "simclust.default_plugins",
        "simclust",
        simclust.__version__,
    ) in rows
    assert ["signsplit", "simclust-signsplit", "0.3.1"] in r.data["plugins"]
    assert r.data["plugins"][0][0] == "simclust.default_plugins"  # built-ins first
    assert not any(row[2] in BROKEN for row in rows)
    assert "simclust_register_strategies" not in r.stderr  # not traced by default


def test_good_plugin_selected_from_toml_and_run_finished_fires(plugin_venv, tmp_path):
    X = _write_embeddings(tmp_path / "x.npy")
    _config(
        tmp_path,
        "sign-split",
        "axis = 1",
        metrics=("intra", "axis-mean"),
        metric_lines=("[metrics.axis-mean]", "axis = 1"),
    )
    marker = tmp_path / "marker.json"
    r = plugin_venv.run(
        """
        result, out = simclust.run("run.toml")
        emit(out=str(out))
        """,
        cwd=tmp_path,
        SIGNSPLIT_MARKER=str(marker),
    )
    out = tmp_path / "out"
    assert Path(r.data["out"]) == out
    assignments = pl.read_parquet(out / "assignments.parquet")
    assert assignments["cluster"].to_list() == (X[:, 1] > 0).astype(int).tolist()
    clusters = pl.read_parquet(out / "clusters.parquet")
    assert clusters["cluster"].to_list() == [0, 1]
    assert clusters["axis_mean"][0] < 0 < clusters["axis_mean"][1]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["cluster"] == {"strategy": "sign-split", "params": {"axis": 1}}
    assert manifest["config"]["metrics"]["params"]["axis-mean"] == {"axis": 1}
    assert manifest["versions"]["plugins"]["signsplit"] == "0.3.1"
    # simclust_run_finished fired, with the result and the resolved config
    summary = json.loads(marker.read_text())
    assert summary["strategy"] == "sign-split" and summary["params"] == {"axis": 1}
    assert summary["n_rows"] == 40 and summary["n_clusters"] == 2
    assert "axis_mean" in summary["columns"]
    assert "signsplit run_finished:" in r.stdout


def test_plugin_parameters_are_validated_from_toml(plugin_venv, tmp_path):
    _write_embeddings(tmp_path / "x.npy")
    _config(tmp_path, "sign-split", 'axis = "first"')
    r = plugin_venv.run(
        """
        try:
            simclust.run("run.toml")
        except ConfigError as exc:
            emit(error=str(exc))
        """,
        cwd=tmp_path,
    )
    assert r.data["error"] == (
        "cluster.axis: strategy 'sign-split' parameter 'axis' expects int, got str 'first'"
    )
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- env vars

LIST_NAMES = """
host = simclust.get_host()
emit(plugins=[p.name for p in host.plugins()], strategies=host.strategies.names(),
     metrics=host.metrics.names())
try:
    simclust.analyze(np.eye(3, dtype=np.float32), strategy="sign-split")
except ConfigError as exc:
    emit(error=str(exc))
"""


@pytest.mark.parametrize("name", ["signsplit", "simclust-signsplit"])
def test_block_plugins_by_entry_point_or_distribution_name(plugin_venv, name):
    r = plugin_venv.run(LIST_NAMES, block=(name,))
    assert "signsplit" not in r.data["plugins"]
    assert "sign-split" not in r.data["strategies"]
    assert "axis-mean" not in r.data["metrics"]
    assert "threshold-medoid" in r.data["strategies"]  # the others still load
    assert r.data["error"].startswith("cluster.strategy: unknown strategy 'sign-split'")
    assert "threshold-medoid (plugin 'medoid' from simclust-medoid)" in r.data["error"]


def test_block_builtins(plugin_venv):
    r = plugin_venv.run(LIST_NAMES, block=("simclust.default_plugins",))
    assert "simclust.default_plugins" not in r.data["plugins"]
    assert "kmeans" not in r.data["strategies"] and "sign-split" in r.data["strategies"]


def test_block_by_normalised_distribution_name(plugin_venv):
    r = plugin_venv.run(LIST_NAMES, block=("Simclust_SignSplit",))
    assert "signsplit" not in r.data["plugins"]


def test_disable_autoload_loads_no_entry_point(plugin_venv):
    # The broken plugins are allowed: with autoload off none of them is even imported.
    code = LIST_NAMES + textwrap.dedent(
        """
        try:
            simclust.get_host(autoload=True)  # an explicit argument wins over the variable
        except PluginError as exc:
            emit(explicit=str(exc))
        """
    )
    r = plugin_venv.run(code, allow=BROKEN, SIMCLUST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert r.data["plugins"] == ["simclust.default_plugins"]
    assert "sign-split" not in r.data["strategies"]
    assert "unknown strategy 'sign-split'" in r.data["error"]
    assert "failed to load" in r.data["explicit"]  # autoload=True did load entry points


def test_trace_plugins_prints_hook_calls_to_stderr(plugin_venv):
    r = plugin_venv.run(
        """
        host = simclust.get_host()
        simclust.analyze(np.eye(4, dtype=np.float32), strategy="sign-split", host=host)
        """,
        SIMCLUST_TRACE_PLUGINS="1",
    )
    for hook in (
        "simclust_register_strategies",
        "simclust_register_metrics",
        "simclust_register_loaders",
        "simclust_register_embedders",
        "simclust_run_finished",
    ):
        assert hook in r.stderr, r.stderr[-3000:]
    # (without the variable nothing is traced: see test_good_plugin_is_listed_...)


# --------------------------------------------------------------------------- failures

FAILURES = """
def state(host):
    return dict(plugins=[p.name for p in host.plugins()], strategies=host.strategies.names(),
                metrics=host.metrics.names(), in_pm=host.pm.get_plugin("{name}") is not None)

try:
    simclust.get_host()
except PluginError as exc:
    emit(error=str(exc))
try:
    simclust.analyze(np.eye(3, dtype=np.float32))
except PluginError as exc:
    emit(analyze_error=str(exc))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    host = simclust.get_host(strict=False)
emit(warnings=[(w.category.__name__, str(w.message)) for w in caught], **state(host))
"""

_FAILURE_RUNS: dict[str, Run] = {}


def _failure_run(plugin_venv, name: str) -> Run:
    """One run per broken plugin: strict get_host, analyze, then strict=False."""
    if name not in _FAILURE_RUNS:
        _FAILURE_RUNS[name] = plugin_venv.run(FAILURES.format(name=name), allow=(name,))
    return _FAILURE_RUNS[name]


def _skip_warning(run: Run, name: str) -> str:
    messages = [m for c, m in run.data["warnings"] if c == "RuntimeWarning" and f"'{name}'" in m]
    assert len(messages) == 1, run.data["warnings"]
    assert messages[0].endswith("; skipped")
    return messages[0]


def test_import_failure_names_plugin_and_distribution(plugin_venv):
    r = _failure_run(plugin_venv, "importfail")
    assert r.data["error"] == (
        "plugin 'importfail' (distribution simclust-importfail) failed to load: "
        "RuntimeError: importfail is broken at import time"
    )
    assert r.data["analyze_error"] == r.data["error"]  # analyze builds the host too


def test_import_failure_non_strict_warns_and_skips(plugin_venv):
    r = _failure_run(plugin_venv, "importfail")
    assert "simclust-importfail" in _skip_warning(r, "importfail")
    assert "importfail" not in r.data["plugins"] and not r.data["in_pm"]
    assert "sign-split" in r.data["strategies"]


def test_registration_failure_names_plugin_distribution_and_hook(plugin_venv):
    r = _failure_run(plugin_venv, "regfail")
    assert r.data["error"] == (
        "plugin 'regfail' (distribution simclust-regfail) failed in simclust_register_metrics: "
        "RuntimeError: regfail cannot register its metrics"
    )
    assert r.data["analyze_error"] == r.data["error"]


def test_registration_failure_non_strict_skips_the_plugin_entirely(plugin_venv):
    r = _failure_run(plugin_venv, "regfail")
    assert "simclust-regfail" in _skip_warning(r, "regfail")
    # its strategy registered fine before its metrics hook raised: dropped as well
    assert "regfail-strategy" not in r.data["strategies"]
    assert "regfail" not in r.data["plugins"] and not r.data["in_pm"]
    assert "sign-split" in r.data["strategies"] and "axis-mean" in r.data["metrics"]


def test_name_clash_with_a_builtin_names_both_plugins(plugin_venv):
    r = _failure_run(plugin_venv, "clash")
    assert r.data["error"] == (
        "plugin 'clash' (distribution simclust-clash) registered the strategy 'kmeans', "
        "which is already provided (built-in); pass replace=True to replace it"
    )
    _skip_warning(r, "clash")
    assert "clash-extra" not in r.data["strategies"] and "kmeans" in r.data["strategies"]
    assert "clash" not in r.data["plugins"] and not r.data["in_pm"]


def test_two_distributions_with_one_entry_point_name_is_an_error(plugin_venv):
    r = plugin_venv.run(FAILURES.format(name="signsplit"), allow=(DUPLICATE,))
    error = r.data.get("error", "")
    assert "simclust-signsplit" in error and "simclust-dupname" in error


FIT_FAIL = """
try:
    simclust.run("run.toml")
except PluginError as exc:
    emit(error=str(exc))
"""


def test_fit_failure_names_the_plugin_and_writes_nothing(plugin_venv, tmp_path):
    _write_embeddings(tmp_path / "x.npy")
    _config(tmp_path, "fit-fail")
    marker = tmp_path / "marker.json"
    r = plugin_venv.run(FIT_FAIL, allow=("fitfail",), cwd=tmp_path, SIGNSPLIT_MARKER=str(marker))
    error = r.data["error"]
    assert "'fit-fail'" in error and "'fitfail'" in error and "simclust-fitfail" in error
    assert "failed in fit: ValueError: fit-fail always fails" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml", "x.npy"]
    assert not marker.exists()  # simclust_run_finished did not fire


def test_fit_failure_leaves_an_existing_output_untouched(plugin_venv, tmp_path):
    _write_embeddings(tmp_path / "x.npy")
    _config(tmp_path, "fit-fail")
    out = tmp_path / "out"
    simclust.analyze(np.eye(3, dtype=np.float32), threshold=0.5).write(out, report=False)
    (out / "notes.txt").write_text("keep me")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = plugin_venv.run(FIT_FAIL, allow=("fitfail",), cwd=tmp_path)
    assert "fit-fail always fails" in r.data["error"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run.toml", "x.npy"]


# --------------------------------------------------------------------------- the tutorial


def test_tutorial_plugin_installed_from_the_docs_runs_its_config(plugin_venv, tmp_path):
    for name in ("run.toml", "make_data.py"):
        shutil.copy(plugin_venv.tutorial / name, tmp_path / name)
    r = plugin_venv.run(
        """
        import runpy
        runpy.run_path("make_data.py")
        emit(table=simclust.get_host().table().rows())
        """,
        cwd=tmp_path,
    )
    assert ("strategy", "threshold-medoid", "medoid", "simclust-medoid", "0.1.0") in {
        tuple(row) for row in r.data["table"]
    }
    assert "clusters written to" in r.stdout
    clusters = pl.read_parquet(tmp_path / "out" / "clusters.parquet")
    assert {"sim_mean", "centroid_sim_mean", "margin_mean", "margin_min"} <= set(clusters.columns)
    assert clusters["size"].min() >= 2  # min_size = 2 from run.toml
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["cluster"] == {
        "strategy": "threshold-medoid",
        "params": {"threshold": 0.8, "min_size": 2},
    }


# --------------------------------------------------------------------------- in-process


class Halves(Strategy):
    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis

    def fit(self, X, *, graph=None):
        self.labels_ = (X[:, self.axis] > 0).astype(np.int64)
        return self


def _plugin(**hooks):
    """A plugin object whose hook implementations are the given functions."""
    ns = type("InProcessPlugin", (), {})()
    for name, fn in hooks.items():
        setattr(ns, name, simclust.hookimpl(fn))
    return ns


@pytest.mark.parametrize("name", ["a", "halves", "k2-means", "top-10-nn"])
def test_registry_accepts_kebab_case(name):
    reg = Registry("strategy")
    reg.register(name, Halves)
    assert reg.names() == [name] and reg.get(name).obj is Halves


@pytest.mark.parametrize("name", ["Halves", "snake_case", "a--b", "-a", "a-", "", "a b", "ü", 3])
def test_registry_rejects_other_names_naming_the_plugin(name):
    host_plugin = _plugin(
        simclust_register_strategies=lambda registry: registry.register(name, Halves)
    )
    with pytest.raises(
        PluginError, match=r"plugin 'my-plugin' registered the strategy name .*kebab-case"
    ):
        make_host(("my-plugin", host_plugin))


def test_registry_replace():
    def register(registry):
        registry.register("kmeans", Halves, replace=True)

    host = make_host(("replacer", _plugin(simclust_register_strategies=register)))
    reg = host.strategies.get("kmeans")
    assert reg.obj is Halves and reg.plugin == "replacer"
    assert host.strategies.names().count("kmeans") == 1


def test_clash_between_two_plugins_names_both():
    first = _plugin(
        simclust_register_strategies=lambda registry: registry.register("halves", Halves)
    )
    second = _plugin(
        simclust_register_strategies=lambda registry: registry.register("halves", Halves)
    )
    with pytest.raises(PluginError) as info:
        make_host(("aaa-first", first), ("bbb-second", second))
    assert str(info.value) == (
        "plugin 'bbb-second' registered the strategy 'halves', which is already provided "
        "(plugin 'aaa-first'); pass replace=True to replace it"
    )
    with pytest.warns(RuntimeWarning, match="bbb-second"):
        host = make_host(("aaa-first", first), ("bbb-second", second), strict=False)
    assert host.strategies.get("halves").plugin == "aaa-first"
    assert "bbb-second" not in [p.name for p in host.plugins()]


def test_unknown_name_lists_every_name_and_provider():
    plugin = _plugin(
        simclust_register_strategies=lambda registry: registry.register("halves", Halves)
    )
    host = make_host(("my-plugin", plugin))
    with pytest.raises(UnknownNameError) as info:
        host.strategies.get("halvs")
    assert str(info.value) == (
        "unknown strategy 'halvs'; available: connected-components (built-in), "
        "kmeans (built-in), halves (plugin 'my-plugin')"
    )
    with pytest.raises(
        ConfigError,
        match=r"^cluster.strategy: unknown strategy 'halvs'; .*halves \(plugin 'my-plugin'\)",
    ):
        simclust.analyze(np.eye(3, dtype=np.float32), strategy="halvs", host=host)


def test_registered_names_know_their_distribution():
    pm = get_plugin_manager(autoload=False)
    pm.register(
        _plugin(simclust_register_strategies=lambda registry: registry.register("halves", Halves)),
        name="halves-ep",
    )
    host = build_host(pm, plugins={"halves-ep": PluginInfo("halves-ep", "simclust-halves", "2.0")})
    reg = host.strategies.get("halves")
    assert (reg.plugin, reg.distribution, reg.provider) == (
        "halves-ep",
        "simclust-halves",
        "plugin 'halves-ep' from simclust-halves",
    )
    assert ("strategy", "halves", "halves-ep", "simclust-halves", "2.0") in host.table().rows()


def test_register_strategies_and_metrics_hooks_in_process():
    from simclust.default_plugins.metrics import Intra

    calls = []

    def simclust_register_strategies(registry):
        calls.append(("strategies", registry.kind))
        registry.register("halves", Halves)

    def simclust_register_metrics(registry):
        calls.append(("metrics", registry.kind))
        registry.register("intra-again", Intra)

    host = make_host(
        (
            "p",
            _plugin(
                simclust_register_strategies=simclust_register_strategies,
                simclust_register_metrics=simclust_register_metrics,
            ),
        )
    )
    assert calls == [("strategies", "strategy"), ("metrics", "metric")]
    assert host.metrics.get("intra-again").plugin == "p"


class TxtLoader(Loader):
    def __init__(self, *, delimiter: str = ",") -> None:
        self.delimiter = delimiter

    def can_load(self, path):
        return Path(path).suffix == ".txt"

    def load(self, path, *, progress=None):
        X = np.loadtxt(path, delimiter=self.delimiter, ndmin=2)
        return LoadedData(X, [f"row{i}" for i in range(len(X))])


def test_register_loaders_hook_reads_a_new_format(tmp_path):
    def simclust_register_loaders(registry):
        registry.register("txt", TxtLoader)

    host = make_host(("txt-plugin", _plugin(simclust_register_loaders=simclust_register_loaders)))
    assert host.loaders.get("txt").plugin == "txt-plugin"
    path = tmp_path / "x.txt"
    path.write_text("1;0\n0.99;0.1\n0;1\n")
    res = simclust.analyze(
        path, config={"input": {"loader": "txt", "delimiter": ";"}}, threshold=0.9, host=host
    )
    assert res.assignments["id"].to_list() == ["row0", "row1", "row2"]
    assert res.assignments["cluster"].to_list() == [0, 0, 1]
    path.write_text("1,0\n0.99,0.1\n0,1\n")
    res = simclust.analyze(path, threshold=0.9, host=host)  # found by can_load
    assert res.assignments["cluster"].to_list() == [0, 0, 1]


class ByteHistogram(EmbedderBase):
    """Features: a histogram of the file's bytes (no image decoding)."""

    def __init__(self, *, bins: int = 16) -> None:
        self.bins = bins

    def embed(self, paths, *, progress=None):
        feats = []
        for p in paths:
            data = np.frombuffer(Path(p).read_bytes(), dtype=np.uint8)
            feats.append(np.bincount(data // (256 // self.bins), minlength=self.bins))
        bad = pl.DataFrame(schema={"path": pl.String, "error": pl.String})
        return EmbedderOutput(np.asarray(feats, np.float32) + 1e-3, list(paths), bad)


def test_register_embedders_hook_embeds_an_image_folder(tmp_path):
    def simclust_register_embedders(registry):
        registry.register("byte-hist", ByteHistogram)

    host = make_host(
        ("bytes-plugin", _plugin(simclust_register_embedders=simclust_register_embedders))
    )
    assert host.embedders.get("byte-hist").plugin == "bytes-plugin"
    folder = tmp_path / "images"
    folder.mkdir()
    for name, byte in (("a.png", 0), ("b.png", 1), ("c.png", 255)):
        (folder / name).write_bytes(bytes([byte]) * 64)
    res = simclust.analyze(
        folder,
        config={
            "input": {"loader": "images", "embedder": "byte-hist", "embedder_params": {"bins": 4}}
        },
        threshold=0.99,
        host=host,
    )
    assert res.assignments["id"].to_list() == ["a.png", "b.png", "c.png"]
    assert res.assignments["cluster"].to_list() == [0, 0, 1]  # a and b share a bin


def test_run_finished_hook_sees_the_result_and_config():
    seen = []

    def simclust_run_finished(result, config):
        seen.append(
            (result.assignments.height, config["cluster"]["strategy"], result.clusters.height)
        )

    host = make_host(("observer", _plugin(simclust_run_finished=simclust_run_finished)))
    X = np.array([[1, 0], [0.99, 0.1], [0, 1]], dtype=np.float32)
    simclust.analyze(X, threshold=0.9, host=host)
    assert seen == [(3, "connected-components", 2)]


def test_run_finished_failure_names_the_plugin_and_writes_nothing(tmp_path):
    def simclust_run_finished(result, config):
        raise OSError("disk full")

    host = make_host(("observer", _plugin(simclust_run_finished=simclust_run_finished)))
    np.save(tmp_path / "x.npy", np.eye(3, dtype=np.float32))
    with pytest.raises(
        PluginError, match=r"plugin 'observer' failed in simclust_run_finished: OSError: disk full"
    ):
        simclust.run(
            {
                "input": {"path": str(tmp_path / "x.npy")},
                "output": {"dir": str(tmp_path / "out"), "report": False},
            },
            host=host,
        )
    assert not (tmp_path / "out").exists()


def test_make_host_without_builtins_and_hookspec_validation():
    plugin = _plugin(
        simclust_register_strategies=lambda registry: registry.register("halves", Halves)
    )
    host = make_host(("p", plugin), builtins=False)
    assert host.strategies.names() == ["halves"] and host.metrics.names() == []
    typo = _plugin(simclust_register_strategy=lambda registry: None)  # no such hook
    with pytest.raises(PluginError, match="simclust_register_strategy"):
        make_host(("typo", typo))
    wrong_arg = _plugin(simclust_register_strategies=lambda registy: None)
    with pytest.raises(PluginError, match=r"(?s)plugin 'wrong-arg' failed to register: .*registy"):
        make_host(("wrong-arg", wrong_arg))


class PositionalStrategy(Halves):
    def __init__(self, *args: int, axis: int = 0) -> None:
        self.axis = axis


def test_strategy_with_a_bad_signature_is_a_plugin_error_naming_the_plugin():
    plugin = _plugin(
        simclust_register_strategies=lambda registry: registry.register(
            "positional", PositionalStrategy
        )
    )
    # caught when the plugin registers it, before any run
    with pytest.raises(
        PluginError,
        match=r"plugin 'bad-signature' registered the strategy "
        r"'positional': .*takes \*args: parameters must be named",
    ):
        make_host(("bad-signature", plugin))
