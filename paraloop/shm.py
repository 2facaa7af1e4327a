"""Shared-memory segments paraloop makes: created, removed, and removed after the program
however it ended.

A segment (a :class:`~paraloop.SharedArray`'s, a large captured array's) is a file in
``/dev/shm`` (elsewhere a POSIX ``shm_open`` object): memory that stays taken until
someone removes its name, until the machine restarts if nobody does.  The program
removes it when it is done with it; if the program is killed, a cleaner does
(``shm_cleaner.py``): a small process started with the program's first segment, in a
session of its own, that reads the names the program made and removed from a socket and,
once the program is gone (the socket closed, and the program's pid ended), removes those
still there.

Not the standard library's resource tracker, which ``multiprocessing.shared_memory``
registers its segments with: that helper is in the program's process group, so a signal to
the group (``kill -9 -PGID``, a shell's ``kill %1``, the hang-up of a closed terminal or a
dropped SSH connection) ended it with the program, and every segment stayed in memory.
The cleaner's own session keeps it out of the group's signals.

Example (what :class:`~paraloop.SharedArray` does)::

    descriptor = shm.create("paraloop_123_ab12", 4096)  # 0600, registered
    ...
    shm.remove("paraloop_123_ab12")  # removed, unregistered
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

from .linux import linux_facilities

__all__ = ["DIRECTORY", "create", "folder_made", "folder_removed", "opened", "remove"]

DIRECTORY = "/dev/shm"
_CLEANER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shm_cleaner.py")

_lock = threading.Lock()
# This process's cleaner: its pid of origin (a forked child starts its own), this end of its
# socket (a bare descriptor: a socket object left open for the program's life would warn at its
# exit, under ``-X dev``, that it was never closed) and what the descriptor is (a program may
# close it, and open something else under its number: see _connected), the cleaner's pid, and
# the names registered with it still there.  (A Popen only where posix_spawn cannot start a
# session, kept so that it is never collected.)
_owner = 0
_channel: int | None = None
_identity: tuple[int, int] | None = None
_cleaner = 0
_process: Any = None
_names: set[str] = set()
# The flag that keeps a write to a cleaner gone from raising SIGPIPE (Linux's MSG_NOSIGNAL;
# elsewhere the socket's SO_NOSIGPIPE does it, see _start).
_no_signal = 0


def create(name: str, size: int) -> int:
    """A new segment ``name`` of ``size`` bytes (readable and writable by this user only),
    registered with the cleaner; returns a descriptor of it, which the caller closes.

    Registered before it is made: a SIGKILL from then on leaves the cleaner the name (removing
    a name never made is nothing).  Raises OSError as ``open`` does (``FileExistsError``;
    ``ENOSPC`` where ``/dev/shm`` is full shows when it is written, not here)."""
    _register(name)
    try:
        descriptor = opened(name, os.O_CREAT | os.O_EXCL | os.O_RDWR)
    except BaseException:
        _unregister(name)
        raise
    try:
        os.ftruncate(descriptor, size)
    except BaseException:
        os.close(descriptor)
        remove(name)
        raise
    return descriptor


def remove(name: str) -> None:
    """Remove segment ``name`` (mappings of it stay valid until unmapped) and unregister it."""
    try:
        _unlink(name)
    finally:
        _unregister(name)


def folder_made(path: str) -> None:
    """The folder of paraloop's own Dask cluster (``paraloop-dask-*``), registered with the
    cleaner: a program killed before it removed it leaves it to the cleaner, which removes it
    once the cluster's programs have left too."""
    _register("@" + path)


def folder_removed(path: str) -> None:
    """The cluster's folder, removed by the program: unregistered."""
    _unregister("@" + path)


def opened(name: str, flags: int) -> int:
    """A descriptor of segment ``name`` opened with ``flags`` (``os.O_CREAT | os.O_EXCL``: a new
    one, 0600), registering it nowhere (a worker maps the caller's so); a link planted at the
    name is refused.

    Not through ``multiprocessing.shared_memory.SharedMemory(name)``, which (before Python 3.13)
    registers the segment with the standard library's resource tracker: a worker with a tracker
    of its own would unlink it when it exits."""
    if linux_facilities():
        return os.open(f"{DIRECTORY}/{name}", flags | os.O_NOFOLLOW, 0o600)
    # Elsewhere the call SharedMemory itself makes to open a segment by name.
    posixshmem: Any = importlib.import_module("_posixshmem")
    descriptor: int = posixshmem.shm_open(f"/{name}", flags, mode=0o600)
    return descriptor


def _unlink(name: str) -> None:
    try:
        if linux_facilities():
            os.unlink(f"{DIRECTORY}/{name}")
        else:
            importlib.import_module("_posixshmem").shm_unlink(f"/{name}")
    except FileNotFoundError:
        pass


def _register(name: str) -> None:
    # Outside the lock: a fork waits for the lock (see below), and an import while another
    # thread forks in an import of its own would wait for each other.
    import socket  # noqa: F401 - what a cleaner's start needs, imported once

    with _lock:
        _names.add(name)
        _send(b"+" + name.encode() + b"\n")


def _unregister(name: str) -> None:
    with _lock:
        if name in _names and _owner == os.getpid():
            _names.discard(name)
            # Not to a cleaner gone (killed, or its socket closed by the program): none is
            # started for it (at the program's exit, say), and the name is removed already.
            if _connected():
                _send(b"-" + name.encode() + b"\n")


def _send(line: bytes) -> None:
    """Tell this process's cleaner (started if need be, again if it was killed or the program
    closed its socket)."""
    for _attempt in range(2):
        if not _connected():
            _forget()
            _start()
            line = b"".join(b"+" + name.encode() + b"\n" for name in sorted(_names))
        try:
            # Never SIGPIPE (a program may have set its default action, which would end it
            # here): a cleaner gone is an error, and a new one is started.
            _sendall(line)
            return
        except OSError:
            _forget()
    raise OSError("paraloop could not start its shared-memory cleaner (shm_cleaner.py)")


def _connected() -> bool:
    """Whether this process's cleaner socket is still the one it made: a program that closes
    its descriptors (``os.closerange``, as daemonizing code does) may have opened something of
    its own under the number since, which must never be written to nor closed."""
    return _owner == os.getpid() and _ours()


def _ours() -> bool:
    """Whether the cleaner socket's descriptor is still the socket this process (or the parent
    it was forked from) made."""
    if _channel is None:
        return False
    try:
        status = os.fstat(_channel)
    except OSError:
        return False
    return (status.st_dev, status.st_ino) == _identity


def _forget() -> None:
    """Let go of the cleaner: its socket closed only if it is still ours, and the cleaner reaped
    if it ended (killed: it would stay a zombie of the program's)."""
    global _channel, _identity
    if _channel is not None and _ours():
        os.close(_channel)  # not if the number is the program's now, or nobody's
    _channel, _identity = None, None
    if _cleaner and _owner == os.getpid():
        try:
            os.waitpid(_cleaner, os.WNOHANG)
        except ChildProcessError:
            pass


def _start() -> None:
    global _owner, _channel, _identity, _cleaner, _no_signal
    import socket

    _no_signal = getattr(socket, "MSG_NOSIGNAL", 0)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if sys.platform == "darwin":
            ours.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_NOSIGPIPE", 0x1022), 1)
        _cleaner = _spawn(theirs.fileno())
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    status = os.fstat(ours.fileno())
    _owner, _channel, _identity = os.getpid(), ours.detach(), (status.st_dev, status.st_ino)


def _sendall(line: bytes) -> None:
    import socket

    assert _channel is not None
    # A socket object for the write only: it leaves the descriptor open (detach) when done.
    channel = socket.socket(fileno=_channel)
    try:
        channel.sendall(line, _no_signal)
    finally:
        channel.detach()


def _spawn(read: int) -> int:
    """Start the cleaner on ``read``, its standard input; its pid.

    ``-I -S``: no site, no environment, nothing of the program's path: it runs the one file.
    Its own session: a signal to the program's process group does not reach it.  Its output
    goes nowhere, so it holds none of the program's pipes open.  ``posix_spawn``, not
    ``subprocess.Popen``, whose object would warn at the program's exit that the process
    still runs (it does, until the program is gone)."""
    global _process
    arguments = [sys.executable, "-I", "-S", _CLEANER, str(os.getpid())]
    try:
        return os.posix_spawn(
            sys.executable,
            arguments,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )
    except (AttributeError, NotImplementedError):  # no posix_spawn, or no setsid for it
        import subprocess

        _process = subprocess.Popen(
            arguments,
            stdin=read,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return 0


def _forked() -> None:
    """In a forked child: the parent's cleaner socket is not this process's to hold (the
    parent's cleaner would wait for this child to end before it removed anything), nor are
    its names nor its cleaner."""
    global _channel, _identity, _process, _owner, _cleaner
    if _channel is not None and _ours():
        os.close(_channel)  # not if the number is the program's now, or nobody's
    _channel, _identity, _process, _owner, _cleaner = None, None, None, 0, 0
    _names.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
    # A fork waits while another thread starts a cleaner or writes to it: a child forked between
    # the socket's making and its noting would keep the cleaner's end of it open, and the cleaner
    # would wait for that child's end too.  The lock is taken and let go by its own methods, which
    # Python calls with no frame of their own: a Ctrl-C cannot come between and leave it held, as
    # at the start of a Python hook (Python prints it there and forks on; the next fork would wait
    # for ever).  In the child, which has the lock as the parent held it, the same lock is let go.
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_lock.release)
