"""What a loop's chunks add up to: their outcomes, in chunk order, applied onto the state the
loop started from (tracked names combined by their strategies, items changed in place
written back), and the loop's end (a break, a return, an exception) as the plain loop had it.

The runtime (:func:`paraloop.runtime.run`) feeds the :class:`Combiner` each outcome in chunk
order and hands its :class:`LoopResult` to the generated code, which rebinds the names.
"""

from __future__ import annotations

import bisect
import itertools
import pickle
import sys
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from .errors import ParaLoopError, RemoteTraceback
from .execute import BROKE, DONE, RAISED, RETURNED, Job, Outcome
from .items import IMMUTABLE, Frozen, is_array, write_back
from .output import write_output
from .records import Record
from .references import resolve
from .replay import Continued
from .serialize import Unresolved
from .variable import Variable

__all__ = ["Combiner", "LoopResult", "with_context"]


class LoopResult(Record):
    """What the code after a rewritten loop needs: names to rebind and how the loop ended."""

    bound: dict[str, Any]
    broke: bool = False
    returned: bool = False
    value: Any = None
    # An exception the loop raised: re-raised by the generated code after it
    # has rebound the names, so they are as the plain loop left them.
    error: BaseException | None = None

    _fields = ("bound", "broke", "returned", "value", "error")

    def __init__(
        self,
        bound: dict[str, Any] | None = None,
        broke: bool = False,
        returned: bool = False,
        value: Any = None,
        error: BaseException | None = None,
    ) -> None:
        self.bound = dict() if bound is None else bound
        self.broke = broke
        self.returned = returned
        self.value = value
        self.error = error


class Combiner:
    """Applies chunk outcomes, in chunk order, onto the pre-loop state."""

    def __init__(
        self,
        variables: Mapping[str, Variable[Any]],
        job: Job,
        inferred: Mapping[str, Any],
        held: dict[int, tuple[int, Any]] | None = None,
    ) -> None:
        # Items of chunks in flight (see Chunker.held): changes come back into them.
        self.held = held if held is not None else {}
        self.variables = variables
        self.inferred = inferred
        self.accumulated = {name: var.value for name, var in variables.items()}
        self.job = job
        self.result = LoopResult()
        self._next = 0
        # The body's captured values by identity, made when an item first comes back changed.
        self._captured: dict[int, str] | None = None
        # The arrays among them (and in the lists, tuples and dicts they are), with their labels.
        self._captured_arrays: list[tuple[str, Any]] | None = None
        # The numpy arrays among each chunk's items in flight, by the chunk's first position (see
        # _sharing_memory), made when an item that is an array first comes back changed.
        self._arrays: dict[int, _ChunkArrays] = {}
        # How many views of arrays those hold in all: none, and an array shares memory with none.
        self._views = 0
        # Per memory and set of chunks in flight: whether their views of it are evenly laid rows
        # that share no byte (see _views_apart), which needs no comparison of pairs.
        self._apart: dict[tuple[int, tuple[int, ...]], bool] = {}

    def add(self, outcome: Outcome) -> bool:
        """Take the next chunk's outcome (in chunk order, as runtime._drive yields them); return
        True once the loop's result is complete."""
        parts = self.written_back(outcome)
        try:
            for part in parts:
                self._apply(part)
                if part.kind != DONE:
                    return True
            return False
        finally:
            parts.close()

    def written_back(self, outcome: Outcome) -> Generator[Outcome, None, None]:
        """The parts of the next chunk's outcome (a chunk run in lanes has several, each like a
        chunk), in order, each once the items its iterations changed in place are written back
        into the caller's: all a comprehension's chunks need (it combines no names)."""
        assert outcome.chunk == self._next, (outcome.chunk, self._next)
        self._next += 1
        held = self.held.pop(outcome.chunk, None)
        try:
            for part in outcome.parts or (outcome,):
                if part.changed and held is not None:
                    self._write_back(part, held)
                yield part
        finally:
            arrays = self._arrays.pop(held[0], None) if held is not None else None
            if arrays is not None:
                self._views -= arrays.count
                self._apart.clear()

    def _write_back(self, outcome: Outcome, held: tuple[int, Any]) -> None:
        start, items = held
        elsewhere: dict[int, list[int]] | None = None
        for index, changed in outcome.changed.items():
            original = items[index - start]
            if elsewhere is None:
                # Where else the loop's items in flight hold the same objects: their copies were
                # made before this change, so their iterations would not see it.
                elsewhere = {}
                for first, others in [(start, items), *self.held.values()]:
                    for position, item in enumerate(others):
                        for part in _parts(item):
                            elsewhere.setdefault(id(part), []).append(first + position)
            # An object inside the item (a tuple's element, as write_back goes through them)
            # counts too: (array, position) items that all hold one array.
            again, inside, memory = None, False, False
            for number, (part, copy) in enumerate(_pairs(original, changed)):
                others = [at for at in elsewhere.get(id(part), ()) if at != index]
                shared = False
                if not others and is_array(part):
                    # Another object, the same memory: views of one array (frames that overlap).
                    others = [at for at in self._sharing_memory(part, held, elsewhere) if at != index]
                    shared = True
                if not others or (again is not None and min(others) >= again):
                    continue
                # The item changed; an object inside it that others share matters if it did.
                top = number == 0
                if top or _differs(part, copy):
                    again, inside, memory = min(others), not top, shared
            if again is not None:
                if memory:
                    what = "another item the iterable yields shares its memory (a view of the same array)"
                elif inside:
                    what = "an object inside it is in another item the iterable yields"
                else:
                    what = "the iterable yields that same object again"
                refilled = (
                    ""
                    if inside or memory
                    else (
                        " (unless the iterable fills it anew before it yields it again, as a reader's "
                        "reused buffer does: then have it yield a copy, yield buffer.copy(), and each "
                        "iteration changes its own)"
                    )
                )
                raise ParaLoopError(
                    f"{self.job.filename}, line {self.job.line}: iteration {index} changed its item in "
                    f"place, and {what} (iteration {again}): "
                    "in the plain loop that iteration sees the change, in paraloop it got a copy made "
                    f"before it{refilled}. Through that object each iteration depends on the ones "
                    "before it; keep what the iterations add up in a name of its own (count += 1), or "
                    "use backend='sequential'"
                )
            alias = self._captured_as(original)
            if alias is None and is_array(original):
                view_of = self._captured_memory(original)
                if view_of is not None:
                    raise ParaLoopError(
                        f"{self.job.filename}, line {self.job.line}: iteration {index} changed its item "
                        f"in place, and the item is a view of {view_of!r}, which the body uses: in a "
                        f"worker process the item and {view_of!r} are two copies, so the iterations "
                        "there would not see the change as the plain loop's do. Use the item alone in "
                        f"the body (not also through {view_of!r}), or run the loop with "
                        "backend='sequential'"
                    )
            if alias is not None:
                raise ParaLoopError(
                    f"{self.job.filename}, line {self.job.line}: iteration {index} changed its item in "
                    f"place, and that object is also {alias!r}, which the body uses: in a worker process "
                    f"the item and {alias!r} are two copies, so the iterations there would not see the "
                    "change as the plain loop's do. Use the item alone in the body (not also through "
                    f"{alias!r}), or run the loop with backend='threads', which shares the objects"
                )
            if not write_back(original, changed):
                raise ParaLoopError(
                    f"{self.job.filename}, line {self.job.line}: iteration {index} changed its item "
                    "in place, and paraloop cannot change the caller's item to match"
                )

    def _sharing_memory(
        self, array: Any, held: tuple[int, Any], elsewhere: dict[int, list[int]]
    ) -> list[int]:
        """The positions of the items in flight (this chunk's, ``held``, and those the workers
        hold) that share memory with ``array`` but are other objects (``elsewhere`` has those
        that are the same, by identity), itself among them if it is a view."""
        key, owner = _memory(array)
        # An array that owns its memory shares it with its views only; a view, with its owner too.
        found = list(elsewhere.get(id(owner), ())) if owner is not array else []
        chunks = (held, *self.held.values())
        for first, items in chunks:
            if first not in self._arrays:
                self._arrays[first] = arrays = _ChunkArrays(first, items)
                self._views += arrays.count
        if self._views:
            starts = tuple(first for first, _ in chunks)
            apart = self._apart.get((key, starts))
            if apart is None:
                views = [span[3] for first in starts for span in self._arrays[first].views.get(key, ())]
                apart = self._apart[key, starts] = _views_apart(views)
            # (Rows apart from each other, but not from the array they view, if that changed.)
            if not apart or owner is array:
                bounds = _bounds(array)
                for first in starts:
                    found += self._arrays[first].overlapping(array, key, bounds)
        return found

    def _captured_memory(self, array: Any) -> str | None:
        """What the body captured that is an array whose memory ``array`` shares, if any: a name,
        or an element of a list, tuple or dict it names (``store['a']``), two levels deep."""
        numpy = sys.modules["numpy"]
        if self._captured_arrays is None:
            # Found once per loop, as _captured_as finds the captured objects.
            self._captured_arrays = []
            reached: list[tuple[str, Any, int]] = [
                (name, value, 0)
                for name, value in zip(self.job.params, self.job.values)
                if not name.startswith("__paraloop")
            ]
            while reached:
                label, value, depth = reached.pop()
                if is_array(value):
                    self._captured_arrays.append((label, value))
                elif depth < 2 and type(value) in (list, tuple, dict) and len(value) <= 1000:
                    pairs = value.items() if type(value) is dict else enumerate(value)
                    reached += [(f"{label}[{key!r}]", inner, depth + 1) for key, inner in pairs]
        for label, value in self._captured_arrays:
            if numpy.shares_memory(array, value):
                return label
        return None

    def _captured_as(self, item: Any) -> str | None:
        """The name of a value the body captured that is this very item, if any."""
        if type(item) is Frozen:
            item = item.original
        if self._captured is None:
            self._captured = {
                id(value): name
                for name, value in zip(self.job.params, self.job.values)
                if type(value) not in IMMUTABLE and not name.startswith("__paraloop")
            }
        return self._captured.get(id(item))

    def _apply(self, outcome: Outcome) -> None:
        if outcome.output:
            # What the chunk printed into a stream the program replaced, in chunk order.
            write_output(outcome.output)
        for name, partial in outcome.partials.items():
            if type(partial) is Continued:
                # The chunk went on from the combined value, in order (see backends/processes/caller.py).
                self.accumulated[name] = partial.value
                continue
            strategy = self.variables[name].aggregation_strategy
            try:
                self.accumulated[name] = strategy.combine(self.accumulated[name], partial)
            except ParaLoopError as error:
                raise ParaLoopError(f"{self.job.filename}, line {self.job.line}: {error}") from None
        job = self.job
        for name, value in outcome.bound.items():
            self.result.bound[name] = resolve(value, job.params, job.values)
        if outcome.kind == BROKE:
            self.result.broke = True
        elif outcome.kind == RETURNED:
            self.result.returned = True
            self.result.broke = True
            self.result.value = resolve(outcome.value, job.params, job.values)
        elif outcome.kind == RAISED:
            self.result.error = with_context(outcome, self.job)

    def finish(self) -> LoopResult:
        for name, variable in self.variables.items():
            combined = self.accumulated[name]
            if name in self.inferred:
                if combined is not self.inferred[name]:
                    self.result.bound[name] = combined
            else:
                object.__setattr__(variable, "value", combined)
        return self.result


# How deep and into how large tuples, lists and dicts an item is looked into for objects that
# other items hold too (an item that holds itself, or a million numbers, is no reason to hang).
_DEPTH = 8
_ELEMENTS = 256


def _pairs(original: Any, changed: Any, depth: int = 0) -> Iterator[tuple[Any, Any]]:
    """The item and the changeable objects in it that write_back writes into (through tuples,
    lists and dicts), each with the worker's copy of it."""
    if type(original) is Frozen:
        original = original.original
    yield original, changed
    kind = type(original)
    if depth >= _DEPTH or kind not in (tuple, list, dict) or len(original) > _ELEMENTS:
        return
    if kind is dict:
        if type(changed) is dict and list(original) == list(changed):
            for key, element in original.items():
                if type(element) not in IMMUTABLE:
                    yield from _pairs(element, changed[key], depth + 1)
    elif type(changed) is kind and len(original) == len(changed):
        for element, copy in zip(original, changed):
            if type(element) not in IMMUTABLE:
                yield from _pairs(element, copy, depth + 1)


def _differs(original: Any, copy: Any) -> bool:
    """Whether the worker's copy holds something else than the caller's object (unknown: yes)."""
    try:
        return pickle.dumps(original, protocol=pickle.HIGHEST_PROTOCOL) != pickle.dumps(
            copy, protocol=pickle.HIGHEST_PROTOCOL
        )
    except Exception:  # noqa: BLE001 - cannot tell: as changed
        return True


class _ChunkArrays:
    """The numpy arrays among one chunk's items (and inside them, as :func:`_parts` finds objects)
    that view memory they do not own, by the memory they view (see :func:`_memory`), each with its
    bytes' bounds, sorted.  Made once per chunk in flight (see Combiner._sharing_memory).  Arrays
    that own their memory are found by identity (an item in flight that is ``array.base``).

    The rows of an array the loop iterates (a chunk's items then are a slice of it) share no
    memory with each other, nor with other chunks' rows, unless its rows overlap (a broadcast
    array): they are not listed.
    """

    __slots__ = ("count", "longest", "lows", "views")

    def __init__(self, first: int, items: Any) -> None:
        ndarray = sys.modules["numpy"].ndarray
        views: dict[int, list[tuple[int, int, int, Any]]] = {}
        if not (isinstance(items, ndarray) and _apart(items.shape, items.strides, items.itemsize)):
            for position, item in enumerate(items, first):
                kind = type(item)
                if kind in (tuple, list, dict, Frozen):
                    parts = _parts(item)
                elif isinstance(item, ndarray):
                    parts = [item]
                else:
                    continue
                for part in parts:
                    if isinstance(part, ndarray) and part.base is not None:
                        low, high = _bounds(part)
                        views.setdefault(_memory(part)[0], []).append((low, high, position, part))
        self.views = {key: sorted(spans, key=_low) for key, spans in views.items()}
        self.lows = {key: [span[0] for span in spans] for key, spans in self.views.items()}
        self.longest = {key: max(high - low for low, high, _, _ in spans) for key, spans in views.items()}
        self.count = sum(map(len, views.values()))

    def overlapping(self, array: Any, key: int, bounds: tuple[int, int]) -> list[int]:
        """The positions of the views here that share memory with ``array``, which views the
        memory ``key`` names (see :func:`_memory`) within ``bounds``."""
        spans = self.views.get(key)
        if not spans:
            return []
        numpy = sys.modules["numpy"]
        low, high = bounds
        longest = self.longest[key]
        found = []
        # The spans that start before this one ends, back to those that cannot reach it.
        at = bisect.bisect_left(self.lows[key], high) - 1
        while at >= 0 and spans[at][0] + longest > low:
            _, other_high, position, other = spans[at]
            if other_high > low and numpy.shares_memory(array, other):
                found.append(position)
            at -= 1
        return found


def _apart(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """Whether no two elements of an array of this layout share a byte (so neither do two of its
    rows): with its axes taken by growing stride, each stride passes all the bytes the smaller
    ones span.  (Enough, not needed: a layout that fails may still share none.)"""
    extent = itemsize
    for size, stride in sorted(
        ((size, abs(stride)) for size, stride in zip(shape, strides) if size > 1), key=_stride
    ):
        if stride < extent:
            return False
        extent += (size - 1) * stride
    return True


def _stride(axis: tuple[int, int]) -> int:
    return axis[1]


def _views_apart(views: list[Any]) -> bool:
    """Whether ``views`` (of one memory) share no byte because they are the rows of one layout
    that shares none: the same shape and strides, starting at evenly spaced addresses (the
    columns of a matrix, the pieces of a split).  The views of a real overlap, or of an uneven
    layout, are compared pair by pair instead (bisected by their bounds)."""
    if len(views) < 2:
        return True
    first = views[0]
    shape, strides, itemsize = first.shape, first.strides, first.itemsize
    if any(view.shape != shape or view.strides != strides or view.itemsize != itemsize for view in views):
        return False
    starts = sorted(view.__array_interface__["data"][0] for view in views)
    step = starts[1] - starts[0]
    if step == 0 or any(later - earlier != step for earlier, later in itertools.pairwise(starts)):
        return False
    return _apart((len(views), *shape), (step, *strides), itemsize)


def _low(span: tuple[int, int, int, Any]) -> int:
    return span[0]


def _bounds(array: Any) -> tuple[int, int]:
    """The addresses of an array's first byte and past its last (numpy 2 moved the function)."""
    numpy = sys.modules["numpy"]
    array_utils = getattr(numpy.lib, "array_utils", None)
    bounds = array_utils.byte_bounds if array_utils is not None else numpy.byte_bounds
    low, high = bounds(array)
    return int(low), int(high)


def _memory(array: Any) -> tuple[int, Any]:
    """What names the memory ``array`` views: the id of the array that owns it (following
    ``.base`` through views of views) or of the buffer it was made over (``numpy.frombuffer``),
    with the array whose ``.base`` that is."""
    ndarray = sys.modules["numpy"].ndarray
    while True:
        base = array.base
        if not isinstance(base, ndarray):
            # numpy.lib.stride_tricks.as_strided's views: a holder of the array they view.
            base = getattr(base, "base", None) if type(base).__name__ == "DummyArray" else None
        if not isinstance(base, ndarray):
            break
        array = base
    memory = array if array.base is None else array.base
    # numpy.frombuffer makes a memoryview of the buffer for each array: the buffer is what they share.
    while isinstance(memory, memoryview) and memory.obj is not None:
        memory = memory.obj
    return id(memory), array


def _parts(item: Any) -> list[Any]:
    """The item and the changeable objects in it that write_back writes into (see _pairs)."""
    return [part for part, _ in _pairs(item, item)]


def with_context(outcome: Outcome, job: Job) -> BaseException:
    error: BaseException = outcome.value
    if isinstance(error, Unresolved):
        # Its class is one the body captured: the caller's own class, so its except fires.
        error = error.resolve(lambda reference: resolve(reference, job.params, job.values))
    if isinstance(error, ParaLoopError) and outcome.item is None and outcome.traceback is None:
        return error  # paraloop's own refusal of a chunk's results: its message says where
    _restore_fields(error)
    note = (
        f"paraloop: raised in iteration {outcome.stop} (item {outcome.item}) "
        f"of the loop at {job.filename}, line {job.line}"
    )
    if outcome.traceback is not None and outcome.remote:
        # It came from another process: show the worker's traceback as the cause
        # (and not a copy of it that tblib, once Dask imported it, rebuilds).
        error.__traceback__ = None
        text = outcome.traceback if sys.version_info >= (3, 11) else outcome.traceback + note + "\n"
        # The worker's traceback shows the whole chain; it goes at the end of the
        # exception's own chain of causes, which stays as it was raised.
        last = error
        while last.__cause__ is not None and not isinstance(last.__cause__, RemoteTraceback):
            last = last.__cause__
        last.__cause__ = RemoteTraceback(text)
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:
        # Printed only from 3.11 on, but readable by code on 3.10 too.
        error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]
    return error


def _restore_fields(error: BaseException) -> None:
    """Give a SystemExit its code (a StopIteration its value) from its args.

    Both are set by ``__init__``, and some picklers rebuild an exception without calling it:
    tblib, which Dask installs process-wide (a forked worker inherits it), rebuilds every
    exception whose class has its own ``__init__`` as ``cls()`` plus its args, and a body's
    ``sys.exit(3)`` then ended the program with status 0."""
    if not error.args:
        return
    first: Any = error.args[0] if len(error.args) == 1 else error.args
    if isinstance(error, SystemExit) and error.code is None:
        error.code = first
    elif isinstance(error, StopIteration) and error.value is None:
        error.value = error.args[0]
