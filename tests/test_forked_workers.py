"""Worker processes under fork, which paraloop forks itself (paraloop/backends/processes/forked.py).

A forked worker must behave as multiprocess's did: the program's exit functions and buffered
output stay the program's, the body's own exit functions and threads finish with the worker,
messages of any size cross its pipes whole, and its end is reported as it happened.  Each
program runs under every start method: the spawn and forkserver workers that multiprocess
still starts are the reference.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import START_METHODS, last_json, product_environment, run_source

# Every iteration in a worker: the caller's own chunks would hide what a worker does.
WORKERS = "num_processes=2, caller_runs=False"


@pytest.mark.parametrize("method", START_METHODS)
def test_the_programs_exit_functions_run_once_and_its_buffered_output_is_written_once(
    tmp_path: Path, method: str
) -> None:
    """Text the program printed before its workers started, still in stdout's buffer (a pipe is
    block-buffered), appears once; the program's atexit function runs once, in the program."""
    result = run_source(
        tmp_path,
        f"""
        # paraloop: enable
        import atexit, os
        from paraloop import ParaLoop

        MAIN = os.getpid()
        atexit.register(lambda: print("program's exit function ran in the program:", os.getpid() == MAIN))
        print("printed before the loop")
        total = 0
        for i in ParaLoop(range(40), {WORKERS}):
            total += i
        print("total", total)
        """,
        PARALOOP_START_METHOD=method,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "printed before the loop",
        f"total {sum(range(40))}",
        "program's exit function ran in the program: True",
    ], result.stdout


@pytest.mark.parametrize("method", START_METHODS)
def test_exit_functions_and_threads_the_body_starts_in_a_worker_finish_with_it(
    tmp_path: Path, method: str
) -> None:
    """What an iteration left in its worker runs to its end when the worker stops at the
    program's exit, as it would in the program: an atexit function it registered (as Python
    3.13's multiprocessing runs them in fork and forkserver children; a fork server's children
    skipped them before 3.13), and a thread it started (not a daemon) that is still working."""
    marks = tmp_path / "marks"
    marks.mkdir()
    result = run_source(
        tmp_path,
        f"""
        # paraloop: enable
        import atexit, os, threading, time
        from paraloop import ParaLoop

        MARKS = {str(marks)!r}

        def mark(kind):
            with open(os.path.join(MARKS, f"{{kind}}-{{os.getpid()}}"), "w") as handle:
                handle.write(kind)

        def late():
            time.sleep(0.3)
            mark("thread")

        pids = []
        for i in ParaLoop(range(40), {WORKERS}):
            # Each mark names its process: once per worker, however often it is made.
            atexit.register(mark, "atexit")
            threading.Thread(target=late).start()
            pids.append(os.getpid())
        print(len(set(pids)))
        """,
        PARALOOP_START_METHOD=method,
    )
    assert result.returncode == 0, result.stderr
    workers = int(result.stdout.split()[-1])
    assert workers >= 1
    kinds = sorted(path.name.split("-")[0] for path in marks.iterdir())
    # Before Python 3.13 a fork server's child left through os._exit, without the exit
    # functions (multiprocess's as multiprocessing's): the documented exception.
    registered = 0 if method == "forkserver" and sys.version_info < (3, 13) else workers
    assert kinds == ["atexit"] * registered + ["thread"] * workers, kinds


@pytest.mark.parametrize("method", START_METHODS)
def test_large_items_and_results_cross_whole(tmp_path: Path, method: str) -> None:
    """Items and results of megabytes (far past a pipe's 64 KiB) arrive whole, in order."""
    result = run_source(
        tmp_path,
        f"""
        # paraloop: enable
        import hashlib, json
        from paraloop import ParaLoop

        blocks = [bytes([n]) * (3_000_000 + n) for n in range(6)]
        out = []
        for block in ParaLoop(blocks, {WORKERS}, chunksize=2):
            out.append(block[::-1] + b"!" * 70_000)
        print(json.dumps([len(out), hashlib.sha256(b"".join(out)).hexdigest()]))
        """,
        PARALOOP_START_METHOD=method,
    )
    assert result.returncode == 0, result.stderr
    expected = b"".join(bytes([n]) * (3_000_000 + n) + b"!" * 70_000 for n in range(6))
    assert last_json(result) == [6, hashlib.sha256(expected).hexdigest()]


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_reads_no_line_of_the_programs_standard_input(tmp_path: Path, method: str) -> None:
    """An iteration in a worker that reads standard input reads nothing (EOF): the lines stay
    the program's, which reads all of them after the loop."""
    source = f"""
        # paraloop: enable
        import json, sys
        from paraloop import ParaLoop

        seen = []
        for i in ParaLoop(range(4), {WORKERS}, chunksize=1):
            seen.append(sys.stdin.readline())
        print(json.dumps([seen, sys.stdin.read()]))
        """
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        input="one\ntwo\nthree\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=product_environment(PARALOOP_START_METHOD=method),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert last_json(result) == [["", "", "", ""], "one\ntwo\nthree\n"]


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_that_exits_is_reported_with_its_code(tmp_path: Path, method: str) -> None:
    """An iteration that ends its worker with os._exit(5): WorkerCrashedError says the worker
    exited with code 5 and names the iteration; the next loop runs on a new worker."""
    result = run_source(
        tmp_path,
        f"""
        # paraloop: enable
        import json, os
        from paraloop import ParaLoop, WorkerCrashedError

        try:
            for i in ParaLoop(range(8), {WORKERS}, chunksize=1):
                if i == 3:
                    os._exit(5)
            message = "no error"
        except WorkerCrashedError as error:
            message = str(error)
        total = 0
        for i in ParaLoop(range(8), {WORKERS}):
            total += i
        print(json.dumps([message, total]))
        """,
        PARALOOP_START_METHOD=method,
    )
    assert result.returncode == 0, result.stderr
    message, total = last_json(result)
    assert "exited with code 5" in message and "iteration 3" in message, message
    assert total == sum(range(8))


def test_a_closed_channel_refuses_as_a_closed_multiprocess_connection_does() -> None:
    """A closed channel's file descriptors may be another worker's pipe's by now: watching or
    reading them would take that worker's messages.  Like multiprocess's connection, whose place
    it takes under fork, it raises ``OSError`` instead."""
    import multiprocess.connection

    from paraloop.backends.processes.forked import channel_pair

    ours, theirs = channel_pair()
    reference, _ = multiprocess.connection.Pipe()
    for channel in (ours, reference):
        channel.close()
        for use in (channel.fileno, channel.recv_bytes, channel.poll, lambda c=channel: c.send_bytes(b"x")):
            with pytest.raises(OSError, match="handle is closed"):
                use()
    theirs.close()
