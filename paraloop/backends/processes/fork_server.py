"""multiprocess's fork server, forked from the program rather than started as a new interpreter.

Python draws a new hash secret in every interpreter it starts (hash randomization).  A fork
server that multiprocess starts is such an interpreter, and so is each worker it forks: there
``hash("a")`` is not the program's, and a body that shards by ``hash(key) % n``, or whose result
follows the order of a set of strings (``for word in set(words): counts[word] += 1`` builds a
dict whose key order is that order), gave another result than the plain loop, silently.  The
secret cannot be handed to a new interpreter (``PYTHONHASHSEED`` holds 32 bits of it, and the
program's was not drawn from one), but a process forked from the program shares it.

So the fork server of paraloop's workers is the program itself, forked before the program runs
(``python -m paraloop``, where forkserver will be the start method: :func:`fork_early`, which then
waits to become the server) or as the first worker starts, and then made what multiprocess's new
interpreter would be: only the listening socket
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
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ... import background_import, log
from ...linux import linux_facilities
from ...signal_errors import HANDLED_SIGNALS, getsignal

__all__ = ["fork_early", "forked", "harmless", "install", "prepare", "waiting", "would_fork"]

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
        if isinstance(command, str) and command.startswith(_COMMAND) and _ours():
            fds = sorted(int(fd) for fd in passfds)
            pid = _hand_over(command, fds)
            if pid is not None:
                return pid
            if would_fork(now=True):
                return _fork(command, set(fds))
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


def waiting() -> bool:
    """Whether a fork server forked as the program started waits to become the server."""
    return _early is not None and _early[3] == os.getpid()


# The fork server forked as the program started (see fork_early), while it waits for
# multiprocess's command: its pid, the program's end of their socket (a descriptor, not a socket
# object: one the program never used was reported unclosed at its exit), which file that is
# (device, inode: a program that closes descriptors it did not open may have put a file of its
# own at the number), and the program's pid (a child the program forks has a copy of this, but
# the server is not its to use).
_early: tuple[int, int, tuple[int, int], int] | None = None


def fork_early() -> None:
    """Fork the fork server now, before the program's own code runs (``python -m paraloop``, its
    workers' start method forkserver): it then holds what a new interpreter would, not the
    memory the program has when its first loop starts (which stayed the server's for the
    program's life, freed or not), nor a lock a thread of the program holds then (a faulthandler
    watchdog's, which a fork leaves held).  It waits until the program's first forkserver worker
    starts, and then becomes multiprocess's server (see :func:`install`); a program that starts
    none ends it by ending (the end of their socket)."""
    global _early
    if _early is not None or not would_fork(now=True):
        return
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    _flush_streams()
    pid = os.fork()
    if pid:
        theirs.close()
        state = os.fstat(ours.fileno())
        _early = (pid, ours.detach(), (state.st_dev, state.st_ino), os.getpid())
        log.debug("forked the fork server (pid %s) as the program starts", pid)
        return
    code = 1
    try:
        _as_a_new_interpreter({theirs.fileno()})
        # A Ctrl-C at the terminal reaches the whole process group: not this one's business.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        request = _request(theirs)
        if request is None:
            os._exit(0)  # the program ended without a forkserver worker
        command, targets, fds = request
        theirs.close()
        _place(fds, targets)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _fresh_lock()
        exec(compile(command, "<paraloop fork server>", "exec"), {"__name__": "__paraloop_fork_server__"})
        code = 0
    except SystemExit:
        code = 0
    except BaseException:  # noqa: BLE001 - the server's own end; its workers are its children
        try:
            import traceback  # on this error only (imports on demand: see pool.py)

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(1)
    os._exit(code)


def _request(connection: Any) -> tuple[str, list[int], list[int]] | None:
    """In the early server: multiprocess's command, the descriptor numbers it names, and the
    descriptors themselves; None once the program ended.  Told to prepare meanwhile (see
    :func:`prepare`), it imports what the server and its workers need."""
    import pickle
    import socket

    while True:
        try:
            data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 16)
        except InterruptedError:
            continue
        if not data:
            return None
        message = pickle.loads(data)
        if message == _PREPARE:
            _prepare_here(connection)
            continue
        command, targets = message
        return str(command), list(targets), list(fds)


# The message that tells the early server a loop may start workers (see prepare).
_PREPARE = "prepare"
# What the server and its workers import as the first worker starts: imported beforehand, they
# start as fork workers do (a worker of a server that had only what the program had as it
# started took as long as a new interpreter's, 70-100 ms).
_PREPARED = (
    "multiprocess.forkserver",
    "multiprocess.spawn",
    "multiprocess.connection",
    "dill",
    "paraloop.backends.processes.child",
)


def _prepare_here(connection: Any) -> None:
    import importlib
    import select
    import socket

    for name in _PREPARED:
        ready, _, _ = select.select([connection], [], [], 0)
        if ready and not connection.recv(1, socket.MSG_PEEK):
            os._exit(0)  # the program ended meanwhile: not a moment more on its standard streams
        with contextlib.suppress(Exception):
            importlib.import_module(name)


_prepared = [False]


def prepare() -> None:
    """Tell the early server (see :func:`fork_early`) that a loop may start forkserver workers:
    it imports what it and they need while the caller runs the loop's first iterations."""
    early = _early
    if early is None or not waiting() or _prepared[0]:
        return
    _prepared[0] = True
    import pickle

    with contextlib.suppress(OSError):  # gone (killed): the first worker's start finds out
        _send(early, pickle.dumps(_PREPARE), [])


def _send(early: tuple[int, int, tuple[int, int], int], data: bytes, fds: list[int]) -> None:
    """Send ``data`` and ``fds`` to the early server, if its socket is still at its number."""
    import socket

    _, number, which, _ = early
    if not _same_file(number, which):
        raise ConnectionResetError("the early fork server's socket was closed by the program")
    connection = socket.socket(fileno=number)
    try:
        socket.send_fds(connection, [data], fds)
    finally:
        connection.detach()


def _place(fds: list[int], targets: list[int]) -> None:
    """Put each of ``fds`` at the number in ``targets`` the command names (first out of their way)."""
    import fcntl

    above = max(targets, default=0) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in fds]
    for fd in fds:
        os.close(fd)
    for fd, target in zip(moved, targets):
        os.dup2(fd, target, inheritable=False)
        os.close(fd)


def _hand_over(command: str, fds: list[int]) -> int | None:
    """Give multiprocess's command and descriptors to the early server (see fork_early); its pid,
    or None if there is none (or it is gone: killed meanwhile)."""
    global _early
    early = _early
    if early is None or not waiting():
        return None
    _early = None
    import pickle

    pid, number, which, _ = early
    try:
        _send(early, pickle.dumps((command, fds)), fds)
    except OSError:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # its status, or it stays a zombie
        return None
    finally:
        if _same_file(number, which):
            os.close(number)
    return pid


def _same_file(number: int, which: tuple[int, int]) -> bool:
    """Whether descriptor ``number`` is still the file ``which`` (device, inode)."""
    try:
        state = os.fstat(number)
    except OSError:
        return False
    return (state.st_dev, state.st_ino) == which


def _fork(command: str, keep: set[int]) -> int:
    """Fork this process into multiprocess's fork server (running ``command``); its pid."""
    _flush_streams()
    # The program's objects out of the server's collector (see handle.frozen_for_fork), which
    # stays so there; in the program as they were.
    own = gc.get_freeze_count()
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        if not own:
            gc.unfreeze()
        raise
    if pid:
        global _forked
        _forked = pid
        if not own:
            gc.unfreeze()
        log.debug("forked the fork server (pid %s) from the program", pid)
        return pid
    code = 1
    try:
        _as_a_new_interpreter(keep)
        _fresh_lock()
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


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        # What the program printed and Python still holds would be printed again by each worker.
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - a stream that cannot flush loses nothing more here
            pass


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


def _fresh_lock() -> None:
    """The lock multiprocess held to start this server, copied held: a worker that started a
    fork server of its own would wait for it for ever."""
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
