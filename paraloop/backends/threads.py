"""The threads backend: chunks run in threads of the caller's process.

For loops whose iterations mostly wait (network, disk) and for bodies that
capture objects no process can receive (locks, open files, sockets).  Each
chunk still runs on private copies of the tracked state, combined in
iteration order, so the result is the same as with processes.  Threads are
started per loop as daemons and take chunks from the shared chunker; after a
break, an exception or a return no new chunk starts, nor another iteration of
a chunk past it: only the iterations running then finish, in the background
(a thread cannot be stopped; see :class:`_Running`).  A program that ends
meanwhile waits a moment for them (see :func:`_at_exit`).
"""

from __future__ import annotations

import atexit
import functools
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..chunks import Chunk, Chunker
from ..cpus import available_cpus
from ..execute import DONE, RAISED, Job, Outcome, execute_chunk, timeout_error
from ..native_threads import limited, openmp_here
from ..resources import hand_back, release_thread
from .running import in_worker_thread, mark_running, running_chunk

__all__ = ["in_worker_thread", "run_threads", "running_chunk"]

_FINISHED = object()
# How often a thread waiting for the caller to take outcomes looks whether the loop ended.
ROOM_POLL_SECONDS = 0.5
# How long a program that ends waits, in all, for iterations still running in the loops'
# threads (past a break or an exception).
EXIT_WAIT_SECONDS = 2.0

# The threads of the loops so far that may still run an iteration.
_threads: list[threading.Thread] = []
# Reentrant: the garbage collector may finalize another loop's generator (one a reference cycle
# kept) inside _keep, and that loop's cleanup notes its own threads (a plain lock hung there).
_threads_lock = threading.RLock()


def run_threads(job: Job, chunker: Chunker, count: int) -> Iterator[Outcome]:
    """Run the chunks on ``count`` threads; yield outcomes as they arrive.

    With a ``timeout``, each thread stamps its running iteration's start in a
    clock the caller watches: an iteration past the timeout raises
    IterationTimeoutError here, and its thread, which cannot be stopped, is
    left to finish in the background, its results dropped.
    """
    results: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
    stop = threading.Event()
    # Outcomes the caller has not taken yet, at most two per thread: a caller that stops
    # taking them (a generator expression left half read) stops the threads too, instead of
    # letting them run the rest of the iterable (an endless one, forever) into the queue.
    # Tokens in a C queue rather than a threading.Semaphore (a Condition in Python: microseconds
    # per chunk, twice, for chunks of one waiting iteration each).
    room: queue.SimpleQueue[None] = queue.SimpleQueue()
    for _ in range(2 * count):
        room.put(None)
    # Per thread: the running iteration's start (0: none), its index, and its chunk.
    clocks: list[list[Any]] = [[0.0, -1, None] for _ in range(count)]
    running = _Running(count)
    # Not with a timeout: an iteration past it drops its chunk's outcome, the iteration before
    # it in a pair included (a chunk of one loses nothing the plain loop had).
    paired = _paired(count) if job.timeout is None else 0

    threads = [
        threading.Thread(
            target=_work,
            args=(n, job, chunker, clocks[n], results, stop, room, running, paired),
            name=f"paraloop-thread-{n + 1}",
            daemon=True,
        )
        for n in range(count)
    ]
    # Threads still running an iteration after a break or an error finish with the caller's pools.
    # Threads whose iteration ran past the timeout: they go on in the background, and what
    # they send is not waited for nor taken.
    abandoned: set[int] = set()
    with limited(job.native_threads, job):
        finished = 0
        try:
            # Started inside the try: a Ctrl-C while a thread starts stops those already
            # running from taking further chunks.
            for thread in threads:
                thread.start()
            while finished < count:
                try:
                    n, item = results.get(timeout=_until_deadline(clocks, job.timeout, abandoned))
                except queue.Empty:
                    n, item = -1, None
                if job.timeout is not None:
                    # After every outcome too: other threads' outcomes may arrive faster than
                    # the deadline (an overdue iteration then ran on unseen, to its end).
                    for late_n, late in _overdue(clocks, job, abandoned):
                        # Raised in chunk order, as an iteration's exception is: an earlier
                        # iteration's exception comes first, as in the plain loop.
                        abandoned.add(late_n)
                        finished += 1
                        yield late
                if n < 0 or n in abandoned:
                    continue
                if item is _FINISHED:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    assert isinstance(item, Outcome)
                    room.put(None)
                    yield item
        finally:
            stop.set()
            chunker.release()
            # Threads waiting for room see the stop at once (a program that ends next waits for
            # them, see _at_exit).
            for _ in range(count):
                room.put(None)
            # The running chunks end after the iterations running now: the plain loop never runs
            # the rest.
            running.end_after(-1)
            _keep(threads)


class _Running:
    """The chunks the loop's threads run, each over a list of its own, and the lowest index of a
    chunk that ended the loop so far (an exception, a break, a return), or None.

    Emptying a chunk's list ends it before its next iteration (a list's iterator stops once the
    list is empty, at no cost per item while the loop runs).
    """

    __slots__ = ("chunks", "ended")

    def __init__(self, count: int) -> None:
        # Per thread: the index and items of the chunk it runs, or None.
        self.chunks: list[tuple[int, list[Any]] | None] = [None] * count
        self.ended: int | None = None

    def end_after(self, index: int) -> None:
        """End the running chunks after chunk ``index`` once their running iterations end."""
        for entry in self.chunks:
            if entry is not None and entry[0] > index:
                entry[1].clear()

    def ended_by(self, chunker: Chunker, index: int) -> None:
        """Chunk ``index`` ended the loop, as its body returned: no chunk starts after it, and
        those running past it stop before their next iteration.  Noted first: a thread that took
        a chunk meanwhile looks at the note once its chunk is in :attr:`chunks`, which is then
        emptied here or sees the note."""
        if self.ended is None or index < self.ended:
            self.ended = index
        chunker.stop()
        self.end_after(index)


def _keep(threads: list[threading.Thread]) -> None:
    """Note the loop's threads, which a program that ends waits for (see :func:`_at_exit`)."""
    alive = [thread for thread in threads if thread.is_alive()]
    with _threads_lock:
        # One assignment: a cleanup run inside it (see _threads_lock) notes its threads at the end
        # of the list, which this one then reads on to.
        _threads[:] = [thread for thread in _threads if thread.is_alive()] + alive


@atexit.register
def _at_exit() -> None:
    """At the program's end, wait for iterations still running in the loops' threads, up to
    EXIT_WAIT_SECONDS in all: an interpreter that shuts down while a daemon thread writes to
    stderr (a warning, a print) aborts ("Fatal Python error: _enter_buffered_busy"), about one
    run in ten where iterations past an exception warned.  (ThreadPoolExecutor waits for its
    running work too, without a limit.)"""
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    with _threads_lock:
        threads = list(_threads)
    try:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        return  # a second Ctrl-C: the program ends now, as it would have


def _work(
    number: int,
    job: Job,
    chunker: Chunker,
    clock: list[Any],
    results: queue.SimpleQueue[object],
    stop: threading.Event,
    room: queue.SimpleQueue[None],
    running: _Running,
    paired: int,
) -> None:
    """One thread of the loop: take chunks and run them until the chunker or the caller stops.

    A chunk runs over a list of its own, which ``running`` holds while it runs: emptied when
    the loop ends, or when a chunk before it ends the loop, its next iteration does not start
    (the plain loop never runs it).
    """
    mark_running()
    try:
        # The loop's limit, set in the caller's thread, reaches OpenBLAS (the process's pool) but
        # not this thread's OpenMP count; the thread ends with the loop, and its count with it.
        openmp_here(job.native_threads)
        while not stop.is_set():
            try:
                room.get(timeout=ROOM_POLL_SECONDS)
            except queue.Empty:
                continue  # look at stop again: the caller may have gone
            chunk = chunker.next(paired_above=paired)
            if chunk is None:
                break
            chunk = _own_list(chunk)
            if type(chunk.items) is list:
                running.chunks[number] = (chunk.index, chunk.items)
            ended = running.ended
            if stop.is_set() or (ended is not None and chunk.index > ended):
                # The loop ended, or a chunk before this one ended it, as the chunk was taken.
                # (A chunk before the one that ended it runs: its iterations come first, and it
                # may have been taken just before that one was.)
                break
            clock[2] = chunk
            outcome = execute_chunk(
                job,
                chunk,
                clock if job.timeout is not None else None,
                ending=functools.partial(running.ended_by, chunker, chunk.index),
            )
            running.chunks[number] = None
            if outcome.kind != DONE:
                # Ended by a refusal found after its iterations (a changed object, say) too.
                running.ended_by(chunker, chunk.index)
            # A per-thread object the chunk hands back stays open for the caller.
            hand_back(outcome)
            results.put((number, outcome))
    except BaseException as error:  # noqa: BLE001 - handed to the caller
        results.put((number, error))
    finally:
        # The thread ends with the loop: the per-worker objects it made close now, but
        # those it handed back, which are the caller's.
        release_thread()
        results.put((number, _FINISHED))


def _paired(count: int) -> int:
    """Past how many items left of a sequence a chunk holds two iterations at least (0: never).

    More threads than CPUs are for iterations that mostly wait (a request, a read); one that
    waits past the chunks' 20 ms target gets a chunk of its own.  That chunk's own CPU (the
    private copies, the outcome, the caller taking it in order), 40-50 us, is then more than the
    iteration's, and holds the GIL that the other threads' answers wait for: 256 requests of 20 ms on 64
    threads took 113.8 ms in chunks of one, 109.9 ms in chunks of two but for the last 128
    iterations, and ThreadPoolExecutor(64) 109.5 (medians of 13 fresh runs; benchmarks/README.md,
    session 46).  The last two rounds of the threads (twice their number of iterations) still go
    one by one, so the loop ends as balanced as before: a slow iteration delays at most the one
    paired with it.  At no more threads than CPUs, chunks follow the measured time alone.
    """
    return 2 * count if count > available_cpus() else 0


# A range's or tuple's chunk up to this many items runs over a list of its own (see _work);
# a longer one (a chunksize given) as it is, which runs to its end past an exception
# (a million items' list cost a tenth of a trivial loop's time, and their memory).
LISTED_ITEMS = 1 << 16


def _own_list(chunk: Chunk) -> Chunk:
    """``chunk`` over a list of its own, where that is cheap (see LISTED_ITEMS)."""
    items = chunk.items
    if type(items) is list:
        return chunk  # the chunker's slice: the chunk's own already
    if len(items) > LISTED_ITEMS:
        return chunk
    return Chunk(chunk.index, chunk.start, list(items))


def _until_deadline(clocks: list[list[Any]], timeout: float | None, abandoned: set[int]) -> float | None:
    if timeout is None:
        return None
    started: list[float] = [clock[0] for n, clock in enumerate(clocks) if clock[0] > 0 and n not in abandoned]
    if not started:
        return min(timeout, 0.5)
    # At most an hour per wait: poll() counts milliseconds in a C int (24 days), and a
    # timeout of a month would overflow it.  The caller waits again.
    return min(3600.0, max(0.0, min(started) + timeout - time.monotonic()) + 0.01)


def _overdue(clocks: list[list[Any]], job: Job, abandoned: set[int]) -> Iterator[tuple[int, Outcome]]:
    """The threads running an iteration past the timeout, each with its chunk's outcome: the
    loop's IterationTimeoutError at that iteration (the thread cannot be stopped)."""
    assert job.timeout is not None
    now = time.monotonic()
    for n, clock in enumerate(clocks):
        started, index, chunk = clock
        if n in abandoned or not started or now - started <= job.timeout or chunk is None:
            continue
        error = timeout_error(
            job, int(index), [chunk], "its thread, which cannot be stopped, goes on in the background"
        )
        stop = max(int(index), chunk.start)
        yield n, Outcome(chunk.index, chunk.start, len(chunk.items), RAISED, stop, error)
