"""Lane threads: a worker process runs the parts of one chunk side by side, for iterations that wait.

Each part runs on its own private copies of the tracked state, exactly like a chunk, and the
caller combines the parts in order, so the result is the one the plain loop gives.  When a
loop gets lanes is the caller's decision (see policy.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ...chunks import Chunk
from ...cpus import queued_seconds_of
from ...execute import DONE, NO_STATE, Job, Outcome, execute_chunk

__all__ = ["finish_lanes", "split", "start_lanes"]


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
    thread = threading.get_native_id()
    began = time.perf_counter()
    began_cpu = time.thread_time()
    began_queued = queued_seconds_of(thread)
    outcome = execute_chunk(job, chunk, state=NO_STATE)
    # This thread's CPU time: other lanes (and another chunk's parts) ran meanwhile.
    outcome.cpu = time.thread_time() - began_cpu
    outcome.queued = queued_seconds_of(thread) - began_queued
    outcome.began = began
    outcome.ended = time.perf_counter()
    return outcome


def start_lanes(job: Job, chunk: Chunk, lanes: int) -> list[Future[Outcome]]:
    """Queue the parts of ``chunk`` on the lane threads; they start as lanes free up."""
    return [
        _threads(lanes).submit(_part, job, Chunk(chunk.index, chunk.start + offset, part))
        for offset, part in split(chunk.items, lanes)
    ]


def finish_lanes(chunk: Chunk, futures: list[Future[Outcome]]) -> Outcome:
    """Wait for the parts of ``chunk``; one outcome holding them in order."""
    parts: list[Outcome] = []
    for future in futures:
        part = future.result()
        parts.append(part)
        if part.kind != DONE:
            # Later parts ran past a break, a return or an exception: they leave no trace.
            break
    for future in futures[len(parts) :]:
        future.cancel()
    last = parts[-1]
    outcome = Outcome(chunk.index, chunk.start, len(chunk.items), last.kind, last.stop, last.value)
    outcome.traceback, outcome.item = last.traceback, last.item
    outcome.parts = parts
    # From the first part's start to the last one's end: not the time queued behind another chunk.
    outcome.seconds = max(part.ended for part in parts) - min(part.began for part in parts)
    outcome.cpu = sum(part.cpu for part in parts)
    outcome.queued = sum(part.queued for part in parts)
    return outcome
