"""A set the loop fills iterates in the plain loop's order, on every backend.

A set's iteration order follows the order its elements were added in (two elements whose
hashes collide in its table take their places in the order they came).  paraloop united the
chunks' sets (``result |= partial``), each in its own order, so the result held the right
elements in another order than the plain loop's: a vocabulary numbered in set order after the
loop (``index = {w: n for n, w in enumerate(vocabulary)}``) came out numbered otherwise, on every
backend, sequential included (found translating a one-hot encoding script, session 44).  The
caller now adds each chunk's new elements in the order the chunk first added them
(aggregation_strategies.Union).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from types import ModuleType

import pytest
from plain_loop import assert_same_as_plain

Loader = Callable[..., ModuleType]

pytestmark = pytest.mark.usefixtures("every_backend")

_WORDS = """
    words = [f"w{n * 7919 % 1500}x" for n in range(4000)]
    options = dict(num_processes=2, chunksize=97)
"""


def _same_order(load_module: Loader, body: str, names: list[str]) -> None:
    assert_same_as_plain(load_module, textwrap.dedent(_WORDS) + textwrap.dedent(body), names)


def test_a_set_filled_by_add_iterates_in_the_plain_order(load_module: Loader) -> None:
    _same_order(
        load_module,
        """
        from paraloop import ParaLoop
        vocabulary = set()
        for word in ParaLoop(words, **options):
            vocabulary.add(word)
        order = list(vocabulary)
        """,
        ["order"],
    )


def test_a_set_filled_by_update_from_a_non_empty_start_iterates_in_the_plain_order(
    load_module: Loader,
) -> None:
    _same_order(
        load_module,
        """
        from paraloop import ParaLoop
        seen = {"w1x", "w2x", "start"}
        for word in ParaLoop(words, **options):
            seen.update([word, word + "!"])
        order = list(seen)
        """,
        ["order"],
    )


def test_a_union_variable_iterates_in_the_plain_order(load_module: Loader) -> None:
    _same_order(
        load_module,
        """
        from paraloop import ParaLoop, Variable
        from paraloop.aggregation_strategies import Union
        vocabulary = Variable(set(), aggregation_strategy=Union)
        for word in ParaLoop(words, **options):
            vocabulary.add(word)
        order = list(vocabulary.value)
        """,
        ["order"],
    )


def test_a_set_comprehension_iterates_in_the_plain_order(load_module: Loader) -> None:
    _same_order(
        load_module,
        """
        from paraloop import ParaLoop
        vocabulary = {word for word in ParaLoop(words, **options)}
        order = list(vocabulary)
        """,
        ["order"],
    )
