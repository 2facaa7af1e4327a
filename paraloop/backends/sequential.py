"""The sequential backend: chunks run inline, in the caller's thread, one after another.

Also the backend of a loop nested in a worker (a process or a thread).  A ``timeout=``
is enforced with SIGALRM, so it needs the main thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..chunks import Chunker
from ..errors import IterationTimeoutError, ParaLoopError
from ..execute import ChunkIterator, Job, Outcome, execute_chunk

__all__ = ["run_inline"]


def run_inline(job: Job, chunker: Chunker) -> Iterator[Outcome]:
    """Run the chunks one after another in the calling thread; with a timeout, each iteration
    arms SIGALRM (so only in the main thread)."""
    if job.timeout is None:
        while (chunk := chunker.next()) is not None:
            yield execute_chunk(job, chunk)
        return
    if threading.current_thread() is not threading.main_thread():
        raise ParaLoopError(
            f"{job.filename}, line {job.line}: timeout= with backend='sequential' works only in "
            "the main thread (it uses SIGALRM); use the processes backend here"
        )
    previous = signal.signal(signal.SIGALRM, _alarm(job))
    try:
        while (chunk := chunker.next()) is not None:
            yield execute_chunk(job, chunk._replace_items(_Alarmed(chunk.items, job.timeout, chunk.start)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _alarm(job: Job) -> Callable[[int, Any], None]:
    def expired(signum: int, frame: Any) -> None:
        raise IterationTimeoutError(
            f"{job.filename}, line {job.line}: an iteration ran longer than timeout={job.timeout:g} s"
        )

    return expired


class _Alarmed:
    """A chunk's items; each iteration arms SIGALRM for the timeout (the inline backend)."""

    def __init__(self, items: Any, timeout: float, start: int) -> None:
        self.items = items
        self.timeout = timeout
        self.start = start

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> _AlarmedIterator:
        return _AlarmedIterator(self.items, self.start, self.timeout)


class _AlarmedIterator(ChunkIterator):
    __slots__ = ("timeout",)

    def __init__(self, items: Any, start: int, timeout: float) -> None:
        super().__init__(items, start)
        self.timeout = timeout

    def starting(self, index: int) -> None:
        signal.setitimer(signal.ITIMER_REAL, self.timeout)

    def finished(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
