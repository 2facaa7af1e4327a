"""What the loop's iterable changes as it yields: a global the body reads, or an object in place.

A generator may set what the body reads before it yields each item::

    def rows():
        global SCALE
        for i in range(30):
            SCALE = i        # or config["scale"] = i
            yield i

    for i in ParaLoop(rows()):
        out.append(i * SCALE)

The plain loop's iteration reads the value set for its own item.  paraloop reads items ahead of
the iterations, and the iterations (in workers, in threads, in the caller's chunks) read the
values the loop captured when it began: every one the same stale value, silently (CONTRACT
sections 1 and 5).  So the caller looks, after each read of items from an iterator (a list, a
tuple or a range runs none of the program's code as it is read), at what the body reads:

- each global the body reads, by identity (equal numbers and strings count as the same);
- each object the body reads that can change in place, by the hash of its pickle, where that
  takes at most ``_SMALL`` bytes, before and after each read (a change made between two reads,
  by the body in the caller's chunks, is the guard's to judge: paraloop.guard).

A change refuses the loop from the items of that read on, with advice that works (yield the
value with the item).  The sequential backend reads each item just before its iteration, as the
plain loop does, and runs the body with a global rebound so: it gives the plain result.

Not looked at: a global read only by a function the body calls, a local variable of the
function around the loop that a generator nested in it rebinds (``nonlocal``), and an object
whose pickle is larger than ``_SMALL``.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ParaLoopError
from .guard import ATOMS, Bounded, fingerprint

__all__ = ["BetweenItems", "IterableWatch"]

# A captured object whose pickle is larger than this is not looked at (its fingerprint, twice a
# chunk, would cost a loop of small chunks more than its items: 64 KB take about 0.05 ms).
_SMALL = 1 << 16
# Values a rebinding to an equal one leaves as they were (a new float of the same value).
_EQUAL_KINDS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_MISSING = object()


class IterableWatch:
    """The caller's look at what the loop's body reads, around each read of its iterator."""

    def __init__(
        self,
        globals_read: list[tuple[str, Any]],
        objects: list[tuple[str, Any]],
        namespace: Mapping[str, Any],
        where: str,
        adopt: Callable[[str, Any], None] | None = None,
    ) -> None:
        self._globals = globals_read
        self._namespace = namespace
        self._where = where
        # The sequential backend takes a rebound global into its next iteration (see adopt).
        self._adopt = adopt
        # By their size, not by the time a look took: what is watched is the same in every run.
        self._objects = [(name, value) for name, value in objects if _fingerprint(value) is not None]

    @classmethod
    def of(
        cls,
        params: tuple[str, ...],
        values: tuple[Any, ...] | list[Any],
        skip: frozenset[str],
        from_globals: Callable[[str], bool],
        namespace: Mapping[str, Any],
        where: str,
        adopt: Callable[[str, Any], None] | None = None,
    ) -> IterableWatch | None:
        """The watch over the body's ``params`` (those in ``skip``, the tracked ones, left out), or
        None if there is nothing to watch.  ``from_globals`` tells a name taken from ``namespace``,
        the module's globals."""
        globals_read: list[tuple[str, Any]] = []
        objects: list[tuple[str, Any]] = []
        for name, value in zip(params, values):
            if name in skip or name.startswith("__paraloop"):
                continue
            if from_globals(name):
                globals_read.append((name, value))
            if _changeable(value):
                objects.append((name, value))
        if adopt is not None:
            objects = []  # the sequential backend's body reads the objects themselves
        if not globals_read and not objects:
            return None
        return cls(globals_read, objects, namespace, where, adopt)

    def before(self) -> list[int | None]:
        """Before a read of items: the watched objects' fingerprints now.  Not those of the loop's
        start: between two reads the caller's chunks run the body on the program's objects, and
        what it may change there without changing what the body computes (a value a
        ``functools.cached_property`` stored, an object's own cache) is not the iterable's doing."""
        return [_fingerprint(value) for _, value in self._objects]

    def after(self, before: list[int | None], first: int) -> ParaLoopError | None:
        """After a read of items from the ``first`` on: the refusal, if the read changed what the
        body reads (the sequential backend takes a rebound global instead)."""
        namespace = self._namespace
        for position, (name, value) in enumerate(self._globals):
            now = namespace.get(name, _MISSING)
            if now is value or _same(now, value):
                continue
            if self._adopt is not None and now is not _MISSING:
                self._adopt(name, now)
                self._globals[position] = (name, now)
                continue
            return self._refusal(f"the global {name!r}", name, first)
        for (name, value), earlier in zip(self._objects, before):
            if earlier is not None and _fingerprint(value) != earlier:
                return self._refusal(f"{name!r} (in place: {type(value).__name__})", name, first)
        return None

    def _refusal(self, what: str, name: str, first: int) -> ParaLoopError:
        return ParaLoopError(
            f"{self._where}: the loop's iterable changed {what}, which the body reads, as it "
            f"yielded its items (item {first} or one read with it): paraloop reads items ahead of "
            "the iterations, which read the value of when the loop began, so they would not give "
            "the plain loop's result.  Yield what the body needs with each item (yield item, "
            f"{name} in the iterable, then for item, value in ParaLoop(...) and value in the "
            "body), or set it before the loop; backend='sequential' runs the loop as written"
        )


class BetweenItems:
    """A generator expression over ParaLoop, read item by item: what the program changed since the
    expression was made, that its body reads.

    ``g = (i * scale["k"] for i in ParaLoop(items))``, ``next(g)``, then ``scale["k"] = 100``:
    a plain generator expression computes each item when it is asked for, with the values of
    then.  paraloop's workers compute the items ahead, with the values of when the expression
    was made, so a change the program makes between two items is refused when the next is
    asked for: a rebound global at once (each item), a change in place at the next chunk's first
    item or at the end (an object's fingerprint costs microseconds, too much for every item of a
    long expression), so the items of a chunk read after such a change may have used the old
    value before the refusal comes.  The fingerprints are the guard's, which leave out what a
    ``functools.cached_property`` stored: with threads, iterations run on the program's objects
    while the program reads the items.  The sequential backend computes such an expression's
    items one by one, each when it is asked for, on the program's objects and with a global as
    the program rebound it: the plain result.
    """

    def __init__(self, watch: IterableWatch) -> None:
        self._watch = watch
        self._start = [fingerprint(value, limit=_SMALL) for _, value in watch._objects]
        # The values rebound_test was made for, and the test (see rebound_test).
        self._test: tuple[list[Any], Callable[[], bool]] | None = None

    def rebound(self, index: int) -> ParaLoopError | None:
        """Before item ``index`` is handed out: a global the body reads, rebound since (the
        sequential backend, which computes each item when it is asked for, takes it instead)."""
        watch = self._watch
        namespace = watch._namespace
        for position, (name, value) in enumerate(watch._globals):
            now = namespace.get(name, _MISSING)
            if now is value or _same(now, value):
                continue
            if watch._adopt is not None and now is not _MISSING:
                watch._adopt(name, now)
                watch._globals[position] = (name, now)
                continue
            return self._refusal(f"the global {name!r}", index)
        return None

    def rebound_test(self) -> Callable[[], bool]:
        """A function that tells, in tens of nanoseconds, whether a global the body reads may have
        been rebound since now (then :meth:`rebound` judges): each item of a long expression
        asks it."""
        watch = self._watch
        if not watch._globals:
            return _never
        made = self._test
        if made is not None and made[0] == [value for _, value in watch._globals]:
            return made[1]
        # One comparison per name, written out: a loop over the names cost 4 times as much.
        values = {f"v{position}": value for position, (_, value) in enumerate(watch._globals)}
        test = " or ".join(
            f"get({name!r}, missing) is not v{position}" for position, (name, _) in enumerate(watch._globals)
        )
        scope = {"get": watch._namespace.get, "missing": _MISSING, **values}
        made = self._test = ([value for _, value in watch._globals], eval(f"lambda: {test}", scope))
        return made[1]

    def changed(self, index: int) -> ParaLoopError | None:
        """Before item ``index`` (a chunk's first) or at the end: a global rebound, or an object
        changed in place, since the expression was made."""
        refused = self.rebound(index)
        if refused is not None:
            return refused
        for (name, value), earlier in zip(self._watch._objects, self._start):
            if earlier is not None and fingerprint(value, limit=_SMALL) != earlier:
                return self._refusal(f"{name!r} (in place: {type(value).__name__})", index)
        return None

    def _refusal(self, what: str, index: int) -> ParaLoopError:
        return ParaLoopError(
            f"{self._watch._where}: the program changed {what}, which the generator "
            f"expression reads, before it asked for item {index}: paraloop computes a generator "
            "expression's items ahead, with the values of when it was made (the items of the chunk "
            "just read may have used them already).  Read the expression whole (list(...)) before "
            "changing what it reads, or put what changes in its items"
        )


def _never() -> bool:
    return False


def _fingerprint(value: Any) -> int | None:
    """A hash of ``value``'s pickle, or None if it cannot be pickled or its pickle passes
    ``_SMALL`` bytes.  The C pickler alone, a microsecond or two for a small dict: the guard's
    fingerprints (paraloop.guard), which call Python for each object inside, cost a small loop
    tenths of a millisecond at two a chunk."""
    buffer = Bounded(_SMALL)
    try:
        pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except Exception:  # noqa: BLE001 - an object paraloop cannot see into is not looked at
        return None
    return hash(buffer.getvalue())


def _changeable(value: Any) -> bool:
    """Whether ``value`` is an object whose contents the iterable could change in place (not a
    module, a function or a class, whose changes the guard watches, nor a number or a string)."""
    kind = type(value)
    if kind in ATOMS or kind is tuple:
        return False
    if isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
        return False
    if isinstance(value, (types.MethodType, types.BuiltinMethodType)):
        return False
    # A numpy array is made read-only by the guard where chunks run, and costs a copy to look at;
    # paraloop's own objects (a PerWorker makes its value in the caller's chunk) change by design.
    return kind.__module__.partition(".")[0] not in ("numpy", "paraloop")


def _same(now: Any, then: Any) -> bool:
    """Whether ``now`` and ``then`` are equal numbers, strings or None (the same for the body)."""
    kind = type(now)
    return kind is type(then) and kind in _EQUAL_KINDS and now == then
