"""The progress bar of ``ParaLoop(..., progress=True)``: tqdm, the notebook widget in Jupyter."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from .errors import ParaLoopError

__all__ = ["open_bar"]


def open_bar(iterable: object, filename: str, line: int) -> Any:
    """A tqdm bar for a loop over ``iterable``; its total is ``len(iterable)`` where that exists."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ParaLoopError(
            f"{filename}, line {line}: progress=True needs tqdm; install it with "
            "'pip install paraloop[progress]' (or 'pip install tqdm')"
        ) from None
    total = len(iterable) if isinstance(iterable, Sized) else None
    return tqdm(total=total, unit="it", dynamic_ncols=True)
