"""coverage.py sees the loop bodies that ran in worker processes.

Each test runs real coverage (``coverage run``, pytest-cov, or the API) in a new
interpreter on a program whose loop runs in worker processes, then asks coverage's own
report which lines of the program were missed: only the line no iteration reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import START_METHODS

pytest.importorskip("coverage")

SCRIPT = """\
import sys
from paraloop import ParaLoop


def square(x):
    return x * x


total = 0
for i in ParaLoop(range(20), num_processes=2, chunksize=2, start_method=sys.argv[1]):
    y = square(i)
    if y > 1000:
        print("never")
    total += y
print(total)
"""
# The line no iteration reaches.
NEVER = 13

# The same loop in a marked module, in a function (line 11 is never reached); it tells
# whether the iterations ran in other processes.
WORK = """\
# paraloop: enable
import os
from paraloop import ParaLoop


def run(method):
    total, pids = 0, set()
    for i in ParaLoop(range(20), num_processes=2, chunksize=2, start_method=method):
        y = i * i
        if y > 1000:
            print("never")
        total += y
        pids.add(os.getpid())
    return total, os.getpid() not in pids
"""


def _environment() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARALOOP_", "COVERAGE_")) or k == "PARALOOP_CALLER_RUNS"
    }


def _python(tmp_path: Path, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python arguments`` in the program's directory, which must succeed."""
    done = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_environment(),
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _coverage(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return _python(tmp_path, "-m", "coverage", *arguments)


def _report(tmp_path: Path, name: str) -> dict[str, Any]:
    """coverage's JSON report of one file: executed and missing lines (and branches)."""
    _coverage(tmp_path, "json", "-o", "report.json", f"--include={name}")
    files: dict[str, Any] = json.loads((tmp_path / "report.json").read_text())["files"]
    return files[name]


@pytest.mark.parametrize("method", START_METHODS)
def test_coverage_run_reports_the_body_covered(tmp_path: Path, method: str) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    done = _coverage(tmp_path, "run", "-m", "paraloop", "script.py", method)
    assert done.stdout == "2470\n"  # nothing of coverage's on the program's output
    report = _report(tmp_path, "script.py")
    assert report["missing_lines"] == [NEVER]


def test_branches_measured_in_workers_are_reported(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    _coverage(tmp_path, "run", "--branch", "-m", "paraloop", "script.py", "spawn")
    report = _report(tmp_path, "script.py")
    assert report["missing_lines"] == [NEVER]
    # The only branch never taken: into the line no iteration reaches.
    assert report["missing_branches"] == [[NEVER - 1, NEVER]]


def test_concurrency_multiprocessing_as_its_docs_say(tmp_path: Path) -> None:
    """The configuration coverage documents for multiprocessing programs, then ``coverage combine``."""
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / ".coveragerc").write_text("[run]\nconcurrency = multiprocessing\nparallel = true\n")
    _coverage(tmp_path, "run", "-m", "paraloop", "script.py", "forkserver")
    _coverage(tmp_path, "combine")
    assert _report(tmp_path, "script.py")["missing_lines"] == [NEVER]


def test_a_report_made_in_the_program_sees_the_body(tmp_path: Path) -> None:
    """The API: a Coverage started by the program itself, reported before it exits."""
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "main.py").write_text(
        textwrap.dedent("""
        import json, coverage
        measuring = coverage.Coverage(include=["work.py"])
        measuring.start()
        import paraloop  # before the marked module: its import is rewritten
        import work
        print(work.run("spawn"))
        measuring.stop()
        print(json.dumps(measuring.analysis2("work.py")[3]))
        """)
    )
    done = _python(tmp_path, "main.py")
    assert done.stdout.splitlines() == ["(2470, True)", "[11]"]


def test_pytest_cov_reports_the_body_covered(tmp_path: Path) -> None:
    pytest.importorskip("pytest_cov")
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "test_work.py").write_text(
        "import pytest, paraloop, work\n\n"
        "@pytest.mark.parametrize('method', ['fork', 'forkserver', 'spawn'])\n"
        "def test_run(method):\n"
        "    assert work.run(method) == (2470, True)\n"
    )
    _python(
        tmp_path,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--cov=.",
        "--cov-report=json:report.json",
        "test_work.py",
        timeout=180,
    )
    report = json.loads((tmp_path / "report.json").read_text())["files"]["work.py"]
    assert report["missing_lines"] == [11]
