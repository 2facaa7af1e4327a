"""Default settings never change a result: lanes only where iterations cannot see each other.

A worker whose iterations mostly wait runs several at once in threads ("lanes"). An
iteration that changes process-wide state (the global random seed, the current directory,
``sys.stdout``, the environment, warnings filters, the recursion limit) would leak into the
iterations beside it, so such loops keep one iteration per worker at a time: seen in the
body when the loop starts, or in the first iterations a worker runs (through a function the
body calls). Each loop below sleeps in the middle of every iteration, which makes paraloop
want lanes, and must give the plain loop's result with default settings under every start
method (docs/semantics.md, docs/backends.md).
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import START_METHODS, last_json, run_script, run_source
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = """\
import contextlib, io, os, random, sys, tempfile, time, warnings
from paraloop import ParaLoop
"""

CASES: dict[str, str] = {
    "the global random seed, per iteration": """
        out = [None] * 24
        for i in ParaLoop(range(24)):
            random.seed(i)
            time.sleep(0.02)
            out[i] = random.random()
        result = out
    """,
    "the current directory": """
        home = os.getcwd()
        folders = [os.path.realpath(tempfile.mkdtemp()) for _ in range(24)]
        seen = [None] * 24
        for i in ParaLoop(range(24)):
            os.chdir(folders[i])
            time.sleep(0.02)
            seen[i] = os.getcwd() == folders[i]
        os.chdir(home)
        result = seen
    """,
    "sys.stdout, redirected": """
        texts = [None] * 24
        for i in ParaLoop(range(24)):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                print("a", i)
                time.sleep(0.02)
                print("b", i)
            texts[i] = buffer.getvalue()
        result = texts
    """,
    "the environment": """
        values = [None] * 24
        for i in ParaLoop(range(24)):
            os.environ["PARALOOP_TEST_ROW"] = str(i)
            time.sleep(0.02)
            values[i] = os.environ["PARALOOP_TEST_ROW"]
        result = values
    """,
    "the recursion limit": """
        limits = [None] * 24
        for i in ParaLoop(range(24)):
            sys.setrecursionlimit(2000 + i)
            time.sleep(0.02)
            limits[i] = sys.getrecursionlimit()
        sys.setrecursionlimit(1000)
        result = limits
    """,
    "numpy's global random seed, per iteration": """
        import numpy as np
        out = [None] * 24
        for i in ParaLoop(range(24)):
            np.random.seed(i)
            time.sleep(0.02)
            out[i] = float(np.random.random())
        result = out
    """,
    "the warnings filters, per iteration": """
        counts = [None] * 24
        for i in ParaLoop(range(24)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.warn(f"iteration {i}")
                time.sleep(0.02)
                warnings.warn(f"iteration {i} again")
            counts[i] = [str(w.message) for w in caught]
        result = counts
    """,
    "the directory, changed in a function the body calls": """
        home = os.getcwd()
        folders = [os.path.realpath(tempfile.mkdtemp()) for _ in range(24)]
        def enter(folder):
            os.chdir(folder)
        seen = [None] * 24
        for i in ParaLoop(range(24)):
            enter(folders[i])
            time.sleep(0.02)
            seen[i] = os.getcwd() == folders[i]
        os.chdir(home)
        result = seen
    """,
}


@pytest.fixture(autouse=True)
def _folders_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folders the loops below make with ``tempfile.mkdtemp()`` go where pytest removes them
    (they were left in /tmp by the dozen at each run)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Default settings (no backend, no worker count), under each start method."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARALOOP_START_METHOD", request.param)
    return str(request.param)


def _plain(body: str) -> Any:
    return run_plain(PRELUDE + textwrap.dedent(body))["result"]


VISITS_A_FOLDER = """
        home = os.getcwd()
        folders = [os.path.realpath(tempfile.mkdtemp()) for _ in range(24)]
        for n, folder in enumerate(folders):
            open(os.path.join(folder, f"only_in_{n}"), "w").close()
        def visit(folder):
            os.chdir(folder)
            try:
                time.sleep(0.01)
                return sorted(os.listdir("."))
            finally:
                os.chdir(home)
        seen = [None] * 24
        for i in ParaLoop(range(24)):
            time.sleep(0.01)
            seen[i] = visit(folders[i])
        result = seen
    """


@pytest.mark.usefixtures("start_method")
def test_a_directory_entered_and_left_in_a_function_gives_the_plain_result_or_a_working_refusal(
    load_module: Loader,
) -> None:
    """A function the body calls enters a folder and leaves it again: the directory looks the
    same after each iteration.  A worker counts os.chdir: its first chunks, run alone, see it
    and keep lanes off (the plain result); a worker whose lanes started before any first chunk
    reported the visit (an early word from a worker whose first iteration had not reached it)
    refuses the loop, naming the directory, and lanes=False then gives the plain result.  Never the lanes' mixed results:
    before the count, only a part whose window began or ended inside another part's visit saw
    it, and the others read whatever directory was current."""
    plain = _plain(VISITS_A_FOLDER)
    try:
        result = load_module(PRELUDE + textwrap.dedent(VISITS_A_FOLDER)).result
    except paraloop.ParaLoopError as refused:
        assert "changed the current directory while others ran beside it" in str(refused)
        assert "lanes=False" in str(refused)
        alone = VISITS_A_FOLDER.replace("ParaLoop(range(24))", "ParaLoop(range(24), lanes=False)")
        result = load_module(PRELUDE + textwrap.dedent(alone)).result
    assert result == plain


SLOW_SESSION_THEN_A_DIRECTORY = """
        home = os.getcwd()
        folders = [os.path.realpath(tempfile.mkdtemp()) for _ in range(16)]
        def connect():
            time.sleep(0.05)  # a session that connects, made once per worker
            return "session"
        session = paraloop.per_worker(connect, thread_safe=True)
        def enter(folder):
            os.chdir(folder)
        seen = [None] * 16
        for i in ParaLoop(range(16), caller_runs=False):
            enter(folders[i])
            time.sleep(0.02)
            seen[i] = (session.upper(), os.getcwd() == folders[i])
        os.chdir(home)
        result = seen
    """


@pytest.mark.usefixtures("start_method")
def test_a_worker_s_time_before_its_first_iteration_is_no_evidence_that_iterations_wait(
    load_module: Loader,
) -> None:
    """A per-worker object whose making waits (a session that connects, shared by a worker's
    threads) before each worker's first iteration, and iterations that change the directory
    first thing (in a function): a worker's early word that its iterations wait came from the
    making's wait, before the first iteration had run a line, and lanes started beside
    iterations that change the directory (refused).  The evidence is now the iterations' own
    time: the plain result.  (Under load, a worker's wait for a CPU where no /proc shows it
    did the same: the portable CI run's refusal of the directory case below.)"""
    source = "import paraloop\n" + PRELUDE + textwrap.dedent(SLOW_SESSION_THEN_A_DIRECTORY)
    assert load_module(source).result == [("SESSION", True)] * 16


@pytest.mark.usefixtures("start_method")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_process_wide_state_gives_the_plain_result_under_the_defaults(case: str, load_module: Loader) -> None:
    body = CASES[case]
    module = load_module(PRELUDE + textwrap.dedent(body))
    assert module.result == _plain(body)


def test_a_waiting_loop_that_keeps_to_itself_still_gets_lanes(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An HTTP-like loop (it only waits) uses no process-wide state: it keeps its lanes."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level("DEBUG", logger="paraloop")
    module = load_module(
        PRELUDE
        + textwrap.dedent("""
        out = []
        for i in ParaLoop(range(64)):
            time.sleep(0.03)
            out.append(i)
    """)
    )
    assert module.out == list(range(64))
    assert "lanes per worker" in caplog.text


@pytest.mark.parametrize("setting", ["code", "environment"])
def test_lanes_can_be_turned_off(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, setting: str
) -> None:
    """lanes=False, or PARALOOP_LANES=0 for a whole program: one iteration per worker at a time."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES"):
        monkeypatch.delenv(name, raising=False)
    options = "lanes=False" if setting == "code" else ""
    if setting == "environment":
        monkeypatch.setenv("PARALOOP_LANES", "0")
    caplog.set_level("DEBUG", logger="paraloop")
    module = load_module(
        PRELUDE
        + textwrap.dedent(f"""
        out = []
        for i in ParaLoop(range(24), {options}):
            time.sleep(0.03)
            out.append(i)
    """)
    )
    assert module.out == list(range(24))
    assert "lanes per worker" not in caplog.text


def test_lanes_must_be_a_boolean() -> None:
    with pytest.raises(paraloop.ParaLoopError, match="lanes="):
        paraloop.ParaLoop(range(3), lanes="yes")  # type: ignore[arg-type]


def test_a_change_made_in_lanes_after_all_is_refused(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lanes=True says the body is thread-safe: an iteration that then changes the directory in
    lanes fails the loop, naming what changed, rather than mixing results."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES"):
        monkeypatch.delenv(name, raising=False)
    home = __import__("os").getcwd()
    try:
        with pytest.raises(paraloop.ParaLoopError, match=r"the current directory.*lanes=False"):
            load_module(
                PRELUDE
                + textwrap.dedent("""
                folders = [tempfile.mkdtemp() for _ in range(64)]
                def enter(folder):
                    os.chdir(folder)
                for i in ParaLoop(range(64), lanes=True):
                    time.sleep(0.03)
                    enter(folders[i])
            """)
            )
    finally:
        __import__("os").chdir(home)


@pytest.mark.parametrize(
    "change",
    [
        "random.random()",
        "os.environ.__setitem__('PARALOOP_TEST_LANES', str(i))",
        "os.chdir(tempfile.gettempdir()); os.chdir(home)",
        "chdir(tempfile.gettempdir()); chdir(home)",
    ],
    ids=[
        "a draw from the global generator",
        "an environment change",
        "a directory entered and left",
        "a directory entered and left through a name imported from os",
    ],
)
def test_a_change_any_part_makes_in_lanes_is_refused(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A chunk in lanes reads the process-wide state once around all its parts: a change made by
    an iteration late in the loop (after lanes started, in a function the body calls) is still
    refused, naming it, not mixed into the results of the parts beside it.  A directory entered
    and left again within one iteration too: a worker counts os.chdir, so the part that did it
    sees it whatever the other parts' windows (before, only a part whose window began or ended
    while another part was in that directory saw it)."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES", "PARALOOP_TEST_LANES"):
        monkeypatch.delenv(name, raising=False)
    what = (
        "the global random generator"
        if "random" in change
        else "the current directory"
        if "chdir" in change
        else "the environment"
    )
    home = __import__("os").getcwd()
    try:
        with pytest.raises(paraloop.ParaLoopError, match=rf"changed {what} while others ran beside it"):
            load_module(
                PRELUDE
                + textwrap.dedent(f"""
                from os import chdir
                home = os.getcwd()
                def late(i):
                    if i >= 40:
                        {change}
                out = []
                for i in ParaLoop(range(64), lanes=True):
                    time.sleep(0.03)
                    late(i)
                    out.append(i)
            """)
            )
    finally:
        __import__("os").environ.pop("PARALOOP_TEST_LANES", None)
        __import__("os").chdir(home)


def test_a_worker_that_imports_the_random_generators_still_gets_lanes(tmp_path: Path) -> None:
    """A spawn worker imports numpy's global generator before its first iteration (to watch it
    for draws); that import is no change of process-wide state, and a waiting loop keeps its
    lanes (before: the first chunk looked as if it had moved numpy's generator)."""
    script = tmp_path / "waits.py"
    script.write_text(
        textwrap.dedent("""
        import logging, time
        import numpy.random
        from paraloop import ParaLoop
        logging.basicConfig(level=logging.DEBUG, format="%(message)s")
        out = []
        for i in ParaLoop(range(64), start_method="spawn"):
            time.sleep(0.03)
            out.append(i)
        print(out == list(range(64)))
        """)
    )
    result = run_script(script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert "lanes per worker" in result.stderr, result.stderr[-2000:]


def test_a_worker_pickling_an_outcome_is_no_change_a_lane_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker pickles one chunk's outcome (here an object of a class of the script, which
    travels by value with its methods' code) while lanes of another chunk run and look at the
    process-wide state.  dill reads a code object inside ``warnings.catch_warnings()``, which puts
    a copy of the warnings filters in place for a moment: a lane looking meanwhile saw the filters
    changed, and a loop that changes nothing was refused (CI, py312, spawn: "an iteration changed
    the warnings filters while others ran beside it").  Here one thread pickles as a worker does
    and this one looks as the lanes do: every look must see the state as it was."""
    import sys
    import threading
    import types

    from paraloop import serialize
    from paraloop.process_state import changed, snapshot

    script = types.ModuleType("__mp_main__")
    exec(  # a class of the script, as a spawn worker has it
        "class Point:\n"
        + "".join(f"    def m{k}(self, a=1):\n        return self, a + {k}\n" for k in range(40)),
        script.__dict__,
    )
    monkeypatch.setitem(sys.modules, "__mp_main__", script)
    monkeypatch.setattr(serialize, "in_worker_process", True)
    point = script.Point()
    # Threads take turns often: many of the pickler's moments meet a look.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    looks: list[str | None] = []
    done = threading.Event()

    def pickle_outcomes() -> None:
        try:
            pickled = 0
            while pickled < 50 or len(looks) < 20_000:
                serialize.dumps_by_value(point)
                pickled += 1
        finally:
            done.set()

    before = snapshot({})
    thread = threading.Thread(target=pickle_outcomes)
    try:
        thread.start()
        while not done.is_set():
            looks.append(changed(before, snapshot({})))
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert [look for look in looks if look is not None] == []


FIDELITY = """
    import pickle, posix
    home = os.getcwd()
    out = [None] * 8
    for i in ParaLoop(range(8), caller_runs=False):
        if i == 0:
            os.chdir(path=FOLDER)
            out[i] = os.getcwd() == FOLDER
        elif i == 1:
            descriptor = os.open(FOLDER, os.O_RDONLY)
            try:
                os.fchdir(descriptor)
                out[i] = os.getcwd() == FOLDER
            finally:
                os.close(descriptor)
        elif i == 2:
            try:
                os.chdir(os.path.join(FOLDER, "missing"))
            except FileNotFoundError as error:
                out[i] = (type(error).__name__, error.errno)
        elif i == 3:
            try:
                os.chdir()
            except TypeError as error:
                out[i] = str(error)
        elif i == 4:
            out[i] = [os.chdir in os.supports_fd, os.chdir is posix.chdir, os.putenv is posix.putenv]
        elif i == 5:
            # By reference, as the built-in functions pickle.
            out[i] = [pickle.loads(pickle.dumps(f)) is f for f in (os.chdir, os.fchdir, os.putenv)]
        elif i == 6:
            out[i] = (os.chdir, os.unsetenv)
        else:
            out[i] = (os.chdir.__name__, os.chdir.__module__, os.chdir.__doc__ == posix.chdir.__doc__)
        os.chdir(home)
    result = [out[:6], out[6] == (os.chdir, os.unsetenv) and out[6][0] is os.chdir, out[7]]
"""


@pytest.mark.usefixtures("start_method")
def test_a_workers_counted_chdir_and_putenv_behave_as_the_built_in_ones(
    load_module: Loader, tmp_path: Path
) -> None:
    """A worker counts os.chdir, os.fchdir, os.putenv and os.unsetenv (see
    process_state.count_writes): in the body they take the same arguments (path= by keyword, a
    descriptor), raise what the built-in ones raise, are os's and posix's alike, pickle by
    reference (a ProcessPoolExecutor's initializer=os.chdir, a result holding os.chdir: the
    adversary's F4 and F5 raised PicklingError or came back as another function), and name
    themselves as the built-in ones do."""
    source = PRELUDE + textwrap.dedent(FIDELITY.replace("FOLDER", repr(str(tmp_path))))
    assert load_module(source).result == run_plain(source)["result"]


@pytest.mark.parametrize(
    "call",
    [
        "os.chdir(home)",
        "os.chdir('.')",
        "contextlib.suppress(FileNotFoundError).__enter__() or None",
        "missing()",
    ],
    ids=["the directory it is in", "dot", "nothing", "a directory that is not there"],
)
def test_a_chdir_that_changes_nothing_counts_nothing(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """An os.chdir that fails, or into the directory the process is in, changes nothing: in lanes
    the loop gives the plain result (the adversary's F1: every call counted, the loop refused)."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES"):
        monkeypatch.delenv(name, raising=False)
    source = PRELUDE + textwrap.dedent(f"""
        home = os.getcwd()
        def missing():
            try:
                os.chdir(os.path.join(home, "no such folder"))
            except FileNotFoundError:
                pass
        out = []
        for i in ParaLoop(range(64), lanes=True):
            time.sleep(0.02)
            {call}
            out.append(os.getcwd() == home)
        result = out
    """)
    assert load_module(source).result == [True] * 64


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
@pytest.mark.parametrize("portable", ["1", "0"], ids=["no /proc", "Linux"])
def test_a_waiting_loop_beside_numpys_generator_is_not_refused_for_paraloops_own_import(
    tmp_path: Path, method: str, portable: str
) -> None:
    """A worker's lanes limit OpenMP through threadpoolctl where /proc is missing (macOS), whose
    import sets KMP_DUPLICATE_LIB_OK in the environment: imported by the first lane, that write
    fell inside the lanes' watch and a loop that changes nothing was refused, "an iteration
    changed the environment" (under spawn and forkserver, numpy's generator loaded, the
    variable not set by the program)."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import os, time
        os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
        import numpy.random
        from paraloop import ParaLoop
        out = []
        for i in ParaLoop(range(64), lanes=True, caller_runs=False):
            time.sleep(0.03)
            out.append(i)
        print(out == list(range(64)), "KMP_DUPLICATE_LIB_OK" in os.environ)
        """,
        PARALOOP_PORTABLE=portable,
        PARALOOP_START_METHOD=method,
    )
    assert (result.returncode, result.stdout) == (0, "True False\n"), result.stderr[-2000:]


def test_the_callers_chunks_count_changes_put_back_and_leave_its_functions_as_they_were(
    tmp_path: Path,
) -> None:
    """While the caller runs a loop's first chunks it counts an environment variable set and
    removed, a locale set and put back, a warnings filter and a stdout redirect left again, as a
    worker does (the loop then gives the plain result, its workers running no lanes beside such
    iterations); afterwards the program's os, posix, locale, signal and contextlib hold their own
    functions again."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import contextlib, io, json, locale, os, posix, signal, time, warnings
        from paraloop import ParaLoop

        functions = lambda: [
            os.putenv, os.unsetenv, os.chdir, os.fchdir, posix.putenv, posix.unsetenv, posix.chdir,
            locale.setlocale, signal.signal, contextlib._RedirectStream.__enter__,
        ]
        before = functions()

        def visit(i):
            os.environ["STEP"] = str(i)
            value = int(os.environ["STEP"])
            del os.environ["STEP"]
            locale.getpreferredencoding()
            with warnings.catch_warnings():
                warnings.simplefilter("error")
            with contextlib.redirect_stdout(io.StringIO()):
                print(i)
            return value

        out = []
        for i in ParaLoop(range(64)):
            time.sleep(0.01)
            out.append(visit(i))
        after = functions()
        print(json.dumps([out == list(range(64)), [a is b for a, b in zip(before, after)]]))
        """,
        PARALOOP_START_METHOD="fork",
    )
    assert last_json(result) == [True, [True] * 10]
