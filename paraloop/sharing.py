"""Large captured arrays travel to worker processes once, through shared memory.

A loop that captures a 200 MB numpy array used to pickle it into the loop's job and
send it to every worker: a copy in the job, another in its message, and one per worker
(plus the pickle buffer while it loads).  Instead, while the process backend pickles a
job, each captured C- or Fortran-contiguous array of at least :data:`SHARE_BYTES`
(nested in lists, dicts and objects too) is written once into a shared-memory segment,
and the job carries the segment's name.  Each worker maps the segment read-only: the
array is not copied in any worker, and the caller writes it with ``pwrite`` rather than
through a mapping, so the copy in the segment is not counted in the caller's memory.

Captured arrays are read-only in workers anyway (see :mod:`paraloop.guard`), so a
read-only mapping changes nothing a body may do; :func:`shared_here` lets the guard
name such an array when a body writes to it.  The caller frees a loop's segments when
the loop ends (a worker keeps its mapping until it drops the job); if the caller is
killed, paraloop's cleaner frees them (see :mod:`paraloop.shm`).  Only where ``/dev/shm``
exists (Linux); elsewhere, and for the Dask backend, arrays are pickled as before.
"""

from __future__ import annotations

import functools
import mmap
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import shm
from .linux import linux_facilities

__all__ = ["SHARE_BYTES", "Segments", "reduce_shared", "shared_here", "sharing"]

# Smaller arrays pickle in well under a millisecond per worker: not worth a segment.
SHARE_BYTES = 1 << 20

_local = threading.local()
# Arrays this (worker) process mapped from a segment, by id: the guard names them.
_mapped: dict[int, weakref.ref[Any]] = {}


class Segments:
    """The shared-memory segments one loop's job refers to; :meth:`free` at the loop's end."""

    def __init__(self) -> None:
        self._segments: list[str] = []

    def add(self, data: memoryview) -> str | None:
        """Write ``data`` into a new segment and return its name; None if it cannot be written
        (``/dev/shm`` full, as a container's 64 MB one soon is, or not writable): the array
        is then pickled into the job as before."""
        name = f"paraloop_in_{os.getpid()}_{os.urandom(6).hex()}"
        try:
            # Registered with paraloop's cleaner, which frees it if this process is killed.
            descriptor = shm.create(name, max(data.nbytes, 1))
        except OSError:
            return None
        try:
            try:
                written = 0
                while written < data.nbytes:
                    written += os.pwrite(descriptor, data[written:], written)
            finally:
                os.close(descriptor)
        except OSError:
            # tmpfs allocates on write: a full /dev/shm fails here, not when the segment is made.
            shm.remove(name)
            return None
        self._segments.append(name)
        return name

    def free(self) -> None:
        # One at a time, each forgotten once released: run again after a Ctrl-C that cut it
        # short (see dispatch.run), it releases the rest (releasing one twice is harmless).
        while self._segments:
            shm.remove(self._segments[-1])
            self._segments.pop()

    def __len__(self) -> int:
        return len(self._segments)


@contextmanager
def sharing(segments: Segments | None) -> Iterator[None]:
    """Within this block, :func:`reduce_shared` puts large arrays being pickled in ``segments``."""
    if segments is None or not linux_facilities() or not os.path.isdir(shm.DIRECTORY):
        yield
        return
    previous = getattr(_local, "segments", None)
    _local.segments = segments
    try:
        yield
    finally:
        _local.segments = previous


def reduce_shared(obj: Any) -> Any:
    """A pickle reduction of ``obj`` through a segment, or ``NotImplemented``.

    Called by paraloop's picklers for every object they save: cheap when not sharing.
    """
    segments: Segments | None = getattr(_local, "segments", None)
    if segments is None or type(obj).__module__ != "numpy" or type(obj).__name__ != "ndarray":
        return NotImplemented
    if obj.nbytes < SHARE_BYTES or obj.dtype.hasobject:
        return NotImplemented
    flags = obj.flags
    if flags.c_contiguous:
        fortran = False
    elif flags.f_contiguous:
        fortran = True
    else:
        return NotImplemented
    # Its bytes in memory order, through a uint8 view: datetime64 and timedelta64 arrays have no
    # buffer of their own (memoryview refuses them), and the dtype travels whole (a structured
    # dtype's fields, its metadata), not as the string that only names its item size.
    data = memoryview((obj.T if fortran else obj).reshape(-1).view("u1"))
    name = segments.add(data)
    if name is None:
        return NotImplemented
    return _attach, (name, obj.shape, obj.dtype, fortran)


def _attach(name: str, shape: tuple[int, ...], dtype: Any, fortran: bool) -> Any:
    """The array in segment ``name``, mapped read-only (in a worker process)."""
    import numpy

    descriptor = shm.opened(name, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        memory = mmap.mmap(descriptor, size, access=mmap.ACCESS_READ)
    finally:
        os.close(descriptor)
    array = numpy.ndarray(shape, dtype=dtype, buffer=memory, order="F" if fortran else "C")
    key = id(array)
    _mapped[key] = weakref.ref(array, functools.partial(_forget, key))
    return array


def _forget(key: int, _reference: object) -> None:
    _mapped.pop(key, None)


def shared_here(array: Any) -> bool:
    """Whether ``array`` was mapped from a segment here (read-only, writable in the caller)."""
    found = _mapped.get(id(array))
    return found is not None and found() is array
