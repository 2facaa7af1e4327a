"""Every refusal names a fix that works (docs/troubleshooting.md).

Each case is a loop paraloop refuses, the words its message must contain (the
fix it names, or that the loop is sequential by nature), and the same loop with
that fix applied: the fixed loop must run through paraloop and give exactly what
it gives as a plain loop.  A refusal that sends the user to another refusal
fails here.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from conftest import run_script
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = """\
from collections import Counter, defaultdict
import threading
import numpy as np
from paraloop import ParaLoop, Variable, aggregation_strategies as s
"""

# name: (refused body, words in the refusal, fixed body, names compared afterwards)
CASES: dict[str, tuple[str, list[str], str, list[str]]] = {
    "a recurrence is sequential by nature": (
        """
        x = 1
        for i in ParaLoop(range(9)):
            x = x * 2 + i
        """,
        ["'x'", "sequential by nature", "without ParaLoop"],
        """
        x = 1
        for i in range(9):
            x = x * 2 + i
        """,
        ["x"],
    ),
    "a value kept from an earlier iteration is sequential by nature": (
        """
        last = None
        out = []
        for i in ParaLoop(range(12)):
            if i % 3 == 0:
                last = i
            out.append(last)
        """,
        ["'last'", "sequential by nature"],
        """
        out = []
        for i in ParaLoop(range(12)):
            last = i - i % 3
            out.append(last)
        """,
        ["out", "last"],
    ),
    "a sort in the body moves after the loop": (
        """
        out = [5]
        for i in ParaLoop(range(20)):
            out.append((i * 7) % 11)
            out.sort()
        """,
        ["'out'", "once after the loop", "out.append(v)"],
        """
        out = [5]
        for i in ParaLoop(range(20)):
            out.append((i * 7) % 11)
        out.sort()
        """,
        ["out"],
    ),
    "an attribute counter becomes a plain name": (
        """
        class Box:
            hits = 0
        box = Box()
        for i in ParaLoop(range(10)):
            box.hits += i
        result = box.hits
        """,
        ["hits = 0 before the loop", "hits += 1 in the body"],
        """
        class Box:
            hits = 0
        box = Box()
        hits = 0
        for i in ParaLoop(range(10)):
            hits += i
        box.hits += hits
        result = box.hits
        """,
        ["result"],
    ),
    "an attribute list becomes a plain list": (
        """
        class Box:
            def __init__(self):
                self.items = [0]
        box = Box()
        for i in ParaLoop(range(10)):
            box.items.append(i * i)
        result = box.items
        """,
        ["items = [] before", "self.items.extend(items) after"],
        """
        class Box:
            def __init__(self):
                self.items = [0]
        box = Box()
        items = []
        for i in ParaLoop(range(10)):
            items.append(i * i)
        box.items.extend(items)
        result = box.items
        """,
        ["result"],
    ),
    "reading a running total: read it after the loop": (
        """
        total = 0
        seen = []
        for i in ParaLoop(range(10)):
            total += i
            seen.append(total)
        """,
        ["'total'", "Read it after the loop", "sequential by nature"],
        """
        total = 0
        for i in ParaLoop(range(10)):
            total += i
        seen = [total]
        """,
        ["total", "seen"],
    ),
    "mixing += and *= is sequential by nature": (
        """
        x = 1
        for i in ParaLoop(range(1, 8)):
            x += i
            x *= 2
        """,
        ["'x'", "sequential by nature"],
        """
        x = 1
        for i in range(1, 8):
            x += i
            x *= 2
        """,
        ["x"],
    ),
    "a form the type does not combine names the forms it does": (
        """
        seen = set()
        for i in ParaLoop(range(10)):
            seen -= {i}
        """,
        ["for a set, paraloop combines", "x.add(v)"],
        """
        seen = set()
        for i in ParaLoop(range(10)):
            seen.add(i % 4)
        """,
        ["seen"],
    ),
    "a buffer written by element and read: overwrite it whole first": (
        """
        x = np.arange(24.0).reshape(4, 6)
        out = np.zeros(6)
        buf = np.zeros(4)
        for i in ParaLoop(range(6)):
            for j in range(4):
                buf[j] = x[j, i] * 2
            out[i] = buf.sum()
        """,
        ["'buf'", "buf[:] = 0", "its own copy"],
        """
        x = np.arange(24.0).reshape(4, 6)
        out = np.zeros(6)
        buf = np.zeros(4)
        for i in ParaLoop(range(6)):
            buf[:] = 0
            for j in range(4):
                buf[j] = x[j, i] * 2
            out[i] = buf.sum()
        """,
        ["out", "buf"],
    ),
    "a method kept in a name: update the list in the body": (
        """
        out = []
        add = out.append
        for i in ParaLoop(range(10)):
            add(i)
        """,
        ["changed 'add'", "x.append(v)"],
        """
        out = []
        for i in ParaLoop(range(10)):
            out.append(i)
        """,
        ["out"],
    ),
    "a write through a view: write at the iteration's own row": (
        """
        A = np.zeros((4, 3))
        for i in ParaLoop(range(4)):
            row = A[i]
            row[:] = i + 1
        """,
        ["'A'", "out[i, :] = ..."],
        """
        A = np.zeros((4, 3))
        for i in ParaLoop(range(4)):
            A[i, :] = i + 1
        """,
        ["A"],
    ),
    "a closure's nonlocal total: update it in the body": (
        """
        def run():
            total = 0
            def add(v):
                nonlocal total
                total += v
            for v in ParaLoop(range(10)):
                add(v)
            return total
        result = run()
        """,
        ["'total'", "total += v"],
        """
        def run():
            total = 0
            for v in ParaLoop(range(10)):
                total += v
            return total
        result = run()
        """,
        ["result"],
    ),
    "a running maximum written with if becomes max()": (
        """
        biggest = 0
        for v in ParaLoop([3, 9, 2, 9, 7, 1]):
            if v > biggest:
                biggest = v
        """,
        ["'biggest' is a running maximum written with if", "biggest = max(biggest, v)"],
        """
        biggest = 0
        for v in ParaLoop([3, 9, 2, 9, 7, 1]):
            biggest = max(biggest, v)
        """,
        ["biggest"],
    ),
    "a running minimum written with if becomes min()": (
        """
        least = 100.0
        for v in ParaLoop([3.5, 9.0, 2.25, 9.0, 7.0, 1.5]):
            if least > v:
                least = v
        """,
        ["'least' is a running minimum written with if", "least = min(least, v)"],
        """
        least = 100.0
        for v in ParaLoop([3.5, 9.0, 2.25, 9.0, 7.0, 1.5]):
            least = min(least, v)
        """,
        ["least"],
    ),
    "a global a called function rebinds, besides the body's own update": (
        """
        cnt = 0
        def bump():
            global cnt
            cnt += 1
        for x in ParaLoop(range(6)):
            cnt += 1
            bump()
        """,
        ["rebound the global 'cnt'"],
        """
        cnt = 0
        def bump():
            return 1
        for x in ParaLoop(range(6)):
            cnt += 1
            cnt += bump()
        """,
        ["cnt"],
    ),
    "whole-number entries that turn float: start them as floats": (
        """
        sums = defaultdict(int)
        for i in ParaLoop(range(40), chunksize=4):
            sums[i % 3] += i / 3
        """,
        ["'sums'", "defaultdict(float)"],
        """
        sums = defaultdict(float)
        for i in ParaLoop(range(40), chunksize=4):
            sums[i % 3] += i / 3
        """,
        ["sums"],
    ),
    "a Variable whose strategy accumulates, read in the body": (
        """
        v = Variable(0, aggregation_strategy=s.Sum)
        flags = []
        for i in ParaLoop(range(10)):
            v += i
            flags.append(v > 10)
        result = v.value
        """,
        ["'v'", "Read it after the loop"],
        """
        v = Variable(0, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(10)):
            v += i
        result = v.value
        flags = [result > 10]
        """,
        ["result", "flags"],
    ),
    "a Variable changed by a method its strategy cannot combine": (
        """
        v = Variable([], aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(10)):
            v.insert(0, i)
        result = v.value
        """,
        ["'v'", "+=, append"],
        """
        v = Variable([], aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(10)):
            v.append(i)
        result = v.value[::-1]
        """,
        ["result"],
    ),
    "a generator that sets a global the body reads: yield it with the item": (
        """
        SCALE = 1
        def rows(n):
            global SCALE
            for i in range(n):
                SCALE = i % 4
                yield i
        out = []
        for i in ParaLoop(rows(24)):
            out.append(i * SCALE)
        """,
        ["'SCALE'", "Yield what the body needs with each item", "yield item, SCALE"],
        """
        SCALE = 1
        def rows(n):
            global SCALE
            for i in range(n):
                SCALE = i % 4
                yield i, SCALE
        out = []
        for i, scale in ParaLoop(rows(24)):
            out.append(i * scale)
        """,
        ["out", "SCALE"],
    ),
    "a generator that rebinds a total the body combines into: sequential by nature": (
        """
        total = 0
        def rows(n):
            global total
            for i in range(n):
                if i == 12:
                    total = 1000
                yield i
        for i in ParaLoop(rows(24)):
            total += i
        """,
        ["'total'", "which the body combines into", "sequential by nature", "plain for loop"],
        """
        total = 0
        def rows(n):
            global total
            for i in range(n):
                if i == 12:
                    total = 1000
                yield i
        for i in rows(24):
            total += i
        """,
        ["total"],
    ),
    "a generator that sets a dict's entry the body reads: yield it with the item": (
        """
        config = {"scale": 1}
        def rows(n):
            for i in range(n):
                config["scale"] = i % 4
                yield i
        out = []
        for i in ParaLoop(rows(24)):
            out.append(i * config["scale"])
        """,
        ["'config' (in place: dict)", "Yield what the body needs with each item"],
        """
        config = {"scale": 1}
        def rows(n):
            for i in range(n):
                config["scale"] = i % 4
                yield i, config["scale"]
        out = []
        for i, scale in ParaLoop(rows(24)):
            out.append(i * scale)
        """,
        ["out", "config"],
    ),
}


# Caught while the loop runs (see paraloop.guard and paraloop.iterable_watch), on every backend
# but the sequential one, which runs the plain loop in the caller: there the refused loop gives
# the plain result.
CAUGHT_RUNNING = {
    "a generator that sets a global the body reads: yield it with the item",
    "a generator that sets a dict's entry the body reads: yield it with the item",
    "a method kept in a name: update the list in the body",
    "a write through a view: write at the iteration's own row",
    "a closure's nonlocal total: update it in the body",
}


def _load(load_module: Loader, body: str) -> ModuleType:
    return load_module(PRELUDE + textwrap.dedent(body))


def _line_of(body: str, text: str) -> int:
    """The line of ``body``'s first line holding ``text``, as _load writes the module."""
    lines = ("# paraloop: enable\n" + PRELUDE + textwrap.dedent(body)).splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _same(plain: Any, parallel: Any) -> bool:
    if type(plain).__module__ == "numpy":
        return bool(type(parallel) is type(plain) and (plain == parallel).all())
    return bool(type(plain) is type(parallel) and plain == parallel)


def _assert_plain(module: ModuleType, body: str, names: list[str]) -> None:
    plain = run_plain(PRELUDE + textwrap.dedent(body))
    for name in names:
        assert _same(plain[name], getattr(module, name)), (name, plain[name], getattr(module, name))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_refusal_names_a_fix_that_works(case: str, load_module: Loader, every_backend: str) -> None:
    refused, words, fixed, names = CASES[case]
    if every_backend == "sequential" and case in CAUGHT_RUNNING:
        _assert_plain(_load(load_module, refused), refused, names)
    else:
        with pytest.raises(paraloop.ParaLoopError) as caught:
            _load(load_module, refused)
        for word in words:
            assert word in str(caught.value), (word, str(caught.value))
    _assert_plain(_load(load_module, fixed), fixed, names)


def test_the_refusal_of_a_captured_lock_names_threads(load_module: Loader) -> None:
    refused = """
        lock = threading.Lock()
        out = []
        for i in ParaLoop(range(6), backend="processes"):
            with lock:
                out.append(i)
    """
    with pytest.raises(paraloop.ParaLoopError, match="backend='threads'"):
        _load(load_module, refused)
    module = _load(load_module, refused.replace('"processes"', '"threads"'))
    assert module.out == list(range(6))


def test_items_changed_in_place_come_back_into_the_callers_items(load_module: Loader) -> None:
    """Dicts, lists, arrays and objects changed in a worker are written back (docs/semantics.md)."""
    source = """
        class Record:
            def __init__(self, n):
                self.n = n
        records = [{"n": n} for n in range(6)]
        objects = [Record(n) for n in range(6)]
        matrix = np.arange(1.0, 13.0).reshape(6, 2)
        for record, thing, row in ParaLoop(list(zip(records, objects, matrix)), backend="processes", chunksize=2):
            record["square"] = record["n"] ** 2
            thing.seen = True
            row /= row.sum()
        result = (records, [vars(t) for t in objects], matrix.tolist())
    """
    assert _load(load_module, source).result == run_plain(PRELUDE + textwrap.dedent(source))["result"]


def test_the_refusal_of_an_item_changed_in_place_names_enumerate_and_threads(load_module: Loader) -> None:
    """An item paraloop cannot change from outside (its class has __slots__) is refused, with fixes."""
    refused = """
        class Point:
            __slots__ = ("x",)
            def __init__(self, x):
                self.x = x
        points = [Point(n) for n in range(6)]
        for point in ParaLoop(points, backend="processes"):
            point.x = point.x * 2
        result = [point.x for point in points]
    """
    with pytest.raises(paraloop.ParaLoopError, match="ParaLoop\\(enumerate\\(items\\)\\)"):
        _load(load_module, refused)
    fixed = """
        class Point:
            __slots__ = ("x",)
            def __init__(self, x):
                self.x = x
        points = [Point(n) for n in range(6)]
        doubled = [None] * len(points)
        for position, point in ParaLoop(enumerate(points), backend="processes"):
            doubled[position] = point.x * 2
        for point, x in zip(points, doubled):
            point.x = x
        result = [point.x for point in points]
    """
    assert _load(load_module, fixed).result == run_plain(PRELUDE + textwrap.dedent(fixed))["result"]
    threads = _load(load_module, refused.replace('"processes"', '"threads"'))
    assert threads.result == run_plain(PRELUDE + textwrap.dedent(refused))["result"]


def test_the_refusal_of_an_open_file_item_names_its_path(load_module: Loader, tmp_path: Any) -> None:
    for n in range(3):
        (tmp_path / f"f{n}.txt").write_text(f"line {n}\n")
    refused = f"""
        import os
        folder = {str(tmp_path)!r}
        handles = [open(os.path.join(folder, f"f{{n}}.txt")) for n in range(3)]
        lines = []
        for handle in ParaLoop(handles, backend="processes"):
            lines.append(handle.read())
    """
    with pytest.raises(paraloop.ParaLoopError, match="file's path, and open it in the body"):
        _load(load_module, refused)
    fixed = f"""
        import os
        folder = {str(tmp_path)!r}
        paths = [os.path.join(folder, f"f{{n}}.txt") for n in range(3)]
        lines = []
        for path in ParaLoop(paths, backend="processes"):
            with open(path) as handle:
                lines.append(handle.read())
    """
    assert _load(load_module, fixed).lines == ["line 0\n", "line 1\n", "line 2\n"]


def test_the_refusal_of_enumerate_around_paraloop_names_the_wrapped_form(load_module: Loader) -> None:
    with pytest.raises(paraloop.UnsupportedLoopError, match=r"ParaLoop\(enumerate\(xs\)\)"):
        _load(load_module, "xs = [3, 4]\nfor i, x in enumerate(ParaLoop(xs)):\n    pass\n")
    module = _load(
        load_module, "xs = [3, 4]\nout = {}\nfor i, x in ParaLoop(enumerate(xs)):\n    out[i] = x\n"
    )
    assert module.out == {0: 3, 1: 4}


def test_the_refusal_of_an_attribute_target_names_assigning_after_the_loop(load_module: Loader) -> None:
    refused = "class C:\n    pass\nc = C()\nfor c.x in ParaLoop(range(3)):\n    pass\n"
    with pytest.raises(paraloop.UnsupportedLoopError, match=r"assign c.x = item after"):
        _load(load_module, refused)
    module = _load(
        load_module, "class C:\n    pass\nc = C()\nfor item in ParaLoop(range(3)):\n    pass\nc.x = item\n"
    )
    assert module.c.x == 2


def test_a_refusal_traceback_ends_at_the_users_line(load_module: Loader) -> None:
    """paraloop's own frames are hidden from a refusal (PARALOOP_TRACEBACK=full shows them)."""
    with pytest.raises(paraloop.ParaLoopError) as caught:
        _load(load_module, "x = 1\nfor i in ParaLoop(range(3)):\n    x = x * 2 + i\n")
    files = [entry.path for entry in caught.traceback]
    assert not any("/paraloop/" in str(path) for path in files), files


def test_paraloop_traceback_full_shows_paraloops_frames(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARALOOP_TRACEBACK", "full")
    with pytest.raises(paraloop.ParaLoopError) as caught:
        _load(load_module, "x = 1\nfor i in ParaLoop(range(3)):\n    x = x * 2 + i\n")
    assert any(str(entry.path).endswith("reductions.py") for entry in caught.traceback)


def test_a_non_empty_setdefault_default_becomes_a_defaultdict(load_module: Loader) -> None:
    refused = """
        groups = {}
        for i in ParaLoop(range(9)):
            groups.setdefault(i % 2, [0]).append(i)
    """
    with pytest.raises(paraloop.ParaLoopError, match=r"groups\[key\]\.append\(v\)"):
        _load(load_module, refused)
    fixed = """
        groups = defaultdict(lambda: [0])
        for i in ParaLoop(range(9), chunksize=2):
            groups[i % 2].append(i)
        result = dict(groups)
    """
    assert _load(load_module, fixed).result == run_plain(PRELUDE + textwrap.dedent(fixed))["result"]


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_drawing_from_the_global_random_generator_names_a_generator_per_iteration(
    load_module: Loader, backend: str
) -> None:
    """Explicitly parallel, global draws are refused (in the body, or in a function it calls);
    a generator per iteration, or seeding per iteration, is parallel and gives the plain draws."""
    refused = f"""
        import random
        random.seed(0)
        out = []
        for i in ParaLoop(range(20), backend={backend!r}):
            out.append(random.random())
    """
    with pytest.raises(paraloop.ParaLoopError, match=r"random.Random\(seed \+ i\)"):
        _load(load_module, refused)
    helper = f"""
        import random
        def draw():
            return random.random()
        out = []
        for i in ParaLoop(range(20), backend={backend!r}, chunksize=4):
            out.append(draw())
    """
    if backend == "processes":
        with pytest.raises(paraloop.ParaLoopError, match="global random generator"):
            _load(load_module, helper)
    for fixed in (
        f"""
        import random
        out = []
        for i in ParaLoop(range(20), backend={backend!r}):
            rng = random.Random(1000 + i)
            out.append(rng.random())
        """,
        """
        import random
        out = []
        for i in ParaLoop(range(20), backend="processes"):
            random.seed(1000 + i)
            out.append(random.random())
        """,
    ):
        _assert_plain(_load(load_module, fixed), fixed, ["out"])


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_numpy_imported_by_an_iteration_is_not_taken_for_a_draw(load_module: Loader, method: str) -> None:
    """A spawn worker imports ``numpy.random`` in its first iteration (numpy loads it lazily):
    its global generator appearing is not a draw, and a body with a generator of its own runs
    in parallel.  A draw from numpy's global generator in a function the body calls is still
    refused under every start method (the worker has the generator before the first iteration).
    """
    own = f"""
        out = []
        for i in ParaLoop(range(12), backend="processes", start_method={method!r}, chunksize=3):
            out.append(float(np.random.default_rng(i).standard_normal()))
    """
    _assert_plain(_load(load_module, own), own, ["out"])
    helper = f"""
        np.random.seed(0)
        def draw():
            return float(np.random.standard_normal())
        out = []
        for i in ParaLoop(range(12), backend="processes", start_method={method!r}, chunksize=3):
            out.append(draw())
    """
    with pytest.raises(paraloop.ParaLoopError, match="global random generator"):
        _load(load_module, helper)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_few_draws_from_numpy_s_global_generator_are_seen(load_module: Loader, method: str) -> None:
    """numpy's legacy generator changes its key only every 624 draws; a draw moves its position.

    The first loop leaves each worker's generator just past a seed; the second draws a few
    numbers per chunk there, from a function the body calls: refused, not duplicated.
    """
    seeding = f"""
        out = []
        for i in ParaLoop(range(8), num_processes=2, start_method={method!r}, chunksize=1):
            np.random.seed(i)
            out.append(float(np.random.random()))
    """
    _assert_plain(_load(load_module, seeding), seeding, ["out"])
    helper = f"""
        np.random.seed(0)
        def draw():
            return float(np.random.random())
        out = []
        for i in ParaLoop(range(8), num_processes=2, start_method={method!r}, chunksize=2):
            out.append(draw())
    """
    with pytest.raises(paraloop.ParaLoopError, match="global random generator"):
        _load(load_module, helper)


# --- An open file, a lock reached other than by a captured name -------------------------------

REACHED = {
    # kind: (what the body does with f, what the caller sets up, the way the refusal names)
    "a bound method": ("write(f'{i}\\n')", "write = f.write", "write.__self__"),
    "a dict": ("holder['out'].write(f'{i}\\n')", "holder = {'out': f}", "holder['out']"),
    "an attribute": ("log.line(f'{i}\\n')", "log = Log(f)", "log.f"),
    "a closure": ("emit(f'{i}\\n')", "emit = closing_over(f)", "emit.__closure__[0].cell_contents"),
}

REACHED_SOURCE = """
class Log:
    def __init__(self, f):
        self.f = f
    def line(self, s):
        self.f.write(s)

def closing_over(f):
    def emit(s):
        f.write(s)
    return emit

f = open({path!r}, "w")
{setup}
try:
    for i in ParaLoop(range(60), backend={backend!r}, num_processes=2):
        {use}
finally:
    f.close()
with open({path!r}) as done:
    lines = done.read().split()
"""


@pytest.mark.parametrize("kind", list(REACHED), ids=list(REACHED))
def test_an_open_file_reached_through_what_the_body_uses_is_refused_by_its_way(
    load_module: Loader, tmp_path: Any, kind: str
) -> None:
    """A worker's copy of the file would be the file opened anew (truncated, for "w"): the loop
    wrote what the caller's iterations wrote and lost the rest, silently.  The refusal names
    the loop's file and line, the captured name and the way to the file; backend='threads',
    which it names, writes every line the plain loop writes."""
    use, setup, way = REACHED[kind]
    path = str(tmp_path / "out.txt")
    refused = REACHED_SOURCE.format(path=path, setup=setup, use=use, backend="processes")
    line = _line_of(refused, "for i in ParaLoop(")
    with pytest.raises(paraloop.ParaLoopError) as caught:
        _load(load_module, refused)
    message = str(caught.value)
    assert re.search(rf"paraloop_testmod_\d+\.py, line {line}: ", message), message
    assert f"uses {way.split('.')[0].split('[')[0]!r}" in message, message
    assert f"at {way} the open file {path!r}" in message, message
    assert "per_worker" in message and "backend='threads'" in message, message
    threads = _load(load_module, refused.replace("'processes'", "'threads'"))
    # Every line arrives; their order is the threads' (docs/semantics.md: files written run
    # in no guaranteed order).
    assert sorted(threads.lines, key=int) == [str(i) for i in range(60)]


def test_a_lock_in_a_container_is_refused_by_its_way(load_module: Loader) -> None:
    """A worker's copy of a lock excludes nobody: refused like a captured lock, naming where."""
    refused = """
        locks = {"out": threading.Lock()}
        out = []
        for i in ParaLoop(range(6), backend="processes"):
            with locks["out"]:
                out.append(i)
    """
    with pytest.raises(paraloop.ParaLoopError) as caught:
        _load(load_module, refused)
    message = str(caught.value)
    line = _line_of(refused, "for i in ParaLoop(")
    assert re.search(rf"paraloop_testmod_\d+\.py, line {line}: ", message), message
    assert "uses 'locks', which holds at locks['out'] a _thread.lock" in message, message
    assert "backend='threads'" in message, message
    module = _load(load_module, refused.replace('"processes"', '"threads"'))
    assert module.out == list(range(6))


def test_what_only_looks_bound_to_this_process_still_travels(load_module: Loader, tmp_path: Any) -> None:
    """Objects held by what the body uses that a worker may have a copy of, or its own: in-memory
    buffers, a path, per-worker handles, arrays, and the lock of a cached_property in a class
    sent by value (each process caches for itself)."""
    path = str(tmp_path / "per_worker.txt")
    source = f"""
        import functools, io
        import paraloop

        class Model:
            def __init__(self, k):
                self.k = k
            @functools.cached_property
            def double(self):
                return self.k * 2

        class Where:
            def __init__(self, path):
                self.path = path

        held = {{
            "text": io.StringIO("abc"),
            "bytes": io.BytesIO(b"xyz"),
            "where": Where({path!r}),
            "out": paraloop.per_worker(open, {path!r}, "a"),
            "array": np.arange(4.0),
            "model": Model(3),
        }}
        out = []
        for i in ParaLoop(range(8), backend="processes", num_processes=2):
            held["out"].write("")
            out.append((held["text"].getvalue(), held["bytes"].getvalue(), held["where"].path,
                        float(held["array"][i % 4]), held["model"].double + i))
    """
    module = _load(load_module, source)
    assert module.out == [("abc", b"xyz", path, float(i % 4), 6 + i) for i in range(8)]


NESTED_IN_A_SCRIPT = """\
# paraloop: enable
import math
from paraloop import ParaLoop

class Offset:
    def __init__(self, value):
        self.value = value

OFFSET = Offset({offset})

def inner(i):
    s = 0.0
    for k in ParaLoop(range(3)):
        s += math.sqrt(i + k + {use_offset})
    return s

out = []
for i in ParaLoop(range(40), backend="processes", num_processes=2):
    out.append(inner(i))
print(sum(out).hex())
"""


@pytest.mark.parametrize("through", ["pickle", "dill"])
def test_a_nested_loop_in_a_script_function_gets_the_globals_its_body_reads(
    tmp_path: Any, through: str
) -> None:
    """A function of the script travels by value with the globals it reads; a ParaLoop loop in
    it reads its body's names through its body function's parameters, which no instruction of
    the function names: ``math`` was left behind (UnboundLocalError in every worker).  A class
    of the script among them sends the job through dill, which chooses globals by itself."""
    offset = "OFFSET.value" if through == "dill" else "0"
    script = tmp_path / "script.py"
    script.write_text(NESTED_IN_A_SCRIPT.format(offset=1, use_offset=offset))
    offset_value = 1 if through == "dill" else 0

    def inner(i: int) -> float:
        # As the script adds (s += ...): sum() adds floats otherwise from Python 3.12 on.
        s = 0.0
        for k in range(3):
            s += math.sqrt(i + k + offset_value)
        return s

    expected = sum([inner(i) for i in range(40)])
    done = run_script(script, env={"PARALOOP_CALLER_RUNS": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected.hex()]


STREAMS_IN_A_SCRIPT = """\
# paraloop: enable
import functools, sys
from paraloop import ParaLoop

class Printer:
    def __init__(self, stream):
        self.stream = stream
    def say(self, text):
        print(text, file=self.stream)

say = functools.partial(print, file=sys.stdout)
printers = {"out": Printer(sys.stdout), "err": Printer(sys.stderr)}
for i in ParaLoop(range(6), backend="processes", num_processes=2):
    say("partial", i)
    printers["out"].say(f"object {i}")
    printers["err"].say(f"error {i}")
"""


def test_the_standard_streams_reached_through_what_the_body_uses_still_print(tmp_path: Any) -> None:
    """Printing is output, not an object of the program's: sys.stdout held by a partial or an
    object prints from the workers (in no set order), as print does."""
    script = tmp_path / "script.py"
    script.write_text(STREAMS_IN_A_SCRIPT)
    done = run_script(script, env={"PARALOOP_CALLER_RUNS": "0"})
    assert done.returncode == 0, done.stderr
    expected = [f"partial {i}" for i in range(6)] + [f"object {i}" for i in range(6)]
    assert sorted(done.stdout.splitlines()) == sorted(expected)
    assert sorted(line for line in done.stderr.splitlines() if line.startswith("error")) == [
        f"error {i}" for i in range(6)
    ]
