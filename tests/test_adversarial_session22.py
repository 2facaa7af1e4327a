"""Findings of session 21's adversarial pass that were left open then, fixed in session 22.

Every program runs as a user runs it (``python -m paraloop program.py``, conftest.run_source),
with every iteration in a worker.  No assertion is on timings.
"""

from __future__ import annotations

import pytest
from conftest import last_json, run_source

METHODS = ["fork", "forkserver", "spawn"]

_KILLER = {
    "killer.py": """
    import os, signal, time


    def kill_idle_workers():
        # The OOM killer, or a user's kill, between loops: the workers wait for work, idle.
        from paraloop.backends.processes.pool import worker_pids
        pids = worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # The pool knows they died once it collected their status (a fork worker's from this
        # program, a forkserver worker's from the fork server): until then, to the pool, an
        # idle worker killed a moment ago is alive, and the next loop gives it a chunk.
        deadline = time.monotonic() + 60
        while set(pids) & set(worker_pids()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(pids)
    """
}


@pytest.mark.parametrize("method", METHODS)
def test_a_program_with_sigpipe_at_its_default_outlives_its_dead_workers(tmp_path, method) -> None:
    """A program that resets SIGPIPE to its default (as command-line tools do, to end quietly
    when piped into ``head``), whose idle workers were killed: it printed its result and
    exited 141 at its end, killed by the SIGPIPE of the goodbye written to a dead worker's pipe.
    The plain loop's program exits 0."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, os, signal
        from paraloop import ParaLoop
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        from killer import kill_idle_workers
        out = []
        for i in ParaLoop(range(4), caller_runs=False, num_processes=2, chunksize=1):
            out.append(i)
        killed = kill_idle_workers()
        print(json.dumps([out, killed]), flush=True)
        """,
        files=_KILLER,
        timeout=120,
        PARALOOP_START_METHOD=method,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert last_json(result) == [[0, 1, 2, 3], 2]


@pytest.mark.parametrize("method", METHODS)
def test_a_programs_sigpipe_handler_hears_nothing_from_dead_workers(tmp_path, method) -> None:
    """A program with a SIGPIPE handler of its own: paraloop's writes to workers that died are
    paraloop's business (reported, or the worker replaced), never a SIGPIPE the program hears.
    The next loop runs on new workers and gives the plain result."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, os, signal
        from paraloop import ParaLoop
        heard = []
        signal.signal(signal.SIGPIPE, lambda number, frame: heard.append(number))
        from killer import kill_idle_workers
        totals = []
        for round in range(3):
            total = 0
            for i in ParaLoop(range(8), caller_runs=False, num_processes=2, chunksize=1):
                total += i * round
            totals.append(total)
            kill_idle_workers()
        from paraloop.backends.processes.pool import shutdown_pools
        shutdown_pools()
        print(json.dumps([totals, heard]), flush=True)
        """,
        files=_KILLER,
        timeout=120,
        PARALOOP_START_METHOD=method,
    )
    assert last_json(result) == [[0, 28, 56], []]


def test_a_retired_worker_that_still_sends_through_a_queue_is_not_killed(tmp_path) -> None:
    """max_iterations_per_worker=1, and each iteration puts 4 MB into a multiprocess Queue the
    program made before the loop (read after it): a worker flushes what it put before it
    exits, so it cannot exit until the program reads.  The pool waited 5 s for each retired
    worker, then killed it: the program got nothing (queue.Empty), 20 s later.  Now a retired
    worker that does not exit at once is left to end on its own (the pool collects it later,
    or at the program's exit): the program reads all four items."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, queue
        from paraloop import ParaLoop
        from channel import q, send

        for i in ParaLoop(range(4), caller_runs=False, num_processes=2, chunksize=1,
                          max_iterations_per_worker=1):
            send(bytes([i]) * 4_000_000)
        got = []
        try:
            for _ in range(4):
                got.append(q.get(timeout=20))
        except queue.Empty:
            pass
        print(json.dumps(sorted([item[0], len(item)] for item in got)))
        """,
        # A module's queue: the workers inherit it (a function of the script would carry it by value).
        files={
            "channel.py": "import multiprocess\nq = multiprocess.Queue()\ndef send(item):\n    q.put(item)\n"
        },
        timeout=120,
        PARALOOP_START_METHOD="fork",
    )
    assert last_json(result) == [[i, 4_000_000] for i in range(4)]
