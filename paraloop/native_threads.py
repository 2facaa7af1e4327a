"""Native thread pools (BLAS, OpenMP) sized to each worker's share of the CPUs.

numpy's matrix product runs on a BLAS that starts a thread per CPU.  Two worker
processes on two CPUs would run four such threads, spinning against each other:
a numpy body could be several times slower than the plain loop.  As joblib's
loky does, paraloop gives each worker's native pools its share of the CPUs
(the CPUs paraloop counts, divided by the iterations that run at once):

- for libraries already loaded in a worker (forked from a caller that imported
  numpy, or loaded by an earlier loop), through ``threadpoolctl``, imported only
  when such a library is mapped into the process;
- for libraries loaded later (a spawn or forkserver worker imports numpy when it
  loads the loop), through the environment variables they read when they load.

The threads backend limits the caller's own pools for the loop's duration and
then restores them.  The user's own choice wins: any of :data:`ENVIRONMENT` set
in the environment (paraloop then leaves native pools alone), a
``threadpoolctl`` limit around the loop narrower than the share (carried into
the workers), or ``ParaLoop(native_threads=...)`` / ``PARALOOP_NATIVE_THREADS``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from _weakrefset import WeakSet
from collections.abc import Iterator
from typing import Any

from . import loaded_modules
from .cpus import available_cpus
from .environment import variable
from .linux import linux_facilities, read_file
from .signal_errors import despite_ctrl_c

__all__ = [
    "ENVIRONMENT", "Hold", "applied", "apply", "let_go_here", "limited", "native_loaded", "openmp_here",
    "plan",
]  # fmt: skip

# What BLAS and OpenMP runtimes read when they load.
ENVIRONMENT = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# The shared libraries threadpoolctl controls, by file name (its controllers' prefixes).
_NATIVE = re.compile(rb"/(?:lib)?(?:\w*openblas|blis|flexiblas|mkl_rt|iomp|gomp|omp)[^/\n]*\.so")


# (pid, loaded_modules.state()) when the process's map was last read, and what it held.
_seen: tuple[int, Any, bool] | None = None


def native_loaded() -> bool:
    """Whether a BLAS or OpenMP runtime is mapped into this process.

    Reading the process's map costs 0.3-0.5 ms (a third of a small loop's whole
    cost), so it is read only where an extension module from beyond the standard
    library is loaded (numpy's, scipy's, torch's bring these libraries), and again
    only once a module was imported since; importing threadpoolctl and finding the
    libraries costs a few.  Without Linux's ``/proc``: whenever numpy is here.
    (A library loaded with ``ctypes`` alone, no extension module with it, is not
    looked for: its pools keep their size in the caller's chunks.)
    """
    global _seen
    if linux_facilities():
        key = (os.getpid(), loaded_modules.state())
        if _seen is not None and _seen[:2] == key:
            return _seen[2]
        if not _extensions_beyond_stdlib():
            _seen = (*key, False)
            return False
        try:
            mapped = read_file("/proc/self/maps")
        except OSError:  # pragma: no cover - no /proc after all
            pass
        else:
            # One pass over the map finds them and notes where they are (_direct needs it next).
            found = bool(_note_paths(mapped))
            _seen = (*key, found)
            return found
    return "numpy" in sys.modules


# The native libraries' files the process's map showed at its last read, with the process and
# what _libraries_mark answered then (see _direct).
_paths_read: tuple[int, int, list[str]] | None = None


def _note_paths(mapped: bytes) -> list[str]:
    """The files of the native libraries (see _NATIVE) in ``mapped``, the process's map, noted as
    read at this look."""
    global _paths_read
    paths = set()
    for match in _NATIVE.finditer(mapped):
        # A line of the map: "start-end perms offset device inode   /path/of/the/file".
        start = mapped.rfind(b"\n", 0, match.start()) + 1
        end = mapped.find(b"\n", match.end())
        fields = mapped[start : len(mapped) if end < 0 else end].split(None, 5)
        if len(fields) == 6:
            paths.add(os.fsdecode(fields[5].strip()))
    _paths_read = (os.getpid(), _libraries_mark(), sorted(paths))
    return _paths_read[2]


def _extensions_beyond_stdlib() -> bool:
    """Whether a module of sys.modules is an extension module (a ``.so``) of a package beyond the
    standard library: one C call per module, the standard library's skipped by name."""
    return any(filename.endswith(".so") for _, _, filename in loaded_modules.beyond_stdlib())


def user_choice() -> bool:
    """Whether the environment sets a native thread count (the user's choice wins)."""
    return any(variable(name, "").strip() for name in ENVIRONMENT)


def plan(setting: int | bool | None, at_once: int) -> int | None:
    """Threads for each worker's native pools, with ``at_once`` iterations running at once.

    ``setting`` is the loop's ``native_threads``: False leaves the pools alone, a
    number is used as given, None (the default) means the share of the CPUs,
    unless the user chose otherwise (see the module's docstring).
    """
    global _looks
    _looks += 1  # a library mapped since the last loop is looked for (see _controller)
    if setting is False:
        return None
    if setting is not None and setting is not True:
        return setting
    if user_choice():
        return None
    share = max(1, available_cpus() // max(1, at_once))
    if "threadpoolctl" in sys.modules and not _held_here():
        # The user may have limited the caller's pools around the loop: a narrower limit wins
        # (not paraloop's own, while a threads-backend loop runs).
        narrowest = _narrowest()
        if narrowest is not None:
            share = min(share, narrowest)
    return share


def _narrowest() -> int | None:
    """The smallest thread count of the native pools loaded in this process, if any."""
    if not native_loaded():
        return None
    counts = [
        info["num_threads"]
        for info in _controller(_threadpoolctl()).info()
        if isinstance(info.get("num_threads"), int) and info["num_threads"] > 0
    ]
    return min(counts) if counts else None


# The caller's controller and what it was made for (see _controller); a count of the occasions
# to look for libraries mapped since (a loop begun, a job's chunk in a worker: see plan, apply),
# and the mark of the libraries mapped at the last look (see _libraries_mark), at which occasion.
_controlled: tuple[Any, Any] | None = None
_looks = 0
_mapped: tuple[int, int, int] | None = None


def _controller(threadpoolctl: Any) -> Any:
    """A ``threadpoolctl.ThreadpoolController`` of the libraries loaded in this process, kept
    while what a new one would find is the same: making one finds and opens every library,
    0.3-0.5 ms that each short numpy loop paid twice; asking a made one for the counts, or
    limiting them, costs microseconds.  Made again when a module was imported (or taken out)
    since, when a library was mapped without one (``ctypes``, an optional import that failed
    after loading its runtime: see _libraries_mark, read once per loop, and in a worker once
    per chunk), when threadpoolctl was reloaded (its classes hold which thread may limit
    OpenBLAS) or was given a controller of the program's own (``threadpoolctl.register``)."""
    global _controlled
    pid = os.getpid()
    key = (
        pid,
        loaded_modules.state(),
        _libraries_mark(),
        id(threadpoolctl.ThreadpoolController),  # a reload makes its classes anew
        len(getattr(threadpoolctl, "_ALL_CONTROLLERS", ())),
    )
    found = _controlled
    if found is None or found[0] != key:
        found = _controlled = (key, threadpoolctl.ThreadpoolController())
    return found[1]


def _libraries_mark() -> int:
    """A number that changes when a library is mapped into the process, read once per look (see
    _controller): the size of its executable mappings beyond the program's own (``VmLib`` in
    ``/proc/self/status``, which each library's code adds to), about 0.01 ms.  The count of the
    files mapped (``/proc/self/map_files``), used before, cost 0.07-0.1 ms a loop and 0.2-0.3 ms
    a program's first (the kernel makes that directory when first read), and stayed the same
    when a library was loaded while another file's mapping went (a ``numpy.memmap``, an
    ``mmap``); code mappings come and go far more rarely.  That count stays where ``VmLib`` is
    not shown.  (Not the C library's own counts of libraries loaded, which ``dl_iterate_phdr``
    gives: its callback would run Python code with the loader's lock held, and another thread
    that holds the GIL and loads a library, an extension module's import, would wait for that
    lock: both hung.)"""
    global _mapped
    if not linux_facilities():
        return -1
    pid = os.getpid()
    mapped = _mapped
    if mapped is None or mapped[:2] != (_looks, pid):
        mark = -1
        try:
            status = read_file("/proc/self/status")
            at = status.find(b"\nVmLib:")
            if at >= 0:
                mark = int(status[at + 7 : status.index(b"kB", at)])
            else:  # pragma: no cover - a kernel that does not show it
                mark = len(os.listdir("/proc/self/map_files"))
        except (OSError, ValueError):  # pragma: no cover - no /proc after all
            pass
        mapped = _mapped = (_looks, pid, mark)
    return mapped[2]


# The caller's direct controller of OpenBLAS (see _direct), and what it was made for.
_direct_made: tuple[Any, Any] | None = None


def _direct() -> Any:
    """In the caller: a controller of OpenBLAS through its own functions
    (:mod:`paraloop.openblas_direct`) where it is the only native pool loaded and threadpoolctl
    is not imported, else None (threadpoolctl's then).  Kept as :func:`_controller` keeps its
    own: a library mapped since (an import, ``ctypes``) makes the process's map read again."""
    global _direct_made
    if "threadpoolctl" in sys.modules or not linux_facilities():
        return None
    pid = os.getpid()
    mark = _libraries_mark()
    key = (pid, loaded_modules.state(), mark)
    made = _direct_made
    if made is None or made[0] != key:
        read = _paths_read
        if read is not None and read[:2] == (pid, mark):
            paths = read[2]  # native_loaded read the map since the last library was loaded
        else:
            try:
                paths = _note_paths(read_file("/proc/self/maps"))
            except OSError:  # pragma: no cover - no /proc after all
                return None
        made = _direct_made = (key, _openblas_direct().controller(paths))
    return made[1]


# paraloop.openblas_direct, once imported (see _openblas_direct).
_openblas_module: list[Any] = []


def _openblas_direct() -> Any:
    """paraloop.openblas_direct, imported here (a program with no OpenBLAS, most, never needs it)
    and kept: a program that takes it out of sys.modules again (mock.patch.dict around a loop)
    does not make each loop import it anew."""
    if not _openblas_module:
        _openblas_module.append(loaded_modules.import_own("paraloop.openblas_direct"))
    return _openblas_module[0]


def _threadpoolctl() -> Any:
    global _seen
    before = None if "threadpoolctl" in sys.modules else (os.getpid(), loaded_modules.state())
    import threadpoolctl

    if before is not None and _seen is not None and _seen[:2] == before:
        # Its import (with ctypes) loads no native pool: what the process's map showed stays
        # true, and the next loop need not read it again (0.15-0.2 ms).
        _seen = (before[0], loaded_modules.state(), _seen[2])

    # threadpoolctl 3.8 lets only the first thread that limits a process-wide OpenBLAS
    # pool limit it again, and silently ignores every other thread.  A worker limits from
    # its main thread when a job arrives and from a watcher thread when lanes start, so
    # paraloop, holding its own lock, gives up that claim after each change it makes.
    _release_openblas(threadpoolctl)
    return threadpoolctl


def _release_openblas(threadpoolctl: Any) -> None:
    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextlib.contextmanager
def _limiting() -> Iterator[Any]:
    """threadpoolctl, for changes made from any thread (see :func:`_threadpoolctl`)."""
    threadpoolctl = _threadpoolctl()
    try:
        yield threadpoolctl
    finally:
        _release_openblas(threadpoolctl)


# In a worker process: the thread count last applied, the environment before the
# first, the libraries loaded when paraloop set its variables (by path: those loaded
# since start with paraloop's count), and the limiter that holds the loaded libraries'
# original counts.
_applied: int | None = None
_environment: dict[str, str | None] = {}
_loaded_before: frozenset[str] = frozenset()
_limiter: Any = None
# In a worker forked while the caller held its pools (see _inherited): the limiter of the
# forking thread's OpenMP counts, which the worker's main thread inherited.
_openmp_limiter: Any = None
# Reentrant only so that a thread can tell it holds it already (see _reentered).
_lock = threading.RLock()


def _new_lock_in_child() -> None:
    """A forked child's own lock: one another thread of the parent held at the fork (a threads
    loop's thread setting its OpenMP count) would be held for ever there, by a thread the child
    does not have, and a worker's first job waits for it (its apply)."""
    global _lock
    _lock = threading.RLock()


def _reentered() -> bool:
    """Whether this thread holds ``_lock`` already: the garbage collector, which may run at any
    allocation (inside this module's locked sections too), finalizes a loop's generator that a
    reference cycle kept (a second Ctrl-C during its cleanup leaves one, in its traceback), and
    the generator's cleanup lets go of its holder.  It must not wait for the lock then: with a
    plain lock the program hung there for ever.  Its loop's end let go of the holder already
    (see :func:`let_go_here`), or the holder goes with the generator's frame, and the next limit
    or release gives the counts back (see :func:`_release_if_free`)."""
    return bool(_lock._is_owned())  # type: ignore[attr-defined]


def _empty(holders: WeakSet[Any]) -> bool:
    """Whether no holder in ``holders`` is alive.  Not ``len()``: a second Ctrl-C inside the
    WeakSet's own removal callback (which the interpreter reports and ignores) leaves a dead
    reference that ``len()`` still counts, and the thread's count was never given back."""
    return next(iter(holders), None) is None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def apply(threads: int | None, environment: bool = True) -> None:
    """Give this worker process's native pools ``threads`` threads (None: as they were).

    Cheap when nothing changes.  ``environment=False`` leaves the environment alone: while
    chunks run, iterations watch it for changes (see :mod:`paraloop.process_state`), so it
    changes only when a loop's job arrives.
    """
    global _applied, _limiter, _looks, _loaded_before
    with _lock:
        _looks += 1  # a library the last chunk mapped is looked for (see _controller)
        held = _inherited()
        if threads == _applied and held is None:
            return
        if threads is None:
            _restore(environment)
            _applied = None
            return
        if environment:
            if not _environment:
                _environment.update({name: os.environ.get(name) for name in ENVIRONMENT})
                _loaded_before = _library_paths()
            for name in ENVIRONMENT:
                os.environ[name] = str(threads)
        if held == threads:
            # Forked while the caller held its pools at this count, and they are so: setting
            # OpenBLAS's count again here would restart its pool, whose new threads spin for
            # about 0.1 s beside the iterations.
            pass
        elif native_loaded():
            with _limiting() as threadpoolctl:
                limiter = _controller(threadpoolctl).limit(limits=threads)
            if _limiter is None:
                _limiter = limiter  # it remembers the counts before paraloop's first limit
        _applied = threads


def applied() -> int | None:
    """In a worker process: the thread count last given to its native pools (None: as they were)."""
    return _applied


def _restore(environment: bool) -> None:
    global _limiter, _openmp_limiter
    natural = None
    if environment and _environment:
        for name, value in _environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _environment.clear()
        natural = _natural()
    if _limiter is not None:
        with _limiting():
            _limiter.restore_original_limits()  # those loaded before paraloop's first limit
        _limiter = None
    if _openmp_limiter is not None:
        with _limiting():
            _openmp_limiter.restore_original_limits()
        _openmp_limiter = None
    if natural is not None and native_loaded():
        # A library loaded while paraloop's variables were set started with paraloop's count
        # (and a limiter made since holds that as its original): it gets the count it would
        # have had.  After the limiter, whose originals would put paraloop's count back.
        with _limiting() as threadpoolctl:
            controller = _controller(threadpoolctl)
            since = [
                library.filepath
                for library in controller.lib_controllers
                if library.filepath not in _loaded_before
            ]
            if since:
                controller.limit(limits=dict.fromkeys(since, natural))


def _library_paths() -> frozenset[str]:
    """The files of the native libraries loaded in this process (none looked for without one)."""
    if not native_loaded():
        return frozenset()
    return frozenset(library.filepath for library in _controller(_threadpoolctl()).lib_controllers)


# The controller's two parts (see _controller): its OpenMP runtimes, whose counts are each
# thread's own, and the rest (OpenBLAS and the like: one count for the process), with the
# controller they came from.
_parts: tuple[Any, Any, Any] | None = None


def _split(controller: Any) -> tuple[Any, Any]:
    """``controller``'s OpenMP runtimes, and its other libraries (with ``_lock`` held)."""
    global _parts
    parts = _parts
    if parts is None or parts[0] is not controller:
        others = sorted({library.user_api for library in controller.lib_controllers} - {"openmp"})
        parts = _parts = (
            controller,
            controller.select(user_api="openmp"),
            controller.select(user_api=others),
        )
    return parts[1], parts[2]


def openmp_here(threads: int | None) -> None:
    """In a thread that runs iterations beside the one that limited the pools (a lane of a worker,
    a thread of the threads backend): give its OpenMP runtimes ``threads`` threads (None: the
    count a thread of its own would have).

    OpenMP's count is each thread's own (``omp_set_num_threads`` sets the calling thread's), so
    the limit the worker's main thread or the caller set does not reach the others, whose
    iterations ran OpenMP at every CPU.  OpenBLAS's pool is the process's: left as it is.  The
    counts are read each time (microseconds): a runtime loaded since, or a count the body set
    itself, is limited again at the thread's next call."""
    if not native_loaded():
        return
    with _lock:
        if _direct() is not None:
            return  # no OpenMP runtime loaded
        if threads is None:
            # A thread's own count is the one its runtime started with, which paraloop's variables
            # may have set (a runtime a worker's job loaded): what it would have been (see _restore).
            threads = _natural()
        openmp, _ = _split(_controller(_threadpoolctl()))
        if any(info.get("num_threads") != threads for info in openmp.info()):
            openmp.limit(limits=threads)


def before_lanes() -> None:
    """In a worker, before a chunk's lanes start: import what :func:`openmp_here` will use in them.

    threadpoolctl's import sets an environment variable (``KMP_DUPLICATE_LIB_OK``, where the
    program's environment lacks it).  Imported by a lane, that write fell inside the lanes' watch
    of the process-wide state (see :func:`paraloop.execute.watch_lanes`), and a loop whose
    iterations change nothing was refused as one that changed the environment: under spawn or
    forkserver with numpy's generator loaded, where /proc is missing (macOS, PARALOOP_PORTABLE=1)
    or an OpenMP runtime is loaded.
    """
    if "threadpoolctl" in sys.modules or not native_loaded():
        return
    with _lock:
        if _direct() is None:
            _threadpoolctl()


def _natural() -> int:
    """The thread count a native library loaded now would start with: the user's variable (see
    ENVIRONMENT), or every CPU."""
    given = [value for value in (variable(name) for name in ENVIRONMENT) if value]
    return int(given[0]) if given and given[0].strip().isdigit() else available_cpus()


# In the caller: what holds its pools limited now (a threads-backend loop, a caller's chunk, a
# fork loop's Hold), and the limiter of the first, which holds the counts before; when the last
# lets go, they get their counts back.  Held weakly: a holder whose loop ended without letting
# go (a second Ctrl-C during the loop's cleanup) is gone once its loop is, and the next limit
# or release restores the counts first.  OpenMP's counts are each thread's own: a thread that
# holds the limit has its own limiter for them (by process and thread, with its holders), and
# gets its own count back when its last holder lets go, whichever thread's loop ends last.
_holders: WeakSet[Any] = WeakSet()
_caller_limiter: Any = None
_thread_openmp: dict[tuple[int, int], tuple[WeakSet[Any], Any]] = {}
# The process that limited the caller's pools, and to what count.
_caller_limit: tuple[int, int] | None = None


class _Token:
    """One holder of the caller's limit (see _holders), in the process that made it, for the loop
    whose job is ``owner`` (by identity: see let_go_here)."""

    __slots__ = ("__weakref__", "owner", "pid")

    def __init__(self, owner: object) -> None:
        self.pid = os.getpid()
        self.owner = id(owner)


def _held_here() -> bool:
    """Whether a holder of this process holds the caller's limit (a forked child's copy of its
    parent's holders holds nothing there)."""
    pid = os.getpid()
    return any(holder.pid == pid for holder in list(_holders))


@contextlib.contextmanager
def limited(threads: int | None, owner: object) -> Iterator[None]:
    """In the caller (the threads backend, a caller's chunk): limit the loaded native pools for
    the block, for the loop whose job is ``owner`` (see :func:`let_go_here`).

    The environment is left alone: it belongs to the user's process.  Loops in several
    threads at once share one limit, and the pools get their sizes back when the last ends.
    """
    if threads is None:
        yield
        return
    token = _Token(owner)
    try:
        # Inside the try: Ctrl-C while it limits (the limit made, the holder not yet noted)
        # lets go too.
        _enter(token, threads)
        yield
    finally:
        _leave(token)


def _enter(holder: Any, threads: int) -> None:
    global _caller_limiter, _caller_limit
    with _lock:
        _release_if_free()
        here = (os.getpid(), threading.get_ident())
        mine = _thread_openmp.get(here)
        if mine is not None and _empty(mine[0]):
            _give_back_openmp(here)  # its holders went without letting go
            mine = None
        # Also when another loop's limit came before any library was loaded: one loaded since
        # (a body's first import of numpy) is limited from the next chunk on.
        if (_caller_limiter is None or mine is None) and native_loaded():
            direct = _direct()
            if direct is not None:
                # OpenBLAS alone, threadpoolctl not imported: no OpenMP count of this thread's.
                if _caller_limiter is None:
                    _caller_limiter = direct.limit(limits=threads)
                    _caller_limit = (os.getpid(), threads)
            else:
                with _limiting() as threadpoolctl:
                    openmp, others = _split(_controller(threadpoolctl))
                    if mine is None and openmp.lib_controllers:
                        mine = _thread_openmp[here] = (WeakSet(), openmp.limit(limits=threads))
                    if _caller_limiter is None:
                        _caller_limiter = others.limit(limits=threads)
                        _caller_limit = (os.getpid(), threads)
        if mine is not None:
            mine[0].add(holder)
        _holders.add(holder)


def _leave(holder: Any) -> None:
    """``holder`` lets go of the caller's limit, done even if Ctrl-C interrupts it (raised once
    done: letting go twice is letting go once)."""

    def let_go() -> None:
        if _reentered():
            return
        with _lock:
            _holders.discard(holder)
            _release_if_free()
            here = (os.getpid(), threading.get_ident())
            mine = _thread_openmp.get(here)
            if mine is not None:
                mine[0].discard(holder)
                if _empty(mine[0]):
                    _give_back_openmp(here)

    interrupted = despite_ctrl_c(let_go)
    if interrupted is not None:
        raise interrupted


def _give_back_openmp(here: tuple[int, int]) -> None:
    """With ``_lock`` held, in the thread ``here`` names: its OpenMP counts back as they were."""
    _, limiter = _thread_openmp.pop(here)
    with _limiting():
        limiter.restore_original_limits()


def _release_if_free() -> None:
    """With ``_lock`` held: the caller's pools get their counts back once nothing holds them."""
    global _caller_limiter, _caller_limit
    if _caller_limiter is not None and not _held_here():
        # Told by its class's module: openblas_direct is imported only where OpenBLAS was found,
        # and a program may have taken it out of sys.modules since.
        if type(_caller_limiter).__module__ == "paraloop.openblas_direct":
            _caller_limiter.restore_original_limits()  # threadpoolctl need not be imported
        else:
            with _limiting():
                _caller_limiter.restore_original_limits()
        _caller_limiter = None
        _caller_limit = None


class Hold:
    """The caller's native pools at a fork worker's share from its loop's first fork to the
    loop's end (the processes backend under fork).

    A worker forked so inherits its pools limited and the libraries loaded, and, having read
    their counts (a library loaded since, or a count another thread of the program changed,
    would not be at the share), leaves them as they are (see :func:`apply` and
    :func:`_inherited`): setting OpenBLAS's count in a forked process restarts
    its pool, whose new threads spin for about 0.1 s before they sleep, beside the
    iterations (two workers on two CPUs ran their first iterations at half speed).  The
    caller's own chunks run at that share anyway (see :func:`limited`).  One caveat of the
    fork itself: OpenBLAS stops the caller's pool before each fork, and restoring the count
    at the loop's end starts it again (its threads spin as they start, as after any fork).
    """

    def __init__(self, threads: int | None, owner: object) -> None:
        self._threads = threads
        self._held = False
        # The process that runs the loop, and the loop's job (see let_go_here).
        self.pid = os.getpid()
        self.owner = id(owner)

    def before_fork(self) -> None:
        """Called before each fork of the loop's workers (with Ctrl-C held): hold the limit
        from the first, if no other thread of the program runs (the limit is the whole
        process's: another thread's own products would run at the workers' share, its
        ``threadpool_limits`` block would take that share for the count to give back, its
        forks would be born with it).  Otherwise each worker limits its own pools."""
        if self._threads is not None and not self._held and threading.active_count() == 1:
            self._held = True
            _enter(self, self._threads)

    def close(self) -> None:
        """At the loop's end: give the caller's pools back their counts (see _leave)."""
        if self._held:
            _leave(self)
            self._held = False


def let_go_here(owner: object) -> None:
    """At the end of a loop in the caller, whose job is ``owner``: what was made to hold the limit
    for it lets go, if the loop's own cleanup did not (a second Ctrl-C during it interrupts the
    first call it makes, and its traceback keeps the holder alive): its :class:`Hold`, and the
    holders of :func:`limited` (a threads-backend loop's, a caller's chunk's).  Only this loop's:
    a loop in a body runs inside an outer loop's caller's chunk, and two generator expressions
    over threads loops may be open in one thread at once."""
    # Not one a forked worker inherited (the same job, in another process).
    pid, mine = os.getpid(), id(owner)
    if _reentered():
        return  # see _reentered
    with _lock:
        # Read with the lock held: another loop's cleanup, run by the garbage collector meanwhile,
        # would change the set as it is read (it then waits, see _reentered).
        holders = list(_holders)
    for holder in holders:
        if type(holder) in (Hold, _Token) and holder.pid == pid and holder.owner == mine:
            if type(holder) is Hold:
                holder.close()
            else:
                _leave(holder)
    limit = _caller_limit
    if limit is not None and limit[0] == pid:
        # A limit whose holder was never noted (Ctrl-C between the two) is given back now (if
        # nothing holds it: read with the lock held, as above).  Not in a worker forked while its
        # caller held one: the worker's own (see _inherited).
        with _lock:
            _release_if_free()


# The process that looked for a limit held at its fork (see _inherited).
_looked = 0


def _inherited() -> int | None:
    """In a worker forked while the caller held its pools (see :class:`Hold`), at its first
    call: the count they all have, if it is the one held (0 if not: a library loaded since, or
    a count another thread of the caller changed), the caller's limiter becoming this
    process's (it knows the counts to give back).  None in any other case, and ever after."""
    global _looked, _limiter, _openmp_limiter
    pid = os.getpid()
    if _looked == pid:
        return None
    _looked = pid
    limit, limiter = _caller_limit, _caller_limiter
    if limit is None or limiter is None or limit[0] == pid or _applied is not None or _limiter is not None:
        return None
    _limiter = limiter
    # The forking thread's own OpenMP limit, which this process's main thread (its copy) has.
    forking = _thread_openmp.get((limit[0], threading.get_ident()))
    if forking is not None:
        _openmp_limiter = forking[1]
    # Reading the counts starts no thread (setting OpenBLAS's does).
    counts = [info.get("num_threads") for info in _controller(_threadpoolctl()).info()]
    return limit[1] if counts and all(count == limit[1] for count in counts) else 0
