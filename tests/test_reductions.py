"""Reductions: every strategy and every inferred form gives what the plain loop gives.

Each case runs the same source twice: once as a plain loop (the module is not
rewritten, so ParaLoop iterates sequentially) and once through paraloop with
several worker counts and chunk sizes; the observable results must be equal,
in value, type, key order and identity.
"""

from __future__ import annotations

import textwrap
import warnings
from collections import defaultdict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from conftest import settings_for
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

# Every test here runs on every backend (and start method): the same result on each (docs/backends.md).
pytestmark = pytest.mark.usefixtures("every_backend")
# (fork, threads and the sequential backend run every setting; see conftest.settings_for)

SETTINGS = [(1, None), (2, None), (2, 1), (3, 4)]

PRELUDE = """\
from collections import Counter, OrderedDict, defaultdict, deque
from paraloop import ParaLoop, Variable, aggregation_strategies as s
"""

CASES: dict[str, tuple[str, list[str]]] = {
    "int sum and difference": (
        """
        total = 7
        for i in ParaLoop(range(300), {options}):
            total += i * i
            total -= 1
    """,
        ["total"],
    ),
    "float sum": (
        """
        total = 0.5
        for i in ParaLoop(range(300), {options}):
            total += i / 7
    """,
        ["total"],
    ),
    "product": (
        """
        product = 2
        for i in ParaLoop(range(40), {options}):
            product *= i % 3 + 1
    """,
        ["product"],
    ),
    "max and min": (
        """
        best = -1
        worst = 10**9
        for i in ParaLoop(range(200), {options}):
            best = max(best, (i * 37) % 101)
            worst = min((i * 53) % 97 + 5, worst)
    """,
        ["best", "worst"],
    ),
    "list append, extend, +=": (
        """
        out = [99]
        alias = out
        for i in ParaLoop(range(100), {options}):
            out.append(i)
            out.extend([i, -i])
            out += [i * 10]
    """,
        ["out", "alias"],
    ),
    "reductions inside an inner loop": (
        """
        counts = {}
        total = 0
        longest = 0
        for line in ParaLoop(["a b a", "c", "", "b b a c d"] * 9, {options}):
            for word in line.split():
                counts[word] = 1
                total += 1
                longest = max(longest, len(word))
    """,
        ["counts", "total", "longest"],
    ),
    "defaultdict with a non-zero default": (
        """
        budget = defaultdict(lambda: 100)
        for i in ParaLoop(range(60), {options}):
            budget["x" if i % 2 else "y"] -= 1
        budget = dict(budget)
    """,
        ["budget"],
    ),
    "dict of dicts grown with update": (
        """
        groups = {"odd": {}, "even": {}}
        for i in ParaLoop(range(30), {options}):
            groups["odd" if i % 2 else "even"].update({i: i * i})
    """,
        ["groups"],
    ),
    "or and and keep Python's values": (
        """
        found = None
        zero = 1
        for word in ParaLoop(["apple", "banana", "cherry", "blue"] * 5, {options}):
            found = found or (word if word.startswith("b") else None)
            zero = zero and len(word) - 4
    """,
        ["found", "zero"],
    ),
    "str +=": (
        """
        text = ">"
        for i in ParaLoop(range(100), {options}):
            text += str(i % 10)
    """,
        ["text"],
    ),
    "set add, update, |=": (
        """
        seen = {-1}
        alias = seen
        for i in ParaLoop(range(100), {options}):
            seen.add(i % 7)
            seen.update([i % 11])
            seen |= {i % 13 + 100}
    """,
        ["seen", "alias"],
    ),
    "dict item assignment, later wins": (
        """
        last = {"k5": -1, "z": 0}
        alias = last
        for i in ParaLoop(range(100), {options}):
            last[f"k{i % 10}"] = i
            last.update({"u": i})
    """,
        ["last", "alias"],
    ),
    "Counter item +=": (
        """
        counts = Counter({"seed": 3})
        for i in ParaLoop(range(200), {options}):
            counts[f"w{(i * 7) % 13}"] += 1
            counts.update([f"w{i % 5}"])
    """,
        ["counts"],
    ),
    "defaultdict(int) item +=": (
        """
        counts = defaultdict(int)
        counts["first"] = 1
        for i in ParaLoop(range(200), {options}):
            counts[(i * 7) % 13] += 2
    """,
        ["counts"],
    ),
    "plain dict with its keys item +=": (
        """
        counts = {key: 0 for key in "abcde"}
        for i in ParaLoop(range(200), {options}):
            counts["abcde"[i % 5]] += i
    """,
        ["counts"],
    ),
    "defaultdict(list) grouping": (
        """
        groups = defaultdict(list)
        groups[0].append("before")
        for i in ParaLoop(range(60), {options}):
            groups[i % 4].append(i)
    """,
        ["groups"],
    ),
    "deque append": (
        """
        recent = deque([0], maxlen=1000)
        for i in ParaLoop(range(100), {options}):
            recent.append(i)
    """,
        ["recent"],
    ),
    "preallocated list, some indexes": (
        """
        out = [None] * 50
        alias = out
        for i in ParaLoop(range(50), {options}):
            if i % 3:
                out[i] = i * i
    """,
        ["out", "alias"],
    ),
    "bool |= and &=": (
        """
        found = False
        everything = True
        for i in ParaLoop(range(100), {options}):
            found |= i == 77
            everything &= i < 99
    """,
        ["found", "everything"],
    ),
    "bool or and and": (
        """
        found = False
        everything = True
        for i in ParaLoop(range(100), {options}):
            found = found or i == 77
            everything = i < 99 and everything
    """,
        ["found", "everything"],
    ),
    "Variable strategies": (
        """
        total = Variable(3, aggregation_strategy=s.Sum)
        product = Variable(1, aggregation_strategy=s.Product)
        low = Variable(50, aggregation_strategy=s.Min)
        high = Variable(-5, aggregation_strategy=s.Max)
        joined = Variable(["start"], aggregation_strategy=s.Concatenate)
        merged = Variable({"a": 0}, aggregation_strategy=s.Merge)
        union = Variable({0}, aggregation_strategy=s.Union)
        anything = Variable(False, aggregation_strategy=s.Any)
        every = Variable(True, aggregation_strategy=s.All)
        last = Variable(None, aggregation_strategy=s.Last)
        gcd = Variable(0, aggregation_strategy=s.Reduce(__import__("math").gcd, 0))
        per_key = Variable(Counter(), aggregation_strategy=s.Sum)
        for i in ParaLoop(range(1, 80), {options}):
            total += i
            product *= 1 + (i % 2)
            low = min(low, (i * 31) % 47)
            high = max(high, (i * 31) % 47)
            joined.append(i)
            merged[i % 5] = i
            union.add(i % 9)
            anything = anything or i == 40
            every = every and i > 0
            if i % 10 == 3:
                last = i
            gcd = __import__("math").gcd(gcd, i * 6)
            per_key[i % 4] += i
        # v = min(v, x) rebinds v in a plain loop; compare the values.
        unwrap = lambda v: v.value if isinstance(v, Variable) else v
        total, product, low, high = unwrap(total), unwrap(product), unwrap(low), unwrap(high)
        joined, merged, union = unwrap(joined), unwrap(merged), unwrap(union)
        anything, every, last, gcd, per_key = unwrap(anything), unwrap(every), unwrap(last), unwrap(gcd), unwrap(per_key)
    """,
        [
            "total",
            "product",
            "low",
            "high",
            "joined",
            "merged",
            "union",
            "anything",
            "every",
            "last",
            "gcd",
            "per_key",
        ],
    ),
}


def assert_same(plain: Any, parallel: Any, name: str) -> None:
    assert type(parallel) is type(plain), name
    if isinstance(plain, (float, complex)):
        # Bit for bit (docs/strategies.md): the plain loop's order of roundings.
        assert repr(parallel) == repr(plain), name
        return
    assert parallel == plain, name
    if isinstance(plain, dict):
        assert list(parallel) == list(plain), f"{name}: key order"
        if isinstance(plain, defaultdict):
            assert parallel.default_factory is plain.default_factory
    if hasattr(plain, "maxlen"):
        assert parallel.maxlen == plain.maxlen


@pytest.mark.parametrize("case", list(CASES))
def test_paraloop_gives_the_plain_loops_result(load_module: Loader, case: str, every_backend: str) -> None:
    """Each form and strategy, combined across workers, equals the plain loop."""
    body, names = CASES[case]
    for workers, chunksize in settings_for(every_backend, SETTINGS):
        options = f"num_processes={workers}, chunksize={chunksize}"
        source = PRELUDE + textwrap.dedent(body).replace("{options}", options)
        plain = run_plain(source)
        with warnings.catch_warnings():
            warnings.simplefilter("error", paraloop.ParaLoopWarning)
            module = load_module(source)
        for name in names:
            assert_same(plain[name], getattr(module, name), f"{name} ({options})")
        if "alias" in names:
            assert module.alias is getattr(module, names[0]), "the combined value lost its identity"


def test_inferred_reduction_in_a_function(load_module: Loader) -> None:
    """Inference works on a function's locals, and the int is rebound there."""
    module = load_module(
        PRELUDE
        + textwrap.dedent("""
        def stats(values):
            count = 0
            total = 0.0
            seen = set()
            for v in ParaLoop(values, num_processes=2):
                count += 1
                total += v
                seen.add(round(v))
            return count, total, seen
    """)
    )
    assert module.stats([0.5, 1.5, 2.5]) == (3, 4.5, {0, 2})


def test_numpy_sum_and_preallocated_writes(load_module: Loader) -> None:
    """numpy arrays: += sums elementwise; out[i] = ... writes only those indexes."""
    pytest.importorskip("numpy", reason="numpy is an optional extra (tox installs it)")
    module = load_module(
        PRELUDE
        + textwrap.dedent("""
        import numpy as np
        acc = np.zeros(3)
        out = np.full(20, -1.0)
        alias = out
        for i in ParaLoop(range(20), num_processes=2, chunksize=3):
            acc += np.arange(3) * i
            if i % 2 == 0:
                out[i] = i / 2
    """)
    )
    assert module.acc.tolist() == [0.0, 190.0, 380.0]
    assert module.out.tolist() == [i / 2 if i % 2 == 0 else -1.0 for i in range(20)]
    assert module.alias is module.out


FLOAT_LOOPS = """
import numpy as np
from decimal import Decimal
from fractions import Fraction

cancel = 0
for v in ParaLoop([1e16, 1.0, -1e16, 1.0] * 5, {options}):
    cancel += v

tenths = 0
for i in ParaLoop(range({n}), {options}):
    tenths += 0.1

written = 0.0
for i in ParaLoop(range({n}), {options}):
    written = written + i * 0.37 - 0.01

falling = 100.0
for i in ParaLoop(range(1, {n}), {options}):
    falling -= 1 / i

product = 1.0
for i in ParaLoop(range(1, {n}), {options}):
    product *= 1.0 + 1.0 / i
    product /= 1.0001

waves = 0j
for i in ParaLoop(range({n}), {options}):
    waves += complex(0.1 * i, -0.3) / (i + 1)

narrow = np.float32(0)
for i in ParaLoop(range({n}), {options}):
    narrow += np.float32(i) * np.float32(0.1)

money = Decimal("0")
for i in ParaLoop(range(50), {options}):
    money += Decimal(1) / Decimal(7)

exact = Fraction(0)
for i in ParaLoop(range(1, 40), {options}):
    exact += Fraction(1, i)

rows = np.zeros(4)
for i in ParaLoop(range({n}), {options}):
    rows += np.sin(np.arange(4) * i) * 1e-3 + 1e7 * (i % 2 - 0.5)

per_key = defaultdict(float)
for i in ParaLoop(range({n}), {options}):
    per_key[i % 7] += 0.1 * i + 1e15 * (i % 2 - 0.5)

hist = [0.0] * 5
for i in ParaLoop(range({n}), {options}):
    hist[i % 5] += 1 / (i + 1)

hist_array = np.zeros(5)
for i in ParaLoop(range({n}), {options}):
    hist_array[i % 5] -= 1 / (i + 3)

ok = True
last = "start"
for v in ParaLoop([1, 2, 3, "", "b", 0, "c"], {options}):
    ok = v and ok
    last = v or last
"""

FLOAT_NAMES = [
    "cancel", "tenths", "written", "falling", "product", "waves", "narrow", "money", "exact",
    "rows", "per_key", "hist", "hist_array", "ok", "last",
]  # fmt: skip
# One worker is the plain order already; 2, 3 and 8 cut the loop differently.
FLOAT_WORKERS = [2, 3, 8]


def _bits(value: Any) -> Any:
    """What must be equal, bit for bit: arrays by their bytes and dtype, dicts with their key order."""
    if type(value).__module__ == "numpy":
        return (type(value), str(getattr(value, "dtype", "")), np_bytes(value))
    if isinstance(value, dict):
        return (type(value), [(key, _bits(item)) for key, item in value.items()])
    if isinstance(value, list):
        return (type(value), [_bits(item) for item in value])
    return (type(value), repr(value))


def np_bytes(value: Any) -> bytes:
    import numpy

    return bytes(numpy.asarray(value).tobytes())


@pytest.mark.parametrize("chunksize", [None, 1, 7], ids=["cNone", "c1", "c7"])
def test_floats_have_the_plain_loops_bits(
    load_module: Loader, every_backend: str, chunksize: int | None
) -> None:
    """Float, complex, numpy-float and Decimal sums and products, per key and per index, and the
    reversed and/or forms: the plain loop's values bit for bit, for 2, 3 and 8 workers and
    chunk sizes None, 1 and 7 (under fork, threads and sequentially; spawn, forkserver and Dask
    with 8 workers), as docs/strategies.md promises."""
    pytest.importorskip("numpy", reason="numpy is an optional extra (tox installs it)")
    # Every chunk costs a message (on Dask a task of some milliseconds): small chunks get
    # shorter loops, long enough still for the order of roundings to show.
    n = {1: 40, 7: 120}.get(chunksize or 0, 300)
    for workers in settings_for(every_backend, FLOAT_WORKERS):
        options = f"num_processes={workers}, chunksize={chunksize}"
        source = PRELUDE + FLOAT_LOOPS.replace("{options}", options).replace("{n}", str(n))
        plain = run_plain(source)
        module = load_module(source)
        for name in FLOAT_NAMES:
            assert _bits(getattr(module, name)) == _bits(plain[name]), f"{name} ({options})"
