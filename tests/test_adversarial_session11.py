"""Adversarial tests, session 11: the caller running a loop's first chunks itself
(paraloop/backends/processes/caller.py: first_chunks, CallerWorker; paraloop/chunks.py: the
Chunker's ``minimum``/``maximum`` and the tail floor; paraloop.items.is_file).

Each test compares what paraloop gives with the plain loop (the same source run without the
rewrite, or the expected values written out).  Findings are marked ``xfail(strict=True)``
and assert the plain result.
"""

from __future__ import annotations

import subprocess
import textwrap
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import interrupt_like_a_terminal, run_program
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]


def _plain(source: str, function: str, *args: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        return run_plain(source)[function](*args)


def _script(tmp_path: Path, body: str, **extra: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text("# paraloop: enable\n" + textwrap.dedent(body))
    return run_program(script, **extra)


# --- Iterations that turn slow: the kept chunk's deadline gives items back -----------------

TURNING = """
    import time
    from paraloop import ParaLoop

    VALUES = [1e16, 1.0, -1e16, 0.5, 3.3e-5, -7.25]

    def run(n, turn, pause):
        total = 0.0
        product = 1.0
        out = []
        last = {}
        for i in ParaLoop(list(range(n)), num_processes=2):
            if i >= turn:
                time.sleep(pause)
            total += VALUES[i % 6] * (1 + i % 3)
            product *= 1.0 + 1e-7 * (i % 5)
            out.append(i * i)
            last[str(i % 37)] = i
        return total.hex(), product.hex(), out, list(last.items())
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    ("n", "turn", "pause"),
    [(3000, 500, 0.0005), (3000, 10, 0.001), (200, 100, 0.002), (40, 20, 0.003), (60000, 30000, 0.00005)],
)
def test_iterations_that_turn_slow_in_a_kept_chunk_give_the_plain_result(
    load_module: Loader, n: int, turn: int, pause: float
) -> None:
    """Quick first iterations make the caller keep the loop (all the rest in one chunk); the
    later ones sleep, so the chunk stops at its deadline and gives its items back to the
    workers.  Order-sensitive float sums and products continue from running values over the
    caller's in-order chunks: the plain bits, list and dict key order."""
    module = load_module(TURNING)
    assert module.run(n, turn, pause) == _plain(TURNING, "run", n, 0, 0.0)


MUTATED_ITEMS = """
    import time
    from paraloop import ParaLoop

    def run(n, turn, pause):
        items = [{"k": i, "v": [i]} for i in range(n)]
        for item in ParaLoop(items, num_processes=2):
            if item["k"] >= turn:
                time.sleep(pause)
            item["v"].append(item["k"] * 2)
            item["seen"] = item["k"] % 3
        return items
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    ("n", "turn", "pause"), [(3000, 500, 0.0005), (200, 100, 0.002), (20000, 15000, 0.0002)]
)
def test_items_changed_in_place_by_a_kept_chunk_that_gives_items_back(
    load_module: Loader, n: int, turn: int, pause: float
) -> None:
    """Items changed in place are written back; a chunk stopped at its deadline keeps its
    unrun items in ``held`` while they are handed out again: each item is changed once."""
    module = load_module(MUTATED_ITEMS)
    assert module.run(n, turn, pause) == _plain(MUTATED_ITEMS, "run", n, 0, 0.0)


ENDINGS = """
    import time
    from paraloop import ParaLoop

    class Boom(Exception):
        pass

    def run(n, turn, pause, stop, how):
        acc = []
        total = 0.0
        for i in ParaLoop(range(n), num_processes=2):
            if i >= turn:
                time.sleep(pause)
            total += 0.1 * i
            if i == stop:
                if how == "break":
                    break
                if how == "return":
                    return ("returned", i)
                if how == "raise":
                    raise Boom(i)  # the raising line
                if how == "interrupt":
                    raise KeyboardInterrupt(i)  # the interrupting line
            acc.append(i)
        else:
            acc.append("else")
        return acc, total.hex()

    def outcome(n, turn, pause, stop, how):
        try:
            return run(n, turn, pause, stop, how)
        except (Boom, KeyboardInterrupt) as error:
            return type(error).__name__, error.args
"""

ENDING_CASES = [
    (5000, 10**9, 0.0, 4000),
    (5000, 100, 0.0005, 300),
    (5000, 100, 0.0005, 99),
    (300, 250, 0.002, 260),
]


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("how", ["break", "return", "raise", "interrupt", "none"])
@pytest.mark.parametrize(("n", "turn", "pause", "stop"), ENDING_CASES)
def test_break_return_raise_and_interrupt_inside_a_kept_chunk(
    load_module: Loader, how: str, n: int, turn: int, pause: float, stop: int
) -> None:
    """A loop the caller keeps (all the rest in one chunk) ends inside that chunk, or after it
    gave items back at its deadline: the plain loop's tracked state, return value, exception
    class and arguments (KeyboardInterrupt included), and no else."""
    module = load_module(ENDINGS)
    assert module.outcome(n, turn, pause, stop, how) == _plain(ENDINGS, "outcome", n, 0, 0.0, stop, how)


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("stop", [3, 2000])
def test_an_exception_in_a_kept_chunk_shows_the_users_line(load_module: Loader, stop: int) -> None:
    module = load_module(ENDINGS)
    with pytest.raises(module.Boom) as raised:
        module.run(3000, 10**9, 0.0, stop, "raise")
    assert raised.value.args == (stop,)
    shown = "".join(traceback.format_exception(raised.value))
    assert "raise Boom(i)  # the raising line" in shown
    assert f"iteration {stop} (item {stop})" in shown


# --- Iterables that lie, or iterate their own way ------------------------------------------------

ODD_ITERABLES = """
    import time
    from paraloop import ParaLoop

    class Longer(list):
        def __len__(self):
            return 10**6

    class Shorter(list):
        def __len__(self):
            return 2

    class Doubled(list):
        def __iter__(self):
            for x in list.__iter__(self):
                yield x * 2

    class OldProtocol:
        def __init__(self, n):
            self.n = n
        def __getitem__(self, i):
            if i >= self.n:
                raise IndexError(i)
            return i * 3

    class LyingTuple(tuple):
        def __len__(self):
            return 1
        def __getitem__(self, i):
            return 0

    class Big(int):
        pass

    MAKERS = {
        "longer": lambda n: Longer(range(n)),
        "shorter": lambda n: Shorter(range(n)),
        "doubled": lambda n: Doubled(range(n)),
        "old-protocol": lambda n: OldProtocol(n),
        "lying-tuple": lambda n: LyingTuple(range(n)),
        "huge-step": lambda n: range(-10**18, 10**18, 2 * 10**18 // n),
        "negative-step": lambda n: range(7 * n, 0, -7),
        "int-subclass": lambda n: [Big(i) for i in range(n)],
    }

    def run(which, n, pause):
        out = []
        total = 0.0
        for x in ParaLoop(MAKERS[which](n), num_processes=2):
            if pause:
                time.sleep(pause)
            out.append(x)
            total += x / 3
        return out, total.hex(), [type(x).__name__ for x in out[:2]]
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    "which",
    [
        "longer",
        "shorter",
        "doubled",
        "old-protocol",
        "lying-tuple",
        "huge-step",
        "negative-step",
        "int-subclass",
    ],
)
@pytest.mark.parametrize(("n", "pause"), [(7, 0.0), (3000, 0.0), (300, 0.0003)])
def test_iterables_whose_length_lies_or_that_iterate_their_own_way(
    load_module: Loader, which: str, n: int, pause: float
) -> None:
    """The caller keeps a loop by its length: a list or tuple subclass whose __len__ (or
    __getitem__) lies is iterated by its stored items, as the plain loop does; one with its own
    __iter__, and a __getitem__-only sequence, are iterated as the plain loop does."""
    module = load_module(ODD_ITERABLES)
    assert module.run(which, n, pause) == _plain(ODD_ITERABLES, "run", which, n, 0.0)


HUGE_RANGE = """
    from paraloop import ParaLoop

    def run(backend):
        out = []
        for i in ParaLoop(range(10**20), num_processes=2, backend=backend):
            if i == 5:
                break
            out.append(i)
        return out
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("backend", ["processes", "threads", "sequential"])
def test_a_range_longer_than_maxsize_that_breaks_early(load_module: Loader, backend: str) -> None:
    """The plain loop iterates range(10**20) lazily and breaks at 5.  paraloop raised
    'OverflowError: Python int too large to convert to C ssize_t' from Chunker.left(), called
    first thing by first_chunks (the other backends reach it too)."""
    module = load_module(HUGE_RANGE)
    assert module.run(backend) == [0, 1, 2, 3, 4]


# --- The loop's own iterable, changed by its body ------------------------------------------------

OWN_ITERABLE = """
    from paraloop import ParaLoop

    def rewrites(n):
        data = list(range(1, n + 1))
        out = []
        for x in ParaLoop(data, num_processes=2):
            out.append(x)
            if x < n:
                data[x] = x * 10
        return out, data

    def grows(n):
        data = list(range(n))
        out = []
        for x in ParaLoop(data, num_processes=2):
            out.append(x)
            if x < 5:
                data.append(x + 1000)
        return out, data

    def outcome(which, n):
        try:
            return globals()[which](n)
        except paraloop.ParaLoopError:
            return "refused"

    import paraloop
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(("which", "n"), [("rewrites", 5), ("rewrites", 40), ("grows", 10)])
def test_a_body_that_writes_into_the_list_it_iterates(load_module: Loader, which: str, n: int) -> None:
    """The plain loop sees the items the body wrote (for rewrites(5): out [1, 10, 3, 30, 5]; for
    grows(10): 15 items).  Seen with the caller taking part: [1, 10, 3, 4, 5] (the first
    one-item chunk was combined before the rest was sliced) and 11 items for grows(10); with
    every iteration in the workers [1, 2, 3, 4, 5]; threads vary.  A loop-carried dependency
    through the iterable: the plain result, or a ParaLoopError."""
    module = load_module(OWN_ITERABLE)
    got = module.outcome(which, n)
    assert got == "refused" or got == _plain(OWN_ITERABLE, "outcome", which, n)


# --- Nested loops, repeated calls ----------------------------------------------------------------

NESTED = """
    import math, time
    from paraloop import ParaLoop

    def inner_sum(i):
        s = 0.0
        for k in ParaLoop(range(i % 17 + 1)):
            s += [1e16, 1.0, -1e16][k % 3] * math.sin(i + k)
        return s

    def run(n, pause):
        total = 0.0
        last = {}
        rows = []
        for i in ParaLoop(range(n), num_processes=2):
            if pause and i > n // 3:
                time.sleep(pause)
            s = inner_sum(i)
            total += s
            row = []
            for j in ParaLoop(range(3)):
                row.append(i * j)
                if j == 1 and i % 5 == 0:
                    break
            rows.append(row)
            last[(i * 7919) % 101] = s
        return total.hex(), list(last.items()), rows

    def repeated(n, pause, times):
        return [run(n, pause) for _ in range(times)]
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(("n", "pause"), [(5, 0.0), (200, 0.0), (200, 0.001), (2000, 0.0)])
def test_nested_loops_in_repeated_calls_give_the_plain_bits(
    load_module: Loader, n: int, pause: float
) -> None:
    """Nested ParaLoop loops (run sequentially inside the caller's chunks and the workers') with
    order-sensitive float sums and an inner break, in a function called three times (the pool
    is warm from the second call on, so the caller keeps less)."""
    module = load_module(NESTED)
    expected = _plain(NESTED, "run", n, 0.0)
    assert module.repeated(n, pause, 3) == [expected] * 3


NESTED_GLOBAL = """
    import math
    from paraloop import ParaLoop

    def inner(i):
        s = 0.0
        for k in ParaLoop(range(2)):
            s += math.sqrt(i + k)
        return s

    out = []
    for i in ParaLoop(range(400), num_processes=2):
        out.append(inner(i))
    print(len(out), sum(out).hex())
"""


@pytest.mark.parametrize("caller_runs", ["default", "0"])
def test_a_nested_loop_in_a_script_function_reads_a_module_global(tmp_path: Path, caller_runs: str) -> None:
    """The plain script prints 400 and the sum.  paraloop raised "UnboundLocalError: cannot
    access local variable 'math' where it is not associated with a value" in the first
    iteration a worker ran (iteration 0 with every iteration in the workers; about 15-25 with
    the caller taking part, which ran the first ones itself; a 4-item loop passes).  With
    inner() naming math itself (outside its nested loop) it passes."""
    expected = sum(sum(__import__("math").sqrt(i + k) for k in range(2)) for i in range(400))
    extra = {} if caller_runs == "default" else {"PARALOOP_CALLER_RUNS": "0"}
    done = _script(tmp_path, NESTED_GLOBAL, **extra)
    assert "UnboundLocalError" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["400", expected.hex()]


# --- Running values of every kind of float reduction ---------------------------------------------

RUNNING = """
    import time
    from fractions import Fraction
    from paraloop import ParaLoop

    VALS = [1e16, 1.0, -1e16, 0.1, 3.3e-5, -7.25, 1e300, -1e300]

    def run(n, turn, pause):
        a = 0
        b = 0.5
        c = 1.0
        d = 0.0
        e = 100.0
        f = Fraction(1, 3)
        g = 0j
        h = 0.0
        for i in ParaLoop(range(n), num_processes=2):
            if i >= turn:
                time.sleep(pause)
            v = VALS[i % len(VALS)]
            a += v
            b += i if i % 3 else v
            c *= 1.0 + 1e-9 * (i % 5) if i % 7 else 1
            d = d + v * 3
            e -= v / 7
            f += Fraction(i, 7) if i % 2 else 0
            g += complex(v, -v)
            h = max(h, v)
        values = (a, b, c, d, e, f, g, h)
        return [repr(x) for x in values], [type(x).__name__ for x in values]
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    ("n", "turn", "pause"),
    [
        (3, 99, 0.0),
        (40, 99, 0.0),
        (5000, 10**9, 0.0),
        (3000, 30, 0.0003),
        (400, 200, 0.001),
        (100000, 10**9, 0.0),
    ],
)
def test_running_values_of_mixed_reductions(load_module: Loader, n: int, turn: int, pause: float) -> None:
    """An int start with float terms, int terms onto a float, a product, the written-out
    form, -=, Fraction, complex and max, continued over the caller's in-order chunks (a
    kept one stopped at its deadline included), then replayed from the workers': the plain
    values and types."""
    module = load_module(RUNNING)
    assert module.run(n, turn, pause) == _plain(RUNNING, "run", n, turn, 0.0)


# --- File objects (paraloop.items.is_file) -------------------------------------------------------

FILES = """
    import io
    from paraloop import ParaLoop

    class Counter:
        def __init__(self):
            self.n = 0
        def __iter__(self):
            return self
        def __next__(self):
            self.n += 1
            return self.n

    class RegisteredCounter(Counter):
        pass

    io.IOBase.register(RegisteredCounter)

    class Lines(io.StringIO):
        pass

    def reads(make, n):
        source = make("".join(f"line{k}\\n" for k in range(n)))
        got = []
        for i in ParaLoop(range(n), num_processes=2):
            got.append(source.readline())
        return got

    def nexts(make, n):
        source = make()
        got = []
        for i in ParaLoop(range(n), num_processes=2):
            got.append(next(source))
        return got

    def outcome(kind, name, n):
        try:
            if kind == "reads":
                return reads({"StringIO": io.StringIO, "Lines": Lines}[name], n)
            return nexts({"Counter": Counter, "RegisteredCounter": RegisteredCounter}[name], n)
        except paraloop.ParaLoopError as error:
            return "refused", str(error)

    import paraloop
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    ("kind", "name"),
    [("reads", "StringIO"), ("reads", "Lines"), ("nexts", "Counter"), ("nexts", "RegisteredCounter")],
)
@pytest.mark.parametrize("n", [5, 300])
def test_a_captured_file_or_iterator_read_by_each_iteration_is_refused(
    load_module: Loader, kind: str, name: str, n: int
) -> None:
    """Each iteration reads the next line of a captured StringIO (a file to is_file, copied to
    workers), of a subclass of it, or takes next() of a captured iterator (plain, or registered
    as an io.IOBase, which is_file must then see through the ABC): sequential by nature, refused
    on processes (in the caller's chunks too), never a silently different list."""
    module = load_module(FILES)
    got = module.outcome(kind, name, n)
    assert got[0] == "refused", got
    assert "line " in got[1]


# --- Ctrl-C during a chunk the caller keeps --------------------------------------------------------

CTRL_C_KEPT = """
    # paraloop: enable
    import time
    from paraloop import ParaLoop
    total = 0
    for i in ParaLoop(list(range(20000)), num_processes=2):
        if i == 15000:
            print("running", flush=True)
            while True:
                time.sleep(0.01)
        total += i
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_ctrl_c_in_the_kept_chunk_stops_within_seconds(tmp_path: Path, method: str) -> None:
    """Quick iterations make the caller keep the loop; iteration 15000 waits for ever in it.
    SIGINT: KeyboardInterrupt, no process of the program left."""
    from test_failures import wait_for_no_members

    script = tmp_path / "kept.py"
    script.write_text(textwrap.dedent(CTRL_C_KEPT))
    group, status, stderr, elapsed = interrupt_like_a_terminal(
        script, env={"PARALOOP_CALLER_RUNS": "1", "PARALOOP_START_METHOD": method}
    )
    assert status in (-2, 130, 1), stderr
    assert "KeyboardInterrupt" in stderr
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert wait_for_no_members(group, 5) == []


# --- An item that is also a captured object ------------------------------------------------------

ALIASED_ITEM = """
    import time
    from paraloop import ParaLoop

    def run(n, pause):
        lists = [[0] for _ in range(n)]
        first = lists[0]
        out = []
        for item in ParaLoop(lists, num_processes=2):
            if pause:
                time.sleep(pause)
            item.append(1)
            out.append(len(first))
        return out, lists

    def outcome(n, pause):
        try:
            return run(n, pause)
        except paraloop.ParaLoopError:
            return "refused"

    import paraloop
"""


@pytest.mark.parametrize(
    "caller_runs",
    [
        "default",
        "0",
    ],
)
@pytest.mark.parametrize(("n", "pause"), [(3, 0.0), (300, 0.0005)])
def test_an_item_that_is_also_a_captured_object_changed_in_place(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, caller_runs: str, n: int, pause: float
) -> None:
    """The plain loop: iteration 0 appends to lists[0], which is ``first``; every iteration then
    reads len(first) == 2.  With the caller taking part, refused (its chunk changed the
    program's own object); with every iteration in the workers the loop ran and gave
    [1, 1, 1, ...]: no silent loss says the plain result or a ParaLoopError, on both."""
    from paraloop import resources
    from paraloop.backends.processes import caller

    if caller_runs == "default":
        monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
        monkeypatch.setattr(caller, "CALLER_SECONDS", 0.003)
        monkeypatch.setattr(resources, "_handles", __import__("weakref").WeakSet())
    module = load_module(ALIASED_ITEM)
    got = module.outcome(n, pause)
    assert got == "refused" or got == _plain(ALIASED_ITEM, "outcome", n, 0.0)


# --- Tracked state after an exception raised in a kept chunk -------------------------------------

STATE_AFTER_RAISE = """
    import time
    from paraloop import ParaLoop

    results = []
    for n, turn, stop in [(50, 10**9, 30), (5000, 10**9, 4000), (5000, 100, 300), (3000, 500, 2500)]:
        total = 0.1
        acc = []
        last = {}
        try:
            for i in ParaLoop(range(n), num_processes=2):
                if i >= turn and SLOW:
                    time.sleep(0.0005)
                total += [1e16, 1.0, -1e16][i % 3] + i / 7
                acc.append(i)
                last[i % 11] = i
                if i == stop:
                    raise ValueError(i)
        except ValueError as error:
            results.append((n, error.args, total.hex(), acc, list(last.items())))
"""


@pytest.mark.usefixtures("caller_on")
def test_tracked_state_after_an_exception_in_a_kept_chunk(load_module: Loader) -> None:
    """An exception in the caller's kept chunk, or after it gave items back to the workers: the
    float sum's bits, the list and the dict's key order are the plain loop's at that point."""
    module = load_module("SLOW = True\n" + textwrap.dedent(STATE_AFTER_RAISE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        plain = run_plain("SLOW = False\n" + textwrap.dedent(STATE_AFTER_RAISE))["results"]
    assert module.results == plain


# --- An open file reached other than by its own name ------------------------------------------------

FILE_INSIDE = """
    import time
    from paraloop import ParaLoop

    class Log:
        def __init__(self, f):
            self.f = f
        def line(self, s):
            self.f.write(s)

    def run(kind, n, pause, path):
        f = open(path, "w")
        write = f.write
        holder = {"out": f}
        log = Log(f)
        try:
            for i in ParaLoop(range(n), num_processes=2):
                if pause:
                    time.sleep(pause)
                if kind == "method":
                    write(f"{i}\\n")
                elif kind == "dict":
                    holder["out"].write(f"{i}\\n")
                else:
                    log.line(f"{i}\\n")
        except paraloop.ParaLoopError:
            return "refused"
        finally:
            f.close()
        with open(path) as g:
            return g.read().split()

    import paraloop
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("kind", ["method", "dict", "object"])
def test_an_open_file_reached_through_a_method_a_dict_or_an_attribute(
    load_module: Loader, tmp_path: Path, kind: str
) -> None:
    """The plain loop writes 300 lines.  paraloop wrote 3 or 4 (the caller's own; with every
    iteration in the workers, 0) and raised nothing.  The body uses f only through
    ``write``, ``holder["out"]`` or ``log.f``; by its own name f is refused ('a
    _io.TextIOWrapper that belongs to this process ... use backend='threads'')."""
    module = load_module(FILE_INSIDE)
    got = module.run(kind, 300, 0.002, str(tmp_path / "out.txt"))
    assert got == "refused" or got == [str(i) for i in range(300)]


# --- Items of list and dict subclasses, changed in place -----------------------------------------

SUBCLASS_ITEMS = """
    import time
    from paraloop import ParaLoop

    class Tagged(list):
        pass

    class TaggedDict(dict):
        pass

    def run(kind, n, pause):
        items = [Tagged([i]) for i in range(n)] if kind == "list" else [TaggedDict(k=i) for i in range(n)]
        try:
            for item in ParaLoop(items, num_processes=2):
                if pause:
                    time.sleep(pause)
                item.tag = item_value(item) * 2
        except paraloop.ParaLoopError:
            return "refused"
        return [getattr(item, "tag", None) for item in items]

    def item_value(item):
        return item[0] if isinstance(item, list) else item["k"]

    import paraloop
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize(("n", "pause"), [(5, 0.0), (300, 0.0005)])
def test_an_attribute_set_on_an_item_of_a_list_or_dict_subclass(
    load_module: Loader, kind: str, n: int, pause: float
) -> None:
    """The plain loop leaves item.tag == 2 * value on every item (threads too).  With the
    caller's chunks and with the workers', every tag was None: no error, the changes lost."""
    module = load_module(SUBCLASS_ITEMS)
    got = module.run(kind, n, pause)
    assert got == "refused" or got == [2 * i for i in range(n)]


# --- Comprehensions whose iterations turn slow ----------------------------------------------------

COMPREHENSIONS = """
    import math, time
    from paraloop import ParaLoop

    def f(i, turn, pause):
        if i >= turn:
            time.sleep(pause)
        return math.sin(i)

    def run(n, turn, pause):
        a = [f(i, turn, pause) for i in ParaLoop(list(range(n)), num_processes=2)]
        b = {str(i % 97): f(i, turn, pause) for i in ParaLoop(range(n), num_processes=2) if i % 3}
        c = {round(f(i, turn, pause), 2) for i in ParaLoop(range(n), num_processes=2)}
        d = sum(f(i, turn, pause) for i in ParaLoop(range(n), num_processes=2))
        return a, list(b.items()), sorted(c), d.hex()
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(
    ("n", "turn", "pause"), [(3000, 500, 0.0003), (200, 100, 0.002), (20000, 10**9, 0.0)]
)
def test_comprehensions_whose_iterations_turn_slow(
    load_module: Loader, n: int, turn: int, pause: float
) -> None:
    """List, dict (with a condition) and set comprehensions and a generator expression summed:
    their kept chunks stop at the deadline and give items back; the values, key order and the
    sum's bits are the plain loop's."""
    module = load_module(COMPREHENSIONS)
    assert module.run(n, turn, pause) == _plain(COMPREHENSIONS, "run", n, turn, 0.0)


# --- Read-ahead in bytes when the items grow --------------------------------------------------------

GROWING_ITEMS = """
    import resource
    from paraloop import ParaLoop

    items = [bytes([i % 256]) * 10 for i in range(3000)]
    items += [bytes([i % 256]) * 1_000_000 for i in range(200)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0
    for b in ParaLoop(items, num_processes=2):
        total += b[0]
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(total, extra // 1024)
"""


@pytest.mark.parametrize("caller_runs", ["default", "0"])
def test_items_that_grow_large_after_small_ones_keep_read_ahead_bounded_in_bytes(
    tmp_path: Path, caller_runs: str
) -> None:
    """Memory: read-ahead is bounded in bytes; a loop over large items holds a few chunks,
    never the input.  With uniform 1 MB items paraloop holds about 50 MB beyond the input
    (tests/test_adversarial_caller.py); with small items first it held 380 MB, twice the 200 MB
    of large items, with the caller taking part or not."""
    extra = {} if caller_runs == "default" else {"PARALOOP_CALLER_RUNS": "0"}
    done = _script(tmp_path, GROWING_ITEMS, **extra)
    assert done.returncode == 0, done.stderr
    total, extra_mb = map(int, done.stdout.split())
    assert total == sum(i % 256 for i in range(3000)) + sum(i % 256 for i in range(200))
    assert extra_mb < 100, f"the loop held {extra_mb} MB beyond the input (200 MB of large items)"


# --- Subclasses of builtins as reductions ------------------------------------------------------------

SUBCLASS_REDUCTIONS = """
    import time
    from collections import Counter, OrderedDict
    from paraloop import ParaLoop

    class MyList(list):
        def __iter__(self):
            return reversed(list(list.__iter__(self)))

    class MyInt(int):
        def __add__(self, other):
            return MyInt(int(self) + int(other) + 1)

    class MyStr(str):
        pass

    class MyDict(dict):
        pass

    def run(n, pause):
        out = MyList()
        total = MyInt(0)
        s = MyStr("")
        d = MyDict()
        od = OrderedDict()
        c = Counter()
        for i in ParaLoop(range(n), num_processes=2):
            if pause:
                time.sleep(pause)
            out.append(i)
            total += i
            s += str(i % 10)
            d[i % 13] = i
            od[str(i % 7)] = i
            c[i % 5] += 1
        values = (out, total, s, d, od, c)
        return (
            [type(v).__name__ for v in values],
            list(list.__iter__(out)),
            int(total),
            str(s),
            list(d.items()),
            list(od.items()),
            list(c.items()),
        )
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize(("n", "pause"), [(5, 0.0), (300, 0.0), (300, 0.0005), (5000, 0.0)])
def test_reductions_onto_subclasses_of_builtins(load_module: Loader, n: int, pause: float) -> None:
    """A list subclass with its own __iter__, an int subclass with its own __add__, str, dict,
    OrderedDict and Counter reductions over the caller's chunks and the workers': the plain
    types, values and orders."""
    module = load_module(SUBCLASS_REDUCTIONS)
    assert module.run(n, pause) == _plain(SUBCLASS_REDUCTIONS, "run", n, 0.0)


# --- KeyboardInterrupt raised by the body, in a chunk the caller runs beside the workers ------------

INTERRUPTING = """
    from paraloop import ParaLoop

    def spin(k):
        s = 0
        for j in range(k):
            s += j
        return s

    def run(n, at, work):
        total = 0
        try:
            for i in ParaLoop(range(n), num_processes=2):
                total += spin(work)
                if i >= at:
                    raise KeyboardInterrupt(i)
        except KeyboardInterrupt as error:
            return error.args
        return total
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("at", [2000, 5000])
def test_a_keyboard_interrupt_the_body_raises_is_the_earliest_iterations(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """The plain loop raises KeyboardInterrupt(at).  Under fork, 20,000 iterations of about
    10 us: paraloop raised KeyboardInterrupt(8470 or so), an iteration of a chunk the caller
    ran while the workers held the earlier ones (40 runs of 40).  A ValueError raised the
    same way is the earliest iteration's."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    module = load_module(INTERRUPTING)
    assert [module.run(20000, at, 200) for _ in range(3)] == [(at,)] * 3


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("at", [2000, 5000])
def test_a_value_error_the_body_raises_beside_the_workers_is_the_earliest_iterations(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """The same loop raising ValueError: the earliest iteration's, wherever it ran."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    module = load_module(INTERRUPTING.replace("KeyboardInterrupt", "ValueError"))
    assert [module.run(20000, at, 200) for _ in range(3)] == [(at,)] * 3


# --- A captured object whose __class__ lies -----------------------------------------------------------

LYING_CLASS = """
    import time
    from paraloop import ParaLoop

    def _make(cls, items):
        made = object.__new__(cls)
        made.items = items
        return made

    class Box:
        def __init__(self):
            self.items = []
        def __reduce__(self):
            return (_make, (Box, self.items))

    class ClaimsToBeAClass:
        def __init__(self):
            self.items = []
        def __reduce__(self):
            return (_make, (ClaimsToBeAClass, self.items))
        @property
        def __class__(self):
            return type

    def run(kind, n, pause):
        box = Box() if kind == "honest" else ClaimsToBeAClass()
        def note(x):
            box.items.append(x)
        try:
            for i in ParaLoop(range(n), num_processes=2):
                if pause:
                    time.sleep(pause)
                note(i)
        except paraloop.ParaLoopError:
            return "refused"
        return len(box.items)

    import paraloop
"""


@pytest.mark.parametrize(
    "kind",
    [
        "honest",
        "lying",
    ],
)
@pytest.mark.parametrize("caller_runs", ["default", "0"])
def test_a_change_through_a_helper_to_an_object_whose_class_lies(
    tmp_path: Path, kind: str, caller_runs: str
) -> None:
    """The plain script appends 5 and 300 items through the helper.  An honest object is
    refused ('an iteration changed 'box'...'); one whose __class__ property says ``type`` was
    not: the 300 iterations left 1 to 4 items with the caller taking part (the caller's own),
    and both loops 0 without.  (In an importable module the loop is refused; the script's objects travel by
    value.)"""
    extra = {} if caller_runs == "default" else {"PARALOOP_CALLER_RUNS": "0"}
    done = _script(
        tmp_path,
        textwrap.dedent(LYING_CLASS) + f"\nprint(run({kind!r}, 5, 0.0), run({kind!r}, 300, 0.0005))\n",
        **extra,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split()
    assert first in ("refused", "5") and second in ("refused", "300"), done.stdout


# --- Tuple items whose mutable part an iteration changes ---------------------------------------------

ENUMERATED = """
    from paraloop import ParaLoop

    def run(n, how):
        records = [{"v": i} for i in range(n)]
        pairs = enumerate(records) if how == "iterator" else list(enumerate(records))
        for k, record in ParaLoop(pairs, num_processes=2):
            record["w"] = k * 2
        return [record["w"] for record in records]
"""


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("how", ["iterator", "list"])
@pytest.mark.parametrize("caller_runs", ["default", "0"])
def test_enumerated_dicts_changed_in_place_past_item_256(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, how: str, caller_runs: str
) -> None:
    """``for k, record in ParaLoop(enumerate(records)): record["w"] = k * 2``: the plain loop
    (and the threads backend) sets every record; on processes, with the caller taking part or
    not, 200 records pass and 300 raise ParaLoopError at iteration 257."""
    if caller_runs == "0":
        monkeypatch.setenv("PARALOOP_CALLER_RUNS", "0")
    module = load_module(ENUMERATED)
    assert module.run(300, how) == [2 * k for k in range(300)]


@pytest.mark.usefixtures("caller_on")
@pytest.mark.parametrize("chunksize", [1, 7, 100000])
def test_iterations_that_turn_slow_with_a_chunk_size_given(load_module: Loader, chunksize: int) -> None:
    """A fixed chunk size ignores the caller's ``minimum`` (a kept loop is many chunks of that
    size), and the deadline still cuts a chunk of 100,000: the plain result."""
    source = TURNING.replace("num_processes=2)", f"num_processes=2, chunksize={chunksize})")
    module = load_module(source)
    assert module.run(2000, 300, 0.0005) == _plain(TURNING, "run", 2000, 0, 0.0)
