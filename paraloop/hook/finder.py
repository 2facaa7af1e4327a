"""The ``sys.meta_path`` finder that hands marked modules to the rewriting loader.

It asks the finders after it for the module, as the import system would, and
claims the result only when it is an ordinary source file that carries the
marker.  For anything else it returns ``None``, so the import system goes on
exactly as it would have without paraloop.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from ..errors import ParaLoopWarning
from .cache import cache_path
from .loader import ParaLoopLoader
from .marker import has_marker, marker_in_head

__all__ = ["ParaLoopFinder"]


def _takes_over(loader: Any) -> bool:
    if type(loader) is importlib.machinery.SourceFileLoader:
        return True
    # pytest's assertion rewriter also claims test modules: a marked one gets both rewrites.
    return _pytest_config(loader) is not None


def _pytest_config(loader: Any) -> Any:
    """The configuration of pytest's assertion rewriter, if ``loader`` is one."""
    if type(loader).__module__ != "_pytest.assertion.rewrite":
        return None
    return getattr(loader, "config", None)


class ParaLoopFinder:
    """Finds marked modules and gives them a :class:`ParaLoopLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        spec = self._spec_from_later_finders(fullname, path, target)
        if spec is None or not spec.has_location:
            return None
        origin = spec.origin
        if not origin or not origin.endswith(".py"):
            return None
        loader = spec.loader
        if not _takes_over(loader):
            if loader is not None and type(loader).__name__ == "zipimporter":
                self._warn_if_marked_in_zip(fullname, loader)
            return None
        if not has_marker(origin):
            return None
        rewritten = importlib.util.spec_from_file_location(
            fullname,
            origin,
            loader=ParaLoopLoader(fullname, origin, _pytest_config(loader)),
            submodule_search_locations=spec.submodule_search_locations,
        )
        if rewritten is not None:
            rewritten.cached = cache_path(origin)
        return rewritten

    def _spec_from_later_finders(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        meta_path = sys.meta_path
        try:
            position = meta_path.index(self)
        except ValueError:
            return None
        for finder in meta_path[position + 1 :]:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

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
