"""The threads backend: chunks run in threads of the caller's process.

For loops whose iterations mostly wait (network, disk) and for bodies that
capture objects no process can receive (locks, open files, sockets).  Each
chunk still runs on private copies of the tracked state, combined in
iteration order, so the result is the same as with processes.  Threads are
started per loop as daemons and take chunks from the shared chunker; after a
break or an exception no new chunk starts, and a running chunk finishes in
the background (a thread cannot be stopped).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .chunks import Chunker
from .execute import Job, Outcome, execute_chunk

__all__ = ["in_worker_thread", "run_threads", "running_chunk"]

_state = threading.local()
_FINISHED = object()


def in_worker_thread() -> bool:
    """True in a thread running a chunk: nested ParaLoop loops there run sequentially."""
    return bool(getattr(_state, "active", False))


@contextmanager
def running_chunk() -> Iterator[None]:
    """Mark this thread as running a chunk (a Dask task runs in a worker's thread too)."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous


def run_threads(job: Job, chunker: Chunker, count: int) -> Iterator[Outcome]:
    """Run the chunks on ``count`` threads; yield outcomes as they arrive."""
    results: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        _state.active = True
        try:
            while not stop.is_set():
                chunk = chunker.next()
                if chunk is None:
                    break
                results.put(execute_chunk(job, chunk))
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            results.put(error)
        finally:
            results.put(_FINISHED)

    threads = [
        threading.Thread(target=work, name=f"paraloop-thread-{n}", daemon=True) for n in range(1, count + 1)
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < count:
            item = results.get()
            if item is _FINISHED:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, Outcome)
                yield item
    finally:
        stop.set()
        chunker.stop()
