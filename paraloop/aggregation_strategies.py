"""How the private copies of a :class:`~paraloop.Variable` are combined.

Every worker runs its iterations on a *private copy* of each Variable, started
from :meth:`AggregationStrategy.start`.  After the loop the partial results are
combined with :meth:`AggregationStrategy.combine`, strictly in iteration order,
onto the Variable's pre-loop value.  That is why a strategy only has to be
*associative*: the order of the operands is always the sequential one.

Writing your own takes a few lines::

    from paraloop import aggregation_strategies

    class LongestString(aggregation_strategies.AggregationStrategy):
        def start(self, value):
            return ""
        def combine(self, accumulated, partial):
            return partial if len(partial) > len(accumulated) else accumulated

    longest = Variable("", aggregation_strategy=LongestString)
"""

from __future__ import annotations

import copy
import itertools
import operator
import typing
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, MutableMapping

from .errors import ParaLoopError
from .number_types import is_number
from .replay import Replay, Whole, combine_whole, replay

# The strategy named Any below shadows typing.Any in this module.
Value = typing.Any

# Plain numbers, told apart by type before any ABC check (see Sum.start; reductions uses it too).
_PLAIN_NUMBERS = frozenset({int, float, complex, bool})

__all__ = [
    "NOTHING",
    "AggregationStrategy",
    "All",
    "Any",
    "Concatenate",
    "ElementUpdates",
    "IndexWrites",
    "Last",
    "Max",
    "Merge",
    "Min",
    "PerIndex",
    "Product",
    "Reduce",
    "Scratch",
    "Sum",
    "Union",
]


class _Nothing:
    """The private start of strategies whose partials may be 'no assignment at all'."""

    _instance: _Nothing | None = None

    def __new__(cls) -> _Nothing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "paraloop.aggregation_strategies.NOTHING"

    def __reduce__(self) -> str:
        return "NOTHING"


NOTHING: Value = _Nothing()


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _empty_like(value: Value) -> Value:
    """An empty container of the same type (and default factory, and maxlen)."""
    if isinstance(value, defaultdict):
        return type(value)(value.default_factory)
    if isinstance(value, deque):
        return type(value)(maxlen=value.maxlen)
    if _is_numpy_array(value):
        return value[:0].copy()
    return type(value)()


def _zero(value: Value) -> Value:
    """The neutral value of ``value``'s type for addition: 0, 0.0, [], set(), ''."""
    if is_number(value) and not isinstance(value, bool):
        number: Value = value
        return number - number
    if isinstance(value, bool):
        return 0
    return _empty_like(value)


_NEUTRAL_FACTORIES = (int, float, complex, list, set, dict, str, tuple)


class _ZeroOf:
    """A default factory giving the zero of what ``factory`` gives (picklable, unlike a lambda)."""

    def __init__(self, factory: Value) -> None:
        self.factory = factory

    def __call__(self) -> Value:
        return _zero(self.factory())


def _add(total: Value, amount: Value) -> Value:
    """``total + amount``; in place for lists, sets and dicts (as ``d[k].append(x)`` would be).

    A dict entry grows by ``update``: later keys win, and a Counter adds counts.
    """
    if isinstance(total, list):
        total.extend(amount)
        return total
    if isinstance(total, set):
        total |= amount
        return total
    if isinstance(total, dict):
        total.update(amount)
        return total
    return total + amount


class AggregationStrategy:
    """The strategy protocol: subclass it and override :meth:`start` and :meth:`combine`.

    ``check`` may refuse values the strategy cannot combine; the refusal happens
    when the ``Variable`` is created, not after an hour of work.

    ``readable_in_body`` says whether the loop body may read the Variable, as
    in ``if x < best: best = x``.  That is right for strategies that select
    (Min, Max, Any, All, Reduce, most custom ones): comparing with the
    worker's private copy and combining the copies gives the sequential
    answer.  It is wrong for strategies that accumulate (Sum, Concatenate,
    ...): a worker would read only its own part, so paraloop refuses the loop.
    """

    readable_in_body: bool = True

    def check(self, value: Value) -> str | None:
        """Return why ``value`` cannot be aggregated with this strategy, or ``None``."""
        return None

    def start(self, value: Value) -> Value:
        """The value a worker's private copy starts from, given the pre-loop value."""
        raise NotImplementedError

    def finish(self, private: Value) -> Value:
        """The partial result a chunk sends, from its private value at the chunk's end.

        The default sends the private value itself.
        """
        return private

    def combine(self, accumulated: Value, partial: Value) -> Value:
        """Combine the result so far with the next partial result, in iteration order.

        May update ``accumulated`` in place and return it (that keeps the
        identity of lists and dicts); must return the combined value.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(type(self))


# Mappings whose entries dict.update stores as their own item assignment does (an OrderedDict
# keeps an order of its own, a user's subclass may store otherwise).
_COUNTING = (dict, defaultdict, Counter)
_INT = {int}


class Counts:
    """A per-key sum of whole numbers on its way from a worker process to the caller: its
    keys and amounts as two lists, in the mapping's order.

    A word count's partial dict holds tens of thousands of keys; as two lists it loads in
    the caller in about a third of a dict's time (no hashing and inserting into a dict that
    :meth:`Sum.combine` only reads once), and string keys travel as a few long strings,
    split in the caller run by run as they are added.  Made by :func:`counts_for_travel`
    for the built-in :class:`Sum` alone, which is the only strategy that receives one.
    """

    __slots__ = ("amounts", "keys", "runs")

    def __init__(self, keys: list[Value] | None, amounts: list[int], runs: list[str] | None = None) -> None:
        self.keys = keys
        self.amounts = amounts
        # String keys travel as runs of RUN keys joined by NUL: the caller splits a run and adds
        # its keys while their new string objects are still in the CPU's cache.
        self.runs = runs

    def __reduce__(self) -> tuple[Value, ...]:
        keys = self.keys
        if keys is not None and len(keys) > RUN and set(map(type, keys)) == {str}:
            runs = ["\0".join(keys[start : start + RUN]) for start in range(0, len(keys), RUN)]
            if sum(map(str.count, runs, itertools.repeat("\0"))) == len(keys) - len(runs):
                return (Counts, (None, self.amounts, runs))
        return (Counts, (keys, self.amounts))

    def pieces(self) -> Value:
        """(keys, amounts) pairs of lists, one per run."""
        if self.runs is None:
            yield self.keys, self.amounts
            return
        start = 0
        for run in self.runs:
            keys = run.split("\0")
            yield keys, self.amounts[start : start + len(keys)]
            start += len(keys)

    def items(self) -> Value:
        return itertools.chain.from_iterable(zip(keys, amounts) for keys, amounts in self.pieces())


RUN = 2048


def counts_for_travel(strategy: AggregationStrategy, partial: Value) -> Value:
    """``partial`` as it leaves a worker process: a :class:`Counts` for the built-in Sum's
    dict, ``defaultdict(int)`` or Counter of whole numbers, else ``partial`` itself."""
    if (
        type(strategy) is Sum
        and type(partial) in _COUNTING
        and getattr(partial, "default_factory", None) in (None, int)
        and set(map(type, partial.values())) <= _INT
    ):
        return Counts(list(partial), list(partial.values()))
    return partial


class Sum(AggregationStrategy):
    """Adds partial results: numbers, numpy arrays, and mappings per key.

    ``total += n`` or ``counts[word] += 1`` (with a ``Counter``/``defaultdict``)::

        total = Variable(0, aggregation_strategy=Sum)

    A sum of floats is exact: it has the plain loop's bits, for any worker
    count and chunk size, because the workers record each term and the caller
    adds them in iteration order (see :mod:`paraloop.replay`).  ``Sum(exact=False)``
    adds per-chunk partial sums instead: faster for very many cheap terms, with
    last bits that depend on how the loop was cut into chunks::

        total = Variable(0.0, aggregation_strategy=Sum(exact=False))
    """

    readable_in_body = False
    operation = "add"

    def __init__(self, exact: bool = True) -> None:
        self.exact = exact

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}({'' if self.exact else 'exact=False'})"

    def check(self, value: Value) -> str | None:
        if isinstance(value, (str, bytes, list, tuple, deque)):
            return (
                f"Sum adds numbers, numpy arrays and mappings per key; "
                f"for a {type(value).__name__} use Concatenate"
            )
        if isinstance(value, (set, frozenset)):
            return "Sum cannot add sets; use Union"
        if isinstance(value, Mapping) or _is_numpy_array(value):
            return None
        try:
            value + value
        except TypeError:
            return f"Sum needs values that support '+', and {type(value).__name__} does not"
        return None

    def start(self, value: Value) -> Value:
        if type(value) in _PLAIN_NUMBERS:
            # Before the ABC checks below: the first isinstance() of a type against Mapping
            # after any ABC was registered (a pool's start registers some) walks all its
            # subclasses, 0.3 ms of a 10-iteration loop.
            return value - value if type(value) is not bool else 0
        if isinstance(value, defaultdict) and value.default_factory is not None:
            factory = value.default_factory
            if factory not in _NEUTRAL_FACTORIES:
                # defaultdict(lambda: 100): each private copy must start keys at
                # zero, or every chunk would add the default once more.
                return defaultdict(_ZeroOf(factory))
        if isinstance(value, (Counter, defaultdict)):
            return _empty_like(value)
        if isinstance(value, Mapping):
            # A plain dict has no default: the body's d[key] += x needs the keys
            # it had before the loop, each at zero.
            kind: Value = type(value)
            return kind((key, _zero(amount)) for key, amount in value.items())
        if _is_numpy_array(value):
            return value * 0
        return value - value if not isinstance(value, bool) else 0

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if type(partial) is Replay:
            return replay(accumulated, partial, "add")
        if type(partial) is Whole:
            return combine_whole(accumulated, partial, "add")
        if isinstance(accumulated, MutableMapping):
            get = accumulated.get
            # A key new to a defaultdict starts from its default, as d[k] += x would.
            factory = getattr(accumulated, "default_factory", None)
            # Counts (ints under a plain dict, a Counter or defaultdict(int)) are most of what
            # mappings sum, often hundreds of thousands of keys: their loop does no more than it
            # must (a new key's value is the amount itself: int() + amount is amount).
            counts = factory is None or factory is int
            fast = counts and type(accumulated) in _COUNTING
            if type(partial) is Counts:
                pieces = partial.pieces()
            elif fast and type(partial) in _COUNTING and set(map(type, partial.values())) <= _INT:
                pieces = iter([(partial, partial.values())])
            else:
                fast = False
            if fast:
                # The loop below for whole-number amounts, at C speed (a word count's partials
                # hold hundreds of thousands of keys): per key, in the partial's order, the
                # current count (none: 0) plus the amount, stored; a new key goes last, as there.
                # dict.update stores as dict, defaultdict and Counter store (Counter.update
                # would count the pairs themselves).
                for keys, amounts in pieces:
                    summed = map(operator.add, map(get, keys, itertools.repeat(0)), amounts)
                    dict.update(accumulated, zip(keys, summed))
                return accumulated
            for key, amount in partial.items():
                current = get(key, NOTHING)
                if counts and type(amount) is int:
                    accumulated[key] = amount if current is NOTHING else current + amount
                elif current is NOTHING:
                    accumulated[key] = amount if factory is None else _add(factory(), amount)
                elif isinstance(current, (list, set, dict)):
                    accumulated[key] = _add(current, amount)
                else:
                    accumulated[key] = current + amount
            return accumulated
        if _is_numpy_array(accumulated):
            accumulated += partial
            return accumulated
        return accumulated + partial


class Product(AggregationStrategy):
    """Multiplies partial results: ``v *= x`` (and ``v /= x``).

    Exact like :class:`Sum`: a product of floats has the plain loop's bits;
    ``Product(exact=False)`` multiplies per-chunk partial products instead.
    """

    readable_in_body = False
    operation = "mul"

    def __init__(self, exact: bool = True) -> None:
        self.exact = exact

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}({'' if self.exact else 'exact=False'})"

    def check(self, value: Value) -> str | None:
        if isinstance(value, Mapping):
            return None
        try:
            value * value
        except TypeError:
            return f"Product needs values that support '*', and {type(value).__name__} does not"
        return None

    def start(self, value: Value) -> Value:
        if _is_numpy_array(value):
            return value * 0 + 1
        if isinstance(value, Mapping):
            # Entries are multiplied one by one in the caller (replayed): the
            # worker's copy only tells which keys exist.
            return copy.copy(value)
        return type(value)(1)

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if type(partial) is Replay:
            return replay(accumulated, partial, "mul")
        if type(partial) is Whole:
            return combine_whole(accumulated, partial, "mul")
        if _is_numpy_array(accumulated):
            accumulated *= partial
            return accumulated
        return accumulated * partial


class Concatenate(AggregationStrategy):
    """Joins partial results in iteration order: lists, tuples, strings, deques, dicts, numpy arrays.

    ``out.append(x)``, ``out += [x]``, ``text += s``, ``d[key] = value``::

        results = Variable([], aggregation_strategy=Concatenate)
    """

    readable_in_body = False

    def check(self, value: Value) -> str | None:
        if isinstance(value, (list, tuple, str, bytes, deque, dict)) or _is_numpy_array(value):
            return None
        return (
            f"Concatenate joins lists, tuples, strings, bytes, deques, dicts and numpy arrays, "
            f"not {type(value).__name__}"
        )

    def start(self, value: Value) -> Value:
        return _empty_like(value)

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if isinstance(accumulated, (list, deque)):
            accumulated.extend(partial)
            return accumulated
        if isinstance(accumulated, dict):
            accumulated.update(partial)
            return accumulated
        if _is_numpy_array(accumulated):
            import numpy  # type: ignore[import-not-found, unused-ignore]

            return numpy.concatenate([accumulated, partial])
        return accumulated + partial


class Merge(AggregationStrategy):
    """Merges dict updates; the later iteration wins, the first insertion fixes the key order.

    ``d[key] = value`` or ``d.update(other)``.
    """

    readable_in_body = False

    def check(self, value: Value) -> str | None:
        if isinstance(value, dict):
            return None
        return f"Merge combines dicts, not {type(value).__name__}"

    def start(self, value: Value) -> Value:
        return _empty_like(value)

    def combine(self, accumulated: Value, partial: Value) -> Value:
        accumulated.update(partial)
        return accumulated


class _AddedInOrder(dict):  # type: ignore[type-arg]
    """A chunk's private set, kept as the keys of a dict: the order its elements first came in.

    A set's iteration order follows the order its elements were added (where two collide in
    its table, the first added takes the place both wanted): a set united chunk by chunk
    (``accumulated |= partial``, the partial in its own order) iterated in another order
    than the plain loop's, which added the elements one by one, on every backend (a
    vocabulary numbered in set order after the loop came out numbered otherwise).  So the
    caller adds a chunk's elements in the order the chunk first added them: the plain loop's
    own sequence of additions, and its set's order.  The body only adds to it (a Union is not
    readable in the body): ``add`` is dict's own ``setdefault``, as quick as a set's ``add``
    (a set subclass's ``add`` in Python made a loop of adds 40% slower).
    """

    add = dict.setdefault

    def update(self, *others: typing.Iterable[Value]) -> None:  # type: ignore[override]
        for other in others:
            dict.update(self, dict.fromkeys(other))

    def __ior__(self, other: typing.Any) -> _AddedInOrder:
        if not isinstance(other, (set, frozenset, _AddedInOrder)):
            return NotImplemented
        self.update(other)
        return self

    def __or__(self, other: typing.Any) -> _AddedInOrder:
        if not isinstance(other, (set, frozenset, _AddedInOrder)):
            return NotImplemented
        united = _AddedInOrder(self)
        united.update(other)
        return united

    def __reduce__(self) -> tuple[Value, ...]:
        return (_added_in_order, (list(self),))


def _added_in_order(elements: list[Value]) -> _AddedInOrder:
    return _AddedInOrder(dict.fromkeys(elements))


class Union(AggregationStrategy):
    """Unites sets: ``s.add(x)``, ``s |= other``.

    The result iterates in the plain loop's order where the body adds elements one by one
    (``s.add(x)``, ``s.update(items)``): each chunk's new elements are added to the result in
    the order the chunk added them.
    """

    readable_in_body = False

    def check(self, value: Value) -> str | None:
        if isinstance(value, (set, frozenset)):
            return None
        return f"Union combines sets, not {type(value).__name__}"

    def start(self, value: Value) -> Value:
        if type(value) is set:
            return _AddedInOrder()
        return _empty_like(value)

    def combine(self, accumulated: Value, partial: Value) -> Value:
        added = list(partial) if isinstance(partial, _AddedInOrder) else partial
        if isinstance(accumulated, set):
            # update, not |=: an _AddedInOrder (a worker uniting its own chunks) notes them too.
            accumulated.update(added)
            return accumulated
        return accumulated.union(added)


class _Extremum(AggregationStrategy):
    """Min and Max start every private copy from the pre-loop value: both are idempotent."""

    pick: Callable[[Value, Value], Value]

    def start(self, value: Value) -> Value:
        return value

    def combine(self, accumulated: Value, partial: Value) -> Value:
        return type(self).pick(accumulated, partial)


class Min(_Extremum):
    """Keeps the smallest value: ``v = min(v, x)``."""

    pick = staticmethod(min)


class Max(_Extremum):
    """Keeps the largest value: ``v = max(v, x)``."""

    pick = staticmethod(max)


class Any(AggregationStrategy):
    """True when any iteration set it: ``found = found or test(x)``, ``found |= test(x)``."""

    def start(self, value: object) -> object:
        return False

    def combine(self, accumulated: object, partial: object) -> object:
        # As ``found = found or x`` would: the first true value, not just True.
        return accumulated or partial


class All(AggregationStrategy):
    """True while every iteration kept it: ``ok = ok and test(x)``, ``ok &= test(x)``."""

    def start(self, value: object) -> object:
        return True

    def combine(self, accumulated: object, partial: object) -> object:
        # As ``ok = ok and x`` would: the first false value, not just False.
        return accumulated and partial


class Last(AggregationStrategy):
    """The value the last assigning iteration gave: ``v = x``."""

    readable_in_body = False

    def start(self, value: object) -> object:
        return NOTHING

    def combine(self, accumulated: object, partial: object) -> object:
        return accumulated if partial is NOTHING else partial


class _Writes:
    """A worker's record of ``out[index] = value`` assignments, in iteration order."""

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes: list[tuple[Value, Value]] = []

    def __setitem__(self, index: Value, value: Value) -> None:
        # An array written later in the chunk (a reused buffer) must not change the record.
        self.writes.append((index, value.copy() if _is_numpy_array(value) else value))

    def __reduce__(self) -> tuple[Value, ...]:
        return (_rebuild_writes, (self.writes,))


def _rebuild_writes(writes: list[tuple[Value, Value]]) -> _Writes:
    record = _Writes()
    record.writes = writes
    return record


class IndexWrites(AggregationStrategy):
    """``out[i] = f(x)`` on a preallocated list or numpy array: only the indexes written change.

    Each worker records its assignments; they are applied to the original
    list or array in iteration order, in place::

        out = Variable([None] * n, aggregation_strategy=IndexWrites)
    """

    readable_in_body = False

    def check(self, value: Value) -> str | None:
        if isinstance(value, (list, bytearray)) or _is_numpy_array(value):
            return None
        return f"IndexWrites assigns into a list, bytearray or numpy array, not {type(value).__name__}"

    def start(self, value: Value) -> Value:
        return _Writes()

    def combine(self, accumulated: Value, partial: Value) -> Value:
        for index, item in partial.writes:
            accumulated[index] = item
        return accumulated


class _Entries(dict):  # type: ignore[type-arg]
    """A worker's ``x[i] += e`` on a list: the entries it changed, each from zero (or one)."""

    __slots__ = ("neutral", "original")

    def __init__(self, original: Value, neutral: int) -> None:
        super().__init__()
        self.original = original
        self.neutral = neutral

    def __missing__(self, index: Value) -> Value:
        current = self.original[index]  # an index out of range fails here, as in the plain loop
        return _zero(current) if self.neutral == 0 else type(current)(1)

    def __reduce__(self) -> tuple[Value, ...]:
        return (_rebuild_entries, (self.original, self.neutral, dict(self)))


def _rebuild_entries(original: Value, neutral: int, entries: dict[Value, Value]) -> _Entries:
    rebuilt = _Entries(original, neutral)
    rebuilt.update(entries)
    return rebuilt


class PerIndex(AggregationStrategy):
    """``x[i] += e`` (or ``*=``) on a list or bytearray: each entry combined on its own.

    Workers record, per index they touched, the sum (or product) of their
    updates; the caller applies them in iteration order, in place.  Inferred
    for whole-number lists and bytearrays; float entries are replayed term by
    term instead (see :class:`Sum`).
    """

    readable_in_body = False

    def __init__(self, operation: str = "add") -> None:
        self.operation = operation

    def check(self, value: Value) -> str | None:
        if isinstance(value, (list, bytearray)):
            return None
        return f"PerIndex updates the entries of a list or bytearray, not {type(value).__name__}"

    def start(self, value: Value) -> Value:
        if isinstance(value, _Entries):
            value = value.original
        return _Entries(value, 0 if self.operation == "add" else 1)

    def finish(self, private: Value) -> Value:
        return dict(private) if isinstance(private, _Entries) else private

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if type(partial) is Replay:
            return replay(accumulated, partial, self.operation)
        apply: Callable[[Value, Value], Value] = operator.iadd if self.operation == "add" else operator.imul
        for index, amount in partial.items():
            accumulated[index] = apply(accumulated[index], amount)
        return accumulated


class _Elements:
    """A worker's view of a list or array whose iterations each update their own element.

    An iteration's own element is ``x[i]``, or its own row ``x[i, ...]`` of a
    numpy array, for ``i`` the loop's item: an element's number (an ``int``, or
    what ``operator.index`` takes, ``-1`` for the last).  The chunk works on
    copies of the rows it touches, made on first use from the pre-loop value; the
    copies are sent to the caller.
    """

    __slots__ = ("array", "first", "in_place", "iteration", "original", "repeated", "rows")

    def __init__(self, original: Value, tracked: bool = False) -> None:
        self.original = original
        self.rows: dict[int, Value] = {}
        # x[i, j] is row i's element j only in a numpy array (a list takes no tuple); x[i] = row
        # writes into the row only in an array of numbers (in a list, or an array of objects, it
        # puts another object in the element's place).
        self.array = _is_numpy_array(original)
        self.in_place = self.array and not original.dtype.hasobject
        # With ``tracked`` (chunks that run at the same time): the chunk's iteration (counted by
        # execute's numbering of the items) that first used each row, and the first row that a
        # later iteration of the chunk used again (NOTHING: none).
        self.first: dict[int, int] | None = {} if tracked else None
        self.iteration = 0
        self.repeated: Value = NOTHING

    def _number(self, index: Value) -> int:
        """The element ``index`` names, as its number from the start (``-1`` is ``n - 1``); an
        index that names no single element fails as in the plain loop, or is refused."""
        if type(index) is int and index >= 0:
            return index
        if self.array and (
            isinstance(index, bool) or (type(index).__module__ == "numpy" and type(index).__name__ in _BOOLS)
        ):
            raise ParaLoopError(
                f"x[{index!r}] on a numpy array selects the whole array (a boolean index), not the "
                "iteration's own element, so the loop's writes cannot be combined. Give the loop "
                "element numbers (int(i)), or update the whole array before or after the loop"
            )
        try:
            number = operator.index(index)
        except TypeError:
            self.original[index]  # a float, or a tuple for a list: the plain loop's own error
            raise ParaLoopError(
                f"x[{index!r}] names no single element (a slice or an array of indexes), so the "
                "iterations' writes cannot be told apart and combined. Read the part from the array "
                "and write it into another one (out[s] = f(x[s]), with out made before the loop), "
                "then copy it back after the loop"
            ) from None
        if -len(self.original) <= number < 0:
            number += len(self.original)  # x[-1] is x[n - 1]; below -n fails as in the plain loop
        return number

    def _own(self, row: int) -> Value:
        """The chunk's copy of row number ``row``, made on first use."""
        rows = self.rows
        found = rows.get(row, NOTHING)
        if found is not NOTHING:
            first = self.first
            if first is not None and first[row] != self.iteration and self.repeated is NOTHING:
                self.repeated = row
            return found
        value = self.original[row]  # an index out of range fails here, as in the plain loop
        copied = value.copy() if _is_numpy_array(value) else copy.copy(value)
        rows[row] = copied
        if self.first is not None:
            self.first[row] = self.iteration
        return copied

    def __getitem__(self, index: Value) -> Value:
        if type(index) is tuple and self.array:
            return self._own(self._number(index[0]))[index[1:]]
        return self._own(self._number(index))

    def __setitem__(self, index: Value, value: Value) -> None:
        if type(index) is tuple and self.array:
            self._own(self._number(index[0]))[index[1:]] = value
            return
        row = self._number(index)
        current = self._own(row)
        if self.in_place and _is_numpy_array(current):
            current[...] = value  # a row of an array keeps its shape and dtype
        else:
            self.rows[row] = value

    def __len__(self) -> int:
        return len(self.original)


# The names of numpy's boolean scalar type (``numpy.bool_``; ``numpy.bool`` since numpy 2).
_BOOLS = frozenset({"bool_", "bool"})


class _Repeated:
    """A chunk's partial where two of its iterations used the same element (see ElementUpdates)."""

    __slots__ = ("index",)

    def __init__(self, index: Value) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Value, ...]:
        return (_Repeated, (self.index,))


def _repeated_error(index: Value) -> ParaLoopError:
    return ParaLoopError(
        f"element {index!r} is updated by two iterations: the loop's items repeat an index, so "
        "an iteration would need the element as an earlier one left it, which paraloop does not "
        "pass between iterations that may run at the same time (the loop is refused wherever the "
        "two iterations fall, for the same answer every run). Give each iteration its own index; "
        "for a sum per index write x[i] += e, which paraloop combines; or run the loop with "
        "backend='sequential' (which runs it as the plain loop does)"
    )


class ElementUpdates(AggregationStrategy):
    """``x[i] = f(x[i])`` where ``i`` is the loop's own item: each iteration updates its own element.

    Iterations read their own element (as it was before the loop) and write it
    back; the caller applies the writes in iteration order.  Two iterations that
    use the same element would need each other's results: on every backend that
    runs chunks at the same time the loop is then refused with ``ParaLoopError``,
    whether the two fell in one chunk or in two (so the outcome does not depend on
    where the chunks were cut, which the time the iterations take decides); the
    sequential backend runs such a loop as the plain loop does.
    """

    readable_in_body = True

    def __init__(self) -> None:
        self.updated: set[Value] = set()
        # Chunks run at the same time (every backend but the sequential one, which
        # runs each chunk on what the chunks before it left).
        self.concurrent = True

    def check(self, value: Value) -> str | None:
        if isinstance(value, (list, bytearray)) or _is_numpy_array(value):
            return None
        return f"ElementUpdates updates a list, bytearray or numpy array, not {type(value).__name__}"

    def start(self, value: Value) -> Value:
        return _Elements(value.original if isinstance(value, _Elements) else value, self.concurrent)

    def finish(self, private: Value) -> Value:
        if not isinstance(private, _Elements):
            return private
        return private.rows if private.repeated is NOTHING else _Repeated(private.repeated)

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if type(partial) is _Repeated:
            raise _repeated_error(partial.index)
        if self.concurrent:
            for index in partial:
                if index in self.updated:
                    raise _repeated_error(index)
        for index, item in partial.items():
            accumulated[index] = item
        if self.concurrent:
            self.updated.update(partial)
        return accumulated

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Scratch(AggregationStrategy):
    """A buffer every iteration overwrites before using it (``buffer[:] = row``).

    Each chunk works on its own copy; afterwards the buffer holds what the
    last iteration that wrote it left, as after the plain loop.  Run
    sequentially, the loop uses the buffer itself, as the plain loop does.
    """

    def __init__(self) -> None:
        self.concurrent = True

    def start(self, value: Value) -> Value:
        return copy.copy(value) if self.concurrent else value

    def combine(self, accumulated: Value, partial: Value) -> Value:
        if partial is NOTHING or partial is accumulated:
            return accumulated
        if _is_numpy_array(accumulated):
            if accumulated.shape != partial.shape:
                accumulated.resize(partial.shape, refcheck=False)
            accumulated[...] = partial
        elif isinstance(accumulated, (dict, set)):
            accumulated.clear()
            accumulated.update(partial)
        else:
            accumulated[:] = partial
        return accumulated


class Reduce(AggregationStrategy):
    """Combines with your own associative function, ``v = function(v, x)``.

    ``identity`` is the value that changes nothing (0 for ``math.gcd``)::

        g = Variable(0, aggregation_strategy=Reduce(math.gcd, identity=0))
    """

    def __init__(self, function: Callable[[Value, Value], Value], identity: Value) -> None:
        self.function = function
        self.identity = identity

    def __repr__(self) -> str:
        return f"Reduce({self.function!r}, identity={self.identity!r})"

    def start(self, value: Value) -> Value:
        return self.identity

    def combine(self, accumulated: Value, partial: Value) -> Value:
        return self.function(accumulated, partial)
