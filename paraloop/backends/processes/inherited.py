"""The program's streams a fork worker inherited, let go in it once the program closed them.

A worker made by ``os.fork`` holds every descriptor the program had open at that moment, and
the pool keeps its workers for the next loop.  A socket, or the pipe to a child process's
standard input, that the program closes after a loop then stays open in the workers: the peer
never reads the end of the stream, and a program that closes a child's input and waits for it
waited for ever (``multiprocessing.Pool``'s fork workers do the same while the pool lives; under
forkserver and spawn a worker inherits none of them).

So a fork worker notes, as it starts, the sockets and pipes it inherited from the program (not
its own channel to the program, nor the standard streams), and while it waits for work it looks,
every :data:`INTERVAL` seconds, whether the program still holds each of them at the same number
(``/proc/<program>/fd``): one the program closed, or put another file in place of, is let go here
too.  Its number is not freed but points at ``/dev/null`` from then on, so that a file the worker
opens later cannot take it and be written to through an object of the program's that still
names it; such an object reads nothing and writes into nothing, as its stream is over.  A stream
the program keeps open stays the worker's, for the bodies that use it (a ``multiprocessing``
queue's pipe, a logging socket).  Never while a chunk runs: only the waiting worker looks.
"""

from __future__ import annotations

import os
import stat

from ...linux import linux_facilities

__all__ = ["INTERVAL", "let_go_closed", "note", "watched"]

# How often a waiting worker looks: a program that closes a stream and waits for its peer waits
# about this long at most.
INTERVAL = 0.1

# The program's pid, and its streams this worker inherited: descriptor -> what it names
# ("socket:[inode]", "pipe:[inode]"), as the worker's own /proc entry showed when it started.
_program = 0
_streams: dict[int, str] = {}
_null = -1


def note(own: set[int]) -> None:
    """In a fork worker as it starts: note the program's sockets and pipes it inherited, but
    ``own`` (its own ends, which the program closes at once) and the standard streams."""
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
            mode = os.fstat(number).st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                _streams[number] = os.readlink(f"/proc/self/fd/{number}")
        except OSError:
            continue  # the listing's own descriptor, gone since


def watched() -> bool:
    """Whether this worker holds streams of the program's to look after."""
    return bool(_streams)


def let_go_closed() -> None:
    """Let go of the program's streams it closed (or replaced) since this worker started."""
    global _null
    for number, name in list(_streams.items()):
        try:
            if os.readlink(f"/proc/self/fd/{number}") != name:
                del _streams[number]  # the worker's own code closed or replaced it: its own business
                continue
        except OSError:
            del _streams[number]
            continue
        try:
            held = os.readlink(f"/proc/{_program}/fd/{number}") == name
        except FileNotFoundError:
            held = False
        except OSError:
            # Not ours to read (the program changed its credentials): nothing can be told.
            _streams.clear()
            return
        if held:
            continue
        if _null < 0:
            _null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        os.dup2(_null, number, inheritable=False)
        del _streams[number]
