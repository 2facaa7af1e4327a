"""One loop on leased workers: fill them with chunks, wait, receive, answer, until the end.

Data flow (one loop; protocol.py draws the messages)::

    Chunker --chunks--> fill() --JOB, CHUNK--> worker pipes --Outcome, Early--> receive()
                          ^                                                        |
                          |                                  Early: answer(), a CHUNK or NOTHING
                          |                                                        |
                     LanePolicy <------ what each Outcome and Early measured ------+
      (lanes, probes, watched chunks, more workers)                                |
                                                           Outcome: yielded to the runtime,
                                                           which orders and combines them and
                                                           feeds the Chunker their times

    CallerWorker (caller.py): the loop's first chunks, and one while new workers start
    endings.py: a worker's crash, an iteration past its deadline, the final check, retiring

:func:`run` is the manager loop: each round it fills every worker that may take a chunk,
lets the caller run a short chunk while new workers start, waits for a message or a
worker's death (or the next deadline), and hands each message to :func:`receive`.
Outcomes are yielded as they arrive, in any order; the runtime orders and combines them.
However the loop ends (its end, a ``break``, an exception, Ctrl-C), workers still running
chunks are stopped and the others are handed back to the pool.
"""

from __future__ import annotations

import _thread
import itertools
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ... import (
    background_import,
    broken_pipe,
    coverage_workers,
    log,
    module_globals,
    native_threads,
    serialize,
    warnings_relay,
)
from ...chunks import Chunk, Chunker
from ...cpus import available_cpus, waiting_workers
from ...errors import ParaLoopError
from ...execute import DONE, Job, Outcome
from ...hook import typeguard_workers
from ...linux import linux_facilities, read_file
from ...records import Record
from ...sharing import Segments, sharing
from ...wire import arrived, job_bytes, unreadable
from . import caller as _caller
from . import fork_server
from .caller import READY_SECONDS, CallerWorker, first_chunks, loop_running, may_run, start_seconds
from .endings import crashed, final_check, lost, overdue, retire, until_deadline
from .handle import Worker, wait
from .policy import LanePolicy
from .protocol import JOB, NOTHING, WATCHED, Early

if TYPE_CHECKING:
    from .pool import ProcessPool

__all__ = ["run"]

_loop_ids = itertools.count(1)


class JobMessage(Record):
    """The JOB message every worker of the loop gets before its first chunk, made once."""

    job: Job
    # Before the first item is read (items are pickled as they are read): what travels by value.
    importing: Any
    # typeguard's import hooks in the caller: workers install them too.
    hooks: Any
    # The options of a coverage measuring the caller: the workers measure too.
    measure: Any
    # Large captured arrays, sent once for all workers (freed when the loop ends).
    segments: Segments
    _data: bytes | None = None
    _message: bytes | None = None

    _fields = ("job", "importing", "hooks", "measure", "segments", "_data", "_message")

    def __init__(
        self,
        job: Job,
        importing: Any,
        hooks: Any,
        measure: Any,
        segments: Segments | None = None,
        _data: bytes | None = None,
        _message: bytes | None = None,
    ) -> None:
        self.job = job
        self.importing = importing
        self.hooks = hooks
        self.measure = measure
        self.segments = Segments() if segments is None else segments
        self._data = _data
        self._message = _message

    def data(self) -> bytes:
        """The job's bytes (the caller's chunks run after making them, see caller.py)."""
        if self._data is None:
            self._data = job_bytes(self.job, self.segments)
        return self._data

    def globals(self) -> module_globals.Globals:
        """The globals of the user's modules the job reaches, for the workers (made only once a
        worker takes part: a loop that ends in the caller needs none)."""
        with sharing(self.segments):
            return module_globals.snapshot(self.job.function, self.job.values)

    def message(self) -> bytes:
        if self._message is None:
            whole = {name: True for name, whole in self.job.whole_terms().items() if whole}
            self._message = pickle.dumps(
                (
                    # The environment, directory and file mode mask as the loop starts: a worker
                    # that ran an earlier loop (or was forked from the fork server) has those of
                    # then (a mask the program narrowed since left the workers' files readable
                    # by other users).
                    dict(os.environ),
                    (_directory(), _mask()),
                    self.globals(),
                    sys.path,
                    self.job.native_threads,
                    self.importing,
                    self.measure,
                    self.hooks,
                    whole,
                    warnings_relay.for_workers(),
                    broken_pipe.kills(),
                    self.data(),
                ),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        return self._message


class Loop(Record):
    """The state of one loop on the pool."""

    pool: ProcessPool
    job: Job
    chunker: Chunker
    loop_id: int
    policy: LanePolicy
    sending: JobMessage
    # ``max_iterations_per_worker``, or None.
    recycle: int | None
    # The workers this loop holds, and how many more it may start.  Those still to start
    # start one at a time, each once the ones before it have a chunk, so that they compute
    # while the next fork (milliseconds) happens.
    active: list[Worker]
    to_start: int
    caller: CallerWorker | None = None
    # Whether a worker answered in this loop: then the workers are ready.
    heard: bool = False
    # The outcomes of chunks whose workers died, not yielded yet (see endings.lost).
    lost: list[Outcome]
    # The caller's native pools at the workers' share from the first fork on (see Hold).
    native: native_threads.Hold

    _fields = (
        "pool",
        "job",
        "chunker",
        "loop_id",
        "policy",
        "sending",
        "recycle",
        "active",
        "to_start",
        "caller",
        "heard",
        "lost",
        "native",
    )

    def __init__(
        self,
        pool: ProcessPool,
        job: Job,
        chunker: Chunker,
        loop_id: int,
        policy: LanePolicy,
        sending: JobMessage,
        recycle: int | None,
        active: list[Worker],
        to_start: int,
        caller: CallerWorker | None = None,
        heard: bool = False,
        lost: list[Outcome] | None = None,
        native: native_threads.Hold | None = None,
    ) -> None:
        self.pool = pool
        self.job = job
        self.chunker = chunker
        self.loop_id = loop_id
        self.policy = policy
        self.sending = sending
        self.recycle = recycle
        self.active = active
        self.to_start = to_start
        self.caller = caller
        self.heard = heard
        self.lost = list() if lost is None else lost
        self.native = native_threads.Hold(None, job) if native is None else native

    @property
    def measured(self) -> bool:
        return self.sending.measure is not None


def run(
    pool: ProcessPool,
    job: Job,
    chunker: Chunker,
    count: int,
    grow_to: int | None = None,
    recycle: int | None = None,
    caller_runs: bool = False,
    hold_native: bool = True,
) -> Iterator[Outcome]:
    """Run the chunks of ``chunker`` on ``count`` workers of ``pool``; yield outcomes as they
    arrive (see ProcessPool.run)."""
    loop_id = next(_loop_ids)
    sending = JobMessage(
        job, serialize.importing_now(), typeguard_workers.settings(), coverage_workers.settings()
    )
    loop: Loop | None = None
    # Under fork, this loop's forks and other threads' caller's chunks take turns.
    turns: loop_running | None = None
    try:
        # Inside the try: a Ctrl-C as the start returns (the interpreter looks for signals then)
        # would lose the loop, and the workers it leased would stay leased for ever.
        loop = _start(pool, job, chunker, count, grow_to, recycle, caller_runs, hold_native, loop_id, sending)
        turns = loop_running()
        yield from _running(loop, pool, job)
    finally:
        # However the loop ended: the caller's pools, its turn at forks, the workers (see
        # release).  Each step is done to its end even if Ctrl-C interrupts it (run again: each
        # may be), and that Ctrl-C is raised once all are done: a second Ctrl-C during the
        # cleanup skipped the rest, and the loop's workers went on running its iterations, out
        # of the program's reach, while the next loop started others.  Here, not in a function:
        # a Ctrl-C as that function is called would skip it whole.
        steps: list[Callable[[], Any]] = [
            # First: a second Ctrl-C during the cleanup left the caller's pools at the workers'
            # share for the rest of the program (see native_threads._leave).
            (lambda: None) if loop is None else loop.native.close,
            (lambda: None) if turns is None else turns.end,
            (lambda: _unstarted(pool, loop_id, sending)) if loop is None else (lambda: release(loop)),
            # A loop whose first iteration started importing multiprocess and then ended in the
            # caller returns once the import is in: no lock of it is held when the program forks.
            background_import.joined,
        ]
        interrupted: KeyboardInterrupt | None = None
        while steps:
            try:
                steps[0]()
                del steps[0]
            except KeyboardInterrupt as error:
                interrupted = error
        if interrupted is not None:
            raise interrupted


def _running(loop: Loop, pool: ProcessPool, job: Job) -> Iterator[Outcome]:
    """The loop's chunks, from the caller's part to the final check (see run)."""
    if loop.caller is not None:
        yield from _callers_part(loop, loop.caller)
    while True:
        fill(loop)
        yield from _lost(loop)
        waiting = [w for w in loop.active if w.chunks]
        if not waiting:
            if loop.caller is not None:
                loop.caller.finish()
            final_check(pool, loop.active, loop.loop_id, job, loop.measured)
            return
        ran = caller_meanwhile(loop, waiting)
        if ran is not None:
            yield ran
            continue
        try:
            ready = wait(_watched(waiting), _bounded(waiting, until_deadline(waiting, job.timeout)))
        except OSError:
            loop.pool.closing()  # the program's exit closed the workers' pipes meanwhile
            raise
        if job.timeout is not None:
            for worker, late in list(overdue(waiting, ready, job)):
                lose(loop, worker, late)
        for worker in waiting:
            if worker not in loop.active:
                continue  # lost this round already (past the timeout, or found dead by a send)
            if worker.connection in ready:
                outcome = receive(loop, worker)
                if outcome is not None:
                    if outcome.kind == DONE:
                        # The worker computes its next chunk while the caller combines
                        # this one (a large partial dict takes the caller milliseconds).
                        fill(loop)
                    yield outcome
            elif worker.gone(ready):
                lose(loop, worker)
        yield from _lost(loop)


def _start(
    pool: ProcessPool,
    job: Job,
    chunker: Chunker,
    count: int,
    grow_to: int | None,
    recycle: int | None,
    caller_runs: bool,
    hold_native: bool,
    loop_id: int,
    sending: JobMessage,
) -> Loop:
    active = pool.lease(count, loop_id, start=False)
    # A Ctrl-C or an error from here on: run's cleanup gives the workers back (see _unstarted).
    policy = LanePolicy(
        count,
        grow_to,
        # Threads in a worker: not for a loop with a timeout (a thread cannot be stopped) nor
        # for one whose iterations change process-wide state (see paraloop.process_state).
        allowed=job.timeout is None and job.lanes is not False and recycle is None,
        state_matters=job.lanes is None,
        process_cap=waiting_workers(),
    )
    # Under fork, workers forked with the caller's pools at their share keep them so.
    native = native_threads.Hold(job.native_threads if pool.method == "fork" and hold_native else None, job)
    loop = Loop(
        pool, job, chunker, loop_id, policy, sending, recycle, active, count - len(active), native=native
    )
    # The caller runs the first chunks itself, and more while its new workers get ready.
    if caller_runs and may_run(job, recycle):
        ready = start_seconds(pool.method) if loop.to_start else READY_SECONDS
        loop.caller = CallerWorker(job, sending.data, ready, pool.method, count)
    return loop


def _unstarted(pool: ProcessPool, loop_id: int, sending: JobMessage) -> None:
    """The cleanup of a loop whose start was cut short (see run): the workers it leased are the
    pool's again (nothing was sent to them), and the job's shared segments, if any were made (the
    caller's chunk makes the job's bytes), are freed."""
    pool.unlease(loop_id)
    sending.segments.free()


def _callers_part(loop: Loop, caller: CallerWorker) -> Iterator[Outcome]:
    """The loop's first chunks, run by the caller (see caller.py), and more while multiprocess
    imports; what they measured then sets the workers' lanes (see policy.py)."""
    timer = _ImportTimer.start(loop, caller)
    try:
        yield from first_chunks(caller, loop.chunker)
    finally:
        if timer is not None:
            timer.stop()
    changed = caller.process_state is not None
    loop.policy.after_caller(caller.wall, caller.cpu, caller.queued, caller.items, changed)


class _ImportTimer:
    """While what spawn and forkserver workers need is not imported (see
    paraloop.background_import: multiprocess, 25-30 ms, and paraloop's worker side; see
    :func:`_needed` for fork), a loop that may start workers starts importing it in a thread
    if the caller's first chunk still runs at twice the budget (it stops at the budget but for
    a slow first iteration): a first request of 30 ms then covers the import.  A loop of quick
    iterations imports nothing meanwhile, and a loop the caller keeps never (an import in a
    thread took a loop of 100 iterations of 0.2 ms, which the caller keeps, from 20 ms to 30:
    they take turns at the GIL).

    A bare thread (``_thread``), not a ``threading.Timer``: starting and joining a Timer cost
    a loop 0.3-0.5 ms (its start waits until the new thread runs), one of 100 iterations of
    0.1 ms included.  Two locks stand in for the Timer's event and its join, so that a stop
    before the thread ran, or after, is the same; nor is it one of the program's threads that
    ``threading.active_count()`` counts (the caller's chunks watch the random generators when
    no other thread could draw from them).
    """

    def __init__(self, caller: CallerWorker, names: tuple[str, ...]) -> None:
        self._caller = caller
        self._names = names
        self._pid = os.getpid()
        self._stopped = _thread.allocate_lock()
        self._stopped.acquire()
        self._ended = _thread.allocate_lock()
        self._ended.acquire()

    @classmethod
    def start(cls, loop: Loop, caller: CallerWorker) -> _ImportTimer | None:
        """The timer of this loop's first chunk, or None if it needs none."""
        names = _needed(loop.pool.method)
        if not loop.to_start or not names:
            return None
        left = loop.chunker.left()
        if left is not None and left <= _caller.FIRST_ITEMS:
            # The first chunk holds the whole loop: no timer thread (starting one cost a loop
            # of ten trivial iterations 0.1-1 ms).
            return None
        timer = cls(caller, names)
        _thread.start_new_thread(timer._run, ())
        return timer

    def _run(self) -> None:
        with fork_server.harmless():
            self._wait()

    def _wait(self) -> None:
        try:
            # Only while the first iteration still runs: a first chunk past it (one that went on
            # past the budget, or that a busy machine kept from looking at its clock) runs quick
            # iterations, which an import meanwhile would take turns with at the GIL.
            caller = self._caller
            if not self._stopped.acquire(timeout=2 * _caller.CALLER_SECONDS) and not (
                caller.items or caller.past_first_iteration
            ):
                background_import.start(self._names)
        finally:
            self._ended.release()

    def stop(self) -> None:
        """Stop the timer and wait for its thread: one that already started the import has
        published it, and the loop then waits for that at its end (a thread it missed would
        outlive the loop)."""
        self._stopped.release()
        # In a child the program forked meanwhile, the thread is not there to end.
        if os.getpid() == self._pid:
            self._ended.acquire()


# The worker's side, which starting a worker imports in the caller (see handle.Worker).
_WORKER_SIDE = "paraloop.backends.processes.child"


def _needed(method: str) -> tuple[str, ...]:
    """The modules starting workers with ``method`` would import now (see _ImportTimer).

    None under fork: fork workers need no multiprocess (see forked.py), and the worker side
    (1-2 ms) is not worth a thread beside the program's first iteration there, which may fork
    a process of its own: Python 3.12 and later then warn that the process is multi-threaded
    (a DeprecationWarning a script shows), where the plain loop's process has one thread.
    """
    if method == "fork":
        return ()
    return tuple(name for name in ("multiprocess.connection", _WORKER_SIDE) if name not in sys.modules)


def _mask() -> int | None:
    """The process's file mode mask, from ``/proc/self/status`` on Linux 4.7 and later; else
    through ``os.umask`` (set and put back at once: a file another thread creates meanwhile gets
    the mask it sets), where there is no other way to read it."""
    if linux_facilities():
        try:
            status = read_file("/proc/self/status")
        except OSError:
            return None  # no /proc after all: the workers keep theirs
        _, found, rest = status.partition(b"\nUmask:")
        try:
            return int(rest.partition(b"\n")[0], 8) if found else None
        except ValueError:
            return None  # Linux before 4.7 (no such line) or one unreadable: the workers keep theirs
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _directory() -> str | None:
    """The caller's current directory; None if it was removed (the workers stay where they are)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _watched(waiting: list[Worker]) -> list[Any]:
    """What to wait on: each worker's pipe, and what shows its death (see handle._pidfd)."""
    return [w.connection for w in waiting] + [w.ended for w in waiting]


# Where a worker's end shows only to the system (see Worker.gone), the caller asks that often.
POLL_SECONDS = 1.0


def _bounded(waiting: list[Worker], timeout: float | None) -> float | None:
    """``timeout``, or at most POLL_SECONDS if a worker's end might not show in a wait."""
    if any(worker.end_unwatched for worker in waiting):
        return POLL_SECONDS if timeout is None else min(timeout, POLL_SECONDS)
    return timeout


def _taker(active: list[Worker], two: bool) -> Worker | None:
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


def fill(loop: Loop) -> None:
    """Give a chunk to every worker that may take one, starting workers as chunks need them."""
    chunker, policy = loop.chunker, loop.policy
    while True:
        _retire_spent(loop)
        worker = _taker(loop.active, two=False)
        if worker is None and loop.to_start > 0 and not (chunker.exhausted or chunker.stopped):
            loop.active.extend(loop.pool.lease(1, loop.loop_id, before_fork=loop.native.before_fork))
            loop.to_start -= 1
            continue
        if worker is None:
            remaining, workers = chunker.left(), len(loop.active)
            worker = _taker(loop.active, two=policy.second_chunks(chunker.fixed, remaining, workers))
        if worker is None:
            return
        probing = policy.probes(not worker.chunks, chunker.fixed, chunker.left(), len(loop.active))
        if probing:
            chunk = chunker.next(maximum=policy.probe.start())
        else:
            # With lanes, a chunk has at least an item per lane.
            left = None if loop.recycle is None else loop.recycle - worker.assigned
            chunk = chunker.next(minimum=policy.lanes, maximum=left)
        if chunk is None:
            return
        worker.probing = probing
        _give(loop, worker, chunk)


def _retire_spent(loop: Loop) -> None:
    """Replace the workers that ran their ``max_iterations_per_worker`` by new ones."""
    if loop.recycle is None:
        return
    for spent in [w for w in loop.active if not w.chunks and w.assigned >= loop.recycle]:
        loop.active.remove(spent)
        loop.to_start += 1
        retire(loop.pool, spent, loop.loop_id, loop.job, loop.measured)


def _give(loop: Loop, worker: Worker, chunk: Chunk) -> None:
    """Send ``chunk`` to ``worker``, after the job if it is the worker's first of the loop;
    a worker's first chunk of a loop that may grow is watched, to start lanes early."""
    first = worker.job_id != loop.loop_id
    watched = first and loop.policy.watches()
    worker.watched = watched
    lanes = WATCHED if watched else 1 if worker.probing else loop.policy.lanes
    try:
        if first:
            worker.send(JOB, loop.loop_id, 0, 0, loop.sending.message())
            worker.job_id = loop.loop_id
        sent = worker.give(loop.loop_id, chunk, lanes)
        loop.chunker.sent(len(chunk.items), sent)
    except OSError:  # a broken pipe, or one the program's exit closed (see ProcessPool.closing)
        # The worker holds the chunk (its JOB may have failed before the chunk was held).
        worker.chunks[chunk.index] = chunk
        lose(loop, worker)


def lose(loop: Loop, worker: Worker, error: ParaLoopError | None = None) -> None:
    """``worker`` died (or, with ``error``, is stopped for it): no further chunk starts, and its
    earliest chunk's outcome is the loop's WorkerCrashedError (or ``error``), yielded next (the
    runtime raises it in chunk order)."""
    if worker not in loop.active:
        return  # lost already (its pipe and its death are both seen in one round)
    loop.active.remove(worker)
    outcome = lost(loop.pool, worker, loop.job, error)
    if outcome is None:
        # It held no iterations: the error at once, rather than a loop left a worker short.
        crashed(loop.pool, worker, loop.job)
    loop.chunker.stop()
    loop.lost.append(outcome)


def _lost(loop: Loop) -> Iterator[Outcome]:
    while loop.lost:
        yield loop.lost.pop(0)


def caller_meanwhile(loop: Loop, waiting: list[Worker]) -> Outcome | None:
    """The workers have their first chunks of the loop and take milliseconds to answer: a new
    process starts, an idle one loads the loop's job first (a first chunk of 3 ms came back
    5-6 ms after it was sent).  The caller runs a short chunk meanwhile, until one answers in
    this loop.  Its outcome, or None.  (A loop that computes loses nothing by it: 200,000
    trivial iterations on idle workers took the same time; one that waits gains a worker.)"""
    caller = loop.caller
    if caller is None or loop.heard or not caller.quick:
        return None
    if wait(_watched(waiting), 0):
        return None
    chunk = caller.next_chunk(loop.chunker, caller.maximum())
    if chunk is None:
        return None
    ran = caller.run(chunk, loop.chunker)
    if caller.process_state is not None:
        loop.policy.state_changed()
    return ran


def receive(loop: Loop, worker: Worker) -> Outcome | None:
    """Read the worker's message: an outcome to yield, or an Early, answered here (None)."""
    try:
        data = worker.connection.recv_bytes()
    except (EOFError, OSError):
        lose(loop, worker)
        return None
    began = time.perf_counter()
    try:
        message = serialize.loads(data)
    except Exception as error:  # noqa: BLE001 - the loop's error, naming the chunk
        message = unreadable(loop.job, worker.chunks[min(worker.chunks)], error)
    worker.watched = False
    loop.heard = True
    if isinstance(message, Early):
        answer(loop, worker, message)
        return None
    outcome: Outcome = message
    _note(loop, worker, outcome, began)
    return outcome


def answer(loop: Loop, worker: Worker, early: Early) -> None:
    """Answer a watched chunk's Early: a chunk to run in lanes, or NOTHING."""
    worker.early_cpu = early.cpu
    chunk = loop.chunker.next(minimum=loop.policy.lanes) if loop.policy.on_early(early) else None
    try:
        if chunk is None:
            worker.send(NOTHING, loop.loop_id, 0, 0, b"")
        else:
            loop.chunker.sent(len(chunk.items), worker.give(loop.loop_id, chunk, loop.policy.lanes))
    except OSError:  # a broken pipe, or one the program's exit closed (see ProcessPool.closing)
        lose(loop, worker)


def _note(loop: Loop, worker: Worker, outcome: Outcome, began: float) -> None:
    """Take an outcome off its worker's books, mark it as one that travelled, and let the
    policy see it; start the workers it wants."""
    early_cpu, worker.early_cpu = worker.early_cpu, None
    probing, worker.probing = worker.probing, False
    worker.chunks.pop(outcome.chunk, None)
    worker.unchecked = outcome.unchecked
    worker.leftovers = worker.leftovers or outcome.leftovers
    arrived(outcome, began)
    cpus: Callable[[], int] = available_cpus
    wanted = loop.policy.on_outcome(outcome, probing, early_cpu, len(loop.active), cpus)
    if wanted:
        more = loop.pool.lease(wanted - len(loop.active), loop.loop_id, before_fork=loop.native.before_fork)
        log.debug("iterations mostly wait: %d more workers", len(more))
        loop.active.extend(more)


def release(loop: Loop) -> None:
    """However the loop ended: chunks still running belong to iterations after a break, an
    exception or Ctrl-C, so their workers are stopped, as are those whose lanes still run such
    iterations of a chunk already sent (they would go on changing the process that runs the
    next loop's chunks); the others go back to the pool."""
    for worker in loop.active:
        if worker.lease != loop.loop_id:
            # Given back already by a run of this that a Ctrl-C cut short (see run): another
            # thread's loop may hold it now.
            continue
        if worker.chunks or worker.leftovers or worker.unclean:
            # Stopped before its chunks are forgotten: run again after a Ctrl-C that cut this
            # short (see run), it stops the worker again, which the first run may not have.
            loop.pool.discard(worker)
            worker.chunks.clear()
            worker.leftovers = False
        worker.lease = None
        worker.watched = False
        worker.early_cpu = None
    # A worker the pool leased to the loop as a Ctrl-C came, before the loop took it in
    # (loop.active.extend(pool.lease(...))): never sent anything, it is the pool's again, not
    # held for the program's life while later loops start others.
    loop.pool.unlease(loop.loop_id)
    # Every worker that runs this loop has its job (and its mappings) by now.
    loop.sending.segments.free()
