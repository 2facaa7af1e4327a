"""Adversarial cases against four changes of one day: the import hook that searches once, large
captured arrays through shared memory, a script's functions by the standard pickle, and the
refusal of stores into modules of the program.

Each test runs what a user could write and asserts what CONTRACT.md promises for it: the plain
loop's result, or a ``ParaLoopError`` naming what is wrong. Tests marked ``xfail(strict=True)``
fail today; their reason says what goes wrong (the fix lies in code this file's author did not
change).
"""

from __future__ import annotations

import errno
import os
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import START_METHODS, use_backend
from plain_loop import run_plain

Loader = Callable[..., ModuleType]

PRELUDE = "from paraloop import ParaLoop\n"


@pytest.fixture(params=START_METHODS)
def processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test's loops in worker processes, under each start method."""
    return use_backend(request.param, request, monkeypatch)


@pytest.fixture
def fork(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    return use_backend("fork", request, monkeypatch)


def plain_result(source: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_plain(PRELUDE + textwrap.dedent(source))["result"]


def _ours() -> set[str]:
    """Segments of large inputs this test process made."""
    return {p.name for p in Path("/dev/shm").glob(f"paraloop_in_{os.getpid()}_*")}


# 2. Large captured arrays through shared memory. -------------------------------------------------

# 300,000 items of 8 bytes or more: above the sharing threshold (1 MiB).
LARGE_ARRAYS = {
    # memoryview refuses datetime64/timedelta64: the loop was refused as "cannot be sent".
    "datetime64": "np.arange(300_000).astype('datetime64[s]')",
    "timedelta64": "np.arange(300_000).astype('timedelta64[ms]')",
    # The dtype travelled as its .str ('|V12'): the fields were lost in the workers.
    "structured": "np.zeros(300_000, dtype=[('x', '<f8'), ('y', '<i4')])",
    "aligned structured": "np.zeros(300_000, dtype=np.dtype([('x', 'u1'), ('y', '<f8')], align=True))",
    # ... and so was a dtype's metadata, which pickle keeps.
    "dtype metadata": "np.zeros(300_000, dtype=np.dtype('f8', metadata={'unit': 'm'}))",
}


@pytest.mark.parametrize("kind", list(LARGE_ARRAYS), ids=list(LARGE_ARRAYS))
def test_a_large_array_of_any_plain_dtype_reaches_the_workers_whole(
    kind: str, load_module: Loader, processes: str
) -> None:
    pytest.importorskip("numpy")
    source = f"""
        import numpy as np
        big = {LARGE_ARRAYS[kind]}
        if big.dtype.names:
            big[big.dtype.names[-1]] = np.arange(big.size) % 7
        result = []
        for i in ParaLoop([0, 1, big.size - 1], num_processes=2):
            result.append((str(big[i]), str(big.dtype), repr(big.dtype.metadata), big.shape))
    """
    before = _ours()
    module = load_module(PRELUDE + textwrap.dedent(source))
    assert module.result == plain_result(source)
    assert _ours() == before


def test_a_full_dev_shm_falls_back_to_pickling_the_array(
    load_module: Loader, processes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container's /dev/shm is 64 MB: writing a larger array there fails with ENOSPC (tmpfs
    allocates on write). The loop refused the array as 'cannot be sent to a worker process'
    (advising threads); it must run as before the segments existed, and leave no segment."""
    pytest.importorskip("numpy")

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    source = """
        import numpy as np
        big = np.arange(300_000, dtype=np.float64)
        result = 0.0
        for i in ParaLoop(range(8), num_processes=2):
            result += big[i]
    """
    before = _ours()
    module = load_module(PRELUDE + textwrap.dedent(source))
    assert module.result == plain_result(source)
    assert _ours() == before
