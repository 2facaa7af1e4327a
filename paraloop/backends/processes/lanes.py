"""Lane threads: a worker process runs the parts of one chunk side by side, for iterations that wait.

Each part runs on its own private copies of the tracked state, exactly like a chunk, and the
caller combines the parts in order, so the result is the one the plain loop gives.  When a
loop gets lanes is the caller's decision (see policy.py).
"""

from __future__ import annotations

import _thread
import functools
import threading
import time
from _queue import SimpleQueue
from collections.abc import Callable
from typing import Any

from ... import native_threads, output
from ...chunks import Chunk
from ...cpus import queued_seconds
from ...execute import DONE, LANE_STATE, Job, Outcome, execute_chunk, lanes_watched, watch_lanes

__all__ = ["InLanes", "finish_lanes", "split", "start_lanes"]


_PENDING, _RUNNING, _FINISHED, _CANCELLED = range(4)
# Guards a part's state between its lane taking it and a cancel (held for a moment).
_state_lock = _thread.allocate_lock()


class _Part:
    """One part queued for a lane: its outcome once run, unless cancelled before it started
    (as much of a ``concurrent.futures.Future`` as the lanes use)."""

    __slots__ = ("_call", "_done", "_error", "_result", "_state")

    def __init__(self, call: Callable[[], Outcome]) -> None:
        self._call: Callable[[], Outcome] | None = call
        self._state = _PENDING
        self._result: Outcome | None = None
        self._error: BaseException | None = None
        # Released once the part finished or was cancelled.
        self._done = _thread.allocate_lock()
        self._done.acquire()

    def run(self) -> None:
        with _state_lock:
            if self._state != _PENDING:
                return
            self._state = _RUNNING
        call, self._call = self._call, None
        try:
            assert call is not None
            self._result = call()
        except BaseException as error:  # noqa: BLE001 - raised where the part's outcome is read
            self._error = error
        finally:
            self._state = _FINISHED
            self._done.release()

    def result(self) -> Outcome:
        with self._done:
            pass
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> bool:
        """Whether the part will never run (it had not started)."""
        with _state_lock:
            if self._state == _PENDING:
                self._state = _CANCELLED
                self._call = None
                self._done.release()
            return self._state == _CANCELLED

    def done(self) -> bool:
        return self._state in (_FINISHED, _CANCELLED)


class _Lanes:
    """At most ``size`` threads taking parts from one queue, started as ThreadPoolExecutor
    starts its own: one per part submitted while no thread is idle.

    Not a ThreadPoolExecutor itself: importing concurrent.futures imports logging, whose
    at-fork hooks (and concurrent.futures.thread's), registered by the thread that imports the
    worker side while a program's first iteration runs (see paraloop.background_import), made
    a fork of the program's own in that iteration print "release unlocked lock"; and it cost
    each spawned worker 5 ms.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._parts: SimpleQueue[_Part | None] = SimpleQueue()
        # Released by a thread each time it finished a part: one may take the next.
        self._idle = threading.Semaphore(0)
        self._started = 0

    def submit(self, call: Callable[[], Outcome]) -> _Part:
        part = _Part(call)
        self._parts.put(part)
        if not self._idle.acquire(timeout=0) and self._started < self.size:
            threading.Thread(target=self._serve, name=f"paraloop-lane_{self._started}", daemon=True).start()
            self._started += 1
        return part

    def _serve(self) -> None:
        parts = self._parts
        while (part := parts.get()) is not None:
            part.run()
            del part
            self._idle.release()

    def stop(self) -> None:
        """Each thread ends once the parts queued before this are taken."""
        for _ in range(self._started):
            self._parts.put(None)


# The lane threads of this worker process, as many as the loop's lanes.
_lanes: _Lanes | None = None


def _threads(lanes: int) -> _Lanes:
    """Exactly ``lanes`` threads at most, started on demand.

    Exactly that many, because a worker may hold two chunks (the next one is
    sent before the current one ends): the second chunk's parts queue behind
    the first's and start as its lanes free up, so no lane idles at the end
    of a chunk while its slowest iteration finishes.
    """
    global _lanes
    if _lanes is None or _lanes.size != lanes:
        if _lanes is not None:
            _lanes.stop()
        _lanes = _Lanes(lanes)
    return _lanes


def split(items: Any, lanes: int) -> list[tuple[int, Any]]:
    """``items`` cut into at most ``lanes`` consecutive parts, as (offset, part) pairs."""
    count = min(lanes, len(items))
    size, extra = divmod(len(items), count)
    parts = []
    offset = 0
    for number in range(count):
        length = size + (1 if number < extra else 0)
        parts.append((offset, items[offset : offset + length]))
        offset += length
    return parts


# Per lane thread: its figure of time queued for a CPU when it last read it (see _part).
_lane_local = threading.local()


def _part(job: Job, chunk: Chunk) -> Outcome:
    """Run one part of a chunk in this lane thread.

    Each read of a file lets go of the GIL, which a lane then waits to take again behind the
    others: 20-25 us of CPU each, among 32 lanes.  So a part reads its time queued for a CPU
    once, at its end, against the figure its thread read at its previous part's end (between
    parts a lane waits for the next, queued for nothing), not before and after itself: 4,096
    iterations of 1 ms on two workers' lanes took 171-190 ms with two such reads per part.
    """
    # The worker's count for each lane (see child._in_lanes), which reaches this thread's OpenMP
    # only if set here (its count is each thread's own).
    native_threads.openmp_here(native_threads.applied())
    began = time.perf_counter()
    began_cpu = time.thread_time()
    began_queued = getattr(_lane_local, "queued", None)
    if began_queued is None:
        began_queued = queued_seconds()
    # The part watches the process-wide state, the chunk the random generators around all its
    # parts (see execute.watch_lanes).
    outcome = output.run_captured(
        job.streams,
        lambda: execute_chunk(job, chunk, state=LANE_STATE, alone=False),
    )
    # This thread's CPU time: other lanes (and another chunk's parts) ran meanwhile.
    outcome.cpu = time.thread_time() - began_cpu
    queued = _lane_local.queued = queued_seconds()
    outcome.queued = queued - began_queued
    outcome.began = began
    outcome.ended = time.perf_counter()
    return outcome


class InLanes:
    """A chunk whose parts run on the lane threads, and what it read before they started."""

    def __init__(self, job: Job, chunk: Chunk, lanes: int) -> None:
        self.job, self.chunk = job, chunk
        native_threads.before_lanes()
        self.before = watch_lanes()
        threads = _threads(lanes)
        self.futures: list[_Part] = [
            threads.submit(functools.partial(_part, job, Chunk(chunk.index, chunk.start + offset, part)))
            for offset, part in split(chunk.items, lanes)
        ]


def start_lanes(job: Job, chunk: Chunk, lanes: int) -> InLanes:
    """Queue the parts of ``chunk`` on the lane threads; they start as lanes free up."""
    return InLanes(job, chunk, lanes)


def finish_lanes(running: InLanes) -> Outcome:
    """Wait for the parts of a chunk; one outcome holding them in order."""
    chunk, futures = running.chunk, running.futures
    parts: list[Outcome] = []
    for future in futures:
        part = future.result()
        parts.append(part)
        if part.kind != DONE:
            # Later parts ran past a break, a return or an exception: they leave no trace.
            break
    # Those not started yet never start; those running go on in the background (a thread cannot
    # be stopped), changing what a program's next loop would find in this process.
    leftovers = [future for future in futures[len(parts) :] if not future.cancel()]
    last = parts[-1]
    outcome = Outcome(chunk.index, chunk.start, len(chunk.items), last.kind, last.stop, last.value)
    outcome.traceback, outcome.item = last.traceback, last.item
    outcome.parts = parts
    # From the first part's start to the last one's end: not the time queued behind another chunk.
    outcome.seconds = max(part.ended for part in parts) - min(part.began for part in parts)
    outcome.cpu = sum(part.cpu for part in parts)
    outcome.queued = sum(part.queued for part in parts)
    outcome = lanes_watched(running.job, chunk, outcome, running.before)
    outcome.leftovers = any(not future.done() for future in leftovers)
    return outcome
