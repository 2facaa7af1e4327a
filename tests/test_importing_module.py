"""A marked module whose top level runs a loop is not run again in the workers.

A worker that meets a function or class of a module by name imports that module. For a
module the caller is still importing (its top-level loop is running), that import would
run its top level again in every worker, the loop included (sequentially there): each
worker would redo the whole loop and its side effects. Its functions and classes travel by
value instead, as ``__main__``'s do, and results made of its classes come back as the
caller's own classes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS

Loader = Callable[..., ModuleType]


@pytest.mark.parametrize("method", START_METHODS)
def test_the_top_level_runs_once(load_module: Loader, tmp_path: Path, method: str) -> None:
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
        for p in ParaLoop(points, num_processes=2, start_method={method!r}, chunksize=2):
            out.append(double(p))
    """)
    assert runs.read_text().split() == [str(__import__("os").getpid())]
    assert module.out == [module.Point(2 * i, -i) for i in range(12)]
    assert all(type(point) is module.Point for point in module.out)


@pytest.mark.parametrize("method", START_METHODS)
def test_a_module_imported_in_full_is_imported_by_later_loops(load_module: Loader, method: str) -> None:
    """Once the caller has finished importing it, a later loop that uses its functions gets
    the module itself in the workers (the stand-in of the first loop is gone)."""
    first = load_module(f"""
        from paraloop import ParaLoop

        def square(x):
            return x * x

        table = []
        for i in ParaLoop(range(6), num_processes=2, start_method={method!r}):
            table.append(square(i))

        def lookup(i):
            return table[i % len(table)]
    """)
    second = load_module(f"""
        from paraloop import ParaLoop
        from {first.__name__} import lookup

        out = []
        for i in ParaLoop(range(10), num_processes=2, start_method={method!r}):
            out.append(lookup(i))
    """)
    assert first.table == [0, 1, 4, 9, 16, 25]
    assert second.out == [first.table[i % 6] for i in range(10)]
