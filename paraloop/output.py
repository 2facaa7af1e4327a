"""What the body prints to a standard stream the program replaced comes back, in order.

A worker process shares the caller's terminal (and any file descriptor 1 or 2 points to):
``print`` in a worker writes there as in the plain loop, in no guaranteed order.  But a
program that replaced ``sys.stdout`` with a Python object (a ``StringIO``,
``contextlib.redirect_stdout`` around the loop, pytest's capture, a notebook's stream, a
progress display's proxy) expects the body's prints in that object.  A worker holds a copy
of it (under fork) or none (spawn, forkserver, Dask), and the text went nowhere the program
could see: lost, silently.

So, for each stream the caller replaced at the loop's start (:func:`replaced_streams`), a
worker's ``sys.stdout`` (or ``sys.stderr``) is a :class:`Router` that writes into a buffer
per running chunk (per lane, each in its own thread); the text travels in the chunk's outcome
and the caller writes it to its own stream when it combines that chunk, in chunk order.  The
object then holds what the plain loop would have printed into it, in its order; a chunk after
a ``break`` or an exception is never combined, and its text is never written, as the plain
loop never printed it.  A stream the caller did not replace goes to the worker's own, as
before (a worker kept from an earlier loop gets it back).

Text written by a thread that is not running a chunk (one an iteration started) goes with
the worker's next outcome, or to the worker's own stream at its end.  The caller's own chunks
(see backends/processes/caller.py) print straight into its stream: they come before any
worker's.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .execute import Outcome

__all__ = [
    "Router",
    "capturing",
    "collected",
    "drain_loose",
    "install",
    "replaced_streams",
    "run_captured",
    "write_output",
]

STREAMS = ("stdout", "stderr")

_local = threading.local()


def replaced_streams() -> tuple[str, ...]:
    """In the caller, at the loop's start: the standard streams the program replaced."""
    return tuple(name for name in STREAMS if getattr(sys, name) is not getattr(sys, f"__{name}__"))


class Router(io.TextIOBase):
    """A worker's ``sys.stdout`` (or ``sys.stderr``): each chunk's thread writes into its own
    buffer; any other thread into the worker's loose text (or, in a process paraloop does not
    own, a Dask worker's, into the stream that was there)."""

    def __init__(self, name: str, fallback: TextIO | None) -> None:
        super().__init__()
        self.name = name
        self.fallback = fallback
        self.loose = io.StringIO()
        self.lock = threading.Lock()

    def _target(self) -> Any:
        buffers: dict[str, io.StringIO] | None = getattr(_local, "buffers", None)
        if buffers is not None:
            buffer = buffers.get(self.name)
            if buffer is not None:
                return buffer
        return self.fallback

    def write(self, text: str) -> int:
        target = self._target()
        if target is not None:
            return int(target.write(text))
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self.lock:
            self.loose.write(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        target = self._target()
        if target is not None:
            target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def take_loose(self) -> str:
        with self.lock:
            text = self.loose.getvalue()
            if text:
                self.loose = io.StringIO()
        return text

    def __getattr__(self, name: str) -> Any:
        # What print and write do not use (encoding, errors, ...), from the chunk's buffer.
        return getattr(self._target() or self.loose, name)


def install(streams: tuple[str, ...], owned: bool) -> None:
    """At a job's arrival in a worker: a router for each stream the caller replaced, and the
    process's own stream for the others.

    ``owned``: a worker process of paraloop's (its streams are paraloop's to set); otherwise a
    process shared with other work (Dask), whose own streams stay behind the routers, which
    stay (another thread there may be running a chunk that prints into one).
    """
    for name in STREAMS:
        current = getattr(sys, name)
        if name in streams:
            if not isinstance(current, Router):
                setattr(sys, name, Router(name, None if owned else current))
        elif owned:
            # A worker forked while the program had replaced the stream holds a copy of the
            # program's object; the caller's stream is its own now, and so is the worker's.
            setattr(sys, name, getattr(sys, f"__{name}__"))


_routed_lock = threading.Lock()
# How many of the caller's threads run a chunk through each router the caller installed.
_routed_users: dict[str, int] = {}


@contextmanager
def routed(streams: tuple[str, ...]) -> Iterator[None]:
    """In the caller, around a chunk it runs while earlier ones are still at the workers: a
    router in each of ``streams``, in front of the program's own object (which the program's
    other threads go on writing to), until the last such chunk of any thread ends."""
    if not streams:
        yield
        return
    with _routed_lock:
        for name in streams:
            current = getattr(sys, name)
            if not isinstance(current, Router):
                setattr(sys, name, Router(name, current))
                _routed_users[name] = 0
            if name in _routed_users:
                _routed_users[name] += 1
    try:
        yield
    finally:
        with _routed_lock:
            for name in streams:
                if name not in _routed_users:
                    continue
                _routed_users[name] -= 1
                router = getattr(sys, name)
                if _routed_users[name] == 0:
                    del _routed_users[name]
                    if isinstance(router, Router):
                        setattr(sys, name, router.fallback)


def run_captured(streams: tuple[str, ...], run: Callable[[], Outcome]) -> Outcome:
    """``run()`` (a chunk's, or a lane part's, execution) with what it prints to ``streams``
    in its outcome."""
    if not streams:
        return run()
    with capturing(streams) as buffers:
        outcome = run()
    outcome.output = collected(buffers)
    return outcome


@contextmanager
def capturing(streams: tuple[str, ...]) -> Iterator[dict[str, io.StringIO]]:
    """Around one chunk (or lane part) in this thread: what it prints to ``streams``."""
    if not streams:
        yield {}
        return
    buffers = {name: io.StringIO() for name in streams}
    previous = getattr(_local, "buffers", None)
    _local.buffers = buffers
    try:
        yield buffers
    finally:
        _local.buffers = previous


def collected(buffers: dict[str, io.StringIO]) -> dict[str, str] | None:
    """The text a chunk printed, with the worker's loose text since the last outcome."""
    output: dict[str, str] = {}
    for name, buffer in buffers.items():
        text = buffer.getvalue()
        router = getattr(sys, name)
        if isinstance(router, Router):
            text += router.take_loose()
        if text:
            output[name] = text
    return output or None


def drain_loose() -> None:
    """At a worker's end: loose text nobody took goes to the process's own stream."""
    for name in STREAMS:
        router = getattr(sys, name, None)
        if isinstance(router, Router):
            text = router.take_loose()
            own = getattr(sys, f"__{name}__")
            if text and own is not None:
                try:
                    own.write(text)
                    own.flush()
                except (OSError, ValueError):
                    pass


def write_output(output: dict[str, str]) -> None:
    """In the caller, as a chunk is combined: its text, to the program's streams."""
    for name, text in output.items():
        stream = getattr(sys, name)
        if stream is not None:
            stream.write(text)
