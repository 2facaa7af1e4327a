"""What the body prints to a standard stream the program replaced comes back, in order.

A worker process shares the caller's terminal (and any file descriptor 1 or 2 points to):
``print`` in a worker writes there as in the plain loop, in no guaranteed order.  But a
program that replaced ``sys.stdout`` with a Python object (a ``StringIO``,
``contextlib.redirect_stdout`` around the loop, pytest's capture, a notebook's stream, a
progress display's proxy) expects the body's prints in that object.  A worker holds a copy
of it (under fork) or none (spawn, forkserver, Dask), and the text went nowhere the program
could see: lost, silently.

So, for each stream the caller replaced at the loop's start (:func:`replaced_streams`, which
also notes what a write to it checks: its encoding, whether it is closed), a worker's
``sys.stdout`` (or ``sys.stderr``) is a :class:`Router` that hands each write to a
:class:`Recorder` of the running chunk (per lane, each in its own thread).  The recorder
fails a write as the program's stream would (a character its encoding cannot take, a closed
stream: the iteration raises, as in the plain loop) and keeps the writes, of both streams, in
their order; they travel in the chunk's outcome and the caller makes the same writes to its
own streams when it combines that chunk, in chunk order (``write`` for text,
``buffer.write`` for bytes).  The object then holds what the plain loop would have printed
into it, in its order; a chunk after a ``break`` or an exception is never combined, and its
writes are never made, as the plain loop never made them.  A stream the caller did not
replace goes to the worker's own, as before (a worker kept from an earlier loop gets it back).

A thread an iteration started writes into the chunk its worker runs, where it runs one at a
time (a chunk in lanes: into the worker's next outcome; after the loop: to the worker's own
stream at its end).  The caller's own chunks (see backends/processes/caller.py) print
straight into its streams: they come before any worker's, unless they run while earlier
chunks are still at the workers, and then they are recorded too.  ``fileno()`` has no
answer in a worker (a subprocess given ``sys.stdout`` there cannot write into the
program's object).
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .execute import Outcome

__all__ = [
    "WARNING",
    "Capture",
    "Recorder",
    "Router",
    "capturing",
    "current",
    "drain_loose",
    "install",
    "replaced_streams",
    "routed",
    "run_captured",
    "write_output",
]

STREAMS = ("stdout", "stderr")
# What a warning the chunk showed travels as, among its writes (see paraloop.warnings_relay).
WARNING = "warning"

# A write, as it travels: (the stream's name, text or bytes written to its buffer).
Write = tuple[str, Any]

_local = threading.local()


class Capture:
    """One running chunk's (or lane part's) output: its recorders, one per replaced stream, and
    the list their writes go into, with the warnings it shows (see paraloop.warnings_relay)."""

    __slots__ = ("recorders", "writes")

    def __init__(self, recorders: dict[str, Recorder], writes: list[Write]) -> None:
        self.recorders = recorders
        self.writes = writes


# The captures of the chunks running in this process (a worker's), for threads that run none.
_running: list[Capture] = []
_running_lock = threading.Lock()
# Whether chunks here capture their output even with no stream replaced: the warnings they
# show travel with it (set where paraloop.warnings_relay is installed).
relaying = False
# What else a chunk's outcome takes that no chunk took meanwhile (a worker's loose warnings).
loose_takers: list[Callable[[], list[Write]]] = []


def current() -> Capture | None:
    """The capture of the chunk this thread runs; for another thread (one an iteration started),
    the chunk running here, where one runs alone; else None."""
    capture: Capture | None = getattr(_local, "capture", None)
    if capture is None:
        with _running_lock:
            if len(_running) == 1:
                capture = _running[0]
    return capture


def replaced_streams() -> dict[str, dict[str, Any]]:
    """In the caller, at the loop's start: the standard streams the program replaced, each
    with what a write to it checks (see :class:`Recorder`)."""
    replaced: dict[str, dict[str, Any]] = {}
    for name in STREAMS:
        stream = getattr(sys, name)
        if stream is getattr(sys, f"__{name}__") or stream is None:
            continue
        spec: dict[str, Any] = {}
        for attribute in ("encoding", "errors", "line_buffering", "name", "newlines", "mode"):
            value = getattr(stream, attribute, None)
            if isinstance(value, (str, bool, int)) and not isinstance(value, type):
                spec[attribute] = value
        spec["closed"] = bool(getattr(stream, "closed", False))
        spec["buffer"] = getattr(stream, "buffer", None) is not None
        try:
            spec["isatty"] = bool(stream.isatty())
        except Exception:  # noqa: BLE001 - a stream without it, or closed, is not a terminal
            spec["isatty"] = False
        replaced[name] = spec
    return replaced


class _BufferRecorder:
    """``sys.stdout.buffer`` in a worker: bytes written, in order with the text."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def write(self, data: Any) -> int:
        data = bytes(memoryview(data))
        self._recorder.check_open()
        self._recorder._writes.append((self._recorder._stream, data))
        return len(data)

    def flush(self) -> None:
        self._recorder.check_open()


class _Standin:
    """What a recorder and a router share: lines written one by one, and the program's
    stream's attributes (encoding, name...) from its spec."""

    _spec: dict[str, Any]

    def write(self, text: Any) -> int:
        raise NotImplementedError

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _from_spec(self, attribute: str) -> Any:
        spec = self.__dict__.get("_spec", {})
        if attribute in spec:
            return spec[attribute]
        raise AttributeError(attribute)


class Recorder(_Standin):
    """One chunk's stand-in for the program's stream ``name``: it keeps each write, into the
    chunk's list of writes, after the checks the program's stream would make."""

    def __init__(self, name: str, spec: dict[str, Any], writes: list[Write]) -> None:
        self._stream = name
        self._spec = spec
        self._writes = writes
        encoding, errors = spec.get("encoding"), spec.get("errors")
        self._encoding = (encoding, errors) if isinstance(encoding, str) and isinstance(errors, str) else None
        if spec.get("buffer"):
            self.buffer = _BufferRecorder(self)

    def check_open(self) -> None:
        if self._spec.get("closed"):
            raise ValueError("I/O operation on closed file.")

    def write(self, text: Any) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.check_open()
        if self._encoding is not None and not text.isascii():
            text.encode(*self._encoding)  # a character the program's stream cannot take fails here
        self._writes.append((self._stream, text))
        return len(text)

    def flush(self) -> None:
        self.check_open()

    def isatty(self) -> bool:
        return bool(self._spec.get("isatty"))

    def fileno(self) -> int:
        raise io.UnsupportedOperation(
            f"sys.{self._stream} in a paraloop worker records what the body writes for the program's "
            f"own sys.{self._stream}, which has no file descriptor there"
        )

    def __getattr__(self, attribute: str) -> Any:
        return self._from_spec(attribute)


class Router(_Standin):
    """A process's ``sys.stdout`` (or ``sys.stderr``) while chunks there record their output:
    each thread's writes go to its chunk's recorder; another thread's to the chunk running
    here, if one runs alone, else into the worker's loose text (or, where the router stands
    in front of a stream that was there, the caller's or a Dask worker's, into that stream)."""

    def __init__(self, name: str, fallback: Any, spec: dict[str, Any] | None = None) -> None:
        self._stream = name
        self._fallback = fallback
        # The program's stream's attributes, for a thread that writes outside any chunk.
        self._spec = spec or {}
        self._loose: list[Write] = []
        self._lock = threading.Lock()

    def _target(self) -> Any:
        capture: Capture | None = getattr(_local, "capture", None)
        if capture is None and self._fallback is None:
            capture = current()
        if capture is not None:
            recorder = capture.recorders.get(self._stream)
            if recorder is not None:
                return recorder
        return self._fallback

    def write(self, text: Any) -> int:
        target = self._target()
        if target is not None:
            written = target.write(text)
            # A program's stream whose write returns None (many hand-written ones do).
            return len(text) if written is None else int(written)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._loose.append((self._stream, text))
        return len(text)

    def flush(self) -> None:
        target = self._target()
        if target is not None:
            target.flush()

    def take_loose(self) -> list[Write]:
        with self._lock:
            loose, self._loose = self._loose, []
        return loose

    def __getattr__(self, attribute: str) -> Any:
        # What print and write do not use (encoding, isatty, buffer...), from the chunk's
        # recorder (the program's stream's own), or the stream behind the router.
        target = self._target()
        if target is not None:
            return getattr(target, attribute)
        return self._from_spec(attribute)


def install(streams: dict[str, dict[str, Any]], owned: bool) -> None:
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
                router = Router(name, None if owned else current, streams[name])
                setattr(sys, name, router)
                if owned:
                    _retarget_logging(current, router)
            elif owned:
                current._spec = streams[name]
        elif owned:
            # A worker forked while the program had replaced the stream holds a copy of the
            # program's object; the caller's stream is its own now, and so is the worker's.
            setattr(sys, name, getattr(sys, f"__{name}__"))


def _retarget_logging(stream: Any, router: Router) -> None:
    """Logging handlers a forked worker inherited that write to the program's replaced stream
    (``logging.basicConfig()`` in a notebook writes to its ``sys.stderr``): their records are
    the body's output too."""
    logging = sys.modules.get("logging")
    if logging is None or stream is None:
        return
    handlers = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handlers.extend(getattr(logger, "handlers", ()))
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
            handler.stream = router


def run_captured(
    streams: dict[str, dict[str, Any]], run: Callable[[], Outcome], always: bool = False
) -> Outcome:
    """``run()`` (a chunk's, or a lane part's, execution) with what it writes to ``streams``
    in its outcome, and the warnings it shows where they are relayed (``always``: here too, a
    chunk the caller runs while earlier ones are at the workers)."""
    if not streams and not relaying and not always:
        return run()
    with capturing(streams) as writes:
        outcome = run()
    for name in streams:
        router = getattr(sys, name)
        if isinstance(router, Router) and router._fallback is None:
            writes.extend(router.take_loose())
    for take in loose_takers:
        writes.extend(take())
    outcome.output = writes or None
    return outcome


@contextmanager
def capturing(streams: dict[str, dict[str, Any]]) -> Iterator[list[Write]]:
    """Around one chunk (or lane part) in this thread: the writes it makes to ``streams``."""
    writes: list[Write] = []
    capture = Capture({name: Recorder(name, spec, writes) for name, spec in streams.items()}, writes)
    previous = getattr(_local, "capture", None)
    _local.capture = capture
    with _running_lock:
        _running.append(capture)
    try:
        yield writes
    finally:
        _local.capture = previous
        with _running_lock:
            _running.remove(capture)


_routed_lock = threading.Lock()
# How many of the caller's threads run a chunk through each router the caller installed.
_routed_users: dict[str, int] = {}


@contextmanager
def routed(streams: dict[str, dict[str, Any]]) -> Iterator[None]:
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
                setattr(sys, name, Router(name, current, streams[name]))
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
                        setattr(sys, name, router._fallback)


def drain_loose() -> None:
    """At a worker's end: loose text nobody took goes to the process's own stream."""
    for name in STREAMS:
        router = getattr(sys, name, None)
        if isinstance(router, Router):
            own = getattr(sys, f"__{name}__")
            for _, text in router.take_loose():
                if own is not None:
                    try:
                        own.write(text)
                        own.flush()
                    except (OSError, ValueError):
                        pass


def write_output(writes: list[Write]) -> None:
    """In the caller, as a chunk is combined: its writes, made to the program's streams, and
    the warnings it showed, shown here (see paraloop.warnings_relay)."""
    for name, piece in writes:
        if name == WARNING:
            from .warnings_relay import replay

            replay(piece)
            continue
        stream = getattr(sys, name)
        if stream is None:
            continue
        if isinstance(piece, bytes):
            stream.buffer.write(piece)
        else:
            stream.write(piece)
