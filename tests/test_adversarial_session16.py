"""Adversarial pass (session 16) on today's changes: the import timer of a loop's first chunk as a
bare ``_thread`` with two locks (dispatch._ImportTimer), the shared walk of ``sys.modules``
(loaded_modules.beyond_stdlib) behind module_stores and native_threads, and the caller's first
chunk that goes on past the 2 ms budget when its iterations show the caller would keep the loop
(execute.Until's ``keep``, caller._deadline).

Every program runs as a user runs it (``python -m paraloop script.py``) with paraloop's own
defaults (conftest.product_environment), under a timeout.  Five findings: 2, 3 and 5 were
fixed the same day (background_import's fork hooks, loaded_modules' test of what is the
standard library) and are pinned; 1 and 4, which predate the day's changes, stay strict
xfails.  The behaviours probed that hold are pinned.  No assertion is on timings: where a program must see
which process ran an iteration, it records ``os.getpid()``.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import SLOW_FINDER, interrupt_like_a_terminal, last_json, run_source, start_program

_run = run_source
_last_json = last_json


# --------------------------------------------------------------------------------------------
# Finding 1: iterations that turn slow inside the caller's chunk run there, serially, for seconds.

TURN_SLOW = """
    # paraloop: enable
    import json, os, sys, time
    from paraloop import ParaLoop

    quick, slow = int(sys.argv[1]), float(sys.argv[2])

    def work(i):
        if i < quick:
            time.sleep(slow / 200)  # about 1 ms
        else:
            time.sleep(slow)  # requests that turned slow
        return os.getpid()

    pids = []
    for i in ParaLoop(range(16)):
        pids.append(work(i))
    me = os.getpid()
    print(json.dumps({"count": len(pids), "caller": [i for i, p in enumerate(pids) if p == me]}))
"""


def test_iterations_slow_after_three_quick_ones_go_to_the_workers(tmp_path: Path) -> None:
    """Sixteen iterations, three of 1 ms and then 200 ms each (the brief's case): the caller's
    first chunk goes on past its budget (the three measured a loop the caller would keep), but
    stops at twice the time its items left should take: it runs one slow iteration, not all."""
    seen = _last_json(_run(tmp_path, TURN_SLOW, "3", "0.2"))
    assert seen["count"] == 16
    slow_in_caller = [i for i in seen["caller"] if i >= 3]
    assert len(slow_in_caller) <= 2, seen


TURN_SLOW_IN_A_BLOCK = """
    # paraloop: enable
    import json, os, time
    from paraloop import ParaLoop

    def work(i):
        if i >= 9:
            time.sleep(0.2)  # a cache that ran out: requests from here on
        return os.getpid()

    pids = []
    for i in ParaLoop(range(16)):
        pids.append(work(i))
    me = os.getpid()
    print(json.dumps({"caller": [i for i, p in enumerate(pids) if p == me]}))
"""


# Not strict: the gap shows only when the nine quick iterations run fast enough for the caller's
# blocks to double past them; under a loaded machine's timing they did not once (session 31's CI
# rehearsal, py312: XPASS), which a strict mark turned into a red run.  It still fails (XFAIL) on
# every quiet run here, and the assertion is what a fix must make pass.
@pytest.mark.xfail(
    strict=False,
    reason="finding 1: execute.Until reads the clock only between blocks, which double while "
    "iterations are quick (1, 2, 4, 8 ... up to 256): a block of quick iterations that turn slow "
    "runs to its end in the caller, and the first chunk's keep then extends it; 16 iterations, "
    "nine trivial then seven of 200 ms: six or seven of the slow ones ran serially in the caller (1.2-1.4 s)",
)
def test_iterations_that_turn_slow_inside_a_block_are_handed_over(tmp_path: Path) -> None:
    """Nine trivial iterations, then seven of 200 ms.  The caller's chunk should stop within an
    iteration or two of the slow ones (its deadline is twice its expected time) and hand the rest
    to the workers; it ran all of them itself, one after the other."""
    seen = _last_json(_run(tmp_path, TURN_SLOW_IN_A_BLOCK))
    slow_in_caller = [i for i in seen["caller"] if i >= 9]
    assert len(slow_in_caller) <= 2, seen


# --------------------------------------------------------------------------------------------
# Pinned: what the first chunk that goes on past its budget computes.

EXTENDED_CHUNK_RESULTS = """
    # paraloop: enable
    import json, math, os, time
    import numpy as np
    from paraloop import ParaLoop

    def term(i):
        # 1 ms iterations: the first chunk goes on past its budget; then some turn slow.
        time.sleep(0.0011 if i < 5 else (0.03 if i % 7 == 0 else 0.0005))
        return math.sin(i) * 1e16 / (i + 1) + 1.0 / (i + 3)

    def run(n):
        total, product, out, by_key = 0.0, 1.0, [], {}
        for i in ParaLoop(range(n)):
            t = term(i)
            total += t
            product *= 1.0 + t * 1e-17
            out.append(t)
            by_key[i % 5] = t
        return [total, product, out, list(by_key.items())]

    def plain(n):
        total, product, out, by_key = 0.0, 1.0, [], {}
        for i in range(n):
            t = term(i)
            total += t
            product *= 1.0 + t * 1e-17
            out.append(t)
            by_key[i % 5] = t
        return [total, product, out, list(by_key.items())]

    rows = np.random.default_rng(3).random((40, 50))

    def rows_sum(n):
        acc = np.zeros(50)
        for row in ParaLoop(rows[:n]):
            time.sleep(0.0011)
            acc += row * 1e-3
        return acc

    seen = {}
    for n in (16, 40):
        seen[f"floats{n}"] = run(n) == plain(n)
        acc = np.zeros(50)
        for row in rows[:n]:
            acc += row * 1e-3
        seen[f"array{n}"] = bool((rows_sum(n) == acc).all())
    print(json.dumps(seen))
"""


def test_float_sums_lists_dicts_and_arrays_of_an_extended_first_chunk(tmp_path: Path) -> None:
    """Float sums and products bit for bit, a list and a dict in iteration order, a numpy array
    summed over the rows of an array (a sequence: the first chunk of 16 goes on past the
    budget), whether the loop ends in the caller or goes on in the workers."""
    seen = _last_json(_run(tmp_path, EXTENDED_CHUNK_RESULTS))
    assert seen == {"floats16": True, "array16": True, "floats40": True, "array40": True}


CONTROL_FLOW_IN_EXTENDED_CHUNK = """
    # paraloop: enable
    import json, time
    from paraloop import ParaLoop

    def slow(i):
        time.sleep(0.0011 if i < 12 else 0.05)

    def with_break(n, at):
        seen, total = [], 0.0
        for i in ParaLoop(range(n)):
            slow(i)
            total += 0.1 * i
            seen.append(i)
            if i == at:
                break
        else:
            seen.append("else")
        return seen, total

    def with_return(n, at):
        for i in ParaLoop(range(n)):
            slow(i)
            if i >= at:
                return i
        return None

    class Failed(Exception):
        pass

    def with_raise(n, at):
        done = []
        try:
            for i in ParaLoop(range(n)):
                slow(i)
                done.append(i)
                if i == at:
                    raise Failed(f"bad {i}")
        except Failed as error:
            return str(error), done, getattr(error, "__notes__", [])

    seen = {}
    for at in (3, 9, 14):
        total = 0.0
        for i in range(at + 1):
            total += 0.1 * i
        seen[f"break{at}"] = with_break(16, at) == (list(range(at + 1)), total)
        seen[f"return{at}"] = with_return(16, at) == at
        message, done, notes = with_raise(16, at)
        seen[f"raise{at}"] = message == f"bad {at}" and done == list(range(at + 1))
        seen[f"note{at}"] = any(f"iteration {at} " in note for note in notes)
    print(json.dumps(seen))
"""


def test_break_return_and_exceptions_inside_an_extended_first_chunk(tmp_path: Path) -> None:
    """``break``, ``return`` and an exception at iterations 3, 9 and 14 of 16 (1 ms each, then
    slow): tracked state as the plain loop leaves it, no ``else``, the returning iteration's
    value, the exception with its note naming the iteration."""
    seen = _last_json(_run(tmp_path, CONTROL_FLOW_IN_EXTENDED_CHUNK))
    assert seen and all(seen.values()), seen


PROCESS_STATE_IN_FIRST_CHUNK = """
    # paraloop: enable
    import json, os, sys, time
    from paraloop import ParaLoop

    base = os.getcwd()
    n = int(sys.argv[1])
    for i in range(n):
        os.makedirs(f"d{i}", exist_ok=True)
        with open(f"d{i}/name.txt", "w") as f:
            f.write(str(i))

    def visit(i):
        os.chdir(os.path.join(base, f"d{i}"))  # in a function: not seen when the loop starts
        time.sleep(0.0011 if i < 10 else 0.02)
        with open("name.txt") as f:
            return int(f.read())

    def setenv(i):
        os.environ["S16_KEY"] = str(i)
        time.sleep(0.0011 if i < 10 else 0.02)
        return os.environ["S16_KEY"]

    got = []
    for i in ParaLoop(range(n)):
        got.append(visit(i))
    os.chdir(base)
    values = []
    for i in ParaLoop(range(n)):
        values.append(setenv(i))
    print(json.dumps({"chdir": got == list(range(n)), "env": values == [str(i) for i in range(n)]}))
"""


@pytest.mark.parametrize("n", [16, 40])
def test_iterations_that_change_the_directory_and_environment_in_the_first_chunk(
    tmp_path: Path, n: int
) -> None:
    """Each iteration changes the current directory (or an environment variable) in a function it
    calls and reads it back: the first chunk, kept past its budget, runs them in the caller, the
    rest in workers; each iteration sees its own change, as in the plain loop."""
    assert _last_json(_run(tmp_path, PROCESS_STATE_IN_FIRST_CHUNK, str(n))) == {"chdir": True, "env": True}


CTRL_C_IN_EXTENDED_CHUNK = """
    # paraloop: enable
    import time
    from paraloop import ParaLoop

    def work(i):
        if i < 3:
            time.sleep(0.0011)
        elif i == 3:
            print("running", flush=True)
            time.sleep(60)
        else:
            time.sleep(0.001)
        return i

    out = []
    for i in ParaLoop(range(16)):
        out.append(work(i))
    print("finished", flush=True)
"""


def test_ctrl_c_while_an_extended_first_chunk_runs(tmp_path: Path) -> None:
    """Ctrl-C while iteration 3 of 16 waits (three of 1 ms before it): KeyboardInterrupt, and no
    process of the program's group is left."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(CTRL_C_IN_EXTENDED_CHUNK))
    # The caller takes part, as by default (the suite's own setting keeps it out).
    group, status, stderr, _ = interrupt_like_a_terminal(script, env={"PARALOOP_CALLER_RUNS": "1"})
    assert status != 0 and "KeyboardInterrupt" in stderr, stderr[-2000:]
    deadline = time.monotonic() + 10
    left = ["?"]
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.05)
    assert not left


# --------------------------------------------------------------------------------------------
# Finding 2: a fork while the import thread runs prints logging's at-fork error.

FORK_WHILE_IMPORTING = (
    """
    # paraloop: enable
    import json, os, sys, time
    from paraloop import ParaLoop
"""
    + SLOW_FINDER
    + """
    # A slow disk (a network file system, a coverage hook): multiprocess loads slowly in the
    # thread paraloop imports it in; the program's own imports are not slowed.
    slow_import("multiprocess", 0.3)
    total = 0
    child = None
    for i in ParaLoop(range(40)):
        if i == 0:
            # A slow first request, during which the program forks a helper process.
            deadline = time.monotonic() + 5
            while "multiprocess" not in sys.modules and time.monotonic() < deadline:
                time.sleep(0.001)
            if "multiprocess" not in sys.modules:
                # The test's premise: paraloop imports it in a thread (forkserver or spawn workers).
                raise SystemExit("paraloop did not import multiprocess during the first iteration")
            time.sleep(0.05)  # the import is well on its way (see finding 5 for sooner)
            pid = os.fork()
            if pid == 0:
                os._exit(3)
            child = pid
        total += i
    _, status = os.waitpid(child, 0)
    print(json.dumps({"total": total, "child": os.waitstatus_to_exitcode(status)}))
"""
)


def test_a_fork_while_multiprocess_imports_prints_nothing(tmp_path: Path) -> None:
    """Finding 2, fixed: the program's fork waits for paraloop's import thread in a before-fork
    hook; the import registered logging's at-fork hooks meanwhile, so logging's hook after the
    fork in the parent ran without its hook before it and printed 'Exception ignored in:
    <function _releaseLock> ... RuntimeError: cannot release un-acquired lock', which the plain
    program never prints.  The fork now takes logging's lock as its own hook would have."""
    # Under forkserver (or spawn) workers, whose start needs multiprocess: under fork paraloop
    # imports none, and the program's first iteration waited 5 s for an import that never came.
    result = _run(tmp_path, FORK_WHILE_IMPORTING, PARALOOP_START_METHOD="forkserver")
    assert _last_json(result) == {"total": sum(range(40)), "child": 3}
    assert "Exception ignored" not in result.stderr and "RuntimeError" not in result.stderr, result.stderr


# --------------------------------------------------------------------------------------------
# Finding 5: a fork just as the import thread starts is not waited for; its child hangs.

FORK_AS_THE_IMPORT_STARTS = FORK_WHILE_IMPORTING.replace(
    "            time.sleep(0.05)  # the import is well on its way (see finding 5 for sooner)\n", ""
).replace(
    """            if pid == 0:
                os._exit(3)
            child = pid
        total += i
    _, status = os.waitpid(child, 0)
    print(json.dumps({"total": total, "child": os.waitstatus_to_exitcode(status)}))
""",
    """            if pid == 0:
                import multiprocess.connection  # the helper process uses multiprocess too
                os._exit(3)
            child = pid
        total += i
    deadline = time.monotonic() + 3
    code = "hung"
    while time.monotonic() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
    print(json.dumps({"total": total, "child": code}))
""",
)


def test_a_child_forked_as_the_import_thread_starts_can_import_multiprocess(tmp_path: Path) -> None:
    """Finding 5, fixed: background_import.start published the import thread only once
    Thread.start returned in the timer thread; a fork by the program in between was not waited
    for, and a child that imported multiprocess hung for ever on a module lock held by a thread
    it does not have (about 1 fork in 12-16).  The fork now holds the lock that starting the
    thread takes.  The same program as finding 2, forking as soon as multiprocess appears in
    sys.modules, and its child imports multiprocess.connection: it must exit at once.  The race
    is narrow, so the program runs 10 times (two at a time, each a fresh process: a child hung
    in 95% of such runs before the fix, so 10 runs miss it once in 10^13) and the test fails at
    the first child that hung."""
    assert FORK_AS_THE_IMPORT_STARTS != FORK_WHILE_IMPORTING
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(FORK_AS_THE_IMPORT_STARTS))
    outcomes: list[object] = []
    for _ in range(5):
        # Forkserver workers (see test_a_fork_while_multiprocess_imports_prints_nothing).
        runs = [start_program(script, PARALOOP_START_METHOD="forkserver") for _ in range(2)]
        for run in runs:
            stdout, stderr = run.communicate(timeout=60)
            assert run.returncode == 0, stderr[-3000:]
            outcomes.append(json.loads(stdout.splitlines()[-1])["child"])
        assert "hung" not in outcomes, outcomes
    assert outcomes == [3] * 10


# --------------------------------------------------------------------------------------------
# Pinned: the import timer with forks, exceptions, threads and imports in the body.

FORK_IN_FIRST_ITERATION = """
    # paraloop: enable
    import json, os, random, sys, time  # random: Python reseeds it in a forked child
    from paraloop import ParaLoop

    mode = sys.argv[1]
    if mode == "logging":
        import logging  # after paraloop: logging's before-fork hook runs before paraloop's
    total = 0
    forked = None
    me = os.getpid()
    for i in ParaLoop(range(40)):
        if i == 0:
            time.sleep(0.006)  # past the import timer's 4 ms
            if os.getpid() == me:
                pid = os.fork()
                if pid == 0 and mode == "exit":
                    os._exit(0)
                if pid == 0 and mode == "sysexit":
                    sys.exit(0)
                forked = pid
        total += i
    if os.getpid() != me:
        print(json.dumps({"who": "child", "total": total}), flush=True)
        os._exit(0)
    _, status = os.waitpid(forked, 0)
    print(json.dumps({"who": "parent", "total": total, "child": os.waitstatus_to_exitcode(status)}))
"""


# Finding 7 (fixed): a program that imported logging after paraloop and forked while the import
# thread ran waited 30 s at the fork, and its child hung for good.  Before-fork hooks run newest
# first, so logging's took its lock before paraloop's waited for the import, which needs that
# lock (dill's getLogger); the thread gave up after 30 s, holding dill's import lock, which the
# child waited for importing multiprocess.  It hung once in a rehearsal without the program's
# own import of logging: the import thread imports logging itself, and a fork after that and
# before dill's logger is the same.  Paraloop's hook now lets go of logging's lock while it waits.


@pytest.mark.parametrize("mode", ["carry", "logging", "exit", "sysexit"])
def test_a_fork_in_the_first_iteration_while_the_import_timer_waits(tmp_path: Path, mode: str) -> None:
    """The first iteration forks after the timer's 4 ms; the child goes on with the loop (and gets
    the plain total), leaves with os._exit, or raises SystemExit out of it: no hang, and the
    parent's loop gives the plain total.  (With random imported, as tox's py313 has it through
    multiprocess, the child's chunk saw the at-fork reseed of the global generator as a draw and
    refused the loop: the CI rehearsal of the day found it; a chunk whose process forked no
    longer compares the generators.)"""
    result = _run(tmp_path, FORK_IN_FIRST_ITERATION, mode)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"who": "parent", "total": sum(range(40)), "child": 0} in lines
    if mode in ("carry", "logging"):
        assert {"who": "child", "total": sum(range(40))} in lines


SLOW_FIRST_ITERATION_ENDS = """
    # paraloop: enable
    import json, os, sys, threading, time
    from paraloop import ParaLoop

    class Boom(Exception):
        pass

    seen = {}
    try:
        for i in ParaLoop(range(50)):
            if i == 0:
                time.sleep(0.012)  # past the timer: multiprocess starts importing
                raise Boom("first")
    except Boom as error:
        seen["raised"] = [str(error), any("iteration 0 " in n for n in getattr(error, "__notes__", []))]
    seen["threads"] = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    pid = os.fork()
    if pid == 0:
        import multiprocess.connection  # noqa: F401
        os._exit(7)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            seen["child"] = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        seen["child"] = "hung"
    try:
        for i in ParaLoop(range(50)):
            if i == 0:
                time.sleep(0.012)
                raise KeyboardInterrupt  # the body's own
    except KeyboardInterrupt:
        seen["interrupt"] = True
    got = []
    for i in ParaLoop(range(50)):
        if i == 0:
            time.sleep(0.012)
        got.append(i)
        if i == 0:
            break
    seen["break"] = got
    seen["threads_at_end"] = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(json.dumps(seen))
"""


def test_a_first_iteration_past_the_timer_that_raises_or_breaks(tmp_path: Path) -> None:
    """A first iteration of 12 ms (the timer starts importing multiprocess) that raises, raises
    KeyboardInterrupt itself, or breaks: the exception with its note, no thread left, and a child
    forked afterwards imports multiprocess."""
    seen = _last_json(_run(tmp_path, SLOW_FIRST_ITERATION_ENDS))
    assert seen == {
        "raised": ["first", True],
        "threads": [],
        "child": 7,
        "interrupt": True,
        "break": [0],
        "threads_at_end": [],
    }


LOOPS_IN_THREADS = """
    # paraloop: enable
    import json, threading, time
    from paraloop import ParaLoop

    def run(k, results):
        total = 0.0
        for i in ParaLoop(range(40)):
            if i == 0:
                time.sleep(0.01)
            total += 0.1 * i * k
        results[k] = total

    results = {}
    threads = [threading.Thread(target=run, args=(k, results)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    plain = {}
    for k in range(4):
        total = 0.0
        for i in range(40):
            total += 0.1 * i * k
        plain[k] = total
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(json.dumps({"same": results == plain, "left": left}))
"""


def test_loops_with_slow_first_iterations_in_four_threads(tmp_path: Path) -> None:
    assert _last_json(_run(tmp_path, LOOPS_IN_THREADS)) == {"same": True, "left": []}


LOOP_AT_IMPORT_TIME = {
    "helpers.py": """
        # paraloop: enable
        import time
        from paraloop import ParaLoop

        total = 0
        for i in ParaLoop(range(60)):
            if i == 0:
                time.sleep(0.006)
                import logging, email.mime.text  # while multiprocess imports in a thread
            total += i
    """
}

MAIN_IMPORTS_HELPERS = """
    # paraloop: enable
    import json, time
    import helpers
    from paraloop import ParaLoop

    out = []
    for i in ParaLoop(range(60)):
        if i == 0:
            time.sleep(0.01)
            import decimal, fractions
        out.append(i * 2)
    print(json.dumps({"total": helpers.total, "out": out == [i * 2 for i in range(60)]}))
"""


def test_a_loop_at_import_time_whose_first_iteration_imports(tmp_path: Path) -> None:
    """A marked module's top-level loop (run while the program imports it, its import lock held)
    whose slow first iteration imports modules while multiprocess imports in a thread."""
    result = _run(tmp_path, MAIN_IMPORTS_HELPERS, files=LOOP_AT_IMPORT_TIME)
    assert _last_json(result) == {"total": sum(range(60)), "out": True}


RANDOM_DRAWS = """
    # paraloop: enable
    import json, random, sys, time
    from paraloop import ParaLoop, ParaLoopError

    mode = sys.argv[1]

    def draw(i):
        if mode == "slow-first" and i == 0:
            time.sleep(0.01)  # the import timer starts the import meanwhile
        if mode == "late" and i < 30:
            return 0.0
        return random.random()

    random.seed(5)
    plain = [draw(i) for i in range(40)]
    random.seed(5)
    out = []
    try:
        for i in ParaLoop(range(40)):
            out.append(draw(i))
        print(json.dumps({"same": out == plain}))
    except ParaLoopError as error:
        print(json.dumps({"refused": "drew from the global random generator" in str(error)}))
"""


@pytest.mark.parametrize("mode", ["quick", "slow-first", "late"])
def test_draws_from_the_global_random_generator_with_no_timer_thread_counted(
    tmp_path: Path, mode: str
) -> None:
    """The timer thread no longer counts in threading.active_count(), so the caller's first chunk
    watches the random generators: a body that draws from ``random`` in a function it calls is
    refused (or gives the plain loop's numbers), with a quick or slow first iteration, or draws
    only in later iterations."""
    seen = _last_json(_run(tmp_path, RANDOM_DRAWS, mode))
    assert seen in ({"refused": True}, {"same": True})


# --------------------------------------------------------------------------------------------
# Findings 3 and 4: module globals a worker rebinds, outside the walk of sys.modules.

RECORDER = """
    last = None

    def record(i):
        global last
        last = i
        return i
"""

REBINDS_A_GLOBAL = """
    # paraloop: enable
    import json, sys, time
    import {module} as mod
    from paraloop import ParaLoop, ParaLoopError

    try:
        for i in ParaLoop(range(200)):
            time.sleep(0.001)
            mod.record(i)
        print(json.dumps({{"last": mod.last}}))
    except ParaLoopError as error:
        print(json.dumps({{"refused": "'last'" in str(error) and "{name}" in str(error)}}))
"""


@pytest.mark.parametrize("module", ["paraloop_helpers", "paraloop2.tools"])
def test_modules_named_like_paraloop_are_the_programs(tmp_path: Path, module: str) -> None:
    """The walk of sys.modules skips paraloop's own modules by their top-level name "paraloop"
    exactly: the program's ``paraloop_helpers`` and ``paraloop2.tools`` are still watched, and a
    function of theirs that rebinds a global is refused, or its last value kept."""
    files = {"paraloop_helpers.py": RECORDER, "paraloop2/__init__.py": "", "paraloop2/tools.py": RECORDER}
    source = REBINDS_A_GLOBAL.format(module=module, name=module)
    seen = _last_json(_run(tmp_path, source, files=files))
    assert seen in ({"refused": True}, {"last": 199}), seen


def test_a_module_of_the_program_named_like_a_stdlib_module_is_watched(tmp_path: Path) -> None:
    """Finding 3, fixed: loaded_modules skipped modules by top-level name in
    sys.stdlib_module_names, so the program's own sched.py (or calendar.py, trace.py, profile.py)
    was never watched, and a function of it that rebinds a global in a worker lost the store
    silently (last was 1; the plain loop leaves 199).  A name is now skipped once its top-level
    module proved to be the standard library's."""
    source = REBINDS_A_GLOBAL.format(module="sched", name="sched")
    seen = _last_json(_run(tmp_path, source, files={"sched.py": RECORDER}))
    assert seen in ({"refused": True}, {"last": 199}), seen


IMPORTED_IN_THE_BODY = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop, ParaLoopError

    try:
        for i in ParaLoop(range(100), chunksize=50, caller_runs=False):
            import recorder  # a function-level import, first run in the worker
            if i == 99:
                recorder.record(i)
        import recorder
        print(json.dumps({"last": recorder.last}))
    except ParaLoopError as error:
        print(json.dumps({"refused": "'last'" in str(error) and "recorder" in str(error)}))
"""


def test_a_module_first_imported_by_the_body_keeps_what_the_iteration_stored(tmp_path: Path) -> None:
    seen = _last_json(_run(tmp_path, IMPORTED_IN_THE_BODY, files={"recorder.py": RECORDER}))
    assert seen in ({"refused": True}, {"last": 99}), seen
