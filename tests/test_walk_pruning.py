"""A loop over os.walk whose body prunes the walk (paraloop/walk_watch.py): refused where paraloop
reads the walk ahead, with advice that works; the plain result sequentially, and where the body
leaves the walk's lists alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import paraloop

Loader = Callable[..., ModuleType]

LOOP = """
import os
from paraloop import ParaLoop

def run(top, options, prune=True, topdown=True):
    seen = []
    for root, dirs, files in ParaLoop(os.walk(top, topdown=topdown), **options):
        if prune and "venv" in dirs:
            dirs.remove("venv")
        seen.append(os.path.relpath(root, top))
    return seen

def plain(top, prune=True, topdown=True):
    seen = []
    for root, dirs, files in os.walk(top, topdown=topdown):
        if prune and "venv" in dirs:
            dirs.remove("venv")
        seen.append(os.path.relpath(root, top))
    return seen

def pruned(top):
    for root, dirs, files in os.walk(top):
        dirs[:] = [name for name in dirs if name != "venv"]
        yield root, dirs, files

def advised(top, options):
    seen = []
    for root, dirs, files in ParaLoop(pruned(top), **options):
        seen.append(os.path.relpath(root, top))
    return seen
"""

CONCURRENT = [
    {"num_processes": 2, "start_method": "fork", "caller_runs": False},
    {"num_processes": 2},
    {"num_processes": 3, "backend": "threads"},
    {"num_processes": 2, "chunksize": 1, "start_method": "spawn"},
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ("keep/a", "keep/b", "venv/lib/site", "venv/bin", "zeta"):
        (tmp_path / "top" / folder).mkdir(parents=True)
        (tmp_path / "top" / folder / "f.py").write_text("x = 1\n")
    return tmp_path / "top"


@pytest.mark.parametrize("options", CONCURRENT, ids=["fork", "caller", "threads", "spawn"])
def test_a_body_that_prunes_the_walk_is_refused_and_the_advice_works(
    load_module: Loader, tree: Path, options: dict[str, object]
) -> None:
    """Before: the walk went into venv (read ahead of the body's dirs.remove), silently."""
    module = load_module(LOOP)
    with pytest.raises(paraloop.ParaLoopError) as refused:
        module.run(str(tree), options)
    message = str(refused.value)
    assert f"{module.__file__}, line 8: iteration 0 changed the list of folders os.walk yielded" in message
    assert "became" in message and "'venv'" in message
    assert "def walk(top)" in message and "backend='sequential'" in message
    assert sorted(module.advised(str(tree), options)) == sorted(module.plain(str(tree)))
    assert module.advised(str(tree), options) == module.plain(str(tree))


def test_the_sequential_backend_prunes_as_the_plain_loop(load_module: Loader, tree: Path) -> None:
    module = load_module(LOOP)
    assert module.run(str(tree), {"backend": "sequential"}) == module.plain(str(tree))
    assert "venv" not in module.plain(str(tree))


@pytest.mark.parametrize("options", CONCURRENT, ids=["fork", "caller", "threads", "spawn"])
def test_a_walk_the_body_leaves_alone_or_walks_bottom_up_runs(
    load_module: Loader, tree: Path, options: dict[str, object]
) -> None:
    """No pruning, or a bottom-up walk (whose lists are read before they are yielded): the plain
    result, no refusal."""
    module = load_module(LOOP)
    assert module.run(str(tree), options, prune=False) == module.plain(str(tree), prune=False)
    assert module.run(str(tree), options, topdown=False) == module.plain(str(tree), topdown=False)


def test_a_body_that_sorts_the_walk_s_folders_is_refused(load_module: Loader, tree: Path) -> None:
    """dirs.sort() orders the plain walk's descent: read ahead, the walk went in its own order."""
    module = load_module("""
        import os
        from paraloop import ParaLoop
        def run(top):
            seen = []
            for root, dirs, files in ParaLoop(os.walk(top), num_processes=3, backend="threads"):
                dirs.sort(reverse=True)
                seen.append(root)
            return seen
    """)
    with pytest.raises(paraloop.ParaLoopError, match=r"changed the list of folders os\.walk yielded"):
        module.run(str(tree))
