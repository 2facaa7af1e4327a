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


ALARMED = """
    # paraloop: enable
    import json, signal, time
    from paraloop import ParaLoop

    class Alarm(Exception):
        pass

    def on_alarm(number, frame):
        raise Alarm("rang")

    signal.signal(signal.SIGALRM, on_alarm)
    seen = []
    for round in range(6):
        # Rings while the loop runs (60 iterations of 20 ms on two workers take 0.6 s at
        # least): often while paraloop pickles the next 8 MB item.
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        try:
            for item in ParaLoop([b"x" * (8 << 20)] * 60, caller_runs=CALLER_RUNS, num_processes=2, chunksize=1):
                time.sleep(0.02)
            seen.append("completed")
        except Alarm as error:
            seen.append(f"Alarm: {error}")
        except BaseException as error:
            seen.append(f"{type(error).__name__}: {error}"[:300])
        signal.setitimer(signal.ITIMER_REAL, 0)
    after = []
    for i in ParaLoop(range(6), num_processes=2):
        after.append(i)
    print(json.dumps([seen, after]))
"""


@pytest.mark.parametrize("caller_runs", [False, True])
def test_a_signal_handlers_exception_during_a_loop_is_raised_by_the_loop(tmp_path, caller_runs) -> None:
    """An alarm whose handler raises, ringing while a loop runs: the plain loop raises the
    handler's exception.  paraloop's own code caught it where it tries another way (pickle,
    then dill): the loop went on to its end, or it was reported as an item that could not be
    loaded ("Alarm"), 2-4 rounds in 6.  The pool works after it."""
    result = run_source(
        tmp_path, ALARMED.replace("CALLER_RUNS", str(caller_runs)), timeout=120, PARALOOP_START_METHOD="fork"
    )
    assert last_json(result) == [["Alarm: rang"] * 6, list(range(6))]


def test_an_alarm_the_body_handles_itself_still_reaches_the_body(tmp_path) -> None:
    """A handler given before the loop, an alarm set and caught inside each iteration: in the
    iterations the caller runs and in the forked workers (which inherit the handler as it was
    while the loop ran), the body's own except sees its exception."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, signal, time
        from paraloop import ParaLoop

        class Timeout(Exception):
            pass

        def on_alarm(number, frame):
            raise Timeout()

        signal.signal(signal.SIGALRM, on_alarm)
        outcomes = []
        for i in ParaLoop(range(12), num_processes=2, chunksize=2):
            # An iteration that does not wait gets an alarm it ends long before: under load, one
            # of 10 ms rang before the next line, in the plain loop too.
            signal.setitimer(signal.ITIMER_REAL, 0.01 if i % 3 == 0 else 60)
            try:
                time.sleep(5 if i % 3 == 0 else 0)
                outcomes.append([i, "slept"])
            except Timeout:
                outcomes.append([i, "timed out"])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps([outcomes, signal.getsignal(signal.SIGALRM) is on_alarm]))
        """,
        timeout=120,
        PARALOOP_START_METHOD="fork",
    )
    expected = [[i, "timed out" if i % 3 == 0 else "slept"] for i in range(12)]
    assert last_json(result) == [expected, True]


def test_a_sigpipe_the_program_is_sent_during_a_write_to_a_worker_is_heard(tmp_path) -> None:
    """Session 22's second pass, F7: a SIGPIPE sent to the program (``kill -PIPE``) while
    paraloop wrote to a worker was taken back with the one a write to a dead worker raises:
    the program's handler never heard it (4 runs in 18), or a program with SIGPIPE at its
    default did not end.  Only a write that hit a closed pipe takes one back now."""
    result = run_source(
        tmp_path,
        """
        import json, os, signal, threading
        from paraloop.backends.processes.handle import sigpipe_held

        heard = []
        signal.signal(signal.SIGPIPE, lambda number, frame: heard.append(number))
        with sigpipe_held():
            # Sent to this thread while it writes (held meanwhile, as a write holds it).
            signal.pthread_kill(threading.get_ident(), signal.SIGPIPE)
        after_a_write = len(heard)
        reading, writing = os.pipe()
        os.close(reading)
        try:
            with sigpipe_held():
                os.write(writing, b"to a dead worker")
        except BrokenPipeError:
            pass
        print(json.dumps([after_a_write, len(heard)]))
        """,
        timeout=60,
    )
    assert last_json(result) == [1, 1]
