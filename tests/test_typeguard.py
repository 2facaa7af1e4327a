"""paraloop's import hook and typeguard's compose.

Both claim a module: typeguard's hook instruments it for run-time type checks, paraloop's
rewrites its ParaLoop loops.  A marked module gets both (paraloop's rewrite first, then
typeguard's instrumentation of the rewritten tree), whichever hook was installed first:

- typeguard's before ``import paraloop``: paraloop's finder, first on ``sys.meta_path``,
  finds typeguard's loader behind it and composes;
- typeguard's after: it sits in front and takes the module away from paraloop, so the
  program calls ``paraloop.install()`` after ``install_import_hook(...)``; if it does not,
  the loop is refused with a ParaLoopError saying so, rather than run sequentially.

An unmarked module keeps typeguard's loader and checks unchanged.  Each test runs a real
program (or a real pytest) in a new process: import hooks are process-wide state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Once (tests/conftest.py): typeguard's hook beside ours, as the rewriter's tests run everywhere.
pytestmark = pytest.mark.once

pytest.importorskip("typeguard")

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _start_method_of_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loops below ask for a start method (fork, unless a test says otherwise); an
    environment choosing another one (the portable tox env) would override the code, so the
    programs these tests start run without it."""
    monkeypatch.delenv("PARALOOP_START_METHOD", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)


MARKED = """\
# paraloop: enable
import os

from paraloop import ParaLoop


def double(x: int) -> int:
    return x * 2


def run(items: list) -> tuple[int, list[int]]:
    total = 0
    pids = []
    for item in ParaLoop(items, num_processes=2, chunksize=1, start_method="fork"):
        total += double(item)
        pids.append(os.getpid())
    return total, pids


def annotated_in_the_body(items: list) -> int:
    count = 0
    for item in ParaLoop(items, num_processes=2, chunksize=1, start_method="fork"):
        text: str = item
        count += len(text)
    return count
"""

UNMARKED = """\
def double(x: int) -> int:
    return x * 2
"""

# The program: installs the two hooks in the order asked, imports the module, reports as JSON.
PROGRAM = """\
import json
import os
import sys
import warnings

warnings.simplefilter("error")  # a ParaLoopWarning (loop run sequentially) fails the program
from typeguard import TypeCheckError, install_import_hook

order = sys.argv[1]
if order == "typeguard first":
    install_import_hook(["target"])
    import paraloop
else:
    import paraloop
    install_import_hook(["target"])
    if order == "paraloop first, then paraloop.install()":
        paraloop.install()

import target

report = {"loader": type(target.__loader__).__name__, "pid": os.getpid()}
if hasattr(target, "run"):
    try:
        report["total"], report["pids"] = target.run([1, 2, 3, 4])
    except Exception as error:
        report["refused"] = f"{type(error).__name__}: {error}"
        print(json.dumps(report))
        sys.exit(0)
    for name, call in [
        ("argument", lambda: target.run([1, "two", 3, 4])),
        ("annotated", lambda: target.annotated_in_the_body(["a", 2])),
    ]:
        try:
            call()
        except TypeCheckError as error:
            report[name] = [type(error).__name__, str(error), str(getattr(error, "__notes__", ""))]
        except BaseException as error:
            report[name] = [type(error).__name__, str(error), ""]
try:
    target.double("two")
except TypeCheckError as error:
    report["direct"] = str(error)
print(json.dumps(report))
"""

ORDERS = ["typeguard first", "paraloop first, then paraloop.install()"]


def _run(tmp_path: Path, module: str, order: str) -> dict[str, object]:
    (tmp_path / "target.py").write_text(module)
    (tmp_path / "program.py").write_text(PROGRAM)
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    result = subprocess.run(
        [sys.executable, "program.py", order],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return report


@pytest.mark.parametrize("order", ORDERS)
def test_a_marked_module_gets_parallel_loops_and_type_checks(tmp_path: Path, order: str) -> None:
    report = _run(tmp_path, MARKED, order)
    assert report["loader"] == "ParaLoopLoader"
    # The loop ran in worker processes, with the plain loop's result.
    assert report["total"] == 20
    pids = report["pids"]
    assert isinstance(pids, list) and len(pids) == 4
    assert report["pid"] not in pids
    # A wrong argument to a checked function, called in a worker: typeguard's own error,
    # its type kept across the process boundary, named by its iteration.
    kind, message, notes = report["argument"]  # type: ignore[misc]
    assert kind == "TypeCheckError"
    assert message == 'argument "x" (str) is not an instance of int'
    assert "iteration 1" in notes
    # The loop body paraloop made is instrumented too: an annotated assignment in it is checked.
    kind, message, _ = report["annotated"]  # type: ignore[misc]
    assert (kind, message) == ("TypeCheckError", "value assigned to text (int) is not an instance of str")
    assert report["direct"] == 'argument "x" (str) is not an instance of int'


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_that_import_afresh_check_types_too(tmp_path: Path, method: str) -> None:
    """spawn and forkserver workers import the module themselves: the caller's typeguard hooks
    (and typeguard's configuration) travel with the loop's job and are installed there first."""
    report = _run(tmp_path, MARKED.replace('start_method="fork"', f'start_method="{method}"'), ORDERS[1])
    assert report["total"] == 20
    assert report["pid"] not in report["pids"]  # type: ignore[operator]
    kind, message, notes = report["argument"]  # type: ignore[misc]
    assert (kind, message) == ("TypeCheckError", 'argument "x" (str) is not an instance of int')
    assert "iteration 1" in notes
    kind, message, _ = report["annotated"]  # type: ignore[misc]
    assert (kind, message) == ("TypeCheckError", "value assigned to text (int) is not an instance of str")


def test_typeguard_installed_after_paraloop_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Without ``paraloop.install()`` typeguard's hook took the module: not run sequentially."""
    report = _run(tmp_path, MARKED, "paraloop first")
    assert report["loader"] == "TypeguardLoader"
    refused = report["refused"]
    assert isinstance(refused, str) and refused.startswith("ParaLoopError: ")
    path = tmp_path / "target.py"
    assert f"{path}, line 14: module 'target' carries '# paraloop: enable'" in refused
    assert "typeguard's import hook, installed after paraloop's" in refused
    assert "paraloop.install() after typeguard.install_import_hook(...)" in refused


@pytest.mark.parametrize("order", [*ORDERS, "paraloop first"])
def test_an_unmarked_module_keeps_typeguard_unchanged(tmp_path: Path, order: str) -> None:
    report = _run(tmp_path, UNMARKED, order)
    assert report["loader"] == "TypeguardLoader"
    assert report["direct"] == 'argument "x" (str) is not an instance of int'


TEST_MODULE = """\
import os

import pytest
from typeguard import TypeCheckError

import target


def test_loop_runs_in_workers():
    total, pids = target.run([1, 2, 3, 4])
    assert total == 20
    assert os.getpid() not in pids


def test_wrong_argument_is_a_type_check_error():
    with pytest.raises(TypeCheckError, match='argument "x"'):
        target.run([1, "two"])
"""


def test_typeguards_pytest_plugin_and_paraloops_compose(pytester: pytest.Pytester) -> None:
    """``--typeguard-packages`` installs typeguard's hook after paraloop's plugin installed
    paraloop's; the plugin puts paraloop's back in front before the tests are collected."""
    pytester.makepyfile(target=MARKED, test_target=TEST_MODULE)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--typeguard-packages=target",
        "-W",
        "error::paraloop.ParaLoopWarning",
        timeout=120,
    )
    result.assert_outcomes(passed=2)


def test_typeguard_debug_instrumentation_shows_the_rewritten_module(tmp_path: Path) -> None:
    """typeguard's own loader compiles the rewritten tree: its settings apply as usual."""
    (tmp_path / "target.py").write_text(MARKED)
    program = textwrap.dedent(
        """\
        from typeguard import config, install_import_hook
        install_import_hook(["target"])
        config.debug_instrumentation = True
        import paraloop
        import target
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "after instrumentation" in result.stderr
    # Both: paraloop's generated loop body, and typeguard's check in the user's function.
    assert "__paraloop_body_1__" in result.stderr
    assert "('double', {'x': (x, int)}" in result.stderr
