"""Exact reductions: a worker records each contribution, the caller replays them in order.

Float addition is not associative: ``(a + b) + c`` and ``a + (b + c)`` can
differ in the last bits.  Combining per-chunk partial sums would give a
result that depends on where chunks begin and end, and chunk sizes follow
measured times, so the last digits would change from run to run.  So for a
``Sum`` or ``Product`` whose value can round (floats, complex numbers, float
numpy arrays, and integers, which may meet a float), the rewritten body does
not apply ``total += x`` in the worker: it records ``x``.  The caller applies
the recorded values one by one, in iteration order, onto the pre-loop value:
the plain loop's own operations in the plain loop's order, so the result has
the plain loop's bits, for any worker count, chunk size and backend.

Every update site of such a name is generated in two forms (see
:mod:`paraloop.hook.rewriter`)::

    if __paraloop_log_total__ is None:
        total += x                      # applied: partial results per chunk
    else:
        __paraloop_log_total__(x)       # recorded: replayed by the caller

In the worker, ``__paraloop_log_total__`` is this chunk's :class:`Recorder`:
``put(x)`` records ``total += x``, ``put_inverse(x)`` records ``total -= x``
(or ``/=``), and ``put_at(k, x)``, ``put_at_inverse(k, x)`` the same for one
entry, ``d[k] += x``.
"""

from __future__ import annotations

import array
import operator
from collections.abc import Callable
from typing import Any

__all__ = ["Recorder", "Replay", "StandIn", "check_whole", "inexact", "replay"]

# The operations a strategy applies, with their inverses.
_OPERATIONS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "add": (operator.iadd, operator.isub),
    "mul": (operator.imul, operator.itruediv),
}
# Negating these is exact, so ``total -= x`` can travel as ``+ (-x)``.
_NEGATABLE = (int, float, complex)


def inexact(value: object) -> bool:
    """A value whose arithmetic rounds: a float, a complex, a Decimal, a numpy float (or array of them)."""
    if isinstance(value, (float, complex)):
        return True
    kind = type(value)
    if kind.__module__ == "decimal":
        return True
    if kind.__module__ == "numpy":
        dtype = getattr(value, "dtype", None)
        return dtype is not None and dtype.kind not in "iub"
    return False


# Partial results of these types combine exactly in any grouping.
_WHOLE = frozenset({int, bool, list, set, dict, tuple, str, bytes})


def check_whole(name: str, partial: Any) -> str | None:
    """Why a per-key or per-index partial result cannot be combined exactly, or None.

    A sum of whole numbers per key is exact in any grouping; an entry that
    became a float was rounded in the worker's own order.
    """
    if not isinstance(partial, dict) or set(map(type, partial.values())) <= _WHOLE:
        return None
    for key, amount in partial.items():
        if inexact(amount):
            return (
                f"{name!r} held whole numbers when the loop started, but an iteration made "
                f"{name}[{key!r}] the {type(amount).__name__} {amount!r}. paraloop adds floats in the "
                "plain loop's order only for entries that are floats from the start: create it "
                f"with float entries ({name} = defaultdict(float) for a dict of sums, "
                f"[0.0] * n for a list)"
            )
    return None


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _snapshot(value: Any) -> Any:
    """A numpy array as it is now: the body may overwrite its buffer in a later iteration."""
    if _is_numpy_array(value):
        return value.copy()
    if type(value) is tuple:
        return tuple(_snapshot(element) for element in value)
    return value


class _Inverse:
    """A recorded ``-= x`` or ``/= x``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Inverse, (self.value,))


class Replay:
    """The contributions of one chunk to one name, in iteration order (sent to the caller).

    ``entries`` is an ``array('d')`` when every entry is a float, an
    ``array('q')`` when every entry is a machine-sized int, else a list.
    ``total`` is their exact sum when they are all ints: the caller adds it at
    once when its value is an int too.
    """

    __slots__ = ("entries", "keyed", "total")

    def __init__(self, entries: Any, total: int | None = None, keyed: bool = False) -> None:
        self.entries = entries
        self.total = total
        # Entries are (key, value) updates of one entry each.
        self.keyed = keyed

    def __len__(self) -> int:
        return len(self.entries)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Replay, (self.entries, self.total, self.keyed))


class Recorder:
    """Collects one chunk's contributions to one name, in the worker.

    ``target`` is the worker's private value of the name: an update of one
    entry checks its key against it, so that a key the plain loop would fail
    on (a missing key of a plain dict, an index out of range) fails in the
    same iteration here.
    """

    __slots__ = ("entries", "keyed", "negate", "put", "target")

    def __init__(self, target: Any, operation: str) -> None:
        self.entries: list[Any] = []
        self.target = target
        self.keyed = False
        # Inverse entries of a sum of plain numbers travel negated: their array stays compact.
        self.negate = operation == "add"
        # The common case, a number added to a number, costs one C call.
        self.put: Callable[[Any], None] = self._put_array if _is_numpy_array(target) else self.entries.append

    def _put_array(self, value: Any) -> None:
        self.entries.append(_snapshot(value))

    def put_inverse(self, value: Any) -> None:
        self.entries.append(_Inverse(_snapshot(value)))

    def put_at(self, key: Any, value: Any) -> None:
        self._check(key)
        self.keyed = True
        self.entries.append((_snapshot(key), _snapshot(value)))

    def put_at_inverse(self, key: Any, value: Any) -> None:
        self._check(key)
        self.keyed = True
        self.entries.append((_snapshot(key), _snapshot(value), None))

    def _check(self, key: Any) -> None:
        target = self.target
        if isinstance(target, dict):
            if getattr(target, "__missing__", None) is None and key not in target:
                raise KeyError(key)
        else:
            target[key]  # an index out of range, or of the wrong type, fails here as in the plain loop

    def finish(self) -> Replay:
        entries = self.entries
        if self.keyed:
            return Replay(entries, keyed=True)
        if self.negate:
            entries = [
                -e.value if type(e) is _Inverse and type(e.value) in _NEGATABLE else e for e in entries
            ]
        kinds = set(map(type, entries))
        if kinds == {float}:
            return Replay(array.array("d", entries))
        if kinds == {int}:
            total = sum(entries)
            try:
                return Replay(array.array("q", entries), total)
            except OverflowError:
                return Replay(entries, total)
        return Replay(entries)


class StandIn:
    """The worker's value of a replayed name: updating it records the update.

    The generated code records the updates it can see (``total += x`` in the
    body itself) without touching the value.  Updates it cannot see, those
    made by a ParaLoop loop nested in the body (which runs in the worker, in
    order), reach this object instead, and are recorded the same way.
    """

    __slots__ = ("_recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def __iadd__(self, value: Any) -> StandIn:
        self._recorder.put(value)
        return self

    def __isub__(self, value: Any) -> StandIn:
        self._recorder.put_inverse(value)
        return self

    __imul__ = __add__ = __mul__ = __iadd__
    __itruediv__ = __sub__ = __truediv__ = __isub__

    def __getitem__(self, key: Any) -> _EntryStandIn:
        return _EntryStandIn(self._recorder, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(value, _EntryStandIn):
            raise TypeError("paraloop: an entry of a replayed sum or product is updated with += or *= only")


class _EntryStandIn:
    """``d[k]`` of a :class:`StandIn`: ``d[k] += x`` records ``(k, x)``."""

    __slots__ = ("_key", "_recorder")

    def __init__(self, recorder: Recorder, key: Any) -> None:
        self._recorder = recorder
        self._key = key

    def __iadd__(self, value: Any) -> _EntryStandIn:
        self._recorder.put_at(self._key, value)
        return self

    def __isub__(self, value: Any) -> _EntryStandIn:
        self._recorder.put_at_inverse(self._key, value)
        return self

    __imul__ = __iadd__
    __itruediv__ = __isub__


def replay(accumulated: Any, partial: Replay, operation: str) -> Any:
    """Apply a chunk's recorded contributions onto ``accumulated``, in order; return the result."""
    if partial.total is not None and type(accumulated) is int and operation == "add":
        return accumulated + partial.total
    forward, inverse = _OPERATIONS[operation]
    entries = partial.entries
    if isinstance(entries, array.array):
        if operation == "add":
            for entry in entries:
                accumulated += entry
        else:
            for entry in entries:
                accumulated *= entry
        return accumulated
    if partial.keyed:
        for entry in entries:
            key = entry[0]
            apply = inverse if len(entry) == 3 else forward
            accumulated[key] = apply(accumulated[key], entry[1])
        return accumulated
    for entry in entries:
        if type(entry) is _Inverse:
            accumulated = inverse(accumulated, entry.value)
        else:
            accumulated = forward(accumulated, entry)
    return accumulated
