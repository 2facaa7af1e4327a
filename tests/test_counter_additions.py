"""``counts += Counter(words)`` in a body: an inferred reduction (CONTRACT section 4 names ``x += e``
on a Counter), replayed in the caller.

It was refused ("for a Counter, paraloop combines x[k] += n, x.update(vs)"), found translating a
word-index builder (tests/test_real_hash_loops.py).  Counter's ``+=`` drops the counts that are not
positive after each addition, so a sum of the chunks' partial Counters would keep a count the plain
loop dropped: each added Counter is replayed onto the program's, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from plain_loop import assert_same_as_plain

Loader = Callable[..., ModuleType]

pytestmark = pytest.mark.usefixtures("every_backend")


def test_counters_added_in_the_body_give_the_plain_counter(load_module: Loader) -> None:
    assert_same_as_plain(
        load_module,
        """
        from collections import Counter
        from paraloop import ParaLoop
        sentences = [f"the cat {n % 7} sat on the mat {n % 3}".split() for n in range(60)]
        word_count = Counter(seen=1)
        alias = word_count
        for sentence in ParaLoop(sentences, num_processes=2, chunksize=7):
            word_count += Counter(sentence)
        items = list(word_count.items())
        same_object = alias is word_count
        """,
        ["items", "same_object"],
    )


def test_counts_that_go_to_zero_or_below_are_dropped_as_in_the_plain_loop(load_module: Loader) -> None:
    """a: 1 - 5 drops a, later + 2 brings it back at the end of the order: a sum of partial
    Counters gave a: -2 kept or a's old place."""
    assert_same_as_plain(
        load_module,
        """
        from collections import Counter
        from paraloop import ParaLoop
        deltas = [Counter(a=1), Counter(a=-5), Counter(a=2, b=1), Counter(b=-1), Counter(c=3)] * 7
        balance = Counter(a=1, z=2)
        for delta in ParaLoop(deltas, num_processes=2, chunksize=2):
            balance += delta
        spent = Counter(a=50, b=50)
        for delta in ParaLoop(deltas, num_processes=2, chunksize=3):
            spent -= delta
        items = [list(balance.items()), list(spent.items())]
        """,
        ["items"],
    )
