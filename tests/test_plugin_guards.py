"""Meta-tests keeping the hooks, their documentation and their tests in step.

Modelled on datasette's ``test_plugin_hooks_have_tests`` and
``test_plugin_hooks_are_documented``: every hook in :mod:`simclust.hookspecs` has a
``## simclust_<name>`` section in ``docs/hooks.md`` (and no section documents a hook
that does not exist), and is exercised by at least one test under ``tests/``. The
code in ``docs/hooks.md`` and ``docs/plugins.md`` is run.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from simclust import hookspecs

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HOOKS_MD = ROOT / "docs" / "hooks.md"
PLUGINS_MD = ROOT / "docs" / "plugins.md"
HOST_PY = ROOT / "python" / "simclust" / "host.py"


def _hookspecs() -> dict[str, object]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "simclust_spec")
    }


HOOKS = sorted(_hookspecs())


def _sections(markdown: str) -> dict[str, str]:
    """``## heading`` -> the text up to the next ``## `` heading."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python(?: [^\n]*)?\n(.*?)^```$", text, re.M | re.S)


def test_hookspecs_are_found():
    # new hooks are fine (the guards below then cover them); these must not vanish
    assert {
        "simclust_register_embedders",
        "simclust_register_loaders",
        "simclust_register_metrics",
        "simclust_register_strategies",
        "simclust_run_finished",
    } <= set(HOOKS)
    assert all(name in hookspecs.__all__ for name in HOOKS)


# --------------------------------------------------------------------------- documented


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hook_is_documented(hook):
    sections = _sections(HOOKS_MD.read_text(encoding="utf-8"))
    assert hook in sections, f"docs/hooks.md has no '## {hook}' section"


def test_documented_hooks_exist():
    documented = {
        h for h in _sections(HOOKS_MD.read_text(encoding="utf-8")) if h.startswith("simclust_")
    }
    assert documented == set(HOOKS), (
        f"documented but not hooks: {sorted(documented - set(HOOKS))}; "
        f"hooks not documented: {sorted(set(HOOKS) - documented)}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_section_has_signature_arguments_and_example(hook):
    section = _sections(HOOKS_MD.read_text(encoding="utf-8"))[hook]
    blocks = _python_blocks(section)
    assert len(blocks) >= 2, f"{hook}: needs a signature block and an example"
    tree = ast.parse(blocks[0])
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef), blocks[0]
    assert tree.body[0].name == hook, f"{hook}: the first block must be 'def {hook}(...)'"
    documented = [a.arg for a in tree.body[0].args.args + tree.body[0].args.kwonlyargs]
    spec = list(inspect.signature(_hookspecs()[hook]).parameters)
    assert documented == spec, f"{hook}: docs say {documented}, the hookspec has {spec}"
    for arg in spec:
        assert f"`{arg}`" in section, f"{hook}: argument {arg!r} is not described"
    for part in ("**Arguments.**", "**When it fires.**", "**Returns.**"):
        assert part in section, f"{hook}: missing {part}"
    assert any(f"def {hook}(self" in b or f"def {hook}(" in b for b in blocks[1:]), (
        f"{hook}: the example does not implement the hook"
    )


@pytest.mark.parametrize("index", range(len(_python_blocks(HOOKS_MD.read_text("utf-8")))))
def test_hooks_md_code_runs(index, monkeypatch):
    monkeypatch.setenv("SIMCLUST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("SIMCLUST_BLOCK_PLUGINS", raising=False)
    code = _python_blocks(HOOKS_MD.read_text(encoding="utf-8"))[index]
    flags = __future__.annotations.compiler_flag  # signature blocks name types only
    exec(compile(code, f"docs/hooks.md block {index}", "exec", flags=flags, dont_inherit=True), {})


# --------------------------------------------------------------------------- tested


def _test_sources() -> dict[Path, str]:
    """Every test module and conftest under tests/ except this file (not the fixtures)."""
    out = {}
    for path in TESTS.rglob("*.py"):
        if path == Path(__file__).resolve() or "plugin_fixtures" in path.parts:
            continue
        if path.name.startswith("test_") or path.name == "conftest.py":
            out[path] = path.read_text(encoding="utf-8")
    return out


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hook_has_tests(hook):
    users = [p.name for p, text in _test_sources().items() if re.search(rf"\b{hook}\b", text)]
    assert users, f"no test under tests/ mentions {hook}; add one that exercises it"


def test_hook_test_guard_ignores_this_file_and_fixtures():
    sources = _test_sources()
    assert Path(__file__).resolve() not in sources
    assert not any("plugin_fixtures" in p.parts for p in sources)
    assert TESTS / "test_plugin_host.py" in sources


# --------------------------------------------------------------------------- the tutorial


def test_plugins_md_python_blocks_compile():
    text = PLUGINS_MD.read_text(encoding="utf-8")
    blocks = _python_blocks(text)
    assert len(blocks) >= 6
    for i, code in enumerate(blocks):
        compile(code, f"docs/plugins.md block {i}", "exec")


def test_plugins_md_documents_the_environment_variables():
    text = PLUGINS_MD.read_text(encoding="utf-8")
    variables = set(re.findall(r"SIMCLUST_[A-Z_]+", HOST_PY.read_text(encoding="utf-8")))
    assert {
        "SIMCLUST_BLOCK_PLUGINS",
        "SIMCLUST_DISABLE_PLUGIN_AUTOLOAD",
        "SIMCLUST_TRACE_PLUGINS",
    } <= variables
    for var in variables:
        assert f"`{var}`" in text, f"docs/plugins.md does not document {var}"


def test_plugins_md_names_only_real_hooks():
    text = PLUGINS_MD.read_text(encoding="utf-8") + HOOKS_MD.read_text(encoding="utf-8")
    named = set(re.findall(r"\bsimclust_(?:register_\w+|run_\w+)\b", text))
    assert named <= set(HOOKS), f"docs name hooks that do not exist: {named - set(HOOKS)}"


def test_plugins_md_tutorial_tests_pass(tmp_path):
    """Extract the tutorial's files and run its own test suite (uninstalled, on PYTHONPATH)."""
    text = PLUGINS_MD.read_text(encoding="utf-8")
    files = re.findall(r'^```\w+ title="([^"]+)"\n(.*?)^```$', text, re.M | re.S)
    names = [name for name, _ in files]
    assert {
        "pyproject.toml",
        "src/simclust_medoid/strategy.py",
        "src/simclust_medoid/metric.py",
        "src/simclust_medoid/plugin.py",
        "tests/conftest.py",
        "tests/test_simclust_medoid.py",
        "run.toml",
    } <= set(names)
    for name, body in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMCLUST_", "PYTHON"))}
    env["PYTHONPATH"] = str(tmp_path / "src")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 20 and "failed" not in summary and "error" not in summary, summary
