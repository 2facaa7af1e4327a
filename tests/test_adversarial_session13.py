"""Adversarial probes of a dead worker's chunk raised in chunk order (processes backend).

Written against the change that made a dead worker's earliest chunk an outcome at its first
iteration (dispatch.lose, endings.lost): the runtime raises its WorkerCrashedError once the
chunks before it are combined, so tracked state holds every iteration before the lost chunk.

Findings (the tests fail on the code they were written against):

- A worker found dead twice in one round of the dispatcher (a chunk sent to it failed with a
  broken pipe while the round's other worker's outcome was handled, then its own pipe or
  sentinel, ready in the same wait, was read) raised a second WorkerCrashedError at once, out
  of chunk order, saying it died "while running no iterations of the loop".
- With ``timeout=``, a later iteration's timeout was raised at once while the chunks before a
  lost chunk (or before an iteration's exception) still ran: the user saw an
  IterationTimeoutError for an iteration the plain loop never reaches, and tracked state
  missed iterations the plain loop had run.

The other tests pin what the change got right: the earliest of two crashes wins, an earlier
iteration's exception, ``break`` or ``return`` wins over a later crash, comprehensions and
generator expressions, lanes, an endless iterable, ``max_iterations_per_worker``, a worker
killed from outside, and Ctrl-C while the caller waits for the chunks before a lost one.  Each
also checks the next loop and that no worker is left behind.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import run_program

import paraloop
from paraloop.backends.processes import dispatch

Loader = Callable[..., ModuleType]

PRELUDE = """\
import itertools, os, signal, threading, time
from paraloop import ParaLoop
"""


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Default settings: no backend, start method, worker count or lanes setting from the environment."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES", "PARALOOP_START_METHOD"):
        monkeypatch.delenv(name, raising=False)
    return None


def _load(load_module: Loader, body: str) -> ModuleType:
    return load_module(PRELUDE + textwrap.dedent(body))


def _first_lost(error: BaseException) -> int:
    """The first iteration a WorkerCrashedError names as lost."""
    held = re.search(r"while running iterations? (\d+)", str(error))
    assert held is not None, f"the error names no iteration: {error}"
    return int(held.group(1))


@pytest.fixture(params=["caller", "workers"])
def caller_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The product's default (the caller runs the first chunks), and caller_runs=False."""
    if request.param == "caller":
        monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
        return True
    monkeypatch.setenv("PARALOOP_CALLER_RUNS", "0")
    return False


# --- Finding: a worker lost twice in one round ------------------------------------------------

LANES_CRASH = """
    def run(k, done):
        for i in ParaLoop(range(400)):
            time.sleep(0.01)
            if i == k:
                os._exit(4)
            done.append(i)
"""


def test_a_worker_found_dead_twice_in_one_round_is_lost_once(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FINDING.  A loop that waits runs in lanes; one worker dies while its first lanes chunk runs,
    and the parent sees it together with the other worker's outcome (a parent woken late: the
    waits below see, at once, everything that happened in 50 ms, as a loaded machine's do).

    That outcome lets each worker hold a second chunk; the one sent to the dead worker failed
    (a broken pipe), which lost the worker and queued its chunks' WorkerCrashedError.  Then the
    same round read the dead worker's pipe, ready since its death: lost a second time, it held
    nothing any more, and the loop raised at once, out of chunk order, that the worker died
    "while running no iterations of the loop".  The user must see the iterations it held
    (those of iteration ``k``), and tracked state every iteration before them."""
    monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)  # the product's default
    real_wait = dispatch.wait

    def woken_late(objects: list[Any], timeout: float | None = None) -> list[Any]:
        ready = real_wait(objects, timeout)
        if ready:
            time.sleep(0.05)
            ready = real_wait(objects, 0)
        return ready

    monkeypatch.setattr(dispatch, "wait", woken_late)
    module = _load(load_module, LANES_CRASH)
    for k in (42, 46, 50, 54, 58):
        done: list[int] = []
        with pytest.raises(paraloop.WorkerCrashedError, match="exited with code 4") as caught:
            module.run(k, done)
        first = _first_lost(caught.value)
        assert first <= k, str(caught.value)
        assert done == list(range(first)), (k, first, len(done))
    monkeypatch.setattr(dispatch, "wait", real_wait)
    done = []
    module.run(1000, done)
    assert done == list(range(400))


# --- Finding: a later iteration's timeout wins over an earlier lost chunk ----------------------

TIMEOUT_AFTER = """
    done = []
    def run():
        for i in ParaLoop(range(12), num_processes=3, chunksize=2, timeout=2.0):
            if i in (0, 1):
                time.sleep(1.2)
            if i == 2:
                {failure}
            if i == 4:
                time.sleep(60)
            done.append(i)
"""


def test_a_later_timeout_does_not_hide_an_earlier_crash(load_module: Loader) -> None:
    """FINDING.  Three workers hold iterations 0-1 (1.2 s each, within the timeout), 2-3 (the
    worker dies at 2) and 4-5 (iteration 4 runs for a minute).  The plain loop runs 0 and 1,
    then dies at 2: the user must see the WorkerCrashedError of iterations 2 to 3 once 0 and 1
    are combined.  The crash now waits for iterations 0-1 (2.4 s), and meanwhile iteration 4
    passed its timeout (2 s), which was raised at once: an IterationTimeoutError for an
    iteration the plain loop never reaches, the crash unmentioned, and ``done`` empty where the
    plain loop had run 0 and 1.  (Before the change the crash was raised at once.)"""
    module = _load(load_module, TIMEOUT_AFTER.format(failure="os._exit(4)"))
    began = time.monotonic()
    with pytest.raises(paraloop.ParaLoopError) as caught:
        module.run()
    assert time.monotonic() - began < 30
    assert type(caught.value) is paraloop.WorkerCrashedError, repr(caught.value)
    assert "iterations 2 to 3" in str(caught.value)
    assert module.done == [0, 1]


def test_a_later_timeout_does_not_hide_an_earlier_exception(load_module: Loader) -> None:
    """FINDING (the same ordering, older than the change: the crash above now takes the path an
    iteration's exception took).  Iteration 2 raises ValueError; the plain loop (and
    backend='sequential' with the same timeout) raises it with ``done == [0, 1]``.  The processes
    backend raised iteration 4's IterationTimeoutError, with ``done == []``."""
    module = _load(load_module, TIMEOUT_AFTER.format(failure="raise ValueError('two')"))
    with pytest.raises(Exception) as caught:
        module.run()
    assert type(caught.value) is ValueError, repr(caught.value)
    assert module.done == [0, 1]


# --- Passing pins ------------------------------------------------------------------------------

TWO_CRASHES = """
    done = []
    def run():
        for i in ParaLoop(range(20), num_processes=3, chunksize=1, lanes=False):
            if i == 1:
                time.sleep(1.0)
                os._exit(3)
            if i == 2:
                os._exit(4)
            done.append(i)
    def again():
        total = 0
        for i in ParaLoop(range(50), num_processes=3, caller_runs=False):
            total += i
        return total
"""


def test_pin_the_earliest_of_two_crashes_wins(load_module: Loader, caller_runs: bool) -> None:
    """PASSING PIN.  Iteration 2's worker dies first, iteration 1's a second later: the error is
    iteration 1's (exit code 3), raised within seconds, with ``done == [0]``; the pool runs the
    next loop."""
    module = _load(load_module, TWO_CRASHES)
    began = time.monotonic()
    with pytest.raises(paraloop.WorkerCrashedError, match=r"exited with code 3 while running iteration 1 "):
        module.run()
    assert time.monotonic() - began < 10
    assert module.done == [0]
    assert module.again() == sum(range(50))


EXCEPTION_BEFORE_CRASH = """
    done = []
    def run(lanes):
        for i in ParaLoop(range(20), num_processes=2, chunksize=1, lanes=lanes):
            if i == 1:
                time.sleep(0.5)
                raise KeyError(i)
            if i == 2:
                os._exit(4)
            done.append(i)
"""


@pytest.mark.parametrize("lanes", [False, True, None])
def test_pin_an_earlier_exception_wins_over_a_later_crash(
    load_module: Loader, caller_runs: bool, lanes: bool | None
) -> None:
    """PASSING PIN.  Iteration 2's worker dies while iteration 1 sleeps and then raises: the user
    sees iteration 1's KeyError, as in the plain loop, and ``done == [0]``."""
    module = _load(load_module, EXCEPTION_BEFORE_CRASH)
    with pytest.raises(KeyError):
        module.run(lanes)
    assert module.done == [0]


BREAK_AND_RETURN = """
    done = []
    def returns():
        for i in ParaLoop(range(20), num_processes=3, chunksize=1, lanes=False):
            if i == 1:
                time.sleep(0.4)
                os._exit(3)
            if i == 2:
                return "returned"
            done.append(i)
        return "end"
    def breaks():
        for i in ParaLoop(range(20), num_processes=3, chunksize=1, lanes=False):
            if i == 1:
                time.sleep(0.4)
                break
            if i == 2:
                os._exit(3)
            done.append(i)
        else:
            return "else"
        return ("broke", i)
"""


def test_pin_a_crash_before_a_return_and_a_break_before_a_crash(
    load_module: Loader, caller_runs: bool
) -> None:
    """PASSING PIN.  A crash at iteration 1 wins over a return at 2 (the plain loop dies first);
    a break at 1 wins over a crash at 2 (the plain loop never reaches it): no error."""
    module = _load(load_module, BREAK_AND_RETURN)
    with pytest.raises(paraloop.WorkerCrashedError, match="while running iteration 1 "):
        module.returns()
    assert module.done == [0]
    module.done.clear()
    assert module.breaks() == ("broke", 1)
    assert module.done == [0]


COMPREHENSIONS = """
    def f(x):
        if x == 1:
            time.sleep(0.5)
        if x == 3:
            os._exit(7)
        return x
    def listed():
        return [f(x) for x in ParaLoop(range(20), num_processes=2, chunksize=1, lanes=False)]
    def generated(got):
        for value in (f(x) for x in ParaLoop(range(20), num_processes=2, chunksize=1, lanes=False)):
            got.append(value)
"""


def test_pin_a_crash_in_a_comprehension_and_a_generator_expression(
    load_module: Loader, caller_runs: bool
) -> None:
    """PASSING PIN.  The list comprehension raises the crash of iteration 3; the generator
    expression yields 0, 1 and 2 first (iteration 1 asleep meanwhile), then raises it."""
    module = _load(load_module, COMPREHENSIONS)
    with pytest.raises(paraloop.WorkerCrashedError, match="exited with code 7 while running iteration 3 "):
        module.listed()
    got: list[int] = []
    with pytest.raises(paraloop.WorkerCrashedError, match="exited with code 7 while running iteration 3 "):
        module.generated(got)
    assert got == [0, 1, 2]


LANES_AND_MORE = """
    done = []
    def lanes(k):
        for i in ParaLoop(range(200)):
            time.sleep(0.01)
            if i == k:
                os._exit(4)
            done.append(i)
    def endless():
        for i in ParaLoop(itertools.count(), num_processes=2, caller_runs=False):
            if i == 5000:
                os._exit(4)
            if i > 5000 and i % 2 == 0:
                time.sleep(1000)
            done.append(i)
    def recycled(k):
        for i in ParaLoop(range(40), num_processes=2, chunksize=1, max_iterations_per_worker=2):
            time.sleep(0.05 if i % 3 else 0.2)
            if i == k:
                os._exit(4)
            done.append(i)
    def again():
        total = 0
        for i in ParaLoop(range(50), num_processes=2, caller_runs=False):
            total += i
        return total
"""


@pytest.mark.parametrize("k", [3, 37, 120])
def test_pin_a_crash_in_lanes_keeps_the_iterations_before_the_lost_chunk(
    load_module: Loader, caller_runs: bool, k: int
) -> None:
    """PASSING PIN.  Iterations that sleep run in lanes; a worker dies at iteration ``k``: the
    error names a chunk that holds ``k``, and ``done`` holds every iteration before it."""
    module = _load(load_module, LANES_AND_MORE)
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.lanes(k)
    first = _first_lost(caught.value)
    assert first <= k
    assert module.done == list(range(first))
    assert module.again() == sum(range(50))


def test_pin_a_crash_in_an_endless_loop(load_module: Loader) -> None:
    """PASSING PIN.  ``itertools.count()``, a crash at 5000 while later iterations sleep for
    ever: the error within seconds, and every iteration before the lost chunk in ``done``."""
    module = _load(load_module, LANES_AND_MORE)
    began = time.monotonic()
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.endless()
    assert time.monotonic() - began < 20
    first = _first_lost(caught.value)
    assert first <= 5000
    assert module.done == list(range(first))
    assert module.again() == sum(range(50))


@pytest.mark.parametrize("k", [0, 9, 10])
def test_pin_a_crash_with_max_iterations_per_worker(load_module: Loader, k: int) -> None:
    """PASSING PIN.  Workers replaced every two iterations; one dies at ``k``."""
    module = _load(load_module, LANES_AND_MORE)
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.recycled(k)
    first = _first_lost(caught.value)
    assert first <= k
    assert module.done == list(range(first))
    assert module.again() == sum(range(50))


KILLED_FROM_OUTSIDE = """\
# paraloop: enable
import os, re, signal, subprocess, threading, time
from paraloop import ParaLoop, WorkerCrashedError
from paraloop.backends.processes.pool import worker_pids

done = []

def killer():
    # Once a worker runs (a fork server's start takes a loaded machine past half a second).
    deadline = time.monotonic() + 60
    while not worker_pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(worker_pids()[-1], signal.SIGKILL)

threading.Thread(target=killer, daemon=True).start()
try:
    for i in ParaLoop(range(40), num_processes=2, chunksize=1):
        time.sleep(0.1)
        done.append(i)
except WorkerCrashedError as error:
    first = int(re.search(r"while running iterations? (\\d+)", str(error)).group(1))
    print("killed", "SIGKILL" in str(error), done == list(range(first)))
total = 0
for i in ParaLoop(range(50), num_processes=2):
    total += i
print("next", total == sum(range(50)))
"""

CTRL_C_AFTER_A_CRASH = """\
# paraloop: enable
import os, signal, subprocess, threading, time
from paraloop import ParaLoop

def interrupt():
    time.sleep(1.0)
    global sent
    sent = time.monotonic()
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
try:
    for i in ParaLoop(range(40), num_processes=2, chunksize=1, caller_runs=False):
        if i == 0:
            time.sleep(60)
        if i == 1:
            os._exit(3)
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - sent < 2)
# Every process below this one (a fork server's workers are its children), but the fork
# server and the resource tracker, which live as long as the program, and what has exited.
table = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,ppid=,stat=,args="], capture_output=True, text=True)
below = {}
for row in table.stdout.splitlines():
    pid, ppid, stat, args = row.split(None, 3)
    below.setdefault(int(ppid), []).append((int(pid), stat, args))
left, todo = [], [os.getpid()]
while todo:
    for pid, stat, args in below.get(todo.pop(), []):
        todo.append(pid)
        if "forkserver" in args or "resource_tracker" in args or args.startswith("ps ") or "Z" in stat:
            continue
        left.append(args[:80])
print("left", left)
"""


def test_pin_a_worker_killed_from_outside(tmp_path: Path) -> None:
    """PASSING PIN (paraloop's defaults, the caller runs the first chunks).  A thread of the
    program SIGKILLs a worker: WorkerCrashedError naming SIGKILL, tracked state up to the lost
    chunk, and the next loop runs."""
    script = tmp_path / "killed.py"
    script.write_text(KILLED_FROM_OUTSIDE)
    result = run_program(script)
    assert result.returncode == 0, result.stderr
    assert "killed True True" in result.stdout, result.stdout + result.stderr
    assert "next True" in result.stdout


def test_pin_ctrl_c_while_waiting_for_the_chunks_before_a_lost_one(tmp_path: Path) -> None:
    """PASSING PIN.  Iteration 1's worker dies while iteration 0 sleeps for a minute; Ctrl-C a
    second later raises KeyboardInterrupt at once, and no worker process is left."""
    script = tmp_path / "interrupted.py"
    script.write_text(CTRL_C_AFTER_A_CRASH)
    result = run_program(script)
    assert result.returncode == 0, result.stderr
    assert "interrupted True" in result.stdout, result.stdout + result.stderr
    assert "left []" in result.stdout, result.stdout
