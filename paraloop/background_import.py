"""What a loop's spawn or forkserver workers need, imported in a thread while the caller runs a
slow first iteration.

Those workers need code a program whose loops end in the caller never loads: multiprocess
(with dill), 25-30 ms, and paraloop's worker side (backends/processes/child.py, which starting
a worker imports in the caller).  A loop whose first iteration is slow (a request, a file: see
``dispatch._ImportTimer``) is likely to go to workers, so the imports start in a thread while
that iteration runs, and the workers start sooner.  Not under fork (see ``dispatch._needed``):
fork workers need no multiprocess, and the worker side's import (1-2 ms) is not worth a
thread beside an iteration that may fork a process of its own.

A thread that imports holds the import system's locks of the modules it is importing, and
fills namespaces other code may look at.  So:

- a chunk reads nothing process-wide (the random generators, the program's modules) while
  the thread runs: ``execute`` joins it after the chunk's iterations, before it looks;
- no fork happens while it runs: a child would keep a lock no thread of its own releases,
  and hang importing that module.  Every fork in the process (the program's own, paraloop's
  workers) first waits for it (``os.register_at_fork``), and a loop joins it before it
  returns to the program.  The fork holds the lock that starting the thread takes, from before
  it waits until after it forked: a thread being started is published (and waited for) first,
  and none starts meanwhile (a fork just as the thread started was not waited for, and its
  child hung importing multiprocess, about one fork in 14);
- a fork that waited for it must not leave half of logging's at-fork hooks: the import
  imports logging, whose hooks, registered meanwhile, did not run before the fork, but its
  hook after it in the parent releases logging's lock ("cannot release un-acquired lock" on
  the program's stderr).  The fork takes that lock as logging's own hook would have.  And
  hooks run newest first: where logging was imported after paraloop, its hook took that lock
  before the fork waits, and the import needs it (dill's logger): the fork lets go of it while
  it waits (it waited 30 s, and its child hung);
- its CPU time is not the caller's chunk's (see :func:`cpu`).

One thread per process: the first loop that starts it names all its workers will need.  The
worker side registers no at-fork hooks (its lanes run on a pool of paraloop's own, not
concurrent.futures, whose import brings logging's and its own: a fork of the program's own that
waited for the import ran their after-fork halves without their before-fork ones, "release
unlocked lock").
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import Any

__all__ = ["cpu", "joined", "native_id", "queued", "start"]

# How long anything waits for the import: far longer than it takes (an import that hangs
# would hang the synchronous one too; this one then gives up waiting rather than hang).
WAIT_SECONDS = 30.0

_thread: threading.Thread | None = None
_lock = threading.Lock()
_seconds = [0.0]
_queued = [0.0]


def start(names: tuple[str, ...]) -> None:
    """Start importing the modules ``names``, in order, in a thread, once per process (not in a
    fork's child)."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        thread = threading.Thread(target=_import, args=(names,), name="paraloop-import", daemon=True)
        thread.start()
        # Published once started: joined() and cpu() never see a thread that cannot be joined.
        _thread = thread


def joined() -> None:
    """Wait until the import thread, if any, has ended (for at most WAIT_SECONDS)."""
    thread = _thread
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(WAIT_SECONDS)


def cpu() -> float:
    """The CPU seconds the import thread used so far: a chunk the caller ran meanwhile measures
    its process's CPU time, which must not count the import's (a request would look like
    computing, and the workers would probe before running lanes)."""
    thread = _thread
    if thread is None:
        return 0.0
    if thread.ident is not None and thread.is_alive():
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (AttributeError, OSError):  # not on this platform, or it just ended
            pass
    joined()
    return _seconds[0]


def native_id() -> int | None:
    """The import thread's native id while it runs, else None."""
    thread = _thread
    return thread.native_id if thread is not None and thread.is_alive() else None


def queued() -> float:
    """The seconds the import thread queued for a CPU so far (0.0 where unknown): while it holds
    the GIL, a chunk the caller runs meanwhile waits for it (see cpus.others_queued)."""
    thread = _thread
    if thread is None:
        return 0.0
    if thread.native_id is not None and thread.is_alive():
        from .cpus import queued_seconds_of

        return queued_seconds_of(thread.native_id)
    joined()
    return _queued[0]


def _import(names: tuple[str, ...]) -> None:
    try:
        for name in names:
            importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - imported again where a worker starts, and reported there
        pass
    finally:
        _seconds[0] = time.thread_time()
        from .cpus import queued_seconds

        _queued[0] = queued_seconds()


def _before_fork() -> None:
    # The lock is held already (see the hooks below): no import thread starts meanwhile.
    thread = _thread
    if thread is None or not thread.is_alive() or thread is threading.current_thread():
        return
    logging_before = "logging" in sys.modules
    # Before-fork hooks run newest first: logging's, if the program imported it after paraloop,
    # already took its lock, which the import needs (dill's getLogger): let go of it meanwhile.
    held = _let_go(getattr(sys.modules.get("logging"), "_lock", None))
    thread.join(WAIT_SECONDS)
    if held is not None:
        held[0]._acquire_restore(held[1])
    logging = sys.modules.get("logging")
    if not logging_before and logging is not None and not thread.is_alive():
        # Imported meanwhile: its before-fork hook (registered too late to run) takes this lock,
        # which its after-fork hook in the parent releases (the same on Python 3.10 to 3.13).
        lock = getattr(logging, "_lock", None)
        if lock is not None:
            lock.acquire()


def _let_go(lock: Any) -> tuple[Any, Any] | None:
    """Release ``lock`` (an RLock) if this thread holds it, with what restores it; else None."""
    owned = getattr(lock, "_is_owned", None)
    if owned is None or not owned():
        return None
    return lock, lock._release_save()


def _after_fork_in_child() -> None:
    # The parent's thread is not the child's (and the fork waited for it to end).
    global _thread
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    # The lock is held from before the fork waits until after it forked (see the module's
    # docstring), taken and let go by the lock's own methods, which Python calls with no frame of
    # their own: a Ctrl-C cannot come between and leave it held, as at the start of a Python hook
    # (Python prints it there and forks on; the next fork then waited for the lock forever).
    # Registered after _before_fork: the hooks before a fork run newest first, those after it oldest
    # first.  In the child, which has the lock as the parent held it, the same lock is let go.
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_lock.release)
