"""Shared-memory segments paraloop makes: created, removed, and removed after the program
however it ended.

A segment (a :class:`~paraloop.SharedArray`'s, a large captured array's) is a file in
``/dev/shm`` (elsewhere a POSIX ``shm_open`` object): memory that stays taken until
someone removes its name, until the machine restarts if nobody does.  The program
removes it when it is done with it; if the program is killed, a cleaner does
(``shm_cleaner.py``): a small process started with the program's first segment, in a
session of its own, that reads the names the program made and removed from a pipe and,
once the pipe closes (the program and every process forked from it are gone), removes
those still there.

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

__all__ = ["create", "remove"]

_DIRECTORY = "/dev/shm"
_CLEANER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shm_cleaner.py")

_lock = threading.Lock()
# This process's cleaner: its pid of origin (a forked child starts its own), the write end of
# its pipe, and the names registered with it that are still there.  (A Popen only where
# posix_spawn cannot start a session, kept so that it is never collected.)
_owner = 0
_pipe: int | None = None
_process: Any = None
_names: set[str] = set()


def create(name: str, size: int) -> int:
    """A new segment ``name`` of ``size`` bytes (readable and writable by this user only),
    registered with the cleaner; returns a descriptor of it, which the caller closes.

    Raises OSError as ``open`` does (``FileExistsError``; ``ENOSPC`` where ``/dev/shm`` is
    full shows when it is written, not here)."""
    descriptor = _open(name)
    try:
        os.ftruncate(descriptor, size)
        _register(name)
    except BaseException:
        os.close(descriptor)
        _unlink(name)
        raise
    return descriptor


def remove(name: str) -> None:
    """Remove segment ``name`` (mappings of it stay valid until unmapped) and unregister it."""
    try:
        _unlink(name)
    finally:
        _unregister(name)


def _open(name: str) -> int:
    flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
    if linux_facilities():
        return os.open(f"{_DIRECTORY}/{name}", flags | os.O_NOFOLLOW, 0o600)
    posixshmem: Any = importlib.import_module("_posixshmem")
    descriptor: int = posixshmem.shm_open(f"/{name}", flags, mode=0o600)
    return descriptor


def _unlink(name: str) -> None:
    try:
        if linux_facilities():
            os.unlink(f"{_DIRECTORY}/{name}")
        else:
            importlib.import_module("_posixshmem").shm_unlink(f"/{name}")
    except FileNotFoundError:
        pass


def _register(name: str) -> None:
    with _lock:
        _names.add(name)
        _send(b"+" + name.encode() + b"\n")


def _unregister(name: str) -> None:
    with _lock:
        if name in _names and _owner == os.getpid():
            _names.discard(name)
            _send(b"-" + name.encode() + b"\n")


def _send(line: bytes) -> None:
    """Tell this process's cleaner (started if need be, again if it was killed)."""
    global _pipe
    for _attempt in range(2):
        if _owner != os.getpid() or _pipe is None:
            _start()
        assert _pipe is not None
        try:
            # Under PIPE_BUF bytes (a name is short): written whole, never interleaved.
            os.write(_pipe, line)
            return
        except OSError:
            # The cleaner was killed: a new one, told every name still there (the loop does).
            os.close(_pipe)
            _pipe = None
            line = b"".join(b"+" + name.encode() + b"\n" for name in sorted(_names))
    raise OSError("paraloop could not start its shared-memory cleaner (shm_cleaner.py)")


def _start() -> None:
    global _owner, _pipe
    read, write = os.pipe()
    try:
        _spawn(read)
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
    _owner, _pipe = os.getpid(), write


def _spawn(read: int) -> None:
    """Start the cleaner on the pipe's read end.

    ``-I -S``: no site, no environment, nothing of the program's path: it runs the one file.
    Its own session: a signal to the program's process group does not reach it.  Its output
    goes nowhere, so it holds none of the program's pipes open.  ``posix_spawn``, not
    ``subprocess.Popen``, whose object would warn at the program's exit that the process
    still runs (it does, until the program is gone)."""
    global _process
    arguments = [sys.executable, "-I", "-S", _CLEANER]
    try:
        os.posix_spawn(
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


def _forked() -> None:
    """In a forked child: the parent's cleaner pipe is not this process's to hold (the
    parent's cleaner would wait for this child to end before it removed anything), nor are
    its names; and the lock may have been held by another thread at the fork."""
    global _pipe, _process, _owner, _lock
    _lock = threading.Lock()
    if _pipe is not None:
        try:
            os.close(_pipe)
        except OSError:
            pass
    _pipe, _process, _owner = None, None, 0
    _names.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
