"""Chunk sizes: adapted to measured time, bounded read-ahead, and a balanced end."""

from __future__ import annotations

from paraloop.chunks import MAX_CHUNK, TAIL_SHARE, Chunker


def cut(chunker: Chunker, seconds_per_item: float) -> list[tuple[int, int]]:
    """Every chunk as (start, size), each measured as it comes back."""
    chunks = []
    while (chunk := chunker.next()) is not None:
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
