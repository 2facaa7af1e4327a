"""The main loop of a worker process (its messages: see protocol.py).

A worker reads messages from its pipe: a job (the loop's worker function and
captured values, once per loop), chunks to run, or the order to quit.  It
answers each chunk with one outcome, serialized here in the worker so that a
value that cannot travel becomes an error that names it instead of a broken
pipe.  It ignores Ctrl-C (the parent stops it) and quits when the parent is
gone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ... import (
    broken_pipe,
    coverage_workers,
    module_globals,
    native_threads,
    output,
    process_state,
    serialize,
    warnings_relay,
)
from ...chunks import Chunk
from ...errors import ParaLoopError
from ...execute import DONE, NOTE_STATE, RAISED, Job, Outcome, execute_chunk, stamped
from ...hook import typeguard_workers
from ...lifeline import alive, die_with
from ...wire import encode_outcome, job_failure
from . import inherited
from .lanes import InLanes, finish_lanes, start_lanes
from .protocol import CHECK, CHUNK, HEADER, JOB, QUIT, WATCHED, Checked
from .watch import Watch

__all__ = ["in_worker", "serve"]

_in_worker = False


def in_worker() -> bool:
    """True inside a paraloop worker: nested ParaLoop loops there run sequentially."""
    return _in_worker


def _load_job(payload: memoryview) -> Job:
    """Load a job, first taking the parent's ``sys.path`` (it may have grown since we started)
    and sizing native thread pools (before the job's modules, numpy maybe, load)."""
    environment, where, globals_, path, threads, importing, measure, hooks, whole, filters, pipe, data = (
        pickle.loads(payload)
    )
    directory, mask = where
    warnings_relay.apply(filters)
    broken_pipe.take(pipe)
    coverage_workers.start(measure)
    if path != sys.path:
        sys.path[:] = path
        importlib.invalidate_caches()
    native_threads.apply(threads)
    _take_process_state(environment, directory, managed=threads is not None)
    if mask is not None:
        os.umask(mask)
    # Modules whose top level runs the loop in the caller: never imported here (see serialize).
    serialize.stand_in(importing)
    typeguard_workers.install(hooks)
    try:
        job: Job = serialize.loads(data)
    except ImportError:
        # A module written after this worker listed its directories.
        importlib.invalidate_caches()
        job = serialize.loads(data)
    # What the caller's own chunks showed (see caller.py): sums that started as whole numbers
    # and had whole terms there are added per chunk from this worker's first chunk on.
    job.whole_terms().update(whole)
    # Before the loop's first chunk (and the guard's first look at the modules).
    module_globals.apply(globals_, f"{job.filename}, line {job.line}")
    # The global random generators the caller has, imported now rather than in the first
    # iteration: importing numpy.random there adds warnings filters, which would look like
    # an iteration changing process-wide state (and keep the loop out of lanes).
    for module in job.generators:
        if module not in sys.modules:
            importlib.import_module(module)
    return job


def _take_process_state(environment: dict[str, str], directory: str | None, managed: bool) -> None:
    """The caller's environment and current directory as its loop starts (CONTRACT section 3:
    iterations that read them give the plain result).  ``managed``: paraloop sets the native
    thread pools' variables here (see paraloop.native_threads), which stay."""
    kept = native_threads.ENVIRONMENT if managed else ()
    for name in [name for name in os.environ if name not in environment and name not in kept]:
        del os.environ[name]
    for name, value in environment.items():
        if name not in kept and os.environ.get(name) != value:
            os.environ[name] = value
    if directory is None:
        return  # the caller's was removed
    with contextlib.suppress(OSError):  # gone since: the worker stays where it is
        if os.getcwd() != directory:
            os.chdir(directory)


# Chunks running in lanes now: while any does, iterations run side by side and the
# worker's native pools keep the share of one lane (see paraloop.native_threads).
_lane_chunks = 0
_lane_lock = threading.Lock()


def _lanes_done() -> None:
    global _lane_chunks
    with _lane_lock:
        _lane_chunks -= 1


def _alone(job: Job) -> None:
    """Before a chunk that runs alone: the worker's whole share, unless lanes still run."""
    with _lane_lock:
        if not _lane_chunks:
            native_threads.apply(job.native_threads, environment=False)


def _answer(sending: threading.Lock, connection: Any, job: Job, running: InLanes) -> None:
    """Send the outcome of a chunk run in lanes, once its parts are done."""
    try:
        try:
            outcome = finish_lanes(running)
        finally:
            _lanes_done()
        data = encode_outcome(outcome, job)
        with sending:
            connection.send_bytes(data)
    except (BrokenPipeError, ConnectionResetError):
        # Nobody reads the pipe any more (see _ProgramGone): the main thread finds its end.
        return
    except BaseException:  # noqa: BLE001 - the parent must not wait for an answer that never comes
        import traceback  # on this error only: the worker's side is imported before a fork

        traceback.print_exc()
        # The parent sees a crashed worker, and names the chunk.
        os._exit(70)


def serve(connection: Any, clock: Any = None, owner: int | None = None, folder: str | None = None) -> None:
    """Run chunks until told to quit or until the parent process is gone.

    ``clock`` (shared with the parent) receives the index and start time of
    the running iteration when the loop has a timeout.  ``folder``: the program's temporary
    folder for multiprocess (a fork server's socket), removed here if the program was killed
    (see :func:`_forget`).
    """
    told = False
    try:
        told = _serve(connection, clock, owner, folder)
    except _ProgramGone:
        pass  # nobody reads this worker's pipe any more: nothing to report, nobody to tell
    finally:
        # The process leaves through os._exit: nothing else would save a measurement, nor
        # close the per-worker objects it made (see paraloop.resources).
        coverage_workers.save()
        resources = sys.modules.get("paraloop.resources")
        if resources is not None:
            resources.close_all()
        output.drain_loose()
        warnings_relay.drain_loose()
        if not told:
            _forget(owner, folder)


class _ProgramGone(BaseException):
    """The worker's pipe is broken: the program that started it is gone (killed), or stopped
    it.  A BaseException, so that no handler of the body's errors takes it for one."""


# How long a worker whose pipe ended waits for its program to be gone before it leaves its
# temporary folder in place: a killed process closes its descriptors before it is a zombie.
FORGET_WAIT_SECONDS = 1.0


def _forget(owner: int | None, folder: str | None) -> None:
    """Remove the temporary folder multiprocess made for the program (the fork server's socket
    is there), once the program is gone: killed, it could not (``multiprocess.util`` removes it
    at a program's end).  Every worker of the program tries; the first one does it."""
    if folder is None or owner is None:
        return
    deadline = time.monotonic() + FORGET_WAIT_SECONDS
    while alive(owner):
        if time.monotonic() > deadline:
            return  # the program lives on (it closed this worker's pipe): the folder is its own
        time.sleep(0.02)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _serve(connection: Any, clock: Any, owner: int | None, folder: str | None = None) -> bool:
    """The worker's life; whether the program told it to leave (else its pipe ended, or its
    parent is gone)."""
    global _in_worker
    _in_worker = serialize.in_worker_process = True
    # A worker forked from another thread of the program (a loop run in a thread) keeps that
    # thread's name; it is this process's main thread, named so as under spawn or forkserver.
    threading.current_thread().name = "MainThread"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    process_state.count_writes()
    parent = os.getppid()
    # Exit once the program that started this worker is gone, however it ended (SIGKILL too):
    # its pid, not the parent's, since a forkserver worker's parent is the fork server, which
    # lives as long as its children.
    leave = functools.partial(_leave, owner, folder)
    die_with(owner if owner is not None else parent, lambda: os.getppid() != parent, leave)
    child = _Child(connection, clock, leave)
    while True:
        # Poll with a timeout: a sibling forked later may hold our pipe open,
        # so EOF alone does not prove the parent is alive.  A fork worker that holds the
        # program's streams looks more often whether the program closed them (see inherited.py).
        look = inherited.waiting_look()
        if not connection.poll(1.0 if look is None else min(look, 1.0)):
            if os.getppid() != parent:
                return False
            inherited.let_go_closed()
            continue
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return False
        kind, loop_id, index, start, lanes = HEADER.unpack_from(message)
        payload = memoryview(message)[HEADER.size :]
        if kind == QUIT:
            return True
        if kind == CHECK:
            child.check(loop_id)
        elif kind == JOB:
            # A stream the program closed before it started this loop ends before its chunks run.
            inherited.let_go_closed()
            child.load(loop_id, payload)
        elif kind == CHUNK:
            child.chunk(loop_id, index, start, lanes, payload)


def _leave(owner: int | None, folder: str | None) -> None:
    """The program is gone (see paraloop.lifeline): leave now, its temporary folder with it."""
    _forget(owner, folder)
    os._exit(0)


class _Child:
    """A worker's side of the conversation: the loop's job, and the pipe it answers on."""

    def __init__(self, connection: Any, clock: Any, leave: Callable[[], None]) -> None:
        self.connection = connection
        self.clock = clock
        # How the worker leaves from another thread once its program is gone (see _leave).
        self.leave = leave
        self.job: Job | None = None
        self.job_error: ParaLoopError | None = None
        self.job_id = -1
        # Lane threads answer too.
        self.sending = threading.Lock()

    def send(self, data: bytes) -> None:
        try:
            with self.sending:
                self.connection.send_bytes(data)
        except (BrokenPipeError, ConnectionResetError):
            raise _ProgramGone from None

    def check(self, loop_id: int) -> None:
        job = self.job
        found = job.final_check() if job is not None and self.job_id == loop_id else None
        coverage_workers.save()
        self.send(serialize.dumps(Checked(found)))

    def load(self, loop_id: int, payload: memoryview) -> None:
        self.job_id = loop_id
        try:
            self.job, self.job_error = _load_job(payload), None
        except Exception as error:  # noqa: BLE001 - reported for every chunk of the loop
            self.job, self.job_error = None, job_failure(error)
            return
        output.install(self.job.streams, owned=True)
        warnings_relay.install()

    def chunk(self, loop_id: int, index: int, start: int, lanes: int, payload: memoryview) -> None:
        if self.job_id != loop_id:
            raise RuntimeError("paraloop worker received a chunk before its job")
        job = self.job
        if job is None:
            self.send(serialize.dumps(Outcome(index, start, 0, RAISED, start, self.job_error)))
            return
        clock = self.clock if job.timeout is not None else None
        try:
            items = _load_items(payload, clock, start)
        except Exception as error:  # noqa: BLE001 - the loop's error, naming the item
            self.send(serialize.dumps(_unloadable(job, index, start, payload, error)))
            return
        chunk = Chunk(index, start, items)
        warnings_relay.forget_shown()
        if lanes > 1 and len(items) > 1:
            _in_lanes(self.sending, self.connection, job, chunk, lanes)
            return
        _alone(job)
        watch = None
        if lanes == WATCHED:
            reply = functools.partial(_answered, self.sending, self.connection, job)
            watch = Watch(self.connection, self.sending, reply, self.leave)
        outcome = output.run_captured(
            job.streams,
            lambda: execute_chunk(
                job,
                chunk,
                self.clock,
                queue=True,
                state=NOTE_STATE,
                starting=None if watch is None else watch.started,
            ),
        )
        if watch is not None:
            watch.finished(outcome)
        self.send(_encoded(outcome, job, clock, chunk))
        if watch is not None:
            watch.join()


def _encoded(outcome: Outcome, job: Job, clock: Any, chunk: Chunk) -> bytes:
    """The outcome's bytes; with a timeout, serializing the results counts as the last
    iteration's time (a result whose ``__reduce__`` hangs is stopped like an iteration)."""
    last = chunk.start + len(chunk.items) - 1
    if outcome.kind != DONE and outcome.stop is not None:
        last = outcome.stop
    with stamped(clock, last):
        return encode_outcome(outcome, job)


def _load_items(payload: memoryview, clock: Any, start: int) -> Any:
    """A chunk's items; with a timeout, loading them counts as the first iteration's time (an
    item whose ``__setstate__`` hangs is stopped like an iteration that does)."""
    with stamped(clock, start):
        return serialize.loads(payload)


def _unloadable(job: Job, index: int, start: int, payload: memoryview, error: Exception) -> Outcome:
    """The outcome of a chunk whose items could not be loaded here: an error naming the item."""
    position = serialize.failing_item(payload)
    at = start + (position if position is not None else 0)
    which = (
        f"item {at} of the loop" if position is not None else f"an item of the chunk from iteration {start}"
    )
    refused = ParaLoopError(
        f"{job.filename}, line {job.line}: {which} could not be loaded in a worker process: "
        f"{type(error).__name__}: {error} (its class's __setstate__ or __reduce__ failed there). "
        "Make the class load anywhere, pass what identifies the item instead, or use "
        "backend='threads', which shares it"
    )
    refused.__cause__ = error
    return Outcome(index, start, 0, RAISED, at, refused)


def _in_lanes(sending: threading.Lock, connection: Any, job: Job, chunk: Chunk, lanes: int) -> None:
    """Queue the chunk's parts on lane threads; a thread of its own answers when they are done.

    The caller goes on reading (and queueing) the next chunk meanwhile.
    """
    global _lane_chunks
    with _lane_lock:
        _lane_chunks += 1
        if job.native_threads is not None:
            # Iterations side by side share the worker's share of the CPUs.
            native_threads.apply(max(1, job.native_threads // lanes), environment=False)
    running = start_lanes(job, chunk, lanes)
    threading.Thread(target=_answer, args=(sending, connection, job, running), daemon=True).start()


def _answered(sending: threading.Lock, connection: Any, job: Job, message: bytes) -> None:
    """The parent's answer to an Early, read by the watcher: a chunk for lanes, or nothing."""
    kind, _, index, start, lanes = HEADER.unpack_from(message)
    if kind == CHUNK:
        items = serialize.loads(memoryview(message)[HEADER.size :])
        _in_lanes(sending, connection, job, Chunk(index, start, items), max(lanes, 1))
