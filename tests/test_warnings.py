"""Warnings the body shows: the program's filters decide, and a warning shows as often as in the
plain loop (paraloop/warnings_relay.py).

Before, a spawn or forkserver worker had the interpreter's default filters: a program that made
warnings errors (``warnings.simplefilter("error")``) saw its loop run to its end, the warning
printed by a worker; and a warning the plain loop shows once per place showed once per worker.
``catch_warnings(record=True)``, ``pytest.warns`` and ``logging.captureWarnings`` around the loop
saw none of the workers' warnings.

Each loop here is differential: the plain loop runs the same body under the same filters.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS, last_json, run_source, use_backend

Loader = Callable[..., ModuleType]


@pytest.fixture(params=[*START_METHODS, "caller", "threads", "sequential"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every backend whose workers take the program's filters (a Dask worker keeps its own)."""
    return use_backend(request.param, request, monkeypatch)


RUN = """
    def run_NAME(action, fatal, items):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter(action)
            warnings.simplefilter("error", Fatal)
            # Python 3.12+ warns at a fork of a process with threads (a test runner's): paraloop's
            # fork workers, not the body's (docs/semantics.md).
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            try:
                for i in ITERABLE:
                    if i == 25 and fatal:
                        warnings.warn("fatal", Fatal)
                    warnings.warn(f"text {i % 4}")
                    helper(i)
                    out.append(i)
            except Fatal as error:
                out.append(f"raised {error}")
        first = run_NAME.__code__.co_firstlineno  # the line, counted from the function's own
        return out, [(str(w.message), w.category.__name__, w.lineno - first, w.filename) for w in seen]
"""

HEAD = """
import warnings
from paraloop import ParaLoop


class Fatal(UserWarning):
    pass


class Tagged(UserWarning):
    pass


def helper(i):
    # Attributed to the caller's line (stacklevel=2), as libraries warn.
    warnings.warn(f"from helper {i % 2}", Tagged, stacklevel=2)
"""


def _source() -> str:
    return (
        textwrap.dedent(HEAD)
        + textwrap.dedent(RUN).replace("NAME", "plain").replace("ITERABLE", "items")
        + textwrap.dedent(RUN).replace("NAME", "parallel").replace("ITERABLE", "ParaLoop(items)")
    )


@pytest.mark.parametrize(
    ("action", "fatal"),
    [
        ("always", False),
        ("default", False),
        ("once", False),
        ("module", False),
        ("ignore", False),
        ("default", True),
    ],
)
def test_warnings_are_decided_and_shown_as_in_the_plain_loop(
    load_module: Loader, backend: str, action: str, fatal: bool
) -> None:
    """Each filter action, around a loop of 40 iterations that warn (the body itself, and a
    helper on the body's behalf): the warnings recorded around the loop are the plain loop's,
    in its order; a warning the filters make an error raises at its iteration."""
    module = load_module(_source())
    plain = module.run_plain(action, fatal, list(range(40)))
    parallel = module.run_parallel(action, fatal, list(range(40)))
    if backend == "threads":
        # The iterations warn at once into the one process: the same warnings, in no order.
        assert parallel[0] == plain[0]
        assert sorted(parallel[1]) == sorted(plain[1])
    else:
        assert parallel == plain
    if fatal:
        assert plain[0][-1] == "raised fatal"


@pytest.mark.parametrize("action", ["default", "once", "module", "ignore"])
def test_a_dask_worker_shows_a_warning_as_often_as_the_plain_loop(
    load_module: Loader, action: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Dask, whose workers keep their own filters (docs/semantics.md), the actions that show a
    warning at most once per place, or never: the plain loop's warnings (before: once per worker)."""
    use_backend("dask", request, monkeypatch)
    module = load_module(_source())
    assert module.run_parallel(action, False, list(range(40))) == module.run_plain(
        action, False, list(range(40))
    )


def test_a_warning_in_a_worker_reaches_pytest_warns(load_module: Loader, every_backend: str) -> None:
    """``pytest.warns`` around a loop whose workers warn (before: failed, "DID NOT WARN", on
    every backend with other processes)."""
    module = load_module(
        """
        import warnings
        from paraloop import ParaLoop

        def run(items):
            total = 0
            for i in ParaLoop(items):
                if i == 30:
                    warnings.warn(f"careful with {i}", RuntimeWarning)
                total += i
            return total
        """
    )
    with pytest.warns(RuntimeWarning, match="careful with 30"):
        assert module.run(list(range(40))) == sum(range(40))


PROGRAM = """
    # paraloop: enable
    import json, time, warnings
    from paraloop import ParaLoop

    class Slow(UserWarning):
        pass

    warnings.simplefilter("error", Slow)  # the program's own filter, set once at its top

    out = []
    try:
        for i in ParaLoop(range(40), caller_runs=False):
            time.sleep(0.002)
            warnings.warn("once per place")  # the default action: shown once
            if i == 30:
                warnings.warn("too slow", Slow)
            out.append(i)
    except Slow as error:
        out.append(str(error))
    print(json.dumps(out))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_programs_filters_reach_its_workers(tmp_path: object, method: str) -> None:
    """A program that makes a warning of its own an error, run as a user runs it: the loop raises
    it at its iteration (before, under spawn and forkserver: the loop ran to its end and the
    warning was printed), and the default action's warning shows once on stderr, as the plain
    loop's (before: once per worker)."""
    plain = run_source(tmp_path, PROGRAM, PARALOOP_BACKEND="sequential")  # type: ignore[arg-type]
    parallel = run_source(tmp_path, PROGRAM, PARALOOP_START_METHOD=method)  # type: ignore[arg-type]
    assert last_json(parallel) == last_json(plain) == [*range(30), "too slow"]
    assert parallel.stderr == plain.stderr
    assert parallel.stderr.count("UserWarning: once per place") == 1


MIXED = """
    # paraloop: enable
    import io, json, logging, sys, threading, time, warnings
    from paraloop import ParaLoop

    class Tagged(UserWarning):
        def __init__(self, text, tag=None):
            super().__init__(text, tag)
            self.tag = tag

    results = {}

    # A warning with an attribute of its own, and one whose argument cannot be pickled.
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in ParaLoop(range(6), caller_runs=False):
            if i == 2:
                warnings.warn(Tagged("tagged", tag=i))
            if i == 4:
                warnings.warn(UserWarning(threading.Lock()))
    results["kept"] = [(type(w.message).__name__, getattr(w.message, "tag", None)) for w in seen]

    # Into a replaced stderr, between the body's prints, iterations that wait (run in lanes).
    buffer = io.StringIO()
    saved, sys.stderr = sys.stderr, buffer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for i in ParaLoop(range(24), caller_runs=False):
                time.sleep(0.02)
                print(f"before {i}", file=sys.stderr)
                warnings.warn(f"in {i}")
    finally:
        sys.stderr = saved
    results["stderr"] = [line for line in buffer.getvalue().splitlines() if not line.startswith("  ")]

    # logging.captureWarnings: the program's logger takes the workers' warnings.
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage().strip().splitlines()[0].split(": ", 1)[-1])

    logging.getLogger("py.warnings").addHandler(Keep())
    logging.captureWarnings(True)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for i in ParaLoop(range(10), caller_runs=False):
            warnings.warn("logged")
    logging.captureWarnings(False)
    results["logged"] = records
    print(json.dumps(results))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_warnings_keep_their_attributes_order_and_handlers(tmp_path: object, method: str) -> None:
    """A warning's own attributes survive (one that cannot travel comes as its text); warnings
    land in a replaced stderr between the body's prints in the plain loop's order, lanes or not;
    logging.captureWarnings logs each once (before: lost, or once per worker)."""
    plain = last_json(run_source(tmp_path, MIXED, PARALOOP_BACKEND="sequential"))  # type: ignore[arg-type]
    parallel = last_json(run_source(tmp_path, MIXED, PARALOOP_START_METHOD=method))  # type: ignore[arg-type]
    assert parallel == plain
    assert plain["kept"] == [["Tagged", 2], ["UserWarning", None]]
    assert plain["logged"] == ["UserWarning: logged"]


def test_a_filter_that_cannot_travel_stays_behind(load_module: Loader, backend: str) -> None:
    """A filter a library put into ``warnings.filters`` by hand, holding what cannot be pickled (a
    matcher with a lock): the loop runs as the plain loop (the message to the workers would fail
    to pickle, and every loop of the program with it)."""
    module = load_module(
        """
        import threading, warnings
        from paraloop import ParaLoop

        class Matcher:
            def __init__(self):
                self.lock = threading.Lock()

            def match(self, text):
                return False

        def run(items):
            total = 0
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                warnings.filters.insert(0, ("ignore", Matcher(), UserWarning, None, 0))
                for i in ParaLoop(items):
                    if i % 10 == 0:
                        warnings.warn(f"at {i}")
                    total += i
            return total, [str(w.message) for w in seen]
        """
    )
    total, seen = module.run(list(range(40)))
    assert total == sum(range(40))
    if backend == "threads":
        # The iterations warn at once into the one process, in no order (docs/semantics.md; CI saw
        # "at 0" last once, py313).
        seen = sorted(seen, key=lambda text: int(text.split()[1]))
    assert seen == ["at 0", "at 10", "at 20", "at 30"]


SECOND_PASS = """
    # paraloop: enable
    import json, sys, threading, time, warnings
    from paraloop import ParaLoop

    CASE = sys.argv[1]

    class Pair(UserWarning):
        def __init__(self, a, b):  # not the text alone: pickles, but loads only by hand
            super().__init__(f"{a} and {b}")

    class Point:
        def __init__(self, x):
            self.x = x

    def library_call(i):
        # A library that insists on its notice, whatever the program's filters.
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("library notice")
        return i

    def note():
        warnings.warn("shown once per place")

    generated = {}
    exec(compile("import warnings\\ndef g(i):\\n    warnings.warn('from exec code')\\n    return i\\n", "<generated>", "exec"), generated)

    total = 0
    if CASE == "error_program_library_always":
        warnings.simplefilter("error")  # a test run with -W error
        for i in ParaLoop(range(20), caller_runs=False):
            total += library_call(i)
    elif CASE == "ignore_program_library_always":
        warnings.simplefilter("ignore")
        for i in ParaLoop(range(20), caller_runs=False):
            total += library_call(i)
    elif CASE == "always_in_each_iteration":
        for i in ParaLoop(range(20), caller_runs=False):
            warnings.simplefilter("always")
            warnings.warn("each time")
            total += i
    elif CASE == "catch_in_body":
        for i in ParaLoop(range(20), caller_runs=False):
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                warnings.warn(f"inner {i}")
            warnings.warn("outer")
            total += i
    elif CASE == "exec_code":
        for i in ParaLoop(range(20), caller_runs=False):
            total += generated["g"](i)
    elif CASE == "custom_init":
        for i in ParaLoop(range(20), caller_runs=False):
            if i == 7:
                warnings.warn(Pair(i, "x"))
            total += i
    elif CASE == "thread_in_lanes":
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for i in ParaLoop(range(24), caller_runs=False):
                time.sleep(0.02)
                thread = threading.Thread(target=lambda: warnings.warn("from a thread"))
                thread.start()
                thread.join()
                total += i
        total = (total, len(seen))
    elif CASE == "registry_kept":
        note()
        for point in ParaLoop([Point(i) for i in range(40)], caller_runs=False):
            total += point.x
        note()
    print(json.dumps(total))
"""


@pytest.mark.parametrize(
    "case",
    [
        "error_program_library_always",
        "ignore_program_library_always",
        "always_in_each_iteration",
        "catch_in_body",
        "exec_code",
        "custom_init",
        "thread_in_lanes",
        "registry_kept",
    ],
)
@pytest.mark.parametrize("method", START_METHODS)
def test_the_workers_filters_decide_and_the_program_shows(tmp_path: object, method: str, case: str) -> None:
    """Session 23's adversarial pass, each case as a user runs it, against the plain loop (stdout,
    stderr, exit status): a library's catch_warnings(...) + simplefilter("always") under a program
    with "error" (crashed as the caller re-decided) or "ignore" (lost); a filter the body sets in
    each iteration; catch_warnings in the body, after which the plain loop shows a warning again;
    code compiled from a string (dropped: no module had its file); a class whose __init__ takes
    other arguments (the chunk's outcome failed to load); a thread an iteration starts while
    chunks run in lanes (shown by the worker, outside the program's record); a warning shown
    before and after a loop whose job holds a class of the script (shown again: dill's
    catch_warnings made the registries forget)."""
    plain = run_source(tmp_path, SECOND_PASS, case, PARALOOP_BACKEND="sequential")  # type: ignore[arg-type]
    parallel = run_source(tmp_path, SECOND_PASS, case, PARALOOP_START_METHOD=method)  # type: ignore[arg-type]
    assert (parallel.returncode, parallel.stdout, parallel.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert plain.returncode == 0, plain.stderr


THIRD_PASS = """
    # paraloop: enable
    import sys, time, warnings
    from paraloop import ParaLoop
    import oncelib

    CASE = sys.argv[1]

    def lazy(i):
        import addsfilter  # adds a filter as it is imported, in each worker

        return addsfilter.f(i)

    total = 0
    if CASE == "import_adds_a_filter":
        for i in ParaLoop(range(60), caller_runs=False):
            time.sleep(0.005)
            total += lazy(i)
    elif CASE in ("module", "once"):
        warnings.simplefilter(CASE)
        warnings.warn("early")  # this module has warned: its registry holds the interpreter's version
        for i in ParaLoop(range(60)):
            time.sleep(0.003)
            if i > 40:
                warnings.warn("late only", FutureWarning)
        warnings.warn("late only", FutureWarning)  # another line, the same text: not shown again
    elif CASE == "once_in_two_modules":
        warnings.simplefilter("once")
        for i in ParaLoop(range(40), caller_runs=False):
            time.sleep(0.003)
            if i % 2:
                oncelib.f()
            else:
                warnings.warn("shared text")
    elif CASE == "break_while_the_caller_runs_on":
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for i in ParaLoop(range(400)):
                warnings.warn(f"w{i}")
                if i == 170:
                    break
                total += i
        total = (total, [str(w.message) for w in seen])
    print(total)
"""

THIRD_FILES = {
    "addsfilter.py": """
        import warnings
        warnings.filterwarnings("ignore", message="unrelated noise")

        def f(i):
            warnings.warn("addsfilter says hi")
            return i
    """,
    "oncelib.py": """
        import warnings

        def f():
            warnings.warn("shared text")
    """,
}


@pytest.mark.parametrize(
    "case",
    ["import_adds_a_filter", "module", "once", "once_in_two_modules", "break_while_the_caller_runs_on"],
)
@pytest.mark.parametrize("method", START_METHODS)
def test_what_shows_once_shows_once_as_in_the_plain_loop(tmp_path: object, method: str, case: str) -> None:
    """Session 23's second adversarial pass: a library that adds a filter as it is imported, which
    each worker imports (shown once per worker); "module" and "once" keep a warning by its text and
    class in the module's own registry, as CPython does (shown again after the loop; "once" of one
    text in two modules shown once); a chunk the caller runs while earlier ones are at the workers,
    past a break (its warnings shown at once, out of order, past the break)."""
    plain = run_source(tmp_path, THIRD_PASS, case, files=THIRD_FILES, PARALOOP_BACKEND="sequential")  # type: ignore[arg-type]
    parallel = run_source(tmp_path, THIRD_PASS, case, files=THIRD_FILES, PARALOOP_START_METHOD=method)  # type: ignore[arg-type]
    assert (parallel.returncode, parallel.stdout, parallel.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert plain.returncode == 0, plain.stderr


def test_a_dask_worker_sends_a_warning_again_after_the_program_s_registries_forgot(
    load_module: Loader, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loops, the program's filters changed between them (its registries forget, as the
    plain loop's do): each loop shows each warning once.  Before: a Dask worker whose registry
    held a warning from the first loop never sent it again, and the second loop lost it."""
    use_backend("dask", request, monkeypatch)
    twice = """
        def run_NAME(items):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("default")
                for i in ITERABLE:
                    warnings.warn(f"text {i}")
                warnings.simplefilter("default")  # the registries forget what they showed
                for i in ITERABLE:
                    warnings.warn(f"text {i}")
            return [str(w.message) for w in seen]
        """
    module = load_module(
        "import warnings\nfrom paraloop import ParaLoop\n"
        + textwrap.dedent(twice).replace("NAME", "plain").replace("ITERABLE", "items")
        + textwrap.dedent(twice).replace("NAME", "parallel").replace("ITERABLE", "ParaLoop(items)")
    )
    plain = module.run_plain(list(range(40)))
    assert len(plain) == 80
    assert module.run_parallel(list(range(40))) == plain


def test_a_dask_worker_sends_each_chunk_s_warnings_under_always(
    load_module: Loader, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``simplefilter("always")`` does not reach a Dask worker, whose own filters show a warning
    once per place: a warning comes from each chunk, at its first iteration that shows it, so one
    iteration per chunk (``chunksize=1``) shows every one, as the plain loop.  Before: once per
    worker and place for the whole loop (2 of 40); and a worker that ran a later chunk first sent
    its warning with that chunk, shown late."""
    use_backend("dask", request, monkeypatch)
    module = load_module(
        """
        import warnings
        from paraloop import ParaLoop

        def run(items):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                for i in ParaLoop(items, chunksize=1):
                    warnings.warn("the same text")
                    warnings.warn(f"text {i % 3}")
            return [str(w.message) for w in seen]
        """
    )
    items = list(range(40))
    assert module.run(items) == [text for i in items for text in ("the same text", f"text {i % 3}")]


def test_a_change_of_the_filters_in_the_body_makes_the_registries_forget_as_in_the_plain_loop(
    load_module: Loader, every_backend: str
) -> None:
    """A ``catch_warnings()`` in the body (a library's, around a call) makes every registry forget
    what it showed: the warning shows again at the next iteration, as in the plain loop.  Before:
    on Dask, the program's registries, which decide a Dask worker's warnings, never forgot (1 of
    5 shown)."""
    module = load_module(
        """
        import warnings
        from paraloop import ParaLoop

        def body(i):
            warnings.warn("the same text")
            if i % 10 == 5:
                with warnings.catch_warnings():
                    pass

        def run(items, parallel):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("default")
                # Python 3.12+ warns at a fork of a process with threads (the test runner's, after
                # a Dask test in the same process): paraloop's fork workers' (docs/semantics.md).
                warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                if parallel:
                    for i in ParaLoop(items, chunksize=4):
                        body(i)
                else:
                    for i in items:
                        body(i)
            return [str(w.message) for w in seen]
        """
    )
    plain = module.run(list(range(40)), False)
    assert len(plain) == 5
    parallel = module.run(list(range(40)), True)
    assert len(parallel) == len(plain)
    assert parallel == plain


def test_a_fork_worker_started_during_an_import_relays_the_body_s_changes_of_the_filters(
    tmp_path: Path,
) -> None:
    """Fork workers first started by a loop at the top level of an imported module (a fork keeps
    the caller's stack, the import's frames included): a later loop's ``catch_warnings()`` in
    the body still makes the registries forget, as in the plain loop.  Before: the workers took
    every change of the filters for a module's import, and sent none (1 warning of 5)."""
    (tmp_path / "starts_the_pool.py").write_text(
        "# paraloop: enable\nfrom paraloop import ParaLoop\ntotal = 0\n"
        "for i in ParaLoop(range(8), num_processes=2):\n    total += i\n"
    )
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, warnings
        import starts_the_pool
        from paraloop import ParaLoop

        def body(i):
            warnings.warn("the same text")
            if i % 10 == 5:
                with warnings.catch_warnings():
                    pass

        def run(parallel):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("default")
                if parallel:
                    for i in ParaLoop(range(40), chunksize=4, num_processes=2):
                        body(i)
                else:
                    for i in range(40):
                        body(i)
            return len(seen)

        print(json.dumps([run(False), run(True)]))
        """,
        PARALOOP_START_METHOD="fork",
        PARALOOP_CALLER_RUNS="0",
    )
    assert last_json(result) == [5, 5]


@pytest.mark.parametrize("action", ["default", "module", "once"])
def test_a_warning_the_loop_showed_is_not_shown_again_by_the_program_after_it(
    load_module: Loader, every_backend: str, action: str
) -> None:
    """After a loop whose iterations showed a warning, the program's own warning of the same text
    from another line shows as after the plain loop: not under "module" (once per module) nor
    "once" (once per text).  Before: shown again after a worker showed it (fork, forkserver,
    spawn): paraloop noted it in the program's registries by keys CPython never reads, in a
    registry CPython then emptied as of another version of the filters."""
    module = load_module(
        """
        import warnings
        from paraloop import ParaLoop

        def run(action, parallel):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter(action)
                if parallel:
                    for i in ParaLoop(range(8)):
                        warnings.warn("the loop's text")
                else:
                    for i in range(8):
                        warnings.warn("the loop's text")
                warnings.warn("the loop's text")
                warnings.warn("another text")
            return [str(w.message) for w in seen]
        """
    )
    plain = module.run(action, False)
    assert len(plain) == (3 if action == "default" else 2)
    assert module.run(action, True) == plain
