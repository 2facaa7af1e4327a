"""A module the body imports for the first time (docs/semantics.md, "No silent loss"), on every backend.

A function of the program's module that rebinds one of its globals in a worker is refused
(paraloop.module_stores): the worker's copy of the module would keep the store, and the
caller's never see it.  A module the body imports for the first time was not watched in the
worker that imported it, and such a store was lost silently (the session-16 adversary found
it): now its bindings as its import left them are compared too (paraloop.first_imports).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import START_METHODS

import paraloop
from paraloop import first_imports

Loader = Callable[..., ModuleType]

_names = iter(range(10**6))

RECORDER = """
import time
last = None
CACHE = {}

def record(i):
    global last
    time.sleep(0.001)
    last = i
    return i

def lookup(i):
    CACHE.setdefault("seen", 0)
    return i * 2
"""


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str = RECORDER) -> str:
    """A module of the program, written but not imported: the loop's body imports it first."""
    name = f"paraloop_first_import_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


def _copies(backend: str) -> bool:
    """Whether the body's imports happen in another process's copy of the program."""
    return backend in (*START_METHODS, "dask")


def test_a_store_in_a_module_the_body_imports_first_is_kept_or_refused(
    load_module: Loader, every_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import recorder`` inside the body, then ``recorder.record(i)``, which rebinds its global
    ``last``: where the import happens in a worker, the loop is refused, naming the module and
    the global; where it happens in the program's process, ``last`` is the plain loop's 99."""
    name = _helper(tmp_path, monkeypatch)
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            # One chunk: a worker's later chunk would see the module among the program's.
            for i in ParaLoop(range(100), num_processes=2, chunksize=100):
                import {name}
                {name}.record(i)
    """)
    try:
        module.run()
    except paraloop.ParaLoopError as error:
        assert every_backend not in ("threads", "sequential"), error
        assert f"the global 'last' of the module {name}" in str(error), error
    else:
        assert not _copies(every_backend), "a worker's store was lost silently"
        assert sys.modules[name].last == 99


def test_a_module_the_body_imports_first_that_stores_nothing_runs(
    load_module: Loader, every_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function-level import of a module whose functions only read, or change a dict in place
    (``CACHE.setdefault``), binds nothing after its import: no refusal, the plain loop's result."""
    name = _helper(tmp_path, monkeypatch)
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            out = []
            for i in ParaLoop(range(60), num_processes=2, chunksize=10):
                import {name}
                out.append({name}.lookup(i))
            return out
    """)
    assert module.run() == [i * 2 for i in range(60)]


PACKAGE_INIT = """
COUNT = 3
"""

PACKAGE_SUB = """
from . import COUNT

def times(i):
    return i * COUNT
"""


def test_a_package_and_its_submodule_imported_first_are_no_store(
    load_module: Loader, every_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import pkg.sub`` in the body binds ``sub`` in ``pkg`` after ``pkg``'s import ran: the
    import system's binding, not a store of the program's."""
    package = f"paraloop_first_package_{next(_names)}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text(PACKAGE_INIT)
    (tmp_path / package / "sub.py").write_text(PACKAGE_SUB)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            out = []
            for i in ParaLoop(range(40), num_processes=2, chunksize=10):
                import {package}.sub
                out.append({package}.sub.times(i))
            return out
    """)
    assert module.run() == [i * 3 for i in range(40)]


LAZY_CACHE = """
_connection = None

def connection():
    global _connection
    if _connection is None:
        _connection = object()
    return 1
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_lazily_made_global_in_a_module_imported_first_gets_the_advice(
    load_module: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The common form of such a store, an object a function makes on first use and keeps in a
    global: refused in a worker as in a module imported at the top, with the advice to make it
    before the loop or once per worker."""
    name = _helper(tmp_path, monkeypatch, LAZY_CACHE)
    monkeypatch.setenv("PARALOOP_START_METHOD", method)
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            total = 0
            for i in ParaLoop(range(20), num_processes=2, chunksize=5):
                import {name}
                total += {name}.connection()
            return total
    """)
    with pytest.raises(paraloop.ParaLoopError) as caught:
        module.run()
    message = str(caught.value)
    assert f"the global '_connection' of the module {name}" in message
    assert "paraloop.per_worker(factory)" in message


def test_the_record_is_kept_only_while_a_chunk_watches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a chunk nothing is kept (the hook gives the ordinary loader); a chunk's end hands
    back the modules imported since it began, and the last chunk to end empties the record."""
    first = _helper(tmp_path, monkeypatch)
    importlib.import_module(first)
    assert first_imports.watchers == 0
    assert type(sys.modules[first].__loader__) is importlib.machinery.SourceFileLoader
    outer = first_imports.begin()
    second = _helper(tmp_path, monkeypatch)
    importlib.import_module(second)
    inner = first_imports.begin()
    third = _helper(tmp_path, monkeypatch)
    importlib.import_module(third)
    assert [namespace["__name__"] for namespace, _ in first_imports.end(inner)] == [third]
    found = first_imports.end(outer)
    assert [namespace["__name__"] for namespace, _ in found] == [second, third]
    assert found[0][1]["last"] is None and "record" in found[0][1]
    assert first_imports.watchers == 0
    assert first_imports.end(first_imports.begin()) == []


@pytest.mark.parametrize("method", START_METHODS)
def test_an_error_at_the_top_of_a_module_imported_first_in_a_worker_shows_its_line_alone(
    load_module: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The watch adds no frame of its own to the traceback of a module whose top level raises:
    the worker's traceback goes from the body's import straight to the module's line, as a
    plain import's does (the import system trims its own frames)."""
    name = _helper(tmp_path, monkeypatch, 'X = 1\n\nraise ValueError("at the top")\n')
    monkeypatch.setenv("PARALOOP_START_METHOD", method)
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(4), num_processes=2, chunksize=2):
                import {name}
    """)
    with pytest.raises(ValueError, match="at the top") as caught:
        module.run()
    remote = str(caught.value.__cause__)
    files = [line.strip() for line in remote.splitlines() if line.strip().startswith('File "')]
    assert len(files) == 2, remote
    assert files[0].startswith(f'File "{module.__file__}", line 6')
    assert files[1] == f'File "{tmp_path / name}.py", line 3, in <module>'


def test_a_watched_imports_spec_is_cpythons_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec of a module imported while a chunk watches is an ordinary ModuleSpec once imported."""
    name = _helper(tmp_path, monkeypatch)
    start = first_imports.begin()
    try:
        imported = importlib.import_module(name)
    finally:
        found = first_imports.end(start)
    assert [namespace for namespace, _ in found] == [vars(imported)]
    assert type(imported.__spec__) is importlib.machinery.ModuleSpec
    assert type(imported.__loader__) is importlib.machinery.SourceFileLoader
