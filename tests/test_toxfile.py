"""The README's test command finds the interpreters pyenv installed: toxfile.py.

tox loads the project's ``toxfile.py`` as a plugin; it adds pyenv's interpreters to tox's
``--discover`` list. The test environments have no tox, so a stand-in for ``tox.plugin``
carries the hook; that tox then finds the matrix's interpreters without ``PYENV_VERSION`` was
checked by hand (``env -u PYENV_VERSION tox --notest -e py310,py313``).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _plugin(monkeypatch: pytest.MonkeyPatch) -> Any:
    plugin = types.ModuleType("tox.plugin")
    plugin.impl = lambda function: function  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tox", types.ModuleType("tox"))
    monkeypatch.setitem(sys.modules, "tox.plugin", plugin)
    spec = importlib.util.spec_from_file_location("toxfile_under_test", ROOT / "toxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _state(discover: list[str]) -> Any:
    return types.SimpleNamespace(conf=types.SimpleNamespace(options=types.SimpleNamespace(discover=discover)))


def test_pyenvs_interpreters_are_tried_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for version in ("3.12.1", "3.10.13", "2.7.18", "3.13.0"):
        python = tmp_path / "versions" / version / "bin" / "python3"
        python.parent.mkdir(parents=True)
        python.write_text("")
    (tmp_path / "versions" / "3.11-broken").mkdir()  # no interpreter inside: left out
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    state = _state(["/usr/bin/python3", str(tmp_path / "versions/3.12.1/bin/python3")])
    _plugin(monkeypatch).tox_add_core_config(None, state)
    expected = [str(tmp_path / f"versions/{v}/bin/python3") for v in ("3.10.13", "3.12.1", "3.13.0")]
    # The user's own --discover paths stay first; each pyenv interpreter once; no Python 2.
    assert state.conf.options.discover == ["/usr/bin/python3", expected[1], expected[0], expected[2]]


def test_without_pyenv_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "none"))
    state = _state([])
    _plugin(monkeypatch).tox_add_core_config(None, state)
    assert state.conf.options.discover == []


def test_the_sdist_and_the_readme_know_the_plugin() -> None:
    assert "toxfile.py" in (ROOT / "MANIFEST.in").read_text()
    assert "pyenv" in (ROOT / "README.md").read_text()


def _collected(*arguments: str) -> list[str]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def _backend(test_id: str) -> str:
    """The backend a semantic suite's test runs on: the first part of its parameters' id."""
    return test_id.split("[", 1)[1].rstrip("]").split("-", 1)[0]


def test_the_other_pythons_run_fork_and_spawn_and_py313_everything() -> None:
    """tox's py310 to py312 deselect the tests marked once (tests/conftest.py), py313 runs the
    whole suite: a semantic suite keeps its fork runs everywhere, its spawn runs under py310
    (py311 and py312 deselect the tests marked spawn), and its forkserver, caller, threads,
    sequential and Dask runs, like the files marked once, run under py313."""
    import configparser

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    commands = tox["testenv"]["commands"]
    assert 'py310: pytest -n 4 -m "not alone and not once" {posargs}' in commands
    assert 'py311,py312: pytest -n 4 -m "not alone and not once and not spawn" {posargs}' in commands
    assert "once" not in tox["testenv:py313"]["commands"]

    everywhere = _collected("-m", "not once", "tests/test_reductions.py", "tests/test_dask.py")
    backends = {_backend(line) for line in everywhere if "[" in line}
    assert backends == {"fork", "spawn"}
    not_spawn = _collected("-m", "not once and not spawn", "tests/test_reductions.py")
    assert {_backend(line) for line in not_spawn if "[" in line} == {"fork"}
    assert not [line for line in everywhere if line.startswith("tests/test_dask.py")]
    once = _collected("-m", "once", "tests/test_reductions.py")
    assert {_backend(line) for line in once} == {
        "forkserver",
        "caller",
        "threads",
        "sequential",
        "dask",
    }
