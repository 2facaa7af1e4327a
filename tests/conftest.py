"""Shared fixtures: write real modules into a temporary directory and import them."""

from __future__ import annotations

import importlib
import itertools
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

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


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A real Dask LocalCluster on 127.0.0.1: two worker processes, started and stopped here.

    Its scheduler does not retry a chunk whose worker died (``allowed-failures``
    0), as on the cluster paraloop starts itself.
    """
    import dask
    import distributed

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    yield cluster
    from paraloop.dask_backend import shutdown

    shutdown()  # paraloop's own client on this cluster first, so it does not try to reconnect
    cluster.close()


@pytest.fixture(params=[*START_METHODS, "threads", "sequential", "dask"])
def every_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on processes under each start method, on threads, sequentially and on Dask.

    CONTRACT.md section 7: the same loop gives the same tracked result on every
    backend. The environment variables override what the code asks for.
    """
    choice: str = request.param
    if choice in START_METHODS:
        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_START_METHOD", choice)
    else:
        monkeypatch.setenv("PARALOOP_BACKEND", choice)
    if choice == "dask":
        cluster = request.getfixturevalue("dask_cluster")
        monkeypatch.setenv("PARALOOP_DASK_SCHEDULER", cluster.scheduler_address)
    return choice
