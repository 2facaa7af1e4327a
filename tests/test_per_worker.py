"""paraloop.per_worker: an object made once per worker, reused across iterations and loops.

Each factory here writes a line to a log file when it makes an object (a token of its
own, stored in the object) and when the object is closed, so the tests count what
was made where, and what was closed when.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import paraloop
from paraloop import resources
from paraloop.backends.processes.pool import shutdown_pools

Loader = Callable[..., ModuleType]

# Two loops over the same per-worker objects: a sqlite3 connection, and an object that
# cannot be pickled (it holds a lock).  ``where[i]``: the process, thread and tokens of
# the objects iteration i used.
TWO_LOOPS = """
    import os, sqlite3, threading, uuid
    import paraloop
    from paraloop import ParaLoop

    LOG = {log!r}

    def _note(line):
        with open(LOG, "a") as handle:
            handle.write(line + "\\n")

    def connect(path):
        conn = sqlite3.connect(path)
        token = "db-" + uuid.uuid4().hex
        conn.execute("create table made (token text)")
        conn.execute("insert into made values (?)", (token,))
        _note(f"made {{token}} {{os.getpid()}} {{threading.get_ident()}}")
        return conn

    def close_connection(conn):
        token = conn.execute("select token from made").fetchone()[0]
        conn.close()
        _note(f"closed {{token}} {{os.getpid()}}")

    class Counter:
        def __init__(self):
            self.lock = threading.Lock()
            self.token = "counter-" + uuid.uuid4().hex
            self.calls = 0
            _note(f"made {{self.token}} {{os.getpid()}} {{threading.get_ident()}}")

        def use(self, i):
            with self.lock:
                self.calls += 1
            return self.token, 2 * i

        def close(self):
            _note(f"closed {{self.token}} {{os.getpid()}}")

    conn = paraloop.per_worker(connect, ":memory:", close=close_connection)
    counter = paraloop.per_worker(Counter)

    def first():
        squares = []
        where = {{}}
        for i in ParaLoop(range(40), num_processes=2):
            squares.append(conn.execute("select ? * ?", (i, i)).fetchone()[0])
            token, double = counter.use(i)
            db = conn.execute("select token from made").fetchone()[0]
            where[i] = (os.getpid(), threading.get_ident(), db, token, double)
        return squares, where

    def second():
        cubes = []
        where = {{}}
        for i in ParaLoop(range(40), num_processes=2):
            cubes.append(conn.execute("select ? * ? * ?", (i, i, i)).fetchone()[0])
            token, double = counter.use(i)
            db = conn.execute("select token from made").fetchone()[0]
            where[i] = (os.getpid(), threading.get_ident(), db, token, double)
        return cubes, where
"""


def _log(path: Path) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """What the log says: tokens made (with process and thread), tokens closed (with process)."""
    made: dict[str, tuple[int, int]] = {}
    closed: dict[str, int] = {}
    if not path.exists():
        return made, closed
    for line in path.read_text().splitlines():
        kind, token, pid, *thread = line.split()
        if kind == "made":
            assert token not in made
            made[token] = (int(pid), int(thread[0]))
        else:
            assert token not in closed, f"{token} closed twice"
            closed[token] = int(pid)
    return made, closed


def _by_worker(
    where: dict[int, tuple[int, int, str, str, int]],
) -> dict[tuple[int, int], set[tuple[str, str]]]:
    """The objects each worker (process and thread) used."""
    found: dict[tuple[int, int], set[tuple[str, str]]] = defaultdict(set)
    for pid, thread, db, token, _ in where.values():
        found[pid, thread].add((db, token))
    return found


def test_objects_made_once_per_worker_across_two_loops(
    every_backend: str, load_module: Loader, tmp_path: Path
) -> None:
    """A sqlite3 connection and an unpicklable object: each worker makes one of each on
    first use and keeps it for its later iterations and the next loop; the loops give the
    plain loop's results; the objects are closed when their workers quit."""
    log = tmp_path / "objects.log"
    module = load_module(TWO_LOOPS.format(log=str(log)))
    squares, first = module.first()
    cubes, second = module.second()

    assert squares == [i * i for i in range(40)]
    assert cubes == [i**3 for i in range(40)]
    assert [entry[4] for entry in first.values()] == [2 * i for i in range(40)]
    assert sorted(first) == sorted(second) == list(range(40))

    made, closed = _log(log)
    per_loop = [_by_worker(first), _by_worker(second)]
    for workers in per_loop:
        # Within a loop, each worker used one connection and one counter.
        assert all(len(objects) == 1 for objects in workers.values()), workers
    used = {
        token for workers in per_loop for objects in workers.values() for pair in objects for token in pair
    }
    # Every object made was used, and made where it was used: never in a process that ran
    # no iteration (the caller, for processes and Dask).
    assert set(made) == used
    for workers in per_loop:
        for (pid, thread), objects in workers.items():
            for token in next(iter(objects)):
                assert made[token] == (pid, thread)

    if every_backend == "threads":
        # The threads live for one loop: each loop's threads made their own, and closed
        # them as the loop ended.
        first_tokens, second_tokens = ({pair for objects in w.values() for pair in objects} for w in per_loop)
        assert not first_tokens & second_tokens
        assert set(closed) == set(made)
        return
    # Made once per worker: a worker of both loops used the same objects in the second.
    workers = _by_worker({**{i: v for i, v in first.items()}, **{100 + i: v for i, v in second.items()}})
    assert all(len(objects) == 1 for objects in workers.values()), workers
    assert len(made) == 2 * len(workers)
    if every_backend == "sequential":
        assert set(workers) == {(os.getpid(), threading.get_ident())}
        assert closed == {}
        module.conn.close()
        module.counter.close()
        assert set(_log(log)[1]) == set(made)
        return
    assert os.getpid() not in {pid for pid, _ in workers}
    if every_backend == "dask":
        return  # closed when the Dask workers exit (the cluster outlives this test)
    assert closed == {}
    shutdown_pools()
    made, closed = _log(log)
    assert set(closed) == set(made)
    assert all(closed[token] == made[token][0] for token in made)


def test_a_function_the_body_calls_reaches_the_object_through_the_handle(
    load_module: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module-level function that uses the handle as a global gets the worker's own object."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    module = load_module("""
        import os, sqlite3
        import paraloop
        from paraloop import ParaLoop

        conn = paraloop.per_worker(sqlite3.connect, ":memory:")

        def square(i):
            return conn.execute("select ? * ?", (i, i)).fetchone()[0]

        squares = []
        same = {}
        for i in ParaLoop(range(30), num_processes=2):
            squares.append(square(i))
            same[i] = conn.execute("select 1").fetchone()[0]
    """)
    assert module.squares == [i * i for i in range(30)]
    assert module.same == dict.fromkeys(range(30), 1)


def test_worker_iterations_that_wait_stay_in_the_main_thread(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop (and a comprehension) that uses a per-worker object runs no lanes: one object
    per worker process serves its iterations, one at a time (a sqlite3 connection is not
    shared by threads)."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    monkeypatch.delenv("PARALOOP_WORKERS", raising=False)
    module = load_module("""
        import sqlite3, threading, time
        import paraloop
        from paraloop import ParaLoop

        conn = paraloop.per_worker(sqlite3.connect, ":memory:")
        threads = set()
        values = []
        for i in ParaLoop(range(40)):
            time.sleep(0.01)
            values.append(conn.execute("select ?", (i,)).fetchone()[0])
            threads.add(threading.current_thread().name)

        def wait(i):
            time.sleep(0.01)
            return threading.current_thread().name

        listed = [(conn.execute("select ?", (i,)).fetchone()[0], wait(i)) for i in ParaLoop(range(40))]
    """)
    assert module.values == list(range(40))
    assert module.threads == {"MainThread"}
    assert module.listed == [(i, "MainThread") for i in range(40)]


@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_a_factory_that_fails_raises_its_error_naming_the_name_and_the_loop(
    backend: str, load_module: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The factory's own exception, with its traceback, a note naming the handle's name and
    a note naming the loop's line."""
    if backend == "fork":
        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    else:
        monkeypatch.setenv("PARALOOP_BACKEND", backend)
    missing = tmp_path / "no such directory" / "data.db"
    module = load_module(f"""
        import sqlite3
        import paraloop
        from paraloop import ParaLoop

        database = paraloop.per_worker(sqlite3.connect, {str(missing)!r})

        def run():
            rows = []
            for i in ParaLoop(range(10), num_processes=2):
                rows.append(database.execute("select ?", (i,)).fetchone()[0])
            return rows
    """)
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file") as raised:
        module.run()
    notes = getattr(raised.value, "__notes__", [])
    assert any(
        note.startswith(
            f"paraloop: making 'database' = paraloop.per_worker(sqlite3.connect, {str(missing)!r}) failed"
        )
        for note in notes
    ), notes
    lines = Path(module.__file__).read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if "in ParaLoop(" in text)
    assert notes[-1].endswith(f"of the loop at {module.__file__}, line {line}")
    if backend == "fork":
        assert "made = factory(*args, **kwargs)" in str(raised.value.__cause__)


def test_the_caller_makes_its_own_on_first_use_and_close_makes_a_new_one_later() -> None:
    """Outside loops, the handle stands for this thread's object; close() closes it."""
    made: list[object] = []

    class Thing:
        def __init__(self, value: int) -> None:
            self.value = value
            self.closed = False
            made.append(self)

        def close(self) -> None:
            self.closed = True

    handle = paraloop.per_worker(Thing, 7)
    assert made == []  # nothing made until it is used
    assert handle.value == 7
    assert handle.value == 7
    assert len(made) == 1
    handle.close()
    assert made[0].closed  # type: ignore[attr-defined]
    assert handle.value == 7
    assert len(made) == 2
    handle.close()


def test_the_handle_pickles_without_the_object_and_keeps_its_identity() -> None:
    """What travels is the factory and its arguments, and the key that finds the worker's object."""
    handle = paraloop.per_worker(sqlite3.connect, ":memory:")
    handle.execute("select 1")  # this thread's connection, which does not pickle
    copy = pickle.loads(pickle.dumps(handle))
    assert resources.instance(copy) is resources.instance(handle)
    assert copy.execute("select 2").fetchone() == (2,)
    handle.close()


def test_per_worker_refuses_what_it_cannot_use() -> None:
    with pytest.raises(
        paraloop.ParaLoopError, match=r"per_worker\(42\): give a function that makes the object"
    ):
        paraloop.per_worker(42)  # type: ignore[call-overload]
    with pytest.raises(
        paraloop.ParaLoopError, match=r"close='yes'\): give a function that closes the object"
    ):
        paraloop.per_worker(sqlite3.connect, ":memory:", close="yes")  # type: ignore[arg-type]
    with pytest.raises(paraloop.ParaLoopError, match=r"thread_safe=1\): give True or False"):
        paraloop.per_worker(sqlite3.connect, ":memory:", thread_safe=1)  # type: ignore[arg-type]
    handle = paraloop.per_worker(sqlite3.connect, ":memory:")
    with pytest.raises(paraloop.ParaLoopError, match="set it up in the factory instead"):
        handle.isolation_level = None


def test_thread_safe_objects_are_shared_by_the_threads_of_a_process(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """thread_safe=True: one object per process, for every thread that runs iterations."""
    monkeypatch.setenv("PARALOOP_BACKEND", "threads")
    module = load_module("""
        import threading
        import paraloop
        from paraloop import ParaLoop

        made = []

        class Model:
            def __init__(self):
                made.append(self)

            def predict(self, x):
                return 3 * x

        model = paraloop.per_worker(Model, thread_safe=True)
        results = []
        models = {}
        for i in ParaLoop(range(40), num_processes=4, chunksize=1):
            results.append(model.predict(i))
            models[i] = id(model)
    """)
    assert module.results == [3 * i for i in range(40)]
    assert len(module.made) == 1
    assert set(module.models.values()) == {id(module.made[0])}


def test_threads_close_their_objects_but_the_one_the_body_handed_back(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the threads backend a body that hands its thread's object back (a result, a name the
    caller reads) gives the caller that very object, open, as the plain loop would; the
    thread's other objects are closed as the thread finishes the loop, as before."""
    monkeypatch.setenv("PARALOOP_BACKEND", "threads")
    module = load_module("""
        import paraloop
        from paraloop import ParaLoop

        made = []

        class Resource:
            def __init__(self, kind):
                self.kind, self.closed = kind, False
                made.append(self)

            def close(self):
                self.closed = True

        kept = paraloop.per_worker(Resource, "kept")
        used = paraloop.per_worker(Resource, "used")

        def run():
            results = {}
            for i in ParaLoop(range(8), num_processes=2, chunksize=2):
                results[i] = (kept, used.kind)
                last = kept
            return results, last
    """)
    results, last = module.run()
    shown = {i: (each.kind, kind) for i, (each, kind) in results.items()}
    assert shown == {i: ("kept", "used") for i in range(8)}
    assert not any(each.closed for each, _ in results.values())
    assert not last.closed
    assert {each.kind for each in module.made if each.closed} == {"used"}
    assert all(each.closed for each in module.made if each.kind == "used")
