"""The ``sys.meta_path`` finder that hands source modules to the rewriting loader.

It asks the finders after it for the module, as the import system would, and hands
back what they found, so every import is searched once (a finder that declined would
make the import system ask them all again).  An ordinary source module gets a
:class:`ParaLoopLoader` that decides about the marker when it loads, from bytes the
import reads anyway, and gives plain modules CPython's loader back; everything else
(extension modules, zip imports, namespace packages, paraloop's own modules, pytest's
unmarked test modules, modules typeguard's import hook instruments that are not marked)
keeps the spec the later finders made.  A marked module that pytest's or typeguard's hook also claims gets
both treatments: paraloop's rewrite first, then theirs.  A module no finder knows gives ``None``, and
the import system goes on as it would have.
"""

from __future__ import annotations

import importlib.machinery
import sys
import warnings
from types import ModuleType

from .. import first_imports
from ..errors import ParaLoopWarning
from .cache import cache_path
from .loader import DecidingLoader, ParaLoopLoader
from .marker import has_marker, marker_in_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from typing import Any

__all__ = ["ParaLoopFinder"]

_SOURCE_LOADER = importlib.machinery.SourceFileLoader


def _pytest_config(loader: Any) -> Any:
    """The configuration of pytest's assertion rewriter, if ``loader`` is one."""
    if type(loader).__module__ != "_pytest.assertion.rewrite":
        return None
    return getattr(loader, "config", None)


def is_typeguard_loader(loader: Any) -> bool:
    """Whether ``loader`` is typeguard's (its import hook instruments the module)."""
    kind = type(loader)
    return kind.__module__ == "typeguard._importhook" and kind.__name__ == "TypeguardLoader"


class _WatchedSpec(importlib.machinery.ModuleSpec):
    """The spec of a module imported while a chunk watches for the modules it imports first (see
    :mod:`paraloop.first_imports`): once the module's top level ran, its bindings are kept.

    The import system marks the spec as no longer initializing right after the module's code ran
    (``_load_unlocked``, the same on Python 3.10 to 3.13), whether it raised or not: a loader's
    ``exec_module`` would be a frame of paraloop's in the traceback of an error the module's top
    level raises.  The spec is CPython's again afterwards.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "_initializing" and value is False:
            self.__class__ = importlib.machinery.ModuleSpec  # type: ignore[assignment]
            module = sys.modules.get(self.name)
            if module is None:
                return
            from .. import loaded_modules  # (a chunk watches: the runtime has imported it)

            # Read without running the module's code (a wrapper's __getattr__, see
            # loaded_modules.namespace).
            namespace = loaded_modules.namespace(module)
            if namespace is not None and namespace.get("__spec__") is self:
                first_imports.record(namespace)
            # A module that put a wrapper in its place (perhaps with a copy of its namespace):
            # its own namespace is where its functions store.
            own = loaded_modules.original(self.name, module)
            if own is not None and own is not namespace and own.get("__spec__") is self:
                first_imports.record(own)


class ParaLoopFinder:
    """Finds marked modules and gives them a :class:`ParaLoopLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        # The finders after this one, asked as the import system would (inline: this runs for
        # every import of the program).
        meta_path = sys.meta_path
        try:
            later = meta_path[meta_path.index(self) + 1 :]
        except ValueError:
            return None
        for finder in later:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec: ModuleSpec | None = find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        if first_imports.watchers:
            # A chunk watches for the modules it imports first (see paraloop.first_imports).
            if target is not None:
                first_imports.reloaded(vars(target))  # importlib.reload
            elif type(spec) is importlib.machinery.ModuleSpec:
                spec.__class__ = _WatchedSpec
        loader = spec.loader
        if type(loader) is _SOURCE_LOADER:
            # The path finder's: an ordinary source file (the first test, as the most common).
            # paraloop's own modules carry no marker, though most name ParaLoop and mention
            # "paraloop:" in their docstrings (which would have each one's head tokenized).
            if fullname[:8] == "paraloop" and fullname.partition(".")[0] == "paraloop":
                return spec
            # Whether it is marked is decided when it loads, from bytes the import reads anyway.
            # The loader becomes a DecidingLoader by a change of class (a new loader would be a
            # cost every import pays), and a plain module's turns back.
            loader.__class__ = DecidingLoader
            return spec
        origin = spec.origin
        if (
            not spec.has_location
            or not origin
            or not origin.endswith(".py")
            or fullname.partition(".")[0] == "paraloop"
        ):
            return spec
        if is_typeguard_loader(loader):
            # typeguard's import hook also claims this module: a marked one gets paraloop's
            # rewrite, then typeguard's instrumentation (its loader compiles the rewritten tree).
            if has_marker(origin):
                spec.loader = ParaLoopLoader(fullname, origin, next_loader=loader)
                spec.cached = cache_path(origin)
            return spec
        config = _pytest_config(loader)
        if config is not None:
            # pytest's assertion rewriter also claims test modules: a marked one gets both rewrites.
            if has_marker(origin):
                spec.loader = ParaLoopLoader(fullname, origin, config)
                spec.cached = cache_path(origin)
            return spec
        if loader is not None and type(loader).__name__ == "zipimporter":
            self._warn_if_marked_in_zip(fullname, loader)
        return spec

    @staticmethod
    def _warn_if_marked_in_zip(fullname: str, loader: Any) -> None:
        try:
            source = loader.get_source(fullname)
        except Exception:  # noqa: BLE001 - no source, nothing to warn about
            return
        if source and marker_in_head(source.encode("utf-8")[:16384]):
            warnings.warn(
                f"module {fullname!r} carries '# paraloop: enable' but is imported from a zip "
                "archive, which paraloop does not rewrite; its ParaLoop loops run sequentially",
                ParaLoopWarning,
                stacklevel=2,
            )

    def invalidate_caches(self) -> None:
        from .marker import clear_cache

        clear_cache()
