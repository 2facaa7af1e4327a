"""What the loop's iterable changes as it yields, that the body reads (paraloop.iterable_watch).

The plain loop runs each iteration just after its item is yielded, so a generator that sets a
global (or an entry of a dict) before each ``yield`` gives each iteration its own value.  paraloop
reads items ahead, and its iterations read the values of when the loop began: such a loop is
refused (CONTRACT sections 1 and 5, no silent loss; section 6, a refusal whose advice works), and
the sequential backend, which reads each item just before its iteration, gives the plain result.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import use_backend

from paraloop import ParaLoopError

SETS_A_GLOBAL = """
from paraloop import ParaLoop

SCALE = 1


def scaled(n):
    global SCALE
    for i in range(n):
        SCALE = i
        yield i


def run(n):
    out = []
    for i in ParaLoop(scaled(n)):
        out.append(i * SCALE)
    return out
"""

SETS_A_DICT_ENTRY = """
from paraloop import ParaLoop

config = {"scale": 1}


def scaled(n):
    for i in range(n):
        config["scale"] = i
        yield i


def run(n):
    out = []
    for i in ParaLoop(scaled(n)):
        out.append(i * config["scale"])
    return out
"""

IN_A_FUNCTION = """
from paraloop import ParaLoop


def run(n):
    config = {"scale": 1}

    def scaled():
        for i in range(n):
            config["scale"] = i
            yield i

    out = []
    for i in ParaLoop(scaled()):
        out.append(i * config["scale"])
    return out
"""

IN_A_COMPREHENSION = """
from paraloop import ParaLoop

SCALE = 1


def scaled(n):
    global SCALE
    for i in range(n):
        SCALE = i
        yield i


def run(n):
    return [i * SCALE for i in ParaLoop(scaled(n))]
"""

_REBINDING_GENERATOR = """
from paraloop import ParaLoop


def run(n):
    scale = 1

    def scaled():
        nonlocal scale
        for i in range(n):
            scale = i
            yield i
"""

REBINDS_A_VARIABLE = (
    _REBINDING_GENERATOR
    + """
    out = []
    for i in ParaLoop(scaled()):
        out.append(i * scale)
    return out
"""
)

REBINDS_A_VARIABLE_IN_A_COMPREHENSION = (
    _REBINDING_GENERATOR
    + """
    return [i * scale for i in ParaLoop(scaled())]
"""
)

SOURCES = {
    "global": SETS_A_GLOBAL,
    "dict-entry": SETS_A_DICT_ENTRY,
    "in-a-function": IN_A_FUNCTION,
    "comprehension": IN_A_COMPREHENSION,
    # A generator nested in the function rebinds the function's variable (seen since session 35:
    # the generated code hands the runtime a reader of each variable, paraloop/live_names.py).
    "nonlocal": REBINDS_A_VARIABLE,
    "nonlocal-comprehension": REBINDS_A_VARIABLE_IN_A_COMPREHENSION,
}


@pytest.mark.parametrize("kind", SOURCES)
def test_a_generator_that_changes_what_the_body_reads_is_refused_or_runs_as_written(
    load_module: Any, every_backend: str, kind: str
) -> None:
    """Plain: the squares.  Before: the values of the loop's start, silently ([0, 1, 2, ...]
    for the global, [0, 0, 0, ...] for the dict on most backends); sequentially too for the
    global (its body read the value captured at the loop's start)."""
    module = load_module(SOURCES[kind])
    if every_backend == "sequential":
        assert module.run(30) == [i * i for i in range(30)]
        return
    with pytest.raises(ParaLoopError) as refused:
        module.run(30)
    message = str(refused.value)
    loop_line = next(
        number for number, text in enumerate(SOURCES[kind].splitlines(), 2) if "in ParaLoop(" in text
    )
    assert f"{module.__file__}, line {loop_line}:" in message
    assert "the loop's iterable changed" in message
    expected = {"global": "'SCALE'", "comprehension": "'SCALE'", "nonlocal": "the variable 'scale'"}
    assert expected.get(kind.replace("nonlocal-comprehension", "nonlocal"), "'config'") in message
    assert "Yield what the body needs with each item" in message


FOLLOWS_THE_ADVICE = """
from paraloop import ParaLoop

SCALE = 1
config = {"scale": 1}


def scaled(n):
    global SCALE
    for i in range(n):
        SCALE = i
        config["scale"] = i
        yield i, SCALE, config["scale"]


def run(n):
    out = []
    for i, value, entry in ParaLoop(scaled(n)):
        out.append(i * value + entry)
    return out
"""


def test_the_refusal_s_advice_gives_the_plain_result(load_module: Any, every_backend: str) -> None:
    """Yielding the value with the item, as the refusal says: the plain result on every backend
    (the iterable still changes SCALE and config, which the body no longer reads)."""
    module = load_module(FOLLOWS_THE_ADVICE)
    assert module.run(30) == [i * i + i for i in range(30)]


UNREAD_OR_UNCHANGED = """
from paraloop import ParaLoop

SCALE = 2.5
COUNT = 0
config = {"scale": 3}


def items(n):
    global COUNT, SCALE
    for i in range(n):
        COUNT += 1  # the body never reads it
        SCALE = float("2.5")  # a new float, equal to the old one
        config["scale"] = 3  # the same entry again
        yield i


def run(n):
    out = []
    for i in ParaLoop(items(n)):
        out.append(i * SCALE * config["scale"])
    return out
"""


def test_what_the_body_does_not_read_or_what_stays_equal_is_not_refused(
    load_module: Any, every_backend: str
) -> None:
    module = load_module(UNREAD_OR_UNCHANGED)
    assert module.run(40) == [i * 2.5 * 3 for i in range(40)]
    assert module.COUNT == 40


SETS_IT_AFTER_ITEMS_RAN = """
from paraloop import ParaLoop

SCALE = 1


def scaled(n):
    global SCALE
    for i in range(n):
        if i == 20:
            SCALE = 100
        yield i


def run(n):
    out = []
    try:
        for i in ParaLoop(scaled(n), chunksize=5):
            out.append(i * SCALE)
    except Exception as error:  # noqa: BLE001 - the test reads it
        return out, error
    return out, None
"""


@pytest.mark.parametrize("backend", ["fork", "threads"])
def test_the_items_before_the_change_run_and_leave_their_results(
    load_module: Any, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The iterable rebinds SCALE at item 20 (chunks of 5): the iterations before the chunk whose
    read saw the change ran, with the value they read in the plain loop too; the refusal comes
    after them, as an iteration's exception does."""
    use_backend(backend, request, monkeypatch)
    module = load_module(SETS_IT_AFTER_ITEMS_RAN)
    out, error = module.run(40)
    assert isinstance(error, ParaLoopError)
    assert "item 20" in str(error)
    assert out == list(range(20))


CACHED_BETWEEN_READS = """
import functools

from paraloop import ParaLoop


class Table:
    def __init__(self, n):
        self.n = n

    @functools.cached_property
    def scale(self):
        return self.n * 2


table = Table(3)


def items(n):
    yield from range(n)


def run(n):
    out = []
    for i in ParaLoop(items(n)):
        out.append(i * table.scale)
    return out
"""


def test_what_the_body_caches_on_an_object_between_reads_is_not_the_iterable_s_change(
    load_module: Any, every_backend: str
) -> None:
    """The body's first read of a ``cached_property`` stores its value on the object (in the
    caller's chunks, on the program's own object), between two reads of items: not a change the
    iterable made (compared with the loop's start, the object's pickle differs)."""
    module = load_module(CACHED_BETWEEN_READS)
    assert module.run(40) == [i * 6 for i in range(40)]


# A generator expression over ParaLoop, read item by item, the program changing what it reads in
# between (session 31's adversary, F10): its items were computed ahead, with the values of when
# it was made, silently.

EXPRESSION_SOURCES = {
    "global": """
from paraloop import ParaLoop

S = 1


def run(n):
    g = (i * S for i in ParaLoop(range(n)))
    first = [next(g) for _ in range(3)]
    global S
    S = 7
    return first + list(g)
""",
    "dict-entry": """
from paraloop import ParaLoop

scale = {"k": 1}


def run(n):
    g = (i * scale["k"] for i in ParaLoop(range(n)))
    first = [next(g) for _ in range(3)]
    scale["k"] = 7
    return first + list(g)
""",
    "local": """
from paraloop import ParaLoop


def run(n):
    s = 1
    g = (i * s for i in ParaLoop(range(n)))
    first = [next(g) for _ in range(3)]
    s = 7
    return first + list(g)
""",
    "outer-function-local": """
from paraloop import ParaLoop


def run(n):
    S = 1

    def expression():
        return (i * S for i in ParaLoop(range(n)))

    g = expression()
    first = [next(g) for _ in range(3)]
    S = 7
    return first + list(g)
""",
    "local-before-the-first-item": """
from paraloop import ParaLoop


def run(n):
    s = 1
    g = (i * s for i in ParaLoop(range(n)))
    s = 7
    return list(g)
""",
    "before-the-first-item": """
from paraloop import ParaLoop

S = 1


def run(n):
    g = (i * S for i in ParaLoop(range(n)))
    global S
    S = 7
    return list(g)
""",
}

EXPRESSION_PLAIN = {
    "global": [0, 1, 2] + [i * 7 for i in range(3, 40)],
    "dict-entry": [0, 1, 2] + [i * 7 for i in range(3, 40)],
    "local": [0, 1, 2] + [i * 7 for i in range(3, 40)],
    "outer-function-local": [0, 1, 2] + [i * 7 for i in range(3, 40)],
    "local-before-the-first-item": [i * 7 for i in range(40)],
    "before-the-first-item": [i * 7 for i in range(40)],
}


@pytest.mark.parametrize("kind", EXPRESSION_SOURCES)
def test_a_generator_expression_read_item_by_item_is_refused_or_sees_the_change(
    load_module: Any, every_backend: str, kind: str
) -> None:
    """Plain: each item computed when asked for, with the values of then.  Refused (the program's
    change is seen when the next item, or the next chunk's, is asked for); the sequential backend
    computes each item when asked for: the plain result.  A change before the first item was asked
    for: the plain result everywhere."""
    module = load_module(EXPRESSION_SOURCES[kind])
    if every_backend == "sequential" or kind.endswith("before-the-first-item"):
        # Its names are read when its first item is asked for, as Python reads them: nothing of it
        # was computed before the change.
        assert module.run(40) == EXPRESSION_PLAIN[kind]
        return
    with pytest.raises(ParaLoopError) as refused:
        module.run(40)
    message = str(refused.value)
    assert f"{module.__file__}, line " in message
    assert "the program changed" in message and "generator expression" in message
    assert {"dict-entry": "'scale'", "local": "the variable 's'"}.get(kind, "'S'") in message
    assert "Read the expression whole (list(...)) before changing what it reads" in message


READ_WHOLE_FIRST = """
from paraloop import ParaLoop

S = 1
scale = {"k": 1}


def run(n):
    g = (i * S * scale["k"] for i in ParaLoop(range(n)))
    items = list(g)
    global S
    S = 7
    scale["k"] = 5
    return items + [sum(i * S for i in ParaLoop(range(n)))]
"""


def test_a_generator_expression_read_whole_before_the_change_gives_the_plain_result(
    load_module: Any, every_backend: str
) -> None:
    """The refusal's advice: read the expression whole, then change what it read; a new expression
    made after the change reads the new values."""
    module = load_module(READ_WHOLE_FIRST)
    assert module.run(40) == [*range(40), sum(i * 7 for i in range(40))]


UNREAD_BETWEEN_ITEMS = """
from paraloop import ParaLoop

S = 3
seen = []


def run(n):
    out = []
    for value in (i * S for i in ParaLoop(range(n))):
        seen.append(value)  # the expression never reads seen
        out.append(value)
    return out
"""


def test_what_the_program_changes_between_items_that_the_expression_does_not_read_is_not_refused(
    load_module: Any, every_backend: str
) -> None:
    module = load_module(UNREAD_BETWEEN_ITEMS)
    assert module.run(40) == [i * 3 for i in range(40)]
    assert module.seen == [i * 3 for i in range(40)]


SETS_A_NESTED_ENTRY = """
from paraloop import ParaLoop

config = {"sizes": [1, 1], "name": "run"}


def sized(n):
    for i in range(n):
        config["sizes"][0] = i
        yield i


def run(n):
    out = []
    for i in ParaLoop(sized(n)):
        out.append(i * config["sizes"][0])
    return out
"""


def test_a_change_deeper_in_a_container_the_body_reads_is_refused(
    load_module: Any, every_backend: str
) -> None:
    """A list inside the dict the body reads, changed in place by the generator: seen when the read
    of items ends (the dict's own entries are the same objects), and refused from that read's first
    item; sequentially, the plain result."""
    module = load_module(SETS_A_NESTED_ENTRY)
    if every_backend == "sequential":
        assert module.run(30) == [i * i for i in range(30)]
        return
    with pytest.raises(ParaLoopError, match="'config' \\(in place: dict\\)"):
        module.run(30)
