"""Two loops in two threads share a pool: one loop's lease must not close the pipes of a
worker the other loop holds.

Found by CI (stop 44, py313: ``test_pin_a_crash_with_max_iterations_per_worker[0]``): a
lease closed the pipes of every worker in the pool whose process had ended, the workers a
running loop held included.  A loop whose worker died, and had not yet seen it die, then
waited on a closed pipe and raised multiprocess's ``OSError: handle is closed`` instead of
its WorkerCrashedError.  The loop leases workers itself (``max_iterations_per_worker``
replaces them) and so does any other thread's loop; here another thread's loop leases
while the crashed worker's loop is pulling its next item, which makes the order certain.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import paraloop
from paraloop.backends.processes import pool as pool_module

Loader = Callable[..., ModuleType]

SOURCE = """
import os, threading, time
from paraloop import ParaLoop


def _ended(pid):
    # A child that exited stays a zombie until paraloop collects it: ended, either way.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _until(condition, what):
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited a minute for {what}")
        time.sleep(0.005)


def other_loop(method):
    total = 0
    for i in ParaLoop(range(6), num_processes=1, start_method=method):
        total += i
    return total


def items(path, method, others):
    yield 0
    # Item 0's worker writes its pid and exits; the loop pulls this item meanwhile.
    _until(path.exists, "item 0's worker")
    pid = int(path.read_text())
    _until(lambda: _ended(pid), f"worker {pid} to end")
    # Another thread's loop leases a worker from the same pool while this loop, which has not
    # yet seen its worker die, holds it.
    thread = threading.Thread(target=lambda: others.append(other_loop(method)))
    thread.start()
    thread.join()
    yield 1
    yield 2


def crashing(path, method, others):
    done = []
    for i in ParaLoop(items(path, method, others), num_processes=2, chunksize=1, start_method=method):
        if i == 0:
            path.with_suffix(".tmp").write_text(str(os.getpid()))
            path.with_suffix(".tmp").rename(path)
            os._exit(4)
        done.append(i)
    return done
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_another_threads_lease_leaves_a_loops_dead_worker_to_that_loop(
    load_module: Loader, tmp_path: Path, method: str
) -> None:
    module = load_module(textwrap.dedent(SOURCE))
    others: list[int] = []
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.crashing(tmp_path / "pid", method, others)
    message = str(caught.value)
    assert "exited with code 4" in message, message
    assert "iteration 0" in message, message
    # The other thread's loop ran to its end meanwhile.
    assert others == [sum(range(6))]
    # The pool works on, and holds no worker of the crashed loop.
    assert module.other_loop(method) == sum(range(6))
    pool = pool_module.get_pool(method)
    assert all(worker.process.is_alive() for worker in pool.workers)
    assert all(worker.lease is None for worker in pool.workers)
