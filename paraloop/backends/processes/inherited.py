"""The program's streams a fork worker inherited, let go in it once the program closed them.

A worker made by ``os.fork`` holds every descriptor the program had open at that moment, and
the pool keeps its workers for the next loop.  A socket, or the pipe to a child process's
standard input, that the program closes after a loop then stays open in the workers: the peer
never reads the end of the stream, and a program that closes a child's input and waits for it
waited for ever (``multiprocessing.Pool``'s fork workers do the same while the pool lives; under
forkserver and spawn a worker inherits none of them).

So a fork worker notes, as it starts, the program's pipes and stream sockets it inherited (not
its own channel to the program, nor the standard streams, nor datagram sockets, which carry no
stream to end), and looks whether the program still holds each at the same number
(``/proc/<program>/fd/<n>``, the same file): as a loop's job arrives (the program closed it
before it started the loop), and every :data:`INTERVAL` seconds while it waits for work (less
often where a look takes longer than :data:`LOOK_SHARE` of that).  One the program closed, or
put another file in place of, is let go here too.  Its number is not freed (a file the worker
opens later would take it, and be written to through an object of the program's that still
names it): a pipe's points at ``/dev/null`` from then on, a socket's at a new socket of the same
kind, unconnected.
An object of the program's that still names it (a logging handler the workers kept from their
start) reads nothing and fails to send, as its stream is over.  A stream the program keeps open
stays the worker's, for the bodies that use it (a ``multiprocessing`` queue's pipe, a socket).
Never while a chunk runs.
"""

from __future__ import annotations

import os
import stat
import time

from ...linux import linux_facilities

__all__ = ["INTERVAL", "let_go_closed", "note", "waiting_look"]

# How often a waiting worker looks: a program that closes a stream and waits for its peer waits
# about this long at most...
INTERVAL = 0.1
# ...unless a look takes more than this share of it (a program with thousands of connections).
LOOK_SHARE = 0.02

# The program's pid, and its streams this worker inherited: descriptor -> (device, inode) of the
# file it names as the worker started.
_program = 0
_streams: dict[int, tuple[int, int]] = {}
# How long the waiting worker waits before its next look (see LOOK_SHARE).
_interval = [INTERVAL]


def note(own: set[int]) -> None:
    """In a fork worker as it starts: note the program's pipes and stream sockets it inherited,
    but ``own`` (its own ends, which the program closes at once) and the standard streams."""
    global _program
    _streams.clear()
    if not linux_facilities():
        return
    _program = os.getppid()
    try:
        numbers = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        return
    for number in numbers:
        if number <= 2 or number in own:
            continue
        try:
            found = os.fstat(number)
            if stat.S_ISFIFO(found.st_mode) or (stat.S_ISSOCK(found.st_mode) and _streaming(number)):
                _streams[number] = (found.st_dev, found.st_ino)
        except OSError:
            continue  # the listing's own descriptor, gone since


def _streaming(number: int) -> bool:
    """Whether the socket at ``number`` is not a datagram socket (whose peer waits for no end)."""
    import socket

    return _socket_kind(number)[1] != socket.SOCK_DGRAM


def _socket_kind(number: int) -> tuple[int, int]:
    """The family and type of the socket at ``number``, which stays open."""
    import socket  # here: in a fork worker that inherited sockets, not in every program's caller

    probe = socket.socket(fileno=number)
    try:
        return probe.family, probe.type
    finally:
        probe.detach()


def waiting_look() -> float | None:
    """How long the waiting worker waits for work before it looks again, None if it need not."""
    return _interval[0] if _streams else None


def let_go_closed() -> None:
    """Let go of the program's streams it closed (or replaced) since this worker started."""
    if not _streams:
        return
    began = time.perf_counter()
    _let_go_closed()
    _interval[0] = max(INTERVAL, (time.perf_counter() - began) / LOOK_SHARE)


def _let_go_closed() -> None:
    for number, identity in list(_streams.items()):
        try:
            mine = os.fstat(number)
        except OSError:
            del _streams[number]
            continue
        if (mine.st_dev, mine.st_ino) != identity:
            del _streams[number]  # the worker's own code closed or replaced it: its own business
            continue
        try:
            theirs = os.stat(f"/proc/{_program}/fd/{number}")
            held = (theirs.st_dev, theirs.st_ino) == identity
        except FileNotFoundError:
            held = False
        except OSError:
            # Not ours to read (the program changed its credentials): nothing can be told.
            _streams.clear()
            return
        if held:
            continue
        _replace(number, mine.st_mode)
        del _streams[number]


def _replace(number: int, mode: int) -> None:
    """Point ``number`` at a file that holds no stream of the program's (see the module's text)."""
    if stat.S_ISSOCK(mode):
        import socket

        family, kind = _socket_kind(number)
        try:
            with socket.socket(family, kind) as placeholder:
                os.dup2(placeholder.fileno(), number, inheritable=False)
            return
        except OSError:
            pass  # a kind of socket this process cannot make: /dev/null then
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.dup2(null, number, inheritable=False)
    finally:
        os.close(null)
