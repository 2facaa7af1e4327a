"""No silent loss (docs/semantics.md): fourteen reproducers of results once lost, on every backend.

Each loop changes an object from outside the loop in a way no inferred form covers, or
hands the loop items or exceptions that cannot travel as they are. On every backend the
program must observe the plain loop's result, or paraloop must raise ``ParaLoopError``
naming the object: never a different result.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS, use_backend
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = """\
import itertools, os
import numpy as np
from paraloop import ParaLoop
"""

# name: (body, words a refusal must contain: the object's name)
ROWS: dict[str, tuple[str, list[str]]] = {
    "1 a view of a captured array": (
        """
        A = np.zeros((4, 3))
        for i in ParaLoop(range(4), num_processes=2):
            B = A[i]
            B[:] = 1
        result = float(A.sum())
        """,
        ["'A'"],
    ),
    "2 a function writing into its argument": (
        """
        def store(buf, i):
            buf[i] = i
        buf = np.zeros(5, int)
        for i in ParaLoop(range(5), num_processes=2):
            store(buf, i)
        result = buf.tolist()
        """,
        ["'buf'"],
    ),
    "3 a bound method kept in a name": (
        """
        out = []
        add = out.append
        for i in ParaLoop(range(10), num_processes=2):
            add(i)
        result = out
        """,
        ["'add'"],
    ),
    "4 a closure's nonlocal total": (
        """
        def run():
            total = 0
            def acc(v):
                nonlocal total
                total += v
            for v in ParaLoop(range(10), num_processes=2):
                acc(v)
            return total
        result = run()
        """,
        ["'total'"],
    ),
    "5 a view bound in the body, written after the loop": (
        """
        arr = np.zeros(3)
        for i in ParaLoop(range(3), num_processes=2):
            f = arr[0:]
        f[0] = 7.0
        result = arr.tolist()
        """,
        ["'arr'"],
    ),
    "8 itertools.groupby groups": (
        """
        sizes = {}
        for k, g in ParaLoop(itertools.groupby(sorted(i % 7 for i in range(200))), num_processes=2):
            sizes[k] = len(list(g))
        result = sizes
        """,
        ["item"],
    ),
    "9 a generator reusing one list": (
        """
        def rows():
            buf = []
            for i in range(600):
                buf.append(i)
                yield buf
        total = 0
        for item in ParaLoop(rows(), num_processes=2):
            total += len(item)
        result = total
        """,
        ["item"],
    ),
    "10 a list subclass with its own __iter__": (
        """
        class Up(list):
            def __iter__(self):
                return (x.upper() for x in list.__iter__(self))
        out = []
        for x in ParaLoop(Up("abcd"), num_processes=2):
            out.append(x)
        result = out
        """,
        [],
    ),
    "11 an exception whose __init__ takes two arguments": (
        """
        class NeedArgs(Exception):
            def __init__(self, a, b):
                super().__init__(f"{a}-{b}")
        try:
            for x in ParaLoop(range(3), num_processes=2):
                if x == 1:
                    raise NeedArgs(1, 2)
        except NeedArgs as error:
            result = ("caught", str(error))
        """,
        [],
    ),
    "13 a body writing into the list it iterates": (
        """
        data = list(range(1, 41))
        out = []
        for x in ParaLoop(data, num_processes=2):
            out.append(x)
            if x < 40:
                data[x] = x * 10
        result = (out, data)
        """,
        ["'data'", "line 8", "ParaLoop(list(data))"],
    ),
    "14 an item that is also a captured name, changed in place": (
        """
        lists = [[0] for _ in range(40)]
        first = lists[0]
        out = []
        for item in ParaLoop(lists, num_processes=2):
            item.append(1)
            out.append(len(first))
        result = (out, lists)
        """,
        ["'first'", "line 9"],
    ),
    "12 an exception's context": (
        """
        try:
            for x in ParaLoop(range(3), num_processes=2):
                if x == 1:
                    try:
                        raise KeyError("k")
                    except KeyError:
                        raise ValueError("v")
        except ValueError as error:
            result = repr(error.__context__)
        """,
        [],
    ),
}


def _compare(load_module: Loader, source: str, words: list[str]) -> None:
    plain = run_plain(source)["result"]
    try:
        module = load_module(source)
    except paraloop.ParaLoopError as refusal:
        assert words, f"refused where the plain result is expected: {refusal}"
        for word in words:
            assert word in str(refusal), (word, str(refusal))
        return
    assert module.result == plain


@pytest.mark.usefixtures("every_backend")
@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_the_plain_result_or_a_refusal_naming_the_object(row: str, load_module: Loader) -> None:
    body, words = ROWS[row]
    _compare(load_module, PRELUDE + textwrap.dedent(body), words)


@pytest.mark.usefixtures("every_backend")
def test_files_open_for_writing_as_items_are_never_truncated(load_module: Loader, tmp_path: Path) -> None:
    """Row 6: a copy would open each file anew (truncating it): refused, or written in place."""
    source = PRELUDE + textwrap.dedent(f"""
        folder = {str(tmp_path)!r}
        handles = [open(os.path.join(folder, f"f{{i}}"), "w") for i in range(3)]
        for handle in handles:
            handle.write("header\\n")
            handle.flush()
        try:
            for handle in ParaLoop(handles, num_processes=2):
                handle.write("row\\n")
        finally:
            for handle in handles:
                handle.close()
    """)
    try:
        load_module(source)
    except paraloop.ParaLoopError as refusal:
        assert "TextIOWrapper" in str(refusal) and "item 0" in str(refusal)
    contents = [(tmp_path / f"f{i}").read_text() for i in range(3)]
    assert all(text in ("header\n", "header\nrow\n") for text in contents), contents


@pytest.mark.usefixtures("every_backend")
def test_files_open_for_reading_as_items_keep_their_position(load_module: Loader, tmp_path: Path) -> None:
    """Row 7: the first file already advanced by readline(): refused, or read on from there."""
    for i in range(2):
        (tmp_path / f"g{i}").write_text("a\nb\n")
    source = PRELUDE + textwrap.dedent(f"""
        folder = {str(tmp_path)!r}
        handles = [open(os.path.join(folder, f"g{{i}}")) for i in range(2)]
        handles[0].readline()
        result = {{}}
        for n, handle in ParaLoop(list(enumerate(handles)), num_processes=2):
            result[n] = handle.read()
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError as refusal:
        assert "TextIOWrapper" in str(refusal)
        return
    assert module.result == {0: "b\n", 1: "a\nb\n"}


RESETTING_ITERATOR = """
    class Reader:
        \"\"\"An iterator whose __iter__ starts it over, as many hand-written ones do.\"\"\"

        def __init__(self, n):
            self.n = n
            self.starts = 0

        def __iter__(self):
            self.starts += 1
            self.position = 0
            return self

        def __next__(self):
            if self.position >= self.n:
                raise StopIteration
            self.position += 1
            return self.position

    def each(make):
        reader = Reader(300)
        return make(reader), reader.starts

    looped = []

    def loop(reader):
        for x in ParaLoop(reader, num_processes=2):
            looped.append(x * 2)
        return list(looped)

    def listed(reader):
        return [x * 2 for x in ParaLoop(reader, num_processes=2)]

    def generated(reader):
        return list(x * 2 for x in ParaLoop(reader, num_processes=2))

    def mapped(reader):
        return {x: x * 2 for x in ParaLoop(reader, num_processes=2)}

    result = [each(loop), each(listed), each(generated), each(mapped)]
"""


@pytest.mark.usefixtures("every_backend")
def test_an_iterator_whose_iter_starts_it_over_is_read_once(load_module: Loader) -> None:
    """Items are what the plain loop would have seen: the plain loop calls an iterator's
    ``__iter__`` once.  paraloop called it at each piece of items it read, and an iterator whose
    ``__iter__`` sets its position back to the start began again each time: 575 items of 300 on
    processes, 304 on threads, and a sequential loop that never ended (found in session 36)."""
    source = PRELUDE + textwrap.dedent(RESETTING_ITERATOR)
    expected = run_plain(source)["result"]
    assert expected[0] == ([x * 2 for x in range(1, 301)], 1)
    assert load_module(source).result == expected


ITEMS_CHANGED_BY_COMPREHENSIONS = """
    def mark(d, i):
        d["seen"] = i
        return i

    def double(row):
        row *= 2
        return float(row.sum())

    records = [{"n": i} for i in range(40)]
    marks = [mark(d, i) for i, d in ParaLoop(list(enumerate(records)), num_processes=2)]
    rows = [np.arange(3.0) + i for i in range(30)]
    sums = {double(row) for row in ParaLoop(rows, num_processes=2)}
    more = [{"n": i} for i in range(20)]
    keyed = {d["n"]: d.setdefault("k", d["n"] * 3) for d in ParaLoop(more, num_processes=2)}
    lazily = [{"n": i} for i in range(20)]
    generated = list(d.pop("n") for d in ParaLoop(lazily, num_processes=2))
    result = [records, marks, [r.tolist() for r in rows], sorted(sums), more, keyed, lazily, generated]
"""


@pytest.mark.usefixtures("every_backend")
def test_items_a_comprehension_changes_in_place_are_changed_after_it(load_module: Loader) -> None:
    """An item the body of a list, set or dict comprehension or a generator expression changes in
    place is the program's item changed, as after the plain comprehension (as a for loop's are):
    the worker processes' changes to their copies were dropped, silently (session 36's adversary,
    finding 6)."""
    source = PRELUDE + textwrap.dedent(ITEMS_CHANGED_BY_COMPREHENSIONS)
    expected = run_plain(source)["result"]
    assert expected[0][3] == {"n": 3, "seen": 3} and expected[6][3] == {}
    assert load_module(source).result == expected


@pytest.fixture
def choice(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend every loop of the test runs on (see conftest.use_backend)."""
    return use_backend(request.param, request, monkeypatch)


BUMP = """
def bump(d, i):
    d["count"] += 1
    return d["count"]
"""

# On threads: iteration 0 waits until iteration 1, in the other thread, has changed the object.
INTERLEAVED_BUMP = """
import threading

ran = threading.Event()

def bump(d, i):
    if i % 6 == 0:
        ran.clear()
        ran.wait(2)
    d["count"] += 1
    if i % 6 == 1:
        ran.set()
    return d["count"]
"""

SHARED_ITEM_CHANGED = """
shared = {"count": 0}
counts = []
for i, d in ParaLoop(list(enumerate([shared] * 6)), num_processes=2, chunksize=1):
    counts.append(bump(d, i))
again = [bump(d, i) for i, d in ParaLoop(list(enumerate([shared] * 6)), num_processes=2, chunksize=1)]
result = [counts, again, shared]
"""


def _plain_or_refused(load_module: Loader, source: str) -> None:
    expected = run_plain(source)["result"]
    assert expected == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], {"count": 12}]
    try:
        module = load_module(source)
    except paraloop.ParaLoopError as refusal:
        # Which iterations: where the workers' copies begin (the caller runs the first ones on
        # the program's own objects).
        assert re.search(r"iteration \d+ changed its item in place, .* \(iteration \d+\)", str(refusal))
        return
    assert module.result == expected


@pytest.mark.parametrize("choice", [*START_METHODS, "caller", "sequential", "dask"], indirect=True)
def test_an_item_changed_in_place_that_the_iterable_yields_again_is_refused(
    load_module: Loader, choice: str
) -> None:
    """The same dict yielded again, changed by an iteration: the plain loop's next iteration sees
    the change; paraloop's copies were made before it, so a for loop or a comprehension is
    refused, naming both iterations (the comprehension's changes were dropped, silently, before
    session 36), or the sequential backend gives the plain result."""
    _plain_or_refused(load_module, PRELUDE + BUMP + SHARED_ITEM_CHANGED)


@pytest.mark.xfail(
    strict=True,
    reason="known, open (session 36): on threads the iterations share the program's objects, and "
    "two iterations in flight that change one object in place (the same dict yielded twice) "
    "change it in the order they run, not in the plain loop's, silently: counts [2, 1, 3, ...]",
)
@pytest.mark.parametrize("choice", ["threads"], indirect=True)
def test_an_item_changed_in_place_that_the_iterable_yields_again_on_threads(
    load_module: Loader, choice: str
) -> None:
    """As above, on threads, iteration 0 held until iteration 1 has run beside it."""
    _plain_or_refused(load_module, PRELUDE + INTERLEAVED_BUMP + SHARED_ITEM_CHANGED)


@pytest.mark.parametrize("backend", ["fork", "spawn", "threads"])
def test_a_change_to_a_large_object_in_the_last_iteration_is_caught_at_the_end(
    load_module: Loader, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a large object after every short chunk would cost more than the chunks: it is
    checked once enough chunk time has passed, and at the loop's end, so a change made in the
    last iteration is still refused, naming the object."""
    from conftest import use_backend

    use_backend(backend, request, monkeypatch)
    source = PRELUDE + textwrap.dedent("""
        table = {n: [n] for n in range(200_000)}
        def note(mapping):
            mapping[0].append("seen")
        total = 0
        for i in ParaLoop(range(2000), num_processes=2):
            total += i
            if i == 1999:
                note(table)
    """)
    with pytest.raises(paraloop.ParaLoopError, match="'table'"):
        load_module(source)


# A module of the program is one of its objects: a store into it from the body landed in a worker's
# copy of the module and was lost without a word (found by the --explain helper's pass). The
# process-wide state modules carry (os.environ, sys.stdout) is each iteration's own: see
# tests/test_process_state.py.
MODULE_STORES = {
    "an attribute": ("mod.last = i", "last = i", "mod.last = last"),
    "an attribute named value": ("mod.value = i", "value = i", "mod.value = value"),
    "an augmented attribute": ("mod.total += i", "total += i", "mod.total += total"),
    "a list in the module": ("mod.items.append(i)", "items.append(i)", "mod.items.extend(items)"),
    "an entry of a dict in the module": ("mod.table[i] = i", "table[i] = i", "mod.table.update(table)"),
}


@pytest.mark.usefixtures("every_backend")
@pytest.mark.parametrize("store", list(MODULE_STORES), ids=list(MODULE_STORES))
def test_a_store_into_a_module_of_the_program_is_refused_and_the_advice_works(
    store: str, load_module: Loader, tmp_path: Path
) -> None:
    body, local, after = MODULE_STORES[store]
    name = f"silent_helper_{abs(hash((store, str(tmp_path)))) % 10**8}"
    (tmp_path / f"{name}.py").write_text("")
    setup = f"import {name} as mod\nmod.last = mod.value = None\nmod.total = 0\nmod.items = []\nmod.table = {{}}\n"
    loop = f"for i in ParaLoop(range(12), num_processes=2):\n    {body}\n"
    result = "result = (mod.last, mod.value, mod.total, mod.items, mod.table)\n"
    with pytest.raises(paraloop.ParaLoopError) as refused:
        load_module(PRELUDE + setup + loop + result)
    message = str(refused.value)
    assert "'mod', a module of this program" in message
    assert f"line {len((PRELUDE + setup).splitlines()) + 3}:" in message  # the marker line is added on top
    # As the refusal advises: a plain name in the body, applied to the module after the loop.
    advised = (
        PRELUDE
        + setup
        + "last = value = None\ntotal = 0\nitems = []\ntable = {}\n"
        + f"for i in ParaLoop(range(12), num_processes=2):\n    {local}\n{after}\n"
        + result
    )
    plain = run_plain(
        PRELUDE + setup + loop.replace("ParaLoop(range(12), num_processes=2)", "range(12)") + result
    )
    assert load_module(advised).result == plain["result"]


def test_a_class_registered_as_a_file_is_a_file_and_plain_values_are_not(tmp_path: Path) -> None:
    """paraloop's quick test for file objects (which a copy would reopen) agrees with io.IOBase."""
    import io
    import types

    from paraloop.items import bound_to_this_process, is_file

    class Log:  # file-like by registration, not by inheritance
        def write(self, text: str) -> int:
            return len(text)

    io.IOBase.register(Log)
    with open(tmp_path / "f", "w") as handle, open(tmp_path / "f", "rb") as raw:
        values = [handle, raw, handle.buffer, io.BytesIO(), Log(), 1, 1.5, None, "s", b"b", [], {}, (), io,
                  len, types.SimpleNamespace(), paraloop.Variable(0)]  # fmt: skip
        assert [is_file(v) for v in values] == [isinstance(v, io.IOBase) for v in values]
        assert [is_file(v) for v in values][:5] == [True] * 5
        assert bound_to_this_process(Log()) and bound_to_this_process(handle)
        assert not bound_to_this_process(io.BytesIO())
