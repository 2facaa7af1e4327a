"""Cutting the loop's iterable into chunks, lazily, with sizes that follow the work.

A chunk is the unit sent to a worker.  One message per iteration is far too
slow for cheap bodies, one huge chunk balances badly for expensive ones, so the
size adapts to the iteration time the workers measure, aiming at chunks of a
few tens of milliseconds.  Sizes depend on measured times only, never on the
number of workers.  The iterable is read one chunk at a time, when a worker is
free to take it, so read-ahead is bounded by the number of chunks in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import serialize
from .items import COPY, IMMUTABLE, INLINE, Partial, check_copied, take, unsendable

__all__ = ["Chunk", "Chunker"]

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


@dataclass
class Chunk:
    index: int
    start: int
    items: Sequence[Any]
    # The items serialized for a worker process (the COPY mode), once.
    payload: bytes | None = None

    def _replace_items(self, items: Any) -> Chunk:
        return Chunk(self.index, self.start, items)


def _sliceable(iterable: Iterable[Any]) -> bool:
    """A range, list or tuple whose iteration is the built-in one (a subclass may iterate otherwise)."""
    for base in (range, list, tuple):
        if isinstance(iterable, base):
            return type(iterable).__iter__ is base.__iter__
    return False


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
        if _sliceable(iterable):
            # Slices of these are cheap and pickle compactly (a range slice is a range).
            self._sequence = _stored(iterable)
        else:
            self._iterator = iter(iterable)
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
        # The largest size an item had when sent to a worker (bytes), once one was sent.
        self._item_bytes = 0.0
        self.target = TARGET_SECONDS
        # The threads backend takes chunks from several threads.
        self._lock = threading.Lock()

    def next(self, minimum: int = 1, maximum: int | None = None) -> Chunk | None:
        """The next chunk, of ``minimum`` to ``maximum`` items, or None; a fixed size (``chunksize=``)
        ignores ``minimum``, and ``maximum`` cuts it too (``max_iterations_per_worker``)."""
        with self._lock:
            return self._next(minimum, maximum)

    def _next(self, minimum: int, maximum: int | None) -> Chunk | None:
        if self.exhausted or self.stopped:
            return None
        size = self.size
        if not self.fixed:
            if self._sequence is not None and self._measured:
                left = len(self._sequence) - self.position
                size = min(size, max(self._floor, -(-left // TAIL_SHARE)))
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
        try:
            if self._sequence is not None:
                items: Sequence[Any] = self._sequence[self.position : self.position + size]
                if self.mode == COPY and not isinstance(items, range):
                    check_copied(items, self.position)
            else:
                assert self._iterator is not None
                if self.mode == INLINE:
                    size = 1  # as the plain loop: the next item is read once this one ran
                items, fast = take(
                    self._iterator, size, self.position, self.mode, self._careful, self._recent
                )
                self._careful = not fast
        except Partial as partial:
            # As in a plain loop, the items before the failure still run; the error
            # (the iterable's own, or an item that cannot be used) is raised once
            # their chunks are combined.
            items, self.error, self.exhausted = partial.items, partial.error, True
        payload = None
        if self.mode == COPY and items:
            items, payload = self._encoded(items)
        if not items:
            self.exhausted = True
            return None
        chunk = Chunk(self.count, self.position, items, payload)
        if self.mode == COPY and not isinstance(items, range) and not set(map(type, items)) <= IMMUTABLE:
            # An iteration may change its item in a worker's copy: written back on arrival.
            self.held[chunk.index] = (chunk.start, items)
        self.count += 1
        self.position += len(items)
        if len(items) < size:
            self.exhausted = True
        # Until a worker has measured an iteration, chunks stay at one item, so
        # that many workers starting at once do not each take a growing share.
        return chunk

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
        left = len(self._sequence) - self.position
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
                self._item_bytes = max(self._item_bytes, size / items)

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
