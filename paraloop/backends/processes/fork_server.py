"""multiprocess's fork server, forked from the program rather than started as a new interpreter.

Python draws a new hash secret in every interpreter it starts (hash randomization).  A fork
server that multiprocess starts is such an interpreter, and so is each worker it forks: there
``hash("a")`` is not the program's, and a body that shards by ``hash(key) % n``, or whose result
follows the order of a set of strings (``for word in set(words): counts[word] += 1`` builds a
dict whose key order is that order), gave another result than the plain loop, silently.  The
secret cannot be handed to a new interpreter (``PYTHONHASHSEED`` holds 32 bits of it, and the
program's was not drawn from one), but a process forked from the program shares it.

So the fork server of paraloop's workers is the program itself, forked as the first worker
starts, and then made what multiprocess's new interpreter would be: only the listening socket
and the "alive" pipe of the program's descriptors (the others point at ``/dev/null`` under
their numbers, so that no object of the program's that names one writes to a file opened
later), the interpreter's own signal handlers and standard streams, its garbage collector kept
off the program's objects (they are frozen: a collection would write to all of their pages).
It then runs multiprocess's own server (``forkserver.main``), which forks each worker, sends
the program its pid and its exit status, and ends when the program does, as before.

Only while the program runs one thread of Python (a fork with other threads could copy a lock
one of them held, and the server's workers would wait for it for ever; those ``_thread`` starts
count too, and paraloop's own progress bar starts none), from its main thread, on Linux (the
descriptors are listed from ``/proc/self/fd``), and for paraloop's own workers: a program that
starts a fork server of its own gets multiprocess's.  Otherwise, and under the spawn start
method, a worker is a new interpreter and hashes strings its own way (docs/semantics.md, Known
differences).  Threads without Python (a BLAS pool, faulthandler's watchdog) are not seen: a
fork copies them away, as under the fork start method (BLAS pools mend themselves after a fork;
a watchdog armed with ``faulthandler.dump_traceback_later`` leaves its lock held, and a worker
that arms one waits for ever: open, tests/test_adversarial_session44.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ... import background_import, log
from ...linux import linux_facilities
from ...signal_errors import HANDLED_SIGNALS, getsignal

__all__ = ["forked", "harmless", "install", "would_fork"]

# How multiprocess's fork server is started (the command its new interpreter runs).
_COMMAND = "from multiprocess.forkserver import main;"

# Set by install: whether this thread is starting one of paraloop's workers.
_ours: Callable[[], bool] = lambda: False  # noqa: E731 - replaced once


def install(ours: Callable[[], bool]) -> None:
    """Have multiprocess start a fork server that ``ours()`` says is paraloop's by forking
    this process (once; see the module's docstring)."""
    global _ours
    from multiprocess import util

    if getattr(util.spawnv_passfds, "paraloop", False):
        return
    _ours = ours
    original = util.spawnv_passfds

    def spawnv_passfds(path: str, args: list[str], passfds: Any) -> int:
        command = args[-1] if args else ""
        if isinstance(command, str) and command.startswith(_COMMAND) and _may_fork():
            return _fork(command, {int(fd) for fd in passfds})
        return int(original(path, args, passfds))

    spawnv_passfds.paraloop = True  # type: ignore[attr-defined]
    util.spawnv_passfds = spawnv_passfds


# The pid of the fork server this process forked, if it did.
_forked: int | None = None


def would_fork(now: bool = False) -> bool:
    """Whether a fork server paraloop starts would be forked from this process: ``now``, or once
    paraloop's own import thread ended (a start waits for it)."""
    others = 0 if now or background_import.native_id() is None else 1
    # Every thread that runs Python, those started with _thread (which threading does not
    # count) included: one inside an import held the module's lock, which the server's workers
    # then waited for, for ever; but paraloop's own that hold nothing the server needs.  The
    # main thread: the server sets its signal handlers, which only the main thread may.
    running = [ident for ident in sys._current_frames() if ident not in _harmless]
    return (
        len(running) == 1 + others
        and threading.current_thread() is threading.main_thread()
        and linux_facilities()
    )


# Threads of paraloop's that hold no lock a fork would copy held where the server needs it
# (dispatch's import timer, which waits on locks of its own): by ident.
_harmless: set[int] = set()


@contextlib.contextmanager
def harmless() -> Iterator[None]:
    """This thread, while inside, does not keep the fork server from being forked."""
    ident = threading.get_ident()
    _harmless.add(ident)
    try:
        yield
    finally:
        _harmless.discard(ident)


def forked(pid: int | None) -> bool:
    """Whether the fork server ``pid`` is one this process forked."""
    return pid is not None and pid == _forked


def _may_fork() -> bool:
    return _ours() and would_fork(now=True)


def _fork(command: str, keep: set[int]) -> int:
    """Fork this process into multiprocess's fork server (running ``command``); its pid."""
    from .forked import _flush_std_streams
    from .handle import freeze_for_fork

    # What the program printed and Python still holds would be printed again by each worker; the
    # interpreter's own streams too, which the server's workers write to (see below).
    _flush_std_streams(sys.__stdout__, sys.__stderr__)
    # The program's objects out of the server's collector, which stays so there; in the program
    # as they were.
    thaw = freeze_for_fork()
    try:
        pid = os.fork()
    except BaseException:
        thaw()
        raise
    if pid:
        global _forked
        _forked = pid
        thaw()
        log.debug("forked the fork server (pid %s) from the program", pid)
        return pid
    code = 1
    try:
        _as_a_new_interpreter(keep)
        exec(compile(command, "<paraloop fork server>", "exec"), {"__name__": "__paraloop_fork_server__"})
        code = 0
    except SystemExit:
        code = 0  # the program ended: multiprocess's server ends so
    except BaseException:  # noqa: BLE001 - the server's own end; its workers are its children
        try:
            import traceback  # on this error only (imports on demand: see pool.py)

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(1)
    os._exit(code)


def _as_a_new_interpreter(keep: set[int]) -> None:
    """In the forked server: what a new interpreter started with only ``keep`` would have."""
    # The program's handlers are its own (a SIGTERM handler that saves its work): a new
    # interpreter has Python's, and the server's workers get them from it.
    signal.set_wakeup_fd(-1)
    for number in HANDLED_SIGNALS:
        try:
            current = getsignal(number)
        except (OSError, ValueError):
            continue
        if callable(current):
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    _only(keep)
    # The lock multiprocess held to start this server, copied held: a worker that started a fork
    # server of its own would wait for it for ever.
    from multiprocess import forkserver

    forkserver._forkserver._lock = threading.Lock()


def _only(keep: set[int]) -> None:
    """Every descriptor but the standard streams and ``keep`` points at ``/dev/null``.

    Not closed: an object of the program's that names one (a file, a socket) would close it
    again when it is collected, by then maybe a connection the server accepted."""
    numbers = [int(name) for name in os.listdir("/proc/self/fd")]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for number in numbers:
            if number > 2 and number not in keep and number != null:
                try:
                    os.dup2(null, number, inheritable=False)
                except OSError:
                    pass  # the listing's own descriptor, closed since
    finally:
        os.close(null)
