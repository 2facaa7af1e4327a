"""Adversarial cases against four changes of one day: the caller keeping a loop it would finish
sooner than workers, the import hook's cache validated from the source's stat, dill chosen by the
pickle opcode naming ``__main__``, and no lanes probe once a loop is ending.

Each test runs what a user could write and asserts what the docs promise for it. Tests marked
``xfail(strict=True)`` fail today; their reason says what goes wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import run_script, use_backend

Loader = Callable[..., ModuleType]

# 1. The caller keeps a loop it would finish sooner than workers. ----------------------------------

SLOW_AFTER_FAST = """\
# paraloop: enable
import os
import time

from paraloop import ParaLoop

N, SLOW_FROM, SLOW = 16000, 6000, 0.0003
me = os.getpid()
pids = []
stamps = []
for i in ParaLoop(range(N)):
    if i >= SLOW_FROM:
        end = time.perf_counter() + SLOW
        while time.perf_counter() < end:
            pass
    pids.append(os.getpid())
    stamps.append(time.monotonic())
assert len(pids) == N
# The slow iterations the caller ran before any worker ran one: those ran serially.
workers = [t for t, pid in zip(stamps, pids) if pid != me]
first = min(workers) if workers else float("inf")
serial = sum(1 for i, (t, pid) in enumerate(zip(stamps, pids)) if i >= SLOW_FROM and pid == me and t < first)
print("serial slow seconds in the caller", round(serial * SLOW, 3))
"""


def test_iterations_turning_slow_are_handed_over_soon(tmp_path: Path) -> None:
    """caller.py: the caller's chunks are sized from the iterations before them, and stop at
    twice their expected time.  10,000 iterations of 0.3 ms after 6,000 quick ones: the caller
    runs a few milliseconds of the slow ones alone before the workers run them too (it ran all
    3 s of them, serially, when its chunk of 'quick' iterations ran to its end)."""
    script = tmp_path / "slow_after_fast.py"
    script.write_text(SLOW_AFTER_FAST)
    done = run_script(script, env={"PARALOOP_CALLER_RUNS": "1", "PARALOOP_START_METHOD": "fork"})
    assert done.returncode == 0, done.stderr
    seconds = float(done.stdout.split()[-1])
    assert seconds < 0.2, done.stdout


SHORT_LEN = """\
# paraloop: enable
import os
import time

from paraloop import ParaLoop


class Short(list):
    # A list that reports fewer items than it holds: iterating it (the built-in list iterator)
    # still yields all of them, as the plain loop does.
    def __len__(self):
        return 3


me = os.getpid()
pids = []
for x in ParaLoop(Short(range(2000)), num_processes=2):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    pids.append(os.getpid())
assert len(pids) == 2000, len(pids)
# Worker processes were started (the pool keeps them until the program ends): the caller did
# not keep the loop for itself.  (It may still run many of the iterations while they start.)
from paraloop.backends.processes.pool import worker_pids

print("workers", len(worker_pids()))
"""


def test_a_short_len_does_not_keep_the_whole_loop_in_the_caller(tmp_path: Path) -> None:
    """The caller keeps a loop only while what is left would take it less than the workers'
    start-up; 2,000 iterations of 1 ms are not that, whatever len() says."""
    script = tmp_path / "short_len.py"
    script.write_text(SHORT_LEN)
    done = run_script(script, env={"PARALOOP_CALLER_RUNS": "1", "PARALOOP_START_METHOD": "fork"})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 1, done.stdout


# Items of a list subclass: the plain loop's are what the built-in list iterator yields. -----------


@pytest.mark.parametrize("backend", ["fork", "threads", "dask"])
def test_list_subclass_with_its_own_getitem_iterates_as_the_plain_loop(
    backend: str, load_module: Loader, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """chunks.py cuts a list subclass that keeps list.__iter__ through list's own slicing (it
    sliced through the subclass's __getitem__, which may give other items)."""
    use_backend(backend, request, monkeypatch)
    module = load_module(
        """
        from paraloop import ParaLoop

        class Tens(list):
            def __getitem__(self, i):
                got = super().__getitem__(i)
                return [x * 10 for x in got] if isinstance(i, slice) else got * 10

        class TupleTens(tuple):
            def __getitem__(self, i):
                got = super().__getitem__(i)
                return tuple(x * 10 for x in got) if isinstance(i, slice) else got * 10

        class Short(list):
            def __len__(self):
                return 3

        plain, out = [], []
        for items in (Tens(range(50)), TupleTens(range(50)), Short(range(50))):
            plain.append([x for x in items])
            got = []
            for x in ParaLoop(items, num_processes=2):
                got.append(x)
            out.append(got)
        """
    )
    assert module.plain == [list(range(50))] * 3
    assert module.out == module.plain


# Functions of the script (__main__) travel by value. ----------------------------------------------

SINGLEDISPATCH = """\
# paraloop: enable
import functools

from paraloop import ParaLoop


@functools.singledispatch
def describe(x):
    return "thing"


@describe.register
def _(x: int):
    return "int"


@describe.register(list)
def _(x):
    # A recursive dispatch: the implementation calls the function being rebuilt.
    return "list of " + ",".join(describe(y) for y in x)


out = []
for x in ParaLoop([1, "a", 2.0, 3, [4, "b"]]):
    out.append(describe(x))
print(out, describe.__name__)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_singledispatch_function_of_the_script(method: str, tmp_path: Path) -> None:
    """serialize.py sends a singledispatch function of the script as its implementations (dill
    recursed without end on the function, and the loop was refused)."""
    script = tmp_path / "singledispatch_script.py"
    script.write_text(SINGLEDISPATCH)
    done = run_script(script, env={"PARALOOP_CALLER_RUNS": "0", "PARALOOP_START_METHOD": method})
    assert done.returncode == 0, done.stderr[-600:]
    assert done.stdout.split("\n")[0] == "['int', 'thing', 'thing', 'int', 'list of int,thing'] describe"


# Chunk sizes when iterations turn slow, workers only. ---------------------------------------------

# A chunk cut from quick iterations may hold many that turn slow; a worker runs it to its end
# (docs/performance.md says so).  The advice given there for a loop whose slow items come last
# works: a chunksize small enough for the slow ones spreads them over the workers.


def test_a_small_chunksize_spreads_iterations_that_turn_slow_over_the_workers(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    use_backend("fork", request, monkeypatch)  # the suite's PARALOOP_CALLER_RUNS=0: workers only
    module = load_module(
        """
        import os
        import time

        from paraloop import ParaLoop

        pids = []
        for i in ParaLoop(range(2000), num_processes=2, chunksize=50):
            if i >= 1000:
                end = time.perf_counter() + 0.003
                while time.perf_counter() < end:
                    pass
            pids.append(os.getpid())
        """
    )
    slow = module.pids[1000:]
    busiest = max(slow.count(pid) for pid in set(slow))
    assert busiest < 800, f"one worker ran {busiest} of the 1000 slow iterations"
