"""Adversarial tests of the caller's part (paraloop.caller): the calling process runs a loop's
first chunks itself.  It must behave as a worker does (CONTRACT sections 4, 5, 7, 8):
the same results bit for bit, the same refusals, no leftover process, bounded memory.

Each test compares the caller taking part with every iteration in the workers
(PARALOOP_CALLER_RUNS=0) and, where it can, with the plain loop.  Whole programs run
with ``python -m paraloop`` in a child process, free of the suite's PARALOOP_* settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from plain_loop import run_plain

import paraloop
from paraloop import caller, resources

Loader = Callable[..., ModuleType]


@pytest.fixture
def caller_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's default (the suite runs with PARALOOP_CALLER_RUNS=0), a budget of 3 ms,
    in a program that holds no per-worker handle."""
    monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
    monkeypatch.setattr(caller, "CALLER_SECONDS", 0.003)
    monkeypatch.setattr(resources, "_handles", weakref.WeakSet())


def _environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARALOOP_")}
    environment.update(extra)
    return environment


def _script(
    tmp_path: Path, body: str, *args: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text("# paraloop: enable\n" + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "paraloop", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(**extra),
        cwd=tmp_path,
    )


def _both(tmp_path: Path, body: str, *args: str) -> tuple[str, str]:
    """The program's output with the caller taking part (the default) and with every
    iteration in the workers."""
    on = _script(tmp_path, body, *args)
    assert on.returncode == 0, on.stderr
    off = _script(tmp_path, body, *args, PARALOOP_CALLER_RUNS="0")
    assert off.returncode == 0, off.stderr
    return on.stdout, off.stdout


LARGE_ITEMS = """
    import resource
    from paraloop import ParaLoop

    items = [bytes([i % 256]) * 1_000_000 for i in range(200)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0
    for b in ParaLoop(items, num_processes=2):
        total += b[0]
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(total, extra // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kilobytes")
def test_large_items_in_the_caller_keep_read_ahead_bounded_in_bytes(tmp_path: Path) -> None:
    """CONTRACT 8: a loop over large items holds a few chunks, never the input.  The caller's
    chunks were sized from the iterations' time alone (their bytes never counted): a trivial
    body over 200 items of 1 MB pickled and loaded nearly all of them in one chunk (about
    twice the input, 380 MB, against 50 MB with the workers)."""
    done = _script(tmp_path, LARGE_ITEMS)
    assert done.returncode == 0, done.stderr
    total, extra_mb = map(int, done.stdout.split())
    assert total == sum(i % 256 for i in range(200))
    assert extra_mb < 100, f"the caller's chunks held {extra_mb} MB beyond the input (190 MB)"
