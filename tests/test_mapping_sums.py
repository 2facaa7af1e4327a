"""Sum combining per-key partials of a mapping (``counts[word] += 1``): the caller's step.

Each chunk's partial holds its keys in the order it first met them; the caller adds them
into the loop's mapping in chunk order.  The result must be the plain loop's: every count,
and the keys in the order of their first occurrence.  Whole-number partials go through a
C-speed path (paraloop.aggregation_strategies.Sum.combine); these tests compare it with the
plain loop's own ``d[k] += v`` over the same terms, for every kind of mapping and value.
"""

from __future__ import annotations

import pickle
from collections import Counter, OrderedDict, defaultdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paraloop.aggregation_strategies import Counts, Sum, counts_for_travel

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f", 1, 2, (3, 4)])
# Whole numbers: float terms are not summed per chunk but replayed in the plain loop's order
# (paraloop.replay; test_reductions.py checks their bits on every backend).
AMOUNTS = st.one_of(st.integers(-(2**70), 2**70), st.booleans())
# Each chunk's terms, in iteration order.
CHUNKS = st.lists(st.lists(st.tuples(KEYS, AMOUNTS), max_size=12), max_size=5)
KINDS = st.sampled_from(["dict", "defaultdict", "Counter", "OrderedDict", "subclass"])


class Tally(dict):  # type: ignore[type-arg]
    """A user's dict subclass that counts its stores: the combine must store through it."""

    stores = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        type(self).stores += 1
        super().__setitem__(key, value)


def _mapping(kind: str, start: dict[Any, int]) -> Any:
    if kind == "defaultdict":
        return defaultdict(int, start)
    if kind == "Counter":
        return Counter(start)
    if kind == "OrderedDict":
        return OrderedDict(start)
    if kind == "subclass":
        return Tally(start)
    return dict(start)


def _add(mapping: Any, key: Any, amount: Any) -> None:
    """The plain loop's ``d[k] += v`` (for a mapping without a default, ``d[k] = d.get(k, 0) + v``,
    the keys the body's own code would give it)."""
    if isinstance(mapping, (defaultdict, Counter)):
        mapping[key] += amount
    else:
        mapping[key] = mapping.get(key, 0) + amount


@given(
    kind=KINDS,
    start=st.dictionaries(KEYS, st.integers(-5, 5), max_size=4),
    chunks=CHUNKS,
    travelled=st.booleans(),
)
def test_per_key_partials_combine_to_the_plain_loops_mapping(
    kind: str, start: dict[Any, int], chunks: list[list[tuple[Any, Any]]], travelled: bool
) -> None:
    """``travelled``: each partial as it comes from a worker process (a word count's dict
    of whole numbers crosses as two lists, paraloop.aggregation_strategies.Counts)."""
    plain = _mapping(kind, start)
    for chunk in chunks:
        for key, amount in chunk:
            _add(plain, key, amount)

    strategy = Sum()
    combined = _mapping(kind, start)
    for chunk in chunks:
        partial = strategy.start(combined)
        for key, amount in chunk:
            _add(partial, key, amount)
        finished = strategy.finish(partial)
        if travelled:
            finished = pickle.loads(pickle.dumps(counts_for_travel(strategy, finished)))
        combined = strategy.combine(combined, finished)

    assert type(combined) is type(plain)
    assert list(combined.items()) == list(plain.items())
    assert [type(v) for v in combined.values()] == [type(v) for v in plain.values()]


def test_a_subclass_that_stores_its_own_way_is_stored_through() -> None:
    """The C-speed path is for dict, defaultdict and Counter: a subclass's ``__setitem__`` runs."""
    Tally.stores = 0
    combined = Sum().combine(Tally(a=1), {"a": 2, "b": 3})
    assert combined == {"a": 3, "b": 3} and Tally.stores == 2


def test_a_default_other_than_zero_starts_new_keys_from_it() -> None:
    """defaultdict(lambda: 100): a key new to the caller's mapping starts at 100, as ``d[k] += 1``."""
    budget: defaultdict[str, int] = defaultdict(lambda: 100, {"x": 1})
    partial = Sum().start(budget)
    partial["x"] += 1
    partial["y"] += 2
    combined = Sum().combine(budget, Sum().finish(partial))
    assert list(combined.items()) == [("x", 2), ("y", 102)]


def test_counts_from_a_worker_onto_a_mapping_of_another_kind_are_stored_through_it() -> None:
    """Counts (a worker's per-key whole numbers, as two lists) added to a mapping the C-speed
    path does not take, such as a user's subclass, go through its ``__setitem__``."""
    Tally.stores = 0
    combined = Sum().combine(Tally(a=1), Counts(["a", "b"], [2, 3]))
    assert list(combined.items()) == [("a", 3), ("b", 3)] and Tally.stores == 2


def test_only_the_built_in_sum_gets_counts() -> None:
    """A user's subclass of Sum may read its partials as mappings: it gets them as they are."""

    class MySum(Sum):
        pass

    partial = {"a": 1}
    assert counts_for_travel(MySum(), partial) is partial
    assert type(counts_for_travel(Sum(), partial)) is Counts
    floats = {"a": 1.5}
    assert counts_for_travel(Sum(), floats) is floats


@pytest.mark.parametrize("nul", [False, True])
def test_many_string_keys_travel_in_runs_and_combine_in_order(nul: bool) -> None:
    """Thousands of string keys (a word count's) cross as NUL-joined runs: split again in the
    caller, every count and the keys' order are the plain loop's; a key holding a NUL itself
    makes the partial travel as a list instead, with the same result."""
    words = [f"w{n}" + ("\0x" if nul and n % 997 == 0 else "") for n in range(7000)]
    chunks = [words[start : start + 3000] + words[:50] for start in range(0, 7000, 2500)]
    plain: defaultdict[str, int] = defaultdict(int)
    for chunk in chunks:
        for word in chunk:
            plain[word] += 1
    strategy = Sum()
    combined: defaultdict[str, int] = defaultdict(int)
    for chunk in chunks:
        partial = strategy.start(combined)
        for word in chunk:
            partial[word] += 1
        travelled = pickle.loads(pickle.dumps(counts_for_travel(strategy, strategy.finish(partial))))
        assert (travelled.runs is None) is nul
        combined = strategy.combine(combined, travelled)
    assert list(combined.items()) == list(plain.items())
