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
    """Put paraloop's finder first on ``sys.meta_path`` (once; ``import paraloop`` does it)."""
    if not installed():
        sys.meta_path.insert(0, ParaLoopFinder())


def uninstall() -> None:
    """Remove paraloop's finder; modules imported afterwards are not rewritten."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, ParaLoopFinder)]
    clear_cache()
