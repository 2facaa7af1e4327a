"""Per-worker objects: made once where iterations run, reused by later iterations and loops.

``conn = paraloop.per_worker(sqlite3.connect, "data.db")`` before a loop gives a
handle; a loop body that uses ``conn`` gets the real object (a
``sqlite3.Connection``), made the first time a chunk of a loop that uses it runs
in a worker, and kept there for the worker's later iterations and loops.  Only
the factory and its arguments travel to the workers (they must pickle; dill
carries lambdas and functions of the script); the object itself never travels.

Where it is made, and when it is closed:

- one object per thread that runs iterations (a ``sqlite3`` connection must
  not be shared between threads), or, with ``thread_safe=True``, one per
  process, shared by its threads;
- worker processes run such a loop's iterations in their main thread (no
  lanes, see :mod:`paraloop.backends.processes.policy`, unless ``thread_safe=True`` or ``lanes=True``),
  and close their objects when they quit (pool shutdown, a recycled worker);
- the threads backend's threads live for one loop: their objects are closed as
  each thread finishes the loop, but those the body handed back to the caller
  (see :func:`hand_back`), which are the caller's from then on;
- the caller (``backend="sequential"``, a loop nested in a worker) makes one and
  closes it at exit, or when ``handle.close()`` is called there;
- a Dask worker makes one per task thread (they live as long as the worker)
  and closes them when its process exits.

Closing calls ``close=`` (a function of the object) if given, else the object's
own ``close()`` if it has one; ``close=False`` never closes it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from . import log
from .errors import ParaLoopError, ParaLoopWarning

__all__ = ["PerWorker", "close_all", "hand_back", "instance", "per_worker", "release_thread"]


T = TypeVar("T")


class PerWorker(Generic[T]):
    """A handle on an object made once per worker: see :func:`per_worker`.

    In a loop body the name bound to the handle is the object itself.  Elsewhere
    (a function the body calls, code outside loops) the handle stands for this
    thread's object, made on first use: ``handle.attribute``, ``handle(...)``,
    ``handle[key]``, ``len(handle)``, ``for x in handle``, ``x in handle``,
    ``bool(handle)`` and ``with handle:`` reach it.  ``handle.close()`` closes this
    process's objects of the handle (a later use makes a new one).
    """

    # The handle's own state, under names no object has (special names, which the handle
    # never passes on): attribute access in a function the body calls reaches the object's
    # ``args``, ``key`` or ``factory`` (a Popen's, a partial's, a Namespace's), not these.
    __slots__ = (
        "__paraloop_args__",
        "__paraloop_closer__",
        "__paraloop_factory__",
        "__paraloop_key__",
        "__paraloop_kwargs__",
        "__paraloop_thread_safe__",
        "__weakref__",
    )

    __paraloop_factory__: Callable[..., T]
    __paraloop_args__: tuple[Any, ...]
    __paraloop_kwargs__: dict[str, Any]
    __paraloop_closer__: Callable[[T], Any] | bool | None
    __paraloop_thread_safe__: bool
    __paraloop_key__: str

    def __init__(
        self,
        factory: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        closer: Callable[[T], Any] | bool | None,
        thread_safe: bool,
        key: str | None = None,
    ) -> None:
        set_slot = object.__setattr__
        set_slot(self, "__paraloop_factory__", factory)
        set_slot(self, "__paraloop_args__", args)
        set_slot(self, "__paraloop_kwargs__", kwargs)
        set_slot(self, "__paraloop_closer__", closer)
        set_slot(self, "__paraloop_thread_safe__", thread_safe)
        # Its identity in every process: made here, carried by pickling.
        set_slot(self, "__paraloop_key__", key if key is not None else os.urandom(12).hex())
        _handles.add(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            PerWorker,
            (
                self.__paraloop_factory__,
                self.__paraloop_args__,
                self.__paraloop_kwargs__,
                self.__paraloop_closer__,
                self.__paraloop_thread_safe__,
                self.__paraloop_key__,
            ),
        )

    def __repr__(self) -> str:
        factory = self.__paraloop_factory__
        name = getattr(factory, "__qualname__", None) or repr(factory)
        module = getattr(factory, "__module__", None)
        if module and module.startswith("_") and getattr(sys.modules.get(module[1:]), name, None) is factory:
            module = module[1:]  # sqlite3.connect, not _sqlite3.connect
        if module and module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        shown = [repr(arg) for arg in self.__paraloop_args__]
        shown += [f"{key}={value!r}" for key, value in self.__paraloop_kwargs__.items()]
        return f"paraloop.per_worker({', '.join([name, *shown])})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # Special names are looked up by pickling, copying and introspection: answered
            # by the handle, never by making the object.
            raise AttributeError(name)
        return getattr(instance(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise ParaLoopError(
            f"{self!r}: setting {name!r} on a per-worker handle would change one process's "
            "object only; set it up in the factory instead (a function that makes the object "
            "and sets it, passed to paraloop.per_worker)"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        made: Any = instance(self)
        return made(*args, **kwargs)

    # The protocols Python looks up on the type, never through __getattr__: a function the
    # body calls that writes ``model["scale"]``, ``with conn:``, ``len(cache)`` or
    # ``for row in table`` on the handle reaches this thread's object, as attribute access does.
    def __getitem__(self, key: Any) -> Any:
        made: Any = instance(self)
        return made[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        made: Any = instance(self)
        made[key] = value

    def __delitem__(self, key: Any) -> None:
        made: Any = instance(self)
        del made[key]

    def __bool__(self) -> bool:
        return bool(instance(self))

    def __len__(self) -> int:
        return len(instance(self))  # type: ignore[arg-type]

    def __iter__(self) -> Any:
        return iter(instance(self))  # type: ignore[call-overload]

    def __contains__(self, item: Any) -> bool:
        return item in instance(self)  # type: ignore[operator]

    def __enter__(self) -> Any:
        made: Any = instance(self)
        return made.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        made: Any = instance(self)
        return made.__exit__(*exc)

    def close(self) -> None:
        """Close this process's objects of this handle (in every thread); a later use makes
        a new one.  Workers' objects are closed when the workers quit."""
        for objects in _holders():
            objects.close(self.__paraloop_key__)


def per_worker(
    factory: Callable[..., T],
    *args: Any,
    close: Callable[[T], Any] | bool | None = None,
    thread_safe: bool = False,
    **kwargs: Any,
) -> T:
    """An object made once per worker by ``factory(*args, **kwargs)``, for loop bodies.

    For what a loop cannot capture (it does not pickle, or is too large to send
    with every loop): a database connection, an HTTP session, a loaded model::

        # paraloop: enable
        import sqlite3
        import paraloop
        from paraloop import ParaLoop

        conn = paraloop.per_worker(sqlite3.connect, ":memory:")
        squares = []
        for i in ParaLoop(range(10)):
            squares.append(conn.execute("select ? * ?", (i, i)).fetchone()[0])
        print(squares)   # [0, 1, 4, ..., 81]

    In the body ``conn`` is the ``sqlite3.Connection`` itself.  Each worker
    makes its own on first use and keeps it for its later iterations and
    loops; the factory and its arguments travel to the workers (they must
    pickle), the object never does.  One object per thread that runs
    iterations (``thread_safe=True``: one per process, shared by its threads).

    ``close``: how to close the object when its worker quits (see
    :mod:`paraloop.resources`): a function of the object; None (default): its
    own ``close()`` method, if it has one; False: never.  A factory that needs
    keyword arguments named ``close`` or ``thread_safe`` is passed through
    ``functools.partial``.
    """
    if not callable(factory):
        raise ParaLoopError(
            f"paraloop.per_worker({factory!r}): give a function that makes the object "
            "(sqlite3.connect, requests.Session, a function of your own), then its arguments"
        )
    if close is not None and not isinstance(close, bool) and not callable(close):
        raise ParaLoopError(
            f"paraloop.per_worker(..., close={close!r}): give a function that closes the object, "
            "None (its own close() method, if it has one) or False (never close it)"
        )
    if close is True:
        close = None
    if not isinstance(thread_safe, bool):
        raise ParaLoopError(f"paraloop.per_worker(..., thread_safe={thread_safe!r}): give True or False")
    # Typed as the object it stands for: in a loop body the name is that object, and elsewhere
    # the handle passes attribute access and calls on to it, so users' code type-checks as written.
    return cast(T, PerWorker(factory, args, kwargs, close, thread_safe))


class _Objects:
    """The per-worker objects made in one thread (or, thread-safe ones, in the process)."""

    def __init__(self, shared: bool) -> None:
        self.made: dict[str, tuple[PerWorker[Any], Any]] = {}
        # Keys of the objects a chunk handed back to the caller (see hand_back): the caller's
        # from then on, left open when this holder closes the others.
        self.handed: set[str] = set()
        self.pid = os.getpid()
        self.shared = shared
        self.thread = threading.get_ident()

    def close(self, key: str | None = None) -> None:
        """Close the object made for ``key``, or all of them, the last made first; objects
        handed back to the caller are let go without closing."""
        keys = [key] if key is not None else list(self.made)
        for each in reversed(keys):
            found = self.made.pop(each, None)
            if found is not None and each not in self.handed:
                _close(*found, foreign=not self.shared and self.thread != threading.get_ident())
            self.handed.discard(each)

    def __del__(self) -> None:
        # A thread's objects go when the thread ends, in that thread: closed there.
        if self.pid == os.getpid():
            self.close()


def _close(handle: PerWorker[Any], made: Any, foreign: bool) -> None:
    closer = handle.__paraloop_closer__
    if closer is False:
        return
    if closer is None:
        closer = getattr(made, "close", None)
        if not callable(closer):
            return
        call: Callable[[], Any] = closer
    else:
        assert callable(closer)
        function = closer

        def call() -> Any:
            return function(made)

    try:
        call()
    except Exception as error:  # noqa: BLE001 - reported; the other objects are closed still
        if foreign:
            # Closed from another thread than its own (a process exiting while its lane
            # threads still hold their objects): some objects refuse that (sqlite3).
            log.debug("closing %r from another thread failed", handle, exc_info=True)
            return
        warnings.warn(
            f"closing the object of {handle!r} in process {os.getpid()} failed: "
            f"{type(error).__name__}: {error}",
            ParaLoopWarning,
            stacklevel=2,
        )


_lock = threading.Lock()
# Held while a thread-safe object is made, so that threads make one between them.
_making = threading.RLock()
_local = threading.local()
# This process's shared (thread-safe) objects, and every thread's holder (weakly: a
# thread's holder goes with the thread).
_shared = _Objects(shared=True)
_threads: weakref.WeakSet[_Objects] = weakref.WeakSet()
# What a forked child inherited of its parent's objects: kept, never used nor closed here
# (closing a forked copy of a connection could disturb the parent's).
_inherited: list[Any] = []
_exit_registered = False


# Every handle alive in this process: while one is, loops keep their iterations in the workers
# (see paraloop.backends.processes.caller), since a body may reach a handle through a function it calls.
_handles: weakref.WeakSet[PerWorker[Any]] = weakref.WeakSet()


def handles_exist() -> bool:
    """Whether this process holds a per-worker handle."""
    return bool(_handles)


def _holders() -> list[_Objects]:
    with _lock:
        return [*list(_threads), _shared]


def instance(handle: PerWorker[T]) -> T:
    """This worker's object for ``handle`` (this thread's, unless thread-safe), made on first use."""
    global _exit_registered
    objects: _Objects | None
    if handle.__paraloop_thread_safe__:
        objects = _shared
    else:
        objects = getattr(_local, "objects", None)
        if objects is None or objects.pid != os.getpid():
            objects = _local.objects = _Objects(shared=False)
            with _lock:
                _threads.add(objects)
    found = objects.made.get(handle.__paraloop_key__)
    if found is not None:
        return found[1]  # type: ignore[no-any-return]
    with _making if handle.__paraloop_thread_safe__ else _NO_LOCK:
        found = objects.made.get(handle.__paraloop_key__)
        if found is not None:
            return found[1]  # type: ignore[no-any-return]
        factory, args = handle.__paraloop_factory__, handle.__paraloop_args__
        kwargs = handle.__paraloop_kwargs__
        made = factory(*args, **kwargs)
        objects.made[handle.__paraloop_key__] = (handle, made)
        if not _exit_registered:
            _exit_registered = True
            atexit.register(close_all)
        return made


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


# What hand_back never looks into: values without references, and objects that lead to
# the rest of the program (a function's globals, a class's methods, a frame's locals).
_ATOMS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
)
# How many objects hand_back looks at in one value before it gives up and keeps all.
HAND_BACK_BUDGET = 200_000


def hand_back(value: object) -> None:
    """Let the caller have this thread's objects that ``value`` holds (what a chunk of the
    threads backend hands back: its partial results, the names it bound, what it returned).

    The caller then holds the thread's very object, as the plain loop would hand it back, so
    the thread's end leaves it open: it is the caller's from then on.  Should ``value`` be
    too large to look through, every object of the thread is left open (never closed under
    the caller; Python frees what nothing holds)."""
    objects: _Objects | None = getattr(_local, "objects", None)
    if objects is None or objects.pid != os.getpid():
        return
    wanted = {id(made): key for key, (_, made) in objects.made.items() if key not in objects.handed}
    if wanted:
        objects.handed.update(_held(value, wanted))


def _held(value: object, wanted: dict[int, str]) -> set[str]:
    """The keys of the ``wanted`` objects (by id) that ``value`` holds, however deep."""
    found: set[str] = set()
    seen: set[int] = set()
    pending = [value]
    budget = HAND_BACK_BUDGET
    while pending:
        each = pending.pop()
        key = wanted.get(id(each))
        if key is not None:
            found.add(key)
            if len(found) == len(wanted):
                break
        if isinstance(each, _OPAQUE) or id(each) in seen:
            continue
        seen.add(id(each))
        budget -= 1
        if budget < 0:
            return set(wanted.values())
        # Atoms hold nothing: only a wanted one (an object that is a str) is looked at.
        pending.extend([x for x in gc.get_referents(each) if type(x) not in _ATOMS or id(x) in wanted])
    return found


def release_thread() -> None:
    """Close the objects this thread made (a thread of the threads backend, finishing its loop),
    but those handed back to the caller (see :func:`hand_back`)."""
    objects = getattr(_local, "objects", None)
    if objects is not None and objects.pid == os.getpid():
        objects.close()


def close_all() -> None:
    """Close every per-worker object of this process: a worker quitting, the program's exit."""
    current = getattr(_local, "objects", None)
    holders = _holders()
    # This thread's own first (they close where they were made), then the others'.
    for objects in sorted(holders, key=lambda each: each is not current):
        objects.close()


def _forget_in_child() -> None:
    """A forked child (a worker) makes objects of its own; the parent's stay untouched."""
    global _shared, _threads, _exit_registered, _lock, _making
    _lock, _making = threading.Lock(), threading.RLock()  # another thread may have held them
    _inherited.extend(holder.made for holder in [*list(_threads), _shared])
    for holder in [*list(_threads), _shared]:
        holder.made = {}
    _shared = _Objects(shared=True)
    _threads = weakref.WeakSet()
    _local.__dict__.clear()
    _exit_registered = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
