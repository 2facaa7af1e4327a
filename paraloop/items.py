"""What an iteration sees as its item: the item as the iterable yielded it.

A plain loop runs an iteration before it asks the iterable for the next item.
paraloop reads ahead (a chunk at a time), so an iterable whose items change
once it moves on would show the iterations changed items:
``itertools.groupby`` hands out groups that go empty when it advances, and a
generator may yield the same buffer again and again, refilled.  So each item
is fixed the moment it is yielded:

- for worker processes (and Dask), an item of a type that can change is
  serialized right away (:class:`Frozen`), and a group of ``groupby`` is read
  into a list first;
- for threads, which share the items, a group is read into a list, and an
  iterable that yields the same changeable object again while an earlier
  iteration may still use it is refused;
- sequentially, the loop reads one item at a time, as the plain loop does.

Items that cannot be copied faithfully into another process (an open file,
a socket, a lock, a generator) are refused for processes and Dask, naming the
iteration: a copy would be another file or lock, not the same one.
"""

from __future__ import annotations

import _socket
import io
import itertools
import reprlib
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from . import serialize
from .errors import ParaLoopError
from .variable import Variable

__all__ = [
    "COPY", "INLINE", "SHARE", "Frozen", "Partial", "bound_to_this_process", "check_copied", "is_file",
    "length", "take", "writable", "write_back",
]  # fmt: skip


def length(iterable: Any) -> int | None:
    """The iterable's length, if it has one that len() can give: a range longer than
    sys.maxsize has none (the plain loop iterates it all the same, and a length that large
    tells a chunk size or a progress bar nothing), nor has an object whose ``__len__`` raises
    (the plain loop never calls it: its error is not the program's)."""
    if not hasattr(type(iterable), "__len__"):
        return None
    try:
        return len(iterable)
    except Exception:  # noqa: BLE001 - OverflowError, or the object's own error: no length
        return None


# How a backend gets its items: copied into other processes, shared by threads,
# or run inline by the caller.
COPY = "copy"
SHARE = "share"
INLINE = "inline"

# Items of these types cannot change: nothing to fix.
IMMUTABLE = _IMMUTABLE = frozenset({int, float, complex, str, bytes, bool, type(None), range, frozenset})

_GROUPER = type(next(itertools.groupby([0]))[1])

_LOCAL_TYPES = (
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Semaphore,
    threading.Event,
    threading.Barrier,
    _socket.socket,
)

# Types that are no file.  The first isinstance() of a type against the io.IOBase ABC walks
# every subclass of it (0.02-0.25 ms a type, and a loop's first chunk meets several); these,
# the usual captured values, skip it, as do paraloop's own classes (its jobs and strategies:
# a first loop with a reduction met two, 0.4 ms of a 10-iteration loop's 1.8).
_NOT_FILES = frozenset(
    {
        *IMMUTABLE, tuple, list, dict, set, bytearray, type, Variable,
        types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    }
)  # fmt: skip


def is_file(value: object) -> bool:
    """Whether ``value`` is a file object: an ``io.IOBase``, or of a class registered as one."""
    kind = type(value)
    if kind in _NOT_FILES:
        return False
    module = getattr(kind, "__module__", None)
    if type(module) is str and module.startswith(("paraloop.", "numpy")):
        # Nor numpy's arrays, scalars and dtypes, the commonest values beside those above (a
        # first check of one against io.IOBase cost 0.01-0.05 ms of a numpy loop's first run).
        return False
    return isinstance(value, io.IOBase)


_ITERATORS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


def bound_to_this_process(value: object) -> bool:
    """Objects a copy of which would not be the same thing in another process.

    dill can pickle a lock or an open file, but the copy would be a new lock
    that excludes nobody, or the file opened anew (truncated, if it was opened
    for writing): refused, not copied.
    """
    if isinstance(value, _LOCAL_TYPES):
        return True
    if is_file(value) and not isinstance(value, (io.BytesIO, io.StringIO)):
        return True
    return False


class Frozen:
    """An item serialized when it was yielded; it travels as those bytes."""

    __slots__ = ("data", "original")

    def __init__(self, item: Any) -> None:
        self.data = serialize.dumps(item)
        # The caller's object, for writing back what an iteration changed in it.
        self.original = item

    def __reduce__(self) -> tuple[Any, ...]:
        return (serialize.loads, (self.data,))

    def __repr__(self) -> str:
        return reprlib.repr(serialize.loads(self.data))


def write_back(original: Any, changed: Any, depth: int = 0) -> bool:
    """Put what a worker's copy of an item holds now into the caller's item, in place.

    For numpy arrays (a row of a matrix, written into the matrix), lists, dicts,
    sets, bytearrays, objects with a ``__dict__``, and tuples of them.  Returns
    False for an item that cannot be changed in place from outside.
    """
    if type(original) is Frozen:
        original = original.original
    kind = type(original)
    if is_array(original):
        # Its subclasses too (numpy.memmap: its data, not its attributes, is what changed).
        original[...] = changed
    elif isinstance(original, list) and isinstance(changed, list) and len(original) == len(changed):
        # Element by element: an object inside the item stays the caller's (other names may
        # hold it), with what the worker's copy of it holds now.
        for position, (inner, new) in enumerate(zip(original, changed)):
            if not _written_into(inner, new, depth):
                original[position] = new
        _write_attributes(original, changed)
    elif isinstance(original, (list, bytearray)):
        original[:] = changed
        _write_attributes(original, changed)
    elif isinstance(original, dict) and isinstance(changed, dict) and list(original) == list(changed):
        for key, new in changed.items():
            if not _written_into(original[key], new, depth):
                original[key] = new
        _write_attributes(original, changed)
    elif isinstance(original, (dict, set)):
        original.clear()
        original.update(changed)
        _write_attributes(original, changed)
    elif isinstance(original, tuple) and len(original) == len(changed):
        # An immutable element (a number, a string) is the same value in another object: a
        # tuple from enumerate() holds ints past 256 that come back from pickle as new ones.
        return all(
            new is inner or _immutable(inner) or write_back(inner, new, depth + 1)
            for inner, new in zip(original, changed)
        )
    elif isinstance(getattr(original, "__dict__", None), dict) and not hasattr(kind, "__slots__"):
        state = vars(original)
        state.clear()
        state.update(vars(changed))
    else:
        return False
    return True


def _written_into(inner: Any, new: Any, depth: int) -> bool:
    """Whether ``inner`` (an element of an item) now holds what ``new`` (the worker's copy of it)
    holds, written in place; False: the caller stores ``new`` instead (a number, another type)."""
    if new is inner:
        return True
    if depth >= 8 or _immutable(inner) or type(inner) is not type(new):
        return False
    if type(inner).__module__ == "numpy" and (inner.shape != new.shape or inner.dtype != new.dtype):
        return False
    try:
        return write_back(inner, new, depth + 1)
    except (TypeError, ValueError):
        return False


def is_array(value: Any) -> bool:
    """Whether ``value`` is a numpy array (numpy imported: an item that is one came with it)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _write_attributes(original: Any, changed: Any) -> None:
    """A list, dict or set subclass instance's attributes (``item.tag = ...``), as the copy has them."""
    state = getattr(original, "__dict__", None)
    if isinstance(state, dict):
        state.clear()
        state.update(getattr(changed, "__dict__", {}))


def writable(item: Any) -> bool:
    """Whether :func:`write_back` can put an iteration's changes into ``item``."""
    if type(item) is Frozen:
        item = item.original
    kind = type(item)
    if is_array(item):
        return bool(item.flags.writeable)
    if isinstance(item, (list, bytearray, dict, set)):
        return True
    if isinstance(item, tuple):
        return all(writable(inner) or _immutable(inner) for inner in item)
    return isinstance(getattr(item, "__dict__", None), dict) and not hasattr(kind, "__slots__")


def _immutable(item: object) -> bool:
    kind = type(item)
    if kind in _IMMUTABLE:
        return True
    if kind is tuple:
        return all(type(element) in _IMMUTABLE for element in item)  # type: ignore[attr-defined]
    return False


def _read_groups(item: Any) -> Any:
    """A ``groupby`` group (alone or in a tuple) as an iterator over its items, read now."""
    if type(item) is _GROUPER:
        return iter(list(item))
    if type(item) is tuple and any(type(element) is _GROUPER for element in item):
        return tuple(iter(list(e)) if type(e) is _GROUPER else e for e in item)
    return item


def unfit(item: Any) -> str | None:
    """Why ``item`` cannot be copied into another process, or None."""
    for value in item if type(item) is tuple else (item,):
        if bound_to_this_process(value):
            return f"a {type(value).__module__}.{type(value).__qualname__} that belongs to this process"
        if isinstance(value, _ITERATORS) or type(value) is _GROUPER:
            return f"a {type(value).__qualname__}, which is consumed as it is read"
    return None


def unsendable(item: Any, index: int, error: BaseException) -> ParaLoopError:
    """The error for an item that raised when it was serialized for a worker process."""
    try:
        shown = reprlib.repr(item)
    except Exception:  # noqa: BLE001 - a repr that raises too
        shown = f"a {type(item).__qualname__}"
    refused = ParaLoopError(
        f"item {index} of the loop ({shown}) cannot be sent to a worker process: serializing it "
        f"raised {type(error).__name__}: {error}. Make its class picklable (its __reduce__ or "
        "__getstate__), pass what identifies it instead, or use backend='threads', which shares it"
    )
    refused.__cause__ = error
    return refused


def _frozen(item: Any, index: int, items: list[Any]) -> Frozen:
    try:
        return Frozen(item)
    except Exception as error:  # noqa: BLE001 - raised after the items before it ran
        raise Partial(items, unsendable(item, index, error)) from None


def refusal(item: Any, index: int, why: str) -> ParaLoopError:
    return ParaLoopError(
        f"item {index} of the loop ({reprlib.repr(item)}) is {why}: a copy in a worker process "
        "would not be the same object (a file would be opened anew). Pass what identifies it "
        "instead (a file's path, and open it in the body), or use backend='threads', which shares it"
    )


def check_copied(items: Any, start: int) -> None:
    """Raise :class:`Partial` at the first item of a slice that cannot be copied into a process."""
    if set(map(type, items)) <= _IMMUTABLE:
        return
    for offset, item in enumerate(items):
        why = unfit(item)
        if why is not None:
            raise Partial(list(items[:offset]), refusal(item, start + offset, why))


# Changeable items threads may still use, by id: one yielded again is refused.
RECENT = 4096


def take(
    iterator: Iterator[Any], size: int, start: int, mode: str, careful: bool, recent: dict[int, Any]
) -> tuple[list[Any], bool]:
    """Up to ``size`` items of ``iterator``, each fixed as it was yielded.

    ``careful`` reads item by item; otherwise the items are read at C speed
    and checked afterwards, which is right as long as they cannot change (the
    caller reads carefully until items proved so).  Returns the items, and
    whether the next read may be fast.  Raises ParaLoopError for an item that
    cannot be used, after the items before it (which it leaves in ``iterator``
    order in the exception's ``items`` attribute).
    """
    if not careful:
        items: list[Any] = []
        try:
            items.extend(itertools.islice(iterator, size))
        except Exception as error:  # noqa: BLE001 - raised after the items before it ran
            items = _fixed(items, start, mode)
            raise Partial(items, error) from None
        if set(map(type, items)) <= _IMMUTABLE:
            return items, True
        # The items turned changeable: they were read without being fixed. A group or
        # a buffer yielded again has changed since; anything else is as it was yielded.
        seen: set[int] = set()
        for offset, item in enumerate(items):
            if type(item) is _GROUPER or (type(item) is tuple and any(type(e) is _GROUPER for e in item)):
                return _failed(items[:offset], _changed(item, start + offset))
            if not _immutable(item):
                if id(item) in seen:
                    return _failed(items[:offset], _changed(item, start + offset))
                seen.add(id(item))
        return _fixed(items, start, mode), False
    items = []  # the careful read
    fast = True
    source = itertools.islice(iterator, size)
    while True:
        try:
            item = next(source)
        except StopIteration:
            break
        except Exception as error:  # noqa: BLE001 - raised after the items before it ran
            raise Partial(items, error) from None
        if type(item) in _IMMUTABLE:
            items.append(item)
            continue
        fast = False
        item = _read_groups(item)
        if mode == COPY:
            why = unfit(item)
            if why is not None:
                return _failed(items, refusal(item, start + len(items), why))
            if not _immutable(item):
                item = _frozen(item, start + len(items), items)
        elif mode == SHARE and not _immutable(item):
            if id(item) in recent:
                return _failed(items, _changed(item, start + len(items)))
            recent[id(item)] = item
            if len(recent) > RECENT:
                del recent[next(iter(recent))]
        items.append(item)
    return items, fast


def _fixed(items: list[Any], start: int, mode: str) -> list[Any]:
    if mode != COPY:
        return items
    fixed: list[Any] = []
    for offset, item in enumerate(items):
        why = unfit(item)
        if why is not None:
            raise Partial(fixed, refusal(item, start + offset, why))
        fixed.append(item if _immutable(item) else _frozen(item, start + offset, fixed))
    return fixed


def _changed(item: Any, index: int) -> ParaLoopError:
    return ParaLoopError(
        f"item {index} of the loop ({type(item).__qualname__}) is an object the iterable yields "
        "again, or a group that it empties, as it moves on: iterations running at the same time "
        "would see it changed. Yield copies (list(buffer)), or run the loop with the processes "
        "backend, which fixes each item as it is yielded"
    )


class Partial(Exception):
    """The items read before one that failed, and the failure."""

    def __init__(self, items: list[Any], error: Exception) -> None:
        super().__init__(str(error))
        self.items = items
        self.error = error


def _failed(items: list[Any], error: ParaLoopError) -> tuple[list[Any], bool]:
    raise Partial(items, error)
