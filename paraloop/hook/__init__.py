"""The import hook: a ``sys.meta_path`` finder, a loader, and the rewriter they use."""

from __future__ import annotations

import sys

from .finder import ParaLoopFinder
from .marker import clear_cache

__all__ = ["ParaLoopFinder", "install", "installed", "uninstall"]


def installed() -> bool:
    """Whether paraloop's finder is on ``sys.meta_path``."""
    return any(isinstance(finder, ParaLoopFinder) for finder in sys.meta_path)


def install() -> None:
    """Put paraloop's finder first on ``sys.meta_path`` (``import paraloop`` does it).

    Called again, it moves paraloop's finder back to the front: an import hook installed
    since (typeguard's ``install_import_hook``) sits ahead of it and takes marked modules
    away from it; behind paraloop's finder it composes with paraloop's rewrite.
    """
    finders = [finder for finder in sys.meta_path if isinstance(finder, ParaLoopFinder)]
    if finders and sys.meta_path[0] is finders[0]:
        return
    finder = finders[0] if finders else ParaLoopFinder()
    sys.meta_path[:] = [finder, *(f for f in sys.meta_path if not isinstance(f, ParaLoopFinder))]


def uninstall() -> None:
    """Remove paraloop's finder; modules imported afterwards are not rewritten."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, ParaLoopFinder)]
    clear_cache()
