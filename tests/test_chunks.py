"""Chunk sizes: adapted to measured time, bounded read-ahead, and a balanced end."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from paraloop import ParaLoopError, serialize
from paraloop.chunks import MAX_CHUNK, MAX_CHUNK_BYTES, PIECE, TAIL_SHARE, Chunker


def cut(chunker: Chunker, seconds_per_item: float, paired_above: int = 0) -> list[tuple[int, int]]:
    """Every chunk as (start, size), each measured as it comes back."""
    chunks = []
    while (chunk := chunker.next(paired_above=paired_above)) is not None:
        chunks.append((chunk.start, len(chunk.items)))
        chunker.observe(len(chunk.items), seconds_per_item * len(chunk.items))
    return chunks


def test_chunks_cover_the_sequence_in_order_and_shrink_towards_its_end() -> None:
    n = 200_000
    chunks = cut(Chunker(range(n)), 1e-7)
    starts = [start for start, _ in chunks]
    sizes = [size for _, size in chunks]
    assert starts == [sum(sizes[:k]) for k in range(len(sizes))]
    assert sum(sizes) == n
    assert max(sizes) <= MAX_CHUNK
    # A tenth of the 20 ms target is 20,000 items at 0.1 us each: no chunk past the ramp is
    # more than a quarter of what was left, or that floor.
    for start, size in chunks[3:]:
        assert size <= max(20_000, -(-(n - start) // TAIL_SHARE))
    assert sizes[-2] < max(sizes), "the end is cut finer than the middle"
    assert len(chunks) < 20


def test_an_iterator_of_unknown_length_keeps_full_chunks() -> None:
    sizes = [size for _, size in cut(Chunker(iter(range(300_000))), 1e-7)]
    assert sum(sizes) == 300_000
    assert MAX_CHUNK in sizes[-3:-1]


def test_a_fixed_chunksize_is_kept_to_the_end() -> None:
    sizes = [size for _, size in cut(Chunker(range(1000), chunksize=64), 1e-7)]
    assert sizes == [64] * 15 + [40]


def test_chunks_grown_for_large_partial_results_still_end_finely() -> None:
    """Combining each chunk's result costs the caller as much as the chunk's own time (a word
    count's partial dicts): chunks grow towards a second, but the last ones are cut to a quarter
    of what is left down to a tenth of the 20 ms target, so that no worker is left with a
    tenth of a second of work while the others have nothing (the W4 split benchmark's end)."""
    n, per_item = 1800, 5e-4
    chunker = Chunker(range(n))
    chunks = []
    while (chunk := chunker.next()) is not None:
        size = len(chunk.items)
        chunks.append((chunk.start, size))
        chunker.observe(size, per_item * size, overhead=per_item * size)
    sizes = [size for _, size in chunks]
    assert sum(sizes) == n
    assert max(sizes) > 200, "chunks grew past the 20 ms target (40 items)"
    # 2 ms of work is 4 items at 0.5 ms each.
    for start, size in chunks[3:]:
        assert size <= max(4, -(-(n - start) // TAIL_SHARE)), chunks
    assert sizes[-1] <= 4


def test_a_minimum_asked_for_is_honoured_past_growth_and_max_chunk() -> None:
    """The caller asks for exactly the items it can run within its budget, or for all that is
    left: neither the 16-fold growth limit nor MAX_CHUNK (which are for workers) cut it."""
    chunker = Chunker(range(300_000))
    first = chunker.next()
    assert first is not None and len(first.items) == 1
    chunker.observe(1, 1e-6)
    second = chunker.next(minimum=5_000, maximum=5_000)
    assert second is not None and len(second.items) == 5_000
    rest = chunker.left()
    assert rest == 300_000 - 5_001
    last = chunker.next(minimum=rest, maximum=rest)
    assert last is not None and len(last.items) == rest > MAX_CHUNK


def test_an_iterators_read_ahead_stays_bounded_whatever_minimum_is_asked() -> None:
    chunker = Chunker(iter(range(300_000)))
    chunk = chunker.next(minimum=200_000, maximum=200_000)
    assert chunk is not None and len(chunk.items) == MAX_CHUNK


# --- A range longer than sys.maxsize -------------------------------------------------------------


class _HugeList(list):  # type: ignore[type-arg]
    """A list whose own __len__ cannot be taken (len() raises OverflowError); the plain loop
    iterates its stored items."""

    def __len__(self) -> int:
        return 10**20


def test_a_range_longer_than_maxsize_is_of_unknown_length_and_chunked_lazily() -> None:
    """len() of range(10**20) raises OverflowError: the chunker takes it as a sequence of
    unknown length (no tail rule, no "rest in one chunk"), and slices it lazily from the start."""
    chunker = Chunker(range(10**20))
    assert chunker.left() is None
    first = chunker.next()
    assert first is not None and first.items == range(0, 1)
    chunker.observe(1, 1e-7)  # measured: the tail rule would ask for the length
    second = chunker.next(minimum=100, maximum=100)
    assert second is not None and second.items == range(1, 101)
    assert chunker.left() is None
    huge = _HugeList(range(5))
    with pytest.raises(OverflowError):
        len(huge)
    chunker = Chunker(huge)
    assert chunker.left() == 5
    items = []
    while (chunk := chunker.next(minimum=2)) is not None:
        items.extend(chunk.items)
    assert items == list(range(5))


# --- Read-ahead in bytes when items grow large after small ones ---------------------------------

LARGE = 1_000_000


def _growing() -> list[bytes]:
    """3,000 items of 10 bytes, then 40 of 1 MB (40 MB: more than twice MAX_CHUNK_BYTES)."""
    return [bytes([i % 256]) * 10 for i in range(3000)] + [bytes([i % 256]) * LARGE for i in range(40)]


GROWING: dict[str, Callable[[list[bytes]], Iterable[Any]]] = {
    "list of bytes": list,
    "list of tuples": lambda values: list(enumerate(values)),
    "list of dicts": lambda values: [{"value": value} for value in values],
    "generator of bytes": lambda values: (value for value in values),
    "enumerate": enumerate,
    "generator of dicts": lambda values: ({"value": value} for value in values),
}


@pytest.mark.parametrize("kind", GROWING)
@pytest.mark.parametrize("chunksize", [None, 5000])
def test_items_grown_large_after_small_ones_are_cut_by_bytes(kind: str, chunksize: int | None) -> None:
    """The caller's "all that is left" (minimum=), or a chunksize= given, sized while items were
    small: each chunk stops where its bytes reach MAX_CHUNK_BYTES (a sequence's before they are
    serialized, an iterator's within PIECE items), and the chunks still hold every item once,
    in order, as the plain loop sees them."""
    values = _growing()
    make = GROWING[kind]
    expected = list(make(values))
    iterable = make(values)
    # A sequence's chunk is cut before it is serialized; an iterator's once a piece reached it.
    bound = MAX_CHUNK_BYTES + 1000 if isinstance(iterable, list) else MAX_CHUNK_BYTES + PIECE * (LARGE + 1000)
    chunker = Chunker(iterable, chunksize=chunksize)
    seen: list[Any] = []
    sizes = []
    while (chunk := chunker.next(minimum=len(values))) is not None:
        assert chunk.start == len(seen)
        assert chunk.payload is not None
        assert len(chunk.payload) <= bound
        seen.extend(serialize.loads(chunk.payload))
        sizes.append(len(chunk.items))
    assert chunker.error is None
    assert seen == expected
    if chunksize is not None:
        assert max(sizes) <= chunksize


def test_items_before_one_that_cannot_be_copied_still_run_when_cut_by_bytes() -> None:
    """A chunk cut by bytes before an item that cannot be sent to a worker: the items before it
    all run, in chunks, and the error is raised after them (it is found again)."""
    values: list[Any] = [bytes([i]) * LARGE for i in range(40)]
    with open(__file__) as handle:
        values.append(handle)
        chunker = Chunker(values)
        seen: list[Any] = []
        while (chunk := chunker.next(minimum=len(values))) is not None:
            assert chunker.error is None or len(seen) + len(chunk.items) == 40
            seen.extend(chunk.items)
    assert seen == values[:40]
    assert isinstance(chunker.error, ParaLoopError)
    assert "item 40 of the loop" in str(chunker.error)


def test_chunks_grow_again_after_large_items() -> None:
    """The bytes per item of the last chunk sent, not of the largest so far, bound the next
    chunk's count: small items after large ones go in chunks as large as asked for."""
    chunker = Chunker([bytes([i]) * LARGE for i in range(20)] + [b"x"] * 50_000)
    sizes = []
    while (chunk := chunker.next(minimum=20 if not sizes else 10_000)) is not None:
        assert chunk.payload is not None
        chunker.sent(len(chunk.items), len(chunk.payload))
        sizes.append(len(chunk.items))
    assert sum(sizes) == 50_020
    assert max(sizes) == 10_000


def test_paired_chunks_hold_two_items_until_the_last_ones_then_follow_the_time() -> None:
    """``paired_above`` (the threads backend's many threads): while more items than that are
    left of a sequence, a chunk holds two at least, from the first chunk on; the last ones go one
    by one as the measured time says (iterations of 30 ms against a 20 ms target)."""
    chunks = cut(Chunker(list(range(40))), 0.03, paired_above=6)
    assert chunks == [(start, 2) for start in range(0, 34, 2)] + [(start, 1) for start in range(34, 40)]


@pytest.mark.parametrize(
    ("chunker", "seconds"),
    [
        (Chunker(range(10_000)), 1e-6),  # fast iterations: larger chunks than two already
        (Chunker(iter(range(40))), 0.03),  # an iterator: its length unknown, no pairs
        (Chunker(range(40), chunksize=1), 0.03),  # a chunksize given is kept
    ],
)
def test_paired_chunks_change_nothing_where_chunks_are_larger_or_the_length_unknown(
    chunker: Chunker, seconds: float
) -> None:
    sizes = [size for _, size in cut(chunker, seconds, paired_above=6)]
    if seconds < 1e-3:
        assert sizes[0] == 2 and max(sizes) > 2, sizes
    else:
        assert sizes == [1] * 40
