"""How many shared libraries this process has loaded and unloaded so far, in microseconds.

paraloop keeps what it found of the native thread pools (see :mod:`paraloop.native_threads`)
while no library was loaded since: one loaded through ``ctypes``, or by an optional import
that failed after loading its runtime, changes nothing in ``sys.modules``.  The C library
counts them: ``dl_iterate_phdr`` hands its callback ``dlpi_adds`` and ``dlpi_subs``, the
objects loaded and unloaded since the program started (glibc and musl).  One call that stops
at the first object costs a few microseconds; counting the files in ``/proc/self/map_files``,
which it replaces, cost 0.07-0.25 ms each loop (the caller's budget for a short loop is about
a millisecond).

Where the counters are not offered (an older C library, a platform without
``dl_iterate_phdr``), :func:`counts` answers None and the caller counts mapped files instead.
ctypes is imported at the first call, not with this module: a program with a native library
loaded has imported it already (numpy does), and the runtime of one without need not.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["counts"]

# dl_iterate_phdr and the callback, made at the first call (None: not offered).
_made: tuple[Any, Any] | None = None
_unavailable = False
# What the callback saw, with the lock that keeps it one call's.
_answer: list[tuple[int, int]] = []
_lock = threading.Lock()


def _make() -> tuple[Any, Any] | None:
    import ctypes

    class Info(ctypes.Structure):
        """The head of ``struct dl_phdr_info`` up to the two counters (``<link.h>``)."""

        _fields_ = [
            ("dlpi_addr", ctypes.c_void_p),
            ("dlpi_name", ctypes.c_char_p),
            ("dlpi_phdr", ctypes.c_void_p),
            ("dlpi_phnum", ctypes.c_uint16),
            ("dlpi_adds", ctypes.c_ulonglong),
            ("dlpi_subs", ctypes.c_ulonglong),
        ]

    size = ctypes.sizeof(Info)

    def first(info: Any, given: int, data: Any) -> int:
        # ``given``: the size of the structure the C library filled (older ones stop before
        # the counters).
        if given >= size:
            _answer.append((int(info.contents.dlpi_adds), int(info.contents.dlpi_subs)))
        return 1  # stop at the first object: the counters are the same in each

    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)
    try:
        iterate = ctypes.CDLL(None).dl_iterate_phdr
    except (OSError, AttributeError):
        return None
    iterate.argtypes = [callback_type, ctypes.c_void_p]
    iterate.restype = ctypes.c_int
    return iterate, callback_type(first)


def counts() -> tuple[int, int] | None:
    """The shared objects loaded and unloaded since the process started, or None if unknown."""
    global _made, _unavailable
    with _lock:
        if _unavailable:
            return None
        if _made is None:
            _made = _make()
            if _made is None:
                _unavailable = True
                return None
        iterate, callback = _made
        _answer.clear()
        iterate(callback, None)
        if not _answer:
            _unavailable = True
            return None
        return _answer[0]
