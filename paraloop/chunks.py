"""Cutting the loop's iterable into chunks, lazily, with sizes that follow the work.

A chunk is the unit sent to a worker.  One message per iteration is far too
slow for cheap bodies, one huge chunk balances badly for expensive ones, so the
size adapts to the iteration time the workers measure, aiming at chunks of a
few tens of milliseconds.  Sizes depend on measured times only, never on the
number of workers (but for the threads backend's many threads, which ask for chunks of two
where waiting iterations are many: see ``Chunker.next``).  The iterable is read one chunk
at a time, when a worker is free to take it, so read-ahead is bounded by the number of
chunks in flight.

A chunk of items copied into worker processes also ends where its items' bytes
reach MAX_CHUNK_BYTES, however small the items before them were: a sequence's
slice is measured before it is serialized, and an iterator is read in pieces,
counted as they come (the items that can change were serialized when yielded).
Small numbers are not measured: loops over them pay nothing for it.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import pickle
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import serialize
from .errors import ParaLoopError
from .items import COPY, IMMUTABLE, INLINE, Frozen, Partial, check_copied, length, take, unsendable
from .records import Record

if TYPE_CHECKING:
    from .iterable_watch import IterableWatch

__all__ = ["Chunk", "Chunker", "pickled_within"]

# Aim for chunks that take about this long: long enough that the cost of a
# round trip to a worker (tens of microseconds) vanishes, short enough that
# the last chunks balance well.
TARGET_SECONDS = 0.02
# ...unless receiving and combining a chunk's results costs the caller more
# than this share of the chunk's own time (large partial dicts): then chunks
# grow, since combining cost grows slower than the chunk.
OVERHEAD_SHARE = 0.05
MAX_TARGET_SECONDS = 1.0
# Bounds read-ahead: at this size the cost of a round trip is already negligible.
MAX_CHUNK = 1 << 16
# ...and in bytes: a chunk of large items (sent to a worker process) holds at most about
# this much, so a loop over large items keeps a few chunks in memory, never the input.
MAX_CHUNK_BYTES = 16 << 20
GROWTH = 16
# Towards the end of a sequence of known length, a chunk takes at most this
# share of what is left (but never less than a tenth of TARGET_SECONDS), so
# that the workers finish together instead of one waiting for another's last
# large chunk.  The rule uses the items left, never the number of workers.
TAIL_SHARE = 4
TAIL_FLOOR = 10
# An iterator is read this many items at a time at most, and its bytes counted after each read:
# a chunk ends within this many items of reaching MAX_CHUNK_BYTES, however much larger its items
# turn than the ones before (a size measured once cannot tell).  Except for a stream of small
# numbers, read at C speed a chunk at a time (each read of a piece costs about a microsecond): one
# that turns into large items overshoots once, by the rest of that chunk.
PIECE = 16

# Items of these types take a few dozen bytes each: chunks of them are not measured.
_SMALL = frozenset({int, float, complex, bool, type(None)})
# Items whose own size (sys.getsizeof) is about what they take pickled.
_FLAT = _SMALL | {str, bytes, bytearray}
_DATA = operator.attrgetter("data")
_FROZEN = Frozen.__instancecheck__
_TUPLE = tuple.__instancecheck__


class Chunk(Record):
    index: int
    start: int
    items: Sequence[Any]
    # The items serialized for a worker process (the COPY mode), once.
    payload: bytes | None = None

    _fields = ("index", "start", "items", "payload")

    def __init__(
        self,
        index: int,
        start: int,
        items: Sequence[Any],
        payload: bytes | None = None,
    ) -> None:
        self.index = index
        self.start = start
        self.items = items
        self.payload = payload

    def _replace_items(self, items: Any) -> Chunk:
        return Chunk(self.index, self.start, items)


def sliceable(iterable: Iterable[Any]) -> bool:
    """A range, list or tuple whose iteration is the built-in one (a subclass may iterate otherwise)."""
    for base in (range, list, tuple):
        if isinstance(iterable, base):
            return type(iterable).__iter__ is base.__iter__
    return False


def read_once(iterator: Iterator[Any]) -> Iterator[Any]:
    """``iterator``, read as the plain loop reads it: ``iter()`` called once, at the loop's start.

    Each piece of items read (``itertools.islice``, ``map``) calls ``iter()`` on the iterator it
    reads, which for an iterator class of the program's own runs its ``__iter__`` again: one that
    sets its position back to the start, a common way to write one, began again at each piece
    (processes and threads gave items twice over, the sequential backend never ended).  Such an
    iterator is read through its ``__next__`` alone, in C (a StopIteration it raises ends the
    read, as the loop's own would); the built-in ones are read as they are."""
    if isinstance(getattr(type(iterator), "__iter__", None), _SLOT):
        return iterator
    return map(type(iterator).__next__, itertools.repeat(iterator))


_SLOT = type(list.__iter__)


class _Stored(Sequence[Any]):
    """A list or tuple subclass's items as the built-in iterator yields them: its stored items,
    whatever its own ``__len__`` and ``__getitem__`` say (the plain loop uses neither)."""

    __slots__ = ("base", "sequence")

    def __init__(self, sequence: Sequence[Any], base: Any) -> None:
        self.sequence = sequence
        self.base = base

    def __len__(self) -> int:
        return self.base.__len__(self.sequence)  # type: ignore[no-any-return]

    def __getitem__(self, index: Any) -> Any:
        return self.base.__getitem__(self.sequence, index)


def _stored(iterable: Any) -> Sequence[Any]:
    base = next(base for base in (range, list, tuple) if isinstance(iterable, base))
    if type(iterable) is base or (
        type(iterable).__getitem__ is base.__getitem__ and type(iterable).__len__ is base.__len__
    ):
        return iterable  # type: ignore[no-any-return]
    return _Stored(iterable, base)


def _fitting(items: Sequence[Any], kinds: set[type]) -> int:
    """How many of ``items``, from the first, stay within MAX_CHUNK_BYTES once serialized (at
    least one); ``kinds``: their types."""
    if kinds <= _SMALL:
        return len(items)
    if kinds <= _FLAT:
        if kinds <= {str, bytes, bytearray}:
            # A bound at the speed of len(): a character takes at most 4 bytes.
            if sum(map(len, items)) * (4 if str in kinds else 1) <= MAX_CHUNK_BYTES:
                return len(items)
        elif sum(map(sys.getsizeof, items)) <= MAX_CHUNK_BYTES:
            return len(items)
        totals = list(itertools.accumulate(map(sys.getsizeof, items)))
        return max(1, bisect.bisect_right(totals, MAX_CHUNK_BYTES))
    return _pickled_fitting(items)


class _Full(Exception):
    pass


class _Counter:
    """A file that counts what is written to it, and refuses more than ``room`` bytes."""

    __slots__ = ("room", "size")

    def __init__(self, room: int) -> None:
        self.room = room
        self.size = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.add(size)
        return size

    def add(self, size: int) -> None:
        self.size += size
        if self.size > self.room:
            raise _Full


def pickled_within(value: Any, room: int) -> bool:
    """Whether the standard pickle takes ``value`` in ``room`` bytes at most (none of it kept)."""
    try:
        pickle.Pickler(_Counter(room), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except Exception:  # noqa: BLE001 - too large (_Full), or not for the standard pickle
        return False
    return True


def _pickled_fitting(items: Sequence[Any]) -> int:
    """:func:`_fitting` for items of any type, as the standard pickle writes them: it writes
    into a counter, a frame (64 KB) or a large buffer at a time, so none of it is kept."""
    counter = _Counter(MAX_CHUNK_BYTES)
    try:
        pickle.Pickler(counter, protocol=pickle.HIGHEST_PROTOCOL).dump(items)
        return len(items)
    except Exception:  # noqa: BLE001 - too large, or not for the standard pickle: item by item
        pass
    counter = _Counter(MAX_CHUNK_BYTES)
    pickler = pickle.Pickler(counter, protocol=pickle.HIGHEST_PROTOCOL)
    for count, item in enumerate(items):
        try:
            if not _counted(counter, pickler, item):
                # Not for the standard pickle (dill's, far slower to ask): what its state takes.
                pickler = pickle.Pickler(counter, protocol=pickle.HIGHEST_PROTOCOL)
                state = getattr(item, "__dict__", None)
                for value in state.values() if type(state) is dict else (item,):
                    if value is item or not _counted(counter, pickler, value):
                        counter.add(sys.getsizeof(value))
                        pickler = pickle.Pickler(counter, protocol=pickle.HIGHEST_PROTOCOL)
        except _Full:
            return max(1, count)
    return len(items)


def _counted(counter: _Counter, pickler: pickle.Pickler, value: Any) -> bool:
    """Whether ``pickler`` wrote ``value`` into ``counter`` (raises _Full once that is full); if
    not, the counter is as it was, and the pickler is not to be used again."""
    before = counter.size
    try:
        pickler.dump(value)
        return True
    except _Full:
        raise
    except Exception:  # noqa: BLE001 - not for the standard pickle
        counter.size = before
        return False


def _flat_bytes(items: list[Any]) -> int:
    """About what ``items`` of immutable types take serialized: the length of strings and
    bytes (counted faster than their size, and numbers count nothing)."""
    try:
        try:
            return sum(map(len, items))
        except TypeError:  # a number among them
            return sum(map(operator.length_hint, items))
    except OverflowError:  # a range too long for len()
        return sum(map(sys.getsizeof, items))


def _held_bytes(items: list[Any]) -> int:
    """About what ``items`` of an iterator, as :func:`paraloop.items.take` fixed them, take
    serialized: those that can change were serialized when yielded, and a tuple that was not
    holds only items of immutable types (the rest are of immutable types too)."""
    kinds = set(map(type, items))
    size = 0
    if Frozen in kinds:
        size += sum(map(len, map(_DATA, items if len(kinds) == 1 else filter(_FROZEN, items))))
    if tuple in kinds:
        size += _flat_bytes(
            list(itertools.chain.from_iterable(items if len(kinds) == 1 else filter(_TUPLE, items)))
        )
    if not kinds <= {Frozen, tuple}:
        size += _flat_bytes(items)
    return size


class Chunker:
    """Hands out consecutive chunks of ``iterable`` on request.

    ``mode`` says how the backend gets its items (see :mod:`paraloop.items`):
    each item is fixed as the iterable yields it.
    """

    def __init__(self, iterable: Iterable[Any], chunksize: int | None = None, mode: str = COPY) -> None:
        self._sequence: Sequence[Any] | None = None
        self._iterator: Iterator[Any] | None = None
        self.mode = mode
        # Read items one by one until they prove unchangeable (see paraloop.items.take).
        self._careful = True
        self._recent: dict[int, Any] = {}
        # Items of chunks in flight that may come back changed, by chunk: (start, items).
        self.held: dict[int, tuple[int, Sequence[Any]]] = {}
        if sliceable(iterable):
            # Slices of these are cheap and pickle compactly (a range slice is a range).
            self._sequence = _stored(iterable)
        else:
            self._iterator = read_once(iter(iterable))
        self.fixed = chunksize is not None
        self.size = chunksize if chunksize is not None else 1
        self.position = 0
        self.count = 0
        self.exhausted = False
        self.stopped = False
        # An exception the iterable raised, raised after the chunks before it.
        self.error: Exception | None = None
        self._measured = False
        self._floor = 1
        # The bytes per item of the last chunk sent to a worker, once one was sent: a first guess
        # at the next chunk's (each is measured as it is cut, see _slice and _read).
        self._item_bytes = 0.0
        # Whether an iterator's items were other than small numbers (so they are read in pieces),
        # None until some were read; and the bytes per item of the last piece.
        self._varied: bool | None = None
        self._piece_bytes = 1
        self.target = TARGET_SECONDS
        # The threads backend takes chunks from several threads.
        self._lock = threading.Lock()
        # What the iterator's own code changes as it yields (see paraloop.iterable_watch).
        self.watch: IterableWatch | None = None

    def watch_with(self, watch: IterableWatch) -> None:
        """Look at what the body reads as each item comes out of the iterator (a change raises
        out of it, and is taken as the iterable's own exception: the items before it run)."""
        assert self._iterator is not None
        self.watch = watch

    @property
    def reads_iterator(self) -> bool:
        """Whether the items come from an iterator (the program's code may run as they are read)."""
        return self._iterator is not None

    def next(self, minimum: int = 1, maximum: int | None = None, paired_above: int = 0) -> Chunk | None:
        """The next chunk, of ``minimum`` to ``maximum`` items, or None; a fixed size (``chunksize=``)
        ignores ``minimum``, and ``maximum`` cuts it too (``max_iterations_per_worker``).
        ``paired_above``: where more items than this are left of a sequence, the chunk holds two
        at least (the threads backend's many threads, see there)."""
        with self._lock:
            return self._next(minimum, maximum, paired_above)

    def _next(self, minimum: int, maximum: int | None, paired_above: int = 0) -> Chunk | None:
        if self.exhausted or self.stopped:
            return None
        size = self.size
        if not self.fixed:
            wanted = self._sequence is not None and (self._measured or paired_above)
            known = length(self._sequence) if wanted else None
            if known is not None:
                left = known - self.position
                if self._measured:
                    size = min(size, max(self._floor, -(-left // TAIL_SHARE)))
                if paired_above and left > paired_above:
                    minimum = max(minimum, 2)
            # A minimum asked for (the caller finishing a loop itself) may pass MAX_CHUNK for a
            # sequence, whose items are there already (MAX_CHUNK_BYTES still bounds them below);
            # an iterator's read-ahead stays bounded.
            cap = MAX_CHUNK if self._sequence is None else max(MAX_CHUNK, minimum)
            size = min(cap, max(size, minimum))
            if maximum is not None:
                size = max(1, min(size, maximum))
            if self._item_bytes:
                size = max(1, min(size, int(MAX_CHUNK_BYTES // self._item_bytes)))
        elif maximum is not None:
            size = max(1, min(size, maximum))
        # The types of the items, where they were looked at (to measure them).
        kinds: set[type] | None = None
        try:
            if self._sequence is not None:
                items, kinds, ended = self._slice(size)
            else:
                items, kinds, ended = self._read(size)
                refused = self.watch.end(self.position) if self.watch is not None else None
                if refused is not None:
                    raise Partial([], refused)  # see IterableWatch.end
        except Partial as partial:
            # As in a plain loop, the items before the failure still run; the error
            # (the iterable's own, or an item that cannot be used) is raised once
            # their chunks are combined.
            items, self.error, self.exhausted, ended = partial.items, partial.error, True, True
            if self.watch is not None and not isinstance(partial.error, ParaLoopError):
                # The iterable's own exception ended the read: what IterableWatch.end finds
                # refuses the read's items all the same.
                refused = self.watch.end(self.position)
                if refused is not None:
                    items, self.error = [], refused
        payload = None
        if self.mode == COPY and items:
            encoded, payload = self._encoded(items)
            if len(encoded) < len(items):
                items, kinds = encoded, None
        if not items:
            self.exhausted = True
            return None
        chunk = Chunk(self.count, self.position, items, payload)
        if self.mode == COPY and not isinstance(items, range):
            if kinds is None:
                kinds = set(map(type, items))
            if not kinds <= IMMUTABLE:
                # An iteration may change its item in a worker's copy: written back on arrival.
                self.held[chunk.index] = (chunk.start, items)
        self.count += 1
        self.position += len(items)
        if ended:
            self.exhausted = True
        # Until a worker has measured an iteration, chunks stay at one item, so
        # that many workers starting at once do not each take a growing share.
        return chunk

    def _slice(self, size: int) -> tuple[Sequence[Any], set[type] | None, bool]:
        """The next ``size`` items of the sequence, fewer where their bytes reach MAX_CHUNK_BYTES;
        their types (where looked at), and whether the sequence ended."""
        assert self._sequence is not None
        items = self._sequence[self.position : self.position + size]
        ended = len(items) < size
        if self.mode != COPY or isinstance(items, range):
            return items, None, ended
        kinds = set(map(type, items))
        try:
            if not kinds <= IMMUTABLE:
                check_copied(items, self.position)
        except Partial as partial:
            fitting = _fitting(partial.items, set(map(type, partial.items)))
            if fitting < len(partial.items):
                # The item that cannot be copied is found again by a later chunk.
                return partial.items[:fitting], None, False
            raise
        # Cut before the items are serialized (the payload is made from them at once): items
        # grown large after small ones would otherwise all go into a chunk sized while they
        # were small (the bytes of earlier chunks cannot tell).
        fitting = _fitting(items, kinds)
        if fitting < len(items):
            return items[:fitting], None, False
        return items, kinds, ended

    def _read(self, size: int) -> tuple[list[Any], set[type] | None, bool]:
        """The next ``size`` items of the iterator, each fixed as it was yielded, fewer where
        their bytes reach MAX_CHUNK_BYTES; their types (where looked at), and whether it ended."""
        assert self._iterator is not None
        iterator = self._iterator if self.watch is None else self.watch.reading(self._iterator, self.position)
        if self.mode != COPY:
            if self.mode == INLINE:
                size = 1  # as the plain loop: the next item is read once this one ran
            shared, fast = take(iterator, size, self.position, self.mode, self._careful, self._recent)
            self._careful = not fast
            return shared, None, len(shared) < size
        # Copied items are counted as they are read (those that can change were serialized when
        # yielded), PIECE at a time unless they are small numbers: the chunk stops where its
        # bytes reach the bound, so that large items after small ones are not all read at once.
        items: list[Any] = []
        kinds: set[type] | None = set()
        held = 0
        mode, recent, start = self.mode, self._recent, self.position
        try:
            while True:
                want = size - len(items)
                if self._varied is False:
                    # Small numbers so far: read at C speed, unmeasured, the rest of a chunk at once.
                    piece = want
                else:
                    piece = min(want, PIECE, (MAX_CHUNK_BYTES - held) // self._piece_bytes or 1)
                got, fast = take(iterator, piece, start + len(items), mode, self._careful, recent)
                self._careful = not fast
                items += got
                if not got:
                    return items, kinds, True
                if self._varied:
                    kinds = None
                else:
                    got_kinds = set(map(type, got))
                    self._varied = not got_kinds <= _SMALL
                    if kinds is not None:
                        kinds |= got_kinds
                if self._varied:
                    measured = _flat_bytes(got) if fast else _held_bytes(got)
                    held += measured
                    self._piece_bytes = measured // len(got) + 1
                if len(got) < piece:
                    return items, kinds, True
                if len(items) >= size or held >= MAX_CHUNK_BYTES:
                    return items, kinds, False
        except Partial as partial:
            raise Partial(items + partial.items, partial.error) from None

    def _encoded(self, items: Sequence[Any]) -> tuple[Sequence[Any], bytes | None]:
        """The items as a worker process gets them; at an item that cannot be serialized,
        the items before it, the loop's end, and an error naming it (raised once those ran)."""
        try:
            return items, serialize.dumps(items)
        except Exception:  # noqa: BLE001 - find the item, below
            pass
        for offset, item in enumerate(items):
            try:
                serialize.dumps(item)
            except Exception as error:  # noqa: BLE001 - named in the loop's error
                self.error, self.exhausted = unsendable(item, self.position + offset, error), True
                items = items[:offset]
                return items, serialize.dumps(items) if items else None
        # Each alone, but not together: the backend's own attempt raises, as it may.
        return items, None

    def left(self) -> int | None:
        """How many items are still to be handed out, where the iterable has a length."""
        if self._sequence is None or self.exhausted or self.stopped:
            return None
        known = length(self._sequence)
        if known is None:
            return None
        left = known - self.position
        # A __len__ shorter than what the sequence yields: its length is not known after all.
        return left if left >= 0 else None

    def observe(self, items: int, seconds: float, overhead: float = 0.0) -> None:
        """Adapt the size to a worker's time for ``items`` iterations and the caller's overhead."""
        if self.fixed or items <= 0:
            return
        with self._lock:
            self._observe(items, seconds, overhead)

    def _observe(self, items: int, seconds: float, overhead: float) -> None:
        self._measured = True
        if overhead > OVERHEAD_SHARE * seconds:
            self.target = min(MAX_TARGET_SECONDS, max(self.target, overhead / OVERHEAD_SHARE))
        per_item = max(seconds / items, 1e-9)
        wanted = int(self.target / per_item)
        # From the base target, not a grown one: a target grown for large partial results
        # (up to a second) would leave one worker a last chunk of a tenth of a second or
        # more while the other has nothing left, and the caller its whole partial to combine.
        self._floor = max(1, int(TARGET_SECONDS / per_item) // TAIL_FLOOR)
        # Grow fast (one noisy measurement cannot overshoot by more than this).
        self.size = max(1, min(wanted, self.size * GROWTH, MAX_CHUNK))

    def sent(self, items: int, size: int) -> None:
        """A chunk of ``items`` items took ``size`` bytes on its way to a worker."""
        if items > 0:
            with self._lock:
                # The last chunk's, not the largest so far: chunks of small items after large ones
                # grow again (a chunk sized from small items is cut where large ones begin).
                self._item_bytes = size / items

    @property
    def ranged(self) -> bool:
        """Whether the loop runs over a range: any slice of it pickles in a few bytes."""
        return type(self._sequence) is range

    @property
    def returnable(self) -> bool:
        """Whether items of the last chunk may be given back: a sequence's, with no error
        pending after them (an error ends the chunks where it was found)."""
        return self._sequence is not None and self.error is None and not self.stopped

    def give_back(self, chunk: Chunk, ran: int) -> None:
        """Only the first ``ran`` items of ``chunk``, the last chunk handed out, ran: the rest
        are handed out again, from the next chunk on (the caller's chunks stop at a deadline)."""
        with self._lock:
            assert self.returnable and chunk.index == self.count - 1, "not a chunk to give back"
            if ran >= len(chunk.items):
                return
            self.position = chunk.start + ran
            self.exhausted = False
            # Its entry in ``held`` may keep the items given back: the chunk is combined (and
            # its entry dropped) before the next one, which holds them again.

    def stop(self) -> None:
        self.stopped = True

    def release(self) -> None:
        """The loop is over: no chunk follows, and its iterator is let go of, so that a generator
        only the loop held is closed now (its ``finally`` runs), as the plain loop's is when the
        loop ends; not when the threads that read it (the threads backend's) end, a moment later.
        A thread reading an item meanwhile holds the iterator until that read returns."""
        self.stopped = True
        if self._iterator is not None:
            self._iterator = iter(())
