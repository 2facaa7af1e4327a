"""The caller runs a loop's first iterations itself while workers get ready (paraloop.backends.processes.caller).

What a user sees: a short loop never starts a worker process; a longer one starts in the
caller and goes on in the workers, with the plain loop's result; loops that must stay in
workers do; the option and its variable; the documented difference (a crash in an
iteration the caller runs ends the program).  The semantic suites run every test on the
"caller" backend too (tests/conftest.py), with the caller's part mixed with the workers'.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import product_environment, run_program
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_loop import run_plain

import paraloop
from paraloop.backends.processes import caller

Loader = Callable[..., ModuleType]

# Iterations long enough (1 ms) that a budget of 3 ms ends after a few of them.
PIDS = """
    import os, time
    from paraloop import ParaLoop
    def run(n, **options):
        pids = []
        for i in ParaLoop(range(n), num_processes=2, **options):
            time.sleep(0.001)
            pids.append(os.getpid())
        return pids
"""


def _script(tmp_path: Path, body: str, **extra: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return run_program(script, **extra)


SHORT = """
    from paraloop import ParaLoop
    from paraloop.backends.processes.pool import worker_pids
    from paraloop.backends.processes import caller
    # The decision, not the clock, is under test here: a budget that no stall of a loaded
    # machine can use up (test_caller_decisions below checks the 2 ms and the arithmetic).
    caller.CALLER_SECONDS = 60.0
    total = 0
    for i in ParaLoop(range(10)):
        total += i
    print(total, len(worker_pids()))
"""


def test_a_short_loop_never_starts_a_worker(tmp_path: Path) -> None:
    """A loop that ends within the caller's budget never starts a worker process."""
    done = _script(tmp_path, SHORT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["45", "0"]
    # Without the caller's part, the same loop starts the workers.
    kept = _script(tmp_path, SHORT, PARALOOP_CALLER_RUNS="0")
    assert kept.returncode == 0, kept.stderr
    total, children = kept.stdout.split()
    assert total == "45" and int(children) >= 1


SOONER_HERE = """
    import os, sys, time
    from paraloop import ParaLoop
    from paraloop.backends.processes.pool import worker_pids
    from paraloop.backends.processes import caller
    # What getting forked workers going costs, as the caller assumes it: the test sets it, so
    # that the decision does not depend on how long the iterations take on a loaded machine.
    caller.START_SECONDS["fork"] = float(sys.argv[1])
    pids = set()
    for i in ParaLoop(range(8), num_processes=2):
        time.sleep(0.001)
        pids.add(os.getpid())
    print(pids == {os.getpid()}, len(worker_pids()))
"""


@pytest.mark.parametrize(("start", "kept"), [("60", True), ("0", False)])
def test_the_caller_keeps_a_loop_it_finishes_sooner_than_two_workers_would(
    tmp_path: Path, start: str, kept: bool
) -> None:
    """8 iterations of 1 ms, two forked workers: after its 2 ms budget the caller keeps the
    rest (about 6 ms) when starting the workers would cost more than that (60 s, set by the
    test), and hands it over when it costs nothing.  The arithmetic itself, with the real
    start costs: test_caller_decisions."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SOONER_HERE))
    done = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script), start],
        capture_output=True,
        text=True,
        timeout=120,
        env=product_environment(PARALOOP_START_METHOD="fork"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    here, children = done.stdout.split()
    assert here == str(kept)
    assert (int(children) == 0) is kept


def test_caller_decisions() -> None:
    """The caller's rule with the real constants: it runs the loop for its first 2 ms, then
    keeps what is left when that takes it less than starting the workers plus their share of
    it would (two workers: twice the start cost), and hands it over otherwise."""
    assert caller.CALLER_SECONDS == 0.002
    forked = caller.CallerWorker(_job(), lambda: b"", caller.START_SECONDS["fork"], "fork", workers=2)
    forked._per_item = 0.001  # measured: an iteration takes 1 ms
    assert forked.cheaper_than_workers(6)  # 6 ms left, against 10 ms x 2
    assert not forked.cheaper_than_workers(30)  # 30 ms left
    assert not forked.cheaper_than_workers(None)  # no length: the workers take it
    assert forked.maximum() == 2  # the next chunk fills the 2 ms budget
    four = caller.CallerWorker(_job(), lambda: b"", caller.START_SECONDS["fork"], "fork", workers=4)
    four._per_item = 0.001
    # Four workers would take a third less of it each: 13 ms left is kept only below 10 x 4/3.
    assert four.cheaper_than_workers(13) and not four.cheaper_than_workers(14)
    spawned = caller.CallerWorker(_job(), lambda: b"", caller.start_seconds("spawn"), "spawn", workers=2)
    spawned._per_item = 0.001
    assert spawned.cheaper_than_workers(150) and not spawned.cheaper_than_workers(250)
    # Nothing measured yet: the caller goes on with its budget.
    assert not caller.CallerWorker(_job(), lambda: b"").cheaper_than_workers(1)


def test_the_caller_decides_only_on_a_chunk_long_enough_to_measure() -> None:
    """A chunk of a few trivial iterations (0.03 ms) measures its own fixed costs more than
    them: past its budget the caller runs one more chunk before it hands the loop over, unless
    it has spent 8 ms already; a chunk of 0.2 ms or more is measured well enough."""
    worker = caller.CallerWorker(_job(), lambda: b"", caller.START_SECONDS["fork"], "fork", workers=2)
    worker._per_item, worker._timed, worker.spent = 2e-6, 0.00003, 0.003
    assert not worker.within_budget and worker.measuring
    assert not worker.cheaper_than_workers(200_000)
    worker._timed = 0.0002
    assert not worker.measuring
    worker._timed, worker.spent = 0.00003, 0.008
    assert not worker.measuring


def _job() -> Any:
    """A real job of a marked loop, for a CallerWorker whose rule is under test."""
    from paraloop.execute import Job

    return Job(
        function=lambda: None,
        params=(),
        values=(),
        tracked=frozenset(),
        wrapped=frozenset(),
        stored=(),
        after=frozenset(),
        filename="loop.py",
        line=1,
    )


@pytest.mark.usefixtures("caller_on")
def test_the_caller_runs_the_first_iterations_and_the_workers_the_rest(load_module: Loader) -> None:
    """400 iterations of 1 ms: longer than the caller would keep even where workers cost most to
    start (a fork server not running yet, 130 ms, twice that kept: 200 of them were kept so when
    this test ran alone under forkserver)."""
    module = load_module(PIDS)
    pids = module.run(400)
    assert len(pids) == 400
    here = [n for n, pid in enumerate(pids) if pid == os.getpid()]
    assert here and here[0] == 0  # the first iteration ran in the caller
    # About 3 ms of 1 ms iterations, and maybe a chunk while the workers started.
    assert len(here) < 60
    assert set(pids) - {os.getpid()}  # the rest went to worker processes


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    "how",
    ["option", "config", "environment"],
)
def test_caller_runs_false_keeps_every_iteration_in_workers(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    module = load_module(PIDS)
    if how == "option":
        pids = module.run(30, caller_runs=False)
    elif how == "config":
        with paraloop.config(caller_runs=False):
            pids = module.run(30)
    else:
        monkeypatch.setenv("PARALOOP_CALLER_RUNS", "0")
        pids = module.run(30)
    assert len(pids) == 30
    assert os.getpid() not in pids


@pytest.mark.usefixtures("caller_on")
def test_the_variable_overrides_the_code(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_module(PIDS)
    monkeypatch.setenv("PARALOOP_CALLER_RUNS", "1")
    assert module.run(5, caller_runs=False)[0] == os.getpid()


@pytest.mark.usefixtures("caller_on")
def test_bad_settings_are_refused_with_the_choices(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_module(PIDS)
    with pytest.raises(paraloop.ParaLoopError, match=r"caller_runs='yes': give False"):
        module.run(3, caller_runs="yes")
    monkeypatch.setenv("PARALOOP_CALLER_RUNS", "2")
    with pytest.raises(paraloop.ParaLoopError, match=r"PARALOOP_CALLER_RUNS='2': give 0"):
        module.run(3)


STAYS = """
    import os, time
    import paraloop
    from paraloop import ParaLoop

    def with_timeout():
        pids = []
        for i in ParaLoop(range(8), num_processes=2, timeout=60):
            pids.append(os.getpid())
        return pids

    def recycled():
        pids = []
        for i in ParaLoop(range(8), num_processes=2, max_iterations_per_worker=100):
            pids.append(os.getpid())
        return pids

    def changes_directory(where):
        pids = []
        for i in ParaLoop(range(8), num_processes=2):
            os.chdir(where)
            pids.append(os.getpid())
        return pids

    def seeded():
        import random
        pids = []
        for i in ParaLoop(range(8), num_processes=2):
            random.seed(i)
            pids.append((os.getpid(), random.random()))
        return pids

    def with_a_handle_somewhere():
        handle = paraloop.per_worker(dict)
        pids = []
        for i in ParaLoop(range(8), num_processes=2):
            pids.append(os.getpid())
        del handle
        return pids
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    "loop", ["with_timeout", "recycled", "changes_directory", "seeded", "with_a_handle_somewhere"]
)
def test_loops_that_must_stay_in_workers_do(load_module: Loader, loop: str, tmp_path: Path) -> None:
    """timeout= (an iteration in the caller cannot be stopped), max_iterations_per_worker, a body
    that changes process-wide state, and a program that holds per-worker objects."""
    module = load_module(STAYS)
    here = os.getcwd()
    try:
        found = getattr(module, loop)(*([str(tmp_path)] if loop == "changes_directory" else []))
    finally:
        os.chdir(here)
    pids = [each[0] if isinstance(each, tuple) else each for each in found]
    assert len(pids) == 8
    assert os.getpid() not in pids
    assert os.getcwd() == here


HELPER_CHANGES_STATE = """
    import os, time
    from paraloop import ParaLoop

    def mark(i):
        os.environ["PARALOOP_TEST_MARK"] = str(i)

    def run():
        pids = []
        for i in ParaLoop(range(40), num_processes=2):
            if i == 0:
                mark(i)
            time.sleep(0.001)
            pids.append(os.getpid())
        return pids
"""


@pytest.mark.usefixtures("caller_on")
def test_a_process_wide_change_in_the_caller_sends_the_rest_to_the_workers(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change could not be seen before the loop ran (a function the body calls): it
    happened in the caller, as in the plain loop; the caller ends the chunk it runs (at its
    2 ms budget) and runs no more chunks."""
    monkeypatch.delenv("PARALOOP_TEST_MARK", raising=False)
    module = load_module(HELPER_CHANGES_STATE)
    pids = module.run()
    here = [pid == os.getpid() for pid in pids]
    assert here[0]
    first_elsewhere = here.index(False)
    assert not any(here[first_elsewhere:]), here
    assert first_elsewhere < caller.FIRST_ITEMS
    assert os.environ.pop("PARALOOP_TEST_MARK") == "0"


@pytest.mark.usefixtures("caller_on")
def test_the_caller_runs_a_chunk_as_a_worker_does(load_module: Loader) -> None:
    """Captured values: a change the loop cannot combine is refused as in a worker; an object
    that cannot be sent to a worker is refused however short the loop; a nested loop runs
    sequentially; an item changed in place is the caller's item afterwards."""
    module = load_module("""
        import threading
        from paraloop import ParaLoop

        seen = []
        def note(x):
            seen.append(x)

        def changes_a_captured_list():
            for i in ParaLoop(range(3)):
                note(i)

        def uses_a_lock():
            lock = threading.Lock()
            total = 0
            for i in ParaLoop(range(2)):
                with lock:
                    total += i
            return total

        def nested():
            total = 0
            for i in ParaLoop(range(4)):
                for j in ParaLoop(range(3)):
                    total += i * j
            return total

        def changes_items():
            items = [{"n": n} for n in range(5)]
            for item in ParaLoop(items):
                item["square"] = item["n"] ** 2
            return items
    """)
    with pytest.raises(paraloop.ParaLoopError, match="seen"):
        module.changes_a_captured_list()
    with pytest.raises(paraloop.ParaLoopError, match=r"'lock'.*backend='threads'"):
        module.uses_a_lock()
    assert module.nested() == sum(i * j for i in range(4) for j in range(3))
    assert module.changes_items() == [{"n": n, "square": n * n} for n in range(5)]


CRASH = """
    import os
    from paraloop import ParaLoop, WorkerCrashedError
    try:
        for i in ParaLoop(range(4), num_processes=2):
            if i == 0:
                os._exit(7)
    except WorkerCrashedError:
        print("WorkerCrashedError")
"""


def test_a_crash_in_an_iteration_the_caller_runs_ends_the_program(tmp_path: Path) -> None:
    """The documented difference: as the plain loop would, rather than WorkerCrashedError.
    caller_runs=False (here PARALOOP_CALLER_RUNS=0) keeps it in a worker."""
    ended = _script(tmp_path, CRASH)
    assert ended.returncode == 7
    assert ended.stdout == ""
    kept = _script(tmp_path, CRASH, PARALOOP_CALLER_RUNS="0")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == "WorkerCrashedError"


DIFFERENTIAL = """
    from collections import defaultdict
    from paraloop import ParaLoop

    def run(items, chunksize, stop):
        total = 0.0
        count = 0
        out = []
        groups = defaultdict(list)
        last = None
        for i, x in ParaLoop(list(enumerate(items)), chunksize=chunksize, num_processes=2):
            if x == stop:
                break
            total += x * 0.1
            count += 1
            out.append(x * x)
            groups[x % 3].append(i)
            last = x
        else:
            last = "no break"
        return total, count, out, dict(groups), last
"""


def _marked_module(tmp_path_factory: pytest.TempPathFactory, name: str, source: str) -> Iterator[ModuleType]:
    """A marked module of ``source`` named ``name``, imported for the tests of one file."""
    import importlib

    folder = tmp_path_factory.mktemp(name)
    (folder / f"{name}.py").write_text("# paraloop: enable\n" + textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def differential(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _marked_module(tmp_path_factory, "caller_differential", DIFFERENTIAL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(st.integers(-50, 50), max_size=60),
    chunksize=st.sampled_from([None, 1, 3, 7]),
    stop=st.integers(-60, 60),
    in_caller=st.integers(0, 4),
)
def test_any_number_of_chunks_in_the_caller_gives_the_plain_result(
    differential: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    items: list[int],
    chunksize: int | None,
    stop: int,
    in_caller: int,
) -> None:
    """Whichever chunks the caller runs before the workers take over (none to four), the
    floats have the plain loop's bits and the rest is the plain loop's."""
    monkeypatch.setenv("PARALOOP_CALLER_RUNS", "1")
    runs = {"left": in_caller}

    def within_budget(self: Any) -> bool:
        runs["left"] -= 1
        return runs["left"] >= 0

    monkeypatch.setattr(caller.CallerWorker, "within_budget", property(within_budget))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        expected = run_plain(DIFFERENTIAL)["run"](items, chunksize, stop)
    assert differential.run(items, chunksize, stop) == expected


WAITING = """
    import threading, time
    from paraloop import ParaLoop

    def run():
        lanes = []
        # Enough of them that the caller never keeps them all, even when a loaded machine makes
        # an iteration's own time look short (its time queued for a CPU is not counted).
        # The first (the caller's) 300 ms asleep: on a loaded machine, the time an iteration
        # waits for a CPU once it wakes stays a small share of it (the caller judges from it);
        # the rule's arithmetic is test_lanes_policy's.
        for i in ParaLoop(range(200)):
            time.sleep(0.3 if i == 0 else 0.05)
            lanes.append(threading.current_thread().name.startswith("paraloop-lane"))
        return lanes
"""


@pytest.mark.usefixtures("caller_on")
def test_iterations_that_wait_in_the_caller_start_the_workers_in_lanes(load_module: Loader) -> None:
    """The caller's first iteration waited (50 ms asleep): the workers' first chunks already
    run in lanes (threads), rather than one iteration each while they find out themselves."""
    lanes = load_module(WAITING).run()
    assert lanes[0] is False  # in the caller
    assert all(lanes[1:4])  # the next iterations: the first chunks the workers got


CUT = """
    from paraloop import ParaLoop

    def run(rows, stop):
        total = 0.0
        seen = []
        for row in ParaLoop(rows, num_processes=2):
            if row[0] == stop:
                break
            total += row[0] * 0.1
            row.append(row[0] * 2)  # changed in place: written back into the caller's row
            seen.append(row[0])
        return total, seen, rows
"""


@pytest.fixture(scope="module")
def cut_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _marked_module(tmp_path_factory, "caller_cut", CUT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.integers(-20, 20), max_size=40),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    stop=st.integers(-30, 30),
)
def test_caller_chunks_stopped_at_their_deadline_give_the_plain_result(
    cut_module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    values: list[int],
    cuts: list[int],
    stop: int,
) -> None:
    """A chunk of the caller's that stops at its deadline hands its items left back to the loop:
    wherever the chunks stop, every item runs once, in order for the floats, and the items'
    changes come back."""
    from paraloop import execute

    monkeypatch.setenv("PARALOOP_CALLER_RUNS", "1")
    left = list(cuts)

    # Each caller's chunk stops after the next number of items in ``cuts`` (then at its end).
    def cut_blocks(self: Any) -> Any:
        for position in range(len(self.items)):
            if left and position == left[0]:
                left.pop(0)
                return
            self.inner = iter(self.items[position : position + 1])
            self.block_end = position + 1
            yield self.inner

    monkeypatch.setattr(execute.Until, "_blocks", cut_blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        expected = run_plain(CUT)["run"]([[v] for v in values], stop)
    assert cut_module.run([[v] for v in values], stop) == expected


TRIVIAL_SUM = """
    from paraloop import ParaLoop
    def run(n):
        total = 0
        for i in ParaLoop(range(n), num_processes=2):
            total += i * i
        return total
"""


def _spy_on_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every chunk the loop's chunker hands out, in order; workers made to look
    too expensive to start, so that the caller keeps what it measured it may keep."""
    from paraloop import chunks
    from paraloop.backends.processes import dispatch

    for method in caller.START_SECONDS:
        monkeypatch.setitem(caller.START_SECONDS, method, 1e6)
    # The idle workers an earlier test left, too.
    monkeypatch.setattr(dispatch, "READY_SECONDS", 1e6)
    sizes: list[int] = []
    original = chunks.Chunker._next

    def spy(self: chunks.Chunker, *args: Any) -> Any:
        chunk = original(self, *args)
        if chunk is not None:
            sizes.append(len(chunk.items))
        return chunk

    monkeypatch.setattr(chunks.Chunker, "_next", spy)
    return sizes


@pytest.mark.usefixtures("caller_on")
def test_a_loop_the_caller_keeps_is_kept_once_a_chunk_measured_it(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten 1 ms iterations: the first chunk takes all ten, and at its 2 ms budget the two that
    ran measured them well enough to tell that the caller keeps the loop: the chunk goes on to
    the end, one chunk (it stopped, and the rest followed in a second one: 0.3-0.5 ms more).
    Only if the first iteration alone passed the budget (a busy machine), which may carry
    one-off costs, does the chunk stop; the rest then go in one chunk at once, not in chunks of
    what is left of the budget first (1, 1, 8: each chunk costs the caller 0.1-0.3 ms)."""
    from paraloop import execute

    sizes = _spy_on_sizes(monkeypatch)
    ran_at_budget: list[int] = []
    original = execute.Until._kept

    def spy(self: execute.Until, seconds: float, ran: int, left: int) -> bool:
        ran_at_budget.append(ran)
        return original(self, seconds, ran, left)

    monkeypatch.setattr(execute.Until, "_kept", spy)
    module = load_module(PIDS)
    assert module.run(10) == [os.getpid()] * 10
    assert sizes[0] == 10, sizes
    if ran_at_budget[0] > 1:
        assert sizes == [10], (sizes, ran_at_budget)
    else:
        # The rest, nine (a chunk of what is left of the budget would be one or two); a third
        # chunk only if a busy machine made that one pass twice its expected time.
        assert 2 < sizes[1] < 10, (sizes, ran_at_budget)


@pytest.mark.usefixtures("caller_on")
def test_a_loop_of_a_few_quick_iterations_is_one_chunk_in_the_caller(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten trivial iterations over a range: one chunk, not one of a single item to time them and
    another for the rest (each chunk costs the caller a tenth of a millisecond or more).  (A
    budget of a second: a busy machine may stop a process for the 3 ms of the suite's.)"""
    monkeypatch.setattr(caller, "CALLER_SECONDS", 1.0)
    sizes = _spy_on_sizes(monkeypatch)
    module = load_module(TRIVIAL_SUM)
    assert module.run(10) == sum(i * i for i in range(10))
    assert sizes == [10]


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(("kind", "first"), [("range", 300), ("list", caller.FIRST_ITEMS)])
def test_the_callers_first_chunk_of_a_range_holds_more_items(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, kind: str, first: int
) -> None:
    """A range's slices pickle in a few bytes, however long: its first chunk takes up to
    FIRST_RANGE_ITEMS (1,024) items, so 300 trivial iterations are one chunk; a list's slice is
    pickled item by item, and its first chunk stays at FIRST_ITEMS.  (A budget of a second, as
    above.)"""
    monkeypatch.setattr(caller, "CALLER_SECONDS", 1.0)
    sizes = _spy_on_sizes(monkeypatch)
    module = load_module(
        """
        from paraloop import ParaLoop

        def run(items):
            total = 0
            for i in ParaLoop(items, num_processes=2):
                total += i * i
            return total
        """
    )
    items = range(300) if kind == "range" else list(range(300))
    assert module.run(items) == sum(i * i for i in range(300))
    assert sizes[0] == first, sizes


@pytest.mark.usefixtures("caller_on")
def test_the_callers_budget_counts_from_the_first_iteration_not_the_chunks_setup(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's setup (a loop's first looks at the captured objects and the program's modules,
    slow on a busy machine) is no iteration's time: a setup of 20 ms, past the 3 ms budget,
    still leaves the ten trivial iterations one chunk (it gave back nine)."""
    from paraloop import module_stores

    original = module_stores.snapshot

    def slow_snapshot(*args: Any) -> Any:
        time.sleep(0.02)
        return original(*args)

    monkeypatch.setattr(module_stores, "snapshot", slow_snapshot)
    sizes = _spy_on_sizes(monkeypatch)
    module = load_module(TRIVIAL_SUM)
    assert module.run(10) == sum(i * i for i in range(10))
    assert sizes == [10]


FIRST_SLOW = """
    import os, time
    from paraloop import ParaLoop
    def run(n):
        pids = []
        for i in ParaLoop(range(n), num_processes=2):
            if i == 0:
                time.sleep(0.1)  # a first iteration's one-off cost; the rest are trivial
            pids.append(os.getpid())
        return pids
"""


@pytest.mark.usefixtures("caller_on")
def test_a_slow_first_iteration_alone_does_not_hand_the_loop_over(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's first iteration may carry one-off costs (a first call's caches, a first
    connection): one that passed the budget alone is not the measure of the rest.  The caller
    times another before it decides, and keeps 999 trivial iterations that 0.1 s each would have
    sent to workers (started, here, in 10 s, with a measuring limit of 1 s: the rest must take
    the caller under 20 s, which a busy machine's trivial iterations do, each timed with its
    chunk's costs; 0.1 ms sleeps and a 2 s margin failed under CI's load)."""
    from paraloop.backends.processes import dispatch

    for method in caller.START_SECONDS:
        monkeypatch.setitem(caller.START_SECONDS, method, 10.0)
    monkeypatch.setattr(caller, "FORK_SERVER_SECONDS", 0.0)
    monkeypatch.setattr(caller, "IMPORT_SECONDS", 0.0)
    monkeypatch.setattr(caller, "MEASURE_LIMIT", 1.0)
    monkeypatch.setattr(dispatch, "READY_SECONDS", 10.0)
    module = load_module(FIRST_SLOW)
    assert module.run(1000) == [os.getpid()] * 1000


def test_starting_the_first_workers_counts_importing_multiprocess() -> None:
    """Where multiprocess is not imported yet (see pool.py's imports on demand), starting
    spawn or forkserver workers costs its import too: the caller weighs it before handing a
    loop over.  Fork workers need no multiprocess (see forked.py): their cost is the same
    before and after."""
    program = (
        "import sys\n"
        "from paraloop.backends.processes import caller\n"
        "before = caller.start_seconds('spawn'), caller.start_seconds('fork')\n"
        "import multiprocess\n"
        "print(before[0] - caller.start_seconds('spawn'), caller.IMPORT_SECONDS,"
        " before[1] - caller.start_seconds('fork'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n" + program],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    difference, seconds, forked = map(float, result.stdout.split())
    assert difference == pytest.approx(seconds) and seconds > 0
    assert forked == 0


SLOW_FIRST = """
    import os, time
    from paraloop import ParaLoop
    def run(items, seconds):
        pids = []
        for item in ParaLoop(items, num_processes=2):
            time.sleep(seconds)
            pids.append((item, os.getpid()))
        return pids
"""


@pytest.mark.usefixtures("caller_on")
def test_the_callers_first_chunk_stops_at_the_budget_when_the_iterations_are_slow(
    load_module: Loader,
) -> None:
    """The caller's first chunk takes up to FIRST_ITEMS of a sequence before any iteration was
    timed; iterations of 50 ms pass its 2 ms budget at the first, so the caller runs that one
    and the other fifteen go to the workers, in order."""
    module = load_module(SLOW_FIRST)
    items = list(range(caller.FIRST_ITEMS))
    result = module.run(items, 0.05)
    assert [item for item, _ in result] == items
    assert [pid == os.getpid() for _, pid in result] == [True] + [False] * (len(items) - 1)


@pytest.mark.usefixtures("caller_on")
def test_the_callers_first_chunk_reads_one_item_of_an_iterator(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An iterator may yield slowly (lines from a socket, a generator that waits): the caller's
    first chunk reads one item of it, not FIRST_ITEMS, before the first iteration runs."""
    sizes = _spy_on_sizes(monkeypatch)
    module = load_module(SLOW_FIRST)
    result = module.run(iter(range(5)), 0.0)
    assert [item for item, _ in result] == list(range(5))
    assert sizes[0] == 1, sizes


@pytest.mark.usefixtures("caller_on")
def test_a_loop_the_caller_finishes_takes_what_is_left_in_one_chunk(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop the caller keeps (workers made to look expensive to start) is cut for the caller,
    not for workers: what is left goes in one chunk, past the chunker's MAX_CHUNK (65,536), since
    each chunk costs the caller a tenth of a millisecond or more. 200,000 trivial iterations took
    8 chunks (1, 16, 256, 4096, ..., 65536, 65536, ...), now 4 or so."""
    from paraloop import chunks

    sizes = _spy_on_sizes(monkeypatch)
    module = load_module(TRIVIAL_SUM)
    assert module.run(200_000) == sum(i * i for i in range(200_000))
    assert sizes[0] == caller.FIRST_RANGE_ITEMS
    assert max(sizes) > chunks.MAX_CHUNK, sizes


SLOW_IN_WORKERS = """
    import os, time
    from paraloop import ParaLoop

    def run(n, caller):
        pids = []
        for i in ParaLoop(range(n), num_processes=2):
            # Quick in the caller; a worker's iterations take long, so its first chunk of the
            # loop answers late.
            time.sleep(0.0003 if os.getpid() == caller else 0.03)
            pids.append(os.getpid())
        return pids

    def start_workers():
        for i in ParaLoop(range(4), num_processes=2, caller_runs=False):
            pass
"""


@pytest.mark.usefixtures("caller_on")
def test_the_caller_runs_chunks_until_idle_workers_answer_in_this_loop(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers an earlier loop started (idle, they answered before) still take milliseconds to
    answer a loop's first chunks (the job to load first): the caller runs chunks meanwhile,
    beyond its own first ones, as it does while new workers start.  (A budget of 20 ms: the
    caller's iterations of 0.3 ms count as quick, under a quarter of it, on a busy machine too;
    300 of them outlast it.)"""
    monkeypatch.setattr(caller, "CALLER_SECONDS", 0.02)
    module = load_module(SLOW_IN_WORKERS)
    module.start_workers()
    meanwhile: list[int] = []
    original = caller.CallerWorker.run

    def spy(self: caller.CallerWorker, chunk: Any, chunker: Any, in_order: bool = False) -> Any:
        if not in_order:
            meanwhile.append(len(chunk.items))
        return original(self, chunk, chunker, in_order)

    monkeypatch.setattr(caller.CallerWorker, "run", spy)
    pids = module.run(300, os.getpid())
    assert len(pids) == 300
    assert meanwhile, "no chunk ran in the caller while the idle workers had their first ones"
    assert pids.count(os.getpid()) > 0 and len(set(pids)) > 1, pids


@pytest.mark.usefixtures("caller_on")
def test_a_first_chunk_of_an_iterator_with_a_chunksize_runs_whole(load_module: Loader) -> None:
    """``chunksize=7`` over an iterator: the caller's first chunk holds seven items, whose time
    passes the budget.  Its deadline stopped it there, and the items left could not go back to an
    iterator (an internal AssertionError, "not a chunk to give back", which the translated
    joblib example parallel_memmap_write_output_in_body met on a loaded machine): it runs whole."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def run(n):
            out = []
            for i, x in ParaLoop(enumerate(range(n)), num_processes=2, chunksize=7):
                time.sleep(0.001)
                out.append(i + x)
            return out
    """)
    assert module.run(40) == [2 * i for i in range(40)]
