"""A program piped into ``head`` whose workers print (paraloop/broken_pipe.py).

A command-line tool restores SIGPIPE's default action so that ``tool | head -1`` ends quietly:
the first write into the closed pipe ends the process, exit status 141, no traceback.  With
workers printing, that write is a worker's: the program reported a ``WorkerCrashedError`` (fork)
or a ``BrokenPipeError`` (spawn, forkserver), with a traceback and exit status 1 (session 22's
adversarial pass, F8).  Python's own default (SIGPIPE ignored) raises ``BrokenPipeError`` in the
plain loop, and does so with workers too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import START_METHODS, product_environment

PROGRAM = """
    # paraloop: enable
    import os, signal, sys
    from paraloop import ParaLoop

    if sys.argv[1] == "default":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    pids = sys.argv[2]
    for i in ParaLoop(range(200_000), num_processes=2, caller_runs=False):
        if i % 1000 == 0:
            with open(pids, "a") as noted:
                noted.write(f"{os.getpid()}\\n")
        print("line", i)
    print("the loop ended", file=sys.stderr)
"""


def _head(tmp_path: Path, action: str, **environment: str) -> tuple[int, str, str, set[int]]:
    """The program's exit status and stderr, with its stdout read as ``head -1`` reads it: one
    line, then the pipe closed."""
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent(PROGRAM))
    pids = tmp_path / "pids.txt"
    pids.unlink(missing_ok=True)
    program = subprocess.Popen(
        [sys.executable, "-m", "paraloop", str(script), action, str(pids)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=product_environment(**environment),
        cwd=tmp_path,
    )
    assert program.stdout is not None and program.stderr is not None
    first = program.stdout.readline()
    program.stdout.close()
    error = program.stderr.read()
    status = program.wait(timeout=120)
    workers = {int(line) for line in pids.read_text().split()} if pids.exists() else set()
    return status, first, error, workers - {program.pid}


def _gone(pids: set[int]) -> set[int]:
    """The processes of ``pids`` still alive after a while (a worker ends when its program does)."""
    deadline = time.monotonic() + 30
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("method", START_METHODS)
def test_a_tool_with_sigpipe_at_its_default_ends_quietly_when_head_has_read(
    tmp_path: Path, method: str
) -> None:
    """As the plain loop: killed by SIGPIPE (status 141 in a shell), nothing on stderr, its
    workers gone with it."""
    plain = _head(tmp_path, "default", PARALOOP_BACKEND="sequential")
    assert plain[:3] == (-signal.SIGPIPE, "line 0\n", "")
    status, first, error, workers = _head(tmp_path, "default", PARALOOP_START_METHOD=method)
    assert (status, error) == (-signal.SIGPIPE, "")
    assert first.startswith("line ")  # a worker's line: the workers print in no guaranteed order
    assert workers, "the workers ran iterations"
    assert _gone(workers) == set()


@pytest.mark.parametrize("method", START_METHODS)
def test_a_program_that_ignores_sigpipe_gets_broken_pipe_error(tmp_path: Path, method: str) -> None:
    """Python's default (SIGPIPE ignored): the write raises BrokenPipeError in the iteration, and
    the program ends with it, as the plain loop's does.  The plain program's status is 1, or 120
    when lines it printed were still in its stdout's buffer at the exit, whose flush failed too
    (CI saw 120 once); the workers print here, and the caller's buffer is empty: 1."""
    plain = _head(tmp_path, "ignored", PARALOOP_BACKEND="sequential")
    status, _, error, _ = _head(tmp_path, "ignored", PARALOOP_START_METHOD=method)
    assert plain[0] in (1, 120)
    assert status == 1
    assert "BrokenPipeError" in error and "BrokenPipeError" in plain[2]
    assert "the loop ended" not in error
