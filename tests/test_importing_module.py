"""A marked module whose top level runs a loop is not run again in the workers.

A worker that meets a function or class of a module by name imports that module. For a
module the caller is still importing (its top-level loop is running), that import would
run its top level again in every worker, the loop included (sequentially there): each
worker would redo the whole loop and its side effects. Its functions and classes travel by
value instead, as ``__main__``'s do, and results made of its classes come back as the
caller's own classes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS, use_backend

Loader = Callable[..., ModuleType]


@pytest.mark.parametrize("method", [*START_METHODS, "dask"])
def test_the_top_level_runs_once(
    load_module: Loader,
    tmp_path: Path,
    method: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On Dask (the environment overrides the code) the start method is the cluster's own.
    start = "fork" if method == "dask" else method
    if method == "dask":
        use_backend(method, request, monkeypatch)
    runs = tmp_path / "runs.txt"
    module = load_module(f"""
        import dataclasses, os
        from paraloop import ParaLoop

        with open({str(runs)!r}, "a") as log:
            log.write(str(os.getpid()) + "\\n")

        @dataclasses.dataclass
        class Point:
            x: int
            y: int

        def double(point):
            return Point(point.x * 2, point.y)

        points = [Point(i, -i) for i in range(12)]
        out = []
        for p in ParaLoop(points, num_processes=2, start_method={start!r}, chunksize=2):
            out.append(double(p))
    """)
    assert runs.read_text().split() == [str(__import__("os").getpid())]
    assert module.out == [module.Point(2 * i, -i) for i in range(12)]
    assert all(type(point) is module.Point for point in module.out)


@pytest.mark.parametrize("method", [*START_METHODS, "dask"])
def test_a_module_imported_in_full_is_imported_by_later_loops(
    load_module: Loader, method: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the caller has finished importing it, a later loop that uses its functions gets
    the module itself in the workers (the stand-in of the first loop is gone)."""
    start = "fork" if method == "dask" else method
    if method == "dask":
        use_backend(method, request, monkeypatch)
    first = load_module(f"""
        from paraloop import ParaLoop

        def square(x):
            return x * x

        table = []
        for i in ParaLoop(range(6), num_processes=2, start_method={start!r}):
            table.append(square(i))

        def lookup(i):
            return table[i % len(table)]
    """)
    second = load_module(f"""
        from paraloop import ParaLoop
        from {first.__name__} import lookup

        out = []
        for i in ParaLoop(range(10), num_processes=2, start_method={start!r}):
            out.append(lookup(i))
    """)
    assert first.table == [0, 1, 4, 9, 16, 25]
    assert second.out == [first.table[i % 6] for i in range(10)]


@pytest.mark.parametrize("backend", [*START_METHODS, "dask"])
def test_a_result_holding_a_lambda_of_the_module_does_not_run_its_top_level(
    load_module: Loader,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker sending back a defaultdict whose default is a lambda of the module, or a function
    made in the body: pickle looks such a function up in its module by name (``<lambda>``), and
    that lookup imported the module for real in the worker, running its top level (the log's
    second and third lines, loop included).  Found by the suite's Dask run of a reductions case
    taking 4 s for 60 items (each chunk ran the module's top level again)."""
    use_backend(backend, request, monkeypatch)
    runs = tmp_path / "runs.txt"
    module = load_module(f"""
        import os
        from collections import defaultdict
        from paraloop import ParaLoop

        with open({str(runs)!r}, "a") as log:
            log.write(str(os.getpid()) + "\\n")

        budget = defaultdict(lambda: 100)
        made = []
        for i in ParaLoop(range(12), num_processes=2, chunksize=3):
            budget["odd" if i % 2 else "even"] -= i
            made.append(lambda i=i: i * 10)
    """)
    assert runs.read_text().split() == [str(os.getpid())]
    assert dict(module.budget) == {"even": 70, "odd": 64}
    assert module.budget["new"] == 100
    assert [f() for f in module.made] == [i * 10 for i in range(12)]
