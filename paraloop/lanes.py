"""Lanes: a worker process runs the parts of one chunk in threads, for iterations that wait.

An I/O-bound loop (network requests, disk) needs many iterations in flight at
once, far more than there are CPUs; starting that many processes costs more
than the waiting it saves.  So when the pool measures that iterations mostly
wait, it asks each worker to split a chunk into consecutive parts and run
them in threads of its own ("lanes").  Each part runs on its own private
copies of the tracked state, exactly like a chunk, and the caller combines
the parts in order, so the result is the one the plain loop gives.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .chunks import Chunk
from .execute import DONE, Job, Outcome, execute_chunk

__all__ = ["MAX_LANES", "execute_lanes"]

# Threads one worker process may run a chunk on.
MAX_LANES = 64

_executor: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        # Threads start on demand, so a worker that never gets lanes has none.
        _executor = ThreadPoolExecutor(max_workers=MAX_LANES, thread_name_prefix="paraloop-lane")
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


def execute_lanes(job: Job, chunk: Chunk, lanes: int) -> Outcome:
    """Run ``chunk`` as up to ``lanes`` parts in threads; one outcome holding the parts in order."""
    began = time.perf_counter()
    began_cpu = time.process_time()
    futures = [
        _threads().submit(execute_chunk, job, Chunk(chunk.index, chunk.start + offset, part))
        for offset, part in split(chunk.items, lanes)
    ]
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
    outcome.seconds = time.perf_counter() - began
    outcome.cpu = time.process_time() - began_cpu
    return outcome
