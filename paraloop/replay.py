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
        __paraloop_log_total__.append(x)   # recorded: replayed by the caller

In the worker, ``__paraloop_log_total__`` is this chunk's :class:`Recorder`:
``append(x)`` records ``total += x``, ``put_inverse(x)`` records ``total -= x``
(or ``/=``), and ``put_at(k, x)``, ``put_at_inverse(k, x)`` the same for one
entry, ``d[k] += x``.
"""

from __future__ import annotations

import array
import math
import operator
from collections.abc import Callable
from itertools import islice
from typing import Any

__all__ = [
    "CONTINUED_TYPES", "Continued", "Recorder", "Replay", "StandIn", "Whole", "check_whole", "combine_whole",
    "inexact", "recorder", "replay",
]  # fmt: skip

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


class Continued:
    """A chunk's value of a float (or complex) sum or product, applied in order from the value
    the loop had before the chunk: it replaces the combined value.

    The caller runs a loop's first chunks itself (see
    :mod:`paraloop.backends.processes.caller`), in order, with everything before them
    combined: those chunks apply ``total += x`` onto the running value, the plain loop's own
    operations, rather than record each term for a replay.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Continued, (self.value,))


# The values a chunk may continue from (immutable: the running value is rebound, never changed).
CONTINUED_TYPES = (float, complex)


class Whole(int):
    """A chunk's sum (or product) of whole numbers, added per chunk: exact onto a whole number.

    Onto anything else (a float, after another chunk added one) the grouping would change
    the rounding, so the combine refuses it (:func:`combine_whole`).
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Whole, (int(self),))


def combine_whole(accumulated: Any, partial: Whole, operation: str) -> Any:
    """``accumulated`` with a chunk's whole-number partial result, exactly, or a refusal."""
    if type(accumulated) is not int:
        from .errors import ParaLoopError

        raise ParaLoopError(
            "a name that started as a whole number got both whole-number and other (float) terms "
            "in different chunks, which paraloop cannot add in the plain loop's order. Start it as "
            "a float (0.0 before the loop): every term is then added in the plain loop's order"
        )
    value = int(partial)
    return accumulated + value if operation == "add" else accumulated * value


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


class Recorder(list):  # type: ignore[type-arg]
    """Collects one chunk's contributions to one name, in the worker, in order.

    The generated code records ``total += x`` as ``log.append(x)``: a list's own
    append, the cheapest call there is.  ``target`` is the worker's private value
    of the name: an update of one entry checks its key against it, so that a key
    the plain loop would fail on (a missing key of a plain dict, an index out of
    range) fails in the same iteration here.
    """

    __slots__ = ("inverted", "keyed", "negate", "target")

    def __init__(self, target: Any, operation: str) -> None:
        super().__init__()
        self.target = target
        self.keyed = False
        # Inverse entries of a sum of plain numbers travel negated: their array stays compact.
        self.negate = operation == "add"
        # Whether any inverse entry was recorded (most loops have none: no pass over them).
        self.inverted = False

    @property
    def entries(self) -> list[Any]:
        return self

    def put_inverse(self, value: Any) -> None:
        self.inverted = True
        list.append(self, _Inverse(_snapshot(value)))

    def put_at(self, key: Any, value: Any) -> None:
        self._check(key)
        self.keyed = True
        list.append(self, (_snapshot(key), _snapshot(value)))

    def put_at_inverse(self, key: Any, value: Any) -> None:
        self._check(key)
        self.keyed = True
        list.append(self, (_snapshot(key), _snapshot(value), None))

    def _check(self, key: Any) -> None:
        target = self.target
        if isinstance(target, dict):
            if getattr(target, "__missing__", None) is None and key not in target:
                raise KeyError(key)
        else:
            target[key]  # an index out of range, or of the wrong type, fails here as in the plain loop

    def finish(self) -> Replay:
        """The chunk's contributions, compact: arrays of floats or of machine-sized ints."""
        entries: list[Any] = self
        if self.keyed:
            return Replay(list(entries), keyed=True)
        if self.negate and self.inverted:
            entries = [
                -e.value if type(e) is _Inverse and type(e.value) in _NEGATABLE else e for e in entries
            ]
        if entries:
            # All floats, or all ints? One pass that only compares each entry's type with the
            # first's (by identity, as a set of the types did by hash; a bool is not an int).
            kind = type(entries[0])
            if (kind is float or kind is int) and operator.countOf(map(type, entries), kind) == len(entries):
                # fromlist() reads a list subclass (the recorder) as fast as a list; the
                # constructor iterates one, at three times the cost.
                if kind is float:
                    floats = array.array("d")
                    floats.fromlist(entries)
                    return Replay(floats)
                total = sum(entries)
                ints = array.array("q")
                try:
                    ints.fromlist(entries)
                except OverflowError:
                    return Replay(list(entries), total)
                return Replay(ints, total)
        return Replay(list(entries))


class ArrayRecorder(Recorder):
    """A recorder of numpy arrays: each kept as it is now (the body may refill its buffer)."""

    __slots__ = ()

    def append(self, value: Any) -> None:
        list.append(self, _snapshot(value))


def recorder(target: Any, operation: str) -> Recorder:
    """The recorder for one chunk's updates of a name whose worker value is ``target``."""
    return ArrayRecorder(target, operation) if _is_numpy_array(target) else Recorder(target, operation)


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
        self._recorder.append(value)
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
        if type(accumulated) in _PLAIN_NUMBERS:
            return _fold(accumulated, entries, operation)
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


# The fast replay of an array of terms (floats, or machine-sized ints) onto a plain number.
#
# ``total += x`` on an int, a float or a complex is ``total = total + x`` (these types have
# no in-place operators), so any evaluation that applies ``+`` to the running total and each
# term in turn, left to right, gives the plain loop's bits.  Two ways to do it:
#
# - A C left fold: ``sum(terms, start)`` (floats added one by one before Python 3.12; 3.12
#   compensates the rounding errors of float terms, Neumaier's algorithm, which changes the
#   last bits, though not of int terms onto a float, nor onto a complex, which takes sum()'s
#   generic ``PyNumber_Add`` loop) and ``math.prod(terms, start=start)`` (multiplied one by
#   one).  That they fold plainly is CPython's implementation, not its documentation, so each
#   is used only after a self-check at first use, per operation, type of the value and kind of
#   terms: terms on which a compensated, an exact (rounded once), a pairwise or a reversed fold
#   gives other bits than the plain one (_CHECKS, _c_fold_in_order).
# - Python, 16 terms per step: ``total = total + a + b + ... + p`` is evaluated left to right
#   (the language's rule), with one loop step, and no store and load of the total, per 16
#   terms: about 1.5 times the speed of ``for x in terms: total += x`` (3.12 and 3.13, where
#   sum() of floats needs it).
#
# (On 3.12 and 3.13 a start object whose ``__add__`` returns ``start + x`` sends sum() to its
# generic loop, plain ``PyNumber_Add`` at C speed; measured, that is no faster than the Python
# loop, because each step allocates a float, so it is not used.)

# Looked up here, so that a test can swap in a fold that is not plain.
_c_sum = sum
_c_prod = math.prod

_PLAIN_NUMBERS = frozenset({int, float, complex})

# Terms, per operation and array typecode, whose plain fold from kind(0) (kind(1) for a
# product) differs from other orders of rounding: a C fold must give the plain loop's bits.
_CHECKS: dict[tuple[str, str], tuple[list[Any], ...]] = {
    # Plain 1.0, compensated and exact 2.0, reversed 0.0; plain 1.0, exact and reversed 1 + 8 * 2**-52.
    ("add", "d"): ([1e16, 1.0, -1e16, 1.0], [1.0] + [2.0**-53] * 16),
    # From 0.0: plain 0.0, exact and reversed 2.0; plain 2**62 + 2048, exact 2**62 + 1024.
    ("add", "q"): ([2**53, 1, 1, -(2**53)], [2**62, 513, 513]),
    # From 1.0: plain 0.023100000000000002, exact and reversed 0.0231, pairwise 0.023099999999999996.
    ("mul", "d"): ([0.1, 0.1, 0.7, 3.3],),
    # From 1.0: plain 15 * 2**53, exact (rounded once) 15 * 2**53 + 16.
    ("mul", "q"): ([3, 2**53 + 1, 5],),
}

# (operation, type of the value, typecode) -> whether the C fold passed its self-check.
_C_FOLD_IN_ORDER: dict[tuple[str, type, str], bool] = {}


def _fold(accumulated: Any, entries: array.array[Any], operation: str) -> Any:
    """``accumulated`` (an int, float or complex) with every term added (multiplied) in order."""
    key = (operation, type(accumulated), entries.typecode)
    in_order = _C_FOLD_IN_ORDER.get(key)
    if in_order is None:
        in_order = _C_FOLD_IN_ORDER[key] = _c_fold_in_order(*key)
    if operation == "add":
        return _c_sum(entries, accumulated) if in_order else _add_in_order(accumulated, entries)
    return _c_prod(entries, start=accumulated) if in_order else _multiply_in_order(accumulated, entries)


def _c_fold_in_order(operation: str, kind: type, typecode: str) -> bool:
    """Whether this Python's C fold gives the plain loop's bits onto a ``kind`` value, ``typecode`` terms."""
    checks = _CHECKS.get((operation, typecode))
    if checks is None:
        return False
    start = kind(0 if operation == "add" else 1)
    for terms in checks:
        entries = array.array(typecode, terms)
        try:
            if operation == "add":
                folded = _c_sum(entries, start)
                plain = start
                for term in terms:
                    plain += term
            else:
                folded = _c_prod(entries, start=start)
                plain = start
                for term in terms:
                    plain *= term
        except Exception:  # noqa: BLE001 - a fold that fails is not used
            return False
        if type(folded) is not type(plain) or repr(folded) != repr(plain):
            return False
    return True


def _add_in_order(total: Any, entries: array.array[Any]) -> Any:
    """``for x in entries: total += x``, 16 terms per step (``+`` is evaluated left to right)."""
    terms = iter(entries)
    for term in islice(terms, len(entries) % 16):
        total += term
    for a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p in zip(*(terms,) * 16):  # noqa: E741
        total = total + a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p
    return total


def _multiply_in_order(total: Any, entries: array.array[Any]) -> Any:
    """``for x in entries: total *= x``, 16 terms per step (``*`` is evaluated left to right)."""
    terms = iter(entries)
    for term in islice(terms, len(entries) % 16):
        total *= term
    for a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p in zip(*(terms,) * 16):  # noqa: E741
        total = total * a * b * c * d * e * f * g * h * i * j * k * l * m * n * o * p
    return total
