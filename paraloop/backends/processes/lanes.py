"""Lane threads: a worker process runs the parts of one chunk side by side, for iterations that wait.

Each part runs on its own private copies of the tracked state, exactly like a chunk, and the
caller combines the parts in order, so the result is the one the plain loop gives.  When a
loop gets lanes is the caller's decision (see policy.py).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ... import output
from ...chunks import Chunk
from ...cpus import queued_seconds
from ...execute import DONE, LANE_STATE, Job, Outcome, execute_chunk, lanes_watched, watch_lanes

__all__ = ["InLanes", "finish_lanes", "split", "start_lanes"]


# The lane threads of this worker process, as many as the loop's lanes.
_executor: ThreadPoolExecutor | None = None
_executor_size = 0


def _threads(lanes: int) -> ThreadPoolExecutor:
    """A pool of exactly ``lanes`` threads, started on demand.

    Exactly that many, because a worker may hold two chunks (the next one is
    sent before the current one ends): the second chunk's parts queue behind
    the first's and start as its lanes free up, so no lane idles at the end
    of a chunk while its slowest iteration finishes.
    """
    global _executor, _executor_size
    if _executor is None or _executor_size != lanes:
        if _executor is not None:
            _executor.shutdown(wait=False)
        _executor = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="paraloop-lane")
        _executor_size = lanes
    return _executor


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


def _part(job: Job, chunk: Chunk) -> Outcome:
    began = time.perf_counter()
    began_cpu = time.thread_time()
    # This lane thread's own figure, from the file it keeps open: opening /proc/self/task/<id>
    # twice per part cost a lane a tenth of its CPU time on iterations that only wait.
    began_queued = queued_seconds()
    # The part watches the process-wide state around itself, the chunk the random generators
    # around all its parts (see execute.watch_lanes).
    outcome = output.run_captured(
        job.streams, lambda: execute_chunk(job, chunk, state=LANE_STATE, alone=False)
    )
    # This thread's CPU time: other lanes (and another chunk's parts) ran meanwhile.
    outcome.cpu = time.thread_time() - began_cpu
    outcome.queued = queued_seconds() - began_queued
    outcome.began = began
    outcome.ended = time.perf_counter()
    return outcome


class InLanes:
    """A chunk whose parts run on the lane threads, and what it read before they started."""

    def __init__(self, job: Job, chunk: Chunk, lanes: int) -> None:
        self.job, self.chunk = job, chunk
        self.before = watch_lanes()
        self.futures: list[Future[Outcome]] = [
            _threads(lanes).submit(_part, job, Chunk(chunk.index, chunk.start + offset, part))
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
