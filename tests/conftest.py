"""Shared fixtures: write real modules into a temporary directory and import them."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import paraloop  # noqa: F401 - installs the import hook before any test module is written

_numbers = itertools.count()

START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.fixture
def load_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Write ``source`` as a fresh module (marked unless ``marked=False``) and import it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def load(source: str, *, marked: bool = True) -> ModuleType:
        name = f"paraloop_testmod_{next(_numbers)}"
        text = textwrap.dedent(source)
        if marked:
            text = "# paraloop: enable\n" + text
        (tmp_path / f"{name}.py").write_text(text)
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name)

    yield load
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture(params=[*START_METHODS, "threads", "sequential"])
def every_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on processes under each start method, on threads and sequentially.

    CONTRACT.md section 7: the same loop gives the same tracked result on every
    backend. The environment variables override what the code asks for.
    """
    choice: str = request.param
    if choice in START_METHODS:
        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_START_METHOD", choice)
    else:
        monkeypatch.setenv("PARALOOP_BACKEND", choice)
    return choice
