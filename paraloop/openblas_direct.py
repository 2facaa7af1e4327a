"""OpenBLAS's thread count through its own C functions, for the caller's limit in the common case.

A program's first short numpy loop paid about 4 ms for limiting the caller's BLAS around its
own chunks (see :mod:`paraloop.native_threads`): importing ``threadpoolctl`` (2-2.5 ms) and
its first look for the libraries loaded (about 1.3 ms), where the loop's iterations took a
fraction of a millisecond (CONTRACT section 9: about a millisecond more than the plain loop).
Where the only native pool the process has mapped is OpenBLAS on its own threads (numpy's and
scipy's wheels), that limit is two C calls: this module makes them, in about 0.1 ms, with the
library's own functions found as threadpoolctl finds them (the symbol's prefix and suffix
vary: ``scipy_openblas_set_num_threads64_`` in numpy's wheel).  Anything else (an OpenMP
runtime, whose counts are each thread's own; MKL, BLIS, FlexiBLAS; OpenBLAS built on OpenMP;
threadpoolctl already imported, which may hold a limit of the program's or a controller it
registered) goes through threadpoolctl as before: :func:`controller` answers None.

The objects below answer the few questions :mod:`paraloop.native_threads` asks of a
``threadpoolctl.ThreadpoolController`` and its limiter (``limit``, ``info``,
``restore_original_limits``), so that the rest of it need not tell them apart.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Controller", "Limiter", "controller"]

# Its symbols' affixes, in threadpoolctl's order.
_PREFIXES = ("", "scipy_")
_SUFFIXES = ("", "64_", "_64")
# openblas_get_parallel(): 1 is OpenBLAS's own threads (one pool for the process).
_PTHREADS = 1


class _Library:
    """One loaded OpenBLAS, its count read and set through its own functions."""

    user_api = "blas"
    internal_api = "openblas"

    def __init__(self, filepath: str, get: Callable[[], int], set_: Callable[[int], None]) -> None:
        self.filepath = filepath
        self.prefix = os.path.basename(filepath).split(".")[0]
        self._get = get
        self._set = set_

    @property
    def num_threads(self) -> int:
        return int(self._get())

    def set_num_threads(self, threads: int) -> None:
        self._set(threads)


def _openblas_file(name: str) -> bool:
    """Whether the file ``name`` is one threadpoolctl's OpenBLAS controller recognises (on Linux):
    ``^(?:lib)?(?:scipy_)?openblas[^/]*\\.so[^/]*$``, told without a regular expression, whose
    compiling (about 0.06 ms) a program's first numpy loop paid for this module's import."""
    name = name.removeprefix("lib").removeprefix("scipy_")
    return "/" not in name and name.startswith("openblas") and ".so" in name[len("openblas") :]


def _library(filepath: str) -> _Library | None:
    """``filepath``'s OpenBLAS if it is already loaded and runs its own threads, else None."""
    import ctypes  # here: numpy has imported it by then, and the runtime need not

    try:
        # RTLD_NOLOAD: the process's own copy, never a library loaded anew.
        dynlib = ctypes.CDLL(filepath, mode=os.RTLD_NOLOAD)
    except OSError:
        return None
    for prefix, suffix in _affixes(os.path.basename(filepath)):
        try:
            get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}")
            set_ = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}")
            parallel = getattr(dynlib, f"{prefix}openblas_get_parallel{suffix}")
        except AttributeError:
            continue
        if parallel() != _PTHREADS:
            return None
        set_.restype = None
        return _Library(filepath, get, set_)
    return None


def _affixes(name: str) -> list[tuple[str, str]]:
    """The symbols' affixes to try for the file ``name``, those its name suggests first (numpy's
    wheel: ``libscipy_openblas64_-….so``, ``scipy_…64_``): each miss is a failed symbol lookup
    and an exception, a few of which were a tenth of a short loop's cost."""
    prefixes = sorted(_PREFIXES, key=lambda prefix: not (prefix and prefix in name))
    suffixes = sorted(_SUFFIXES, key=lambda suffix: not (suffix and f"openblas{suffix}" in name))
    return list(itertools.product(prefixes, suffixes))


class Limiter:
    """The counts before a limit, given back by :meth:`restore_original_limits`."""

    def __init__(self, libraries: list[_Library], threads: int) -> None:
        self._libraries = libraries
        self._original = [library.num_threads for library in libraries]
        for library in libraries:
            library.set_num_threads(threads)

    def restore_original_limits(self) -> None:
        for library, threads in zip(self._libraries, self._original):
            library.set_num_threads(threads)


class Controller:
    """The process's loaded OpenBLAS libraries (see :func:`controller`)."""

    def __init__(self, libraries: list[_Library]) -> None:
        self.lib_controllers = libraries

    def info(self) -> list[dict[str, Any]]:
        return [
            {
                "user_api": library.user_api,
                "internal_api": library.internal_api,
                "prefix": library.prefix,
                "filepath": library.filepath,
                "num_threads": library.num_threads,
            }
            for library in self.lib_controllers
        ]

    def limit(self, *, limits: int) -> Limiter:
        return Limiter(self.lib_controllers, limits)


def controller(paths: Iterable[str]) -> Controller | None:
    """A controller of the native libraries mapped at ``paths`` (those paraloop looks for: see
    native_threads._NATIVE) if every one is an OpenBLAS on its own threads, else None."""
    libraries = []
    for path in sorted(set(paths)):
        if not _openblas_file(os.path.basename(path)):
            return None
        library = _library(path)
        if library is None:
            return None
        libraries.append(library)
    return Controller(libraries) if libraries else None
