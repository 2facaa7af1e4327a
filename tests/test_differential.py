"""Differential tests: generated loop bodies give the plain loop's result through paraloop.

Hypothesis generates loop bodies from a small grammar of the statement forms paraloop
supports: inferred reductions on plain names, Variables (Sum, Concatenate, Min, Last),
a per-iteration local ``tmp``, a name ``mark`` bound only in some iterations,
``if``/``else``, an inner plain ``for j`` loop, ``continue``, ``break``,
``for ... else`` and ``raise``.  Each program runs once as a plain loop (the source
exec'd unrewritten, so ``ParaLoop`` iterates sequentially) and once through paraloop
with one drawn (num_processes, chunksize) pair; every accumulator, ``finished``,
``tmp``, ``j``, ``mark`` and the loop variable must come out the same: bound in both or
neither, equal in value and type, lists in the same order, dicts in the same key order.
The generated source is in every assertion message and in Hypothesis's report.
"""

from __future__ import annotations

import textwrap
import warnings
from collections import defaultdict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

# ---------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------

#: Every accumulator the bodies may update, with its pre-loop value.  A body reads
#: none of them except in its own update form, and uses one update form family per
#: name (``total`` only ``+=``/``-=``, ``product`` only ``*=``, ...).
ACCUMULATORS: dict[str, str] = {
    "total": "0",
    "product": "1",
    "best": "-10**9",
    "worst": "10**9",
    "items": "[]",
    "seen": "set()",
    "last_of": "{}",
    "counts": "Counter()",
    "groups": "defaultdict(list)",
    "text": '""',
    "found": "False",
    "every": "True",
    "vsum": "Variable(0, aggregation_strategy=s.Sum)",
    "vjoin": "Variable([], aggregation_strategy=s.Concatenate)",
    "vlow": "Variable(10**9, aggregation_strategy=s.Min)",
    "vlast": "Variable(None, aggregation_strategy=s.Last)",
}

#: Names compared after the loop besides the accumulators (possibly unbound).
OTHER_NAMES = ["finished", "i", "tmp", "j", "mark"]
NAMES = [*ACCUMULATORS, *OTHER_NAMES]

SETTINGS = [(1, None), (2, None), (2, 1), (3, 5)]

PRELUDE = """\
from collections import Counter, defaultdict
from paraloop import ParaLoop, Variable, aggregation_strategies as s
"""

MAX_DEPTH = 2


def indent(lines: list[str], level: int) -> list[str]:
    return ["    " * level + line for line in lines]


def expressions(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Small integer expressions over the readable ``names`` (``i``, ``tmp``, ``j``) and constants."""
    leaves = st.one_of(st.sampled_from(names), st.integers(0, 9).map(str))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner)
        by_constant = st.tuples(inner, st.sampled_from(["%", "//"]), st.integers(1, 9).map(str))
        return st.one_of(binary, by_constant).map(lambda t: f"({t[0]} {t[1]} {t[2]})")

    return st.recursive(leaves, extend, max_leaves=3)


#: Update forms: each accumulator with the only forms it may use.  ``{}`` is an expression.
#: ``mark`` is not an accumulator: a name bound in (some iterations of) the body only.
UPDATES = [
    "total += {}",
    "total -= {}",
    "product *= {} % 3 + 1",
    "best = max(best, {})",
    "best = max({}, best)",
    "worst = min(worst, {})",
    "items.append({})",
    "items.extend([{0}, {0} + 1])",
    "items += [{}]",
    "seen.add({} % 7)",
    "seen.update([{} % 7])",
    "last_of[{0} % 5] = {0}",
    "last_of.update({{{0} % 5: -{0}}})",
    "counts[{} % 4] += 1",
    "counts.update([{} % 4])",
    "groups[{0} % 3].append({0})",
    "text += str({} % 10)",
    "found |= {} % 5 == 0",
    "found = found or {} % 11 == 3",
    "every &= {} % 13 != 0",
    "vsum += {}",
    "vjoin.append({})",
    "vlow = min(vlow, {})",
    "vlast = {}",
    "mark = {}",
]


@st.composite
def update(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    """One update statement, or a reassignment of the per-iteration local ``tmp``."""
    forms = UPDATES + (["tmp = {} % 101"] if "tmp" in names else [])
    return draw(st.sampled_from(forms)).format(draw(expressions(names)))


@st.composite
def condition(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    """``E % K == R`` (holds for some i, usually) or ``i == k`` (for one i, or never)."""
    if draw(st.booleans()):
        modulus = draw(st.integers(2, 7))
        return f"{draw(expressions(names))} % {modulus} == {draw(st.integers(0, modulus - 1))}"
    return f"i == {draw(st.integers(0, 130))}"


@st.composite
def block(draw: st.DrawFn, names: tuple[str, ...], depth: int, jumps: tuple[str, ...]) -> list[str]:
    """A statement list: updates, ``if``/``else`` and an inner ``for j`` loop, nested up to MAX_DEPTH.

    ``jumps`` are the statements that may end an ``if`` block: ``continue``/``break`` of
    the ParaLoop loop, or of the inner plain loop inside it.
    """
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["update"] * 6 + ["if"] * 2 + ["for"])) if depth < MAX_DEPTH else "update"
        if kind == "if":
            lines.append(f"if {draw(condition(names))}:")
            inner = draw(block(names, depth + 1, jumps))
            if jumps and draw(st.integers(0, 2)) == 0:
                inner.append(draw(st.sampled_from(jumps)))
            lines += indent(inner, 1)
            if draw(st.integers(0, 3)) == 0:
                lines += ["else:", *indent(draw(block(names, depth + 1, jumps)), 1)]
        elif kind == "for" and "j" not in names:
            lines.append(f"for j in range({draw(expressions(names))} % 4):")
            lines += indent(draw(block((*names, "j"), depth + 1, ("continue", "break"))), 1)
        else:
            lines.append(draw(update(names)))
    return lines


@st.composite
def iterables(draw: st.DrawFn, nonempty: bool = False) -> tuple[str, list[int]]:
    """The source of the loop's iterable and the items it yields."""
    kind = draw(st.sampled_from(["range", "list", "generator"]))
    if kind == "list":
        values = draw(st.lists(st.integers(-30, 130), min_size=int(nonempty), max_size=60))
        return repr(values), values
    n = draw(st.integers(int(nonempty), 120))
    text = f"range({n})" if kind == "range" else f"(x for x in range({n}))"
    return text, list(range(n))


def loop_header(iterable: str, workers: int, chunksize: int | None) -> str:
    return f"for i in ParaLoop({iterable}, num_processes={workers}, chunksize={chunksize}):"


@st.composite
def first_lines(draw: st.DrawFn) -> tuple[tuple[str, ...], list[str]]:
    """The names a body may read, and its first lines: ``tmp = E`` whenever ``tmp`` is used."""
    if draw(st.booleans()):
        return ("i", "tmp"), ["tmp = " + draw(expressions(("i",)))]
    return ("i",), []


def setup_lines() -> list[str]:
    return [f"{name} = {value}" for name, value in ACCUMULATORS.items()] + ["finished = False"]


@st.composite
def guarded_jump(draw: st.DrawFn, names: tuple[str, ...], values: list[int], jump: str) -> list[str]:
    """``if C: ...; break`` (or continue) where C holds at a drawn item of the loop, or at none."""
    if values and draw(st.booleans()):
        guard = f"i == {draw(st.sampled_from(values))}"
    else:
        guard = draw(condition(names))
    inner = draw(block(names, 1, ())) if draw(st.booleans()) else []
    return [f"if {guard}:", *indent([*inner, jump], 1)]


def top_level_starts(lines: list[str]) -> list[int]:
    """Where a statement may be inserted at the top level of a block: before any of its statements."""
    starts = [index for index, line in enumerate(lines) if not line.startswith((" ", "else:"))]
    return [*starts, len(lines)]


@st.composite
def programs(draw: st.DrawFn) -> str:
    """A whole module: the accumulators, one ParaLoop loop (maybe with else), maybe in a function."""
    iterable, values = draw(iterables())
    names, first = draw(first_lines())
    body = draw(block(names, 0, ("continue", "break")))
    jump = draw(st.sampled_from([None, "break", "break", "continue"]))
    if jump is not None:
        where = draw(st.sampled_from(top_level_starts(body)))
        body[where:where] = draw(guarded_jump(names, values, jump))
    body = first + body
    workers, chunksize = draw(st.sampled_from(SETTINGS))
    loop = [loop_header(iterable, workers, chunksize), *indent(body, 1)]
    if draw(st.booleans()):
        loop += ["else:", "    finished = True"]
    if draw(st.booleans()):
        lines = setup_lines() + loop
    else:
        lines = [
            "def run():",
            *indent(setup_lines() + loop, 1),
            "    return locals()",
            "globals().update(run())",
        ]
    return PRELUDE + "\n".join(lines) + "\n"


@st.composite
def raising_programs(draw: st.DrawFn) -> tuple[str, int]:
    """A function whose loop raises ValueError at item k; a ``finally`` copies its locals out.

    The loop runs in ``run()``; its ``try/finally`` stores ``locals()`` into the
    module-level dict ``state`` however the loop ends, so the test reads the state at
    the moment the exception left the loop both for the plain exec (``namespace["state"]``)
    and for the paraloop module (``module.state``), while ``run()`` itself raises.
    No ``continue`` of the ParaLoop loop comes before the raise and there is no ``break``
    of it, so the loop does reach item k.
    """
    iterable, values = draw(iterables(nonempty=True))
    k = draw(st.sampled_from(values))
    names, body = draw(first_lines())
    body += draw(block(names, 0, ()))
    error = f"ValueError(i, {draw(expressions(names))})" if draw(st.booleans()) else "ValueError(i)"
    body += [f"if i == {k}:", f"    raise {error}"]
    if draw(st.booleans()):
        body += draw(block(names, 0, ("continue",)))
    workers, chunksize = draw(st.sampled_from(SETTINGS))
    loop = [loop_header(iterable, workers, chunksize), *indent(body, 1), "else:", "    finished = True"]
    lines = [
        "state = {}",
        "def run():",
        *indent(setup_lines(), 1),
        "    try:",
        *indent(loop, 2),
        "    finally:",
        "        state.update(locals())",
    ]
    return PRELUDE + "\n".join(lines) + "\n", k


# ---------------------------------------------------------------------------
# Runners and comparison
# ---------------------------------------------------------------------------


def run_paraloop(load_module: Loader, source: str) -> ModuleType:
    """Import the source as a marked module: its loop runs through paraloop."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", paraloop.ParaLoopWarning)
        return load_module(source)


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, paraloop.Variable) else value


def assert_same_names(plain: dict[str, Any], parallel: dict[str, Any], names: list[str], source: str) -> None:
    """Each name is bound in both or neither, with equal value, type and order."""
    for name in names:
        where = f"{name!r} differs for this program:\n{source}"
        assert (name in parallel) == (name in plain), f"bound only in one run: {where}"
        if name not in plain:
            continue
        expected, actual = unwrap(plain[name]), unwrap(parallel[name])
        assert type(actual) is type(expected), f"type {type(actual)} != {type(expected)}: {where}"
        assert actual == expected, f"{actual!r} != {expected!r}: {where}"
        if isinstance(expected, dict):
            assert list(actual) == list(expected), f"key order: {where}"
        if isinstance(expected, defaultdict):
            assert actual.default_factory is expected.default_factory, where


def module_names(module: ModuleType) -> dict[str, Any]:
    return {name: getattr(module, name) for name in NAMES if hasattr(module, name)}


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    # The explain phase traces every line of paraloop too: tens of seconds for a failure.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(source=programs())
def test_generated_loops_equal_the_plain_loop(load_module: Loader, source: str) -> None:
    """A generated loop leaves every accumulator, finished, tmp and i as the plain loop does."""
    note(source)
    expected = run_plain(source)
    module = run_paraloop(load_module, source)
    assert_same_names(expected, module_names(module), NAMES, source)


@PROPERTY_SETTINGS
@given(program=raising_programs())
def test_generated_loops_raise_like_the_plain_loop(load_module: Loader, program: tuple[str, int]) -> None:
    """A raising loop raises the same ValueError and leaves every name as the plain loop does."""
    source, k = program
    note(source)
    expected = run_plain(source)
    with pytest.raises(ValueError) as plain_error, warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        expected["run"]()
    module = run_paraloop(load_module, source)
    with pytest.raises(ValueError) as parallel_error:
        module.run()
    assert plain_error.value.args[0] == k, source
    assert parallel_error.value.args == plain_error.value.args, source
    assert_same_names(expected["state"], module.state, NAMES, source)


# ---------------------------------------------------------------------------
# Regressions found by the properties above (minimal examples)
# ---------------------------------------------------------------------------
#
# One cause: the rewritten code rebinds names after ``__paraloop_rt__.run(...)``
# returns, but when an iteration raises, ``run`` raises and that rebinding is
# skipped.  Containers updated in place and Variables updated in place are right
# (their prefix is combined before the raise); names that must be *rebound* keep
# their pre-loop value or stay unbound.


RAISING_AT_TWO = PRELUDE + textwrap.dedent("""
    total = 0
    last = Variable(None, aggregation_strategy=s.Last)
    try:
        for i in ParaLoop(range(3), num_processes=2):
            total += i
            last = i
            if i == 2:
                raise ValueError(i)
    except ValueError:
        pass
""")


def test_regression_inferred_sum_keeps_the_prefix_after_an_exception(load_module: Loader) -> None:
    """After an exception, a plain ``total += i`` holds the prefix sum 3 (paraloop: the pre-loop 0)."""
    assert run_plain(RAISING_AT_TWO)["total"] == 0 + 1 + 2
    assert run_paraloop(load_module, RAISING_AT_TWO).total == 0 + 1 + 2


def test_regression_loop_variable_after_an_exception(load_module: Loader) -> None:
    """After an exception, the loop variable holds the raising item 2 (paraloop: left unbound)."""
    assert run_plain(RAISING_AT_TWO)["i"] == 2
    assert getattr(run_paraloop(load_module, RAISING_AT_TWO), "i", "unbound") == 2


def test_regression_last_variable_after_an_exception(load_module: Loader) -> None:
    """After an exception, ``last = i`` on a Last Variable holds 2 (paraloop: still None)."""
    assert unwrap(run_plain(RAISING_AT_TWO)["last"]) == 2
    assert unwrap(run_paraloop(load_module, RAISING_AT_TWO).last) == 2
