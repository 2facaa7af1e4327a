"""Which threads run a loop's chunk: nested ``ParaLoop`` loops there run sequentially.

Apart from the threads backend (which imports ``queue`` and starts threads), so that a
program whose loops never use it does not import it: the processes backend's caller and
Dask's tasks mark their threads too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["in_worker_thread", "mark_running", "running_chunk"]

_state = threading.local()


def in_worker_thread() -> bool:
    """True in a thread running a chunk: nested ParaLoop loops there run sequentially."""
    return bool(getattr(_state, "active", False))


def mark_running() -> None:
    """Mark this thread, one the threads backend started, as running chunks until it ends."""
    _state.active = True


@contextmanager
def running_chunk() -> Iterator[None]:
    """Mark this thread as running a chunk (a Dask task runs in a worker's thread too)."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous
