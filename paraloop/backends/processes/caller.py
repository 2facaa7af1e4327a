"""The caller runs a loop's first iterations itself, as a worker process would.

Starting worker processes, sending them the job and ramping chunk sizes up
from one item costs milliseconds; a loop of a few trivial iterations would
pay that for nothing.  So a process-backend loop begins in the calling
process: it runs chunks there, from the start, for at most
``CALLER_SECONDS`` (the budget), and hands the rest to the workers.  A loop
that ends within the budget never uses a worker; a longer one pays at most
the budget in serial time, and its first chunks to workers are sized from
the caller's measurements instead of ramping up from one item.  Its first
chunk, before any iteration was timed, takes up to ``FIRST_ITEMS`` items of a
sequence (``FIRST_RANGE_ITEMS`` of a range, whose slices pickle in a few bytes; one
item of an iterator, which may yield slowly) and stops at the budget:
a loop of a few quick iterations is one chunk (each costs the caller a tenth
of a millisecond), one of slow ones runs its first iteration here and hands
the rest over, as a first chunk of one item did.  But a first chunk whose
iterations show at the budget that the caller would keep the loop (below) goes
on: ten iterations of 1 ms are one chunk, not two.

Where the iterable has a length, the caller also finishes a loop itself when
that is sooner than handing it over: the workers would take the time of getting
them going (``START_SECONDS``: forking two workers and their first milliseconds
cost about 10 ms here) plus their share of what is left, so the caller keeps
the loop while what is left takes it less than ``start * n / (n - 1)`` for ``n``
workers (twice the start-up for two), and keeps it as soon as a chunk measured that (the
rest of its budget would only cut the loop into more chunks).  It decides on a chunk whose
iterations took at least ``MEASURE_SECONDS`` (0.2 ms): a shorter one measured its own fixed
costs more than its iterations, so past its budget the caller runs one more, up to ``MEASURE_LIMIT`` in
all (a loop of 200,000 trivial iterations was handed over, 17 iterations in, at a time
per iteration forty times too high).  It then takes all of them as one chunk (each
chunk costs the caller a tenth of a millisecond or more).  A chunk sized from quick
iterations may hold thousands that turn slow: each chunk the caller runs stops at
twice its expected time (at least twice the budget), and its items left go back to
the loop, so that iterations that turn slower are seen and handed over within
milliseconds.  (The caller runs each chunk to
its end before the loop hands out another, so the items it gives back are the next
ones; the chunks it runs while the workers start stop so too.)

While the caller runs the loop's first chunks, in order, float sums and
products go on from their running values (:class:`paraloop.replay.Continued`)
instead of recording each term for a replay: the plain loop's operations in
its order, at the plain loop's speed.

The caller runs a chunk exactly as a worker does (see
child.py), so the loop's result does not depend on where a
chunk ran:

- with the job's bytes made first, as the workers get them (something that
  cannot be sent to a worker is refused as it would be there); but on the
  loop's own captured objects, not copies, as the threads backend runs (a
  change the guard refuses has happened in the program's object, see
  docs/internals.md);
- on items loaded from the bytes a worker would get;
- with the job's guard checking the captured objects, and the chunk's outcome encoded
  and decoded as a worker's (a result that cannot travel is an error here too);
- with nested ``ParaLoop`` loops run sequentially, and the native thread
  pools limited to a worker's share.

Loops that stay with the workers from the first iteration: those with
``timeout=`` (an iteration in the caller cannot be stopped) or
``max_iterations_per_worker``; every loop of a program that holds per-worker
objects (the caller would make one more, and a body may reach one through a
function it calls); a body that changes process-wide state (the current
directory, the environment: the caller's own would change) or draws from a
seeded global random generator; a generator expression over ``ParaLoop`` (the
program's code runs between its items); and any loop with ``caller_runs=False``
or ``PARALOOP_CALLER_RUNS=0``.  Under ``fork``, a caller's chunk and another
thread's fork take turns (a child forked while the caller runs code in another
thread would keep whatever lock that code held): while another thread runs a
loop, the caller runs no more chunks, and a fork waits for the other threads'
running chunk to end.

What differs from a worker: a crash (a segfault, ``os._exit``) in an
iteration the caller runs ends the program, as it would in the plain loop,
instead of raising :class:`~paraloop.WorkerCrashedError`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ... import output, process_state, serialize, warnings_relay
from ...chunks import Chunk, Chunker
from ...execute import DONE, NOTE_STATE, RAISED, Job, Keep, Outcome, execute_chunk
from ...native_threads import limited
from ...replay import Continued
from ...resources import handles_exist
from ...wire import arrived, encode_outcome, unreadable
from ..running import running_chunk
from . import fork_server

__all__ = [
    "CALLER_SECONDS",
    "FINISH_SECONDS",
    "IMPORT_SECONDS",
    "READY_SECONDS",
    "START_SECONDS",
    "CallerWorker",
    "first_chunks",
    "may_run",
    "start_seconds",
]

# How long the caller runs a loop's iterations before the workers take over.  About what
# forking a worker and its first round trip cost: a loop shorter than this never waits for one.
CALLER_SECONDS = 0.002

# What it costs to get workers going, by start method, measured on a 2-CPU Linux machine: a
# loop whose iterations left would take the caller less than this plus the workers' share of
# them runs them itself (where the iterable has a length).  Forked workers: the forks (about
# 2 ms each in the caller) and a new child's first milliseconds, spent copying the pages it
# writes; spawned ones and those of a fork server start a Python and import paraloop.  Idle
# workers of an earlier loop: the job's round trip.
START_SECONDS = {"fork": 0.010, "forkserver": 0.030, "spawn": 0.100}
READY_SECONDS = 0.001
# The size of the caller's chunks, in time, once it finishes the loop itself: large enough that
# a chunk's own cost (encoding, checks, about 0.1 ms) is a few percent, small enough that
# iterations that turn slow are handed over soon.
FINISH_SECONDS = 0.008
# The fork server's own start, the first time a program starts workers with it (a new Python
# that imports paraloop and what the script imports): about 80 ms here, all of it in the caller.
FORK_SERVER_SECONDS = 0.100
# The same server forked from the program (see fork_server.py): a fork.
FORKED_SERVER_SECONDS = 0.003
# Importing multiprocess (and dill), which a program's first spawn or forkserver worker needs
# (see pool.py's imports on demand; fork workers need neither, see forked.py): 25-30 ms here.
# Without it, 100 iterations of 0.2 ms (20 ms) went to two workers that took 50-60 ms to start.
IMPORT_SECONDS = 0.025
# A chunk whose iterations took less than this measured mostly its own fixed costs (tens of
# microseconds): the time per iteration it gives is too high to decide on.  Past its budget
# the caller runs one more chunk (of about half the budget, by that high figure) before it
# decides, but no more than MEASURE_LIMIT of its time in all.
MEASURE_SECONDS = 0.0002
MEASURE_LIMIT = 4 * CALLER_SECONDS
# The most items of a sequence the caller's first chunk takes, before any iteration was timed:
# it stops at the budget all the same, so this bounds only what it reads ahead.
FIRST_ITEMS = 16
# ...and of a range, whose slices pickle in a few bytes, however long: a loop of 100 iterations
# of 0.1 ms that the caller keeps is then one chunk, not 16 items and another for the rest.
FIRST_RANGE_ITEMS = 1024


# Under fork, a caller's chunk in one thread and a fork in another must not overlap: the child
# would keep whatever lock the chunk's code (the program's, paraloop's) held at that moment.
# Loops running now, and caller's chunks running now, by thread; a fork waits for the other
# threads' chunks to end, and a caller's chunk does not start while another thread runs a loop.
_turns = threading.Condition()
# Each running loop (by its loop_running) and its thread.
_loops: dict[object, int] = {}
_chunks: dict[int, int] = {}
# How long a fork waits for another thread's chunk (one slow iteration) before it goes ahead.
FORK_WAIT_SECONDS = 10.0


class loop_running:
    """From its making to its :meth:`end`, a process-backend loop runs: other threads' caller's
    chunks stop meanwhile.

    Its end may run twice (a second Ctrl-C during the loop's cleanup runs it again, see
    dispatch.run) and inside another section of ``_turns`` in its thread (the garbage
    collector finalizing a loop a reference cycle kept): it takes out its own entry, once.
    """

    def __init__(self) -> None:
        with _turns:
            _loops[self] = threading.get_ident()

    def end(self) -> None:
        with _turns:
            _loops.pop(self, None)


@contextmanager
def forking(method: str) -> Iterator[None]:
    """Around a fork: no other thread's caller's chunk runs meanwhile."""
    if method != "fork":
        yield
        return
    me = threading.get_ident()
    with _turns:
        # A copy: a loop's end may run inside this (see loop_running).
        _turns.wait_for(lambda: not any(n for t, n in list(_chunks.items()) if t != me), FORK_WAIT_SECONDS)
        yield


def _turn(method: str) -> bool:
    """Whether this thread's caller may start a chunk now (counted from :func:`_begin`)."""
    me = threading.get_ident()
    with _turns:
        # A copy: a loop's end may run inside this (see loop_running).
        return not (method == "fork" and any(t != me for t in list(_loops.values())))


def _begin() -> None:
    """This thread's caller runs a chunk: other threads' forks wait until :func:`_done`.

    Not while it pulls the chunk's items: the iterable may wait for another thread's loop (a
    queue that loop fills), whose every fork then waited FORK_WAIT_SECONDS; and a Ctrl-C in the
    iterable left the count up for the rest of the program."""
    me = threading.get_ident()
    with _turns:
        _chunks[me] = _chunks.get(me, 0) + 1


def _done() -> None:
    me = threading.get_ident()
    with _turns:
        _chunks[me] -= 1
        if not _chunks[me]:
            del _chunks[me]
        _turns.notify_all()


def start_seconds(method: str) -> float:
    """What starting workers with ``method`` would cost the caller now (see START_SECONDS)."""
    seconds = START_SECONDS.get(method, START_SECONDS["spawn"])
    if method != "fork" and "multiprocess" not in sys.modules:
        # Fork workers start without it (see forked.py).
        seconds += IMPORT_SECONDS
    if method == "forkserver":
        # Not imported yet: no fork server was started (nor is one imported to find out).
        forkserver = sys.modules.get("multiprocess.forkserver")
        server = None if forkserver is None else getattr(forkserver._forkserver, "_forkserver_pid", None)
        if (server is None and fork_server.would_fork()) or fork_server.forked(server):
            # A fork server forked from the program (see fork_server.py): one fork, and its
            # workers start as fork workers do (two at 30 and 36 ms from a cold start here, the
            # 25 ms of multiprocess's import included; 87 and 90 with a new interpreter).
            seconds += START_SECONDS["fork"] - START_SECONDS["forkserver"]
            if server is None:
                seconds += FORKED_SERVER_SECONDS
        elif server is None:
            seconds += FORK_SERVER_SECONDS
    return seconds


def may_run(job: Job, recycle: int | None) -> bool:
    """Whether the caller may run the first chunks of ``job`` (see the module's docstring)."""
    return (
        job.timeout is None
        and job.lanes is not False
        and recycle is None
        and not job.seeded
        and not handles_exist()
    )


class CallerWorker:
    """The calling process as one more worker of a loop, for its first chunks.

    ``job_data`` gives the job's bytes as the workers get them: made before the
    caller's first chunk, so that a loop whose body uses something that cannot
    be sent to a worker is refused however short it is.
    """

    def __init__(
        self,
        job: Job,
        job_data: Callable[[], bytes],
        start_seconds: float = READY_SECONDS,
        method: str = "fork",
        workers: int = 2,
    ) -> None:
        self._job = job
        self._job_data = job_data
        # What starting the workers this loop still needs would cost.
        self.start_seconds = start_seconds
        # The pool's start method (under fork, chunks take turns with other threads' forks).
        self.method = method
        # Handed over, what is left takes the workers their start plus 1/workers of its time;
        # kept, all of its time: keeping it is sooner while that time is under start x factor.
        # Capped at 2 (one worker gains nothing over the caller, yet the loop is theirs).
        self._factor = min(2.0, workers / (workers - 1)) if workers > 1 else 2.0
        # Another thread's loop started: no more chunks here (see loop_running).
        self.stopped = False
        # The caller's time on this loop's chunks so far, and the last chunk's time per item.
        self.spent = 0.0
        self._per_item = 0.0
        # The last chunk's own time (see MEASURE_SECONDS).
        self._timed = 0.0
        # Its chunks' wall, CPU and queued times: whether the iterations mostly wait (then the
        # workers run lanes from their first chunk on, see policy.py).
        self.wall = self.cpu = self.queued = 0.0
        self.items = 0
        # A process-wide change an iteration made here (see paraloop.process_state): the caller
        # runs no more chunks (its own process changed), and the workers run no lanes.
        self.process_state: str | None = None
        # What lets the loop's first chunk go on past the budget (see _deadline).
        self.first: Keep | None = None
        # The running values of float sums and products while every chunk so far ran here, in
        # order: the next chunk goes on from them (see paraloop.replay.Continued).
        self._running: dict[str, Any] | None = dict(job.starts())

    def maximum(self, budget: float = CALLER_SECONDS) -> int | None:
        """The most items a next chunk may have to take about ``budget``, once one was timed."""
        if not self._per_item:
            return None
        return max(1, int(budget / self._per_item))

    @property
    def within_budget(self) -> bool:
        return self.process_state is None and self.spent < CALLER_SECONDS

    @property
    def measuring(self) -> bool:
        """Whether the last chunk was too short to tell the time an iteration takes (see
        MEASURE_SECONDS), or held only the loop's first iteration: then the caller runs another
        before it decides to hand the loop over."""
        return (
            self.process_state is None
            and (0 < self._timed < MEASURE_SECONDS or self._first_alone)
            and self.spent < MEASURE_LIMIT
        )

    @property
    def measured(self) -> bool:
        """Whether the last chunk was long enough to tell the time an iteration takes."""
        return self.process_state is None and self._timed >= MEASURE_SECONDS and not self._first_alone

    @property
    def _first_alone(self) -> bool:
        # Only the loop's first iteration ran, past the budget: it may carry one-off costs (a
        # first call's caches, a first connection, a late wake-up on a busy machine).  One of
        # 0.1 ms iterations took 2.8 ms, and 99 more of them went to workers (60 ms, not 20).
        return self.items == 1

    @property
    def quick(self) -> bool:
        """Whether an iteration takes well under the budget: then a chunk of them while workers
        start holds back the workers' messages briefly (one of slow iterations would not)."""
        return self.process_state is None and 0 < self._per_item <= CALLER_SECONDS / 4

    def cheaper_than_workers(self, left: int | None) -> bool:
        """Whether the caller would finish the ``left`` iterations sooner than workers it hands
        them to (see the module's docstring)."""
        return (
            self.process_state is None
            and left is not None
            and self._per_item > 0
            and left * self._per_item < self.start_seconds * self._factor
        )

    def next_chunk(self, chunker: Chunker, maximum: int | None, minimum: int = 1) -> Chunk | None:
        """The next chunk for the caller, or None (the loop's end, or not the caller's turn: another
        thread runs a loop under fork).  A chunk returned must be passed to :meth:`run`."""
        if self.stopped or not _turn(self.method):
            self.stopped = True
            return None
        return chunker.next(minimum=minimum, maximum=maximum)

    def run(self, chunk: Chunk, chunker: Chunker, in_order: bool = False) -> Outcome:
        """Run one chunk of ``chunker`` as a worker runs it: on items loaded from their bytes,
        its outcome through bytes too.

        ``in_order``: every chunk before this one ran here, in order (the loop's first
        chunks), so float sums and products go on from their running values.
        """
        _begin()
        try:
            return self._run(chunk, chunker, in_order)
        finally:
            _done()

    def _run(self, chunk: Chunk, chunker: Chunker, in_order: bool) -> Outcome:
        job = self._job
        # Made once, before the first chunk: the workers need the job's bytes anyway, so making
        # them is no part of the caller's time on the loop (the budget).
        self._job_data()
        began = time.perf_counter()
        deadline = self._deadline(chunk, chunker)
        payload = chunk.payload if chunk.payload is not None else serialize.dumps(chunk.items)
        chunk.payload = None
        # As for a worker's chunk: the items' bytes bound the next chunks' size (MAX_CHUNK_BYTES),
        # so that a loop over large items holds a few chunks here too, never the input.
        chunker.sent(len(chunk.items), len(payload))
        with (
            running_chunk(),
            limited(job.native_threads, job),
            warnings_relay.observing(),
            _CtrlC(watch=not in_order) as ctrl_c,
            # Its iterations' passing changes of the environment, the directory, the locale...
            # counted as a worker counts them: they decide whether the workers run lanes.
            process_state.counted_here(),
        ):
            items = serialize.loads(payload)
            running = self._running if in_order else None
            if not in_order:
                self._running = None  # a chunk went elsewhere: no running value from now on
            # A chunk after others still at the workers: what it prints into a stream the
            # program replaced waits for its turn, as a worker's does (see paraloop.output).
            streams = {} if in_order else job.streams
            with output.routed(streams):
                outcome = output.run_captured(
                    streams,
                    lambda: execute_chunk(
                        job,
                        Chunk(chunk.index, chunk.start, items),
                        None,
                        True,
                        NOTE_STATE,
                        continued=running,
                        # Other threads of the program may draw from the global random generators:
                        # a draw seen is then not surely the chunk's (a worker process has none).
                        alone=threading.active_count() == 1,
                        deadline=deadline,
                    ),
                    always=not in_order,
                )
            if (
                not in_order
                and outcome.kind == RAISED
                and isinstance(outcome.value, KeyboardInterrupt)
                and (ctrl_c.pressed or not ctrl_c.watching)
            ):
                # Ctrl-C while the caller ran a chunk that follows chunks the workers still hold:
                # combined in order, it would wait for them (for ever, if they wait).  Raised
                # now, as Ctrl-C raises while the caller waits; the workers are then stopped.
                # A KeyboardInterrupt the body raised itself is its iteration's exception, and
                # an earlier iteration's (in a worker) comes first, as in the plain loop.
                raise outcome.value
            data = encode_outcome(outcome, job)
        decoding = time.perf_counter()
        try:
            travelled: Outcome = serialize.loads(data)
        except Exception as error:  # noqa: BLE001 - the loop's error, naming the chunk
            travelled = unreadable(job, chunk, error)
        arrived(travelled, decoding)
        if travelled.kind == DONE and travelled.size < len(chunk.items):
            chunker.give_back(chunk, travelled.size)
        self.wall += travelled.seconds
        self.cpu += travelled.cpu
        self.queued += travelled.queued
        self.items += travelled.iterations
        if running:
            for name in running:
                partial = travelled.partials.get(name)
                if type(partial) is Continued:
                    running[name] = partial.value
        if travelled.process_state is not None:
            self.process_state = travelled.process_state
        # The first chunk's setup (the guard's first look at the captured objects, the scan of
        # the program's modules, the native libraries' limits) is paid once, whoever runs the
        # loop: only its iterations count against the budget.
        self.spent += time.perf_counter() - began if self.items > travelled.iterations else travelled.seconds
        # Time waiting for a CPU (another program's, on a busy machine) is not the iterations' own:
        # one preempted iteration would make the rest look slow.
        # But at most half of it: the delay a thread is charged may have begun before the chunk
        # (it is counted when the thread runs again), and an iteration measured too quick would
        # make the caller keep a loop it should hand over.
        own = max(travelled.seconds - travelled.queued, travelled.seconds / 2)
        self._per_item = max(own / max(1, travelled.iterations), 1e-9)
        self._timed = max(own, 1e-9)
        return travelled

    def _deadline(self, chunk: Chunk, chunker: Chunker) -> tuple[float, float, Keep | None] | None:
        """When ``chunk`` stops, its items left going back to the loop (see execute.Until), or None."""
        if self._per_item and chunker.returnable:
            # Iterations that turn slower than the ones before them are not run here for long:
            # the chunk stops at twice the time it should take.
            return 2 * max(len(chunk.items) * self._per_item, CALLER_SECONDS), self._per_item, None
        if not self.items and len(chunk.items) > 1 and chunker.returnable:
            # The loop's first chunk, of iterations not timed yet (see first_chunks): the budget,
            # unless its iterations show by then that the caller would keep the loop (what is
            # left would take it less than starting workers, see cheaper_than_workers): then the
            # chunk goes on, rather than stop only to be followed by the rest in one more chunk.
            # (Not over an iterator, whose items cannot go back: a chunk of its items, given a
            # fixed chunksize, runs whole.)
            after = chunker.left()
            if after is not None:
                self.first = Keep(self.start_seconds * self._factor, after)
            return CALLER_SECONDS, 0.0, self.first
        return None

    @property
    def past_first_iteration(self) -> bool:
        """Whether the loop's first chunk is past its first iteration (which a first chunk that
        went on past the budget is, see _deadline)."""
        return self.first is not None and self.first.begun > 1

    def finish(self) -> None:
        """At the loop's end, as a worker: check the captured objects its chunks left unchecked."""
        found = self._job.final_check()
        if found is not None:
            raise found


class _CtrlC:
    """Whether Ctrl-C (SIGINT) really arrived while the caller ran a chunk, told apart from a
    ``KeyboardInterrupt`` the body raised: the program's handler is wrapped for the chunk.

    Only in the main thread (where Python runs signal handlers) and over a handler written in
    Python (the default one raises KeyboardInterrupt); otherwise ``watching`` is False.
    """

    def __init__(self, watch: bool) -> None:
        self.pressed = False
        self.watching = False
        self._previous: Any = None
        self._watch = watch

    def __enter__(self) -> _CtrlC:
        if self._watch and threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):

                def noted(signum: int, frame: Any) -> Any:
                    self.pressed = True
                    return previous(signum, frame)

                signal.signal(signal.SIGINT, noted)
                self._previous = previous
                self.watching = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watching:
            signal.signal(signal.SIGINT, self._previous)


def first_chunks(caller: CallerWorker, chunker: Chunker) -> Iterator[Outcome]:
    """Run the loop's first chunks in the caller, for up to ``CALLER_SECONDS``, or to the loop's
    end when that is sooner than handing it over; yield their outcomes.

    Stops at an outcome that ends the loop (a break, an exception, a return).
    """
    while True:
        cheaper = caller.cheaper_than_workers(chunker.left())
        if not (caller.within_budget or cheaper or caller.measuring):
            return
        # Within the budget, chunks of what is left of it; finishing the loop, larger ones.  Both
        # small enough that iterations that turn slower are seen.
        # Once a chunk measured the iterations well, a loop the caller would keep at the end of
        # its budget is kept now: the rest in one chunk (each chunk costs the caller 0.1-0.3 ms).
        keep = caller.measured and cheaper
        left = chunker.left()
        if not caller.items and left is not None and chunker.returnable:
            # Nothing timed yet, over a sequence: up to FIRST_ITEMS in one chunk, which stops at
            # the budget (see CallerWorker._run), its items left going back to the loop.  A loop
            # of a few quick iterations is then one chunk, not a chunk of one item to time them
            # and another for the rest (each chunk costs the caller a tenth of a millisecond or
            # more); an iterator's items are still read one at a time (it may yield slowly).
            first = min(left, FIRST_RANGE_ITEMS if chunker.ranged else FIRST_ITEMS) or 1
            chunk = caller.next_chunk(chunker, first, minimum=first)
        elif (caller.within_budget and not keep) or (caller.measuring and not cheaper):
            # Exactly that many, once an iteration was timed: the chunker's growth limit (16 times
            # the last size) protects workers from a noisy measurement, and the caller's chunks
            # have their deadline (a loop of 200,000 trivial iterations took 8 chunks, not 4).
            most = caller.maximum(max(CALLER_SECONDS - caller.spent, CALLER_SECONDS / 2))
            chunk = caller.next_chunk(chunker, most, minimum=most or 1)
        else:
            # All that is left, in one chunk (each chunk costs the caller a tenth of a millisecond
            # or more): it stops at twice its expected time should its iterations turn slower
            # (see CallerWorker._run), and the rest goes to the workers.  Exactly that many: the
            # chunker would split the rest for workers that never come.
            size = chunker.left() or caller.maximum(FINISH_SECONDS)
            chunk = caller.next_chunk(chunker, size, minimum=size or 1)
        if chunk is None:
            return
        outcome = caller.run(chunk, chunker, in_order=True)
        yield outcome
        if outcome.kind != DONE:
            return
