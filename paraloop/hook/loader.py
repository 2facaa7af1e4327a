"""The loaders of source modules: plain ones load as usual, marked ones are rewritten.

The finder hands every ordinary source module's loader to a :class:`DecidingLoader` (by
changing its class), so the import system searches once.  CPython's own
``SourceLoader.get_code`` then runs unchanged (pyc validation, hash-based pycs,
optimization levels, writing bytecode), and the loader decides from bytes it reads anyway:

- a valid ordinary pyc that does not contain ``b"ParaLoop"``: the module never names
  ``ParaLoop`` (the rewriter acts on nothing else), so the pyc is what a rewrite would
  give; it loads as usual, its source unread, and the loader turns back into CPython's;
- a pyc that names ParaLoop: the source's head is read for the marker;
- a stale pyc, a checked hash-based one, or none: CPython reads the source, and its
  leading comment block decides;
- a marked module: its code comes from paraloop's cache when that was written for exactly
  these bytes (handed to CPython as a timestamp pyc), else from a fresh rewrite.

Rewritten code is never written to the ordinary pyc (a plain import must never load it):
it lives under paraloop's own cache tag (see :mod:`.cache`).
"""

from __future__ import annotations

import _imp
import _io
import importlib.machinery
import importlib.util
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

__all__ = ["DecidingLoader", "ParaLoopLoader", "compile_rewritten"]


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
        failed = error
    # The user's own code may be what the compiler refuses ('break' outside a loop passes the
    # parser): then report that, unchanged, and alone (outside the except: not "during handling
    # of" the rewritten code's error).
    compile(source, path, "exec", dont_inherit=True, optimize=optimize)
    raise ParaLoopError(
        f"{path}: paraloop rewrote this module into code that does not compile ({failed}). "
        "This is a bug in paraloop; please report it with the output of "
        f"'python -m paraloop --show {path}'"
    ) from failed


_SOURCE_LOADER = importlib.machinery.SourceFileLoader
# CPython's get_data, called directly (super() makes an object at every call, and this runs for
# every module imported).
_read = _SOURCE_LOADER.get_data
_open_code = _io.open_code
# The start of a timestamp-based pyc of this interpreter: its magic number and zero flags.
_TIMESTAMP_PYC = importlib.util.MAGIC_NUMBER + b"\0\0\0\0"
_UNCHECKED_HASH_PYC = importlib.util.MAGIC_NUMBER + b"\1\0\0\0"
_CHECKED_HASH_PYC = importlib.util.MAGIC_NUMBER + b"\3\0\0\0"


def _stamp(stat: os.stat_result) -> int:
    """What a timestamp pyc of the source with ``stat`` holds after its flags (its mtime and size,
    as CPython writes them), read as one little-endian number."""
    return (int(stat.st_mtime) & 0xFFFFFFFF) | (stat.st_size & 0xFFFFFFFF) << 32


class ParaLoopLoader(importlib.machinery.SourceFileLoader):
    """A source loader that rewrites the ParaLoop loops of a marked module.

    ``python -m paraloop`` and the finder (for a marked test module that pytest's or
    typeguard's hook also claims) make these; every other source module is handed to a
    :class:`DecidingLoader`, which becomes one of these once it finds the marker.
    ``cached``: the module's ordinary pyc path, when known.  ``next_loader``: the loader
    of another import hook (typeguard's) that compiles the rewritten tree.
    """

    # Defaults on the class: a DecidingLoader is CPython's loader with its class changed, and
    # has none of the attributes __init__ sets.
    marked: bool | None = True  # None: not decided yet (a DecidingLoader's)
    pytest_config: Any = None  # the pytest that also rewrites this module's asserts, if any
    cached: str | None = None  # the ordinary pyc's path, if the finder knew it
    next_loader: Any = None  # typeguard's loader, when its hook instruments this module too
    # The source's stat as CPython's get_code took it (before reading the source).
    _stat: os.stat_result | None = None
    # The module made for this loader (one loaded by hand is not in sys.modules).
    _module: ref[ModuleType] | None = None

    def __init__(
        self,
        fullname: str,
        path: str,
        pytest_config: Any = None,
        *,
        cached: str | None = None,
        next_loader: Any = None,
    ) -> None:
        # FileLoader.__init__'s two attributes, without its call.
        self.name = fullname
        self.path = path
        if cached is not None:
            self.cached = cached
        if pytest_config is not None:
            self.pytest_config = pytest_config
        if next_loader is not None:
            self.next_loader = next_loader

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        # What the import system makes when a loader returns None, made here so that the loader
        # knows the module.  (Not exec_module: a frame of paraloop's would then stand in the
        # traceback of every error raised while any module runs its top level.)
        module = ModuleType(spec.name)
        self._module = ref(module)
        return module

    def get_code(self, fullname: str) -> CodeType:
        code, cached_at = self._rewritten()
        self._show_cached(fullname, cached_at)
        return code

    def path_stats(self, path: str) -> dict[str, Any]:
        # What SourceFileLoader.path_stats does, keeping the stat: it validates paraloop's cache.
        stat = self._stat = os.stat(path)
        return {"mtime": stat.st_mtime, "size": stat.st_size}

    def source_to_code(self, data: Any, path: Any, *, _optimize: int = -1) -> CodeType:  # type: ignore[override]
        if self.marked is None and not marker_in_head(_bytes(data)[:HEAD_BYTES]):
            return super().source_to_code(data, path, _optimize=_optimize)
        if self.pytest_config is not None or self.next_loader is not None or path != self.path:
            return compile_rewritten(data, path, _optimize, self.pytest_config, self.next_loader)
        # A DecidingLoader that found the marker as CPython's get_code read the source: paraloop's
        # cache, when written for exactly these bytes, else a rewrite, cached.
        cached_at = self._cache_at()
        code = self._cached_or_rewritten(
            _bytes(data), cached_at, cache.load(cached_at), self._stat, _optimize
        )
        self._show_cached(self.name, cached_at)
        return code

    def set_data(self, path: str, data: bytes, *, _mode: int = 0o666) -> None:  # type: ignore[override]
        # CPython's get_code, reading a marked module's source, would write the rewritten code to
        # the ordinary pyc, which a plain import would then load: it lives in paraloop's cache.
        return

    def _show_cached(self, fullname: str, cached_at: str | None) -> None:
        """Shows on the module being imported (not when runpy asks for code) where its code came from."""
        made = self._module() if self._module is not None else None
        module = made if made is not None else sys.modules.get(fullname)
        spec = getattr(module, "__spec__", None)
        if module is not None and spec is not None and getattr(module, "__loader__", None) is self:
            spec.cached = cached_at
            setattr(module, "__cached__", cached_at)  # noqa: B010 - not in ModuleType's stubs

    def _rewritten(self) -> tuple[CodeType, str | None]:
        """The rewritten code, from paraloop's cache when it was written for this source."""
        path = self.path
        cached_at = self._cache_at()
        # Taken before the source is read: a change in between then makes the cache look stale.
        stat, self._stat = self._stat, None
        if stat is None:
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
        both = self.pytest_config is not None or self.next_loader is not None
        entry = None if both else cache.load(cached_at)
        if entry is not None and stat is not None and entry.fresh(stat):
            if (code := entry.code()) is not None:
                return self._loaded(code, path), cached_at
        source = self.get_data(path)
        if both:
            # Both rewrites: not cached, since pytest's depends on its configuration (and pytest
            # does not cache a test module it did not rewrite alone either), typeguard's on its
            # version (typeguard caches under a tag of its own).
            rewritten = compile_rewritten(source, path, -1, self.pytest_config, self.next_loader)
            return rewritten, cache.cache_path(path)
        return self._cached_or_rewritten(source, cached_at, entry, stat), cached_at

    def _cache_at(self) -> str | None:
        """Where paraloop caches this module's rewritten code."""
        return cache.beside(self.cached) if self.cached else cache.cache_path(self.path)

    def _cached_or_rewritten(
        self,
        source: bytes,
        cached_at: str | None,
        entry: cache.Entry | None,
        stat: os.stat_result | None,
        optimize: int = -1,
    ) -> CodeType:
        """The code of paraloop's cache ``entry`` (at ``cached_at``) if written for exactly these
        bytes, else their rewrite, cached there."""
        code = cache.read(cached_at, entry, source, stat)
        if code is not None:
            return self._loaded(code, self.path)
        code = compile_rewritten(source, self.path, optimize)
        cache.write(cached_at, None, source, code, stat)
        return code

    @staticmethod
    def _loaded(code: CodeType, path: str) -> CodeType:
        log.debug("loaded rewritten %s from its cache", path)
        # The project may have moved since the cache was written: as the
        # interpreter does for its own bytecode, record the current path.
        _imp._fix_co_filename(code, path)  # type: ignore[attr-defined]
        return code


class DecidingLoader(ParaLoopLoader):
    """CPython's loader of a source module, taken over by the finder until it knows whether the
    module is marked.

    The finder changes the class of the loader the path finder made (no new object: every
    import pays for what happens here).  CPython's own ``get_code`` runs unchanged, and this
    decides from the bytes it reads (see the module's docstring): a plain module's loader turns
    back into CPython's before its code runs, a marked one's into a :class:`ParaLoopLoader`.
    """

    marked = None
    get_code = _SOURCE_LOADER.get_code  # type: ignore[assignment]
    # (create_module stays ParaLoopLoader's: a marked module loaded by hand from its spec, in
    # no sys.modules, shows paraloop's cache as its __cached__ through it.)

    def get_data(self, path: str) -> bytes:
        if path[-4:] != ".pyc":
            data = _read(self, path)
            if path == self.path:
                # CPython reads the source (no pyc, a stale one, a hash-based one to check): its
                # head decides.
                if marker_in_head(data[:HEAD_BYTES]):
                    self.__class__ = ParaLoopLoader  # type: ignore[assignment]
                else:
                    self._plain()
            return data
        stat = self._stat
        if stat is None:
            # Not CPython's get_code (which takes the source's stat first): a call by hand, which
            # gets the file's bytes, as from CPython's loader.
            return _read(self, path)
        try:
            # What CPython's get_data does for a source loader, without its frame and checks.
            with _open_code(path) as handle:
                data = handle.read()
        except OSError:
            # No ordinary pyc (a marked module never has one): paraloop's cache, valid for this
            # stat and written for a source that carried the marker, settles it unread.
            if (code := self._from_cache(path, stat)) is not None:
                return code
            raise
        # Code that never names ParaLoop is the same rewritten or not: only then is the marker
        # worth looking for.  (A marked module with a plain pyc that uses a name reserved for
        # paraloop, "__paraloop...", but no ParaLoop loop, loads from that pyc, as written, and
        # is not refused: a second search of every module's pyc would cost every import.)
        # (find, not "in": bytes.__contains__ first tries the needle as an integer, and makes and
        # drops a TypeError for every module.)
        if data.find(b"ParaLoop") >= 0 and has_marker(self.path):
            if (code := self._from_cache(path, stat)) is not None:
                return code
            # CPython then reads the source, and ParaLoopLoader.source_to_code rewrites it.
            self.__class__ = ParaLoopLoader  # type: ignore[assignment]
            raise FileNotFoundError(path)
        head = data[:8]
        if head == _TIMESTAMP_PYC:
            if int.from_bytes(data[8:16], "little") != _stamp(stat):
                return data  # stale: CPython reads the source next, and its head decides
        elif not (
            (head == _UNCHECKED_HASH_PYC and _imp.check_hash_based_pycs != "always")
            or (head == _CHECKED_HASH_PYC and _imp.check_hash_based_pycs == "never")
        ):
            return data  # CPython checks it against the source, whose head then decides
        self._plain()  # CPython uses this pyc: not marked
        return data

    def _from_cache(self, path: str, stat: os.stat_result) -> bytes | None:
        """Paraloop's cache beside the ordinary pyc ``path``, if written for a marked source with
        ``stat``, as a timestamp pyc that CPython's get_code takes (it checks the stamp again,
        unmarshals and records the module's current path, as for its own bytecode)."""
        cached_at = cache.beside(path)
        entry = cache.load(cached_at)
        if entry is None or not entry.marked or not entry.fresh(stat):
            return None
        self.__class__ = ParaLoopLoader  # type: ignore[assignment]
        self._show_cached(self.name, cached_at)
        log.debug("loaded rewritten %s from its cache", self.path)
        return _TIMESTAMP_PYC + _stamp(stat).to_bytes(8, "little") + entry.marshalled()

    def _plain(self) -> None:
        """Not marked: CPython's loader again, the very object the path finder made."""
        self.__class__ = _SOURCE_LOADER  # type: ignore[assignment]
        state = self.__dict__
        state.pop("_stat", None)
        state.pop("_module", None)


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else str(data).encode("utf-8")
