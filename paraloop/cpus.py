"""How many CPUs this process may really use: affinity, cgroup quota, and the overrides."""

from __future__ import annotations

import math
import os
import sys
import threading
import time

from .environment import variable
from .linux import linux_facilities, read_file

__all__ = [
    "available_cpus",
    "default_workers",
    "environment_workers",
    "others_queued",
    "others_queued_since",
    "queued_and_runs",
    "queued_seconds",
    "queued_seconds_of",
    "waiting_iterations",
    "waited_for_the_gil",
    "waiting_workers",
    "worker_count",
]


class _Schedstat:
    """One thread's open ``/proc/thread-self/schedstat``, closed when the thread's storage goes.

    Each thread owns its descriptor: with one shared slot, two threads that both found it
    stale closed the same number twice, and the second close hit whatever had reused the
    number (a worker's pipe, whose next send failed with EBADF).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.descriptor = -1
        if linux_facilities():
            try:
                self.descriptor = os.open("/proc/thread-self/schedstat", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass

    def close(self) -> None:
        descriptor, self.descriptor = self.descriptor, -1
        if descriptor >= 0:
            os.close(descriptor)

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass


_schedstat = threading.local()


# When the quota was last read (time.monotonic()), and what it was.
_quota_read: tuple[float, float | None] = (-1e9, None)
# How long a quota read stays good: each loop asks several times, and reading it costs tens
# of microseconds; a quota changed by an administrator counts from the next second.
QUOTA_SECONDS = 1.0


# Where the cgroup's CPU quota is: v2's "quota period" (or "max period"), v1's two numbers.
CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CPU quota, read at most once a second."""
    global _quota_read
    now = time.monotonic()
    if now - _quota_read[0] > QUOTA_SECONDS:
        _quota_read = (now, _read_cgroup_quota())
    return _quota_read[1]


def _read_cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max`` or v1 CFS), if any."""
    try:
        quota, period = read_file(CGROUP_V2).split()[:2]
        if quota != b"max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        # The period only where there is a quota ("-1": none, the usual case): one file less.
        quota_us = int(read_file(CGROUP_V1[0]))
        if quota_us > 0 and (period_us := int(read_file(CGROUP_V1[1]))) > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def _python_override() -> int | None:
    """The CPU count the user gave Python (``-X cpu_count=N`` or ``PYTHON_CPU_COUNT=N``), if any.

    Python 3.13 makes ``os.process_cpu_count()`` answer it; paraloop honours it on every
    version, so the same setting limits the same program everywhere.  Python 3.13 refuses
    a bad value at startup; earlier versions do not know the setting, so paraloop refuses it.
    """
    given = getattr(sys, "_xoptions", {}).get("cpu_count")
    where = "-X cpu_count"
    if not isinstance(given, str):
        given = None if sys.flags.ignore_environment else variable("PYTHON_CPU_COUNT")
        where = "PYTHON_CPU_COUNT"
    if given is None or given.strip() in ("", "default"):
        return None
    try:
        value = int(given)
    except ValueError:
        value = 0
    if value < 1:
        from .errors import ParaLoopError

        raise ParaLoopError(
            f"{where}={given!r} is not a positive whole number or 'default'; "
            "give the number of CPUs Python may use, e.g. PYTHON_CPU_COUNT=4"
        )
    return value


def available_cpus() -> int:
    """The CPUs this process may run on, never less than one.

    The user's ``-X cpu_count`` or ``PYTHON_CPU_COUNT`` wins; otherwise, on Linux, the
    CPUs of the process's affinity, capped by its cgroup's CPU quota; elsewhere what
    Python reports (``os.process_cpu_count()`` on 3.13, else ``os.cpu_count()``).
    """
    override = _python_override()
    if override is not None:
        return override
    if not linux_facilities():
        counter = getattr(os, "process_cpu_count", os.cpu_count)
        return max(1, counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - a Linux without affinity
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def waiting_workers() -> int:
    """How far the pool may grow in processes for waiting loops that cannot use lanes (timeout=)."""
    return min(32, 8 * available_cpus())


def waiting_iterations() -> int:
    """How many iterations may be in flight at once for loops whose iterations mostly wait."""
    return min(128, 32 * available_cpus())


def worker_count(value: object, where: str) -> int:
    """The workers a count asks for, as joblib reads ``n_jobs``: a positive number is itself,
    ``-1`` all the usable CPUs, ``-2`` all but one, and so on, never fewer than one.

    ``where`` names the setting in the error that refuses anything else (0, a fraction, text).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        return value if value > 0 else max(1, available_cpus() + 1 + value)
    from .errors import ParaLoopError

    raise ParaLoopError(
        f"{where}={value!r}: give the number of workers, a whole number of at least 1 "
        f"({where}=4), or -1 for all the CPUs this process may use, -2 for all but one"
    )


def environment_workers() -> int | None:
    """The count ``PARALOOP_WORKERS`` sets (``-1``: all usable CPUs, ``-2``: all but one), if any."""
    given = variable("PARALOOP_WORKERS", "").strip()
    if not given:
        return None
    try:
        value: object = int(given)
    except ValueError:
        value = given
    return worker_count(value, "PARALOOP_WORKERS")


def default_workers() -> int:
    """Workers for a loop whose code names no count: ``PARALOOP_WORKERS`` or the usable CPUs."""
    override = environment_workers()
    return available_cpus() if override is None else override


def queued_seconds() -> float:
    """Seconds the calling thread has spent ready to run but waiting for a CPU, 0.0 if unknown.

    On a loaded machine a busy iteration gets a fraction of a CPU, and its
    CPU time alone would make it look like one that waits for the network.
    CPU time plus this queueing time is what it asked of the CPUs.  Linux
    keeps the figure per thread in ``/proc/thread-self/schedstat``; each thread keeps
    its file open and re-reads it at offset 0.  Elsewhere the figure is unknown, and
    the lanes policy decides from CPU time alone (see :mod:`paraloop.backends.processes.policy`).
    """
    return queued_and_runs()[0]


def queued_and_runs() -> tuple[float, int]:
    """:func:`queued_seconds`, and how many times the calling thread was put on a CPU (each
    wake-up counts: see :func:`waited_for_the_gil`); ``(0.0, 0)`` if unknown."""
    stat: _Schedstat | None = getattr(_schedstat, "file", None)
    if stat is None or stat.pid != os.getpid():
        if stat is not None:
            # A forked child inherits the forking thread's storage: its own copy of the
            # descriptor, which names the parent's thread.
            stat.close()
        stat = _schedstat.file = _Schedstat()
    if stat.descriptor < 0:
        return 0.0, 0
    try:
        fields = os.pread(stat.descriptor, 128, 0).split()
        return int(fields[1]) / 1e9, int(fields[2])
    except (OSError, IndexError, ValueError):
        return 0.0, 0


def waited_for_the_gil(off_cpu: float, held: float, runs: int) -> float:
    """Of ``off_cpu`` seconds a thread spent neither on a CPU nor queued for one, the part it
    may have waited for the GIL, held by other threads that queued ``held`` seconds for a CPU
    meanwhile (``math.inf``: unknown), the thread having been put on a CPU ``runs`` times.

    A thread preempted while it holds the GIL keeps the others waiting for it: neither their
    CPU time nor their queueing, so a chunk that computes would look like one that waits for
    the network.  But a thread that sleeps or waits for a reply does not ask for the GIL
    meanwhile, whoever queues.  What tells them apart: a thread waiting for the GIL wakes
    every switch interval (5 ms) to ask for it again, while one waiting for I/O wakes once
    per wait.  So at most ``runs`` switch intervals, and no more than the others queued.
    """
    return max(0.0, min(off_cpu, held, runs * sys.getswitchinterval()))


def queued_seconds_of(native_id: int) -> float:
    """Like :func:`queued_seconds`, for another thread of this process (by native id)."""
    if not linux_facilities():
        return 0.0
    try:
        # os-level calls: a buffered file object cost twice as much, and a caller's chunk reads
        # one per thread of the program (see others_queued).
        descriptor = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return int(os.read(descriptor, 128).split()[1]) / 1e9
        finally:
            os.close(descriptor)
    except (OSError, IndexError, ValueError):
        return 0.0


# Other threads read around a caller's chunk at most: each costs two reads of a few
# microseconds; a program with more threads (a server's pool) leaves their figure unknown.
MAX_OTHERS = 16


def others_queued(skip: int | None = None) -> dict[int, float] | None:
    """The time each other Python thread of this process has queued for a CPU, by native id
    (see :func:`waited_for_the_gil`): only Python threads take the GIL.  Empty where the
    figure is unknown for all; None, unknown, with more than ``MAX_OTHERS`` of them.
    ``skip``: a thread whose figure the caller reads otherwise (one that may end meanwhile,
    its figure kept).
    """
    if not linux_facilities():
        return {}
    left_out = (None, threading.get_native_id(), skip)
    others = [thread.native_id for thread in threading.enumerate() if thread.native_id not in left_out]
    if len(others) > MAX_OTHERS:
        return None
    return {native_id: queued_seconds_of(native_id) for native_id in others if native_id is not None}


def others_queued_since(before: dict[int, float] | None, skip: int | None = None) -> float | None:
    """Seconds the other Python threads queued for a CPU since :func:`others_queued` gave
    ``before`` (a thread started since then counts from its start); None if unknown: one of
    them ended meanwhile, its figure gone with it, or there were too many to read."""
    if before is None:
        return None
    after = others_queued(skip)
    if after is None or any(native_id not in after for native_id in before):
        return None
    return sum(queued - before.get(native_id, 0.0) for native_id, queued in after.items())
