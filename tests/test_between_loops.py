"""What the program changes between two loops reaches the workers the first loop started.

The pool's workers serve every loop of the program: one started for an earlier loop (or
forked from the fork server, which started with the first) had the environment and the
current directory of then, and iterations that read them gave stale values, silently
(joblib's test_threadpool_limitation_in_child_override, translated, found it). CONTRACT
section 3: a loop whose iterations use process-wide state gives the plain result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS, use_backend

Loader = Callable[..., ModuleType]


@pytest.mark.parametrize("backend", [*START_METHODS, "caller"])
def test_the_environment_and_directory_of_each_loops_start(
    load_module: Loader,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An environment variable set, changed, then removed, and the directory changed, between
    three loops on the same workers: each loop's iterations see the program's of then."""
    use_backend(backend, request, monkeypatch)
    module = load_module("""
        import os
        from paraloop import ParaLoop
        def read():
            out = []
            for i in ParaLoop(range(6), num_processes=2, chunksize=1):
                out.append((os.environ.get("PARALOOP_TEST_BETWEEN"), os.path.basename(os.getcwd())))
            return out
    """)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    monkeypatch.setenv("PARALOOP_TEST_BETWEEN", "1")
    assert module.read() == [("1", "first")] * 6
    monkeypatch.chdir(second)
    monkeypatch.setenv("PARALOOP_TEST_BETWEEN", "2")
    assert module.read() == [("2", "second")] * 6
    monkeypatch.delenv("PARALOOP_TEST_BETWEEN")
    assert module.read() == [(None, "second")] * 6
    assert os.environ.get("PARALOOP_TEST_BETWEEN") is None
