"""What paraloop refuses, and how: the exception class, the file, the exact line, the fix."""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import paraloop

Loader = Callable[..., ModuleType]

HEADER = "from paraloop import ParaLoop, Variable, aggregation_strategies as s\n"


def line_of(source: str, needle: str) -> int:
    """The 1-based line of ``needle`` in the module load_module writes (marker line first)."""
    lines = ("# paraloop: enable\n" + textwrap.dedent(source)).splitlines()
    return next(number for number, text in enumerate(lines, 1) if needle in text)


@pytest.mark.parametrize(
    "body,needle,words",
    [
        (
            "x = 1\nfor i in ParaLoop(range(9), num_processes=2):\n    x = x * 2 + i\n",
            "x = x * 2",
            ["'x'", "next", "sequential by nature"],
        ),
        (
            "out = [3, 1]\nfor i in ParaLoop(range(9), num_processes=2):\n    out.sort()\n",
            "out.sort",
            ["'out'", "list", "once after the loop"],
        ),
        (
            "items = [1, 2]\nfor i in ParaLoop(range(9), num_processes=2):\n    items.pop()\n",
            "items.pop",
            ["'items'"],
        ),
        (
            "out = []\nfor i in ParaLoop(range(9), num_processes=2):\n    out.insert(0, i)\n",
            "out.insert",
            ["'out'"],
        ),
        (
            "total = 0\nfor i in ParaLoop(range(9), num_processes=2):\n    total += i\n    print(total)\n",
            "print(total)",
            ["reads 'total'", "after the loop"],
        ),
        (
            "total = 1\nfor i in ParaLoop(range(9), num_processes=2):\n    total += i\n    total *= 2\n",
            "total += i",
            ["cannot combine", "'total'", "total *= 2"],
        ),
        (
            "out = []\nfor i in ParaLoop(range(9), num_processes=2):\n    out.append(i)\n    out[0] = i\n",
            "out.append",
            ["cannot combine", "'out'"],
        ),
        (
            "v = Variable([], aggregation_strategy=s.Concatenate)\n"
            "for i in ParaLoop(range(9), num_processes=2):\n    v.append(i)\n    n = len(v)\n",
            "n = len(v)",
            ["reads the Variable 'v'"],
        ),
        (
            "groups = {}\nfor i in ParaLoop(range(9), num_processes=2):\n    groups.setdefault(i % 2, [0]).append(i)\n",
            "setdefault",
            ["'groups'", "defaultdict", "groups[key].append(v)"],
        ),
    ],
)
def test_outer_names_that_cannot_be_combined(
    load_module: Loader, body: str, needle: str, words: list[str]
) -> None:
    """Carried values, order-dependent mutations and reads of reductions raise ParaLoopError with line and fix."""
    source = HEADER + body
    with pytest.raises(paraloop.ParaLoopError) as caught:
        load_module(source)
    message = str(caught.value)
    assert f", line {line_of(source, needle)}:" in message
    assert ".py, line" in message
    for word in words:
        assert word in message


def test_a_method_that_changes_the_users_own_object_is_refused(load_module: Loader) -> None:
    """obj.update(x) that changes an object of the user's class: never lost silently (section 5)."""
    source = HEADER + textwrap.dedent("""
        class Model:
            def __init__(self):
                self.seen = 0
            def update(self, batch):
                self.seen += 1
        model = Model()
        for i in ParaLoop(range(6), num_processes=2, backend="processes"):
            model.update(i)
    """)
    with pytest.raises(paraloop.ParaLoopError) as caught:
        load_module(source)
    message = str(caught.value)
    assert f"line {line_of(source, 'for i in ParaLoop')}:" in message
    assert "changed 'model'" in message and "Model" in message


def test_a_method_that_only_reads_the_users_own_object_is_fine(load_module: Loader) -> None:
    module = load_module(
        HEADER
        + textwrap.dedent("""
        class Model:
            def __init__(self):
                self.weight = 3
            def predict(self, x):
                return self.weight * x
        model = Model()
        out = []
        for i in ParaLoop(range(6), num_processes=2, backend="processes"):
            out.append(model.predict(i))
    """)
    )
    assert module.out == [0, 3, 6, 9, 12, 15]


def test_attribute_of_an_outer_object(load_module: Loader) -> None:
    """self.hits += 1 and self.items.append(x) in a body are refused with the line."""
    source = HEADER + textwrap.dedent("""
        class Counter:
            def __init__(self):
                self.hits = 0
                self.items = []
            def count(self, values):
                for v in ParaLoop(values, num_processes=2):
                    self.hits += 1
            def collect(self, values):
                for v in ParaLoop(values, num_processes=2):
                    self.items.append(v)
    """)
    module = load_module(source)
    with pytest.raises(paraloop.ParaLoopError, match=rf"line {line_of(source, 'self.hits += 1')}:.*'self'"):
        module.Counter().count([1, 2])
    with pytest.raises(
        paraloop.ParaLoopError, match=rf"line {line_of(source, 'self.items.append')}:.*'self'"
    ):
        module.Counter().collect([1, 2])


def test_assigned_before_read_is_not_a_dependency(load_module: Loader) -> None:
    """A name the body assigns before reading it is per-iteration, not carried."""
    module = load_module(
        HEADER
        + textwrap.dedent("""
        x = 100
        total = Variable(0, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(10), num_processes=2):
            x = i * 2
            x += 1
            total += x
    """)
    )
    assert module.total.value == sum(i * 2 + 1 for i in range(10))
    assert module.x == 19


def test_mutating_a_variable_is_fine(load_module: Loader) -> None:
    """The same forms on a Variable are combined, not refused."""
    module = load_module(
        HEADER
        + textwrap.dedent("""
        out = Variable([], aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(5), num_processes=2):
            out.append(i)
            out += [i]
    """)
    )
    assert module.out.value == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize(
    "body,needle,phrase",
    [
        ("def f(xs):\n    for x in ParaLoop(xs):\n        yield x\n", "yield x", "cannot 'yield'"),
        ("def f(xs):\n    for x in ParaLoop(xs):\n        yield from x\n", "yield from", "cannot 'yield'"),
        ("async def f(xs):\n    for x in ParaLoop(xs):\n        await x\n", "await x", "cannot 'await'"),
        ("async def f(xs):\n    async for x in ParaLoop(xs):\n        pass\n", "async for", "'async for'"),
        (
            "async def f(xs, lock):\n    for x in ParaLoop(xs):\n        async with lock:\n            pass\n",
            "async with",
            "'async with'",
        ),
        (
            "def f(xs):\n    return [y for y in ParaLoop(xs) if (z := y)]\n",
            ":=",
            "assignment expression",
        ),
        ("make = lambda: [x * x for x in ParaLoop(range(3))]\n", "make", "for' statement"),
        ("loop = ParaLoop(range(3))\n", "loop =", "for' statement"),
        ("d = {}\nfor d['k'] in ParaLoop(range(3)):\n    pass\n", "for d[", "name or a tuple of names"),
        ("for x in ParaLoop(range(3)):\n    return x\n", "return x", "'return' outside function"),
        ("for __paraloop_x in ParaLoop(range(3)):\n    pass\n", "__paraloop_x", "reserved"),
    ],
)
def test_unsupported_loops_are_refused_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, needle: str, phrase: str
) -> None:
    """Unsupported loops raise UnsupportedLoopError, a SyntaxError with file, line and offset."""
    source = "# paraloop: enable\n" + HEADER + body
    module_name = f"refused_module_{abs(hash((body, needle)))}"
    path = tmp_path / f"{module_name}.py"
    path.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.raises(paraloop.UnsupportedLoopError) as caught:
        importlib.import_module(module_name)
    error = caught.value
    assert isinstance(error, SyntaxError)
    assert error.filename == str(path)
    expected_line = next(n for n, text in enumerate(source.splitlines(), 1) if needle in text)
    assert error.lineno == expected_line
    assert error.offset is not None and error.offset >= 1
    assert phrase in error.msg


def test_user_syntax_errors_come_from_the_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain syntax error in a marked module is Python's own SyntaxError, not ours."""
    (tmp_path / "broken_module.py").write_text("# paraloop: enable\nx = (\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.raises(SyntaxError) as caught:
        importlib.import_module("broken_module")
    assert not isinstance(caught.value, paraloop.UnsupportedLoopError)
    assert caught.value.filename == str(tmp_path / "broken_module.py")


def test_walrus_that_may_not_run_is_a_carried_value(load_module: Loader) -> None:
    """A := in a short-circuited operand may not assign: reading the name later is refused."""
    with pytest.raises(paraloop.ParaLoopError, match="'last' carries a value"):
        load_module(
            HEADER
            + textwrap.dedent("""
            last = None
            out = []
            for i in ParaLoop(range(6), num_processes=2):
                if i % 4 == 1 and (last := i):
                    pass
                out.append(last)
        """)
        )


def test_match_whose_cases_all_bind_is_not_a_dependency(load_module: Loader) -> None:
    """A name every case of a match binds (with a catch-all case) is per-iteration."""
    module = load_module(
        HEADER
        + textwrap.dedent("""
        out = []
        for item in ParaLoop([(1, 2), 3, (4, 5)], num_processes=2, chunksize=1):
            match item:
                case (a, b):
                    pass
                case _:
                    a = 0
            out.append(a)
    """)
    )
    assert module.out == [1, 0, 4]
