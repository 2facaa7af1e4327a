"""Processes paraloop starts end with the program that started them, however it ended.

A worker process, or a program of the local Dask cluster, whose program was killed
(SIGKILL leaves no chance to clean up) would run on, re-parented to PID 1.  Each one
watches its program's pid from a thread and leaves once it is gone.  Also imported by
the Dask cluster's programs as a preload (``DASK_DISTRIBUTED__*__PRELOAD``), with the
program's pid in ``PARALOOP_OWNER``.
"""

from __future__ import annotations

import _thread
import os
import signal
import time
from collections.abc import Callable

from .linux import linux_facilities

__all__ = ["alive", "die_with"]

# How often a watcher looks, in seconds.
INTERVAL = 0.5


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed and not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # gone, or its pid now belongs to someone else's process
    if not linux_facilities():
        return True  # no /proc: the signal test is all there is (a worker also watches its ppid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True  # no /proc here: the signal test is all there is


def die_with(
    owner: int, gone: Callable[[], bool] = lambda: False, leave: Callable[[], None] | None = None
) -> None:
    """From a thread: once ``owner`` is gone (or ``gone()`` says so), ``leave()`` (default: exit)."""

    def watch() -> None:
        while True:
            time.sleep(INTERVAL)
            if gone() or not alive(owner):
                (leave or _exit)()
                return

    _thread.start_new_thread(watch, ())


def _exit() -> None:
    os._exit(0)


def _stop_then_exit() -> None:
    """A Dask program: SIGTERM first (it closes in order: a nanny stops its worker and removes
    its semaphores), then exit if it is still here a few seconds later."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5.0)
    os._exit(0)


def dask_setup(server: object) -> None:
    """Dask's preload hook: watch the paraloop program named in ``PARALOOP_OWNER``."""
    owner = os.environ.get("PARALOOP_OWNER", "")
    if owner.isdigit():
        _leave_the_group_of(int(owner))
        die_with(int(owner), leave=_stop_then_exit)


def _leave_the_group_of(owner: int) -> None:
    """Out of the program's process group, into a session of its own.

    A signal to the program's group (``kill -9 %1`` in a shell, the hang-up of a closed
    terminal) would otherwise end this Dask program with it, at once, with its nanny's
    named semaphores still in ``/dev/shm`` (its resource tracker, in the same group, died
    too).  Outside the group it leaves as it does when the program alone is killed: in order,
    on its lifeline, its semaphores removed."""
    try:
        if os.getpgid(0) == os.getpgid(owner):
            os.setsid()
    except OSError:
        pass  # the program is gone already (its lifeline sees it), or this leads a group
