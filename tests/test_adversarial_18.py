"""Adversarial tests of the per-worker features: per_worker, max_iterations_per_worker, config, progress.

Each test states what a user expects: the plain loop's result, or a ParaLoopError that names
the loop's file and line with advice that works.  A test marked xfail(strict) is a finding
still open (its reason says where the fix belongs).
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import run_script

import paraloop
from paraloop import ParaLoopError
from paraloop.backends.processes.pool import shutdown_pools
from paraloop.settings import current

Loader = Callable[..., ModuleType]


# --- per_worker: the handle where the body's name is not substituted -----------------------

HELPERS = """
    import os, sqlite3
    import paraloop
    from paraloop import ParaLoop

    MADE = {made!r}

    def load(scale):
        with open(MADE, "a") as log:
            log.write(f"{{os.getpid()}}\\n")
        return {{"scale": scale, "bias": 1}}

    model = paraloop.per_worker(load, 10)
    conn = paraloop.per_worker(sqlite3.connect, ":memory:")

    def predict(x):
        # The handle as a global of a function the body calls: the plain loop's object.
        return model["scale"] * x + model["bias"]

    def measure():
        return len(model), sorted(model), "scale" in model, bool(model)

    def insert(x):
        with conn:
            return conn.execute("select ?", (x,)).fetchone()[0]

    def run():
        predictions, sizes, inserted = [], [], []
        for x in ParaLoop(range(12), num_processes=2):
            predictions.append(predict(x))
            sizes.append(measure())
            inserted.append(insert(x))
        return predictions, sizes, inserted
"""


def test_a_function_the_body_calls_subscripts_measures_and_enters_the_handle(
    every_backend: str, load_module: Loader, tmp_path: Path
) -> None:
    """``model["scale"]``, ``len(model)``, ``for key in model``, ``in``, ``with conn:`` in a
    helper worked on the object in a plain loop, but the handle answered TypeError ('PerWorker'
    object is not subscriptable / does not support the context manager protocol): only
    attribute access and calls were passed on.  The caller still makes no object."""
    made = tmp_path / "made.log"
    module = load_module(HELPERS.format(made=str(made)))
    predictions, sizes, inserted = module.run()
    assert predictions == [10 * x + 1 for x in range(12)]
    assert sizes == [(2, ["bias", "scale"], True, True)] * 12
    assert inserted == list(range(12))
    if every_backend not in ("threads", "sequential"):
        assert str(os.getpid()) not in made.read_text().split()


def test_the_handle_outside_loops_stands_for_the_object(load_module: Loader) -> None:
    """Outside loops the handle is this thread's object for the container protocols too."""
    module = load_module("""
        import paraloop
        items = paraloop.per_worker(list, [3, 1, 2])
        empty = paraloop.per_worker(dict)
    """)
    assert len(module.items) == 3
    assert list(module.items) == [3, 1, 2]
    assert module.items[0] == 3
    module.items[0] = 5
    assert 5 in module.items
    del module.items[0]
    assert list(module.items) == [1, 2]
    assert not module.empty  # an empty dict is false, as the object is


def test_a_helper_reads_the_objects_attributes_named_like_the_handles_slots(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the body ``job.args`` is the object's; in a function the body calls it was the
    handle's own ``args`` slot (the factory's arguments), and ``job.key`` a random hex string:
    the handle passes attribute access on only for names it does not have itself.  A
    ``subprocess.Popen``, a ``functools.partial`` or an ``argparse.Namespace`` has ``args``."""
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    module = load_module("""
        import paraloop
        from paraloop import ParaLoop

        class Job:
            def __init__(self, name):
                self.args = ["run", name]
                self.kwargs = {"retries": 2}
                self.key = "job-key"
                self.factory = "tool"

        job = paraloop.per_worker(Job, "nightly")

        def describe():
            return job.args, job.kwargs, job.key, job.factory

        def run():
            seen = []
            for i in ParaLoop(range(2)):
                seen.append((describe(), (job.args, job.kwargs, job.key, job.factory)))
            return seen
    """)
    expected = (["run", "nightly"], {"retries": 2}, "job-key", "tool")
    assert module.run() == [(expected, expected)] * 2


def test_an_object_returned_from_a_threads_body_is_not_closed_under_the_caller(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain loop hands back a usable object; worker processes refuse one that does not
    pickle with a ParaLoopError naming the name.  The threads backend hands back the thread's
    object and then closes it as the thread finishes the loop: the caller holds closed objects
    without a word."""
    monkeypatch.setenv("PARALOOP_BACKEND", "threads")
    module = load_module("""
        import paraloop
        from paraloop import ParaLoop

        class Resource:
            def __init__(self):
                self.closed = False
            def close(self):
                self.closed = True

        resource = paraloop.per_worker(Resource)

        def run():
            kept = []
            for i in ParaLoop(range(8), num_processes=2):
                kept.append(resource)
            return kept
    """)
    try:
        kept = module.run()
    except ParaLoopError as error:
        assert "'kept'" in str(error)
    else:
        assert [each.closed for each in kept] == [False] * 8


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_factory_that_exits_exits_as_the_body_would(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The body's ``sys.exit(3)`` reaches the caller as SystemExit(3), as in the plain loop.  The
    same call in a per-worker factory killed the worker and was reported as a crash ('exited
    with code 3 ... if it ran out of memory, use fewer workers')."""
    monkeypatch.setenv("PARALOOP_BACKEND", "processes")
    monkeypatch.setenv("PARALOOP_START_METHOD", method)
    module = load_module("""
        import sys
        import paraloop
        from paraloop import ParaLoop

        def connect():
            sys.exit(3)

        conn = paraloop.per_worker(connect)

        def run():
            for i in ParaLoop(range(4), num_processes=2):
                conn.execute("select 1")
    """)
    with pytest.raises(SystemExit) as caught:
        module.run()
    assert caught.value.code == 3


@pytest.mark.parametrize("backend", ["fork", "threads"])
def test_a_factory_slower_than_the_timeout_is_named(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Making the object counts against timeout= (documented), but the error said only
    'iteration 0 (item 0) ran longer than timeout=0.5 s ... find out why that iteration is
    slow': the body is fast, the factory is not.  The error names the handle."""
    if backend == "fork":
        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    else:
        monkeypatch.setenv("PARALOOP_BACKEND", backend)
    module = load_module("""
        import threading
        import paraloop
        from paraloop import ParaLoop

        release = threading.Event()

        def load():
            release.wait(5)  # a model that takes long to load
            return 2

        model = paraloop.per_worker(load)

        def run():
            out = []
            for i in ParaLoop(range(4), num_processes=2, timeout=0.5):
                out.append(model * i)
            return out
    """)
    try:
        with pytest.raises(paraloop.IterationTimeoutError) as caught:
            module.run()
    finally:
        module.release.set()
    message = str(caught.value) + " ".join(getattr(caught.value, "__notes__", []))
    assert "'model'" in message and "per_worker(" in message


def test_factory_arguments_that_do_not_pickle_get_advice_that_works(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory argument that does not pickle is refused, but the advice 'Create it inside the
    body' is the opposite of what per_worker is for (the body would make it every iteration).
    The advice that works: pass what identifies the object and make the rest in the factory."""
    monkeypatch.setenv("PARALOOP_BACKEND", "processes")
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    module = load_module("""
        import sqlite3
        import paraloop
        from paraloop import ParaLoop

        source = sqlite3.connect(":memory:")
        cursor = paraloop.per_worker(lambda conn: conn.cursor(), source)

        def run():
            for i in ParaLoop(range(4), num_processes=2):
                cursor.execute("select 1")
    """)
    with pytest.raises(ParaLoopError) as caught:
        module.run()
    message = str(caught.value)
    assert "'cursor'" in message and "line" in message
    assert "inside the body" not in message
    assert "factory" in message


# --- max_iterations_per_worker: results and processes ---------------------------------------


def _children() -> int:
    import psutil

    return len(psutil.Process().children(recursive=True))


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_recycling_ends_however_the_loop_ends_and_leaves_no_process(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """N=1, N above the loop's length, a fixed chunksize, break, an exception, return, a
    timeout, a generator input and a generator expression dropped half read: the plain loop's
    results, never more workers than asked for, none left after the pools shut down."""
    pytest.importorskip("psutil")
    monkeypatch.setenv("PARALOOP_BACKEND", "processes")
    monkeypatch.setenv("PARALOOP_START_METHOD", method)
    module = load_module("""
        from paraloop import ParaLoop

        def squares(limit, chunksize=None, timeout=None):
            out = []
            for i in ParaLoop(range(12), num_processes=2, max_iterations_per_worker=limit,
                              chunksize=chunksize, timeout=timeout):
                out.append(i * i)
            return out

        def broken(limit):
            seen = []
            for i in ParaLoop(range(30), num_processes=2, max_iterations_per_worker=limit):
                if i == 9:
                    break
                seen.append(i)
            return seen

        def raising(limit):
            for i in ParaLoop(range(30), num_processes=2, max_iterations_per_worker=limit):
                if i == 7:
                    raise LookupError(i)

        def returning(limit):
            for i in ParaLoop(range(30), num_processes=2, max_iterations_per_worker=limit):
                if i == 5:
                    return i
            return None

        def numbers():
            yield from range(15)

        def from_generator(limit):
            out = []
            for i in ParaLoop(numbers(), num_processes=2, max_iterations_per_worker=limit):
                out.append(i + 1)
            return out

        def half_read(limit):
            doubles = (2 * i for i in ParaLoop(range(40), num_processes=2, max_iterations_per_worker=limit))
            return [next(doubles) for _ in range(3)]
    """)
    before = _children()
    assert module.squares(1) == [i * i for i in range(12)]
    assert module.squares(100) == [i * i for i in range(12)]
    assert module.squares(3, chunksize=5) == [i * i for i in range(12)]
    assert module.squares(2, timeout=30) == [i * i for i in range(12)]
    assert module.broken(2) == list(range(9))
    with pytest.raises(LookupError):
        module.raising(1)
    assert module.returning(2) == 5
    assert module.from_generator(4) == list(range(1, 16))
    assert module.half_read(1) == [0, 2, 4]
    # Two workers, plus the forkserver and resource tracker for the other methods.
    helpers = 0 if method == "fork" else 2
    assert _children() - before <= 2 + helpers
    shutdown_pools()
    assert _children() - before <= helpers  # no worker left behind


@pytest.mark.parametrize("name", ["max_tasks_per_child", "worker_lifespan", "maxtasksperchild"])
def test_the_stdlib_and_mpire_names_for_recycling_name_max_iterations_per_worker(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """n_jobs= and max_workers= are refused naming num_processes; the names a stdlib or mpire user
    types for recycling were refused with a list of options that does not hold the right one
    (max_iterations_per_worker is missing from it)."""
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    module = load_module(f"""
        from paraloop import ParaLoop

        def run():
            for i in ParaLoop(range(3), {name}=5):
                pass
    """)
    with pytest.raises(ParaLoopError) as caught:
        module.run()
    assert "max_iterations_per_worker=5" in str(caught.value)


# --- paraloop.config: contexts ---------------------------------------------------------------


def test_a_generator_leaving_its_block_late_neither_drops_nor_brings_back_blocks() -> None:
    """A generator suspended inside a ``config`` block runs in its caller's context.  When it
    left its block after the caller had entered one of its own, the caller's block was lost
    (restored to what the generator saw on entry), and once the caller left its block the
    generator's settings came back for the rest of the program."""

    def numbers() -> Iterator[int]:
        with paraloop.config(backend="sequential"):
            yield 1
            yield 2

    assert dict(current()) == {}
    suspended = numbers()
    next(suspended)
    with paraloop.config(num_processes=3):
        for _ in suspended:
            pass
        assert dict(current()) == {"num_processes": 3}
    assert dict(current()) == {}


def test_a_block_left_in_another_context_does_not_raise() -> None:
    """A block entered in one context and left in another (a generator resumed by another
    asyncio task, an ``__exit__`` run by a context manager stack elsewhere) raised contextvars'
    ValueError ('was created in a different Context') from paraloop's ``__exit__``."""
    block = paraloop.config(backend="threads")
    entered = contextvars.copy_context()
    entered.run(block.__enter__)
    assert entered.run(lambda: dict(current())) == {"backend": "threads"}
    block.__exit__(None, None, None)
    assert dict(current()) == {}


def test_one_block_object_entered_by_two_threads_at_once() -> None:
    """A ``config`` object kept in a global and entered by two threads, the first leaving first:
    the first thread's exit took the second thread's entry (contextvars' ValueError), and its
    own block stayed in force."""
    shared = paraloop.config(backend="threads")
    entered, left = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:
        try:
            with shared:
                entered.set()
                assert second_entered.wait(30)
            seen["first after"] = dict(current())
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            seen["first error"] = repr(error)
        finally:
            left.set()

    def second() -> None:
        assert entered.wait(30)
        with shared:
            second_entered.set()
            assert left.wait(30)
            seen["second inside"] = dict(current())
        seen["second after"] = dict(current())

    second_entered = threading.Event()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == {
        "first after": {},
        "second inside": {"backend": "threads"},
        "second after": {},
    }


def test_blocks_nest_reenter_and_survive_exceptions_and_tasks() -> None:
    """The usual shapes still behave: nesting, one block entered twice, an exception inside,
    asyncio tasks seeing the blocks they were created in."""
    outer = paraloop.config(backend="threads", num_processes=2)
    with outer:
        with paraloop.config(num_processes=3):
            assert dict(current()) == {"backend": "threads", "num_processes": 3}
        with outer:
            assert dict(current()) == {"backend": "threads", "num_processes": 2}
        assert dict(current()) == {"backend": "threads", "num_processes": 2}
    with pytest.raises(KeyError), paraloop.config(backend="sequential"):
        raise KeyError
    assert dict(current()) == {}

    async def seen() -> dict[str, object]:
        return dict(current())

    async def main() -> tuple[dict[str, object], dict[str, object]]:
        with paraloop.config(chunksize=4):
            inside = asyncio.create_task(seen())
        outside = asyncio.create_task(seen())
        return await inside, await outside

    assert asyncio.run(main()) == ({"chunksize": 4}, {})


# --- progress= -------------------------------------------------------------------------------

tqdm = pytest.importorskip("tqdm")


@pytest.fixture
def bars_left() -> Iterator[Callable[[], int]]:
    before = set(tqdm.tqdm._instances)
    yield lambda: len(set(tqdm.tqdm._instances) - before)


@pytest.mark.parametrize(
    "options",
    [
        {"file": 5},
        {"mininterval": "1"},
        {"total": "ten"},
        {"unit_scale": "x"},
    ],
    ids=["file-int", "mininterval-str", "total-str", "unit_scale-str"],
)
def test_values_tqdm_cannot_use_are_refused_naming_the_line_and_leave_no_bar(
    load_module: Loader,
    monkeypatch: pytest.MonkeyPatch,
    bars_left: Callable[[], int],
    options: dict[str, object],
) -> None:
    """A keyword tqdm takes with a value it cannot use: file=5 raised a bare AttributeError and
    mininterval="1" a bare TypeError from the middle of the loop (neither naming the loop), and
    a bar tqdm refused while drawing stayed registered in tqdm, pushing every later bar down a
    line."""
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    module = load_module("""
        import io
        from paraloop import ParaLoop

        def run(options):
            total = 0
            for i in ParaLoop(range(10), progress={"file": io.StringIO(), **options}):
                total += i
            return total
    """)
    with pytest.raises(ParaLoopError) as caught:
        module.run(options)
    line = (
        Path(module.__file__)
        .read_text()
        .splitlines()
        .index('    for i in ParaLoop(range(10), progress={"file": io.StringIO(), **options}):')
    )
    assert f"{module.__file__}, line {line + 1}: tqdm refused" in str(caught.value)
    assert bars_left() == 0
    assert module.run({}) == 45  # the next bar is fine


def test_a_working_bar_still_counts_every_iteration(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, bars_left: Callable[[], int]
) -> None:
    """The check of a bar's values at its start adds no iteration to the bar."""
    monkeypatch.setenv("PARALOOP_BACKEND", "threads")
    module = load_module("""
        from paraloop import ParaLoop

        def run(bar):
            return [i for i in ParaLoop(range(25), progress={"file": bar, "mininterval": 0})]
    """)
    bar = io.StringIO()
    assert module.run(bar) == list(range(25))
    assert "25/25" in bar.getvalue().split("\r")[-1]
    assert bars_left() == 0


def test_missing_tqdm_names_the_progress_dict_given(tmp_path: Path) -> None:
    """Without tqdm, progress={...} was reported as 'progress=True needs tqdm'."""
    script = tmp_path / "no_tqdm.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        sys.modules["tqdm"] = None
        from paraloop import ParaLoop
        for i in ParaLoop(range(3), progress={"desc": "files"}, backend="sequential"):
            pass
    """)
    )
    result = run_script(script)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert f"{script}, line 5: progress={{'desc': 'files'}} needs tqdm" in last
    assert "pip install" in last


def test_a_disabled_bar_needs_no_tqdm(tmp_path: Path) -> None:
    """progress={"disable": not verbose} is tqdm's idiom for a quiet run; without tqdm it was
    refused ('needs tqdm') although no bar is asked for."""
    script = tmp_path / "quiet.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        sys.modules["tqdm"] = None
        from paraloop import ParaLoop
        verbose = False
        total = 0
        for i in ParaLoop(range(10), progress={"disable": not verbose}, backend="sequential"):
            total += i
        print(total)
    """)
    )
    result = run_script(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["45"]
