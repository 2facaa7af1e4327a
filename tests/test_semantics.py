"""Sequential semantics of the constructs docs/semantics.md lists, run for real."""

from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable
from types import ModuleType

import pytest
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

# Every test here runs on every backend (and start method): the same result on each (docs/backends.md).
pytestmark = pytest.mark.usefixtures("every_backend")

START_METHODS = ["fork", "forkserver", "spawn"]


def same_as_plain(load_module: Loader, source: str, names: list[str]) -> ModuleType:
    expected = run_plain(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", paraloop.ParaLoopWarning)
        module = load_module(textwrap.dedent(source))
    for name in names:
        assert getattr(module, name) == expected[name], name
        assert type(getattr(module, name)) is type(expected[name]), name
    return module


@pytest.mark.parametrize("method", START_METHODS)
def test_comprehensions_keep_order_and_type(load_module: Loader, method: str) -> None:
    """List, set and dict comprehensions over ParaLoop equal the plain ones, in order."""
    same_as_plain(
        load_module,
        f"""
        from paraloop import ParaLoop
        offset = 3
        options = dict(num_processes=2, chunksize=3, start_method={method!r})
        squares = [x * x + offset for x in ParaLoop(range(40), **options) if x % 3]
        pairs = [(x, y) for x in ParaLoop(range(6), **options) for y in range(x)]
        residues = {{x % 7 for x in ParaLoop(range(50), **options)}}
        table = {{f"k{{x % 5}}": x for x in ParaLoop(range(23), **options)}}
        table_keys = list(table)
        total = sum(x for x in ParaLoop(range(100), **options))
    """,
        ["squares", "pairs", "residues", "table", "table_keys", "total"],
    )


# An endless iterable that counts the items read from it.
COUNTED = """
        import itertools
        from paraloop import ParaLoop
        pulled = 0
        def numbers():
            global pulled
            for n in itertools.count():
                pulled += 1
                yield n
"""


def test_generator_expression_stays_lazy(load_module: Loader) -> None:
    """A generator expression over ParaLoop runs nothing until iterated, and yields in order."""
    module = load_module(
        COUNTED
        + """
        doubled = (n * 2 for n in ParaLoop(numbers(), num_processes=2, chunksize=4))
        pulled_before = pulled
        first = [next(doubled) for _ in range(10)]
    """
    )
    assert module.pulled_before == 0
    assert module.first == [n * 2 for n in range(10)]
    # Its threads (threads backend) wait for it to be read on until it is closed.
    module.doubled.close()


def test_a_generator_expression_left_half_read_stops_pulling(load_module: Loader) -> None:
    """Nobody takes more of it: after the chunks read ahead, its endless iterable is not
    read any further (the threads backend once ran it forever, into an unbounded queue)."""
    module = load_module(
        COUNTED
        + """
        doubled = (n * 2 for n in ParaLoop(numbers(), num_processes=2, chunksize=1))
        first = [next(doubled) for _ in range(3)]
    """
    )
    assert module.first == [0, 2, 4]
    # Wait until the reading settles (it does within a few chunks), at most 5 s.
    deadline = time.monotonic() + 5
    last, since = module.pulled, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < 1.0:
        time.sleep(0.05)
        if module.pulled != last:
            last, since = module.pulled, time.monotonic()
    assert time.monotonic() - since >= 1.0 and module.pulled < 1000, (
        f"{module.pulled} items pulled for 3 taken"
    )
    module.doubled.close()


def test_comprehension_in_a_function_uses_locals_and_closures(load_module: Loader) -> None:
    """Comprehensions in functions see locals, parameters and outer functions' variables."""
    module = load_module("""
        from paraloop import ParaLoop
        def outer(scale):
            def inner(rows):
                return [[value * scale for value in row] for row in ParaLoop(rows, num_processes=2)]
            return inner
    """)
    assert module.outer(10)([[1, 2], [3]]) == [[10, 20], [30]]


def test_exception_in_a_comprehension(load_module: Loader) -> None:
    """An exception in a comprehension element is raised with its type and the iteration."""
    module = load_module("""
        from paraloop import ParaLoop
        def build():
            return [10 // (x - 17) for x in ParaLoop(range(40), num_processes=2, chunksize=5)]
    """)
    with pytest.raises(ZeroDivisionError) as caught:
        module.build()
    text = "".join(getattr(caught.value, "__notes__", [])) + str(caught.value.__cause__)
    assert "iteration 17" in text


def test_nested_plain_loops_keep_their_own_control_flow(load_module: Loader) -> None:
    """break, continue and else of loops inside the body belong to those loops."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        found = Variable([], aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(30), num_processes=2, chunksize=4):
            for j in range(2, i):
                if i % j == 0:
                    break
            else:
                found.append(i)
            k = 0
            while True:
                k += 1
                if k < 3:
                    continue
                break
            found.append(-k)
        found = found.value
    """,
        ["found"],
    )


def test_defs_lambdas_walrus_and_closures_in_the_body(load_module: Loader) -> None:
    """Functions, lambdas, comprehensions and := inside the body work as in a plain loop."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        base = 100
        results = []
        for i in ParaLoop(range(20), num_processes=2, chunksize=3):
            def shifted(x, by=i):
                return x + by + base
            double = lambda y: y * 2
            evens = [v for v in range(i) if v % 2 == 0]
            if (n := len(evens)) > 3:
                results.append((shifted(n), double(n)))
    """,
        ["results", "n", "evens"],
    )


def test_method_reads_self_and_uses_super(load_module: Loader) -> None:
    """A loop in a method reads self and calls super() as the plain loop would."""
    module = load_module("""
        from paraloop import ParaLoop
        class Base:
            factor = 3
            def shift(self, v):
                return v + 100
        class Scaler(Base):
            def __init__(self, offset):
                self.offset = offset
            def shift(self, v):
                return -1
            def apply(self, values):
                out = []
                for v in ParaLoop(values, num_processes=2):
                    out.append(super().shift(v * self.factor) + self.offset)
                return out
    """)
    assert module.Scaler(1).apply([1, 2, 3]) == [104, 107, 110]


def test_break_in_a_function_with_else_and_names(load_module: Loader) -> None:
    """After break, names hold the breaking iteration's values; else does not run."""
    module = load_module("""
        from paraloop import ParaLoop
        def search(items, wanted):
            note = "none"
            for position, item in ParaLoop(list(enumerate(items)), num_processes=2, chunksize=2):
                label = f"{position}:{item}"
                if item == wanted:
                    break
            else:
                note = "not found"
            return position, label, note
    """)
    assert module.search(list("abcdefg"), "e") == (4, "4:e", "none")
    assert module.search(list("abc"), "z") == (2, "2:c", "not found")


def test_global_and_nonlocal_in_the_body(load_module: Loader) -> None:
    """global and nonlocal declared in a body act as in a plain loop."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        count = 0
        names = []
        def tally(items):
            for item in ParaLoop(items, num_processes=2):
                global count, names
                count += item
                names.append(str(item))
        tally([1, 2, 3])
        def outer():
            total = 10
            def inner(xs):
                for x in ParaLoop(xs, num_processes=2):
                    nonlocal total
                    total += x
            inner([1, 2])
            return total
        result = outer()
        for i in ParaLoop(range(3), num_processes=2):
            global last
            last = i
    """,
        ["count", "names", "result", "last"],
    )


def test_names_assigned_on_every_path_are_per_iteration(load_module: Loader) -> None:
    """A name assigned on every path before it is read is per-iteration, not carried."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        label = "before"
        labels = []
        for i in ParaLoop(range(12), num_processes=2, chunksize=2):
            if i % 2:
                label = "odd"
            else:
                label = "even"
            try:
                value = 10 // (i % 4)
            except ZeroDivisionError:
                value = -1
            labels.append((label, value))
    """,
        ["labels", "label", "value"],
    )


def test_private_names_in_classes(load_module: Loader) -> None:
    """__private names bound in a method's or class body's loop come back (name mangling)."""
    module = load_module("""
        from paraloop import ParaLoop
        class C:
            for __i in ParaLoop(range(4), num_processes=2):
                pass
            def m(self):
                for i in ParaLoop(range(4), num_processes=2, chunksize=2):
                    __last = i * 10
                return __last
        result = C().m()
        hidden = C._C__i
    """)
    assert (module.result, module.hidden) == (30, 3)


def test_return_from_a_nested_paraloop(load_module: Loader) -> None:
    """return inside a ParaLoop nested in a ParaLoop body returns the plain value."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        def nested(rows):
            for r in ParaLoop(rows, num_processes=2, chunksize=1):
                for v in ParaLoop(r):
                    if v < 0:
                        return (r, v)
            return "none"
        found = nested([[1, 2], [3, -1, -2], [-5]])
        nothing = nested([[1], [2]])
    """,
        ["found", "nothing"],
    )


def test_comprehension_in_a_class_body_skips_class_names(load_module: Loader) -> None:
    """As in Python, a comprehension in a class body does not see the class's names."""
    same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        k = 1
        class A:
            k = 100
            vals = [x * k for x in ParaLoop(range(3), num_processes=2)]
        vals = A.vals
    """,
        ["vals"],
    )
