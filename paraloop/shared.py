"""``SharedArray``: a numpy array in shared memory that workers write in place.

For large numeric outputs: ``out[i] = f(x)`` in the loop body writes straight
into memory every worker process maps, so nothing is sent back or combined.
The process that creates the array owns its segment and frees it when the
array is garbage collected or the program ends; if that process itself is
killed (or its whole process group, as a closed terminal does), paraloop's
cleaner (a small helper process in a session of its own, started with the
first array, see :mod:`paraloop.shm`) frees it.  Workers map the segment by
name and never register it, so a worker that exits or crashes frees nothing
early.
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Iterator
from typing import Any

from . import shm

__all__ = ["SharedArray"]

# Arrays this process created, by segment name: unpickling one here gives it back.
_owned: weakref.WeakValueDictionary[str, SharedArray] = weakref.WeakValueDictionary()
# Arrays this (worker) process mapped, by segment name: a loop's chunks share one mapping,
# and the mapping closes when the worker drops the loop's job.
_attached: weakref.WeakValueDictionary[str, SharedArray] = weakref.WeakValueDictionary()


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        from .errors import ParaLoopError

        raise ParaLoopError(
            "SharedArray needs numpy, which is not installed: pip install 'paraloop[numpy]'"
        ) from None
    return numpy


class SharedArray:
    """A numpy array in shared memory: loop bodies write ``out[i] = ...`` with no combining.

    Every worker process writes into the same memory, so the loop sends no
    results back for it; after the loop the caller reads the array as it is.
    Iterations should write distinct elements: two iterations writing one
    element leave whichever wrote last, which depends on timing.

    Example::

        # paraloop: enable
        import numpy as np
        from paraloop import ParaLoop, SharedArray

        out = SharedArray((1000, 3), dtype="float64")
        for i in ParaLoop(range(1000)):
            out[i] = [i, i**2, np.sqrt(i)]
        total = out.array.sum()

    ``out.array`` is a numpy view of the memory; ``numpy.asarray(out)`` is
    the same.  Indexing, slicing and ``len()`` work on the array itself.  The
    memory is freed when the array is garbage collected or the program ends,
    also if the program is killed.  It lives on this machine: the Dask
    backend refuses it.
    """

    def __init__(self, shape: int | tuple[int, ...], dtype: Any = "float64", *, fill: Any = 0) -> None:
        numpy = _numpy()
        self.dtype = numpy.dtype(dtype)
        self.shape: tuple[int, ...] = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = int(numpy.prod(self.shape, dtype=numpy.int64)) * self.dtype.itemsize
        name = f"paraloop_{os.getpid()}_{os.urandom(6).hex()}"
        # Registered with paraloop's cleaner, which frees it if this process dies without doing so.
        size = max(nbytes, 1)
        descriptor = shm.create(name, size)
        try:
            memory = mmap.mmap(descriptor, size)
        except BaseException:
            shm.remove(name)
            raise
        finally:
            os.close(descriptor)
        self.name = name
        self.array = numpy.ndarray(self.shape, dtype=self.dtype, buffer=memory)
        if fill is not None:
            self.array.fill(fill)
        self._finalizer = weakref.finalize(self, _free, name, memory, self.array, os.getpid())
        _owned[name] = self

    @classmethod
    def from_array(cls, values: Any) -> SharedArray:
        """A SharedArray holding a copy of ``values`` (anything numpy.asarray takes)."""
        source = _numpy().asarray(values)
        shared = cls(source.shape, source.dtype, fill=None)
        shared.array[...] = source
        return shared

    def free(self) -> None:
        """Free the shared memory now; the array must not be used afterwards."""
        self._finalizer()

    def __getitem__(self, index: Any) -> Any:
        return self.array[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        self.array[index] = value

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.array)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        if dtype is None or _numpy().dtype(dtype) == self.dtype:
            return self.array
        return self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"SharedArray({self.array!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _attach, (self.name, self.shape, self.dtype.str)


def _free(name: str, memory: mmap.mmap, array: Any, owner: int) -> None:
    del array
    if os.getpid() != owner:
        return  # a forked worker's copy: the segment is the creator's to free
    try:
        memory.close()
    except BufferError:
        pass  # views of the array are still alive; the memory goes when they do
    shm.remove(name)  # also tells the cleaner it is done


def _attach(name: str, shape: tuple[int, ...], dtype: str) -> SharedArray:
    """Map an existing segment: in a worker, or back in the process that created it."""
    found = _owned.get(name) or _attached.get(name)
    if found is not None:
        return found
    numpy = _numpy()
    try:
        descriptor = shm.opened(name, os.O_RDWR)
    except FileNotFoundError:
        from .errors import ParaLoopError

        raise ParaLoopError(
            f"the SharedArray {name!r} no longer exists: it was freed (free(), or garbage "
            "collected) by the process that created it before a worker could use it"
        ) from None
    try:
        size = os.fstat(descriptor).st_size
        memory = mmap.mmap(descriptor, size)
    finally:
        os.close(descriptor)
    shared: SharedArray = SharedArray.__new__(SharedArray)
    shared.name = name
    shared.shape = shape
    shared.dtype = numpy.dtype(dtype)
    shared.array = numpy.ndarray(shape, dtype=shared.dtype, buffer=memory)
    _attached[name] = shared
    return shared
