"""Adversarial session 32: several loops sharing one pool, and workers that end at unlucky
moments.  Each test fails on the code it was written against (fcfb150); its docstring says what
the user does, what the plain loop (or the contract) gives, and what paraloop did instead.

Findings:

1. A worker that died in the end-of-loop check left the other workers' answers in their pipes:
   the next loop took one for an outcome (``AttributeError: 'Checked' object has no attribute
   'chunk'``).  The same after Ctrl-C during that check.
2. A loop still running in a daemon thread as the program exits took its workers' end (the
   exit stops them) for a crash, and printed a WorkerCrashedError for iterations that never
   failed; now and then the exit function itself failed (EBADF: two threads closed one pipe).
3. A child forked while a spawn worker started held that worker's pipe and sentinel open: the
   worker's death never showed, and its loop waited for ever.

What held (no test): several threads (4 to 8) mixing fork, spawn and forkserver loops of every
kind (sums, max_iterations_per_worker, timeout=, lanes, break, return, raise, os._exit, SIGKILL,
half-consumed generator expressions, a loop inside another's iterable), about 400 loops with and
without the caller taking part; an idle worker SIGKILLed, then leased by three threads at once; a
generator expression in a reference cycle finalized while another thread's loop runs.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import LINUX_FACILITIES, START_METHODS, run_program, run_source

import paraloop

Loader = Callable[..., ModuleType]


CHECK_CRASH = """
import os, time
from pathlib import Path
from paraloop import ParaLoop


class Heavy:
    '''Captured by the loop; its fingerprint (a pickle) is slow, so the workers' checks after
    each chunk leave it to the check at the loop's end.  A worker that marked itself dies in
    that check (as one killed from outside, or out of memory, at that moment would).'''

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        if (Path(self.folder) / f"crash-{os.getpid()}").exists():
            os._exit(5)
        time.sleep(0.02)
        return (Heavy, (self.folder,))


def first(folder, method):
    heavy = Heavy(folder)
    out = []
    for i in ParaLoop(range(2), num_processes=2, chunksize=1, start_method=method):
        if i == 0:
            # The worker of chunk 0 (the loop's first worker) dies in the final check.
            (Path(heavy.folder) / f"crash-{os.getpid()}").write_text("")
        out.append(i)
    return out


def second(method):
    out = []
    for i in ParaLoop(range(4), num_processes=2, chunksize=1, start_method=method):
        out.append(i * 10)
    return out
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_crash_in_the_final_check_leaves_the_other_workers_answers_for_the_next_loop(
    load_module: Loader, tmp_path: Path, method: str
) -> None:
    """A loop whose worker dies during the end-of-loop check (the CHECK its captured objects
    get when the checks after each chunk left them: here a captured object whose fingerprint
    is slow) raises WorkerCrashedError, as the contract says.  But the other worker of that
    loop had been sent CHECK too, and its answer (a ``Checked``) was never read: the worker went
    back to the pool with it in its pipe.  The program's next loop, a plain
    ``for i in ParaLoop(range(4)): out.append(i * 10)`` (plain result [0, 10, 20, 30]), took
    that stale answer for a chunk's outcome and raised paraloop's own
    ``AttributeError: 'Checked' object has no attribute 'chunk'`` (dispatch._note)."""
    module = load_module(textwrap.dedent(CHECK_CRASH))
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.first(str(tmp_path), method)
    assert "exited with code 5" in str(caught.value)
    # The pool's next loop is the plain loop's.
    assert module.second(method) == [0, 10, 20, 30]
    assert module.second(method) == [0, 10, 20, 30]


CHECK_INTERRUPTED = """
# paraloop: enable
import os, time
from pathlib import Path
from paraloop import ParaLoop


class Heavy:
    '''Its fingerprint is slow: the loop's end checks it (CHECK).  In that check, a worker that
    ran the loop says so in a file and answers once the program has seen its Ctrl-C.'''

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        folder = Path(self.folder)
        if (folder / f"mark-{os.getpid()}").exists():
            (folder / "checking").write_text("")
            deadline = time.monotonic() + 60
            while not (folder / "interrupted").exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            time.sleep(0.02)
        return (Heavy, (self.folder,))


def first(folder, method):
    heavy = Heavy(folder)
    out = []
    for i in ParaLoop(range(2), num_processes=1, chunksize=1, start_method=method):
        (Path(heavy.folder) / f"mark-{os.getpid()}").write_text("")
        out.append(i)
    return out


def second(method):
    out = []
    for i in ParaLoop(range(4), num_processes=1, chunksize=1, start_method=method):
        out.append(i * 10)
    return out
"""

CTRL_C_PROGRAM = """
import json, os, signal, sys, threading, time
from pathlib import Path
import checked

method, folder = sys.argv[1], Path(".").resolve()


def press_ctrl_c_once_checking():
    deadline = time.monotonic() + 60
    while not (folder / "checking").exists():
        assert time.monotonic() < deadline, "the worker never reached the final check"
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=press_ctrl_c_once_checking, daemon=True).start()
try:
    checked.first(str(folder), method)
    first = "no error"
except KeyboardInterrupt:
    first = "KeyboardInterrupt"
(folder / "interrupted").write_text("")
print(json.dumps([first, checked.second(method), checked.second(method)]))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ctrl_c_during_the_final_check_leaves_no_answer_for_the_next_loop(
    tmp_path: Path, method: str
) -> None:
    """The user presses Ctrl-C while a loop's worker runs the end-of-loop check (a captured
    object whose fingerprint is slow), then runs another loop, as an interactive session does.
    The contract: KeyboardInterrupt, and the pool runs the next loop (plain result
    [0, 10, 20, 30]).  paraloop raised the KeyboardInterrupt, but the worker went back to the
    pool with its answer to CHECK (a ``Checked``) still to come in its pipe; the next loop took
    it for a chunk's outcome and raised paraloop's own
    ``AttributeError: 'Checked' object has no attribute 'chunk'`` (dispatch._note).  (The worker
    answers only after the program caught the KeyboardInterrupt: the order is certain.)"""
    # Every iteration in the worker: the caller's own would mark the caller.
    result = run_source(
        tmp_path, CTRL_C_PROGRAM, method, files={"checked.py": CHECK_INTERRUPTED}, PARALOOP_CALLER_RUNS="0"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == '["KeyboardInterrupt", [0, 10, 20, 30], [0, 10, 20, 30]]'


EXIT_PROGRAM = """
import json, os, sys, threading, time
from pathlib import Path
from paraloop import ParaLoop
from paraloop.backends.processes.pool import worker_pids

started = Path(sys.argv[2])


def background():
    total = 0
    for i in ParaLoop(range(100_000), num_processes=2, start_method=sys.argv[1], chunksize=1):
        if i == 0:
            started.write_text("")
        time.sleep(0.01)
        total += i
    print("background loop ended", total)


threading.Thread(target=background, daemon=True).start()
deadline = time.monotonic() + 60
while not started.exists():
    assert time.monotonic() < deadline, "the background loop did not start"
    time.sleep(0.01)
print(json.dumps(worker_pids()))
print("main exits")
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_daemon_threads_loop_running_at_exit_raises_nothing(tmp_path: Path, method: str) -> None:
    """A program runs a long loop in a daemon thread (a background job) and its main thread
    ends while that loop runs.  The plain program prints "main exits" and ends quietly (the
    daemon thread is stopped with the interpreter).  With paraloop, the pool's exit function
    (pool.shutdown_pools -> ProcessPool.shutdown) told the loop's leased workers to quit, and
    the still running loop took their exit for a crash: the program printed
    ``Exception in thread ... paraloop.errors.WorkerCrashedError: ... a worker process (pid N)
    exited with code 0 while running iteration K of the loop`` (dispatch.lose ->
    endings.crash_error), a crash that did not happen (fork: every run; spawn and forkserver:
    most).  Now and then the exit function itself failed too, ``Exception ignored in atexit
    callback: shutdown_pools ... OSError: [Errno 9] Bad file descriptor`` (handle.Worker.kill:
    the main thread and the loop's thread closed the same connection at once)."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(EXIT_PROGRAM))
    result = run_program(script, method, str(tmp_path / "started"), timeout=120, PARALOOP_CALLER_RUNS="0")
    assert result.returncode == 0, result.stderr[-3000:]
    pids, last = result.stdout.strip().splitlines()
    assert last == "main exits"
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr, result.stderr[-3000:]
    # The loop's workers ended with the program (contract section 8).
    assert json.loads(pids), "the loop had no worker"
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in json.loads(pids) if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive == []


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


FORK_DURING_START = """
# paraloop: enable
import json, os, threading
import multiprocess.util as mutil
import paraloop
from paraloop import ParaLoop

starting = threading.Event()
forked = threading.Event()
spawned = mutil.spawnv_passfds


def spawnv_passfds(path, args, passfds):
    pid = spawned(path, args, passfds)
    # The spawn worker (not the resource tracker, started the same way) has started; its end of the pipe and the write end of its sentinel are
    # still open in this process until the start returns.  The program forks now, in another
    # thread (its own os.fork, a multiprocessing pool: paraloop's lock does not cover it).
    if any("spawn_main" in str(arg) for arg in args) and not starting.is_set():
        starting.set()
        assert forked.wait(60)
    return pid


mutil.spawnv_passfds = spawnv_passfds
hold, release = os.pipe()


def forking():
    assert starting.wait(60)
    if os.fork() == 0:
        # The program's child lives on (a server, a pool), holding what it inherited but the
        # program's output (the test reads it to its end) and the pipe the program ends it by.
        os.close(release)
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os.read(hold, 1)
        os._exit(0)
    forked.set()


def crashing():
    try:
        for i in ParaLoop(range(2), num_processes=1, chunksize=1, start_method="spawn", caller_runs=False):
            if i == 0:
                os._exit(3)
        return "no error"
    except paraloop.WorkerCrashedError as error:
        return "exited with code 3" in str(error)


outcome = []
forker = threading.Thread(target=forking)
forker.start()
runner = threading.Thread(target=lambda: outcome.append(crashing()), daemon=True)
runner.start()
runner.join(30)
forker.join()
os.close(release)  # the child may end now
print(json.dumps(outcome or "still waiting after 30 s"), flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("portable", ["0", "1"])
def test_a_spawn_workers_crash_is_seen_when_the_program_forks_during_its_start(
    tmp_path: Path, portable: str
) -> None:
    """Two threads: one runs a loop with ``start_method="spawn"`` whose iteration 0 crashes
    (``os._exit(3)``); the other forks a child of the program's own (``os.fork``, a
    multiprocessing pool) while the spawn worker starts (pinned here by pausing multiprocess's
    ``util.spawnv_passfds`` until the fork happened; the natural window is the spawn start, tens
    of milliseconds).  The contract (section 5): WorkerCrashedError within seconds, never a
    hang.  paraloop waited for ever: the child inherited the spawn worker's end of its pipe and
    the write end of its sentinel pipe, and neither showed the worker's death while the child
    lived.  Found with paraloop's own fork loop in the other thread, whose starts now take turns
    with the spawn start (handle._starts); a child of the program's own is seen past through a
    pidfd on Linux, and elsewhere (``PARALOOP_PORTABLE=1``) by asking the system every second."""
    if portable == "0" and not LINUX_FACILITIES:
        pytest.skip("pidfd is Linux's: the portable run covers the other platforms")
    result = run_source(tmp_path, FORK_DURING_START, timeout=120, PARALOOP_PORTABLE=portable)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[true]", result.stdout
