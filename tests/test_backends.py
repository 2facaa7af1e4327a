"""What is particular to the threads and sequential backends."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SECOND_CTRL_C, last_json, run_source, start_program, sweep

import paraloop

Loader = Callable[..., ModuleType]


def test_threads_run_in_this_process_in_other_threads(load_module: Loader) -> None:
    """backend='threads' runs the body in threads of the caller's process."""
    module = load_module("""
        import os, threading, time
        from paraloop import ParaLoop
        pids = set()
        threads = set()
        for i in ParaLoop(range(40), num_processes=3, chunksize=1, backend="threads"):
            time.sleep(0.001)
            pids.add(os.getpid())
            threads.add(threading.current_thread().name)
    """)
    assert module.pids == {os.getpid()}
    assert threading.current_thread().name not in module.threads
    assert all(name.startswith("paraloop-thread-") for name in module.threads)


def test_threads_accept_what_processes_cannot_receive(load_module: Loader) -> None:
    """A lock and an open file captured by the body work with threads."""
    module = load_module("""
        import threading
        from paraloop import ParaLoop
        lock = threading.Lock()
        def write_lines(path):
            with open(path, "w") as handle:
                for i in ParaLoop(range(50), num_processes=2, backend="threads"):
                    with lock:
                        handle.write(f"{i}\\n")
    """)
    path = module.__file__ + ".txt"
    module.write_lines(path)
    with open(path) as handle:
        assert sorted(int(line) for line in handle) == list(range(50))


def test_nested_loop_in_a_thread_runs_sequentially(load_module: Loader) -> None:
    """A ParaLoop inside a threaded body runs in that thread, with the right result."""
    module = load_module("""
        import threading
        from paraloop import ParaLoop
        rows = []
        for i in ParaLoop(range(4), num_processes=2, backend="threads"):
            names = set()
            for j in ParaLoop(range(3)):
                names.add(threading.current_thread().name)
            rows.append((i, len(names)))
    """)
    assert module.rows == [(i, 1) for i in range(4)]


def test_timeout_with_threads_leaves_the_thread_to_finish(load_module: Loader) -> None:
    """timeout= with threads raises in the caller; the thread, which cannot be stopped, finishes later."""
    with pytest.raises(paraloop.IterationTimeoutError, match="goes on in the background"):
        load_module("""
            import time
            from paraloop import ParaLoop
            for i in ParaLoop(range(3), backend="threads", timeout=0.3):
                time.sleep(1.5 if i == 1 else 0)
        """)


def test_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown backend, in code or in PARALOOP_BACKEND, is refused with the choices."""
    with pytest.raises(paraloop.ParaLoopError, match="'threads'"):
        paraloop.ParaLoop(range(3), backend="gpu")
    monkeypatch.setenv("PARALOOP_BACKEND", "gpu")
    with pytest.raises(paraloop.ParaLoopError, match="threads"):
        paraloop.ParaLoop(range(3)).resolved_backend()


@pytest.mark.parametrize("make", ["threading.Lock()", "open(__file__)", "socket.socket()"])
def test_unpicklable_capture_is_refused_naming_it(load_module: Loader, make: str) -> None:
    """A lock, open file or socket captured by the body is refused up front, naming it."""
    module = load_module(f"""
        import socket, threading
        from paraloop import ParaLoop
        def run():
            handle = {make}
            for i in ParaLoop(range(4), num_processes=2, backend="processes"):
                print(handle, i)
    """)
    with pytest.raises(
        paraloop.ParaLoopError, match=r"line 7: the loop body uses 'handle'.*backend='threads'"
    ):
        module.run()


def test_paraloop_logs_through_its_logger(load_module: Loader, caplog: pytest.LogCaptureFixture) -> None:
    """Rewrites and loop runs are logged on logging.getLogger('paraloop'), never printed."""
    with caplog.at_level("DEBUG", logger="paraloop"):
        module = load_module("""
            from paraloop import ParaLoop
            total = 0
            for i in ParaLoop(range(5), num_processes=2):
                total += i
        """)
    assert module.total == 10
    messages = [r.getMessage() for r in caplog.records if r.name == "paraloop"]
    assert any("rewrote 1 ParaLoop loop(s)" in m for m in messages)
    assert any("backend processes, 2 worker(s)" in m for m in messages)


def test_ctrl_c_while_a_thread_starts_stops_the_threads_already_running(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt that arrives while the second thread starts (the caller waits there
    for it to run) reaches the caller, and the thread already running takes no further chunk
    (before, it went on through the whole loop in the background)."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        ran = []
        def run():
            for i in ParaLoop(range(1000), num_processes=3, chunksize=1, backend="threads"):
                time.sleep(0.002)
                ran.append(i)
    """)
    start = threading.Thread.start
    # This loop's threads only: another test's may still run in this process (a generator
    # expression left half read keeps its threads until it is closed).
    started: list[threading.Thread] = []

    def start_then_interrupt(thread: threading.Thread) -> None:
        # Where a terminal's Ctrl-C lands if it comes while Thread.start waits for the thread.
        start(thread)
        started.append(thread)
        if thread.name == "paraloop-thread-2":
            raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        module.run()
    monkeypatch.undo()
    assert [thread.name for thread in started] == ["paraloop-thread-1", "paraloop-thread-2"]
    for thread in started:
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{thread.name} still runs the loop"
    assert len(module.ran) < 50, f"{len(module.ran)} iterations ran after the interrupt"


def test_a_threads_chunk_after_the_one_that_raised_starts_no_more_iterations(
    load_module: Loader, tmp_path: Path
) -> None:
    """After an iteration's exception, the threads (which cannot be stopped) finish the
    iterations they run, but start none past it: the plain loop never runs them.  Two threads,
    chunks of 16: the second thread's chunk (16-31) stops after its running iteration when the
    first chunk's iteration 2 raises (it ran all 16 in the background after the loop raised,
    and took the next chunk, 32-47, too).  Each iteration notes its start in a file (a list the
    body appends to is the loop's own: the chunks past the exception leave nothing in it)."""
    module = load_module(f"""
        import time
        from paraloop import ParaLoop
        def note(i):
            with open({str(tmp_path / "started.txt")!r}, "a") as handle:
                handle.write(f"{{i}}\\n")
        def run():
            for i in ParaLoop(range(64), num_processes=2, chunksize=16, backend="threads"):
                note(i)
                time.sleep(0.02)
                if i == 2:
                    raise ValueError("boom")
    """)
    with pytest.raises(ValueError, match="boom"):
        module.run()
    for thread in threading.enumerate():
        if thread.name.startswith("paraloop-thread-"):
            thread.join(timeout=10)
    started = sorted(int(line) for line in (tmp_path / "started.txt").read_text().split())
    assert started[:3] == [0, 1, 2], started
    second = [i for i in started if i >= 16]
    assert second and len(second) < 16, started
    assert max(started) < 32, started


def test_more_threads_than_cpus_take_waiting_iterations_two_at_a_time_but_the_last_ones(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting iterations on more threads than CPUs go two to a chunk (half the chunks' own CPU,
    which holds the GIL the other threads' answers wait for), but for the last two rounds of
    the threads, which go one by one as before; at no more threads than CPUs, one by one
    throughout.  Iterations of 30 ms, so the measured time alone would give chunks of one."""
    from paraloop.chunks import Chunker
    from paraloop.cpus import available_cpus

    many = available_cpus() + 1
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def run(count):
            done = []
            for i in ParaLoop(list(range(24)), num_processes=count, backend="threads"):
                time.sleep(0.03)
                done.append(i)
            return done
    """)
    cut: list[tuple[int, int]] = []
    original = Chunker.next

    def next_chunk(self: Chunker, *args: Any, **kwargs: Any) -> Any:
        chunk = original(self, *args, **kwargs)
        if chunk is not None:
            cut.append((chunk.start, len(chunk.items)))
        return chunk

    monkeypatch.setattr(Chunker, "next", next_chunk)
    assert module.run(many) == list(range(24))
    last = 24 - 2 * many
    assert sorted(cut) == [(start, 2) for start in range(0, last, 2)] + [
        (start, 1) for start in range(last, 24)
    ]
    cut.clear()
    assert module.run(available_cpus()) == list(range(24))
    assert sorted(cut) == [(start, 1) for start in range(24)]


def test_a_break_in_a_pair_of_waiting_iterations_starts_neither_its_partner_nor_another_pairs(
    load_module: Loader, tmp_path: Path
) -> None:
    """Chunks of two on more threads than CPUs keep the break: the breaking iteration's partner
    in its chunk does not start, nor does the second iteration of a chunk another thread runs
    then (the plain loop never runs either).  Each iteration notes its start in a file."""
    from paraloop.cpus import available_cpus

    module = load_module(f"""
        import time
        from paraloop import ParaLoop
        def note(i):
            with open({str(tmp_path / "started.txt")!r}, "a") as handle:
                handle.write(f"{{i}}\\n")
        def run():
            done = []
            for i in ParaLoop(list(range(40)), num_processes={available_cpus() + 1}, backend="threads"):
                note(i)
                if i == 6:
                    break
                time.sleep(0.1)
                done.append(i)
            return done
    """)
    assert module.run() == [0, 1, 2, 3, 4, 5]
    for thread in threading.enumerate():
        if thread.name.startswith("paraloop-thread-"):
            thread.join(timeout=10)
    started = sorted(int(line) for line in (tmp_path / "started.txt").read_text().split())
    assert 7 not in started, started
    assert [i for i in started if i > 6 and i % 2] == [], started


ENDS_AFTER_AN_EXCEPTION = """
    # paraloop: enable
    import warnings
    from paraloop import ParaLoop
    warnings.simplefilter("always")
    total = 0
    try:
        for i in ParaLoop(range(40), caller_runs=False):
            warnings.warn(f"w{i}")
            if i == 13:
                raise ValueError("boom")
            total += i
    except ValueError as e:
        print("caught", e, total)
"""


def test_a_program_that_ends_while_threads_iterations_warn_does_not_abort(tmp_path: Path) -> None:
    """A program whose threads-backend loop raised, ending while iterations past the exception
    still warned in the loop's daemon threads, aborted now and then as the interpreter shut down
    ("Fatal Python error: _enter_buffered_busy: could not acquire lock for <stderr>", status
    134: 4 runs in 40 before, here about one in 25).  Those threads start no iteration past the
    exception, and the program's end waits a moment for the ones running.  90 runs, three at a
    time (at least one aborted in 2 tries out of 3 of 30 runs before)."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(ENDS_AFTER_AN_EXCEPTION))
    for _ in range(30):
        runs = [start_program(script, PARALOOP_BACKEND="threads") for _ in range(3)]
        for run in runs:
            stdout, stderr = run.communicate(timeout=60)
            assert run.returncode == 0, stderr[-2000:]
            assert stdout == "caught boom 78\n"
            assert "Fatal Python error" not in stderr


def test_a_threads_timeout_fires_while_other_threads_deliver_outcomes(load_module: Loader) -> None:
    """An iteration past ``timeout=`` raises IterationTimeoutError on threads even while the
    other threads' quick chunks keep arriving (the deadline was looked at only when none
    arrived for a while: the loop ran to its end with the overdue iteration's result, 3 runs
    in 3).  Found by the session 24 adversary (F1)."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def run():
            out = []
            for i in ParaLoop(range(3000), backend="threads", num_processes=2, chunksize=1, timeout=0.5):
                time.sleep(3.0 if i == 0 else 0.001)
                out.append(i)
            return out
    """)
    with pytest.raises(paraloop.IterationTimeoutError, match="iteration 0"):
        module.run()


def test_a_threads_chunk_of_a_long_range_is_not_made_a_list(load_module: Loader) -> None:
    """A range's chunk runs over a list of its own only up to LISTED_ITEMS items: a chunksize
    of half of 2,000,000 made the threads backend build a list of a million numbers per chunk
    (peak memory 245 MB -> 1,011 MB for 20,000,000).  Found by the session 24 adversary (F3)."""
    import tracemalloc

    module = load_module("""
        from paraloop import ParaLoop
        def note(i):
            return i * 2  # no state: nothing recorded per iteration
        def run(n):
            for i in ParaLoop(range(n), backend="threads", num_processes=2, chunksize=n // 2):
                note(i)
    """)
    module.run(1000)  # the backend's own first imports, outside the measure
    tracemalloc.start()
    try:
        module.run(2_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A list of a million numbers: 8 MB of pointers and 28 MB of int objects.
    assert peak < 4_000_000, peak


def test_a_closed_generator_over_threads_leaves_no_thread_waiting(load_module: Loader) -> None:
    """A generator expression over a threads loop, closed after its first item, stops its
    threads at once: those waiting for room looked at the stop only every half second, and a
    program that ended next waited for them (0.06 s -> 0.56 s).  Found by the session 24
    adversary (F4)."""
    module = load_module("""
        from paraloop import ParaLoop
        def first():
            values = (x for x in ParaLoop(range(10**6), backend="threads", num_processes=2) if x > 5)
            found = next(values)
            values.close()
            return found
    """)
    before = {thread for thread in threading.enumerate() if thread.name.startswith("paraloop-thread-")}
    assert module.first() == 6
    started = [
        thread
        for thread in threading.enumerate()
        if thread.name.startswith("paraloop-thread-") and thread not in before
    ]
    for thread in started:
        thread.join(timeout=0.3)
    assert not [thread.name for thread in started if thread.is_alive()]


SLOW_THREADS_LOOP = """
    # paraloop: enable
    import sys, time
    from paraloop import ParaLoop
    for i in ParaLoop(range(1000), backend="threads", num_processes=2, chunksize=5):
        if i == 0:
            print("running", flush=True)
        time.sleep(5.0)
    print("done")
"""


def test_a_second_ctrl_c_while_the_program_waits_for_threads_ends_it_quietly(tmp_path: Path) -> None:
    """Ctrl-C in a threads loop, then Ctrl-C again while the program's end waits for the
    iterations still running: it ends, without "Exception ignored in atexit callback" and a
    traceback of paraloop's (2 runs in 2).  Found by the session 24 adversary (F5)."""
    import signal

    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(SLOW_THREADS_LOOP))
    run = start_program(script, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert run.stdout is not None
    assert run.stdout.readline() == "running\n"
    run.send_signal(signal.SIGINT)
    # The loop raises KeyboardInterrupt at once; its end then waits up to 2 s for the threads.
    time.sleep(0.5)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=30)
    assert "KeyboardInterrupt" in stderr
    assert "atexit" not in stderr, stderr
    assert "paraloop/backends/threads.py" not in stderr.split("KeyboardInterrupt")[-1], stderr


@pytest.mark.parametrize("ending", ["raise", "break"])
def test_a_threads_chunk_taken_before_a_later_one_ends_the_loop_still_runs(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """A thread that took chunk 3 and was held up before starting it, while another thread's
    chunk 4 raised (or broke): chunk 3 runs all the same, since its iteration comes first in
    the plain loop.  The check of a chunk taken as the loop was ending skipped it, and the loop
    ended with no exception and iterations 3 and 4 missing (5 runs in 5; 2-6 loops in 300 with
    no delay added but a switch interval of 1 us).  Found by the session 24 second adversary (A)."""
    from paraloop.backends import threads

    own_list = threads._own_list

    def held_up(chunk: Any) -> Any:
        if chunk.index == 3:
            time.sleep(0.2)  # as a thread preempted right after it took chunk 3
        return own_list(chunk)

    monkeypatch.setattr(threads, "_own_list", held_up)
    stop = "raise ValueError(i)" if ending == "raise" else "break"
    module = load_module(f"""
        from paraloop import ParaLoop
        out = []
        def run():
            for i in ParaLoop(range(10), backend="threads", num_processes=2, chunksize=1):
                out.append(i)
                if i == 4:
                    {stop}
    """)
    if ending == "raise":
        with pytest.raises(ValueError, match="4"):
            module.run()
    else:
        module.run()
    assert module.out == [0, 1, 2, 3, 4]


def test_a_chunk_that_never_comes_back_is_an_error_not_a_short_result() -> None:
    """The caller combines chunks in order: a later chunk back and an earlier one never (a bug
    such as the one above) raises ParaLoopError, rather than a loop that ends short, silently."""
    from paraloop.chunks import Chunker
    from paraloop.execute import DONE, Outcome
    from paraloop.runtime import _drive

    chunker = Chunker(range(10), None, "copy")
    outcomes = iter([Outcome(0, 0, 1, DONE), Outcome(2, 2, 1, DONE)])
    driven = _drive(outcomes, chunker, inline=True)
    assert next(driven).chunk == 0
    with pytest.raises(paraloop.ParaLoopError, match="lost chunk 1"):
        next(driven)


@pytest.mark.parametrize(
    ("options", "step", "where"),
    [
        ('backend="threads"', 1, "main"),
        ('start_method="fork"', 3, "main"),
        ('start_method="fork"', 3, "other"),
    ],
)
def test_a_loop_the_garbage_collector_finalizes_during_the_next_one_hangs_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, options: str, step: int, where: str
) -> None:
    """Fault injection: a generator expression over a loop, left half read in a reference cycle,
    is finalized by the garbage collector (which may run at any allocation) at each point of the
    next loop in turn (every ``step``-th Python call: a collection there): its cleanup runs inside
    the next loop's own.  Every next loop gives the plain loop's result, and nothing hangs.  (It
    hung where the next loop held a lock of paraloop's that the cleanup takes: the caller's
    native-pool limit, the threads noted for the program's exit; and a worker the cleanup
    discarded failed the next loop's lease with ``list.remove(x): x not in list``.)  ``where``:
    the next loop runs in the main thread, or in another (the garbage collector finalizes the
    main thread's loop there: its fork loop failed with "dictionary changed size during
    iteration", in the caller's turns at forks)."""
    first, step = sweep(request, step)
    result = run_source(
        tmp_path,
        f"""
        # paraloop: enable
        import faulthandler, gc, json, sys, threading
        from paraloop import ParaLoop

        def abandon():
            squares = (i * i for i in ParaLoop(range(50), num_processes=2, {options}))
            first = next(squares)
            cycle = [squares]
            cycle.append(cycle)
            return first

        state = {{"at": 0, "calls": 0, "hit": True}}

        def collect(frame, event, arg):
            if event == "call":
                state["calls"] += 1
                if state["calls"] == state["at"]:
                    sys.setprofile(None)
                    state["hit"] = True
                    gc.collect()

        def next_loop(totals):
            sys.setprofile(collect)
            try:
                total = 0
                for i in ParaLoop(range(8), num_processes=2, chunksize=1, {options}):
                    total += i
                totals.add(total)
            except Exception as error:
                totals.add(repr(error))
            finally:
                sys.setprofile(None)

        totals = set()
        state["at"] = {first - step}
        while state["hit"]:
            faulthandler.dump_traceback_later(30, exit=True)  # a hang fails with the stacks
            state["at"] += {step}
            state["hit"] = False
            state["calls"] = 0
            gc.disable()  # the abandoned loop is collected only at the point tried
            abandon()
            if {where!r} == "main":
                next_loop(totals)
            else:
                other = threading.Thread(target=next_loop, args=(totals,))
                other.start()
                other.join()
            gc.enable()
        print(json.dumps([state["at"], sorted(totals, key=str)]))
        """,
        timeout=240,
        PARALOOP_CALLER_RUNS="1",
    )
    tried, totals = last_json(result)
    assert tried > 100 and totals == [28], (tried, totals)


def test_a_ctrl_c_as_the_pool_leases_a_worker_leaves_it_to_later_loops(tmp_path: Path) -> None:
    """Fault injection (session 38's helper): a Ctrl-C handled just as the pool's lease of a
    worker returns, before the loop takes the worker in (``loop.active.extend(pool.lease(...))``),
    made by the lease raising KeyboardInterrupt once after it leased.  The worker was left leased
    to the ended loop for the program's life: later loops started others beside it (4 processes
    after the last loop, against 2; CI's double Ctrl-C test once found 4).  Now no worker stays
    leased to a loop that ended, and the last loop runs on two."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import json, os, time
        from paraloop import ParaLoop
        from paraloop.backends.processes import pool as pools

        original = pools.ProcessPool.lease
        armed = {"left": 0}

        def lease(self, count, loop_id, start=True, before_fork=None):
            chosen = original(self, count, loop_id, start, before_fork)
            if start and armed["left"]:
                armed["left"] -= 1
                raise KeyboardInterrupt  # as a Ctrl-C handled as the call returns
            return chosen

        pools.ProcessPool.lease = lease

        def children():
            me, found = os.getpid(), []
            for name in os.listdir("/proc"):
                if name.isdigit():
                    try:
                        with open(f"/proc/{name}/stat") as stat:
                            fields = stat.read().rsplit(") ", 1)[1].split()
                    except OSError:
                        continue
                    if fields[0] != "Z" and int(fields[1]) == me:
                        found.append(int(name))
            return found

        def held():
            return [worker.lease for pool in pools._pools.values() for worker in pool.workers
                    if worker.lease is not None]

        leases = []
        for cut in range(2):
            armed["left"] = 1
            try:
                for i in ParaLoop(range(200), num_processes=2, start_method="fork", lanes=False):
                    time.sleep(0.002)
            except KeyboardInterrupt:
                pass
            leases.append(held())
        total = sum(i for i in ParaLoop(range(20), num_processes=2, start_method="fork"))
        print(json.dumps([leases, total, len(children())]))
        """,
        timeout=120,
    )
    leases, total, after = last_json(result)
    assert leases == [[], []] and total == 190 and after <= 2, (leases, total, after)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_ctrl_c_twice_stops_the_loop_s_workers(
    request: pytest.FixtureRequest, tmp_path: Path, method: str
) -> None:
    """Ctrl-C pressed twice: an iteration sends the caller SIGINT, and the second Ctrl-C comes at
    each Python call of the loop's cleanup in turn (by a profile function the first Ctrl-C's
    handler sets).  The program, which catches KeyboardInterrupt and goes on, has no more live
    processes than after a loop that ended as it should (its two workers, and the fork server)
    after each loop, and its next loop runs.  (A second Ctrl-C in the cleanup skipped the
    workers' release: they went on running the interrupted loop's iterations, out of the
    program's reach, and each loop started two more: 48 live processes after 84 loops.)  And the
    program's SIGINT handler is its own after each loop (a second Ctrl-C as the loop's handler
    wrapper was taken off left the wrapper in place: after 3 to 8 of the cut loops)."""
    head = "# paraloop: enable\nimport json, os, signal, sys, time\nfrom paraloop import ParaLoop\n"
    first, step = sweep(request)
    result = run_source(
        tmp_path,
        head
        + SECOND_CTRL_C
        + textwrap.dedent(
            f"""
        def live_descendants():
            # Under forkserver the workers are the fork server's children.
            parents = {{}}
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                try:
                    with open(f"/proc/{{name}}/stat") as stat:
                        fields = stat.read().rsplit(") ", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if fields[0] != "Z":
                    parents[int(name)] = int(fields[1])
            found = []
            for pid in parents:
                parent = parents[pid]
                while parent in parents and parent != caller:
                    parent = parents[parent]
                if parent == caller:
                    found.append(pid)
            seen.append(found)
            return len(found)

        # Each count's processes, for a failure to show (CI once found 4 after the last loop).
        seen = []

        # The workers of a loop that ended as it should, with the fork server and its helpers.
        # Without lanes: a loop whose iterations mostly wait may start more workers.
        sum(i for i in ParaLoop(range(200), num_processes=2, start_method={method!r}, lanes=False))
        usual = live_descendants()
        signal.signal(signal.SIGINT, first)
        most = 0
        # The cut loops after which the program's handler was not its own (paraloop's wrapper).
        wrapped = []
        state["at"] = {first - step}
        while state["hit"] and state["at"] < 400:
            state["at"] += {step}
            state["hit"] = False
            try:
                for i in ParaLoop(range(200), num_processes=2, start_method={method!r}, lanes=False):
                    if i == 20:
                        os.kill(caller, signal.SIGINT)
                    time.sleep(0.002)
            except KeyboardInterrupt:
                pass
            sys.setprofile(None)
            most = max(most, live_descendants())
            if signal.getsignal(signal.SIGINT) is not first:
                wrapped.append(state["at"])
                signal.signal(signal.SIGINT, first)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        total = sum(i for i in ParaLoop(range(20), num_processes=2, start_method={method!r}))
        after = live_descendants()
        print(json.dumps([usual, state["at"], most, total, after, seen[:1] + seen[-2:], wrapped]))
        """
        ),
        timeout=600,
    )
    usual, tried, most, total, after, pids, wrapped = last_json(result)
    assert usual >= 2 and tried > 20, (usual, tried)
    assert most <= usual and total == 190 and after <= usual, (usual, most, total, after, pids)
    assert wrapped == [], wrapped
