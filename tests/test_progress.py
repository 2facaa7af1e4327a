"""progress= with tqdm's keywords, and a bar that is closed however the loop ends."""

from __future__ import annotations

import io
import signal
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import interrupt_like_a_terminal, use_backend

import paraloop

tqdm = pytest.importorskip("tqdm")

Loader = Callable[..., ModuleType]

LOOPS = """
    import io
    import paraloop
    from paraloop import ParaLoop

    def total(bar, stop=None, fail=None, **options):
        result = 0
        for i in ParaLoop(range(60), chunksize=4, progress={"desc": "files", "file": bar, **options}):
            if i == fail:
                raise LookupError(f"no file {i}")
            result += i
            if i == stop:
                break
        return result

    def squares(bar):
        return [i * i for i in ParaLoop(range(30), progress={"desc": "squares", "file": bar})]

    class Files:
        def __len__(self):
            return 12

        def __iter__(self):
            return iter(range(12))

    def doubled(bar):
        return list(i * 2 for i in ParaLoop(Files(), progress={"desc": "doubled", "file": bar}))

    def first_squares(bar, count):
        squares = (i * i for i in ParaLoop(range(10**9), chunksize=8, progress={"desc": "endless", "file": bar}))
        return [next(squares) for _ in range(count)]
"""


@pytest.fixture(params=["fork", "spawn", "threads", "sequential"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bar lives in the caller; the outcomes it counts come from every kind of worker."""
    return use_backend(request.param, request, monkeypatch)


@pytest.fixture
def bars_left() -> Iterator[Callable[[], list[str]]]:
    """The descriptions of the tqdm bars still open (tqdm keeps its open bars in a set)."""
    before = set(tqdm.tqdm._instances)
    yield lambda: sorted(bar.desc for bar in set(tqdm.tqdm._instances) - before)


def final_line(text: str) -> str:
    """What a terminal shows last: the bar's last redraw."""
    return text.rstrip("\n").split("\r")[-1]


def test_tqdm_keywords_shape_the_bar(
    load_module: Loader, backend: str, bars_left: Callable[[], list[str]]
) -> None:
    """progress={"desc": ..., "file": ...}: the bar carries the description and reaches the total."""
    module = load_module(LOOPS)
    bar = io.StringIO()
    assert module.total(bar, unit="file") == sum(range(60))
    assert final_line(bar.getvalue()).startswith("files: 100%|")
    assert "60/60" in final_line(bar.getvalue())
    assert "file/s" in bar.getvalue()
    assert bar.getvalue().endswith("\n")  # closed: tqdm ends the bar's line
    squares = io.StringIO()
    assert module.squares(squares) == [i * i for i in range(30)]
    assert final_line(squares.getvalue()).startswith("squares: 100%|")
    assert bars_left() == []


def test_a_generator_expression_over_a_class_of_the_programs_own_keeps_the_total(
    load_module: Loader, backend: str, bars_left: Callable[[], list[str]]
) -> None:
    """A generator expression calls its iterable's own ``__iter__`` where it is made, as plain
    Python does, and goes on over the iterator; the bar's total is still the iterable's len()."""
    module = load_module(LOOPS)
    bar = io.StringIO()
    assert module.doubled(bar) == [i * 2 for i in range(12)]
    assert final_line(bar.getvalue()).startswith("doubled: 100%|")
    assert "12/12" in final_line(bar.getvalue())
    assert bars_left() == []


def test_the_bar_is_closed_after_break(
    load_module: Loader, backend: str, bars_left: Callable[[], list[str]]
) -> None:
    """A loop left by break closes its bar, which shows how far it got."""
    module = load_module(LOOPS)
    bar = io.StringIO()
    assert module.total(bar, stop=10) == sum(range(11))
    assert bars_left() == []
    assert bar.getvalue().endswith("\n")
    assert final_line(bar.getvalue()).startswith("files: ")
    assert "/60" in final_line(bar.getvalue()) and "60/60" not in final_line(bar.getvalue())


def test_the_bar_is_closed_after_an_error(
    load_module: Loader, backend: str, bars_left: Callable[[], list[str]]
) -> None:
    """An exception in an iteration closes the bar before it reaches the caller."""
    module = load_module(LOOPS)
    bar = io.StringIO()
    with pytest.raises(LookupError, match="no file 17"):
        module.total(bar, fail=17)
    assert bars_left() == []
    assert bar.getvalue().endswith("\n")


def test_a_generator_expression_left_half_read_closes_its_bar(
    load_module: Loader, backend: str, bars_left: Callable[[], list[str]]
) -> None:
    """The bar of a generator expression over an endless ParaLoop closes once the generator is dropped."""
    module = load_module(LOOPS)
    bar = io.StringIO()
    assert module.first_squares(bar, 5) == [0, 1, 4, 9, 16]
    assert bars_left() == []
    assert bar.getvalue().endswith("\n")


def test_a_keyword_tqdm_does_not_take_is_named(
    load_module: Loader, bars_left: Callable[[], list[str]]
) -> None:
    """A misspelt keyword is a ParaLoopError naming the loop's line and what tqdm refused."""
    module = load_module(LOOPS)
    with pytest.raises(
        paraloop.ParaLoopError, match=r"line 9: tqdm refused progress=.*'dsec'.*e\.g\. progress="
    ):
        module.total(io.StringIO(), dsec="typo")
    assert bars_left() == []


def test_a_block_can_give_the_bar(load_module: Loader, bars_left: Callable[[], list[str]]) -> None:
    """progress= from a paraloop.config block, for every loop inside it."""
    module = load_module("""
        from paraloop import ParaLoop
        def run():
            return sum(i for i in ParaLoop(range(20), backend="threads"))
    """)
    bar = io.StringIO()
    with paraloop.config(progress={"desc": "block", "file": bar}):
        assert module.run() == sum(range(20))
    assert final_line(bar.getvalue()).startswith("block: 100%|")
    assert bars_left() == []


@pytest.mark.parametrize("method", ["fork", "threads"])
def test_ctrl_c_closes_the_bar(tmp_path: Path, method: str) -> None:
    """SIGINT to a running script: KeyboardInterrupt reaches the caller with the bar closed."""
    backend = "threads" if method == "threads" else "processes"
    script = tmp_path / "busy.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, sys, time
        import tqdm
        from paraloop import ParaLoop
        def spin(i):
            if i == 0:
                # Not print(): a thread the signal finds inside print's flush holds stdout's
                # lock, and Python aborts at exit (CPython's limit with daemon threads).
                os.write(1, b"running\\n")
            end = time.monotonic() + 600
            while time.monotonic() < end:
                time.sleep(0.01)
        bar = open({str(tmp_path / "bar.txt")!r}, "w")
        try:
            for i in ParaLoop(range(8), num_processes=2, chunksize=1, backend={backend!r},
                              progress={{"desc": "busy", "file": bar}}):
                spin(i)
        except KeyboardInterrupt:
            print("interrupted, open bars:", len(tqdm.tqdm._instances), file=sys.stderr)
            raise
    """)
    )
    env = {"PARALOOP_START_METHOD": "fork"} if method == "fork" else {}
    _, status, stderr, _ = interrupt_like_a_terminal(script, env=env)
    assert status in (-signal.SIGINT, 130, 1), stderr
    assert "interrupted, open bars: 0" in stderr
    written = (tmp_path / "bar.txt").read_bytes().decode()  # as written: "\r" between redraws
    assert final_line(written).startswith("busy:") and written.endswith("\n")


def test_the_bar_is_closed_when_the_backend_refuses_the_loop(
    load_module: Loader, bars_left: Callable[[], list[str]]
) -> None:
    """A loop its backend refuses at the start (native_threads= on Dask) leaves no bar open."""
    module = load_module("""
        from paraloop import ParaLoop
        def run(bar):
            for i in ParaLoop(range(5), backend="dask", native_threads=2, progress={"desc": "refused", "file": bar}):
                pass
    """)
    bar = io.StringIO()
    with pytest.raises(paraloop.ParaLoopError, match="native_threads= is not available with backend='dask'"):
        module.run(bar)
    assert bars_left() == []
    assert bar.getvalue().endswith("\n")


def test_a_range_longer_than_maxsize_gets_a_bar_without_a_total(load_module: Loader, backend: str) -> None:
    """len() of such a range raises OverflowError; the plain loop runs it all the same."""
    module = load_module(
        """
        from paraloop import ParaLoop
        seen = []
        for i in ParaLoop(range(10**20), progress=True):
            seen.append(i)
            if i == 4:
                break
        """
    )
    assert module.seen == [0, 1, 2, 3, 4]
