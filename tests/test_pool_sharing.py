"""Loops share their start method's pool of workers, across threads and one after another:
what one loop does to the pool (a lease, a crash, a Ctrl-C at an unlucky moment) must leave
the others' workers and the next loop's to them.

The first test: one loop's lease must not close the pipes of a worker the other loop holds.

Found by CI (stop 44, py313: ``test_pin_a_crash_with_max_iterations_per_worker[0]``): a
lease closed the pipes of every worker in the pool whose process had ended, the workers a
running loop held included.  A loop whose worker died, and had not yet seen it die, then
waited on a closed pipe and raised multiprocess's ``OSError: handle is closed`` instead of
its WorkerCrashedError.  The loop leases workers itself (``max_iterations_per_worker``
replaces them) and so does any other thread's loop; here another thread's loop leases
while the crashed worker's loop is pulling its next item, which makes the order certain.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import last_json, run_source

import paraloop
from paraloop.backends.processes import pool as pool_module

Loader = Callable[..., ModuleType]

SOURCE = """
import os, threading, time
from paraloop import ParaLoop


def _ended(pid):
    # A child that exited stays a zombie until paraloop collects it: ended, either way.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _until(condition, what):
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited a minute for {what}")
        time.sleep(0.005)


def other_loop(method):
    total = 0
    for i in ParaLoop(range(6), num_processes=1, start_method=method):
        total += i
    return total


def items(path, method, others):
    yield 0
    # Item 0's worker writes its pid and exits; the loop pulls this item meanwhile.
    _until(path.exists, "item 0's worker")
    pid = int(path.read_text())
    _until(lambda: _ended(pid), f"worker {pid} to end")
    # Another thread's loop leases a worker from the same pool while this loop, which has not
    # yet seen its worker die, holds it.
    thread = threading.Thread(target=lambda: others.append(other_loop(method)))
    thread.start()
    thread.join()
    yield 1
    yield 2


def crashing(path, method, others):
    done = []
    for i in ParaLoop(items(path, method, others), num_processes=2, chunksize=1, start_method=method):
        if i == 0:
            path.with_suffix(".tmp").write_text(str(os.getpid()))
            path.with_suffix(".tmp").rename(path)
            os._exit(4)
        done.append(i)
    return done
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_another_threads_lease_leaves_a_loops_dead_worker_to_that_loop(
    load_module: Loader, tmp_path: Path, method: str
) -> None:
    module = load_module(textwrap.dedent(SOURCE))
    others: list[int] = []
    with pytest.raises(paraloop.WorkerCrashedError) as caught:
        module.crashing(tmp_path / "pid", method, others)
    message = str(caught.value)
    assert "exited with code 4" in message, message
    assert "iteration 0" in message, message
    # The other thread's loop ran to its end meanwhile.
    assert others == [sum(range(6))]
    # The pool works on, and holds no worker of the crashed loop.
    assert module.other_loop(method) == sum(range(6))
    pool = pool_module.get_pool(method)
    assert all(worker.process.is_alive() for worker in pool.workers)
    assert all(worker.lease is None for worker in pool.workers)


# The programs below inject Ctrl-C or a worker's death at one exact point of paraloop's code (a
# function of its wrapped); the loops, pools and processes are real.  A fork that waits for
# another thread's caller's chunk waits FORK_WAIT_SECONDS before it goes ahead: set high, a
# stall shows as the test's timeout rather than as a slow run.
NO_FORK_WAIT = """
from paraloop.backends.processes import caller
caller.FORK_WAIT_SECONDS = 600
"""

PIPELINE = """
# paraloop: enable
from paraloop import ParaLoop


def items(q, pulling):
    while True:
        pulling.set()
        item = q.get()
        if item is None:
            return
        yield item


def consume(q, pulling):
    total = 0
    for i in ParaLoop(items(q, pulling), num_processes=2, start_method="fork", caller_runs=True):
        total += i
    return total


def produce(q):
    squares = []
    for i in ParaLoop(range(20), num_processes=2, start_method="fork", caller_runs=False):
        squares.append(i * i)
    for square in squares:
        q.put(square)
    q.put(None)
    return sum(squares)
"""


def test_a_loop_whose_iterable_waits_for_another_threads_loop_does_not_hold_up_its_forks(
    tmp_path: Path,
) -> None:
    """A consumer thread's loop reads a queue that a producer loop in the main thread fills.  The
    consumer's caller, waiting in ``queue.get`` for its next item, counted as running a chunk,
    and every fork of the producer's loop waited for it (10 s each by default: 20 s for a loop of
    twenty squares)."""
    result = run_source(
        tmp_path,
        NO_FORK_WAIT
        + textwrap.dedent(
            """
        import json, queue, threading
        import pipeline

        q = queue.Queue()
        pulling = threading.Event()
        out = {}
        consumer = threading.Thread(target=lambda: out.update(total=pipeline.consume(q, pulling)))
        consumer.start()
        assert pulling.wait(60)
        produced = pipeline.produce(q)
        consumer.join(60)
        print(json.dumps([produced, out.get("total")]))
        """
        ),
        files={"pipeline.py": PIPELINE},
    )
    squares = sum(i * i for i in range(20))
    assert last_json(result) == [squares, squares]


def test_ctrl_c_while_the_caller_pulls_an_item_does_not_hold_up_later_forks(tmp_path: Path) -> None:
    """Ctrl-C while the caller pulls its next item from the iterable (a socket read, a queue)
    left the caller counted as running a chunk for the rest of the program: every fork of every
    other thread's loop then waited for it."""
    result = run_source(
        tmp_path,
        NO_FORK_WAIT
        + textwrap.dedent(
            """
        import json, threading
        import loops

        try:
            loops.interrupted()
        except KeyboardInterrupt:
            pass
        out = {}
        other = threading.Thread(target=lambda: out.update(total=loops.other()))
        other.start()
        other.join(60)
        print(json.dumps(out.get("total")))
        """
        ),
        files={
            "loops.py": """
                # paraloop: enable
                from paraloop import ParaLoop


                def items():
                    yield 0
                    raise KeyboardInterrupt  # as Ctrl-C does while the iterable waits


                def interrupted():
                    total = 0
                    for i in ParaLoop(items(), num_processes=2, start_method="spawn", caller_runs=True):
                        total += i
                    return total


                def other():
                    total = 0
                    for i in ParaLoop(range(1000), num_processes=2, start_method="fork", caller_runs=False):
                        total += i
                    return total
                """
        },
    )
    assert last_json(result) == sum(range(1000))


LOOPS = """
# paraloop: enable
from paraloop import ParaLoop

def after(method):
    total = 0
    for i in ParaLoop(range(100), num_processes=2, start_method=method, caller_runs=False):
        total += i
    return total
"""


def test_ctrl_c_in_the_middle_of_a_message_to_a_worker_does_not_give_the_worker_to_the_next_loop(
    tmp_path: Path,
) -> None:
    """Ctrl-C while the caller wrote a large message (the loop's job, with a few MB captured) to
    a worker that held no chunk yet: the worker went back to the pool with half a message in its
    pipe, read the next loop's messages as the rest of it, and the next loop hung."""
    result = run_source(
        tmp_path,
        """
        import json
        from paraloop.backends.processes import forked
        import big_job

        written = forked._write_all
        state = {"armed": True}


        def write_all(fd, data):
            view = memoryview(data)
            if state["armed"] and len(view) > 1_000_000:
                state["armed"] = False
                written(fd, view[: len(view) // 2])
                raise KeyboardInterrupt
            written(fd, view)


        forked._write_all = write_all
        try:
            big_job.big()
            first = "no error"
        except KeyboardInterrupt:
            first = "KeyboardInterrupt"
        print(json.dumps([first, big_job.after()]))
        """,
        files={
            "big_job.py": """
                # paraloop: enable
                from paraloop import ParaLoop

                words = [str(i) * 3 for i in range(300000)]


                def big():
                    total = 0
                    for i in ParaLoop(range(1000), num_processes=1, start_method="fork", caller_runs=False):
                        total += len(words[i])
                    return total


                def after():
                    total = 0
                    for i in ParaLoop(range(100), num_processes=1, start_method="fork", caller_runs=False):
                        total += i
                    return total
                """
        },
    )
    assert last_json(result) == ["KeyboardInterrupt", sum(range(100))]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ctrl_c_as_a_loop_starts_gives_its_idle_workers_back(tmp_path: Path, method: str) -> None:
    """Ctrl-C just after a loop took the pool's idle workers, before it ran: they stayed the
    loop's for ever, and every later loop started workers of its own beside them."""
    result = run_source(
        tmp_path,
        f"""
        import json
        from paraloop.backends.processes import dispatch, pool
        import loops

        loops.after({method!r})
        started = sorted(pool.worker_pids())
        policy = dispatch.LanePolicy


        def interrupted(*args, **kwargs):
            dispatch.LanePolicy = policy
            raise KeyboardInterrupt


        dispatch.LanePolicy = interrupted
        try:
            loops.after({method!r})
        except KeyboardInterrupt:
            pass
        total = loops.after({method!r})
        print(json.dumps([len(started), sorted(pool.worker_pids()) == started, total]))
        """,
        files={"loops.py": LOOPS},
    )
    assert last_json(result) == [2, True, sum(range(100))]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ctrl_c_just_after_a_loop_took_its_workers_gives_them_back(tmp_path: Path, method: str) -> None:
    """Ctrl-C in the moment after the loop's start returned, before its cleanup was armed (the
    interpreter checks for signals as a call returns): the idle workers it had taken stayed
    its own for ever, and every later loop started workers of its own beside them."""
    result = run_source(
        tmp_path,
        f"""
        import json
        from paraloop.backends.processes import dispatch, pool
        import loops

        loops.after({method!r})
        started = sorted(pool.worker_pids())
        start = dispatch._start


        def interrupted(*args, **kwargs):
            dispatch._start = start
            start(*args, **kwargs)  # the loop is made, its workers leased, and then Ctrl-C
            raise KeyboardInterrupt


        dispatch._start = interrupted
        try:
            loops.after({method!r})
        except KeyboardInterrupt:
            pass
        total = loops.after({method!r})
        print(json.dumps([len(started), sorted(pool.worker_pids()) == started, total]))
        """,
        files={"loops.py": LOOPS},
    )
    assert last_json(result) == [2, True, sum(range(100))]


def test_a_cleanup_run_again_after_ctrl_c_leaves_another_threads_worker_alone(tmp_path: Path) -> None:
    """A loop's cleanup, cut short by Ctrl-C, runs again.  Its first run had given an idle worker
    back to the pool, and another thread's loop had taken it and given it a chunk meanwhile: the
    second run stopped that worker and forgot the other loop's chunk."""
    result = run_source(
        tmp_path,
        """
        import json, os, threading, time
        from paraloop.backends.processes import pool
        import sharing

        sharing.warm()
        the_pool = pool.get_pool("fork")
        discard = the_pool.discard
        out = {}


        def interrupted(worker):
            # The cleanup of the loop that broke stops the worker still running its other
            # iteration; another thread's loop starts meanwhile, on the idle worker given back.
            the_pool.discard = discard
            discard(worker)
            thread = threading.Thread(target=lambda: out.update(total=sharing.other(".")))
            thread.start()
            deadline = time.monotonic() + 60
            while not os.path.exists("running"):
                assert time.monotonic() < deadline
                time.sleep(0.005)
            out["thread"] = thread
            raise KeyboardInterrupt


        the_pool.discard = interrupted
        try:
            sharing.breaking()
            first = "no error"
        except KeyboardInterrupt:
            first = "KeyboardInterrupt"
        open("resume", "w").close()
        out.pop("thread").join(60)
        print(json.dumps([first, out.get("total")]))
        """,
        files={
            "sharing.py": """
                # paraloop: enable
                import os, time
                from paraloop import ParaLoop


                def warm():
                    for i in ParaLoop(range(4), num_processes=2, start_method="fork", caller_runs=False):
                        pass


                def breaking():
                    for i in ParaLoop(range(2), num_processes=2, chunksize=1, start_method="fork", caller_runs=False):
                        if i == 0:
                            break
                        time.sleep(600)  # stopped by the loop's cleanup


                def other(folder):
                    total = 0
                    for i in ParaLoop(range(10), num_processes=1, chunksize=1, start_method="fork", caller_runs=False):
                        if i == 0:
                            # The worker holds this loop's chunk from here until resumed.
                            open(os.path.join(folder, "running"), "w").close()
                            deadline = time.monotonic() + 60
                            while not os.path.exists(os.path.join(folder, "resume")):
                                assert time.monotonic() < deadline
                                time.sleep(0.005)
                        total += i
                    return total
                """
        },
    )
    assert last_json(result) == ["KeyboardInterrupt", sum(range(10))]
