"""Running one chunk of a loop through its generated worker function.

The same code runs a chunk in a worker process, in a thread, or inline in the
caller: it gives the worker function fresh private copies of the tracked
Variables, calls it, and turns what the function returns (how the chunk
ended, and its local names) into an :class:`Outcome` the caller can combine.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import math
import operator
import os
import reprlib
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from . import background_import, module_stores, serialize
from .aggregation_strategies import NOTHING, AggregationStrategy, ElementUpdates
from .chunks import Chunk
from .cpus import others_queued, others_queued_since, queued_and_runs, waited_for_the_gil
from .errors import IterationTimeoutError, ParaLoopError
from .guard import ATOMS, Guard, fingerprint, read_only_error
from .items import writable
from .process_state import changed as state_changed
from .process_state import generators as random_generators
from .process_state import imported_since, snapshot
from .records import Record
from .references import Reference, captured
from .replay import Continued, Recorder, StandIn, Whole, check_whole, recorder
from .resources import PerWorker, instance
from .signal_errors import in_body
from .variable import Variable

__all__ = [
    "BROKE",
    "DONE",
    "RAISED",
    "RETURNED",
    "UNBOUND",
    "Job",
    "Outcome",
    "execute_chunk",
    "LANE_STATE",
    "lanes_watched",
    "watch_lanes",
]


class _Unbound:
    """Stands for a name that was not bound when the loop started."""

    def __repr__(self) -> str:
        return "<unbound>"

    def __reduce__(self) -> str:
        return "UNBOUND"


UNBOUND: Any = _Unbound()

# How a chunk ended; the generated worker functions return one of these.
DONE = 0
BROKE = 1
RAISED = 2
RETURNED = 3


class Job(Record):
    """Everything a worker needs for one loop; shipped once per loop, not per chunk."""

    function: Callable[..., Any]
    params: tuple[str, ...]
    values: tuple[Any, ...]
    tracked: frozenset[str]
    # Tracked names the body uses as Variables (``v.value``): they get a
    # private Variable; the others get the bare private value, which is as
    # fast as the plain loop.
    wrapped: frozenset[str]
    stored: tuple[str, ...]
    after: frozenset[str]
    filename: str
    line: int
    # Seconds one iteration may take, or None.
    timeout: float | None = None
    # Tracked names whose updates the workers record for the caller to replay
    # (see paraloop.replay), with the operation: "add", "mul", or "touch" (a
    # scratch buffer).
    replay: dict[str, str]
    # Tracked names whose per-key partial results must stay whole numbers.
    whole: frozenset[str] = frozenset()
    # Watch the captured objects for changes paraloop does not combine (see
    # paraloop.guard): every backend but the sequential one.
    guarded: bool = False
    # The items are copies (worker processes, Dask): an iteration that changes
    # its item in place is refused.
    copied: bool = False
    # The body seeds a global random generator: its draws may move the generator.
    seeded: bool = False
    # Chunks run in a process shared with other work (a Dask worker).
    shared_process: bool = False
    # Whether a worker may run several iterations at once in threads (see paraloop.backends.processes.policy):
    # None lets paraloop decide (not for iterations that change process-wide state, see
    # paraloop.process_state), False never, True always (the user says the body is thread-safe).
    lanes: bool | None = None
    # The caller's decimal context, where it is not the default: Decimal arithmetic
    # in the body rounds as it does in the caller (contexts belong to a thread).
    decimal: Any = None
    # Threads for each worker's native pools (BLAS, OpenMP), or None to leave them alone
    # (see paraloop.native_threads).
    native_threads: int | None = None
    # The global random generators' modules loaded in the caller: a worker imports them
    # before the first iteration, so that a draw from one is seen (see Guard.drew).
    generators: tuple[str, ...] = ()
    # The standard streams the caller replaced (sys.stdout a StringIO...): what the body prints
    # there comes back with each chunk (see paraloop.output).
    streams: dict[str, dict[str, Any]]

    _fields = (
        "function",
        "params",
        "values",
        "tracked",
        "wrapped",
        "stored",
        "after",
        "filename",
        "line",
        "timeout",
        "replay",
        "whole",
        "guarded",
        "copied",
        "seeded",
        "shared_process",
        "lanes",
        "decimal",
        "native_threads",
        "generators",
        "streams",
    )

    def __init__(
        self,
        function: Callable[..., Any],
        params: tuple[str, ...],
        values: tuple[Any, ...],
        tracked: frozenset[str],
        wrapped: frozenset[str],
        stored: tuple[str, ...],
        after: frozenset[str],
        filename: str,
        line: int,
        timeout: float | None = None,
        replay: dict[str, str] | None = None,
        whole: frozenset[str] = frozenset(),
        guarded: bool = False,
        copied: bool = False,
        seeded: bool = False,
        shared_process: bool = False,
        lanes: bool | None = None,
        decimal: Any = None,
        native_threads: int | None = None,
        generators: tuple[str, ...] = (),
        streams: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.function = function
        self.params = params
        self.values = values
        self.tracked = tracked
        self.wrapped = wrapped
        self.stored = stored
        self.after = after
        self.filename = filename
        self.line = line
        self.timeout = timeout
        self.replay = dict() if replay is None else replay
        self.whole = whole
        self.guarded = guarded
        self.copied = copied
        self.seeded = seeded
        self.shared_process = shared_process
        self.lanes = lanes
        self.decimal = decimal
        self.native_threads = native_threads
        self.generators = generators
        self.streams = dict() if streams is None else streams

    def guard(self) -> Guard | None:
        """This process's watch over the loop's captured objects, made on first use."""
        if not self.guarded:
            return None
        guard: Guard | None = self.__dict__.get("_guard")
        if guard is None:
            with _guard_lock:
                guard = self.__dict__.get("_guard")
                if guard is None:
                    for module in self.generators:
                        if module not in sys.modules:
                            importlib.import_module(module)
                    where = f"{self.filename}, line {self.line}"
                    guard = Guard(self.params, self.values, self.tracked, where)
                    guard.excused = self.iterable_changes()
                    self.__dict__["_guard"] = guard
        return guard

    def iterable_changes(self) -> dict[int, ParaLoopError]:
        """In the caller: the objects the loop's iterable was seen changing (see
        paraloop.iterable_watch), by id, with the refusal its watch made."""
        found: dict[int, ParaLoopError] | None = self.__dict__.get("_iterable_changes")
        if found is None:
            found = self.__dict__["_iterable_changes"] = {}
        return found

    def whole_terms(self) -> dict[str, bool]:
        """In this process, for each speculatively replayed name: whether its terms so far
        were whole numbers (its chunks then add per chunk)."""
        found: dict[str, bool] | None = self.__dict__.get("_whole_terms")
        if found is None:
            found = self.__dict__["_whole_terms"] = {}
        return found

    def numbered(self) -> tuple[int, ...]:
        """The positions among the parameters of the element updates whose chunks run at the same
        time: their iterations are numbered (see :class:`Numbered`)."""
        found: tuple[int, ...] | None = self.__dict__.get("_numbered")
        if found is None:
            found = self.__dict__["_numbered"] = tuple(
                self.params.index(name)
                for name in sorted(self.tracked)
                if type(strategy := self.strategy(name)) is ElementUpdates and strategy.concurrent
            )
        return found

    def captured_ids(self) -> dict[int, Reference]:
        """The captured values that may come back as references (see paraloop.references)."""
        found: dict[int, Reference] | None = self.__dict__.get("_captured")
        if found is None:
            found = self.__dict__["_captured"] = captured(self.params, self.values, self.tracked)
        return found

    def final_check(self) -> ParaLoopError | None:
        """At the loop's end, in this process: check what chunks left unchecked, if anything."""
        guard: Guard | None = self.__dict__.get("_guard")
        if guard is None or not guard.pending:
            return None
        return guard.check()

    def release_guard(self, results: Iterable[Any] = ()) -> None:
        guard = self.__dict__.pop("_guard", None)
        if guard is not None:
            guard.release(results)

    def starts(self) -> dict[str, Any]:
        """In the caller: the pre-loop values of the float sums and products whose chunks may
        continue from the running value (see paraloop.replay.Continued); never sent."""
        found: dict[str, Any] = self.__dict__.get("_starts", {})
        return found

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_starts", None)
        state.pop("_guard", None)
        state.pop("_captured", None)
        state.pop("_whole_terms", None)
        state.pop("_numbered", None)
        state.pop("_iterable_changes", None)
        return state

    def strategy(self, name: str) -> AggregationStrategy:
        """The strategy of the tracked name ``name`` (its value in the job is a private Variable)."""
        variable: Variable[Any] = self.values[self.params.index(name)]
        return variable.aggregation_strategy

    def portable(self) -> Job:
        """A copy whose function dill sends by value (a copy is not found by its name)."""
        function = self.function
        clone = types.FunctionType(
            function.__code__,
            function.__globals__,
            function.__name__,
            function.__defaults__,
            function.__closure__,
        )
        clone.__qualname__ = function.__qualname__
        clone.__module__ = function.__module__
        copy: Job = self._copy(function=clone)
        return copy


class Outcome(Record):
    """What one chunk produced, in a form the caller combines in chunk order."""

    chunk: int
    start: int
    size: int
    kind: int = DONE
    # Global index of the iteration that broke, raised or returned.
    stop: int | None = None
    value: Any = None
    partials: dict[str, Any]
    bound: dict[str, Any]
    seconds: float = 0.0
    # CPU time the chunk used: far below ``seconds`` when iterations mostly wait.
    cpu: float = 0.0
    # Time it was ready to run but waited for a CPU (a loaded machine), where known.
    queued: float = 0.0
    # When a part run in a lane began and ended (perf_counter of its worker).
    began: float = 0.0
    ended: float = 0.0
    traceback: str | None = None
    item: str | None = None
    # Seconds the caller spent receiving this outcome (set by the pool).
    received: float = 0.0
    # Set by the caller when the outcome came from another process.
    remote: bool = False
    # Seconds spent checking captured objects for changes (see paraloop.guard).
    checked: float = 0.0
    # Items iterations changed in place, by iteration: written back into the caller's items.
    changed: dict[int, Any]
    # Process-wide state the chunk's iterations changed (see paraloop.process_state), if any.
    process_state: str | None = None
    # The worker's guard left captured objects unchecked so far: the loop's end must ask it to
    # check them (see paraloop.guard); otherwise that round trip is skipped.
    unchecked: bool = False
    # A chunk run in lanes (see :mod:`paraloop.backends.processes.policy`): its parts, in order, each
    # combined like a chunk of its own; the parts after one that did not finish
    # are dropped.
    parts: list[Outcome] | None = None
    # Parts after one that did not finish were still running in lanes when the chunk was sent
    # (a thread cannot be stopped): its worker process is not given to another loop.
    leftovers: bool = False
    # What the chunk wrote to the streams the caller replaced, in order (see paraloop.output).
    output: list[tuple[str, Any]] | None = None

    _fields = (
        "chunk",
        "start",
        "size",
        "kind",
        "stop",
        "value",
        "partials",
        "bound",
        "seconds",
        "cpu",
        "queued",
        "began",
        "ended",
        "traceback",
        "item",
        "received",
        "remote",
        "checked",
        "changed",
        "process_state",
        "unchecked",
        "parts",
        "leftovers",
        "output",
    )

    def __init__(
        self,
        chunk: int,
        start: int,
        size: int,
        kind: int = DONE,
        stop: int | None = None,
        value: Any = None,
        partials: dict[str, Any] | None = None,
        bound: dict[str, Any] | None = None,
        seconds: float = 0.0,
        cpu: float = 0.0,
        queued: float = 0.0,
        began: float = 0.0,
        ended: float = 0.0,
        traceback: str | None = None,
        item: str | None = None,
        received: float = 0.0,
        remote: bool = False,
        checked: float = 0.0,
        changed: dict[int, Any] | None = None,
        process_state: str | None = None,
        unchecked: bool = False,
        parts: list[Outcome] | None = None,
        leftovers: bool = False,
        output: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.chunk = chunk
        self.start = start
        self.size = size
        self.kind = kind
        self.stop = stop
        self.value = value
        self.partials = dict() if partials is None else partials
        self.bound = dict() if bound is None else bound
        self.seconds = seconds
        self.cpu = cpu
        self.queued = queued
        self.began = began
        self.ended = ended
        self.traceback = traceback
        self.item = item
        self.received = received
        self.remote = remote
        self.checked = checked
        self.changed = dict() if changed is None else changed
        self.process_state = process_state
        self.unchecked = unchecked
        self.parts = parts
        self.leftovers = leftovers
        self.output = output

    @property
    def iterations(self) -> int:
        return self.size if self.stop is None else self.stop - self.start + 1


def _argument(job: Job, name: str, value: Any) -> Any:
    if name not in job.tracked:
        return value
    private = value._private()
    return private if name in job.wrapped else private.value


class ChunkIterator:
    """Iterates a chunk's items, calling :meth:`starting` before each iteration.

    It has no ``__len__``, so ``operator.length_hint`` tells how many items are
    left (which is how a stopped chunk's iteration index is found).
    """

    __slots__ = ("items", "position", "start")

    def __init__(self, items: Any, start: int) -> None:
        self.items = items
        self.start = start
        self.position = 0

    def __iter__(self) -> ChunkIterator:
        return self

    def __next__(self) -> Any:
        if self.position >= len(self.items):
            self.finished()
            raise StopIteration
        item = self.items[self.position]
        self.starting(self.start + self.position)
        self.position += 1
        return item

    def __length_hint__(self) -> int:
        return len(self.items) - self.position

    def starting(self, index: int) -> None:
        """Called before the iteration with this (global) index runs."""

    def finished(self) -> None:
        """Called when the chunk has no more items."""


class Numbered:
    """Iterates the items for the body, numbering each iteration in the element updates' views
    (``_Elements.iteration``), which tell by it an element that two iterations of a chunk use.
    The length hint is the items' (a chunk stopped by an exception finds its index by it)."""

    __slots__ = ("count", "elements", "inner")

    def __init__(self, items: Iterable[Any], elements: list[Any]) -> None:
        self.inner = iter(items)
        self.elements = elements
        self.count = 0

    def __iter__(self) -> Numbered:
        return self

    def __next__(self) -> Any:
        item = next(self.inner)
        self.count += 1
        for elements in self.elements:
            elements.iteration = self.count
        return item

    def __length_hint__(self) -> int:
        return operator.length_hint(self.inner)


def _elements(job: Job, args: list[Any], where: int) -> Any:
    """The chunk's view of the element update at parameter ``where`` (see :meth:`Job.numbered`)."""
    private = args[where]
    return private.value if job.params[where] in job.wrapped else private


class Timed(ChunkIterator):
    """Stamps each iteration's index and start time into ``clock``, shared with the parent,
    which stops the worker when an iteration runs past the loop's timeout."""

    __slots__ = ("clock",)

    def __init__(self, items: Any, start: int, clock: Any) -> None:
        super().__init__(items, start)
        self.clock = clock

    def starting(self, index: int) -> None:
        self.clock[1] = float(index)  # a fork worker's clock holds doubles only
        self.clock[0] = time.monotonic()

    def finished(self) -> None:
        self.clock[0] = 0.0


def _format_exception(kind: type[BaseException], value: BaseException, tb: Any) -> list[str]:
    """traceback.format_exception, its module (with textwrap, 2 ms) imported by the first
    iteration that raises, not by every program's runtime."""
    import traceback

    return traceback.format_exception(kind, value, tb)


class Keep:
    """How long the rest of a loop may take for the caller's first chunk to go on past its
    deadline (``seconds``), with the number of the loop's items past the chunk (``after``);
    ``kept``: it went on; ``begun``: how many of its items were handed to the body so far, more
    than one once the first iteration ended (see :class:`Until`)."""

    __slots__ = ("after", "begun", "kept", "seconds")

    def __init__(self, seconds: float, after: int) -> None:
        self.seconds = seconds
        self.after = after
        self.kept = False
        self.begun = 0


class Until:
    """Stops a chunk before an iteration that would start more than ``seconds`` after its
    first started, after at least one: the items left are the loop's again (see
    :meth:`paraloop.chunks.Chunker.give_back`).  Counted from the first iteration, not
    from the chunk's call: its setup (a loop's first chunk looks at the captured objects
    and the program's modules, slower on a busy machine) is no iteration's time.

    The clock is read between blocks of items, not before each: a block is iterated in C
    (``itertools.chain`` over a list iterator), so a chunk of trivial iterations runs at the
    plain loop's speed.  Blocks double while one takes under ``BLOCK_SECONDS`` (up to
    ``BLOCK_ITEMS``), and halve when one takes more, so the deadline is kept to within about
    that much, or one block of iterations that turned slow.

    ``keep`` (a :class:`Keep`): a chunk whose stop would only tell the caller to keep the loop
    goes on instead.  At the deadline, once at least two iterations ran (the first alone may
    carry one-off costs), if the items left of the chunk and the ``after`` items of the loop past
    it would take less than ``keep.seconds`` at the time an iteration took so far, the deadline
    moves to twice the time the chunk's items left should take, once, and ``keep.kept`` says so.
    (A loop of ten iterations of 1 ms, which the caller keeps, was two chunks: 0.4 ms more.)
    """

    __slots__ = ("block_end", "deadline", "inner", "items", "keep")
    BLOCK_SECONDS = 0.0005
    # At most this many items between two looks at the clock: iterations that turn slow inside
    # a block run to its end (a look costs about as much as ten trivial iterations).
    BLOCK_ITEMS = 256

    def __init__(self, items: Any, seconds: float, per_item: float = 0.0, keep: Keep | None = None) -> None:
        self.items = items
        self.keep = keep
        # Relative until the first block starts (see _blocks).
        self.deadline = seconds
        # The first block, from the time an item took so far (else one item).
        first = int(self.BLOCK_SECONDS / per_item) if per_item > 0 else 1
        self.block_end = min(self.BLOCK_ITEMS, max(1, first))
        self.inner: Iterator[Any] = iter(())

    def __iter__(self) -> Iterator[Any]:
        # chain takes each block's iterator from _blocks (resumed once a block) and goes through
        # it in C: no Python code runs between two items of a block.
        return itertools.chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[Iterator[Any]]:
        items, count = self.items, len(self.items)
        clock = time.perf_counter
        position, block, began = 0, self.block_end, clock()
        first = began
        progress = self.keep
        self.deadline += began
        while position < count:
            now = clock()
            if position and now > self.deadline:
                if not self._kept(now - first, position, count - position):
                    return
                self.deadline = now + 2 * (now - first) / position * (count - position)
            if position:
                quick = now - began < self.BLOCK_SECONDS
                block = min(block * 2, self.BLOCK_ITEMS) if quick else max(1, block // 2)
            began = now
            end = min(count, position + block)
            self.inner = iter(items[position:end])
            self.block_end = end
            if progress is not None:
                progress.begun = end
            yield self.inner
            position = end

    def _kept(self, seconds: float, ran: int, left: int) -> bool:
        """Whether the chunk goes on past its deadline (see ``keep``): once at most."""
        keep, self.keep = self.keep, None
        if keep is None or ran < 2 or seconds / ran * (left + keep.after) >= keep.seconds:
            return False
        keep.kept = True
        return True

    def ran(self) -> int:
        """How many items the chunk took so far (the one an iteration that stopped the chunk
        was running included)."""
        return self.block_end - operator.length_hint(self.inner)


@contextlib.contextmanager
def stamped(clock: Any, index: int) -> Iterator[None]:
    """What the block does counts as iteration ``index``'s time against the timeout, as
    :class:`Timed` stamps it (loading a chunk's items, sending its results); no clock, no stamp."""
    if clock is None:
        yield
        return
    clock[1] = float(index)
    clock[0] = time.monotonic()
    try:
        yield
    finally:
        clock[0] = 0.0


LOG_PREFIX = "__paraloop_log_"
# The share of a chunk's time its worker may spend checking captured objects for changes.
CHECK_SHARE = 0.03
_guard_lock = threading.Lock()


def _recorders(job: Job, args: list[Any], continued: Mapping[str, Any]) -> dict[str, Recorder]:
    """A recorder for each replayed name (not ``continued``), passed as the name's log parameter.

    The name itself gets a stand-in that records what a nested loop does to it.
    """
    recorders: dict[str, Recorder] = {}
    whole = job.whole_terms()
    for position, param in enumerate(job.params):
        if param.startswith(LOG_PREFIX):
            name = param[len(LOG_PREFIX) : -2]
            operation = job.replay.get(name)
            if operation is None or (operation.endswith("?") and whole.get(name)) or name in continued:
                # Not replayed; or terms so far whole numbers, added per chunk, exactly; or
                # updated in order from its running value.
                continue
            where = job.params.index(name)
            log = recorder(args[where], operation.rstrip("?"))
            recorders[name] = args[position] = log
            if operation != "touch":
                args[where] = _stand_in(args[where], log, name in job.wrapped)
    return recorders


def _stand_in(private: Any, recorder: Recorder, wrapped: bool) -> Any:
    if not wrapped:
        return StandIn(recorder)
    return Variable._unchecked(StandIn(recorder), private.aggregation_strategy)


def _item_prints(items: Any) -> list[tuple[int, int]] | None:
    """Fingerprints of the items that can change, by position; None when none can."""
    if isinstance(items, range) or set(map(type, items)) <= ATOMS:
        return None
    prints = []
    for position, item in enumerate(items):
        if type(item) not in ATOMS:
            digest = fingerprint(item, contents=True)
            if digest is not None:
                prints.append((position, digest))
    return prints


# How a chunk treats process-wide state (see paraloop.process_state): a worker's main thread
# notes a change (lanes stay off), a lane's part refuses one (threads beside it would see it),
# and leaves the random generators to its chunk (see watch_lanes).
NOTE_STATE = "note"
LANE_STATE = "lane"


def execute_chunk(
    job: Job,
    chunk: Chunk,
    clock: Any = None,
    queue: bool = False,
    state: str | None = None,
    continued: Mapping[str, Any] | None = None,
    alone: bool = True,
    deadline: tuple[float, float, Keep | None] | None = None,
    ending: Callable[[], None] | None = None,
    starting: Callable[[], None] | None = None,
) -> Outcome:
    """Run one chunk on private copies; with ``queue``, also measure its CPU time (the process's)
    and its time queued for a CPU.

    ``state`` (NOTE_STATE or LANE_STATE) watches process-wide state around the chunk.
    ``continued`` gives replayed names their running values, for a chunk that follows
    every combined one (see :class:`paraloop.replay.Continued`): they are updated in
    place of being recorded.  ``alone``: no other thread of this process may draw from
    the global random generators meanwhile (a worker process's own), so a draw seen is
    the chunk's.  ``deadline``: the seconds after the chunk's first iteration started past
    which no other starts, given with the time an item is expected to take, and how long the
    rest of the loop (with the number of its items past this chunk) may take to go on past it;
    the outcome's ``size`` says how many ran (see :class:`Until`).  ``ending``: called as soon
    as the body ends the loop (an exception, a break, a return), before the outcome is made.
    ``starting``: called just before the first iteration starts (the chunk's own time begins).
    """
    if job.decimal is None:
        return _execute(job, chunk, clock, queue, state, continued or {}, alone, deadline, ending, starting)
    import decimal

    # The caller's context for this chunk only: this thread runs other loops' chunks later.
    with decimal.localcontext(job.decimal):
        return _execute(job, chunk, clock, queue, state, continued or {}, alone, deadline, ending, starting)


def _execute(
    job: Job,
    chunk: Chunk,
    clock: Any,
    queue: bool,
    state: str | None,
    continued: Mapping[str, Any],
    alone: bool = True,
    deadline: tuple[float, float, Keep | None] | None = None,
    ending: Callable[[], None] | None = None,
    starting: Callable[[], None] | None = None,
) -> Outcome:
    guard = job.guard()
    watch_state = state is not None and job.lanes is not False and job.timeout is None
    # Only in paraloop's own worker processes: elsewhere (threads, Dask) other threads of
    # the process may draw too.
    watch_random = guard is not None and alone and job.copied and not job.seeded and not job.shared_process
    # The random generators' states, read once for both watches (see process_state.generators);
    # not by a lane's part, whose chunk reads them around all its parts.
    randoms = random_generators() if (watch_state and state != LANE_STATE) or watch_random else None
    before = snapshot(randoms if randoms is not None else {}) if watch_state else None
    generators = randoms if watch_random else None
    item_prints = _item_prints(chunk.items) if job.copied else None
    args = [
        continued[name] if name in continued else _argument(job, name, value)
        for name, value in zip(job.params, job.values)
    ]
    if any(type(arg) is PerWorker for arg in args):
        unmade = _per_worker_objects(job, chunk, args, clock)
        if unmade is not None:
            return unmade
    recorders = _recorders(job, args, continued) if job.replay else {}
    items = chunk.items
    if deadline is not None:
        iterable: Any = Until(items, *deadline)
    elif clock is not None and job.timeout:
        iterable = Timed(items, chunk.start, clock)
    else:
        iterable = items
    # The script's globals: not in a process other programs' tasks share (a Dask worker's), nor
    # in the caller while other threads of the program run (its top level, in the main thread,
    # binds them meanwhile); a worker compares them (its lanes run the loop's own iterations).
    scripts = not job.shared_process and (alone or serialize.in_worker_process)
    # Functions that arrived by value (their globals their own) are a worker's or a Dask task's;
    # the body's own among them: globals()["z"] = i in the body stores there.
    arrived = (job.function, *args) if serialize.in_worker_process or job.shared_process else ()
    stores = module_stores.snapshot(scripts, arrived) if job.copied else None
    began_queued, began_runs = queued_and_runs() if queue else (0.0, 0)
    # In the caller, other threads may hold the GIL queued for a CPU (see waited_for_the_gil):
    # the program's, and paraloop's import thread, whose figure is kept when it ends.  (A worker
    # process's other threads are paraloop's own, which hold the GIL for microseconds: its idle
    # lanes are not read twice a chunk.)
    others = queue and not serialize.in_worker_process
    began_others = others_queued(background_import.native_id()) if others else {}
    began_import_queued = background_import.queued() if others else 0.0
    if starting is not None:
        starting()
    began = time.perf_counter()
    # The process's CPU time, but not an import's in a thread meanwhile (see background_import);
    # only where it is asked for with the queued time (a worker process's chunk, the caller's):
    # a chunk in a thread of the threads backend or a lane (which counts its thread's own) would
    # read the clocks of other threads' work, two system calls of a chunk of a few microseconds.
    began_cpu = time.process_time() if queue else 0.0
    began_import = background_import.cpu() if queue else 0.0
    # An iteration that forks (a helper process) carries on in the child too, whose random
    # generators Python reseeds (random's own at-fork hook): no iteration's draw.
    pid = os.getpid() if generators is not None else 0
    outer = getattr(in_body, "active", False)
    in_body.active = True
    numbered = [_elements(job, args, where) for where in job.numbered()]
    try:
        kind, value, iterator, names = job.function(
            Numbered(iterable, numbered) if numbered else iterable, *args
        )
    finally:
        in_body.active = outer
        if clock is not None:
            clock[0] = 0.0
    if ending is not None and kind != DONE:
        ending()
    seconds = time.perf_counter() - began
    cpu = 0.0
    queued = 0.0
    if queue:
        cpu = max(0.0, time.process_time() - began_cpu - (background_import.cpu() - began_import))
        ended_queued, ended_runs = queued_and_runs()
        queued = ended_queued - began_queued
    if others:
        elsewhere = others_queued_since(began_others, background_import.native_id())
        # A thread that ended meanwhile took its figure with it: unknown.
        held = math.inf if elsewhere is None else elsewhere
        held += max(0.0, background_import.queued() - began_import_queued)
        queued += waited_for_the_gil(max(0.0, seconds - cpu - queued), held, ended_runs - began_runs)
    # Nothing process-wide is read while a thread imports (its modules are half made).
    background_import.joined()
    randoms_after = random_generators() if randoms is not None else None

    if kind == DONE and type(iterable) is Until and iterable.ran() < len(items):
        # Stopped at the deadline: the chunk is the items that ran.
        items = items[: iterable.ran()]
        chunk = Chunk(chunk.index, chunk.start, items)
        if item_prints is not None:
            item_prints = [(at, digest) for at, digest in item_prints if at < len(items)]
    outcome = Outcome(
        chunk.index, chunk.start, len(items), kind, value=value, seconds=seconds, cpu=cpu, queued=queued
    )
    stored = module_stores.changed(stores) if stores is not None else None
    # Ctrl-C, SystemExit in an iteration: that, as in the plain loop, not the refusal of a store.
    if stored is not None and (kind != RAISED or isinstance(value, Exception)):
        module, name = stored
        if name is None:
            return _failed(
                outcome,
                chunk,
                ParaLoopError(
                    f"{job.filename}, line {job.line}: an iteration reloaded the module {module} "
                    "(importlib.reload); a worker process reloads its own copy of the module, so the "
                    "reload (and the module state it resets) would not reach your program. Reload "
                    "the module before the loop"
                ),
            )
        return _failed(
            outcome,
            chunk,
            _beside(
                state,
                f"{job.filename}, line {job.line}: an iteration rebound the global {name!r} of the "
                f"module {module} (in a function it calls, or through setattr, vars(), sys.modules "
                "or another name for the module); a worker process rebinds its own copy of the "
                "module, so the change would be lost. Collect what the iterations produce in the "
                "loop's own names instead (a list it appends to, or a name it assigns: the last "
                "iteration's value is kept); for an object a function makes on first use and keeps "
                "there (a cache, a connection), make it before the loop, or once per worker with "
                "paraloop.per_worker(factory)",
            ),
        )
    if before is not None:
        outcome.process_state = state_changed(
            before, snapshot(randoms_after if randoms_after is not None else {})
        )
        if outcome.process_state is not None and state == LANE_STATE:
            return _failed(outcome, chunk, _changed_in_lanes(job, outcome.process_state, before))
    if guard is not None:
        began_check = time.perf_counter()
        if kind == RAISED and (translated := read_only_error(guard.where, guard.array_labels(), value)):
            # The write's own traceback stays: it shows where the body wrote.
            outcome.traceback = "".join(_format_exception(type(value), value, value.__traceback__))
            value = outcome.value = translated
        # A few percent of the chunk's own time (a Dask worker checks everything every chunk:
        # nothing asks it at the loop's end).
        changed = guard.check(None if job.shared_process else CHECK_SHARE * seconds)
        if changed is not None and state == LANE_STATE and type(changed) is ParaLoopError and changed.args:
            changed = _beside(state, str(changed.args[0]))
        if changed is None and generators is not None and randoms_after is not None:
            changed = guard.drew(generators, randoms_after) if os.getpid() == pid else None
        if changed is None and item_prints is not None:
            changed = _changed_items(job, chunk, item_prints, outcome)
        outcome.checked = time.perf_counter() - began_check
        if changed is not None:
            return _failed(outcome, chunk, changed)
    if kind != DONE:
        if type(iterable) is Until:
            position = iterable.ran() - 1
        else:
            position = len(items) - operator.length_hint(iterator) - 1
        outcome.stop = chunk.start + position
        outcome.value = value
        if kind == RAISED:
            outcome.item = reprlib.repr(items[position]) if 0 <= position < len(items) else None
            if outcome.traceback is None:
                outcome.traceback = "".join(_format_exception(type(value), value, value.__traceback__))
    initial = dict(zip(job.params, args))
    for name in job.tracked:
        current = names.get(name, initial[name])
        # ``v += x`` keeps the private Variable bound; ``v = min(v, x)`` or
        # ``v = x`` rebinds the name, and the new value is the partial result.
        partial = current.value if isinstance(current, Variable) else current
        if name in continued:
            outcome.partials[name] = Continued(partial)
            continue
        partial = job.strategy(name).finish(partial)
        recorder = recorders.get(name)
        operation = job.replay.get(name)
        if recorder is not None:
            if operation != "touch":
                partial = recorder.finish()
                if operation is not None and operation.endswith("?"):
                    job.whole_terms()[name] = partial.total is not None
            elif not recorder.entries:
                partial = NOTHING  # this chunk never wrote the scratch buffer
        elif operation is not None and operation.endswith("?"):
            if type(partial) is not int:
                return _failed(outcome, chunk, turned_inexact(job, name, chunk))
            partial = Whole(partial)
        elif name in job.whole and (reason := check_whole(name, partial)) is not None:
            return _failed(outcome, chunk, ParaLoopError(f"{job.filename}, line {job.line}: {reason}"))
        outcome.partials[name] = partial
    for name in job.stored:
        # Stored names start unbound in each chunk (unless tracked), so a name
        # present at the end was bound by this chunk.
        if name not in job.tracked and name in names:
            outcome.bound[name] = names[name]
    return outcome


def _beside(state: str | None, message: str) -> ParaLoopError:
    """A refusal of a change to the program's objects, which in lanes may be one an iteration
    made for the length of a call and put back: the iterations beside it saw it."""
    if state == LANE_STATE:
        message += (
            ". If the iteration puts it back before it ends (a value set for the length of a call), "
            "other iterations saw it meanwhile: they ran beside it in threads of its worker, as "
            "paraloop runs iterations that mostly wait; ParaLoop(..., lanes=False) keeps them apart"
        )
    return ParaLoopError(message)


def _changed_in_lanes(job: Job, what: str, before: tuple[Any, ...]) -> ParaLoopError:
    imported = imported_since(before)
    # A module's first import may change it (numpy's adds warnings filters and sets an
    # environment variable for a moment), in an iteration that changes nothing itself.
    hint = (
        f" (an iteration imported {imported[0]} for the first time meanwhile, which may have made "
        f"the change: import {imported[0]} before the loop and the lanes stay)"
        if imported
        else ""
    )
    return ParaLoopError(
        f"{job.filename}, line {job.line}: an iteration changed {what} "
        f"while others ran beside it in threads of its worker{hint} (paraloop runs iterations "
        "that mostly wait so), which would mix their results. Keep them apart: "
        "ParaLoop(..., lanes=False), or PARALOOP_LANES=0 for the whole program"
    )


def watch_lanes() -> tuple[Any, ...]:
    """Read the process-wide state, the random generators included, before a chunk's lanes start.

    The parts of a chunk run in lanes (see backends/processes/lanes.py) each watch the state
    around themselves (``state=LANE_STATE``), but for the random generators: a change one part
    makes while others run beside it shows in their windows, even one it undoes before it ends
    (an environment variable set, read and removed).  The chunk watches it all once more around
    all its parts (:func:`lanes_watched`): a change left behind shows there whichever part made
    it and whenever, and the random generators are read only there (``random.getstate()`` makes
    625 ints: reading it twice per part cost an iteration that only waits a fifth of its
    worker's CPU time; a draw leaves the generator moved).
    """
    return snapshot(random_generators())


def lanes_watched(job: Job, chunk: Chunk, outcome: Outcome, before: tuple[Any, ...]) -> Outcome:
    """The outcome of a chunk run in lanes, refused if its parts left the process-wide state other
    than :func:`watch_lanes` read it (whatever the parts' own outcomes: the change may have come
    before an exception or a break, and lanes beside it saw it)."""
    what = state_changed(before, snapshot(random_generators()))
    return outcome if what is None else _failed(outcome, chunk, _changed_in_lanes(job, what, before))


def _per_worker_objects(job: Job, chunk: Chunk, args: list[Any], clock: Any) -> Outcome | None:
    """Put this worker's object in place of each per-worker handle the body uses (see
    :mod:`paraloop.resources`), made on first use; making it counts against the timeout as
    the chunk's first iteration.  A factory that raises ends the chunk with its exception."""
    for position, (name, handle) in enumerate(zip(job.params, args)):
        if type(handle) is not PerWorker:
            continue
        try:
            with stamped(clock if job.timeout is not None else None, making(position)):
                args[position] = instance(handle)
        except BaseException as error:  # noqa: BLE001 - the loop's error, as the body's would be (SystemExit too)
            note = (
                f"paraloop: making {name!r} = {handle!r} failed in process {os.getpid()} "
                f"(thread {threading.current_thread().name!r}), before the iteration ran"
            )
            if sys.version_info >= (3, 11):
                error.add_note(note)
            else:
                error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]
            outcome = Outcome(chunk.index, chunk.start, len(chunk.items), RAISED, chunk.start, error)
            outcome.traceback = "".join(_format_exception(type(error), error, error.__traceback__))
            outcome.item = reprlib.repr(chunk.items[0]) if len(chunk.items) else None
            return outcome
    return None


def turned_inexact(job: Job, name: str, chunk: Chunk) -> ParaLoopError:
    last = chunk.start + len(chunk.items) - 1
    return ParaLoopError(
        f"{job.filename}, line {job.line}: {name!r} started as a whole number and its first terms "
        f"were whole numbers, but iterations {chunk.start} to {last} added others (floats): "
        "paraloop cannot then add them in the plain loop's order. Start it as a float "
        f"({name} = 0.0 before the loop): every term is then added in the plain loop's order"
    )


def making(position: int) -> int:
    """What a clock's index says while the per-worker object of the body's ``position``-th
    parameter is made (before the chunk's first iteration): -2, -3, ..., never an iteration's."""
    return -2 - position


def timeout_error(job: Job, index: int, chunks: Iterable[Chunk | None], fate: str) -> IterationTimeoutError:
    """The error for what a clock showed running past the loop's timeout: iteration ``index``
    (its item found in ``chunks``), or the making of a per-worker object (see :func:`making`)."""
    if index <= -2 and -2 - index < len(job.params):
        position = -2 - index
        name, handle = job.params[position], job.values[position]
        code = getattr(getattr(handle, "__paraloop_factory__", None), "__code__", None)
        where = f", whose factory is at {code.co_filename}, line {code.co_firstlineno}," if code else ""
        return IterationTimeoutError(
            f"{job.filename}, line {job.line}: making the per-worker object {name!r} = {handle!r}"
            f"{where} took longer than timeout={job.timeout:g} s, before the iteration that first uses "
            f"it ran, so {fate}. Making it counts against that iteration's timeout: raise timeout= "
            "above the time the factory takes (it runs once per worker, and later iterations and "
            "loops reuse the object), or make the factory quicker"
        )
    shown = ""
    for chunk in chunks:
        if chunk is not None and 0 <= index - chunk.start < len(chunk.items):
            shown = f" (item {reprlib.repr(chunk.items[index - chunk.start])})"
    return IterationTimeoutError(
        f"{job.filename}, line {job.line}: iteration {index}{shown} ran longer than "
        f"timeout={job.timeout:g} s, so {fate}. Raise the timeout, or find out why that iteration is "
        "slow (backend='sequential' runs it in the caller, where a debugger works)"
    )


def _failed(outcome: Outcome, chunk: Chunk, error: ParaLoopError) -> Outcome:
    """The chunk's results cannot be combined as the plain loop would: the loop fails here."""
    last = chunk.start + len(chunk.items) - 1
    failed = Outcome(outcome.chunk, chunk.start, len(chunk.items), RAISED, last, error)
    failed.seconds, failed.cpu, failed.checked = outcome.seconds, outcome.cpu, outcome.checked
    return failed


def _changed_items(
    job: Job, chunk: Chunk, prints: list[tuple[int, int]], outcome: Outcome
) -> ParaLoopError | None:
    """Items an iteration changed in place travel back, to be written into the caller's items."""
    for position, digest in prints:
        item = chunk.items[position]
        if fingerprint(item, contents=True) == digest:
            continue
        if writable(item):
            outcome.changed[chunk.start + position] = item
        else:
            return ParaLoopError(
                f"{job.filename}, line {job.line}: iteration {chunk.start + position} changed its item "
                f"(a {type(item).__qualname__}) in place; worker processes change their own copies of "
                "the items, so the change would be lost. Collect the new values instead "
                "(results[i] = ..., with ParaLoop(enumerate(items))), or use backend='threads', "
                "whose iterations change the items themselves"
            )
    return None
