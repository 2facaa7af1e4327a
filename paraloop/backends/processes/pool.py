"""The local process pool: workers on pipes, watched for death, leased to loops and reused.

A loop leases workers (:meth:`ProcessPool.lease`) and runs on them (dispatch.py); the pool
starts them (handle.py), discards those a loop stopped, and shuts them all down at exit.

Each worker has its own pipe and holds one chunk at a time, so the parent
always knows which iterations a worker holds, never blocks sending to a busy
worker (a worker receives while idle, so large chunks and large results
cannot deadlock the pipe), and notices a dead worker at once through its
process sentinel.  A worker running chunks in lanes (threads, for iterations
that wait) holds two: its main thread keeps receiving while lane threads
run, and the second chunk's parts start as the first one's lanes free up.
A worker's first chunk of a loop is watched (see watch.py): if
its iterations wait, the worker says so before the chunk ends, and its
answer, a chunk for lanes, is its second.
Workers still running chunks when a loop ends early
(a ``break``, an exception, a generator expression dropped half-way) are
terminated at once, so the rest of the loop is cancelled promptly; the pool
starts new workers when the next loop needs them.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ... import background_import, coverage_workers, log
from ...chunks import Chunker
from ...execute import Job, Outcome
from . import dispatch
from .caller import forking
from .handle import Worker, ctrl_c_held

__all__ = ["ProcessPool", "default_method", "get_pool", "shutdown_pools", "worker_pids"]


# How long a retired worker is waited for before the loop goes on without it, and how long
# those still ending are waited for at the program's exit before they are killed.
RETIRE_SECONDS = 0.5
RETIRED_AT_EXIT_SECONDS = 5.0


class ProcessPool:
    """Worker processes of one start method, grown on demand and reused by every loop."""

    def __init__(self, method: str | None) -> None:
        # multiprocess (and dill, which it imports) load when the first worker starts: a
        # program whose loops end in the caller never pays their 25-30 ms.
        self._asked = method
        self._context: Any = None
        self.workers: list[Worker] = []
        # Retired workers (max_iterations_per_worker) told to quit that had not ended yet.
        self.retiring: list[Worker] = []
        self.pid = os.getpid()
        self._numbers = itertools.count(1)
        # Reentrant: the garbage collector may finalize a loop (whose cleanup discards workers)
        # at any allocation, a lease's included, as may a signal handler that runs a loop.
        self._lock = threading.RLock()
        # The program exits (see shutdown): a loop still running, in a thread the exit does not
        # wait for, ends as that thread does, quietly (see closing).
        self.closed = False

    @property
    def context(self) -> Any:
        """multiprocess's context for the pool's start method (importing multiprocess)."""
        if self._context is None:
            background_import.joined()  # its import in a thread, if one started (see there)
            import multiprocess
            import multiprocess.util

            # After multiprocess.util registered its exit function, which terminates daemonic
            # children: at exit (last registered, first run) the workers are first asked to
            # quit, and flush what they printed.  Registered with the pool, before multiprocess
            # loaded on demand, it ran second, and the workers' prints were lost.
            _register_exit()
            self._context = multiprocess.get_context(self._asked)
        return self._context

    def _context_for(self, method: str) -> Any:
        """multiprocess's context to start a worker with ``method``; None for fork, whose
        workers paraloop forks itself (see forked.py)."""
        if method != "fork":
            return self.context
        _register_exit()
        return None

    @property
    def method(self) -> str:
        """The pool's start method: the one asked for, else multiprocess's default, told without
        importing it where that is known (see default_method)."""
        if self._context is not None:
            return str(self._context.get_start_method())
        if self._asked is not None:
            return self._asked
        default = None if "multiprocess" in sys.modules else default_method()
        return default if default is not None else str(self.context.get_start_method())

    def lease(
        self, count: int, loop_id: int, start: bool = True, before_fork: Callable[[], None] | None = None
    ) -> list[Worker]:
        """``count`` live workers that no other running loop holds, started if need be.

        With ``start=False``, only those already running (maybe fewer).  ``before_fork`` is
        called before each worker is started under fork (see native_threads.Hold).
        """
        with self._lock:
            self.closing()
            # Retired ones that ended, and idle ones that died (killed from outside): their
            # pipes are closed here, not left to the garbage collector.
            _drop_ended(self.retiring)
            _drop_ended(self.workers)
            free = [w for w in self.workers if w.lease is None]
            while start and len(free) < count:
                method = self.method
                with forking(method), ctrl_c_held():
                    if before_fork is not None and method == "fork":
                        before_fork()
                    worker = Worker(self._context_for(method), method, next(self._numbers))
                    self.workers.append(worker)
                free.append(worker)
            chosen = free[:count]
            for worker in chosen:
                worker.lease = loop_id
            return chosen

    def unlease(self, loop_id: int) -> None:
        """The workers leased to the loop ``loop_id`` are free again (a loop whose start was cut
        short: see dispatch.run)."""
        with self._lock:
            for worker in self.workers:
                if worker.lease == loop_id:
                    worker.lease = None

    def closing(self) -> None:
        """End the loop that asks, quietly, if the program exits: its workers are stopped.

        At its exit the program stops every worker (shutdown_pools), those of loops still
        running in daemon threads included, which the exit does not wait for.  The plain
        program's daemon thread ends there without a word; such a loop took its workers' end
        for a crash and printed a WorkerCrashedError for iterations that never failed.
        SystemExit ends a thread silently.
        """
        if self.closed:
            raise SystemExit("paraloop: the program exits, and its workers with it")

    def discard(self, worker: Worker) -> None:
        """Stop ``worker`` at once (it may be running a chunk) and take it out of the pool."""
        log.debug("stopping %s (pid %s)", worker.process.name, worker.process.pid)
        with self._lock:
            if worker in self.workers:
                self.workers.remove(worker)
        worker.kill()

    def retire(self, worker: Worker) -> None:
        """Tell ``worker`` (out of the pool) to quit, and wait a moment for it to end.

        One that does not end at once is left to end on its own: its exit may wait on the
        program (a ``multiprocess.Queue`` it put into flushes its items before the process
        ends, and the program reads them after the loop), and killing it would lose them.
        It is collected by a later lease, or waited for at the program's exit.
        """
        self.forget(worker)
        worker.lease = None
        worker.quit()
        worker.join(RETIRE_SECONDS)
        if worker.process.is_alive():
            with self._lock:
                self.retiring.append(worker)
        else:
            worker.kill()  # closes its pipes

    def forget(self, worker: Worker) -> None:
        """Take ``worker`` out of the pool; whoever calls this stops it."""
        with self._lock:
            if worker in self.workers:
                self.workers.remove(worker)

    def run(
        self,
        job: Job,
        chunker: Chunker,
        count: int,
        grow_to: int | None = None,
        recycle: int | None = None,
        caller_runs: bool = False,
        hold_native: bool = True,
    ) -> Iterator[Outcome]:
        """Run the chunks of ``chunker`` on ``count`` workers; yield outcomes as they arrive.

        With ``grow_to`` (iterations in flight at most), a loop whose iterations
        mostly wait (their CPU time is far below their wall time) gets more of
        them in flight: each worker runs its chunks in lanes (threads, see
        lanes.py and policy.py), or, for a loop with a timeout (which a thread
        cannot honour), more worker processes.

        With ``recycle`` (``max_iterations_per_worker``), a worker that ran that many
        iterations (in this loop and earlier ones) is replaced by a new process: it is
        checked as at a loop's end, then asked to quit, which closes its per-worker
        objects.  Such a loop runs no lanes (each worker holds one chunk at a time).

        With ``caller_runs``, the caller runs the first chunks itself where it may
        (see caller.py).  With ``hold_native``, under fork, the caller's native pools stay at the
        workers' share from the loop's first fork to its end (see native_threads.Hold): not
        where the program's own code runs between the loop's items.
        """
        return dispatch.run(self, job, chunker, count, grow_to, recycle, caller_runs, hold_native)

    def shutdown(self) -> None:
        with self._lock:
            self.closed = True
            workers, self.workers = self.workers, []
            retiring, self.retiring = self.retiring, []
        for worker in workers:
            worker.stop(wait_seconds=1.0)
        deadline = time.monotonic() + RETIRED_AT_EXIT_SECONDS
        for worker in retiring:
            worker.join(max(0.0, deadline - time.monotonic()))
            worker.kill()


def _drop_ended(workers: list[Worker]) -> None:
    """Take the workers no loop holds whose process ended out of ``workers``, their pipes
    closed.  Not a leased one: its loop, which may not have seen it die yet, waits on its pipe
    and reports its death (a retired worker holds no lease)."""
    for worker in [w for w in workers if w.lease is None and not w.process.is_alive()]:
        # Gone already, if another loop's cleanup discarded it meanwhile (the garbage collector
        # may finalize a loop's generator that a reference cycle kept at any allocation).
        if worker in workers:
            workers.remove(worker)
        worker.kill()


def default_method() -> str | None:
    """The start method multiprocess uses by default on this platform, or None where paraloop
    does not know it without importing multiprocess.  On Linux, as the standard library's:
    ``fork`` up to Python 3.13, ``forkserver`` from 3.14 (a program that changes the default
    imported multiprocess to do so, and is asked)."""
    if sys.platform != "linux":
        return None
    return "forkserver" if sys.version_info >= (3, 14) else "fork"


_pools: dict[str | None, ProcessPool] = {}
_pools_lock = threading.Lock()


def get_pool(method: str | None) -> ProcessPool:
    """The shared pool for ``method``; a forked child gets pools of its own."""
    with _pools_lock:
        pool = _pools.get(method)
        if pool is None or pool.pid != os.getpid():
            pool = ProcessPool(method)
            _pools[method] = pool
        return pool


def worker_pids() -> list[int]:
    """The pids of this process's live worker processes, whatever started them (multiprocess's
    ``active_children()`` does not list the fork workers paraloop forks itself)."""
    with _pools_lock:
        pools = [p for p in _pools.values() if p.pid == os.getpid()]
    return [w.process.pid for pool in pools for w in pool.workers if w.process.is_alive()]


def _forget_in_child() -> None:
    """In a child made by os.fork(), the parent's workers are not this process's.

    Without this, multiprocess's exit handler in a forked child that exits normally
    terminates the workers it inherited the handles of: the parent's next loop would find
    them dead.
    """
    process = sys.modules.get("multiprocess.process")
    if process is None:
        return  # no worker was ever started here
    children = getattr(process, "_children", None)
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        for worker in pool.workers:
            popen = getattr(worker.process, "_popen", None)
            if children is not None and popen is not None:
                children.discard(popen)
                children.discard(worker.process)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


_exit_registered: list[int] = []


def _register_exit() -> None:
    """Register shutdown_pools at exit, once per process."""
    with _pools_lock:
        if os.getpid() not in _exit_registered:
            _exit_registered.append(os.getpid())
            atexit.register(shutdown_pools)


def shutdown_pools() -> None:
    """Stop every worker process; called at interpreter exit."""
    with _pools_lock:
        pools = [p for p in _pools.values() if p.pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.shutdown()
    coverage_workers.combine(final=True)
