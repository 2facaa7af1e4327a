"""Lanes: worker processes run parts of a chunk in threads when iterations mostly wait.

Every test here runs a loop whose iterations sleep, with no worker count, so
the pool switches to lanes after the first chunks; each checks that lanes
were really used (the iterations ran in ``paraloop-lane`` threads) and that
the result is still exactly the plain loop's: order, break, return,
exceptions, comprehensions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

import paraloop

# Lanes switch on and off by how iterations use the CPU: other tests beside them would
# be a loaded machine.  The lanes policy's decisions themselves are tested without
# processes or sleeps in test_lanes_policy.py; the two end-to-end tests of it here check
# that real measurements reach it (lanes switched on and off, and started by the early word).
pytestmark = pytest.mark.alone

Loader = Callable[..., ModuleType]

N = 240


@pytest.fixture
def waiting(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.delenv("PARALOOP_WORKERS", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)
    yield load_module(f"""
        import threading, time
        from paraloop import ParaLoop

        def lane():
            return threading.current_thread().name.startswith("paraloop-lane")

        def tracked():
            total = 0
            order = []
            squares = {{}}
            lanes = set()
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                total += i
                order.append(i)
                squares[i] = i * i
                lanes.add(lane())
                last = i
            return total, order, squares, lanes, last

        def broken(at):
            seen = []
            lanes = set()
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                lanes.add(lane())
                if i == at:
                    break
                seen.append(i)
            else:
                seen.append("else")
            return seen, lanes, i

        def returned(at):
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                if i >= at:
                    return i, lane()
            return None

        seen = []
        def raising(at):
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                if i == at:
                    raise ValueError(f"bad {{i}}")
                seen.append(i)

        def comprehension():
            return [(i, lane()) for i in ParaLoop(range({N})) if time.sleep(0.005) is None]

        def unpicklable():
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                if lane():
                    handle = (n for n in range(3))  # a generator: no serializer carries it
            return handle
    """)


def test_tracked_state_in_order(waiting: ModuleType) -> None:
    total, order, squares, lanes, last = waiting.tracked()
    assert True in lanes
    assert total == sum(range(N))
    assert order == list(range(N))
    assert list(squares.items()) == [(i, i * i) for i in range(N)]
    assert last == N - 1


def test_break_keeps_exactly_the_prefix(waiting: ModuleType) -> None:
    seen, lanes, i = waiting.broken(200)
    assert True in lanes
    assert seen == list(range(200))
    assert i == 200


def test_return_gives_the_earliest_returning_iteration(waiting: ModuleType) -> None:
    # Iterations after ``at`` return too, in parallel; the earliest one's value wins.
    results = [waiting.returned(at) for at in (120, 170, 220)]
    assert [i for i, _ in results] == [120, 170, 220]
    # A returning iteration may fall in a probe chunk (run alone, see paraloop.lanes.Probe);
    # a loop probes a few iterations once, so not all three.
    assert any(in_lane for _, in_lane in results)


def test_exception_after_the_prefix(waiting: ModuleType) -> None:
    with pytest.raises(ValueError, match="bad 210") as caught:
        waiting.raising(210)
    assert waiting.seen == list(range(210))
    assert any("iteration 210 (item 210)" in note for note in getattr(caught.value, "__notes__", []))
    assert isinstance(caught.value.__cause__, paraloop.errors.RemoteTraceback)


def test_comprehension_in_order(waiting: ModuleType) -> None:
    result = waiting.comprehension()
    assert [i for i, _ in result] == list(range(N))
    assert any(in_lane for _, in_lane in result)


def test_a_value_that_cannot_travel_back_is_named(waiting: ModuleType) -> None:
    with pytest.raises(paraloop.ParaLoopError, match=r"'handle' is read after the loop"):
        waiting.unpicklable()


@pytest.fixture
def busy(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("PARALOOP_WORKERS", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)
    return load_module("""
        import threading, time
        from paraloop import ParaLoop

        def compute(seconds=0.004):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass

        def started_waiting(n=400, slow=4, then=0.0):
            total = 0
            lanes = []
            for i in ParaLoop(range(n)):
                if i < slow:
                    time.sleep(0.03)  # a slow start: a cold cache, a first connection
                    compute(then)
                else:
                    compute()
                total += i
                lanes.append(threading.current_thread().name.startswith("paraloop-lane"))
            return total, lanes

        def always_busy():
            lanes = []
            for i in ParaLoop(range(60)):
                compute()
                lanes.append(threading.current_thread().name.startswith("paraloop-lane"))
            return lanes
    """)


def test_a_loop_that_only_started_waiting_goes_back_to_one_lane(busy: ModuleType) -> None:
    """First iterations that wait switch lanes on; iterations that then keep the CPU busy switch them off."""
    total, lanes = busy.started_waiting()
    assert total == sum(range(400))
    assert any(lanes), "the waiting start should have switched lanes on"
    assert not any(lanes[-100:]), "busy iterations should run without lanes"


def test_a_worker_killed_while_holding_chunks_in_lanes_names_their_iterations(
    waiting: ModuleType, load_module: Loader
) -> None:
    """No silent loss with lanes: a worker may hold two chunks; the error names what it held."""
    module = load_module(f"""
        import os, signal, time
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range({N})):
                time.sleep(0.005)
                if i == 200:
                    os.kill(os.getpid(), signal.SIGKILL)
    """)
    with pytest.raises(paraloop.WorkerCrashedError, match="SIGKILL") as caught:
        module.run()
    spans = [
        (int(first), int(last or first))
        for first, last in re.findall(r"iterations? (\d+)(?: to (\d+))?", str(caught.value))
    ]
    assert any(first <= 200 <= last for first, last in spans), str(caught.value)
    # The pool runs the next loop.
    total, order, _, lanes, _ = waiting.tracked()
    assert total == sum(range(N)) and order == list(range(N)) and True in lanes


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_slow_waiting_loop_starts_lanes_while_its_first_iterations_wait(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A worker's first chunk is watched: lanes start before that chunk's iteration ends.

    Without the early word, lanes could only start once a chunk's outcome
    reached the caller, that is after a whole slow iteration.
    """
    monkeypatch.delenv("PARALOOP_WORKERS", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)
    module = load_module(f"""
        import threading, time
        from paraloop import ParaLoop
        def run():
            rows = []
            for i in ParaLoop(range(40), start_method={method!r}):
                began = time.time()
                time.sleep(0.4)
                rows.append((i, began, time.time(), threading.current_thread().name.startswith("paraloop-lane")))
            return rows
    """)
    rows = module.run()
    assert [row[0] for row in rows] == list(range(40))
    first_ended = rows[0][2]
    in_lanes = [began for _, began, _, lane in rows if lane]
    assert in_lanes, "a loop that only waits should run in lanes"
    assert min(in_lanes) < first_ended, "lanes should start while the first iteration still waits"


def test_a_break_in_a_watched_first_iteration_keeps_the_plain_result(
    waiting: ModuleType, load_module: Loader
) -> None:
    """The early word sent a chunk to lanes; a break in the watched iteration still ends the loop there."""
    module = load_module("""
        import time
        from paraloop import ParaLoop
        def run():
            seen = []
            for i in ParaLoop(range(100)):
                time.sleep(0.06)
                if i == 0:
                    break
                seen.append(i)
            return seen, i
    """)
    assert module.run() == ([], 0)
    total, order, _, lanes, _ = waiting.tracked()
    assert total == sum(range(N)) and order == list(range(N)) and True in lanes


def test_a_worker_that_dies_while_its_first_chunk_is_watched_names_both_chunks(
    waiting: ModuleType, load_module: Loader
) -> None:
    """No silent loss with the early word: the worker holds its watched chunk and the lanes chunk."""
    module = load_module("""
        import os, time
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(40)):
                if i == 5:
                    time.sleep(0.05)
                    os._exit(3)
                time.sleep(0.5)
    """)
    began = time.monotonic()
    with pytest.raises(paraloop.WorkerCrashedError, match="exited with code 3") as caught:
        module.run()
    assert time.monotonic() - began < 10
    spans = [
        (int(first), int(last or first))
        for first, last in re.findall(r"iterations? (\d+)(?: to (\d+))?", str(caught.value))
    ]
    # The lanes chunk sent in answer to the early word holds iteration 5; the watched
    # chunk (iteration 0 or 1, still waiting) was held too.
    assert any(first <= 5 <= last for first, last in spans), str(caught.value)
    assert any(last < 2 for _, last in spans), str(caught.value)
    total, order, _, lanes, _ = waiting.tracked()
    assert total == sum(range(N)) and order == list(range(N)) and True in lanes
