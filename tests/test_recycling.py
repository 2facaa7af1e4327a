"""ParaLoop(..., max_iterations_per_worker=N): a worker process is replaced after N iterations."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import paraloop
from paraloop.backends.processes.pool import shutdown_pools

Loader = Callable[..., ModuleType]

RECORDED = """
    import os
    from paraloop import ParaLoop

    def run(chunksize=None):
        pids = {}
        total = 0
        squares = []
        for i in ParaLoop(range(40), num_processes=2, max_iterations_per_worker=5, chunksize=chunksize):
            pids[i] = os.getpid()
            total += i * i
            squares.append(i * i)
        return pids, total, squares
"""


def test_no_worker_runs_more_iterations_than_allowed(every_backend: str, load_module: Loader) -> None:
    """On processes no pid ran more than 5 of the 40 iterations; on every backend the
    results are the plain loop's (threads, sequential and Dask accept the option and
    have no worker process of paraloop's to replace)."""
    module = load_module(RECORDED)
    pids, total, squares = module.run()
    assert total == sum(i * i for i in range(40))
    assert squares == [i * i for i in range(40)]
    assert sorted(pids) == list(range(40))
    ran = Counter(pids.values())
    if every_backend in ("fork", "forkserver", "spawn"):
        assert max(ran.values()) <= 5, ran
        assert len(ran) >= 8
        assert os.getpid() not in ran
    elif every_backend in ("threads", "sequential"):
        assert set(ran) == {os.getpid()}


def test_a_fixed_chunk_size_is_cut_to_the_limit(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """chunksize=10 with max_iterations_per_worker=5: chunks of 5, still at most 5 per worker."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    module = load_module(RECORDED)
    pids, total, squares = module.run(chunksize=10)
    assert total == sum(i * i for i in range(40))
    assert squares == [i * i for i in range(40)]
    assert max(Counter(pids.values()).values()) <= 5


def test_a_recycled_worker_closes_its_per_worker_objects(
    load_module: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replaced worker quits in order: its per-worker objects are closed as it goes."""
    monkeypatch.setenv("PARALOOP_START_METHOD", "fork")
    log = tmp_path / "objects.log"
    module = load_module(f"""
        import os
        import paraloop
        from paraloop import ParaLoop

        class Resource:
            def __init__(self):
                with open({str(log)!r}, "a") as handle:
                    handle.write(f"made {{os.getpid()}}\\n")

            def close(self):
                with open({str(log)!r}, "a") as handle:
                    handle.write(f"closed {{os.getpid()}}\\n")

        resource = paraloop.per_worker(Resource)
        pids = {{}}
        for i in ParaLoop(range(30), num_processes=2, max_iterations_per_worker=10):
            pids[i] = (os.getpid(), id(resource))
    """)
    lines = log.read_text().splitlines()
    made = [line.split()[1] for line in lines if line.startswith("made")]
    closed = [line.split()[1] for line in lines if line.startswith("closed")]
    workers = {pid for pid, _ in module.pids.values()}
    assert sorted(made) == sorted(str(pid) for pid in workers)
    # 30 iterations, 10 per worker: at least three workers, and every one but the (at most
    # two) still in the pool was replaced, and closed its object as it quit.
    assert len(workers) >= 3
    assert len(set(closed)) >= len(made) - 2
    assert set(closed) <= set(made)
    shutdown_pools()
    closed = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("closed")]
    assert sorted(closed) == sorted(made)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "5"])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(value: object) -> None:
    with pytest.raises(
        paraloop.ParaLoopError,
        match=rf"max_iterations_per_worker={value!r}: give a whole number of at least 1",
    ):
        paraloop.ParaLoop(range(3), max_iterations_per_worker=value)  # type: ignore[arg-type]
