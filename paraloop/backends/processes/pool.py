"""The local process pool: workers on pipes, watched for death, reused across loops.

Each worker has its own pipe and holds one chunk at a time, so the parent
always knows which iterations a worker holds, never blocks sending to a busy
worker (a worker receives while idle, so large chunks and large results
cannot deadlock the pipe), and notices a dead worker at once through its
process sentinel.  A worker running chunks in lanes (threads, for iterations
that wait) holds two: its main thread keeps receiving while lane threads
run, and the second chunk's parts start as the first one's lanes free up.
A worker's first chunk of a loop is watched (see :mod:`paraloop.early`): if
its iterations wait, the worker says so before the chunk ends, and its
answer, a chunk for lanes, is its second.
Workers still running chunks when a loop ends early
(a ``break``, an exception, a generator expression dropped half-way) are
terminated at once, so the rest of the loop is cancelled promptly; the pool
starts new workers when the next loop needs them.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import itertools
import logging
import math
import mmap
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import multiprocess
from multiprocess.connection import wait

from ... import coverage_workers, serialize
from ...chunks import Chunk, Chunker
from ...cpus import available_cpus, waiting_workers
from ...errors import ParaLoopError, WorkerCrashedError
from ...execute import Job, Outcome, timeout_error
from ...hook import typeguard_workers
from ...sharing import Segments
from ...wire import job_bytes, unreadable
from .caller import READY_SECONDS, CallerWorker, first_chunks, forking, loop_running, may_run, start_seconds
from .child import serve
from .policy import MAX_LANES, Probe, mostly_waiting
from .protocol import CHECK, CHUNK, HEADER, JOB, NOTHING, QUIT, WATCHED, Checked, Early

__all__ = ["ProcessPool", "get_pool", "shutdown_pools"]

logger = logging.getLogger("paraloop")
_loop_ids = itertools.count(1)
# How long a worker may take to answer the end-of-loop check (fingerprints of large objects).
CHECK_SECONDS = 300.0


_starting = threading.local()


@contextmanager
def main_hidden(method: str) -> Iterator[None]:
    """Start spawn and forkserver workers without re-running the user's ``__main__``.

    Those start methods make the child run the parent's main script first,
    which for a script without an ``if __name__ == "__main__":`` guard would
    run the whole program again in every worker.  paraloop's workers never
    need it (the loop's function travels by value), so the preparation data a
    worker (or the fork server) gets while this thread starts it names no main
    script.  Only this thread's starts: ``sys.modules["__main__"]`` stays as it
    is, so other threads meanwhile load results of the script's classes as those
    classes.
    """
    if method == "fork":
        yield
        return
    _filter_preparation()
    _starting.active = True
    try:
        yield
    finally:
        _starting.active = False


def _filter_preparation() -> None:
    """Wrap ``multiprocess.spawn.get_preparation_data`` (once): while paraloop starts a worker
    in this thread, the data names no main script to run first."""
    from multiprocess import spawn

    original = spawn.get_preparation_data
    if getattr(original, "paraloop", False):
        return

    def get_preparation_data(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        if getattr(_starting, "active", False):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    get_preparation_data.paraloop = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = get_preparation_data


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C while a worker starts; deliver it once the worker is the pool's.

    A SIGINT that arrives during ``os.fork()`` raises KeyboardInterrupt inside
    an at-fork hook (logging has one), where Python prints and drops it: the
    program would go on waiting for workers, which ignore Ctrl-C.  So the
    signal is only noted meanwhile, and raised afterwards as it would have been.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    held: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(signal.SIGINT, held[0])


def _unreadable(worker: _Worker, job: Job, error: Exception) -> Outcome:
    """The outcome of a worker's chunk whose results could not be loaded here."""
    return unreadable(job, worker.chunks[min(worker.chunks)], error)


def _taker(active: list[_Worker], two: bool) -> _Worker | None:
    """The worker to give the next chunk: one that holds none, else (if ``two``) one that holds one."""
    for worker in active:
        if not worker.chunks:
            return worker
    if two:
        for worker in active:
            # A watched chunk's worker reads its next message only as the answer to an Early.
            if len(worker.chunks) == 1 and not worker.probing and not worker.watched:
                return worker
    return None


@contextmanager
def _frozen(method: str) -> Iterator[None]:
    """Around a fork: the objects the child inherits are out of its garbage collector's reach.

    A forked child shares the parent's memory until it writes to it; a collection
    that walks every inherited object writes to all of their pages, and the child
    then copies the parent's whole heap while its first chunk runs.  (Freezing and
    unfreezing only move list heads: microseconds.)
    """
    if method != "fork":
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _clock(context: Any, method: str) -> Any:
    """Two doubles shared with one worker process."""
    if method == "fork":
        # A forked child inherits an anonymous shared mapping: it costs microseconds,
        # where a RawArray (a file in /dev/shm) costs about a millisecond per worker.
        return (ctypes.c_double * 2).from_buffer(mmap.mmap(-1, 16))
    return context.RawArray("d", 2)


class _Worker:
    def __init__(self, context: Any, method: str, number: int) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        # The running iteration's start time and index, for loops with a timeout.
        self.clock = _clock(context, method)
        self.process = context.Process(
            target=serve,
            args=(child_end, self.clock, os.getpid()),
            name=f"paraloop-worker-{number}",
            daemon=True,
        )
        with main_hidden(method), _frozen(method):
            self.process.start()
        child_end.close()
        logger.debug("started %s (pid %s, %s)", self.process.name, self.process.pid, method)
        self.connection = parent_end
        self.job_id = -1
        # The loop that holds this worker while it runs (a generator expression
        # over ParaLoop can hold workers while other loops run).
        self.lease: int | None = None
        # The chunks it holds, by index: one, or with lanes two (the next one queues
        # in the worker while the current one's last iterations finish).
        self.chunks: dict[int, Chunk] = {}
        # Its one chunk is a lanes probe (see paraloop.lanes.Probe).
        self.probing = False
        # Its one chunk is watched (see paraloop.early) and no Early came yet.
        self.watched = False
        # The CPU time its watched chunk had used when it sent an Early.
        self.early_cpu: float | None = None
        # Iterations given to it since it started (see max_iterations_per_worker).
        self.assigned = 0
        # Its last outcome said its guard left objects unchecked (see ProcessPool._final_check).
        self.unchecked = False
        # It sent a message back once: it is running (a new one takes milliseconds to start).
        self.answered = False

    def send(self, kind: int, loop_id: int, index: int, start: int, payload: bytes, lanes: int = 1) -> None:
        self.connection.send_bytes(HEADER.pack(kind, loop_id, index, start, lanes) + payload)

    def give(self, loop_id: int, chunk: Chunk, lanes: int) -> int:
        """Send ``chunk``, to run in ``lanes`` lanes (or watched); it is held until its outcome.

        Returns the size of its items on the way, in bytes.
        """
        self.chunks[chunk.index] = chunk
        self.assigned += len(chunk.items)
        payload = chunk.payload if chunk.payload is not None else serialize.dumps(chunk.items)
        chunk.payload = None  # the items are held until the outcome; their bytes need not be
        self.send(CHUNK, loop_id, chunk.index, chunk.start, payload, lanes)
        return len(payload)

    def describe_exit(self) -> str:
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with code {code}"

    def stop(self, wait_seconds: float) -> None:
        try:
            self.send(QUIT, 0, 0, 0, b"")
        except OSError:
            pass
        self.process.join(timeout=wait_seconds)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5.0)
        self.connection.close()


def _in_flight(outcome: Outcome, cpus: int) -> int:
    """Iterations in flight that keep ``cpus`` busy, judged by this chunk's wall and CPU time.

    One iteration waits ``wall`` and computes ``cpu``: about wall/cpu of them
    share a CPU.  A chunk run in lanes took its wall time once for all lanes.
    """
    iterations = max(1, outcome.iterations)
    wall = outcome.seconds * len(outcome.parts or (outcome,)) / iterations
    cpu = max((outcome.cpu + outcome.queued) / iterations, 1e-6)
    return max(1, math.ceil(cpus * wall / cpu))


class ProcessPool:
    """Worker processes of one start method, grown on demand and reused by every loop."""

    def __init__(self, method: str | None) -> None:
        self.context = multiprocess.get_context(method)
        self.method: str = self.context.get_start_method()
        self.workers: list[_Worker] = []
        self.pid = os.getpid()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def lease(self, count: int, loop_id: int, start: bool = True) -> list[_Worker]:
        """``count`` live workers that no other running loop holds, started if need be.

        With ``start=False``, only those already running (maybe fewer).
        """
        with self._lock:
            self.workers = [w for w in self.workers if w.process.is_alive()]
            free = [w for w in self.workers if w.lease is None]
            while start and len(free) < count:
                with forking(self.method), ctrl_c_held():
                    worker = _Worker(self.context, self.method, next(self._numbers))
                    self.workers.append(worker)
                free.append(worker)
            chosen = free[:count]
            for worker in chosen:
                worker.lease = loop_id
            return chosen

    def _discard(self, worker: _Worker) -> None:
        logger.debug("stopping %s (pid %s)", worker.process.name, worker.process.pid)
        if worker in self.workers:
            self.workers.remove(worker)
        worker.kill()

    def run(
        self,
        job: Job,
        chunker: Chunker,
        count: int,
        grow_to: int | None = None,
        recycle: int | None = None,
        caller_runs: bool = False,
    ) -> Iterator[Outcome]:
        """Run the chunks of ``chunker`` on ``count`` workers; yield outcomes as they arrive.

        With ``grow_to`` (iterations in flight at most), a loop whose iterations
        mostly wait (their CPU time is far below their wall time) gets more of
        them in flight: each worker runs its chunks in lanes (threads, see
        :mod:`paraloop.lanes`), or, for a loop with a timeout (which a thread
        cannot honour), more worker processes.

        With ``recycle`` (``max_iterations_per_worker``), a worker that ran that many
        iterations (in this loop and earlier ones) is replaced by a new process: it is
        checked as at a loop's end, then asked to quit, which closes its per-worker
        objects.  Such a loop runs no lanes (each worker holds one chunk at a time).

        With ``caller_runs``, the caller runs the first chunks itself where it may
        (see :mod:`paraloop.caller`).
        """
        loop_id = next(_loop_ids)
        # Before the first item is read (items are pickled as they are read): what travels by value.
        importing = serialize.importing_now()
        active = self.lease(count, loop_id, start=False)
        # Workers still to start: one at a time, each once the ones before it have a
        # chunk, so that they compute while the next fork (milliseconds) happens.
        to_start = count - len(active)
        lanes = 1
        # Lanes were switched on by an Early: the chunk's outcome may still switch them off.
        provisional = False
        probe = Probe()
        process_cap = waiting_workers()
        # Threads in a worker: not for a loop with a timeout (a thread cannot be stopped) nor
        # for one whose iterations change process-wide state (see paraloop.process_state);
        # such a loop whose iterations wait gets more worker processes instead.
        lanes_ok = job.timeout is None and job.lanes is not False and recycle is None
        wall = cpu = queued = 0.0
        job_message: bytes | None = None
        job_data: bytes | None = None
        # Large captured arrays, sent once for all workers (freed when the loop ends).
        segments = Segments()
        # typeguard's import hooks in the caller: workers install them too.
        hooks = typeguard_workers.settings()
        # The options of a coverage measuring the caller: the workers measure too.
        measure = coverage_workers.settings()

        def the_job_data() -> bytes:
            nonlocal job_data
            if job_data is None:
                job_data = job_bytes(job, segments)
            return job_data

        # The caller runs the first chunks itself, and more while its new workers get ready.
        caller = None
        if caller_runs and may_run(job, recycle):
            caller = CallerWorker(
                job,
                the_job_data,
                start_seconds(self.method) if to_start else READY_SECONDS,
                self.method,
            )
        # Whether a worker answered in this loop: then the workers are ready.
        heard = False
        # Under fork, this loop's forks and other threads' caller's chunks take turns.
        turns = loop_running()
        turns.__enter__()
        try:
            if caller is not None:
                yield from first_chunks(caller, chunker)
                if caller.process_state is not None and job.lanes is None:
                    lanes_ok = False
                wall, cpu, queued = caller.wall, caller.cpu, caller.queued
                # Iterations run one at a time, as the probe compares lanes chunks with.
                probe.alone_cpu, probe.alone_items = cpu, caller.items
                if grow_to is not None and lanes_ok and mostly_waiting(wall, cpu, queued):
                    # The caller's iterations waited: the workers run lanes from the start
                    # (their first chunks need not be watched for it).
                    lanes = min(MAX_LANES, math.ceil(grow_to / count))
                    logger.debug("the caller's iterations wait: %d lanes per worker", lanes)
            while True:
                while True:
                    # A second chunk per worker once lanes proved right: a wanted probe waits
                    # for a worker that holds nothing, and its verdict should come soon.
                    probing_soon = (probe.wanted or probe.running) and not chunker.fixed
                    if recycle is not None:
                        for spent in [w for w in active if not w.chunks and w.assigned >= recycle]:
                            active.remove(spent)
                            to_start += 1
                            self._retire(spent, loop_id, job, measure is not None)
                    worker = _taker(active, two=False)
                    if worker is None and to_start > 0 and not (chunker.exhausted or chunker.stopped):
                        active.extend(self.lease(1, loop_id))
                        to_start -= 1
                        continue
                    if worker is None:
                        worker = _taker(active, two=lanes > 1 and probe.confirmed and not probing_soon)
                    if worker is None:
                        break
                    # A probe runs alone: only on a worker that holds nothing.
                    probing = lanes > 1 and probe.wanted and not chunker.fixed and not worker.chunks
                    if probing:
                        chunk = chunker.next(maximum=probe.start())
                    else:
                        # With lanes, a chunk has at least an item per lane.
                        left = None if recycle is None else recycle - worker.assigned
                        chunk = chunker.next(minimum=lanes, maximum=left)
                    if chunk is None:
                        break
                    worker.probing = probing
                    # A worker's first chunk of a loop that may grow is watched, to start lanes early.
                    first = worker.job_id != loop_id
                    watched = first and lanes == 1 and grow_to is not None and lanes_ok
                    worker.watched = watched
                    try:
                        if first:
                            if job_message is None:
                                job_message = pickle.dumps(
                                    (
                                        sys.path,
                                        job.native_threads,
                                        importing,
                                        measure,
                                        hooks,
                                        {name: True for name, whole in job.whole_terms().items() if whole},
                                        the_job_data(),
                                    ),
                                    protocol=pickle.HIGHEST_PROTOCOL,
                                )
                            worker.send(JOB, loop_id, 0, 0, job_message)
                            worker.job_id = loop_id
                        sent = worker.give(loop_id, chunk, WATCHED if watched else 1 if probing else lanes)
                        chunker.sent(len(chunk.items), sent)
                    except (BrokenPipeError, ConnectionResetError):
                        self._crashed(worker, job)
                waiting = [w for w in active if w.chunks]
                if not waiting:
                    if caller is not None:
                        caller.finish()
                    self._final_check(active, loop_id, job, measure is not None)
                    return
                if caller is not None and not heard and caller.quick and any(not w.answered for w in waiting):
                    # The workers have their first chunks and may take milliseconds to start
                    # on them: the caller runs a short chunk meanwhile, unless one answered.
                    chunk = None
                    if not wait([w.connection for w in waiting] + [w.process.sentinel for w in waiting], 0):
                        chunk = caller.next_chunk(chunker, caller.maximum())
                    if chunk is not None:
                        ran = caller.run(chunk, chunker)
                        if caller.process_state is not None and job.lanes is None:
                            lanes_ok, lanes, provisional = False, 1, False
                        yield ran
                        continue
                ready = wait(
                    [w.connection for w in waiting] + [w.process.sentinel for w in waiting],
                    self._until_deadline(waiting, job.timeout),
                )
                if job.timeout is not None:
                    self._check_deadlines(waiting, ready, job)
                for worker in waiting:
                    if worker.connection in ready:
                        try:
                            data = worker.connection.recv_bytes()
                        except (EOFError, OSError):
                            self._crashed(worker, job)
                        began = time.perf_counter()
                        try:
                            message = serialize.loads(data)
                        except Exception as error:  # noqa: BLE001 - the loop's error, naming the chunk
                            message = _unreadable(worker, job, error)
                        worker.watched = False
                        heard = worker.answered = True
                        if isinstance(message, Early):
                            worker.early_cpu = message.cpu
                            if (
                                grow_to is not None
                                and lanes_ok
                                and not (message.state and job.lanes is None)
                                and mostly_waiting(
                                    wall + message.seconds, cpu + message.cpu, queued + message.queued
                                )
                            ):
                                if lanes == 1:
                                    lanes = min(MAX_LANES, math.ceil(grow_to / count))
                                    provisional = True
                                    logger.debug("iterations wait so far: %d lanes per worker", lanes)
                                chunk = chunker.next(minimum=lanes)
                            else:
                                chunk = None
                            try:
                                if chunk is None:
                                    worker.send(NOTHING, loop_id, 0, 0, b"")
                                else:
                                    chunker.sent(len(chunk.items), worker.give(loop_id, chunk, lanes))
                            except (BrokenPipeError, ConnectionResetError):
                                self._crashed(worker, job)
                            continue
                        outcome: Outcome = message
                        early_cpu, worker.early_cpu = worker.early_cpu, None
                        worker.chunks.pop(outcome.chunk, None)
                        worker.unchecked = outcome.unchecked
                        outcome.received = time.perf_counter() - began
                        outcome.remote = True
                        for part in outcome.parts or ():
                            part.remote = True
                        wall, cpu, queued = wall + outcome.seconds, cpu + outcome.cpu, queued + outcome.queued
                        if outcome.process_state is not None and lanes_ok and job.lanes is None:
                            logger.debug("iterations changed %s: no lanes", outcome.process_state)
                            lanes_ok, lanes, provisional = False, 1, False
                        if worker.probing:
                            worker.probing = False
                            alone_waits = probe.add(outcome)
                            if alone_waits is False and lanes > 1:
                                # Threads would only contend for the CPU, and each part's
                                # private copies cost the caller combining.
                                logger.debug("iterations run alone keep the CPU busy: back to 1 lane")
                                lanes, grow_to = 1, None
                        elif outcome.parts and lanes > 1:
                            # (A lanes chunk may come back before the watched chunk that
                            # switched lanes on: its verdict stays provisional until then.)
                            probe.after_lanes(outcome)
                        elif not outcome.parts and grow_to is not None:
                            probe.alone(outcome, early_cpu)
                            if provisional and early_cpu is not None:
                                provisional = False
                                if not mostly_waiting(outcome.seconds, outcome.cpu, outcome.queued):
                                    # All of the chunk's time says otherwise than its first part
                                    # did.  (Lanes that compute beside it make it look waiting on
                                    # the GIL; the probe, see paraloop.lanes, catches those.)
                                    logger.debug("iterations did not keep waiting: back to 1 lane")
                                    lanes = 1
                        if grow_to is not None and mostly_waiting(wall, cpu, queued):
                            if lanes_ok:
                                # As many in flight as allowed at once: a first estimate from the
                                # first chunks (whose CPU time includes one-off costs) falls short,
                                # and each step up costs a round of chunks.
                                if lanes == 1:
                                    lanes = min(MAX_LANES, math.ceil(grow_to / len(active)))
                                    logger.debug("iterations mostly wait: %d lanes per worker", lanes)
                            else:
                                wanted = min(grow_to, process_cap, _in_flight(outcome, available_cpus()))
                                if wanted > len(active):
                                    more = self.lease(wanted - len(active), loop_id)
                                    logger.debug("iterations mostly wait: %d more workers", len(more))
                                    active.extend(more)
                        yield outcome
                    elif worker.process.sentinel in ready:
                        self._crashed(worker, job)
        finally:
            turns.__exit__(None, None, None)
            # Chunks still running belong to iterations after a break, an
            # exception or Ctrl-C: cancel them by stopping their workers.
            for worker in active:
                if worker.chunks:
                    worker.chunks.clear()
                    self._discard(worker)
                worker.lease = None
                worker.watched = False
                worker.early_cpu = None
            # Every worker that runs this loop has its job (and its mappings) by now.
            segments.free()

    def _retire(self, worker: _Worker, loop_id: int, job: Job, measured: bool) -> None:
        """Stop a worker that ran its ``max_iterations_per_worker``: first the check a loop's
        end makes, then the order to quit (it closes its per-worker objects)."""
        logger.debug(
            "retiring %s (pid %s) after %d iterations",
            worker.process.name,
            worker.process.pid,
            worker.assigned,
        )
        try:
            if worker.job_id == loop_id:
                self._final_check([worker], loop_id, job, measured)
        finally:
            with self._lock:
                if worker in self.workers:
                    self.workers.remove(worker)
            worker.lease = None
            worker.stop(wait_seconds=5.0)

    def _final_check(self, active: list[_Worker], loop_id: int, job: Job, measured: bool) -> None:
        """At the loop's end, each worker checks the captured objects its chunks left unchecked
        (those whose check costs more than a few percent of a chunk): a change is an error.

        Under coverage (``measured``), each worker also saves what it measured (see
        paraloop.coverage_workers)."""
        if not job.guarded and not measured:
            return
        # A worker whose checks after each chunk covered everything has nothing to check: the
        # round trip is skipped (it was two of a small loop's seven messages).
        asked = [w for w in active if w.job_id == loop_id and (w.unchecked or measured)]
        for worker in asked:
            try:
                worker.send(CHECK, loop_id, 0, 0, b"")
            except (BrokenPipeError, ConnectionResetError):
                self._crashed(worker, job)
        found: ParaLoopError | None = None
        for worker in asked:
            # Every answer is read, so that none is left for the next loop to take for an outcome.
            ready = wait([worker.connection, worker.process.sentinel], CHECK_SECONDS)
            if worker.connection not in ready:
                if not ready:
                    worker.process.kill()  # never a hang: a worker that does not answer is stopped
                self._crashed(worker, job)
            try:
                answer = serialize.loads(worker.connection.recv_bytes())
            except (EOFError, OSError):
                self._crashed(worker, job)
            if isinstance(answer, Checked) and answer.error is not None and found is None:
                found = answer.error
        if measured:
            coverage_workers.combine()
        if found is not None:
            raise found

    @staticmethod
    def _until_deadline(waiting: list[_Worker], timeout: float | None) -> float | None:
        """How long to wait before some running iteration would pass the timeout."""
        if timeout is None:
            return None
        started: list[float] = [w.clock[0] for w in waiting if w.clock[0] > 0]
        if not started:
            return min(timeout, 0.5)  # the iterations have not stamped their start yet
        # At most an hour per wait: poll() counts milliseconds in a C int (24 days), and a
        # timeout of a month would overflow it.  The caller waits again.
        return min(3600.0, max(0.0, min(started) + timeout - time.monotonic()) + 0.01)

    def _check_deadlines(self, waiting: list[_Worker], ready: list[Any], job: Job) -> None:
        assert job.timeout is not None
        now = time.monotonic()
        for worker in waiting:
            started = worker.clock[0]
            if worker.connection in ready or not started or now - started <= job.timeout:
                continue
            error = timeout_error(
                job, int(worker.clock[1]), worker.chunks.values(), "its worker process was stopped"
            )
            worker.chunks.clear()
            self._discard(worker)
            raise error

    def _crashed(self, worker: _Worker, job: Job) -> None:
        chunks = sorted(worker.chunks.values(), key=lambda chunk: chunk.start)
        worker.chunks.clear()
        how = worker.describe_exit()
        self._discard(worker)
        spans = []
        for chunk in chunks:
            last = chunk.start + len(chunk.items) - 1
            one = last == chunk.start
            spans.append(f"iteration {last}" if one else f"iterations {chunk.start} to {last}")
        held = " and ".join(spans) or "no iterations"
        raise WorkerCrashedError(
            f"{job.filename}, line {job.line}: a worker process (pid {worker.process.pid}) {how} "
            f"while running {held} of the loop. The iterations it held were lost; "
            "if it ran out of memory, use fewer workers (num_processes=...) or smaller items"
        )

    def shutdown(self) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.stop(wait_seconds=1.0)


_pools: dict[str | None, ProcessPool] = {}
_pools_lock = threading.Lock()


def get_pool(method: str | None) -> ProcessPool:
    """The shared pool for ``method``; a forked child gets pools of its own."""
    with _pools_lock:
        pool = _pools.get(method)
        if pool is None or pool.pid != os.getpid():
            if pool is None and not _pools:
                atexit.register(shutdown_pools)
            pool = ProcessPool(method)
            _pools[method] = pool
        return pool


def _forget_in_child() -> None:
    """In a child made by os.fork(), the parent's workers are not this process's.

    Without this, multiprocess's exit handler in a forked child that exits normally
    terminates the workers it inherited the handles of: the parent's next loop would find
    them dead.
    """
    children = getattr(multiprocess.process, "_children", None)
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


def shutdown_pools() -> None:
    """Stop every worker process; called at interpreter exit."""
    with _pools_lock:
        pools = [p for p in _pools.values() if p.pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.shutdown()
    coverage_workers.combine(final=True)
