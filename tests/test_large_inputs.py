"""Large captured arrays reach worker processes once, through shared memory (docs/large-inputs.md).

A loop that captures a numpy array of hundreds of MB must not copy it once per worker: each
worker maps one shared copy, read-only (captured arrays are read-only in workers anyway), and
the segment is gone when the loop ends. Everything a body may do with a captured array keeps
working as for a small one: reading it, returning a view of it, being refused when it writes
to it in a form paraloop cannot combine. Results equal the plain loop's on every backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import LINUX_FACILITIES, START_METHODS, use_backend

import paraloop
from paraloop.sharing import SHARE_BYTES

Loader = Callable[..., ModuleType]

SHM = Path("/dev/shm")
# Rows of 1,000 float64: 160 rows are 1.28 MB, above the sharing threshold.
ROWS = 160
assert ROWS * 1000 * 8 >= SHARE_BYTES


def _ours() -> set[str]:
    """Segments of large inputs this test process made (other test processes make their own)."""
    return {p.name for p in SHM.glob(f"paraloop_in_{os.getpid()}_*")}


@pytest.fixture(params=START_METHODS)
def processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(request.param, request, monkeypatch)


def test_a_large_captured_array_is_mapped_from_one_shared_copy(load_module: Loader, processes: str) -> None:
    """In each worker the array lies in a read-only mapping of a /dev/shm segment (no copy of its
    own), the results are the plain loop's, and the segment is gone after the loop.  Without
    /dev/shm (PARALOOP_PORTABLE=1, as on macOS) the array travels pickled, as a small one does."""
    before = _ours()
    module = load_module(f"""
        import os
        import numpy as np
        from paraloop import ParaLoop
        table = np.arange({ROWS} * 1000, dtype=np.float64).reshape({ROWS}, 1000)
        columns = np.asfortranarray(table[:, :400])
        sums, mapped = [], set()
        for i in ParaLoop(range({ROWS}), num_processes=2, chunksize=20):
            sums.append(float(table[i].sum()) + float(columns[i].sum()))
            start = table.__array_interface__["data"][0]
            with open("/proc/self/maps") as maps:
                for line in maps:
                    low, high = (int(part, 16) for part in line.split()[0].split("-"))
                    if low <= start < high:
                        mapped.add((os.getpid() != {os.getpid()}, line.split()[-1].rpartition("/")[2][:12],
                                    line.split()[1], table.flags.writeable))
    """)
    table = np.arange(ROWS * 1000, dtype=np.float64).reshape(ROWS, 1000)
    assert module.sums == [float(table[i].sum()) + float(table[i, :400].sum()) for i in range(ROWS)]
    if LINUX_FACILITIES:
        # Every iteration ran in a worker, on the segment, mapped read-only and shared ("s").
        assert module.mapped == {(True, "paraloop_in_", "r--s", False)}
    else:
        # Every iteration ran in a worker, on a private copy: no segment was made.
        assert {(in_worker, private[-1]) for in_worker, _, private, _ in module.mapped} == {(True, "p")}
    assert _ours() == before


def test_views_and_writes_behave_as_for_a_small_array(load_module: Loader, every_backend: str) -> None:
    """A view of the large array bound in the body is the caller's memory after the loop; a write
    through a function the body calls is refused naming the array (the sequential backend runs
    the plain loop: the plain result); a recognised element update is combined."""
    module = load_module(f"""
        import numpy as np
        from paraloop import ParaLoop
        big = np.zeros(({ROWS}, 1000))
        for i in ParaLoop(range(4), num_processes=2):
            window = big[2:5]
        def store(buffer, i):
            buffer[i, 0] = i
        def through_a_function():
            for i in ParaLoop(range(4), num_processes=2):
                store(big, i)
        def updates():
            for i in ParaLoop(range({ROWS}), num_processes=2):
                big[i, 1] = i
    """)
    module.window[0, 0] = 7.0
    assert module.big[2, 0] == 7.0  # the same memory, as the plain loop's view would be
    if every_backend == "sequential":
        module.through_a_function()
        assert module.big[:4, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    else:
        with pytest.raises(paraloop.ParaLoopError, match="'big'"):
            module.through_a_function()
    module.updates()
    assert module.big[:, 1].tolist() == [float(i) for i in range(ROWS)]


def test_no_worker_holds_a_copy_and_the_caller_adds_none(tmp_path: Path) -> None:
    """A 64 MB array captured by a loop on two workers: each worker's private memory stays far
    below the array's size, and so does the caller's peak growth (it was 3 copies before)."""
    script = tmp_path / "big.py"
    script.write_text(
        textwrap.dedent("""\
        # paraloop: enable
        import os, resource
        import numpy as np
        from paraloop import ParaLoop

        def private_mb():
            with open("/proc/self/smaps_rollup") as rollup:
                fields = dict(line.split(":", 1) for line in rollup if ":" in line and "-" not in line)
            kb = sum(int(fields[f].split()[0]) for f in ("Private_Clean", "Private_Dirty"))
            return kb / 1024

        warm = []
        for i in ParaLoop(range(4), num_processes=2):
            warm.append(i)
        big = np.ones(8_000_000)  # 64 MB
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worst = 0.0
        total = 0.0
        for i in ParaLoop(range(8), num_processes=2, chunksize=1):
            total += float(big[i * 1000 : (i + 1) * 1000].sum()) + big.size
            worst = max(worst, private_mb())
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        print(total, round(worst), round(grown))
    """)
    )
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    result = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    total, worst, grown = result.stdout.split()
    assert float(total) == 8 * 1000 + 8 * 8_000_000
    assert float(worst) < 40, f"a worker holds {worst} MB of its own"
    assert float(grown) < 20, f"the caller grew by {grown} MB"
