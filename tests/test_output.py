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
from collections.abc import Callable
from types import ModuleType

import pytest
from conftest import START_METHODS, last_json, run_source

Loader = Callable[..., ModuleType]

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
    """The router a worker's sys.stdout becomes: a chunk's thread writes into its own buffer,
    another thread's text waits for the next outcome (nothing is dropped)."""
    import threading

    from paraloop import output

    saved = sys.stdout, sys.stderr
    try:
        output.install(("stdout",), owned=True)
        assert sys.stderr is sys.__stderr__  # not replaced in the caller: the worker's own
        router = sys.stdout
        assert isinstance(router, output.Router)
        seen: dict[str, str] = {}

        def chunk(name: str) -> None:
            with output.capturing(("stdout",)) as buffers:
                for number in range(200):
                    print(name, number)
            seen[name] = buffers["stdout"].getvalue()

        threads = [threading.Thread(target=chunk, args=(f"lane{k}",)) for k in range(4)]
        for thread in threads:
            thread.start()
        print("loose")  # no chunk runs in this thread
        for thread in threads:
            thread.join()
        for k in range(4):
            assert seen[f"lane{k}"] == "".join(f"lane{k} {n}\n" for n in range(200))
        with output.capturing(("stdout",)) as buffers:
            print("next chunk")
        assert output.collected(buffers) == {"stdout": "next chunk\nloose\n"}
        output.install((), owned=True)
        assert sys.stdout is sys.__stdout__
    finally:
        sys.stdout, sys.stderr = saved
