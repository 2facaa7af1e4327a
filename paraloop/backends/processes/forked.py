"""Worker processes started with ``os.fork`` by paraloop itself, without multiprocess.

Under the fork start method a worker needs nothing from multiprocess: the child already
holds the worker's code, and the conversation is bytes (see protocol.py).  Importing
multiprocess costs a program 25-30 ms (dill is nearly all of it), and the parent had to
finish that import before its first fork: a CPU-bound loop of two seconds lost 2% of its
time to it, and a loop of requests lost its start.  So a fork worker is this module's
:class:`ForkedProcess` on a :class:`Channel` (two pipes), with the parts of
``multiprocess.Process`` the pool uses (``pid``, ``name``, ``sentinel``, ``exitcode``,
``is_alive``, ``join``, ``kill``), and what multiprocess's fork start does in the child:
standard input closed, the parent's exit functions dropped and the child's own run at its
end, non-daemon threads joined, streams flushed, ``os._exit``.

Spawn and forkserver workers still start through multiprocess: those children must import
and unpickle their start, which is multiprocess's work.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import inherited

__all__ = ["Channel", "ForkedProcess", "channel_pair", "wait"]

# A message's length, before its bytes.
_LENGTH = struct.Struct("!Q")
# A read asks for at most this much at once (a pipe holds 64 KiB unless widened).
_READ = 1 << 20
# Pipes widened to this, where the system allows (F_SETPIPE_SZ): a chunk's outcome of
# megabytes crosses in fewer turns of the two processes (4 MB there and back: 7.6 ms at the
# default 64 KiB, 1.0 ms at 256 KiB, no better at 1 MiB).  Not more: a user's pipes share
# a budget (pipe-user-pages-soft, 64 MiB), past which the system gives every new pipe of
# theirs, in any program, a few KiB.
_PIPE_BYTES = 1 << 18
_F_SETPIPE_SZ = 1031


class Channel:
    """One end of a two-way byte-message channel between the caller and a forked worker:
    it reads one pipe and writes the other.  ``fileno()`` is the end it reads, for
    :func:`wait`."""

    def __init__(self, reading: int, writing: int) -> None:
        self._reading = reading
        self._writing = writing
        self.closed = False

    def _open(self) -> None:
        # A closed channel's numbers may belong to another worker's pipe by now: reading or
        # watching them would take that worker's messages.  As multiprocess's connection does.
        if self.closed:
            raise OSError("handle is closed")

    def fileno(self) -> int:
        self._open()
        return self._reading

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        self._open()
        view = memoryview(data).cast("B")
        _write_all(self._writing, _LENGTH.pack(len(view)))
        _write_all(self._writing, view)

    def recv_bytes(self) -> bytes:
        """The next message; EOFError once the other end closed."""
        self._open()
        (size,) = _LENGTH.unpack(_read_exactly(self._reading, _LENGTH.size))
        return _read_exactly(self._reading, size)

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether a message (or the other end's close) is there to read within ``timeout``."""
        self._open()
        return bool(wait([self._reading], timeout))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self._reading, self._writing):
            try:
                os.close(fd)
            except OSError:
                pass


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int) -> bytes:
    first = os.read(fd, min(size, _READ)) if size else b""
    if len(first) == size:
        return first
    if not first:
        raise EOFError
    parts = [first]
    left = size - len(first)
    while left:
        part = os.read(fd, min(left, _READ))
        if not part:
            raise EOFError
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _widened(fd: int) -> int:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, OSError):
        pass  # the system's limit for pipes (pipe-max-size, or a user's share) stays
    return fd


def channel_pair() -> tuple[Channel, Channel]:
    """The caller's end and the worker's end of a new channel."""
    down_read, down_write = os.pipe()
    up_read, up_write = os.pipe()
    for fd in (down_write, up_write):
        _widened(fd)
    return Channel(up_read, down_write), Channel(down_read, up_write)


def wait(objects: list[Any], timeout: float | None) -> list[Any]:
    """Those of ``objects`` (file descriptors, or objects with ``fileno()``: forked workers'
    channels, multiprocess's connections) ready to read, or closed, within ``timeout``
    seconds; ``None`` waits for ever.  As ``multiprocess.connection.wait`` on Unix."""
    poller = select.poll()
    by_fd: dict[int, list[Any]] = {}
    for thing in objects:
        fd = thing if isinstance(thing, int) else thing.fileno()
        by_fd.setdefault(fd, []).append(thing)
        poller.register(fd, select.POLLIN)
    milliseconds = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    while True:
        try:
            events = poller.poll(milliseconds)
        except InterruptedError:
            continue
        ready: list[Any] = []
        for fd, _ in events:
            ready.extend(by_fd[fd])
        return ready


class ForkedProcess:
    """A child made by ``os.fork`` that runs ``target(*args)`` and exits; as much of
    ``multiprocess.Process`` as the pool uses."""

    # Also for __del__ of one whose __init__ a Ctrl-C cut short.
    sentinel = -1

    def __init__(
        self, target: Callable[..., Any], args: tuple[Any, ...], name: str, ends: tuple[Channel, Channel]
    ) -> None:
        self._target = target
        self._args = args
        self.name = name
        # The parent's end of the channel (closed in the child: the child sees the pipe end
        # when the parent is gone) and the child's (closed in the parent once it forked).
        self._ends = ends
        self.pid: int | None = None
        self.sentinel = -1
        self._exitcode: int | None = None
        # It ended, but its status went to the program's own wait() (or SIGCHLD is ignored).
        self.status_lost = False

    def start(self) -> None:
        # Output buffered so far would be written twice, by the child too.
        _flush_std_streams()
        # Readable (at its end) once the child is gone, however it ended.
        parent_sentinel, child_sentinel = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(parent_sentinel)
            self._ends[0].close()
            code = 1
            try:
                # The program's sockets and pipes this child holds from now on: let go of those
                # the program closes (see inherited.py), but never its own ends.
                own = self._ends[1]
                inherited.note({child_sentinel, own._reading, own._writing})
                code = self._run()
            finally:
                os._exit(code)
        os.close(child_sentinel)
        self._ends[1].close()
        self.pid = pid
        self.sentinel = parent_sentinel

    def _run(self) -> int:
        """The child's life, as multiprocess's fork start leads it; its exit status."""
        # The parent's exit functions are the parent's (its pools' shutdown among them).
        atexit._clear()
        _after_fork_of_multiprocessing()
        _close_stdin()
        code = 0
        try:
            try:
                self._target(*self._args)
            finally:
                atexit._run_exitfuncs()
        except SystemExit as stop:
            if stop.code is None:
                code = 0
            elif isinstance(stop.code, int):
                code = stop.code
            else:
                sys.stderr.write(f"{stop.code}\n")
                code = 1
        except BaseException:  # noqa: BLE001 - the child's end, reported as multiprocess does
            import traceback

            code = 1
            sys.stderr.write(f"Process {self.name}:\n")
            traceback.print_exc()
        finally:
            # Threads the iterations started and did not mark daemon end first, as at any
            # program's end.
            threading._shutdown()  # type: ignore[attr-defined]
            _flush_std_streams()
        return code

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit status, or minus the signal that ended it."""
        self._reap(block=False)
        return self._exitcode

    def is_alive(self) -> bool:
        return self.pid is not None and self.exitcode is None and not self.status_lost

    def join(self, timeout: float | None = None) -> None:
        if self.pid is None or self._exitcode is not None or self.status_lost:
            return
        if wait([self.sentinel], timeout):
            self._reap(block=True)

    def kill(self) -> None:
        if self.pid is not None and self.is_alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap(self, block: bool) -> None:
        if self.pid is None or self._exitcode is not None or self.status_lost:
            return
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            # Reaped by someone else (the program's own os.wait(), or SIGCHLD ignored, which
            # reaps every child at once): it has ended, how is not known here.
            self.status_lost = True
            return
        if pid:
            self._exitcode = os.waitstatus_to_exitcode(status)

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # As multiprocess's finalizer does: the sentinel is closed once nothing holds the
        # process (a loop's list of what to wait on may still name its number until then).
        # os.close held here: at the interpreter's end this module's globals may be gone.
        if self.sentinel >= 0:
            try:
                _close(self.sentinel)
            except OSError:
                pass
            self.sentinel = -1


def _flush_std_streams(*also: Any) -> None:
    """Flush ``sys.stdout``, ``sys.stderr`` and the streams ``also`` before a fork."""
    for stream in (sys.stdout, sys.stderr, *also):
        try:
            if stream is not None:
                stream.flush()
        except (AttributeError, ValueError, OSError):
            pass  # closed, replaced by something without flush, or its descriptor gone


def _after_fork_of_multiprocessing() -> None:
    """What a fork child of multiprocess (and of the standard library's multiprocessing) does
    for the program's objects of that library, for each one the program imported: their
    after-fork hooks (a Queue the body puts into restarts its feeder thread; without it the
    items stayed in a buffer nobody sent), the parent's finalizers forgotten, the parent's
    children not this process's (their exit function, registered again, would stop them),
    and that exit function for what the iterations start (a Pool's processes)."""
    for library in ("multiprocess", "multiprocessing"):
        process = sys.modules.get(f"{library}.process")
        util = sys.modules.get(f"{library}.util")
        if process is None or util is None:
            continue
        process._children = set()  # type: ignore[attr-defined]
        util._finalizer_registry.clear()
        util._run_after_forkers()
        atexit.register(util._exit_function)


def _close_stdin() -> None:
    """Standard input of the child reads nothing, as under multiprocess: the parent and its
    workers must not race for the terminal's lines."""
    if sys.stdin is None:
        return
    try:
        sys.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            sys.stdin = open(fd, encoding="utf-8", closefd=False)
        except BaseException:
            os.close(fd)
            raise
    except (OSError, ValueError):
        pass
