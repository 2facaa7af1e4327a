"""What the body prints into a standard stream the program replaced (paraloop/output.py).

A program that put a StringIO in ``sys.stdout`` (or ran the loop inside
``contextlib.redirect_stdout``, or under pytest's capture, or in a notebook) finds in it
what the plain loop printed, in the plain loop's order, on every backend: on threads, the
same lines in no guaranteed order (the iterations print at once into the one object).
Before, a worker process printed into its own copy of the object, or its own terminal:
the text was lost, silently (session 21's adversarial pass).

Each loop here is differential: the plain loop runs the same body into its own buffer.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from conftest import START_METHODS, last_json, run_source

Loader = Callable[..., ModuleType]


@pytest.fixture(autouse=True)
def _threads_past_the_end_done() -> Iterator[None]:
    """After each test: the iterations the threads backend left running past a break or an
    exception (to finish in the background, as documented) have ended.  They print into whatever
    sys.stdout is then: the next test's redirected stream (CI's py313 run found "item 26 of 40"
    at the head of a sequential loop's output)."""
    yield
    from paraloop.backends import threads

    for thread in list(threads._threads):
        thread.join(30)


RUN = """
    def run_NAME(items, wait, stop=None, fail=None):
        out, err = io.StringIO(), io.StringIO()
        squares = []
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                for i in ITERABLE:
                    if wait:
                        time.sleep(wait)
                    print("item", i, "of", len(items))
                    if i % 3 == 0:
                        print("three divides", i, file=sys.stderr)
                    sys.stdout.write(f"written {i}\\n")
                    if i == stop:
                        break
                    if i == fail:
                        raise ValueError(f"failed at {i}")
                    squares.append(i * i)
            except ValueError as error:
                print("caught", error)
        return out.getvalue(), err.getvalue(), squares
"""


def _source(chunksize: int | None) -> str:
    """The same loop twice: plain, and over ParaLoop."""
    return (
        "import contextlib, io, sys, time\nfrom paraloop import ParaLoop\n"
        + textwrap.dedent(RUN).replace("NAME", "plain").replace("ITERABLE", "items")
        + textwrap.dedent(RUN)
        .replace("NAME", "parallel")
        .replace("ITERABLE", f"ParaLoop(items, chunksize={chunksize!r})")
    )


def _check(module: ModuleType, backend: str, *args: object, **options: object) -> None:
    plain = module.run_plain(*args, **options)
    parallel = module.run_parallel(*args, **options)
    assert plain[0], "the plain loop printed"
    if backend == "threads":
        # The threads print into the one object at once: the same lines, in no guaranteed order.
        for got, expected in zip(parallel[:2], plain[:2]):
            assert sorted(got.splitlines()) == sorted(expected.splitlines())
        assert parallel[2] == plain[2]
    else:
        assert parallel == plain


@pytest.mark.parametrize("chunksize", [1, None])
def test_prints_into_a_replaced_stream_are_the_plain_loops(
    load_module: Loader, every_backend: str, chunksize: int | None
) -> None:
    """Many quick iterations, then iterations that wait (run in lanes, threads inside each
    worker): stdout and stderr each hold the plain loop's text in its order."""
    module = load_module(_source(chunksize))
    _check(module, every_backend, list(range(60)), 0)
    _check(module, every_backend, list(range(24)), 0.01)


def test_a_break_or_an_exception_prints_what_the_plain_loop_printed(
    load_module: Loader, every_backend: str
) -> None:
    """Iterations after a break or an exception (run by other workers meanwhile) print
    nothing into the stream: the plain loop never ran them.  On threads, which print into the
    program's object as they run, nothing the plain loop printed is missing."""
    module = load_module(_source(2))
    for ends in ({"stop": 17}, {"fail": 23}):
        if every_backend != "threads":
            _check(module, every_backend, list(range(40)), 0.002, **ends)
            continue
        # Threads print into the program's object at once, those past the end too (as to a
        # terminal on every backend): no line of the plain loop's is missing.
        plain = module.run_plain(list(range(40)), 0.002, **ends)
        parallel = module.run_parallel(list(range(40)), 0.002, **ends)
        for got, expected in zip(parallel[:2], plain[:2]):
            assert set(expected.splitlines()) <= set(got.splitlines())
        assert parallel[2] == plain[2]


@pytest.mark.parametrize("method", START_METHODS)
def test_later_loops_print_to_the_terminal_again(tmp_path, method: str) -> None:
    """A StringIO in sys.stdout for one loop, then the program's stdout back: the next loops'
    prints reach the program's stdout (the workers' copies of the StringIO swallowed them, in
    later loops too)."""
    result = run_source(
        tmp_path,
        """
        # paraloop: enable
        import io, json, sys
        from paraloop import ParaLoop
        real = sys.stdout
        sys.stdout = io.StringIO()
        for i in ParaLoop(range(6), caller_runs=False, num_processes=2, chunksize=1):
            print("captured", i)
        captured = sys.stdout.getvalue()
        sys.stdout = real
        for i in ParaLoop(range(6), caller_runs=False, num_processes=2, chunksize=1):
            print("again", i, flush=True)
        print(json.dumps(captured))
        """,
        timeout=120,
        PARALOOP_START_METHOD=method,
    )
    assert last_json(result) == "".join(f"captured {i}\n" for i in range(6))
    again = sorted(line for line in result.stdout.splitlines() if line.startswith("again"))
    assert again == sorted(f"again {i}" for i in range(6))


def test_a_worker_routes_each_threads_prints_to_its_own_chunk() -> None:
    """The router a worker's sys.stdout becomes: a chunk's thread writes into its own chunk's
    record; another thread's text goes to the chunk running alone, or, while several run (in
    lanes), with the next outcome (nothing is dropped)."""
    import threading

    from paraloop import output

    spec = {"stdout": {"encoding": "utf-8", "errors": "strict", "closed": False, "buffer": False}}
    saved = sys.stdout, sys.stderr
    try:
        output.install(spec, owned=True)
        assert isinstance(sys.stdout, output.Router)
        assert sys.stderr is sys.__stderr__  # not replaced in the caller: the worker's own
        seen: dict[str, list[tuple[str, str]]] = {}
        started = threading.Barrier(5)

        def chunk(name: str) -> None:
            with output.capturing(spec) as writes:
                started.wait()
                for number in range(200):
                    print(name, number)
            seen[name] = writes

        threads = [threading.Thread(target=chunk, args=(f"lane{k}",)) for k in range(4)]
        for thread in threads:
            thread.start()
        started.wait()
        print("loose")  # several chunks run: it waits for the next outcome
        for thread in threads:
            thread.join()
        for k in range(4):
            text = "".join(piece for _, piece in seen[f"lane{k}"])
            assert text == "".join(f"lane{k} {n}\n" for n in range(200))

        def helper() -> None:
            print("from a thread the iteration started")

        outcome = output.run_captured(spec, lambda: _run_with_a_thread(helper))
        assert "".join(piece for _, piece in outcome.output) == (
            "before\nfrom a thread the iteration started\nafter\nloose\n"
        )
        output.install({}, owned=True)
        assert sys.stdout is sys.__stdout__
    finally:
        sys.stdout, sys.stderr = saved


def _run_with_a_thread(helper: Callable[[], None]) -> object:
    import threading

    from paraloop.execute import Outcome

    print("before")
    thread = threading.Thread(target=helper)
    thread.start()
    thread.join()
    print("after")
    return Outcome(0, 0, 1)


# Session 22's second adversarial pass (on the first version of paraloop/output.py): each
# scenario runs once on the sequential backend (the plain loop itself) and once on workers.
SCENARIOS = """
    # paraloop: enable
    import io, json, logging, os, sys, threading
    from paraloop import ParaLoop

    OPTIONS = {"num_processes": 2, "chunksize": 3, "caller_runs": False}

    def ascii_stream(backend):
        # F2: a character the program's stream cannot encode fails in its iteration, with its
        # own text, and the iterations before it count (the whole chunk's text used to fail
        # in the caller: another message, and the chunk's changes lost).
        sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii", line_buffering=True)
        ran, error = [], None
        try:
            for i in ParaLoop(range(12), backend=backend, **OPTIONS):
                print("line", i, "café" if i == 7 else "")
                ran.append(i)
        except UnicodeEncodeError as caught:
            error = repr(caught)
        sys.stdout.flush()
        text = sys.stdout.buffer.getvalue().decode()
        sys.stdout = sys.__stdout__
        return [text, error, ran]

    def closed_stream(backend):
        # F2: a closed stream: ValueError from the iteration's print, at its line.
        buffer = io.StringIO()
        buffer.close()
        sys.stdout = buffer
        try:
            for i in ParaLoop(range(6), backend=backend, **OPTIONS):
                print(i)
        except ValueError as caught:
            error = str(caught)
        sys.stdout = sys.__stdout__
        return error

    def bytes_and_text(backend):
        # F1: sys.stdout.buffer in the body, a file's stream (raised AttributeError in workers).
        sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        for i in ParaLoop(range(8), backend=backend, **OPTIONS):
            sys.stdout.buffer.write(b"bytes %d\\n" % i)
            print("text", i, sys.stdout.encoding)
        sys.stdout.flush()
        text = sys.stdout.buffer.getvalue().decode()
        sys.stdout = sys.__stdout__
        return text

    def thread_in_the_body(backend):
        # F3: a thread the iteration starts and joins prints between the iteration's lines.
        sys.stdout = io.StringIO()
        for i in ParaLoop(range(9), backend=backend, **OPTIONS):
            print("before", i)
            thread = threading.Thread(target=print, args=("thread", i))
            thread.start()
            thread.join()
            print("after", i)
        text = sys.stdout.getvalue()
        sys.stdout = sys.__stdout__
        return text

    class Writes:
        # F9: a stream that sees each write (one per chunk before); F4: its write returns None.
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)

        def flush(self):
            pass

    def each_write(backend):
        sys.stdout = Writes()
        for i in ParaLoop(range(7), backend=backend, **OPTIONS):
            print("x", i, sep="-", end="|")
            sys.stdout.write(str(i * i))
        writes = sys.stdout.writes
        sys.stdout = sys.__stdout__
        return writes

    def both_streams_one_object(backend):
        # stdout and stderr redirected into one object keep their interleaving.
        buffer = io.StringIO()
        sys.stdout = sys.stderr = buffer
        for i in ParaLoop(range(9), backend=backend, **OPTIONS):
            print("out", i)
            print("err", i, file=sys.stderr)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        return buffer.getvalue()

    def comprehension(backend):
        # F5: a comprehension over ParaLoop printing into a replaced stream (lost before).
        sys.stdout = io.StringIO()
        squares = [print("c", x) or x * x for x in ParaLoop(range(8), backend=backend, **OPTIONS)]
        text = sys.stdout.getvalue()
        sys.stdout = sys.__stdout__
        return [text, squares]

    def logging_to_the_stream(backend):
        # F6: a logging handler made before the loop on the replaced stream (a notebook's
        # logging.basicConfig() writes to its sys.stderr): its records are the body's output.
        buffer = io.StringIO()
        sys.stderr = buffer
        handler = logging.StreamHandler(sys.stderr)
        log = logging.getLogger("scenario")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in ParaLoop(range(6), backend=backend, **OPTIONS):
            log.info("log %d", i)
            print("print", i, file=sys.stderr)
        log.removeHandler(handler)
        sys.stderr = sys.__stderr__
        return buffer.getvalue()

    NAMES = SELECTED
    results = {}
    for name in NAMES:
        function = globals()[name]
        results[name] = [function("sequential"), function("processes")]
    print(json.dumps(results))
"""

_SCENARIO_NAMES = [
    "ascii_stream",
    "closed_stream",
    "bytes_and_text",
    "thread_in_the_body",
    "each_write",
    "both_streams_one_object",
    "comprehension",
]


@pytest.mark.parametrize("method", START_METHODS)
def test_what_a_replaced_stream_gets_is_the_plain_loops_in_every_way(tmp_path, method: str) -> None:
    """Each scenario: the plain loop's result (the sequential backend) and the workers' agree."""
    result = run_source(
        tmp_path,
        SCENARIOS.replace("SELECTED", repr(_SCENARIO_NAMES)),
        timeout=120,
        PARALOOP_START_METHOD=method,
    )
    for name, (plain, parallel) in last_json(result).items():
        assert parallel == plain, name


def test_a_logging_handler_on_the_replaced_stream_reaches_it_from_forked_workers(tmp_path) -> None:
    """Under fork a worker inherits the program's handler (spawned ones start without the
    program's logging set up, as with any multiprocessing pool)."""
    result = run_source(
        tmp_path,
        SCENARIOS.replace("SELECTED", repr(["logging_to_the_stream"])),
        timeout=120,
        PARALOOP_START_METHOD="fork",
    )
    plain, parallel = last_json(result)["logging_to_the_stream"]
    assert parallel == plain


def test_a_write_that_returns_none_counts_as_written() -> None:
    """F4: a program's hand-written stream whose write returns None, behind the caller's router
    (another thread of the program printed while the caller ran a chunk): no TypeError."""
    from paraloop import output

    class Stream:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

    stream = Stream()
    router = output.Router("stdout", stream, {})
    assert router.write("tick\n") == 5
    assert stream.text == "tick\n"
