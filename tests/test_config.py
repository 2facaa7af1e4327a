"""Worker counts as joblib users write them, and one precedence for every setting.

The rule (docs/configuration.md): a ``PARALOOP_*`` environment variable overrides the
code; in the code, a ``ParaLoop(...)`` option wins over the innermost ``paraloop.config``
block, which wins over the blocks around it; paraloop's defaults fill in the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import paraloop
from paraloop import ParaLoop
from paraloop.settings import current

Loader = Callable[..., ModuleType]

SETTINGS = ("PARALOOP_BACKEND", "PARALOOP_START_METHOD", "PARALOOP_WORKERS", "PARALOOP_DASK_SCHEDULER")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sets the PARALOOP_* variables it means; three CPUs as far as paraloop knows."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_CPU_COUNT", "3")
    yield


def decisions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    """The backend and worker count paraloop chose for each loop, from its debug log."""
    found = []
    for record in caplog.records:
        match = re.search(r"backend (\w+), (\d+) worker\(s\)", record.getMessage())
        if record.name == "paraloop" and match:
            found.append((match.group(1), int(match.group(2))))
    return found


# --- counts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "workers"), [(-1, 3), (-2, 2), (-3, 1), (-50, 1), (1, 1), (7, 7)])
def test_negative_counts_count_back_from_the_cpus(given: int, workers: int) -> None:
    """-1: all the usable CPUs, -2: all but one, ..., never fewer than one (joblib's n_jobs)."""
    assert ParaLoop(range(3), num_processes=given).num_processes == workers
    with paraloop.config(num_processes=given):
        assert ParaLoop(range(3)).num_processes == workers


@pytest.mark.parametrize("choice", ["fork", "threads", "dask"])
def test_all_but_one_cpu_runs_that_many_workers(
    load_module: Loader,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:
    """num_processes=-2 on three CPUs runs two workers, with the plain loop's result."""
    scheduler = "None"
    if choice == "dask":
        scheduler = repr(request.getfixturevalue("dask_cluster").scheduler_address)
    backend = "processes" if choice == "fork" else choice
    if choice == "fork":
        monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    with caplog.at_level(logging.DEBUG, logger="paraloop"):
        module = load_module(f"""
            from paraloop import ParaLoop
            total = 0
            for i in ParaLoop(range(200), num_processes=-2, backend={backend!r}, scheduler={scheduler}):
                total += i * i
        """)
    assert module.total == sum(i * i for i in range(200))
    assert decisions(caplog) == [(backend, 2)]


@pytest.mark.parametrize("bad", [0, 1.5, True, "4", None])
def test_other_counts_are_refused_with_what_works(bad: Any) -> None:
    """0, fractions, booleans and text are refused, saying what to write instead."""
    expected = (
        f"num_processes={bad!r}: give the number of workers, a whole number of at least 1 "
        "(num_processes=4), or -1 for all the CPUs this process may use, -2 for all but one"
    )
    if bad is None:  # None means: paraloop chooses
        assert ParaLoop(range(3), num_processes=bad).num_processes is None
        return
    with pytest.raises(paraloop.ParaLoopError) as caught:
        ParaLoop(range(3), num_processes=bad)
    assert str(caught.value) == expected
    with pytest.raises(paraloop.ParaLoopError) as caught:
        paraloop.config(num_processes=bad)
    assert str(caught.value) == expected


@pytest.mark.parametrize(("name", "library"), [("n_jobs", "joblib"), ("max_workers", "concurrent.futures")])
@pytest.mark.parametrize("where", ["ParaLoop", "config"])
def test_other_libraries_names_for_the_count_point_to_num_processes(
    name: str, library: str, where: str
) -> None:
    """n_jobs= and max_workers= raise a ParaLoopError (not a TypeError) that names num_processes."""
    make: Any = ParaLoop if where == "ParaLoop" else paraloop.config
    arguments: tuple[Any, ...] = (range(3),) if where == "ParaLoop" else ()
    with pytest.raises(paraloop.ParaLoopError) as caught:
        make(*arguments, **{name: -1})
    assert not isinstance(caught.value, TypeError)
    assert str(caught.value) == (
        f"{where}({name}=-1): {name} is {library}'s name for the worker count; paraloop's is "
        f"num_processes: {where}(..., num_processes=-1) (-1: all the CPUs this process may use, "
        "-2: all but one)"
    )


def test_an_unknown_option_lists_the_options() -> None:
    """Any other unknown keyword is a ParaLoopError listing what ParaLoop and config take."""
    with pytest.raises(
        paraloop.ParaLoopError,
        match=r"^ParaLoop\(\) takes no option 'workers'; its options are num_processes, backend",
    ):
        ParaLoop(range(3), workers=2)  # type: ignore[arg-type]
    with pytest.raises(
        paraloop.ParaLoopError, match=r"^config\(\) takes no option 'workers'; .*dask_dashboard$"
    ):
        paraloop.config(workers=2)  # type: ignore[arg-type]


def test_workers_variable_takes_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """PARALOOP_WORKERS=-1 is all the usable CPUs; 0 is refused naming the variable."""
    monkeypatch.setenv("PARALOOP_WORKERS", "-1")
    assert ParaLoop(range(3)).resolved_num_processes() == 3
    monkeypatch.setenv("PARALOOP_WORKERS", "-2")
    assert ParaLoop(range(3), num_processes=1).resolved_num_processes() == 2
    monkeypatch.setenv("PARALOOP_WORKERS", "0")
    with pytest.raises(
        paraloop.ParaLoopError, match=r"^PARALOOP_WORKERS=0: give the number of workers.*-1 for all"
    ):
        ParaLoop(range(3)).resolved_num_processes()


# --- paraloop.config and the precedence --------------------------------------------------

WHERE = """
    import os, threading, time
    import paraloop
    from paraloop import ParaLoop

    def where(**options):
        # (process, thread name) of each iteration, and the result
        seen = set()
        total = 0
        for i in ParaLoop(range(30), chunksize=1, **options):
            time.sleep(0.002)
            seen.add((os.getpid(), threading.current_thread().name))
            total += i
        assert total == sum(range(30))
        return seen
"""


def ran_in(seen: set[tuple[int, str]]) -> str:
    """Where a loop's iterations ran, as the body saw it."""
    pids = {pid for pid, _ in seen}
    names = {name for _, name in seen}
    if pids == {os.getpid()} and names == {threading.current_thread().name}:
        return "sequential"
    if pids == {os.getpid()} and all(name.startswith("paraloop-thread-") for name in names):
        return "threads"
    # Worker processes, or Dask's workers (the caller may run a few iterations itself
    # until worker processes are ready).
    return "processes"


def test_a_config_block_sets_the_backend_of_its_loops(load_module: Loader) -> None:
    """Loops inside `with paraloop.config(backend=...)` run there; after the block, the default."""
    module = load_module(WHERE)
    with paraloop.config(backend="threads"):
        assert ran_in(module.where()) == "threads"
    with paraloop.config(backend="sequential"):
        assert ran_in(module.where()) == "sequential"
    assert ran_in(module.where(backend="threads")) == "threads"


def test_a_config_block_reaches_dask(load_module: Loader, dask_cluster: Any) -> None:
    """backend and scheduler from a block: the iterations run on the cluster's workers."""
    module = load_module(WHERE)
    with paraloop.config(backend="dask", scheduler=dask_cluster.scheduler_address):
        seen = module.where()
    assert os.getpid() not in {pid for pid, _ in seen}


def test_processes_from_a_config_block(load_module: Loader, caplog: pytest.LogCaptureFixture) -> None:
    """backend, num_processes and start_method from a block reach the process pool."""
    module = load_module(WHERE)
    with caplog.at_level(logging.DEBUG, logger="paraloop"):
        with paraloop.config(backend="processes", num_processes=2, start_method="fork"):
            assert ParaLoop(range(3)).resolved_start_method() == "fork"
            assert ran_in(module.where()) == "processes"
    assert decisions(caplog) == [("processes", 2)]


def test_the_loops_own_option_wins_over_the_block(
    load_module: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    """What ParaLoop(...) names wins over the block around it (as joblib's Parallel over parallel_config)."""
    module = load_module(WHERE)
    with caplog.at_level(logging.DEBUG, logger="paraloop"):
        with paraloop.config(backend="threads", num_processes=3):
            assert ran_in(module.where(backend="sequential")) == "sequential"
            assert ran_in(module.where(num_processes=2)) == "threads"
    assert decisions(caplog) == [("sequential", 3), ("threads", 2)]


def test_inner_blocks_win_and_each_block_restores_the_one_around_it(
    load_module: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    """Nested blocks: the inner one's settings win, the outer one's fill in, and leaving restores."""
    module = load_module(WHERE)
    with caplog.at_level(logging.DEBUG, logger="paraloop"):
        with paraloop.config(backend="threads", num_processes=2):
            with paraloop.config(num_processes=3):
                assert ran_in(module.where()) == "threads"  # backend from the outer block
                with paraloop.config(backend="sequential"):
                    assert ran_in(module.where()) == "sequential"
                assert ran_in(module.where()) == "threads"
            assert ran_in(module.where()) == "threads"
    assert [count for backend, count in decisions(caplog) if backend == "threads"] == [3, 3, 2]
    assert current() == {}


def test_the_environment_overrides_the_code(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PARALOOP_BACKEND and PARALOOP_WORKERS win over the loop's options and the blocks alike."""
    module = load_module(WHERE)
    monkeypatch.setenv("PARALOOP_BACKEND", "threads")
    monkeypatch.setenv("PARALOOP_WORKERS", "2")
    with caplog.at_level(logging.DEBUG, logger="paraloop"):
        with paraloop.config(backend="sequential", num_processes=3):
            assert ran_in(module.where(backend="processes", num_processes=1)) == "threads"
            assert ran_in(module.where()) == "threads"
    assert decisions(caplog) == [("threads", 2), ("threads", 2)]


def test_the_start_method_variable_overrides_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """PARALOOP_START_METHOD wins over start_method= and a block's, like every other variable."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "spawn")
    with paraloop.config(start_method="fork"):
        assert ParaLoop(range(3), start_method="forkserver").resolved_start_method() == "spawn"
        monkeypatch.delenv("PARALOOP_START_METHOD")
        assert ParaLoop(range(3), start_method="forkserver").resolved_start_method() == "forkserver"
        assert ParaLoop(range(3)).resolved_start_method() == "fork"


def test_a_timeout_from_a_block(load_module: Loader) -> None:
    """timeout= from a block bounds the iterations of the loops inside it."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(3), backend="threads"):
                time.sleep(1.5 if i == 1 else 0)
    """)
    with paraloop.config(timeout=0.3), pytest.raises(paraloop.IterationTimeoutError):
        module.run()


def test_a_block_belongs_to_its_thread(load_module: Loader) -> None:
    """A block in one thread does not change the loops another thread runs meanwhile."""
    module = load_module(WHERE)
    entered, done = threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def other() -> None:
        with paraloop.config(backend="sequential"):
            entered.set()
            done.wait(60)
            seen["other"] = ParaLoop(range(3)).resolved_backend()

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(60)
    try:
        assert ran_in(module.where(num_processes=2)) == "processes"
        with paraloop.config(backend="threads"):
            assert ran_in(module.where()) == "threads"
    finally:
        done.set()
        thread.join(60)
    assert seen == {"other": "sequential"}


def test_asyncio_tasks_keep_their_own_blocks() -> None:
    """Each asyncio task sees the blocks it entered, however the tasks interleave."""

    async def task(backend: str, ready: asyncio.Event, go: asyncio.Event) -> str:
        with paraloop.config(backend=backend):
            ready.set()
            await go.wait()
            return ParaLoop(range(3)).resolved_backend()

    async def main() -> list[str]:
        events = [asyncio.Event() for _ in range(3)]
        tasks = [
            asyncio.create_task(task("threads", events[0], events[2])),
            asyncio.create_task(task("sequential", events[1], events[2])),
        ]
        await events[0].wait()
        await events[1].wait()
        events[2].set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == ["threads", "sequential"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "gpu"}, "backend='gpu' is not available; choose one of 'processes', 'threads'"),
        ({"start_method": "vfork"}, "start_method='vfork': choose one of 'fork'"),
        ({"chunksize": 0}, "chunksize=0: give a whole number of at least 1"),
        ({"timeout": -1}, "timeout=-1: give the seconds one iteration may take"),
        ({"progress": "yes"}, "progress='yes': give True"),
        ({"dask_dashboard": "8787"}, "dask_dashboard='8787': give the dashboard's port on 127.0.0.1"),
    ],
)
def test_a_block_checks_its_settings_when_made(options: dict[str, Any], message: str) -> None:
    """A wrong setting is refused where the block is written, as ParaLoop refuses it."""
    with pytest.raises(paraloop.ParaLoopError) as caught:
        paraloop.config(**options)
    assert str(caught.value).startswith(message)


def test_the_test_suites_way_to_force_a_backend(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """PARALOOP_BACKEND forces every loop of a run onto one backend, whatever the code says
    (how tests/conftest.py's every_backend runs each test on each backend)."""
    module = load_module(WHERE)
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    with paraloop.config(backend="threads"):
        assert ran_in(module.where(backend="processes")) == "sequential"
