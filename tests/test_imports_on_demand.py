"""Imports on demand: a program pays only for what its loops use.

multiprocess (with dill, which it imports) costs a process 25-30 ms to import, paraloop's
worker side a few more: a program whose loops all end in the caller (a short loop, or one
the caller finishes sooner than workers would start) imports none of them.  The first
loop that needs a worker imports them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from conftest import product_environment, run_program

PROGRAM = """
    # paraloop: enable
    import json, sys
    from paraloop import ParaLoop

    def short():
        total = 0
        for i in ParaLoop(range(10)):
            total += i
        return total

    def long(n):
        total = 0
        for i in ParaLoop(range(n), caller_runs=False):
            total += i * i
        return total

    LIGHT = (
        "logging", "traceback", "queue", "glob", "paraloop.backends.threads", "sysconfig",
        "paraloop.openblas_direct",
    )  # fmt: skip

    if __name__ == "__main__":
        before = set(sys.modules)
        results = [short()]
        after_short = set(sys.modules) - before
        # The marked module's import brought the runtime: logging and traceback not with it, nor
        # the threads backend (with queue) and glob, which only loops on threads and coverage use,
        # nor sysconfig (1.1 ms) nor OpenBLAS's own controller, which the program does not use.
        light = {m: m in sys.modules for m in LIGHT}
        results.append(long(1000))
        after_long = set(sys.modules) - before
        print(json.dumps({
            "results": results,
            "after_short": sorted(after_short),
            "after_long": sorted(after_long),
            "preloaded": sorted(m for m in ("multiprocess", "dill") if m in before),
            "light": light,
        }))
"""

HEAVY = ("multiprocess", "dill", "ctypes", "paraloop.backends.processes.child")


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_loop_that_ends_in_the_caller_imports_no_worker_machinery(tmp_path: Path, method: str) -> None:
    """A loop the caller finishes imports none of multiprocess, dill, ctypes nor paraloop's
    worker side; the next loop, which runs in workers, imports them, and both give the plain
    loop's result.  (Where the environment imports multiprocess at start, as tox's py313
    does to make forkserver the default, those two are already there.)"""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(PROGRAM))
    result = run_program(script, PARALOOP_START_METHOD=method)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["results"] == [45, sum(i * i for i in range(1000))]
    expected_late = [m for m in HEAVY if m not in seen["preloaded"]]
    if method == "fork":
        # Fork workers are paraloop's own (see forked.py): multiprocess and dill never load,
        # nor ctypes (their clock is a memoryview of shared memory).
        late = {"multiprocess", "dill", "ctypes"}
        assert not late & set(seen["after_long"]), seen["after_long"]
        expected_late = [m for m in expected_late if m not in ("multiprocess", "dill", "ctypes")]
    assert not set(HEAVY) & set(seen["after_short"]), seen["after_short"]
    # Nor logging (paraloop's lines go to it only once the program imported it, see
    # paraloop.log), traceback (imported by the first iteration that raises), the threads
    # backend or glob, sysconfig (paraloop.tracebacks asks site where libraries are) or
    # openblas_direct (imported where OpenBLAS is found), unless the environment preloaded
    # multiprocess, which imports them.  (numbers, _socket and paraloop.shared are imported with
    # the runtime on purpose: see paraloop/number_types.py.)
    if not seen["preloaded"]:
        assert not any(seen["light"].values()), seen["light"]
    assert set(expected_late) - {"ctypes"} <= set(seen["after_long"]), seen["after_long"]


def test_the_default_start_method_is_told_as_multiprocess_tells_it(tmp_path: Path) -> None:
    """paraloop tells multiprocess's default start method without importing it (see
    pool.default_method): the same answer multiprocess gives in a fresh interpreter.  Run
    without site (``-S``), so that a .pth file that changes the default (tox's py313) does
    not run, with the environment's packages put on the path by hand."""
    program = textwrap.dedent(f"""
        import sys
        sys.path.append({sysconfig.get_path("purelib")!r})
        sys.path.append({sysconfig.get_path("platlib")!r})
        sys.path.append({str(Path(__file__).resolve().parents[1])!r})
        from paraloop.backends.processes.pool import default_method, get_pool
        told = default_method()
        assert "multiprocess" not in sys.modules
        # And the pool, asked before multiprocess loads and after, agrees with it.
        before = get_pool(None).method
        import multiprocess
        print(told, before, multiprocess.get_context().get_start_method(), get_pool(None).method)
    """)
    result = subprocess.run(
        [sys.executable, "-S", "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    told, before, actual, after = result.stdout.split()
    if sys.platform == "linux":
        assert told == actual
    assert before == actual == after


WAITING = """
    # paraloop: enable
    import json, sys, threading, time
    from paraloop import ParaLoop, chunks

    sizes = []
    original = chunks.Chunker._next

    def spy(self, *args):
        chunk = original(self, *args)
        if chunk is not None:
            sizes.append(len(chunk.items))
        return chunk

    chunks.Chunker._next = spy

    def run(n):
        done = []
        for i in ParaLoop(range(n)):
            time.sleep(0.1 if i == 0 else 0.01)
            done.append(i)
        return done

    if __name__ == "__main__":
        preloaded = "multiprocess" in sys.modules
        result = run(64)
        print(json.dumps({"ok": result == list(range(64)), "sizes": sizes, "preloaded": preloaded}))
"""


def test_multiprocess_imports_while_a_waiting_first_iteration_runs(tmp_path: Path) -> None:
    """A loop whose first iteration waits (a request) imports multiprocess in a thread
    meanwhile, and the import's CPU time is not the iteration's: the caller measured that the
    iterations wait, so the workers' first chunks already run in lanes (several iterations
    each), not one iteration alone to find out."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(WAITING))
    result = run_program(script, PARALOOP_START_METHOD="fork")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["ok"]
    # The caller's first chunk (the whole range, up to FIRST_RANGE_ITEMS; one ran), then the
    # workers' first chunks.
    assert seen["sizes"][0] == 64
    assert all(size > 1 for size in seen["sizes"][1:3]), seen["sizes"]


WORKER_SIDE_MEANWHILE = """
    # paraloop: enable
    import json, sys, time
    from paraloop import ParaLoop

    WORKER_SIDE = "paraloop.backends.processes.child"

    def run(n):
        seen = []
        for i in ParaLoop(range(n)):
            if i == 0:
                # A first request that lasts until the worker side is in (or 2 s).
                deadline = time.monotonic() + 2
                while WORKER_SIDE not in sys.modules and time.monotonic() < deadline:
                    time.sleep(0.002)
                seen.append(WORKER_SIDE in sys.modules)
            else:
                time.sleep(0.002)
        return seen

    if __name__ == "__main__":
        before = "paraloop.backends.processes.child" in sys.modules
        print(json.dumps({"before": before, "seen": run(64)}))
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_the_worker_side_imports_while_a_waiting_first_iteration_runs(tmp_path: Path, method: str) -> None:
    """Starting the first worker imports paraloop's worker side in the caller; under spawn and
    forkserver a loop whose first iteration waits imports it in a thread meanwhile, with
    multiprocess (it was imported only once the workers started).  Not under fork (see
    dispatch._needed): no thread runs beside the program's first iteration there."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(WORKER_SIDE_MEANWHILE))
    result = run_program(script, PARALOOP_START_METHOD=method)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen == {"before": False, "seen": [method != "fork"]}


FORK_IN_THE_FIRST_ITERATION = """
    # paraloop: enable
    import json, os, threading, time
    from paraloop import ParaLoop

    def run(n):
        forked = []
        for i in ParaLoop(range(n)):
            if i == 0:
                # A first request, then a helper process forked: as soon as a thread of
                # paraloop's runs beside it (none under fork: one second of waiting).
                deadline = time.monotonic() + 1
                while time.monotonic() < deadline and not any(
                    t.name == "paraloop-import" for t in threading.enumerate()
                ):
                    time.sleep(0.0005)
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                os.waitpid(pid, 0)
                forked.append(True)
            else:
                time.sleep(0.001)
        return forked

    if __name__ == "__main__":
        print(json.dumps(run(64)))
"""


def test_a_fork_of_the_programs_own_in_the_first_iteration_leaves_stderr_clean(tmp_path: Path) -> None:
    """Under fork, the program's own fork in its slow first iteration: stderr stays as the plain
    loop leaves it.  With paraloop's thread importing the worker side meanwhile, it got
    "Exception ignored ... release unlocked lock" (14 runs in 20, the second adversary's
    finding B: logging's and concurrent.futures.thread's at-fork hooks, registered by that
    import while the fork waited for it, ran after the fork without having run before it),
    and then, with those imports gone, Python 3.12's "DeprecationWarning: This process ... is
    multi-threaded, use of fork() may lead to deadlocks" while the thread ran (CI rehearsal,
    py312).  No thread runs beside the first iteration under fork."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(FORK_IN_THE_FIRST_ITERATION))
    for _ in range(3):
        result = run_program(script, PARALOOP_START_METHOD="fork")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1]) == [True]
        assert result.stderr == "", result.stderr


HALF_IMPORTED_LOGGING = """
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    import paraloop.log
    import started  # the stand-in logging's handshake

    importer = threading.Thread(target=__import__, args=("logging",))
    importer.start()
    started.begun.wait(10)
    try:
        paraloop.log.debug("a line while logging is half imported %s", 1)
        paraloop.log.info("and another")
        print("logged nothing, raised nothing")
    finally:
        started.finish.set()
        importer.join()
    import logging
    print("then", logging.getLogger is not None)
"""


def test_a_log_line_skips_a_logging_module_another_thread_still_imports(tmp_path: Path) -> None:
    """multiprocess, imported in a thread during a loop's first iteration, imports logging: a
    line paraloop logs meanwhile must not use the half-made module (the adversarial suite saw
    "partially initialized module 'logging' has no attribute 'getLogger'" replace a loop's own
    error)."""
    (tmp_path / "started.py").write_text(
        "import threading\nbegun = threading.Event()\nfinish = threading.Event()\n"
    )
    # A module named logging whose top level stops halfway, before getLogger exists.
    (tmp_path / "logging.py").write_text(
        "import started\nstarted.begun.set()\nstarted.finish.wait(10)\ndef getLogger(name):\n    return None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(HALF_IMPORTED_LOGGING), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=product_environment(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["logged nothing, raised nothing", "then True"]


KEPT = """
    # paraloop: enable
    import json, sys, time
    from paraloop import ParaLoop

    preloaded = "multiprocess" in sys.modules
    took = []
    ended = []
    total = 0
    start = time.perf_counter()
    for i in ParaLoop(range(60)):
        began = time.perf_counter()
        time.sleep(0.0001)
        total += i
        took.append(time.perf_counter() - began)
        ended.append(time.perf_counter() - start)
    print(json.dumps({
        "total": total, "took": took[:2], "first_ended": ended[0],
        "imported": "multiprocess" in sys.modules, "preloaded": preloaded,
    }))
"""


def test_a_first_chunk_the_caller_keeps_past_its_budget_imports_nothing(tmp_path: Path) -> None:
    """60 iterations of 0.1 ms over a range: the caller's first chunk holds them all, and at its
    2 ms budget the iterations that ran show that the caller keeps the loop (starting spawned
    workers would cost far more), so the chunk goes on past the budget, and past the 4 ms at
    which a first chunk still running starts importing multiprocess in a thread: a chunk that
    went on imports nothing (the import would only take turns with the iterations at the GIL:
    100 such iterations took 31 ms instead of 17).  The timer imports only while the first
    iteration still runs: a busy machine that kept the chunk from looking at its clock by then
    (the rehearsal's py312: two iterations in 1.1 ms, and an import) imports nothing either."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(KEPT))
    result = run_program(script, PARALOOP_START_METHOD="spawn")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["total"] == sum(range(60))
    # The import starts only while the first iteration still runs 4 ms after the timer started,
    # which is after the loop started: a first iteration that ended within 4 ms of the loop's
    # start ended before.  (Timed from the loop's start, not the iteration's: on a busy machine
    # the caller's work before its first iteration took over a millisecond, and an iteration of
    # 2.8 ms ended after the timer.  Where the environment imports multiprocess at start, as
    # tox's py313 does, it is there.)
    first_done_by_the_timer = seen["first_ended"] < 0.004
    assert seen["imported"] is False or not first_done_by_the_timer or seen["preloaded"], seen


@pytest.mark.parametrize("site", [True, False], ids=["site", "no-site"])
def test_a_ctrl_c_traceback_takes_the_installed_packages_for_libraries(site: bool) -> None:
    """The places whose frames a Ctrl-C's traceback takes for libraries (paraloop.tracebacks,
    read from site at start-up rather than from sysconfig) hold the standard library and the
    installed packages as sysconfig names them, with site and without (``-S``)."""
    program = textwrap.dedent(f"""
        import json, sys
        sys.path.append({str(Path(__file__).resolve().parents[1])!r})
        from paraloop import tracebacks
        import sysconfig
        print(json.dumps({{
            "places": {{name: sysconfig.get_path(name) for name in ("stdlib", "purelib", "platlib")}},
            "library": tracebacks._LIBRARY,
            "site": "site" in sys.modules,
        }}))
    """)
    command = [sys.executable, *([] if site else ["-S"]), "-c", program]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=product_environment())
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["site"] is site
    for name, place in seen["places"].items():
        assert any((place.rstrip("/") + "/").startswith(prefix) for prefix in seen["library"]), (name, seen)


NUMPY_LOOPS = """
    # paraloop: enable
    import json, os, sys
    import numpy
    from paraloop import ParaLoop

    def products(matrix):
        total = 0.0
        for i in ParaLoop(range(10)):
            total += float((matrix @ matrix)[0, 0]) + i
        return total

    def plain(matrix):
        total = 0.0
        for i in range(10):
            total += float((matrix @ matrix)[0, 0]) + i
        return total

    if __name__ == "__main__":
        matrix = numpy.ones((50, 50))
        results = [products(matrix)]
        opened = []
        real_open = os.open

        def spy(path, *args, **kwargs):
            opened.append(os.fsdecode(path))
            return real_open(path, *args, **kwargs)

        os.open = spy
        results.append(products(matrix))
        os.open = real_open
        print(json.dumps({
            "results": results,
            "plain": plain(matrix),
            "opened": opened,
            "direct": "paraloop.openblas_direct" in sys.modules,
        }))
"""


def test_a_numpy_loop_after_the_first_reads_no_map_of_the_process_again(tmp_path: Path) -> None:
    """The first numpy loop finds OpenBLAS (reading /proc/self/maps) and imports paraloop's own
    controller of it; that import must not make the next loop look again (0.2 ms of a loop of
    about 1 ms): nothing the program loaded changed.  Both loops give the plain loop's result.
    (Where Linux's facilities are hidden, PARALOOP_PORTABLE=1, no map is read at all.)"""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(NUMPY_LOOPS))
    result = run_program(script)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["results"] == [seen["plain"], seen["plain"]]
    assert "/proc/self/maps" not in seen["opened"], seen["opened"]


STATE = """
    import json, sys
    import paraloop.runtime
    from paraloop import loaded_modules

    before = loaded_modules.state()
    loaded_modules.import_own("paraloop.openblas_direct")
    own = loaded_modules.state()
    # The threads backend imports queue, which the runtime does not: more than itself changed.
    loaded_modules.import_own("paraloop.backends.threads")
    brought = loaded_modules.state()
    import colorsys
    other = loaded_modules.state()
    del sys.modules["colorsys"]
    restored = loaded_modules.state()
    # A module whose import replaces another entry (as import hooks and lazy loaders do): only
    # itself added, yet sys.modules changed.
    sys.path.insert(0, ".")
    loaded_modules.import_own("swapper")
    print(json.dumps([
        before == own, own == brought, brought == other, brought == restored, restored == loaded_modules.state(),
    ]))
"""


def test_only_paraloops_own_import_on_demand_leaves_the_modules_state_as_it_was(tmp_path: Path) -> None:
    """loaded_modules.state() keys what paraloop learnt from sys.modules (the walk of the
    program's modules, the look for native libraries): one of paraloop's modules imported where a
    loop needs it leaves it as it was; that import bringing another module, or replacing another
    entry, or a module of the program's, changes it; taking that module out again gives the state
    before it."""
    (tmp_path / "swapper.py").write_text(
        "import sys, types\nsys.modules['json.decoder'] = types.ModuleType('json.decoder')\n"
    )
    script = tmp_path / "state.py"
    script.write_text(textwrap.dedent(STATE))
    result = run_program(script)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [True, False, False, True, False]
