"""The one switch that hides paraloop's Linux-only facilities, so that their fallbacks run on Linux.

On Linux paraloop reads what only Linux offers, and elsewhere does without it:

* the CPUs of the process's affinity and its cgroup's CPU quota (:mod:`paraloop.cpus`);
  elsewhere ``os.process_cpu_count()`` (Python 3.13) or ``os.cpu_count()``;
* the time a thread waited for a CPU, from ``/proc/thread-self/schedstat``
  (:func:`paraloop.cpus.queued_seconds`); elsewhere it is unknown (0.0);
* whether the program that started a worker is a zombie, from ``/proc/PID/stat``
  (:mod:`paraloop.lifeline`); elsewhere a worker watches its parent's pid and its own
  parent pid (a worker whose parent died is re-parented);
* whether a BLAS or OpenMP runtime is loaded, from ``/proc/self/maps``
  (:mod:`paraloop.native_threads`); elsewhere threadpoolctl is asked whenever numpy is loaded;
  OpenBLAS alone limited through its own functions (:mod:`paraloop.openblas_direct`), and a
  library loaded since the last look told by the size of its code mappings (``VmLib`` in
  ``/proc/self/status``); elsewhere
  threadpoolctl, and only a module imported since;
* the file mode mask a loop's workers take, from ``/proc/self/status`` (``Umask``); elsewhere
  ``os.umask`` set and put back at once (:mod:`paraloop.backends.processes.dispatch`);
* a SharedArray's segment opened as ``/dev/shm/NAME`` in workers (:mod:`paraloop.shared`);
  elsewhere through ``shm_open``, as ``multiprocessing.shared_memory`` opens it;
* large captured arrays sent through ``/dev/shm`` (:mod:`paraloop.sharing`); elsewhere
  they are pickled into the loop's job.

``PARALOOP_PORTABLE=1`` hides them all, so the test suite runs the fallbacks on Linux as
they run on macOS (tox's ``portable`` environment).  A testing aid, not a user option: it is
read once per process (a loop asked six times, and each read of the environment costs
microseconds).
"""

from __future__ import annotations

import os
import sys

__all__ = ["PORTABLE", "linux_facilities", "read_file"]

# The environment variable that hides the Linux-only facilities.
PORTABLE = "PARALOOP_PORTABLE"


_facilities: bool | None = None


def linux_facilities() -> bool:
    """Whether paraloop may use Linux-only facilities: on Linux, unless ``PARALOOP_PORTABLE=1``."""
    global _facilities
    if _facilities is None:
        _facilities = sys.platform.startswith("linux") and os.environ.get(PORTABLE, "").strip() in ("", "0")
    return _facilities


def read_file(path: str) -> bytes:
    """A ``/proc`` or ``/sys`` file's bytes, read without a file object (the kernel makes them as
    they are read; a buffered file object cost a loop's first chunk 0.1 ms)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while part := os.read(descriptor, 1 << 16):
            parts.append(part)
    finally:
        os.close(descriptor)
    return b"".join(parts)
