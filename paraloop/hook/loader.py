"""The loader of source modules: plain ones load as usual, marked ones are rewritten.

The finder hands every ordinary source module it finds to a :class:`ParaLoopLoader`
whose mind is not made up (``marked=None``), so the import system searches once.  The
loader then decides from bytes that the import reads anyway, and lets CPython's own
``SourceLoader.get_code`` do everything else (pyc validation, hash-based pycs,
optimization levels, writing bytecode):

- the ordinary pyc is valid and does not contain ``b"ParaLoop"``: the module never
  names ``ParaLoop`` (the rewriter acts on nothing else), so the pyc is what a rewrite
  would give and it loads as usual, its source unread;
- otherwise the source is read (by CPython) and :meth:`source_to_code` looks for the
  marker in its leading comment block; a marked module's code comes from paraloop's
  cache when that was written for exactly these bytes, else from a fresh rewrite.

A module found plain gets CPython's own loader back on ``__loader__`` and
``__spec__.loader`` before its code runs, so it looks exactly as without paraloop.
Rewritten code is never written to the ordinary pyc (a plain import must never load
it): it lives under paraloop's own cache tag (see :mod:`.cache`).
"""

from __future__ import annotations

import _imp
import importlib.machinery
import os
import sys
from _weakref import ref  # the weakref module would be one more import for every program
from types import ModuleType

from .. import log
from ..errors import ParaLoopError
from . import cache
from .marker import HEAD_BYTES, has_marker, marker_in_head

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, ast and logging cost every program that imports paraloop
    from importlib.machinery import ModuleSpec
    from types import CodeType
    from typing import Any

__all__ = ["ParaLoopLoader", "compile_rewritten"]


def compile_rewritten(
    source: bytes | str,
    path: str,
    optimize: int = -1,
    pytest_config: Any = None,
    next_loader: Any = None,
) -> CodeType:
    """Compile ``source`` with its ParaLoop loops rewritten.

    A syntax error in the user's code comes straight from the parser; an
    unsupported loop raises :class:`~paraloop.UnsupportedLoopError`.  With
    ``pytest_config`` (a test module pytest also rewrites), pytest's assertion rewrite
    follows paraloop's, so asserts in loop bodies explain themselves too.  With
    ``next_loader`` (the loader typeguard's import hook gave the module), that loader's
    ``source_to_code`` compiles the rewritten tree, instrumenting it as it would the
    module's own (the loop bodies paraloop made are checked too).
    """
    import ast
    import importlib.util

    from .rewriter import rewrite

    tree = ast.parse(source, path)
    text = importlib.util.decode_source(source) if isinstance(source, bytes) else source
    count = rewrite(tree, path, text.splitlines())
    log.debug("rewrote %d ParaLoop loop(s) in %s", count, path)
    if pytest_config is not None:
        from _pytest.assertion.rewrite import rewrite_asserts

        data = source if isinstance(source, bytes) else source.encode("utf-8")
        rewrite_asserts(tree, data, path, pytest_config)
    try:
        if next_loader is not None:
            code: CodeType = next_loader.source_to_code(tree, path)
            return code
        return compile(tree, path, "exec", dont_inherit=True, optimize=optimize)
    except (SyntaxError, ValueError) as error:
        # The user's own code may be what the compiler refuses ('break'
        # outside a loop passes the parser): then report that, unchanged.
        compile(source, path, "exec", dont_inherit=True, optimize=optimize)
        raise ParaLoopError(
            f"{path}: paraloop rewrote this module into code that does not compile ({error}). "
            "This is a bug in paraloop; please report it with the output of "
            f"'python -m paraloop --show {path}'"
        ) from error


# CPython's get_data and get_code, called directly (super() makes an object at every call, and this runs
# for every module imported).
_read = importlib.machinery.SourceFileLoader.get_data
_get_code = importlib.machinery.SourceFileLoader.get_code


class _Marked(Exception):
    """Raised through CPython's ``get_code`` when the module turns out to be marked."""


class ParaLoopLoader(importlib.machinery.SourceFileLoader):
    """A source loader that rewrites ParaLoop loops of marked modules.

    ``marked``: True rewrites whatever the marker says (``python -m paraloop``, a marked
    test module pytest also rewrites); None decides at load time (every module the
    finder hands over), giving ``plain`` (CPython's loader the finder found) back to
    modules without the marker.  ``cached``: the module's ordinary pyc path, when known.
    ``next_loader``: the loader of another import hook (typeguard's) that compiles the
    rewritten tree.
    """

    # Defaults on the class: the finder makes one of these for every source module imported,
    # and each attribute set in __init__ is a cost every import pays.
    pytest_config: Any = None  # the pytest that also rewrites this module's asserts, if any
    plain: Any = None
    cached: str | None = None  # the ordinary pyc's path, if the finder knew it
    next_loader: Any = None  # typeguard's loader, when its hook instruments this module too
    _deciding = False
    _source: bytes | None = None
    # The source's stat as CPython's get_code took it (before reading the source).
    _stat: os.stat_result | None = None
    # Code from paraloop's cache, found valid from that stat alone.
    _code: CodeType | None = None
    # The module made for this loader (one loaded by hand is not in sys.modules).
    _module: ref[ModuleType] | None = None

    def __init__(
        self,
        fullname: str,
        path: str,
        pytest_config: Any = None,
        *,
        marked: bool | None = True,
        plain: Any = None,
        cached: str | None = None,
        next_loader: Any = None,
    ) -> None:
        # FileLoader.__init__'s two attributes, without its call.
        self.name = fullname
        self.path = path
        self.marked = marked
        if plain is not None:
            self.plain = plain
        if cached is not None:
            self.cached = cached
        if pytest_config is not None:
            self.pytest_config = pytest_config
        if next_loader is not None:
            self.next_loader = next_loader

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        # What the import system makes when a loader returns None, made here so that get_code
        # knows the module.  (Not exec_module: a frame of paraloop's would then stand in the
        # traceback of every error raised while any module runs its top level.)
        module = ModuleType(spec.name)
        self._module = ref(module)
        return module

    def get_code(self, fullname: str) -> CodeType:
        if not self.marked:
            # CPython's own path; get_data and source_to_code below decide about the marker.
            self._deciding = self.marked is None
            try:
                code = _get_code(self, fullname)
            except _Marked:
                code = None
            finally:
                self._deciding = False
            if code is not None:
                plain = self.plain
                if plain is not None:
                    # Found plain and being imported (not runpy asking for code): CPython's loader
                    # shows on it, as without paraloop.
                    made = self._module() if self._module is not None else None
                    module = made if made is not None else sys.modules.get(fullname)
                    spec = getattr(module, "__spec__", None)
                    if (
                        module is not None
                        and spec is not None
                        and getattr(module, "__loader__", None) is self
                    ):
                        module.__loader__ = spec.loader = plain
                return code
        code, cached_at = self._rewritten()
        made = self._module() if self._module is not None else None
        module = made if made is not None else sys.modules.get(fullname)
        spec = getattr(module, "__spec__", None)
        if module is not None and spec is not None and getattr(module, "__loader__", None) is self:
            # Being imported (not runpy asking for code): show where its code came from.
            spec.cached = cached_at
            setattr(module, "__cached__", cached_at)  # noqa: B010 - not in ModuleType's stubs
        return code

    def path_stats(self, path: str) -> dict[str, Any]:
        # What SourceFileLoader.path_stats does, keeping the stat: it validates paraloop's cache.
        stat = self._stat = os.stat(path)
        return {"mtime": stat.st_mtime, "size": stat.st_size}

    def get_data(self, path: str) -> bytes:
        if not (self._deciding and path.endswith(".pyc")):
            return _read(self, path)
        try:
            data = _read(self, path)
        except OSError:
            # No ordinary pyc (a marked module never has one): paraloop's cache, if valid for
            # this stat and written for a source that carried the marker, settles it unread.
            if self.marked is None and self._stat is not None:
                entry = cache.load(cache.beside(path))
                if entry is not None and entry.marked and entry.fresh(self._stat):
                    self._code = entry.code()
                    if self._code is not None:
                        self.marked = True
                        raise _Marked from None
            raise
        # get_code read the module's ordinary pyc (the only .pyc it reads) and is about to use
        # it.  Code that never names ParaLoop (or a reserved __paraloop name) is the same
        # rewritten or not: only then is the marker worth looking for.
        if (b"ParaLoop" in data or b"__paraloop" in data) and has_marker(self.path):
            self.marked = True
            raise _Marked
        return data

    def source_to_code(self, data: Any, path: Any, *, _optimize: int = -1) -> CodeType:  # type: ignore[override]
        if self._deciding and self.marked is None:
            source = data if isinstance(data, bytes) else str(data).encode("utf-8")
            self.marked = marker_in_head(source[:HEAD_BYTES])
            if self.marked:
                self._source = source
                raise _Marked
        if self.marked:
            return compile_rewritten(data, path, _optimize, self.pytest_config, self.next_loader)
        return super().source_to_code(data, path, _optimize=_optimize)

    def _rewritten(self) -> tuple[CodeType, str | None]:
        """The rewritten code, from paraloop's cache when it was written for this source."""
        path = self.path
        cached_at = cache.beside(self.cached) if self.cached else cache.cache_path(path)
        code, self._code = self._code, None
        if code is not None:
            return self._loaded(code, path), cached_at
        # Taken before the source is read: a change in between then makes the cache look stale.
        stat, self._stat = self._stat, None
        if stat is None:
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
        source, self._source = self._source, None
        both = self.pytest_config is not None or self.next_loader is not None
        entry = None if both else cache.load(cached_at)
        if entry is not None and stat is not None and entry.fresh(stat):
            if (code := entry.code()) is not None:
                return self._loaded(code, path), cached_at
        if source is None:
            source = self.get_data(path)
        if both:
            # Both rewrites: not cached, since pytest's depends on its configuration (and pytest
            # does not cache a test module it did not rewrite alone either), typeguard's on its
            # version (typeguard caches under a tag of its own).
            rewritten = compile_rewritten(source, path, -1, self.pytest_config, self.next_loader)
            return rewritten, cache.cache_path(path)
        code = cache.read(cached_at, entry, source, stat)
        if code is not None:
            return self._loaded(code, path), cached_at
        code = compile_rewritten(source, path)
        cache.write(cached_at, None, source, code, stat)
        return code, cached_at

    @staticmethod
    def _loaded(code: CodeType, path: str) -> CodeType:
        log.debug("loaded rewritten %s from its cache", path)
        # The project may have moved since the cache was written: as the
        # interpreter does for its own bytecode, record the current path.
        _imp._fix_co_filename(code, path)  # type: ignore[attr-defined]
        return code
