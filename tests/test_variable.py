"""Variable behaves like the value it wraps; custom strategies plug in; numpy values work."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Callable
from types import ModuleType

import pytest

import paraloop
from paraloop import Variable
from paraloop import aggregation_strategies as s

Loader = Callable[..., ModuleType]


def test_variable_behaves_like_its_value() -> None:
    """Operators, indexing, len, iteration, in, str and format act on the wrapped value."""
    number = Variable(7, aggregation_strategy=s.Sum)
    assert number + 1 == 8 and 1 + number == 8 and number * 2 == 14 and -number == -7
    assert number == 7 and number < 8 and str(number) == "7" and f"{number:03d}" == "007"
    assert int(number) == 7 and float(number) == 7.0 and [0] * 8 == [0] * (number + 1)
    number += 5
    assert isinstance(number, Variable) and number.value == 12
    items = Variable([3, 1, 2], aggregation_strategy=s.Concatenate)
    assert len(items) == 3 and 1 in items and list(items) == [3, 1, 2] and items[0] == 3
    items.append(4)
    items[0] = 30
    assert items.value == [30, 1, 2, 4] and sorted(items) == [1, 2, 4, 30]
    table = Variable({"a": 1}, aggregation_strategy=s.Merge)
    table["b"] = 2
    assert table.get("b") == 2 and dict(table.items()) == {"a": 1, "b": 2}
    copy = pickle.loads(pickle.dumps(table))
    assert isinstance(copy, Variable) and copy.value == table.value


@pytest.mark.parametrize(
    "value,strategy,reason",
    [
        ([], s.Sum, "Concatenate"),
        ({1}, s.Sum, "Union"),
        ("text", s.Sum, "Concatenate"),
        (3, s.Concatenate, "not int"),
        ([1], s.Merge, "dicts"),
        ([1], s.Union, "sets"),
        ({"a": 1}, s.IndexWrites, "list, bytearray or numpy array"),
    ],
)
def test_mismatched_strategy_is_refused_at_creation(value: object, strategy: type, reason: str) -> None:
    """A strategy that cannot combine the value is refused when the Variable is made, with why."""
    with pytest.raises(paraloop.ParaLoopError, match=reason):
        Variable(value, aggregation_strategy=strategy)


def test_strategy_must_be_a_strategy() -> None:
    """Passing something that is not a strategy says what to pass."""
    with pytest.raises(paraloop.ParaLoopError, match="not an aggregation strategy"):
        Variable(0, aggregation_strategy=sum)  # type: ignore[arg-type]


def test_custom_strategy_from_the_docs(load_module: Loader) -> None:
    """A user's own strategy, defined in the module, combines like the plain loop."""
    module = load_module(
        textwrap.dedent("""
        from paraloop import ParaLoop, Variable, aggregation_strategies

        class Longest(aggregation_strategies.AggregationStrategy):
            def start(self, value):
                return ""
            def combine(self, accumulated, partial):
                return partial if len(partial) > len(accumulated) else accumulated

        words = ["pear", "banana", "fig", "cherry", "kiwi", "tomato"] * 5
        longest = Variable("", aggregation_strategy=Longest)
        for word in ParaLoop(words, num_processes=2, chunksize=2):
            if len(word) > len(longest):
                longest = word
    """)
    )
    assert module.longest.value == "banana"


def test_min_and_max_may_be_read_in_their_update(load_module: Loader) -> None:
    """if x < best: best = x on a Min/Max Variable gives the sequential answer."""
    module = load_module(
        textwrap.dedent("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        best = Variable(10**9, aggregation_strategy=s.Min)
        for i in ParaLoop(range(1, 200), num_processes=2, chunksize=7):
            x = (i * 7919) % 1009
            if x < best:
                best = x
    """)
    )
    assert module.best.value == min((i * 7919) % 1009 for i in range(1, 200))


def test_numpy_variables(load_module: Loader) -> None:
    """Sum, Product and Concatenate (first axis) on numpy arrays equal the plain loop."""
    numpy = pytest.importorskip("numpy", reason="numpy is an optional extra (tox installs it)")
    module = load_module(
        textwrap.dedent("""
        import numpy as np
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        total = Variable(np.ones(3), aggregation_strategy=s.Sum)
        scale = Variable(np.ones(2), aggregation_strategy=s.Product)
        rows = Variable(np.zeros((1, 2)), aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(1, 12), num_processes=2, chunksize=3):
            total += np.arange(3) * i
            scale *= np.array([1.0, 2.0]) if i % 5 == 0 else np.ones(2)
            rows = np.concatenate([rows, [[i, -i]]])
    """)
    )
    assert module.total.value.tolist() == (1 + numpy.arange(3) * sum(range(1, 12))).tolist()
    assert module.scale.value.tolist() == [1.0, 4.0]
    expected_rows = [[0.0, 0.0]] + [[float(i), float(-i)] for i in range(1, 12)]
    assert module.rows.value.tolist() == expected_rows
    assert type(module.total.value) is numpy.ndarray
