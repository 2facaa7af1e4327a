"""The runtime as a user sees it: order, initial values, control flow, errors, crashes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import paraloop
from paraloop.errors import RemoteTraceback

START_METHODS = ["fork", "forkserver", "spawn"]

Loader = Callable[..., ModuleType]


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("workers,chunksize", [(1, None), (2, None), (2, 1), (3, 7)])
def test_concatenate_keeps_iteration_order(
    load_module: Loader, method: str, workers: int, chunksize: int | None
) -> None:
    """Concatenated results come back in iteration order, whatever the workers and chunks."""
    module = load_module(f"""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        words = Variable(["start"], aggregation_strategy=s.Concatenate)
        keys = Variable({{"first": 0}}, aggregation_strategy=s.Concatenate)
        text = Variable(">", aggregation_strategy=s.Concatenate)
        total = Variable(3, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(200), num_processes={workers}, chunksize={chunksize}, start_method={method!r}):
            words.append(i * i)
            keys[f"k{{i}}"] = i
            text += str(i % 10)
            total += i
    """)
    assert module.words.value == ["start"] + [i * i for i in range(200)]
    assert list(module.keys.value) == ["first"] + [f"k{i}" for i in range(200)]
    assert module.text.value == ">" + "".join(str(i % 10) for i in range(200))
    assert module.total.value == 3 + sum(range(200))
    assert type(module.total.value) is int


def test_combined_value_keeps_identity(load_module: Loader) -> None:
    """Other names bound to a Variable's list see the combined result."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        shared = [1, 2]
        alias = shared
        out = Variable(shared, aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(30), num_processes=2):
            out.append(i)
    """)
    assert module.alias is module.out.value
    assert module.alias == [1, 2, *range(30)]


def test_iterations_run_in_other_processes(load_module: Loader) -> None:
    """The body runs in worker processes, not in the caller."""
    module = load_module("""
        import os
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        pids = Variable(set(), aggregation_strategy=s.Union)
        for i in ParaLoop(range(20), num_processes=2, chunksize=1):
            pids.add(os.getpid())
    """)
    assert module.pids.value
    assert os.getpid() not in module.pids.value


def test_names_bound_by_the_loop_hold_the_last_value(load_module: Loader) -> None:
    """The target and names bound in the body hold the last iteration's values."""
    module = load_module("""
        from paraloop import ParaLoop
        for i, (a, *rest) in ParaLoop([(n, (n * 2, n, n)) for n in range(50)], num_processes=2):
            square = i * i
            if i % 7 == 0:
                seventh = i
    """)
    assert (module.i, module.a, module.rest, module.square, module.seventh) == (49, 98, [49, 49], 2401, 49)


def test_names_in_a_function_and_an_empty_loop(load_module: Loader) -> None:
    """Inside a function, bound names come back; an empty loop leaves them unbound."""
    module = load_module("""
        from paraloop import ParaLoop
        def last(items, offset):
            for item in ParaLoop(items, num_processes=2):
                shifted = item + offset
            return item, shifted
        def empty():
            for item in ParaLoop([], num_processes=2):
                pass
            return item
    """)
    assert module.last(list(range(10)), 100) == (9, 109)
    with pytest.raises(UnboundLocalError):
        module.empty()


def test_continue_break_and_else(load_module: Loader) -> None:
    """continue skips, break keeps exactly the prefix, else runs only without break."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        def run(stop):
            seen = Variable([], aggregation_strategy=s.Concatenate)
            finished = False
            for i in ParaLoop(range(100), num_processes=2, chunksize=3):
                if i % 2:
                    continue
                seen.append(i)
                if i == stop:
                    break
                seen.append(-i)
            else:
                finished = True
            return seen.value, finished, i
    """)
    expected: list[int] = []
    for i in range(0, 41, 2):
        expected.append(i)
        if i != 40:
            expected.append(-i)
    assert module.run(40) == (expected, False, 40)
    full, finished, last = module.run(-1)
    assert finished is True and last == 99 and len(full) == 100


def test_break_ends_an_infinite_iterable(load_module: Loader) -> None:
    """A loop over an endless generator finishes at its break."""
    module = load_module("""
        import itertools
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        total = Variable(0, aggregation_strategy=s.Sum)
        for i in ParaLoop(itertools.count(), num_processes=2):
            if i == 5000:
                break
            total += i
    """)
    assert module.total.value == sum(range(5000))
    assert module.i == 5000


def test_return_from_the_body(load_module: Loader) -> None:
    """return in the body returns the earliest returning iteration's value."""
    module = load_module("""
        from paraloop import ParaLoop
        def first_multiple(items, k):
            for x in ParaLoop(items, num_processes=2, chunksize=2):
                if x % k == 0:
                    return x
            return None
    """)
    assert module.first_multiple([5, 9, 14, 21, 28, 35], 7) == 14
    assert module.first_multiple([1, 2, 3], 11) is None


def test_exception_is_raised_with_its_type_traceback_and_prefix_state(load_module: Loader) -> None:
    """An iteration's exception reaches the caller with the worker traceback; state is the prefix."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        seen = Variable([], aggregation_strategy=s.Concatenate)
        def run():
            for i in ParaLoop(range(100), num_processes=2, chunksize=4):
                seen.append(i)
                if i == 37:
                    raise KeyError(f"missing {i}")
    """)
    with pytest.raises(KeyError) as caught:
        module.run()
    error = caught.value
    assert error.args == ("missing 37",)
    assert isinstance(error.__cause__, RemoteTraceback)
    # Line 9 of the file: the marker line, a blank line, then the source above.
    assert f'File "{module.__file__}", line 9, in run' in error.__cause__.text
    if sys.version_info >= (3, 11):
        assert any("iteration 37" in note for note in error.__notes__)
    else:
        assert "iteration 37" in error.__cause__.text
    assert module.seen.value == list(range(38))


def test_sequential_backend_gives_the_same_result(load_module: Loader) -> None:
    """backend="sequential" runs in the caller with the same semantics."""
    module = load_module("""
        import os
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        pids = Variable(set(), aggregation_strategy=s.Union)
        total = Variable(10, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(100), backend="sequential"):
            pids.add(os.getpid())
            total += i
    """)
    assert module.pids.value == {os.getpid()}
    assert module.total.value == 10 + sum(range(100))


def test_environment_variable_selects_the_backend(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PARALOOP_BACKEND overrides the code's backend."""
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    module = load_module("""
        import os
        from paraloop import ParaLoop
        for i in ParaLoop(range(10), num_processes=2):
            pid = os.getpid()
    """)
    assert module.pid == os.getpid()


def test_input_is_read_lazily(load_module: Loader) -> None:
    """An endless generator is read a chunk at a time and never materialized."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        consumed = 0
        in_flight = []
        def numbers():
            global consumed
            for n in range(10**12):
                consumed += 1
                yield n
        total = Variable(0, aggregation_strategy=s.Sum)
        for i in ParaLoop(numbers(), num_processes=2, chunksize=10):
            if i == 25:
                break
            total += i
    """)
    assert module.total.value == sum(range(25))
    # How far the other worker got past the break depends on timing; what is
    # certain is that the generator was read in chunks, never to its end.
    assert module.consumed % 10 == 0
    assert module.consumed < 10**6


def test_sequential_backend_reads_the_iterable_as_the_plain_loop(load_module: Loader) -> None:
    """Inline, an iterator is read one item at a time: exactly up to the breaking item."""
    module = load_module("""
        from paraloop import ParaLoop
        consumed = 0
        def numbers():
            global consumed
            for n in range(10**12):
                consumed += 1
                yield n
        for i in ParaLoop(numbers(), backend="sequential", chunksize=10):
            if i == 25:
                break
    """)
    assert module.consumed == 26


def test_worker_crash_is_an_error_and_the_pool_recovers(load_module: Loader) -> None:
    """A worker that dies raises WorkerCrashedError naming its iterations; the next loop works."""
    module = load_module("""
        import os
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        def crash():
            for i in ParaLoop(range(40), num_processes=2, chunksize=5):
                if i == 12:
                    os._exit(7)
        def fine():
            total = Variable(0, aggregation_strategy=s.Sum)
            for i in ParaLoop(range(40), num_processes=2, chunksize=5):
                total += i
            return total.value
    """)
    with pytest.raises(
        paraloop.WorkerCrashedError,
        match=r"iterations 10 to 14.*exited with code 7|exited with code 7.*iterations 10 to 14",
    ):
        module.crash()
    assert module.fine() == sum(range(40))


def test_nested_paraloop_runs_inside_the_worker(load_module: Loader) -> None:
    """A ParaLoop inside a ParaLoop body runs sequentially in the worker, correctly."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        rows = Variable([], aggregation_strategy=s.Concatenate)
        for i in ParaLoop(range(6), num_processes=2):
            row = Variable([], aggregation_strategy=s.Concatenate)
            for j in ParaLoop(range(4)):
                row.append(i * j)
            rows.append(row.value)
    """)
    assert module.rows.value == [[i * j for j in range(4)] for i in range(6)]


def test_a_loop_in_a_method_and_a_class_body(load_module: Loader) -> None:
    """Loops in methods read self; loops in class bodies bind class attributes."""
    module = load_module("""
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        class Scaler:
            for k in ParaLoop(range(3), num_processes=2):
                last = k
            def __init__(self, factor):
                self.factor = factor
            def scale(self, values):
                out = Variable([], aggregation_strategy=s.Concatenate)
                for v in ParaLoop(values, num_processes=2):
                    out.append(v * self.factor)
                return out.value
    """)
    assert module.Scaler.last == 2
    assert module.Scaler(3).scale([1, 2, 3]) == [3, 6, 9]


def test_unpicklable_value_not_read_after_the_loop_is_fine(load_module: Loader) -> None:
    """A body-local value that cannot be pickled does not need to travel back."""
    module = load_module("""
        import threading
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        def run():
            total = Variable(0, aggregation_strategy=s.Sum)
            for i in ParaLoop(range(10), num_processes=2):
                lock = threading.Lock()
                with lock:
                    total += i
            return total.value
    """)
    assert module.run() == 45


def test_variable_refuses_a_mismatched_strategy() -> None:
    """A Variable whose value its strategy cannot combine is refused at creation."""
    from paraloop import Variable
    from paraloop import aggregation_strategies as s

    with pytest.raises(paraloop.ParaLoopError, match="Concatenate"):
        Variable([], aggregation_strategy=s.Sum)
    with pytest.raises(paraloop.ParaLoopError, match="Union"):
        Variable(set(), aggregation_strategy=s.Sum)


def test_iterations_after_a_break_are_cancelled_promptly(load_module: Loader) -> None:
    """A break does not wait for slow iterations running elsewhere; the next loop runs at once."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def search():
            began = time.monotonic()
            for i in ParaLoop(range(4), num_processes=2, chunksize=1):
                if i == 0:
                    break
                time.sleep(60)
            return i, time.monotonic() - began
        def quick():
            out = []
            for i in ParaLoop(range(4), num_processes=2, chunksize=1):
                out.append(i)
            return out
    """)
    import time

    began = time.monotonic()
    found, _inside = module.search()
    assert found == 0
    assert module.quick() == [0, 1, 2, 3]
    # Both loops together, far below the 60 s the cancelled iteration would take.
    assert time.monotonic() - began < 20


@pytest.mark.parametrize("method", START_METHODS)
def test_a_module_of_the_project_reaches_the_workers_as_the_caller_changed_it(
    load_module: Loader, method: str
) -> None:
    """The body reads a project module's attribute set after import: workers see the new value.

    Modules of the user's project travel with their namespace (dill's way); only
    installed modules and paraloop's own travel by name.
    """
    settings = load_module("threshold = 1\n", marked=False)
    module = load_module(f"""
        from paraloop import ParaLoop
        import {settings.__name__} as settings
        def run():
            seen = []
            for i in ParaLoop(range(20), num_processes=2, start_method={method!r}):
                seen.append(settings.threshold)
            return seen
    """)
    settings.threshold = 5
    assert module.run() == [5] * 20


def test_a_scripts_functions_travel_by_the_standard_pickle() -> None:
    """A loop in a script (``__main__``) whose body calls the script's own functions: its job goes
    through the standard pickle with the functions by value, not through dill (milliseconds per
    loop: a warm 10-iteration loop in a script took 3.3 ms, 1.6 ms now); a class of the script
    still needs dill, which sends it by value."""
    from paraloop import serialize

    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(
        "import math\n"
        "def helper(x):\n    return math.sqrt(x) + OFFSET\n"
        "def body(x):\n    return helper(x) * 2\n"
        "OFFSET = 1.0\n"
        "class Point:\n    pass\n"
        "def uses_class(x):\n    return Point()\n",
        namespace,
    )
    data = serialize.dumps_function_job(("job", namespace["body"]), namespace["body"])
    assert data is not None and data[:1] == b"P"
    assert b"__main__" not in data
    name, body = serialize.loads(data)
    assert name == "job" and body(16.0) == 10.0
    assert body is not namespace["body"]  # a copy, as a worker gets it
    assert serialize.dumps_function_job(namespace["uses_class"], namespace["uses_class"]) is None


def test_a_loop_whose_checks_kept_up_ends_without_a_round_trip(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-of-loop check (see paraloop.guard) goes only to workers that left captured objects
    unchecked: a small loop over small captured values sends none (it was two of its seven
    messages), and a change to a large object in the last chunk is still caught (see also
    test_no_silent_loss's test of a change in the last iteration, left for the end's check)."""
    from paraloop.backends.processes import handle
    from paraloop.backends.processes.protocol import CHECK

    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    # Every fingerprint cheaper than a second is taken after each chunk (fork workers inherit
    # this), so no worker leaves anything unchecked however loaded the machine is.
    from paraloop import guard
    from paraloop.backends.processes.pool import shutdown_pools

    monkeypatch.setattr(guard, "_ALWAYS", 1.0)
    shutdown_pools()  # workers forked from now on
    kinds: list[int] = []
    real = handle.Worker.send

    def send(worker: Any, kind: int, *args: Any, **kwargs: Any) -> None:
        kinds.append(kind)
        real(worker, kind, *args, **kwargs)

    monkeypatch.setattr(handle.Worker, "send", send)
    module = load_module("""
        from paraloop import ParaLoop
        scale = {"factor": 3}
        def small():
            total = 0
            for i in ParaLoop(range(10), num_processes=2):
                total += i * scale["factor"]
            return total
        big = {"rows": list(range(300_000))}
        def change_at_the_end():
            for i in ParaLoop(range(40), num_processes=2, chunksize=20):
                if i == 39:
                    big["rows"][0] = -1
    """)
    assert module.small() == 135  # new workers: their first checks may be left for the end
    kinds.clear()
    assert module.small() == 135
    assert CHECK not in kinds and kinds
    with pytest.raises(paraloop.ParaLoopError, match="'big'"):
        module.change_at_the_end()
    shutdown_pools()  # none of these workers serves a later test


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sys_exit_in_the_body_sets_the_exit_status_with_tblib_installed(tmp_path: Any, method: str) -> None:
    """A body's sys.exit(3) ends the program with status 3, as the plain loop does, also once
    tblib's pickling support is installed (Dask installs it process-wide, and a forked worker
    inherits it): tblib rebuilds a SystemExit without its code, and the program exited with 0."""
    import subprocess

    pytest.importorskip("tblib", reason="tblib comes with dask[distributed], in the test environments")
    script = tmp_path / "exits.py"
    script.write_text(
        "# paraloop: enable\n"
        "import sys\n"
        "import tblib.pickling_support\n"
        "tblib.pickling_support.install()\n"
        "from paraloop import ParaLoop\n"
        f"for i in ParaLoop(range(4), num_processes=2, start_method={method!r}):\n"
        "    if i == 2:\n"
        "        sys.exit(3)\n"
    )
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    done = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)], env=environment, capture_output=True, timeout=120
    )
    assert done.returncode == 3, done.stderr


def test_a_worker_started_by_a_loop_in_a_thread_calls_its_thread_main(load_module: Loader) -> None:
    """A forked child's one thread keeps the name of the thread that forked it: a worker started
    by a loop run in a program's thread answered 'Thread-1 (work)' to the body's
    threading.current_thread().name, in that loop and every later one it served."""
    module = load_module("""
        import threading
        from paraloop import ParaLoop

        def names():
            found = set()
            for i in ParaLoop(range(6), num_processes=2, chunksize=1, start_method="fork"):
                found.add(threading.current_thread().name)
            return found

        def in_a_thread():
            found = {}
            worker = threading.Thread(target=lambda: found.update(names=names()), name="Thread-1 (work)")
            worker.start()
            worker.join()
            return found["names"], names()
    """)
    assert module.in_a_thread() == ({"MainThread"}, {"MainThread"})


def test_items_that_only_mention_main_travel_by_the_standard_pickle() -> None:
    """A path to a package's ``__main__.py`` among a loop's items is a string like any other:
    its chunk goes through the standard pickle, not dill (several times slower, in the
    caller).  Something of the script itself still goes through dill, by value."""
    import __main__
    from paraloop import serialize

    items = ["/usr/lib/python3/json/__main__.py", "/usr/lib/python3/venv/__main__.py", "__main__x"]
    assert serialize.dumps(items)[:1] == b"P"
    assert serialize.loads(serialize.dumps(items)) == items

    def of_the_script(x: int) -> int:
        return x + 1

    of_the_script.__module__ = "__main__"
    of_the_script.__qualname__ = "of_the_script"
    had = getattr(__main__, "of_the_script", None)
    __main__.of_the_script = of_the_script  # type: ignore[attr-defined]
    try:
        data = serialize.dumps([of_the_script])
        assert data[:1] == b"D"
    finally:
        if had is None:
            del __main__.of_the_script  # type: ignore[attr-defined]


@pytest.mark.parametrize("alarms", [0, 3], ids=["first alarm", "after false alarms"])
def test_the_word_main_travels_by_the_standard_pickle_and_the_script_s_objects_by_dill(
    alarms: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial result that counts the word ``__main__`` (a word count over Python sources
    does) holds that exact string: it still goes through the standard pickle, dozens of
    times faster than dill for a large dict.  Beside that string, a function of the script,
    an instance of its class, or a partial of its function still goes through dill; so too
    once false alarms made serialize look for references first."""
    import functools
    from collections import defaultdict

    import __main__
    from paraloop import serialize

    monkeypatch.setattr(serialize, "_false_alarms", alarms)

    counts = defaultdict(int, {"__main__": 3, "import": 7, "if": 2})
    assert serialize.dumps(counts)[:1] == b"P"
    assert serialize.loads(serialize.dumps(counts)) == counts

    def of_the_script(x: int) -> int:
        return x + 1

    class OfTheScript:
        pass

    for value, name in ((of_the_script, "of_the_script"), (OfTheScript, "OfTheScript")):
        value.__module__ = "__main__"
        value.__qualname__ = name
    had = {name: getattr(__main__, name, None) for name in ("of_the_script", "OfTheScript")}
    __main__.of_the_script = of_the_script  # type: ignore[attr-defined]
    __main__.OfTheScript = OfTheScript  # type: ignore[attr-defined]
    try:
        for carried in (of_the_script, OfTheScript(), functools.partial(of_the_script, 1)):
            data = serialize.dumps([counts, carried])
            assert data[:1] == b"D", carried
    finally:
        for name, value in had.items():
            if value is None:
                delattr(__main__, name)
            else:
                setattr(__main__, name, value)
