"""The import hook as a user sees it: which modules are rewritten, caching, tracebacks, pytest."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import linecache
import os
import subprocess
import sys
import textwrap
import threading
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

import pytest

import paraloop
import paraloop.hook.cache
import paraloop.hook.loader
from paraloop import ParaLoopWarning, UnsupportedLoopError
from paraloop.errors import RemoteTraceback
from paraloop.hook import ParaLoopFinder
from paraloop.hook.loader import ParaLoopLoader

pytest_plugins = ["pytester"]

MARK = "# paraloop: enable\n"

# Module names must not look like test files (test_*.py, *_test.py): pytest's
# assertion rewriter would claim them.
_numbers = itertools.count()


# Helpers.


def unique_name(kind: str = "mod") -> str:
    """A module name no other test (or earlier run in this process) uses."""
    return f"paraloop_hooktest_{kind}_{os.getpid()}_{next(_numbers)}"


def write(path: Path, source: str | bytes) -> Path:
    """Write ``source`` (text is dedented) to ``path`` and tell the import system about it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = source if isinstance(source, bytes) else textwrap.dedent(source).encode("utf-8")
    path.write_bytes(data)
    importlib.invalidate_caches()
    return path


def line_of(path: Path, fragment: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``fragment``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in {path}")


def import_rewritten(name: str) -> ModuleType:
    """Import ``name``, failing if any of its ParaLoop loops ran sequentially (not rewritten)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParaLoopWarning)
        module = importlib.import_module(name)
    assert isinstance(module.__spec__.loader, ParaLoopLoader)
    return module


def import_plain(name: str) -> ModuleType:
    """Import ``name``, checking it was loaded as usual and its one ParaLoop loop warned once."""
    with pytest.warns(ParaLoopWarning) as record:
        module = importlib.import_module(name)
    assert [w.category for w in record] == [ParaLoopWarning]
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
    return module


def forget(*names: str) -> None:
    """Remove modules (and their submodules) from sys.modules, so the next import is fresh."""
    for loaded in list(sys.modules):
        if any(loaded == name or loaded.startswith(name + ".") for name in names):
            del sys.modules[loaded]


def marked(body: str) -> str:
    """``body`` (dedented) with the marker line on top."""
    return MARK + textwrap.dedent(body)


def sum_module(stop: int = 100, start: int = 0) -> str:
    """A marked module that sums range(stop) onto ``start`` with a ParaLoop loop."""
    return marked(f"""\
        from paraloop import ParaLoop, Variable, aggregation_strategies
        total = Variable({start}, aggregation_strategy=aggregation_strategies.Sum)
        for i in ParaLoop(range({stop}), num_processes=2):
            total += i
    """)


class CompileSpy:
    """Counts calls of paraloop.hook.loader.compile_rewritten and delegates to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = paraloop.hook.loader.compile_rewritten
        monkeypatch.setattr(paraloop.hook.loader, "compile_rewritten", self)

    def __call__(self, *args: Any, **kwargs: Any) -> CodeType:
        self.calls += 1
        return self._real(*args, **kwargs)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Put tmp_path on sys.path; the test appends the names it imports, removed afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []
    yield names
    forget(*names)
    importlib.invalidate_caches()


@pytest.fixture
def bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this test write bytecode (the environment sets PYTHONDONTWRITEBYTECODE)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


@pytest.fixture
def reinstall() -> Iterator[None]:
    """Whatever the test does to the hook, it is installed again afterwards."""
    try:
        yield
    finally:
        paraloop.install()


# 1. Marked modules run their loops in worker processes.


def test_marked_module_loop_runs_in_worker_processes(tmp_path: Path, modules: list[str]) -> None:
    """A marked module is loaded by ParaLoopLoader and its loop body runs in other processes."""
    name = unique_name()
    modules.append(name)
    source = marked("""\
        import os
        from paraloop import ParaLoop, Variable, aggregation_strategies
        pids = Variable(set(), aggregation_strategy=aggregation_strategies.Union)
        for i in ParaLoop(range(40), num_processes=2, chunksize=1):
            sum(range(2000))
            pids.add(os.getpid())
    """)
    write(tmp_path / f"{name}.py", source)
    module = import_rewritten(name)
    assert module.pids.value
    assert os.getpid() not in module.pids.value


# 2. Unmarked modules are untouched.


def test_unmarked_module_is_loaded_exactly_as_without_paraloop(tmp_path: Path, modules: list[str]) -> None:
    """An unmarked module gets the ordinary loader and code; its loop warns once and runs sequentially."""
    name = unique_name()
    modules.append(name)
    source = """\
        import os
        from paraloop import ParaLoop, Variable, aggregation_strategies
        total = Variable(5, aggregation_strategy=aggregation_strategies.Sum)
        pids = Variable(set(), aggregation_strategy=aggregation_strategies.Union)
        for i in ParaLoop(range(100), num_processes=2):
            total += i
            pids.add(os.getpid())
    """
    path = write(tmp_path / f"{name}.py", source)
    module = import_plain(name)
    assert module.total.value == 5 + 4950
    assert module.pids.value == {os.getpid()}
    loader = module.__spec__.loader
    assert loader.get_code(name) == compile(path.read_bytes(), str(path), "exec", dont_inherit=True)


# 3. Where the marker counts.


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(
            '"""Docstring text that quotes the marker:\n# paraloop: enable\n"""\n', id="in-docstring"
        ),
        pytest.param('x = "# paraloop: enable"\n', id="in-string"),
        pytest.param("import os\n# paraloop: enable\n", id="after-first-statement"),
        pytest.param("# paraloop: enable\n# paraloop: disable\n", id="with-disable"),
        pytest.param("# paraloop: disable\n# paraloop: enable\n", id="after-disable"),
    ],
)
def test_marker_that_does_not_count_leaves_module_plain(
    tmp_path: Path, modules: list[str], head: str
) -> None:
    """A marker in a string, after the first statement, or next to a disable does not rewrite."""
    name = unique_name()
    modules.append(name)
    write(tmp_path / f"{name}.py", head + sum_module(100).removeprefix(MARK))
    module = import_plain(name)
    assert module.total.value == 4950


def test_marker_after_docstring_and_comments_rewrites(tmp_path: Path, modules: list[str]) -> None:
    """A marker comment after the module docstring (still before any statement) rewrites."""
    name = unique_name()
    modules.append(name)
    write(
        tmp_path / f"{name}.py",
        '#!/usr/bin/env python\n"""The docstring."""\n\n# a comment\n' + sum_module(100),
    )
    module = import_rewritten(name)
    assert module.__doc__ == "The docstring."
    assert module.total.value == 4950


# 4. Line endings and encodings.


def test_crlf_source_is_rewritten(tmp_path: Path, modules: list[str]) -> None:
    """A module with CRLF line endings is rewritten and computes the right result."""
    name = unique_name()
    modules.append(name)
    source = sum_module(100, start=7).replace("\n", "\r\n").encode("ascii")
    assert b"\r\n" in source
    write(tmp_path / f"{name}.py", source)
    module = import_rewritten(name)
    assert module.total.value == 7 + 4950


def test_latin1_source_with_coding_cookie_is_rewritten(tmp_path: Path, modules: list[str]) -> None:
    """A latin-1 module with a coding cookie keeps its non-ASCII literals through the rewrite."""
    name = unique_name()
    modules.append(name)
    source = (
        "# -*- coding: latin-1 -*-\n"
        + MARK
        + "from paraloop import ParaLoop, Variable, aggregation_strategies\n"
        "text = Variable('\u00bb', aggregation_strategy=aggregation_strategies.Concatenate)\n"
        "for i in ParaLoop(range(6), num_processes=2, chunksize=1):\n"
        "    text += '\u00e9' if i % 2 else '\u00e0'\n"
    ).encode("latin-1")
    assert "\u00e9".encode("latin-1") in source
    write(tmp_path / f"{name}.py", source)
    module = import_rewritten(name)
    assert module.text.value == "\u00bb" + "\u00e0\u00e9" * 3


# 5. The bytecode cache.


def test_cache_file_is_written_at_cache_path(tmp_path: Path, modules: list[str], bytecode: None) -> None:
    """With bytecode writing on, importing a marked module writes exactly its paraloop cache file."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    import_rewritten(name)
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None
    assert "paraloop" in os.path.basename(cached)
    assert sorted(os.listdir(tmp_path / "__pycache__")) == [os.path.basename(cached)]
    assert os.path.dirname(cached) == str(tmp_path / "__pycache__")


def test_cache_file_is_no_more_readable_than_its_source(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """A 0600 module's rewritten bytecode is 0600 too: other local users cannot read its constants."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10) + "API_KEY = 'secret'\n")
    path.chmod(0o600)
    import_rewritten(name)
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None
    assert os.stat(cached).st_mode & 0o777 == 0o600


def test_cache_write_does_not_follow_a_planted_link(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """A symlink planted at the temporary file's name is not written through: the cache is skipped."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    temporary = f"{cached}.{os.getpid()}.{threading.get_ident()}.tmp"
    os.symlink(victim, temporary)
    assert import_rewritten(name).total.value == 45
    assert victim.read_text() == "untouched"
    assert not os.path.exists(cached)


def test_second_import_uses_the_cache(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh import of an unchanged marked module loads the cached code without rewriting."""
    name = unique_name()
    modules.append(name)
    write(tmp_path / f"{name}.py", sum_module(10))
    spy = CompileSpy(monkeypatch)
    assert import_rewritten(name).total.value == 45
    assert spy.calls == 1
    forget(name)
    importlib.invalidate_caches()
    assert import_rewritten(name).total.value == 45
    assert spy.calls == 1


def test_same_size_edit_is_seen_through_the_cache(tmp_path: Path, modules: list[str], bytecode: None) -> None:
    """Editing the source (even keeping its size and mtime tick) gives the new behaviour."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    assert import_rewritten(name).total.value == 45
    before = path.stat()
    forget(name)
    write(path, sum_module(20))
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert import_rewritten(name).total.value == 190


class SourceReads:
    """Counts the opens of one source file (audit 'open' events) until the test ends."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        global _audit_installed
        self.path = str(path)
        self.paths: list[str] = []
        if not _audit_installed:
            sys.addaudithook(_record_open)
            _audit_installed = True
        monkeypatch.setattr(sys.modules[__name__], "_opened", self.paths)

    @property
    def count(self) -> int:
        return self.paths.count(self.path)


def _age(path: Path, seconds: float) -> None:
    """Set the file's modification time ``seconds`` back, as a file edited that long ago."""
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - int(seconds * 1e9)))


def test_a_cache_is_validated_from_the_sources_stat_alone(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As CPython validates a pyc: a marked module last changed well before its cache was written
    loads from the cache with one read, of the cache file; its source is not read again."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    _age(path, 10)
    assert import_rewritten(name).total.value == 45
    forget(name)
    importlib.invalidate_caches()
    reads = SourceReads(monkeypatch, path)
    spy = CompileSpy(monkeypatch)
    module = import_rewritten(name)
    assert module.total.value == 45
    assert (reads.count, spy.calls) == (0, 0)
    assert module.__cached__ == paraloop.hook.cache.cache_path(str(path))


def test_a_racy_cache_is_checked_by_hash_and_renewed_once_the_source_is_old(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module written just before its cache might change again within the file system's clock
    tick: its cache is validated by the source's hash (see the same-size test above).  Once the
    source is old, the cache is written again with its time, and from then on the stat suffices."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    assert import_rewritten(name).total.value == 45  # cache written within a second of the source
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None
    entry = paraloop.hook.cache.load(cached)
    assert entry is not None and not entry.fresh(path.stat())
    _age(path, 10)  # the same bytes, a time older than the cache: racy no more
    forget(name)
    reads = SourceReads(monkeypatch, path)
    spy = CompileSpy(monkeypatch)
    assert import_rewritten(name).total.value == 45
    assert (reads.count, spy.calls) == (1, 0)  # checked by hash, not rewritten; the cache renewed
    entry = paraloop.hook.cache.load(cached)
    assert entry is not None and entry.fresh(path.stat())
    forget(name)
    assert import_rewritten(name).total.value == 45
    assert (reads.count, spy.calls) == (1, 0)


def test_a_cache_file_of_the_earlier_layout_is_not_used(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache file written by a paraloop of the same version before the layout changed (magic
    number, "PLOP", the source's hash, then the code) is rewritten, not misread."""
    import marshal

    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    _age(path, 10)
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    stale = compile("class total:\n    value = 'stale'\n", str(path), "exec")
    key = paraloop.hook.cache._key(path.read_bytes())
    Path(cached).write_bytes(importlib.util.MAGIC_NUMBER + b"PLOP" + key + marshal.dumps(stale))
    spy = CompileSpy(monkeypatch)
    assert import_rewritten(name).total.value == 45
    assert spy.calls == 1


def test_cache_is_not_reused_after_a_version_change(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache written under another paraloop version tag is not used."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    spy = CompileSpy(monkeypatch)
    import_rewritten(name)
    old = paraloop.hook.cache.cache_path(str(path))
    assert old is not None and os.path.exists(old)
    monkeypatch.setattr(paraloop.hook.cache, "TAG", paraloop.hook.cache.TAG + "-next")
    forget(name)
    importlib.invalidate_caches()
    assert import_rewritten(name).total.value == 45
    assert spy.calls == 2
    new = paraloop.hook.cache.cache_path(str(path))
    assert new is not None and new != old and os.path.exists(new)


def test_cached_module_moved_elsewhere_reports_its_new_path(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module moved with its __pycache__ names its new path in tracebacks, as plain modules do."""
    name = unique_name()
    modules.append(name)
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    source = marked("""\
        from paraloop import ParaLoop

        def fail():
            for i in ParaLoop(range(3), backend="sequential"):
                raise ValueError(i)  # the failing line
    """)
    write(old_dir / f"{name}.py", source)
    monkeypatch.syspath_prepend(str(old_dir))
    import_rewritten(name)
    forget(name)
    old_dir.rename(new_dir)
    monkeypatch.syspath_prepend(str(new_dir))
    importlib.invalidate_caches()
    module = import_rewritten(name)
    path = new_dir / f"{name}.py"
    assert module.__file__ == str(path)
    with pytest.raises(ValueError) as caught:
        module.fail()
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert (frames[-1].filename, frames[-1].lineno) == (str(path), line_of(path, "# the failing line"))


@pytest.mark.parametrize("age", [0, 10])
def test_plain_import_never_reads_a_paraloop_cache_file(
    tmp_path: Path, modules: list[str], bytecode: None, age: int
) -> None:
    """An unmarked module ignores a valid paraloop-tagged cache file next to it, one written
    just now (checked by hash) or for a source ``age`` seconds old (valid from the stat alone,
    as one ``python -m paraloop`` writes for an unmarked script): only a cache written for a
    source that carried the marker makes an import rewritten."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", "origin = 'source'\n")
    _age(path, age)
    planted = compile("origin = 'paraloop cache'\n", str(path), "exec", dont_inherit=True)
    cached = paraloop.hook.cache.cache_path(str(path))
    paraloop.hook.cache.write(cached, str(path), path.read_bytes(), planted)
    assert cached is not None and os.path.exists(cached)
    entry = paraloop.hook.cache.load(cached)
    assert entry is not None and not entry.marked
    assert entry.fresh(path.stat()) == (age > 0)
    module = importlib.import_module(name)
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
    assert module.origin == "source"


def test_cache_honours_pycache_prefix(
    tmp_path: Path, modules: list[str], bytecode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sys.pycache_prefix set, the cache file goes under the prefix, not beside the source."""
    name = unique_name()
    modules.append(name)
    prefix = tmp_path / "prefix"
    source_dir = tmp_path / "src"
    monkeypatch.syspath_prepend(str(source_dir))
    path = write(source_dir / f"{name}.py", sum_module(10))
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    assert import_rewritten(name).total.value == 45
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None and cached.startswith(str(prefix) + os.sep)
    assert os.path.isfile(cached)
    assert not (source_dir / "__pycache__").exists()


def test_unwritable_cache_directory_is_skipped(tmp_path: Path, modules: list[str], bytecode: None) -> None:
    """When __pycache__ cannot be written, the import still works and no cache file appears."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    pycache = tmp_path / "__pycache__"
    pycache.mkdir()
    pycache.chmod(0o555)
    if os.access(pycache, os.W_OK):
        # Running as root, where permissions do not stop writes: a regular
        # file named __pycache__ makes the cache directory impossible instead.
        pycache.chmod(0o755)
        pycache.rmdir()
        pycache.write_bytes(b"")
    try:
        assert import_rewritten(name).total.value == 45
        cached = paraloop.hook.cache.cache_path(str(path))
        assert cached is not None and not os.path.exists(cached)
        if pycache.is_dir():
            assert os.listdir(pycache) == []
    finally:
        if pycache.is_dir():
            pycache.chmod(0o755)


def test_dont_write_bytecode_writes_no_cache(
    tmp_path: Path, modules: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sys.dont_write_bytecode set, no cache file is written."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert import_rewritten(name).total.value == 45
    cached = paraloop.hook.cache.cache_path(str(path))
    assert cached is not None and not os.path.exists(cached)
    assert not (tmp_path / "__pycache__").exists()


# 6. Tracebacks.

RAISING = marked("""\
    from paraloop import ParaLoop
    for i in ParaLoop(range(20), num_processes=2, chunksize=1, backend={backend!r}):
        if i == 7:
            raise ValueError(f"bad {{i}}")  # the failing line
""")


def test_worker_traceback_points_at_user_file_and_line(tmp_path: Path, modules: list[str]) -> None:
    """An error in a worker is re-raised as itself, with the worker traceback naming the user's line."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", RAISING.format(backend="processes"))
    line = line_of(path, "# the failing line")
    with pytest.raises(ValueError) as caught:
        importlib.import_module(name)
    error = caught.value
    assert type(error) is ValueError and str(error) == "bad 7"
    assert isinstance(error.__cause__, RemoteTraceback)
    assert f'File "{path}", line {line}' in error.__cause__.text
    if sys.version_info >= (3, 11):
        assert any("iteration 7" in note for note in error.__notes__)


def test_sequential_traceback_has_user_frame(tmp_path: Path, modules: list[str]) -> None:
    """With backend="sequential", the traceback has a frame at the user's file and line."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", RAISING.format(backend="sequential"))
    line = line_of(path, "# the failing line")
    with pytest.raises(ValueError) as caught:
        importlib.import_module(name)
    assert str(caught.value) == "bad 7"
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert any(frame.filename == str(path) and frame.lineno == line for frame in frames)


# 7. Reload.


def test_reload_rewrites_again(tmp_path: Path, modules: list[str]) -> None:
    """importlib.reload of an edited marked module rewrites the new source."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    module = import_rewritten(name)
    assert module.total.value == 45
    write(path, sum_module(30))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParaLoopWarning)
        reloaded = importlib.reload(module)
    assert reloaded is module
    assert isinstance(module.__spec__.loader, ParaLoopLoader)
    assert module.total.value == 435


# 8. install / uninstall.


def test_uninstall_stops_rewriting(tmp_path: Path, modules: list[str], reinstall: None) -> None:
    """After paraloop.uninstall(), a marked module is imported plainly and its loop runs sequentially."""
    name = unique_name()
    modules.append(name)
    write(tmp_path / f"{name}.py", sum_module(100, start=1))
    paraloop.uninstall()
    assert not any(isinstance(finder, ParaLoopFinder) for finder in sys.meta_path)
    module = import_plain(name)
    assert module.total.value == 1 + 4950


def test_install_is_idempotent(reinstall: None) -> None:
    """paraloop.install() twice leaves exactly one finder, first on sys.meta_path."""
    paraloop.uninstall()
    paraloop.install()
    paraloop.install()
    finders = [finder for finder in sys.meta_path if isinstance(finder, ParaLoopFinder)]
    assert len(finders) == 1
    assert sys.meta_path[0] is finders[0]


# 9. Source and file names.


def test_module_file_and_source_are_the_original(tmp_path: Path, modules: list[str]) -> None:
    """__file__ is the real path; inspect and linecache show the original source lines."""
    name = unique_name()
    modules.append(name)
    function_source = textwrap.dedent("""\
        def total_of(n):
            total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
            for i in ParaLoop(range(n), num_processes=2):
                total += i  # body line
            return total.value
    """)
    source = MARK + "from paraloop import ParaLoop, Variable, aggregation_strategies\n\n\n" + function_source
    path = write(tmp_path / f"{name}.py", source)
    module = import_rewritten(name)
    assert module.__file__ == str(path)
    assert module.total_of(10) == 45
    assert inspect.getsource(module.total_of) == function_source
    assert inspect.getsourcefile(module.total_of) == str(path)
    assert inspect.getsource(module) == source
    line = line_of(path, "# body line")
    assert linecache.getline(str(path), line) == "        total += i  # body line\n"
    assert module.total_of.__code__.co_firstlineno == line_of(path, "def total_of")


# 10. Unsupported loops.


def test_unsupported_loop_raises_at_import(tmp_path: Path, modules: list[str]) -> None:
    """A yield in a ParaLoop body raises UnsupportedLoopError, a SyntaxError naming the file and line."""
    name = unique_name()
    modules.append(name)
    source = marked("""\
        from paraloop import ParaLoop

        def numbers():
            for i in ParaLoop(range(3), num_processes=2):
                yield i  # not allowed
    """)
    path = write(tmp_path / f"{name}.py", source)
    with pytest.raises(UnsupportedLoopError) as caught:
        importlib.import_module(name)
    error = caught.value
    assert isinstance(error, SyntaxError)
    assert error.filename == str(path)
    assert error.lineno == line_of(path, "# not allowed")
    assert name not in sys.modules


# 11. Packages.


def test_marked_package_and_submodule(tmp_path: Path, modules: list[str]) -> None:
    """A marked package __init__ and a marked submodule are both rewritten and importable."""
    package = unique_name("pkg")
    modules.append(package)
    directory = tmp_path / package
    write(directory / "__init__.py", sum_module(10))
    write(directory / "helper.py", "SCALE = 3\n")
    source = marked("""\
        from paraloop import ParaLoop, Variable, aggregation_strategies
        from .helper import SCALE
        scaled = Variable([], aggregation_strategy=aggregation_strategies.Concatenate)
        for i in ParaLoop(range(5), num_processes=2, chunksize=1):
            scaled.append(i * SCALE)
    """)
    write(directory / "sub.py", source)
    sub = import_rewritten(f"{package}.sub")
    parent = sys.modules[package]
    assert isinstance(parent.__spec__.loader, ParaLoopLoader)
    assert parent.total.value == 45
    assert list(parent.__path__) == [str(directory)]
    assert parent.__spec__.submodule_search_locations == [str(directory)]
    assert parent.__file__ == str(directory / "__init__.py")
    assert sub.scaled.value == [0, 3, 6, 9, 12]
    assert sub.__package__ == package
    assert type(sys.modules[f"{package}.helper"].__spec__.loader) is importlib.machinery.SourceFileLoader


# 12. pytest test modules.


def test_marked_pytest_module_runs_in_parallel(pytester: pytest.Pytester) -> None:
    """A marked test module collected by pytest has its loops rewritten and run in workers."""
    # pytest's assertion rewriter also claims test modules; a marked one gets paraloop's
    # rewrite and then pytest's (tests/test_pytest_plugin.py).  A conftest that imports
    # paraloop, as before the plugin, changes nothing.
    pytester.makeconftest("import paraloop\n")
    pytester.makepyfile(
        test_marked=marked("""\
            import os
            from paraloop import ParaLoop, Variable, aggregation_strategies

            def test_loop_runs_in_workers():
                assert type(__spec__.loader).__name__ == "ParaLoopLoader"
                pids = Variable(set(), aggregation_strategy=aggregation_strategies.Union)
                for i in ParaLoop(range(20), num_processes=2, chunksize=1):
                    pids.add(os.getpid())
                assert pids.value
                assert os.getpid() not in pids.value
        """)
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::paraloop.ParaLoopWarning", timeout=120
    )
    result.assert_outcomes(passed=1)
    assert "ParaLoopWarning" not in result.stdout.str()


# 13. What the hook costs other imports (the benchmarks' target: at most 5% on unmarked imports, W6).

_opened: list[str] | None = None
_audit_installed = False


class FilesOpened:
    """Records the paths under ``directory`` that the interpreter opens (audit 'open' events)."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.paths: list[str] = []

    def __enter__(self) -> list[str]:
        global _opened, _audit_installed
        if not _audit_installed:
            # An audit hook cannot be removed: one per process, recording only inside 'with'.
            sys.addaudithook(_record_open)
            _audit_installed = True
        _opened = self.paths
        return self.paths

    def __exit__(self, *exc: object) -> None:
        global _opened
        _opened = None
        self.paths[:] = [p for p in self.paths if p.startswith(self.directory)]


def _record_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened.append(args[0])


class CountingFinder:
    """A meta path finder after the path finder that counts how often each module is searched."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.searched.append(fullname)
        return None


def test_an_import_is_searched_once(tmp_path: Path, modules: list[str]) -> None:
    """Every finder after paraloop's is asked once per import, as without paraloop (a finder that
    asked them and then declined made the import system ask them all again)."""
    counting = CountingFinder()
    # Ahead of the path finder, so it sees every search paraloop's finder passes on.
    sys.meta_path.insert(1, counting)
    try:
        for kind in ("plain", "marked"):
            name = unique_name(kind)
            modules.append(name)
            write(tmp_path / f"{name}.py", sum_module(10) if kind == "marked" else "x = 1\n")
            importlib.import_module(name)
            assert counting.searched.count(name) == 1, kind
    finally:
        sys.meta_path.remove(counting)


def test_a_cached_plain_module_is_loaded_from_its_pyc_alone(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """With its pyc up to date, an unmarked module's source is not opened: the hook decides from
    the pyc, which the import reads anyway (CRAFT.md 1-2). A module that names ParaLoop without the
    marker has its head read, and its pyc is still used as is."""
    sources = ["x = 1\n", "import paraloop\nx = 1\n", "from paraloop import ParaLoop\nx = 1\n"]
    for source in sources:
        # The module names contain 'paraloop', as a project's paths may.
        name = unique_name()
        modules.append(name)
        path = write(tmp_path / f"{name}.py", source)
        importlib.import_module(name)
        pyc = importlib.util.cache_from_source(str(path))
        written = os.stat(pyc).st_mtime_ns
        forget(name)
        importlib.invalidate_caches()  # as in a new process: nothing remembered about the file
        with FilesOpened(tmp_path) as opened:
            module = importlib.import_module(name)
        assert module.x == 1
        if "ParaLoop" not in source:
            assert str(path) not in opened, opened
        assert pyc in opened
        assert os.stat(pyc).st_mtime_ns == written  # not compiled again
        assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
        assert module.__loader__ is module.__spec__.loader
        # The path finder's own loader, with nothing of paraloop's left on it.
        assert vars(module.__loader__) == {"name": name, "path": str(path)}
        assert module.__cached__ == pyc


def _edit(path: Path, source: str) -> None:
    """Rewrite ``path`` as an editor would: a later modification time (a pyc's stamp has whole
    seconds), the import system told."""
    before = path.stat().st_mtime_ns
    path.write_text(textwrap.dedent(source))
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
    importlib.invalidate_caches()


def test_a_plain_module_edited_to_carry_the_marker_is_rewritten(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """Its ordinary pyc (written while it was plain, without ParaLoop) is stale: CPython reads the
    source, whose head now carries the marker, so it is rewritten; and the other way round, a marked
    module edited to drop the marker loads as a plain one again."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", "x = 1\n")
    assert importlib.import_module(name).x == 1
    pyc = importlib.util.cache_from_source(str(path))
    assert os.path.exists(pyc)
    forget(name)
    _edit(path, sum_module(10))
    module = import_rewritten(name)
    assert module.total.value == 45
    assert module.__cached__ == paraloop.hook.cache.cache_path(str(path))
    forget(name)
    _edit(path, "x = 2\n")
    module = importlib.import_module(name)
    assert module.x == 2
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader


def test_importing_a_marked_module_writes_no_ordinary_pyc(
    tmp_path: Path, modules: list[str], bytecode: None, reinstall: None
) -> None:
    """CPython's get_code, which compiles a marked module's source through paraloop's loader, would
    write the rewritten code to the ordinary pyc; a plain import (without the hook) would then run
    rewritten code, so it is written only to paraloop's cache."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    assert import_rewritten(name).total.value == 45
    pyc = importlib.util.cache_from_source(str(path))
    assert not os.path.exists(pyc)
    assert os.path.exists(paraloop.hook.cache.cache_path(str(path)))
    forget(name)
    paraloop.uninstall()
    importlib.invalidate_caches()
    plain = import_plain(name)  # the plain pyc is compiled from the source now
    assert plain.total.value == 45
    assert "__paraloop_rt__" not in vars(plain)


def test_a_checked_hash_based_pyc_of_a_module_now_marked_is_rewritten(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """A checked hash-based pyc is validated against the source, which CPython reads: the source's
    head decides, so a module whose source gained the marker is rewritten."""
    import py_compile

    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", "x = 1\n")
    pyc = importlib.util.cache_from_source(str(path))
    py_compile.compile(str(path), pyc, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    _edit(path, sum_module(10))
    module = import_rewritten(name)
    assert module.total.value == 45


def test_a_marked_module_with_a_plain_pyc_is_rewritten(
    tmp_path: Path, modules: list[str], bytecode: None, reinstall: None
) -> None:
    """Imported once without the hook (a plain pyc is written), then with it: rewritten, and the
    plain pyc is neither used nor overwritten with rewritten code."""
    name = unique_name()
    modules.append(name)
    path = write(tmp_path / f"{name}.py", sum_module(10))
    paraloop.uninstall()
    import_plain(name)
    pyc = importlib.util.cache_from_source(str(path))
    plain = Path(pyc).read_bytes()
    forget(name)
    paraloop.install()
    importlib.invalidate_caches()
    module = import_rewritten(name)
    assert module.total.value == 45
    assert Path(pyc).read_bytes() == plain
    assert module.__cached__ == paraloop.hook.cache.cache_path(str(path))
    assert module.__spec__.cached == module.__cached__


def test_a_hash_based_pyc_of_a_plain_module_is_used(
    tmp_path: Path, modules: list[str], bytecode: None
) -> None:
    """Hash-based pycs (reproducible builds, distribution packages) load as CPython loads them."""
    import py_compile

    for mode in (py_compile.PycInvalidationMode.CHECKED_HASH, py_compile.PycInvalidationMode.UNCHECKED_HASH):
        name = unique_name()
        modules.append(name)
        path = write(tmp_path / f"{name}.py", "origin = 'source'\n")
        pyc = importlib.util.cache_from_source(str(path))
        py_compile.compile(str(path), pyc, invalidation_mode=mode)
        if mode is py_compile.PycInvalidationMode.UNCHECKED_HASH:
            # Unchecked: CPython trusts the pyc without looking at the source.
            planted = compile("origin = 'pyc'\n", str(path), "exec", dont_inherit=True)
            data = bytearray(Path(pyc).read_bytes()[:16])
            import marshal

            Path(pyc).write_bytes(bytes(data) + marshal.dumps(planted))
        module = importlib.import_module(name)
        expected = "pyc" if mode is py_compile.PycInvalidationMode.UNCHECKED_HASH else "source"
        assert module.origin == expected
        assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader


def test_a_module_another_meta_path_finder_serves_is_rewritten(tmp_path: Path, modules: list[str]) -> None:
    """Modules found by a finder after the path finder (setuptools' editable installs map names to
    files outside sys.path) are rewritten when marked and left alone when not."""
    directory = tmp_path / "elsewhere"
    plain, marked = unique_name("plain"), unique_name("marked")
    modules.extend([plain, marked])
    files = {
        plain: write(directory / f"{plain}.py", "x = 1\n"),
        marked: write(directory / f"{marked}.py", sum_module(10)),
    }

    class Editable:
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname in files:
                return importlib.util.spec_from_file_location(fullname, files[fullname])
            return None

    editable = Editable()
    sys.meta_path.append(editable)
    try:
        assert importlib.import_module(plain).x == 1
        assert type(sys.modules[plain].__spec__.loader) is importlib.machinery.SourceFileLoader
        assert import_rewritten(marked).total.value == 45
    finally:
        sys.meta_path.remove(editable)


def test_importing_paraloop_imports_neither_the_rewriter_nor_the_runtime() -> None:
    """'import paraloop' loads the import hook and nothing a program may not need (the rewriter,
    the runtime, typing, ast and logging wait for the first marked module or ParaLoop)."""
    program = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import paraloop\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
        "from paraloop import ParaLoop, Variable, aggregation_strategies, show\n"
        "print(ParaLoop.__module__, Variable.__module__, aggregation_strategies.Sum.__name__, show.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    added, names = result.stdout.splitlines()
    # What a program that never names ParaLoop must not pay for. (The standard library's small
    # modules importlib.util needs vary with the interpreter and with what site imported.)
    heavy = {
        "paraloop.hook.rewriter", "paraloop.runtime", "paraloop.loop", "paraloop.variable",
        "paraloop.aggregation_strategies", "paraloop.shared", "ast", "typing", "logging",
        "tokenize", "inspect", "dataclasses", "dill", "multiprocess", "secrets", "hmac",
    }  # fmt: skip
    assert heavy.isdisjoint(added.split()), added
    assert {m for m in added.split() if m.startswith("paraloop")} == {
        "paraloop", "paraloop._version", "paraloop.errors", "paraloop.first_imports", "paraloop.hook", "paraloop.hook.cache",
        "paraloop.hook.finder", "paraloop.hook.loader", "paraloop.hook.marker", "paraloop.log",
    }  # fmt: skip
    assert names == "paraloop.loop paraloop.variable Sum show"


def test_an_error_at_a_modules_top_level_shows_no_frame_of_paraloop(
    tmp_path: Path, modules: list[str]
) -> None:
    """Every module now loads through paraloop's loader: an exception its top level raises (plain
    or marked) must not show a frame of paraloop's between the importer and the module."""
    for source in ("x = 1\nraise ValueError('plain')\n", marked("x = 1\nraise ValueError('marked')\n")):
        name = unique_name()
        modules.append(name)
        write(tmp_path / f"{name}.py", source)
        with pytest.raises(ValueError) as caught:
            importlib.import_module(name)
        files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
        assert not any(f"{os.sep}paraloop{os.sep}" in file for file in files), files


def test_paraloops_own_modules_are_never_read_for_the_marker(bytecode: None) -> None:
    """Most of paraloop's modules name ParaLoop and mention "paraloop:" in their docstrings: the
    hook would read each one's head and run the tokenizer over it when paraloop.runtime is
    imported (about 2.5 ms, most of it compiling the tokenizer's expressions). They carry no
    marker."""
    program = (
        "import paraloop, os\n"
        "import paraloop.hook.loader as loader, paraloop.hook.finder as finder\n"
        "read = []\n"
        "def spy(path, _real=loader.has_marker):\n"
        "    read.append(path)\n"
        "    return _real(path)\n"
        "loader.has_marker = finder.has_marker = spy\n"
        "import paraloop.runtime\n"
        "package = os.path.dirname(paraloop.__file__)\n"
        "print(len(read), [p for p in read if p.startswith(package)])\n"
    )
    for _ in range(2):  # the second run from the pycs the first wrote
        result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split(" ", 1)[1].strip() == "[]", result.stdout
