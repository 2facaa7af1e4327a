"""Adversarial probes of lanes (threads inside a worker process), written against the change that
watched the process-wide state once around all the parts of a chunk and lets a worker hold a
second chunk from the start.

Every loop here mostly waits, so the processes backend runs it in lanes (by default or with
``lanes=True``).  Each test asserts what the plain loop gives, or a refusal whose advice
(``lanes=False``) gives it.  The adversary's first finding (an environment variable set, read
and removed within an iteration read other lanes' values, with no error) came from watching only
around the whole chunk: each part watches the state around itself again, and only the random
generators are read around the whole chunk (execute.watch_lanes).
"""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import run_script
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = """\
import contextlib, io, os, random, sys, time
from paraloop import ParaLoop
"""


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Default settings: no backend, worker count or lanes setting from the environment."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_LANES", "PARALOOP_ADV_X"):
        monkeypatch.delenv(name, raising=False)
    yield
    os.environ.pop("PARALOOP_ADV_X", None)
    os.environ.pop("PARALOOP_ADV_LATE", None)


def _plain(body: str) -> dict[str, Any]:
    return run_plain(PRELUDE + textwrap.dedent(body))


def _load(load_module: Loader, body: str) -> ModuleType:
    return load_module(PRELUDE + textwrap.dedent(body))


# --- A change made and undone inside one iteration (in a function the body calls) -----------

ENV_SET_AND_REMOVED = """
    def work(i):
        os.environ["PARALOOP_ADV_X"] = str(i)
        time.sleep(0.02)
        value = os.environ.get("PARALOOP_ADV_X")
        os.environ.pop("PARALOOP_ADV_X", None)
        return value
    out = []
    for i in ParaLoop(range(64)):
        out.append(work(i))
"""


def _refused_or_plain(load_module: Loader, body: str, what: str) -> None:
    """The loop gives the plain loop's values, or is refused naming ``what`` and lanes=False:
    never other values, nor an exception the plain loop does not raise."""
    expected = _plain(body)["out"]
    try:
        module = _load(load_module, body)
    except paraloop.ParaLoopError as refused:
        assert f"changed {what} while others ran beside it" in str(refused), refused
        assert "lanes=False" in str(refused), refused
    else:
        assert module.out == expected


def test_env_set_read_and_removed_in_an_iteration_is_refused_not_mixed(load_module: Loader) -> None:
    """An iteration sets an environment variable, reads it back and removes it (in a function
    the body calls): lanes read each other's values.  Each part watches the environment around
    itself, so the variables of the parts beside it show (found by the adversary: when the
    environment was watched only around a whole chunk, 63 of 64 values were other iterations'
    with no error, for the state was the same before and after the chunk)."""
    _refused_or_plain(load_module, ENV_SET_AND_REMOVED, "the environment")


def test_env_set_read_and_deleted_in_an_iteration_is_refused_not_a_key_error(load_module: Loader) -> None:
    """The same with ``os.environ[...]`` and ``del``: another lane removed the variable first, and
    the KeyError the plain loop never raises must not escape as the loop's error."""
    body = ENV_SET_AND_REMOVED.replace(
        'value = os.environ.get("PARALOOP_ADV_X")', 'value = os.environ["PARALOOP_ADV_X"]'
    ).replace('os.environ.pop("PARALOOP_ADV_X", None)', 'del os.environ["PARALOOP_ADV_X"]')
    _refused_or_plain(load_module, body, "the environment")


def test_env_set_and_removed_without_lanes_gives_the_plain_values(load_module: Loader) -> None:
    """The same loop with lanes=False (what the lanes refusals advise) is right."""
    module = _load(load_module, ENV_SET_AND_REMOVED.replace("range(64)", "range(64), lanes=False"))
    assert module.out == [str(i) for i in range(64)]


def test_redirect_stdout_in_a_called_function_is_refused_or_right_and_lanes_false_works(
    load_module: Loader,
) -> None:
    """redirect_stdout in a function the body calls (the loop-start check cannot see it): the
    lanes' redirects interleave, and a part sees sys.stdout changed around it (refused); never
    other printouts than the plain loop's.  The advice (lanes=False) gives the plain result."""
    body = """
        def capture(i):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                print("item", i)
                time.sleep(0.02)
            return buffer.getvalue()
        out = []
        for i in ParaLoop(range(64)):
            out.append(capture(i))
    """
    expected = [f"item {i}\n" for i in range(64)]
    assert _plain(body)["out"] == expected
    _refused_or_plain(load_module, body, "sys.stdout")
    module = _load(load_module, body.replace("range(64)", "range(64), lanes=False"))
    assert module.out == expected


# --- An iteration that ends the loop, while later iterations in the same chunk change state ---
# Run as a program with the product's defaults (the caller takes part), where this reproduces
# every time.

ENDS_EARLY = """
    def late(i):
        if i > 5:
            os.environ["PARALOOP_ADV_LATE"] = str(i)
    out = []
    try:
        for i in ParaLoop(range(64), lanes=True):
            LOOP_BODY
    except Exception as error:
        print("raised", type(error).__name__, str(error))
    print("out", out)
"""

RAISES_AFTER_WAITING = """
            time.sleep(0.02)
            if i == 5:
                raise ValueError("five")
            late(i)
            out.append(i)
"""

BREAKS_AFTER_LATER_ONES_CHANGED = """
            late(i)
            time.sleep(0.05 if i == 5 else 0.02)
            if i == 5:
                break
            out.append(i)
"""


def _program(tmp_path: Path, loop_body: str, lanes: str = "True") -> tuple[str, str]:
    """The loop run plainly (in this process) and by paraloop (as a program): their printouts."""
    source = (
        textwrap.dedent(ENDS_EARLY)
        .replace("        LOOP_BODY\n", textwrap.indent(textwrap.dedent(loop_body), " " * 8))
        .replace("lanes=True", f"lanes={lanes}")
    )
    plain = io.StringIO()
    with contextlib.redirect_stdout(plain):
        run_plain(PRELUDE + source)
    assert "PARALOOP_ADV_LATE" not in os.environ
    script = tmp_path / "ends_early.py"
    script.write_text("# paraloop: enable\n" + PRELUDE + source)
    done = run_script(script, timeout=60, env={"PARALOOP_CALLER_RUNS": "1"})
    assert done.returncode == 0, done.stderr
    return plain.getvalue(), done.stdout


def _ended_early(tmp_path: Path, loop_body: str, plain_output: str) -> None:
    """Lanes run iterations ahead of one that raises or breaks: a process-wide change those
    later iterations make (which the plain loop never reaches) may refuse the loop, naming
    lanes=False, whose run gives the plain loop's output.  Nothing else: not another output."""
    plain, parallel = _program(tmp_path, loop_body)
    assert plain == plain_output
    if parallel != plain:
        assert parallel.startswith("raised ParaLoopError"), parallel
        assert "changed the environment while others ran beside it" in parallel, parallel
        assert "lanes=False" in parallel, parallel
        _, alone = _program(tmp_path, loop_body, lanes="False")
        assert alone == plain


def test_an_exception_gives_its_own_error_or_a_refusal_whose_advice_works(tmp_path: Path) -> None:
    """Iteration 5 raises; iterations after it change os.environ in the chunk's other lanes.
    The adversary saw the ValueError replaced by the refusal every time while the whole chunk
    was watched at once, and now and then when each part is watched (its window sees the
    lanes beside it): a refusal, whose advice (lanes=False) gives the plain loop's error."""
    _ended_early(tmp_path, RAISES_AFTER_WAITING, "raised ValueError five\nout [0, 1, 2, 3, 4]\n")


def test_a_break_gives_its_own_result_or_a_refusal_whose_advice_works(tmp_path: Path) -> None:
    """Iteration 5 breaks; iterations after it, running beside it in lanes, change os.environ
    first thing: the loop may be refused (lanes ran them), with advice that works."""
    _ended_early(tmp_path, BREAKS_AFTER_LATER_ONES_CHANGED, "out [0, 1, 2, 3, 4]\n")


# --- Control flow and results in lanes (behaving correctly) -----------------------------------


def test_the_earliest_iterations_exception_wins_across_lanes(load_module: Loader) -> None:
    """Iteration 40 raises at once, iteration 9 later: the plain loop raises iteration 9's."""
    body = """
        out = []
        for i in ParaLoop(range(64), lanes=True):
            if i == 9:
                time.sleep(0.15)
                raise ValueError("nine")
            if i == 40:
                raise TypeError("forty")
            time.sleep(0.02)
            out.append(i)
    """
    with pytest.raises(ValueError, match="nine"):
        _plain(body)
    with pytest.raises(ValueError, match="nine"):
        _load(load_module, body)


def test_keyboard_interrupt_raised_by_a_body_in_lanes(load_module: Loader) -> None:
    body = """
        for i in ParaLoop(range(64), lanes=True):
            time.sleep(0.02)
            if i == 37:
                raise KeyboardInterrupt
    """
    with pytest.raises(KeyboardInterrupt):
        _load(load_module, body)


def test_an_exception_does_not_wait_for_slow_iterations_beside_it(load_module: Loader) -> None:
    body = """
        for i in ParaLoop(range(64), lanes=True):
            time.sleep(0.02)
            if i == 5:
                raise ValueError("five")
            if i > 5:
                time.sleep(8)
    """
    began = time.perf_counter()
    with pytest.raises(ValueError, match="five"):
        _load(load_module, body)
    assert time.perf_counter() - began < 4


def test_return_gives_the_earliest_returning_iteration(load_module: Loader) -> None:
    body = """
        def first():
            for i in ParaLoop(range(64), lanes=True):
                time.sleep(0.03 if i % 7 else 0.001)
                if i in (50, 13):
                    return i
            return None
        result = first()
    """
    assert _plain(body)["result"] == 13
    assert _load(load_module, body).result == 13


def test_reductions_over_a_generator_with_uneven_waits(load_module: Loader) -> None:
    """total += x, out.append(x), d[k] = v (with continue) over a generator, per-item waits
    from 0 to 50 ms, under the default settings."""
    body = """
        waits = [random.Random(5 + k).choice([0.0, 0.001, 0.05]) for k in range(64)]
        def items():
            for k in range(64):
                yield k * 3
        total = 0
        out = []
        d = {}
        for x in ParaLoop(items()):
            time.sleep(waits[x // 3])
            total += x
            out.append(x)
            d[x % 10] = x
            if x % 5 == 0:
                continue
            d[-x] = x
    """
    plain = _plain(body)
    module = _load(load_module, body)
    assert (module.total, module.out) == (plain["total"], plain["out"])
    assert list(module.d.items()) == list(plain["d"].items())


def test_iterations_left_running_in_lanes_do_not_reach_the_next_loop(tmp_path: Path) -> None:
    """Iteration 20 raises while later iterations still run in its worker's lanes (a thread cannot
    be stopped): they go on and set an environment variable there.  That worker must not run the
    program's next loop (without lanes), whose iterations would read it; it read '31' or '32'
    in every worker that had run the first loop (found while checking the adversary's tests:
    a leftover lane had removed a variable under a later test's loop)."""
    script = tmp_path / "leftovers.py"
    script.write_text(
        "# paraloop: enable\n"
        + PRELUDE
        + textwrap.dedent("""
        def late(i):
            time.sleep(0.3)
            os.environ["PARALOOP_ADV_LATE"] = str(i)
        try:
            for i in ParaLoop(range(64), lanes=True):
                if i == 20:
                    time.sleep(0.05)
                    raise ValueError("stop")
                time.sleep(0.02) if i < 20 else late(i)
        except ValueError:
            pass
        out = []
        for i in ParaLoop(range(4), lanes=False, num_processes=2):
            time.sleep(0.4)
            out.append(os.environ.get("PARALOOP_ADV_LATE"))
        print(out)
        """)
    )
    done = run_script(script, timeout=60, env={"PARALOOP_CALLER_RUNS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None, None, None]"


def test_a_seed_in_a_function_the_body_calls_is_refused_with_advice_that_works(
    load_module: Loader,
) -> None:
    """A function the body calls seeds the global generator and draws: paraloop sees only the
    draw, and refuses.  Its advice said "seed the global generator at the start of each
    iteration", which this loop already does (in the function); it now says to write the seed
    in the loop's own body, and that loop gives the plain loop's numbers."""
    seeded_in_function = """
        def draw(i):
            random.seed(i)
            return random.random()
        out = []
        for i in ParaLoop(range(16), lanes=False):
            out.append(draw(i))
    """
    with pytest.raises(paraloop.ParaLoopError, match="in the loop's own body"):
        _load(load_module, seeded_in_function)
    seeded_in_body = """
        def draw():
            return random.random()
        out = []
        for i in ParaLoop(range(16), lanes=False):
            random.seed(i)
            out.append(draw())
    """
    module = _load(load_module, seeded_in_body)
    assert module.out == _plain(seeded_in_body)["out"]
