"""What changes, as a loop's items are read, that its body reads: refused where it would matter.

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
sections 1 and 5).  So the caller looks, as each item comes out of an iterator (a list, a tuple
or a range runs none of the program's code as it is read), at what the body reads
(:class:`IterableWatch`):

- each global the body reads (and, in a function, each of the function's variables), by identity
  (a number, a string or a tuple of them rebound to an equal one is the same), through a test
  compiled for the names: tens of nanoseconds an item;
- each small container of plain values the body reads (a dict, list, set or deque of numbers,
  strings and tuples of them, nested once, at most ``_ENTRIES`` entries in all and ``_SMALL``
  bytes pickled: a configuration dict; also one in a tuple, or behind a method,
  ``get = config.get``), by its entries and those of the containers in it at each item (a
  C-level copy and comparison, tenths of a microsecond), the hash of its pickle deciding when
  they differ (a new nan set again is no change), and at the end of each read (a set's element
  replaced by another).  A refusal for such a change is noted for the guard
  (:meth:`paraloop.execute.Job.iterable_changes`), which sees the same change in the caller's
  chunks and in threads and would otherwise blame the body.
- each global the body combines into (``total += i``, ``out.append(i)``), by the program's own
  value: the iterable rebinding it would be lost in the combined result.

Not other objects: an object of the program's classes may change as it is read without changing
what the body computes (a ``functools.cached_property`` filled, a counter, a random generator's
state, the loop's own iterator held in an attribute), which a refusal would get wrong, and a
large one would cost every item its pickle.

A change refuses the loop from that item on (``ParaLoopError``, with advice that works: yield the
value with the item); the items before it run and are combined, as before an exception of the
iterable's, and a ``break`` before it means no refusal.  A change after the last item (a
generator's ``finally``) is never seen: no iteration reads it.  The sequential backend reads each
item just before its iteration, as the plain loop does, and runs the body with a global rebound
so, on the program's own objects: it gives the plain result.

A generator expression over ParaLoop, read item by item while the program changes what it reads
in between, is the same question asked the other way round (:class:`BetweenItems`).

In a function, the body's names of the function (and of the functions around it) are looked at
as globals are: the generated code hands the runtime a reader of each (see
:mod:`paraloop.live_names`), so a generator nested in the function that rebinds one as it yields
(``nonlocal``) is seen.

Not looked at: a global read only by a function the body calls, an attribute of a class or a
module, an object other than such a container (a dict holding a function, a dict view), and what
the iterable changes in place in a container the body combines into (its own ``out.append``).
"""

from __future__ import annotations

import functools
import itertools
import pickle
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .chunks import pickled_within
from .errors import ParaLoopError
from .execute import UNBOUND

if TYPE_CHECKING:
    from .live_names import LiveNamespace

__all__ = ["BetweenItems", "IterableWatch"]

# The most bytes of pickle a watched container may take (about 2 us to pickle and hash), and the
# most entries of one, those of the containers in it included (each item copies and compares them:
# see _top).
_SMALL = 4096
_ENTRIES = 64
# Values whose equal replacement leaves what the body reads as it was.
_PLAIN = frozenset({int, float, complex, str, bytes, bool, type(None)})
# Containers watched in place when they hold plain values only.
_CONTAINERS = frozenset({dict, list, set, frozenset, deque, Counter, defaultdict, OrderedDict})
_MISSING = object()


class _Names:
    """The globals a body reads, each with the value it captured, and the expression that tests
    them (compiled by IterableWatch with the containers')."""

    def __init__(
        self,
        bound: list[tuple[str, Any]],
        namespace: Mapping[str, Any] | LiveNamespace,
        kept: frozenset[str] = frozenset(),
    ) -> None:
        self.bound = bound
        self.namespace = namespace
        # Names whose rebinding is never taken (those the body combines into: see IterableWatch.of).
        self.kept = kept
        # The variables of the functions around the loop, not globals (for the refusal).
        self.local: frozenset[str] = getattr(namespace, "names", frozenset())
        # The compiled tests' globals (shared with _Entries): its values are replaced in place (see
        # rebound).  Its module's name tells a traceback that the tests' frames are paraloop's.
        self.scope: dict[str, Any] = {"__name__": __name__, "get": namespace.get, "missing": _MISSING}
        self.scope.update({f"v{position}": value for position, (_, value) in enumerate(bound)})
        # One comparison per name, written out: a loop over the names cost 4 times as much.  In
        # ``fast_expression`` a function's variable is read from its cell (no call of Python code:
        # a third of the time a generator expression's item takes otherwise); an emptied cell
        # raises ValueError, which whoever asks it takes for a change (see BetweenItems.rebound_test).
        cells = getattr(namespace, "cells", {})
        parts, fast = [], []
        for position, (name, _) in enumerate(bound):
            part = f"get({name!r}, missing) is not v{position}"
            parts.append(part)
            if name in cells:
                self.scope[f"c{position}"] = cells[name]
                part = f"c{position}.cell_contents is not v{position}"
            fast.append(part)
        self.expression = " or ".join(parts)
        self.fast_expression = " or ".join(fast)

    def what(self, name: str) -> str:
        """The name as a refusal calls it."""
        return f"the variable {name!r}" if name in self.local else f"the global {name!r}"

    def rebound(self, adopt: Callable[[str, Any], None] | None) -> str | None:
        """The first global rebound to another value, or None; with ``adopt`` (the sequential
        backend) each is taken instead.  A value rebound to an equal one (or taken) becomes the
        one the test compares with: the test stays fast."""
        for position, (name, value) in enumerate(self.bound):
            now = self.namespace.get(name, _MISSING)
            if now is value:
                continue
            if not _same(now, value):
                if adopt is None or name in self.kept:
                    return name
                # Deleted since: the next item raises NameError, as the plain one's would.
                adopt(name, UNBOUND if now is _MISSING else now)
            self.bound[position] = (name, now)
            self.scope[f"v{position}"] = now
        return None


class _Entries:
    """The small containers a body reads, and a fast test of their entries (see _top)."""

    def __init__(self, objects: list[tuple[str, Any]], scope: dict[str, Any]) -> None:
        self.objects = objects
        # The compiled tests' globals (shared with _Names): each container's snapshot function, and
        # its last snapshot.
        self.scope = scope
        scope.update({f"s{position}": _snapshot(value) for position, (_, value) in enumerate(objects)})
        self.rebase()
        self.expression = " or ".join(f"s{position}() != t{position}" for position in range(len(objects)))
        self.test = _compiled(self.expression, scope)

    def rebase(self) -> None:
        """The containers' entries as they are now become those the test compares with."""
        for position in range(len(self.objects)):
            self.scope[f"t{position}"] = self.scope[f"s{position}"]()


def _compiled(expression: str, scope: dict[str, Any]) -> Callable[[], bool]:
    """``expression`` as a function of no arguments over ``scope`` (False if it is empty)."""
    return eval(f"lambda: {expression}", scope) if expression else _never


class IterableWatch:
    """The caller's look at what the loop's body reads, as each item comes out of its iterator.

    :meth:`reading` wraps the iterator for each read: a change raises the refusal out of it, which
    the chunker takes as it takes the iterable's own exception (the items before it run)."""

    def __init__(
        self,
        names: _Names,
        objects: list[tuple[str, Any]],
        where: str,
        adopt: Callable[[str, Any], None] | None = None,
    ) -> None:
        self._names = names
        self._where = where
        # The sequential backend takes a rebound global into its next iteration (see adopt).
        self._adopt = adopt
        self._objects = [] if adopt is not None else objects
        self._entries = _Entries(self._objects, names.scope)
        # Each item's test, written out for the names and the containers (see reading).
        scope = names.scope
        scope["slow"] = self._slow
        expression = " or ".join(part for part in (names.expression, self._entries.expression) if part)
        # The same test, asked before each item of a generator expression (BetweenItems).
        self._test = _compiled(
            " or ".join(part for part in (names.fast_expression, self._entries.expression) if part), scope
        )
        self._pass = eval(
            f"lambda item, index: slow(item, index) if {expression or 'False'} else item", scope
        )
        # At the current read's start: each container's fingerprint.
        self._prints: list[int | None] = []
        # Where its refusals are noted for the guard, which sees the same change in the caller's
        # chunks and in threads and would blame the body (see Job.iterable_changes).
        self.noted: dict[int, ParaLoopError] = {}

    @classmethod
    def of(
        cls,
        params: tuple[str, ...],
        values: tuple[Any, ...] | list[Any],
        skip: frozenset[str],
        from_globals: Callable[[str], bool],
        namespace: Mapping[str, Any] | LiveNamespace,
        where: str,
        adopt: Callable[[str, Any], None] | None = None,
    ) -> IterableWatch | None:
        """The watch over the body's ``params`` (those in ``skip``, the tracked ones, left out), or
        None if there is nothing to watch.  ``from_globals`` tells a name taken from ``namespace``,
        the module's globals (or, a :class:`~paraloop.live_names.LiveNamespace`, the variables of
        the functions around the loop too)."""
        bound: list[tuple[str, Any]] = []
        objects: list[tuple[str, Any]] = []
        for name, value in zip(params, values):
            if name.startswith("__paraloop"):
                continue
            if name in skip:
                # A name the body combines into (its value here is the loop's private copy): the
                # iterable rebinding it (total = 1000 at some item) would be lost in the combined
                # result, so it is watched by the program's own value, and never taken.
                if from_globals(name):
                    bound.append((name, namespace.get(name, _MISSING)))
                continue
            if from_globals(name):
                # Unbound when the loop began (the worker deletes it: NameError where it is read):
                # bound since is a change, still unbound none.
                bound.append((name, _MISSING if value is UNBOUND else value))
            # A method of a container (get = config.get) reads the container.
            inner = getattr(value, "__self__", None) if isinstance(value, types.BuiltinMethodType) else value
            if _plain_container(inner, 0):
                # What is watched depends on sizes, never on timings: the same in every run.
                if pickled_within(inner, _SMALL):
                    objects.append((name, inner))
        if adopt is not None:
            objects = []  # the sequential backend's body reads the program's own objects
        if not bound and not objects:
            return None
        return cls(_Names(bound, namespace, skip), objects, where, adopt)

    def reading(self, iterator: Any, start: int) -> Any:
        """For a read of items from the ``start`` on: ``iterator``, each item let through once
        nothing the body reads changed as it came.  The containers as they are now are those
        compared with (between two reads, the body's own changes in the caller's chunks are the
        guard's to judge)."""
        if self._objects:
            self._prints = [_fingerprint(value) for _, value in self._objects]
            self._entries.rebase()
        return map(self._pass, iterator, itertools.count(start))

    def _slow(self, item: Any, index: int) -> Any:
        """An item whose test fired: judged, refused (raised out of the iterator) or let through."""
        name = self._names.rebound(self._adopt)
        if name is not None:
            raise self._refusal(self._names.what(name), name, index)
        if self._objects and self._entries.test():
            for (name, value), before in zip(self._objects, self._prints):
                if _fingerprint(value) != before:
                    raise self._changed_in_place(name, value, index)
            self._entries.rebase()  # an unequal value set again (a new nan): no change
        return item

    def end(self, start: int) -> ParaLoopError | None:
        """After a read of items from the ``start`` on (also one the iterable's exception ended): a
        change the entries did not show (a set's element replaced by another, the size the same),
        which refuses the read's items from the first."""
        for (name, value), before in zip(self._objects, self._prints):
            if _fingerprint(value) != before:
                return self._changed_in_place(name, value, start)
        return None

    def _changed_in_place(self, name: str, value: Any, index: int) -> ParaLoopError:
        refusal = self._refusal(f"{name!r} (in place: {type(value).__name__})", name, index)
        for container in (value, *_inner(value)):
            self.noted[id(container)] = refusal
        return refusal

    def _refusal(self, what: str, name: str, index: int) -> ParaLoopError:
        if name in self._names.kept:
            # No yield of the value helps, nor the sequential backend, which combines the body's
            # total as every backend does: the iterations go on from the value the iterable set.
            # Or a function the body calls rebound it (global total) where iterations run in the
            # program (threads, sequential, the caller's chunks), between two reads of items.
            return ParaLoopError(
                f"{self._where}: {what}, which the body combines into, was rebound before item "
                f"{index} was read: the loop's iterable changed it, or a function the body calls "
                f"did (global {name}).  The loop's own result would overwrite that change: if the "
                "iterable sets it, the loop is sequential by nature.  Run it as a plain for loop "
                "(without ParaLoop), or set the name before or after the loop, not in the iterable; "
                f"if a function the body calls changes it, have it return its part and update {name} "
                "in the body"
            )
        return ParaLoopError(
            f"{self._where}: the loop's iterable changed {what}, which the body reads, before it "
            f"yielded item {index}: paraloop reads items ahead of the iterations, which read the "
            "value of when the loop began, so they would not give the plain loop's result.  Yield "
            f"what the body needs with each item (yield item, {name} in the iterable, then for "
            "item, value in ParaLoop(...) and value in the body), or set it before the loop; "
            "backend='sequential' runs the loop as written"
        )


class BetweenItems:
    """A generator expression over ParaLoop, read item by item: what the program changed since its
    first item was asked for (when its names were captured), that its body reads.

    ``g = (i * scale["k"] for i in ParaLoop(items))``, ``next(g)``, then ``scale["k"] = 100``:
    a plain generator expression computes each item when it is asked for, with the values of
    then.  paraloop's workers compute the items ahead, with the values of when the first item
    was asked for, so a change the program makes between two items is refused when the next is
    asked for: a global or a variable of the function around the expression rebound (see
    :mod:`paraloop.live_names`), or a container's entries changed (those of the containers in it
    too), before each item, and what its entries do not show (a set's element replaced) before
    a chunk's first item and at the end.  The sequential backend computes such an
    expression's items one by one, each when it is asked for, on the program's objects and with
    a name as the program rebound it: the plain result.
    """

    def __init__(self, watch: IterableWatch) -> None:
        self._watch = watch
        self._start = [_fingerprint(value) for _, value in watch._objects]

    def rebound_test(self) -> Callable[[], bool]:
        """The test asked before each item: a global the expression reads may have been rebound,
        or a container it reads changed (then :meth:`changed` judges).  It raises ValueError where
        a variable of the function around the expression was deleted: a change too."""
        self._watch._entries.rebase()
        return self._watch._test

    def rebound(self, index: int) -> ParaLoopError | None:
        """Before item ``index`` is handed out: a global the body reads, rebound since (the
        sequential backend, which computes each item when it is asked for, takes it instead)."""
        name = self._watch._names.rebound(self._watch._adopt)
        return None if name is None else self._refusal(self._watch._names.what(name), index)

    def changed(self, index: int) -> ParaLoopError | None:
        """Before item ``index`` (a chunk's first) or at the end: a global rebound, or a container
        changed in place, since the expression was made."""
        refused = self.rebound(index)
        if refused is not None:
            return refused
        for (name, value), earlier in zip(self._watch._objects, self._start):
            if _fingerprint(value) != earlier:
                return self._refusal(f"{name!r} (in place: {type(value).__name__})", index)
        return None

    def end(self, index: int) -> ParaLoopError | None:
        """After the last item (``index`` items handed out), where :meth:`changed` saw a change: a
        name rebound or an entry changed since the last item's test was made after it, and no
        item reads it; a container whose pickle changed with the same entries (a set's element
        replaced) may have changed before the last item."""
        if self._watch._entries.test():
            return None  # the entries changed after the last item's test
        for (name, value), earlier in zip(self._watch._objects, self._start):
            if _fingerprint(value) != earlier:
                return self._refusal(f"{name!r} (in place: {type(value).__name__})", index)
        return None

    def _refusal(self, what: str, index: int) -> ParaLoopError:
        return ParaLoopError(
            f"{self._watch._where}: the program changed {what}, which the generator "
            f"expression reads, before it asked for item {index}: paraloop computes a generator "
            "expression's items ahead, with the values of when its first item was asked for (the "
            "items of the chunk just read may have used them already).  Read the expression whole "
            "(list(...)) before changing what it reads, or put what changes in its items"
        )


def _never() -> bool:
    return False


def _top(value: Any, depth: int = 0) -> Any:
    """A container's entries, and those of the containers in it, compared item by item (see
    IterableWatch._passing): a dict's pairs, a sequence's elements; a set's elements, sorted
    where they can be (else its size)."""
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return len(value)
    entries = [*value.items()] if isinstance(value, dict) else [*value]
    if depth == 0:
        entries += [_top(part, 1) for part in _inner(value)]
    return entries


def _fingerprint(value: Any) -> int | None:
    """A hash of ``value``'s pickle (a plain container's: see _plain_container), or None."""
    try:
        return hash(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - a default_factory that cannot be pickled: not looked at
        return None


def _plain_container(value: Any, depth: int) -> bool:
    """Whether ``value`` is a built-in container of plain values (numbers, strings, tuples of
    them), containers of them nested once at most."""
    kind = type(value)
    if kind is tuple:
        # A tuple of plain values cannot change; one that holds a container can, in place.
        return (
            depth < 1
            and not _plain(value)
            and all(_plain(part) or _plain_container(part, 1) for part in value)
        )
    if kind not in _CONTAINERS or len(value) > _ENTRIES:
        return False
    if depth == 0 and sum(len(part) for part in _parts(value) if type(part) in _CONTAINERS) > _ENTRIES:
        return False  # each item compares them all
    if isinstance(value, defaultdict) and value.default_factory not in (
        None,
        int,
        float,
        str,
        list,
        set,
        dict,
    ):
        return False
    contents = [*value.keys(), *value.values()] if isinstance(value, dict) else list(value)
    return all(_plain(part) or (depth < 1 and _plain_container(part, depth + 1)) for part in contents)


def _snapshot(value: Any) -> Callable[[], Any]:
    """A function that gives :func:`_top` of ``value``, made of C calls where it has no containers
    in it (a dict's or a list's entries copied by ``list``; a set's size)."""
    if _inner(value) or type(value) is tuple:
        return functools.partial(_top, value)
    if isinstance(value, (set, frozenset)):
        return value.__len__  # its elements are compared at the read's end (IterableWatch.end)
    return functools.partial(list, value.items() if isinstance(value, dict) else value)


def _inner(value: Any) -> list[Any]:
    """The containers inside a watched container (the guard may watch them by themselves)."""
    return [
        part
        for part in _parts(value)
        if type(part) in _CONTAINERS or (type(part) is tuple and not _plain(part))
    ]


def _parts(value: Any) -> Any:
    return value.values() if isinstance(value, dict) else value


def _plain(value: Any) -> bool:
    kind = type(value)
    return kind in _PLAIN or (kind is tuple and all(type(part) in _PLAIN for part in value))


def _same(now: Any, then: Any) -> bool:
    """Whether ``now`` and ``then`` are equal plain values (the same for the body): numbers by
    their exact representation (-0.0 is not 0.0), tuples of them element by element."""
    kind = type(now)
    if kind is not type(then):
        return False
    if kind is tuple:
        return len(now) == len(then) and all(map(_same, now, then))
    if kind in (float, complex):
        return repr(now) == repr(then)
    return kind in _PLAIN and bool(now == then)
