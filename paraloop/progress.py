"""The progress bar of ``ParaLoop(..., progress=True)``: tqdm, the notebook widget in Jupyter.

``progress={"desc": "files", "unit": "file"}`` passes tqdm's keywords on; they win over
paraloop's own (the total from ``len()``, ``unit="it"``, ``dynamic_ncols=True``).  The
runtime closes the bar however the loop ends: at its end, after ``break``, an exception,
a timeout or Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Any

from .errors import ParaLoopError

__all__ = ["close_bar", "open_bar"]


def open_bar(iterable: object, filename: str, line: int, options: Mapping[str, Any] | None = None) -> Any:
    """A tqdm bar for a loop over ``iterable``; its total is ``len(iterable)`` where that exists.

    ``options`` are tqdm's keywords (``desc``, ``unit``, ``file``, ``leave``, ...).
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ParaLoopError(
            f"{filename}, line {line}: progress=True needs tqdm; install it with "
            "'pip install paraloop[progress]' (or 'pip install tqdm')"
        ) from None
    settings: dict[str, Any] = {"unit": "it", "dynamic_ncols": True}
    if "total" not in (options or {}):
        settings["total"] = len(iterable) if isinstance(iterable, Sized) else None
    settings.update(options or {})
    try:
        return tqdm(**settings)
    except (KeyError, TypeError) as error:  # tqdm's TqdmKeyError is a KeyError
        # str() of a KeyError quotes its message: show the message itself.
        why = error.args[0] if error.args else type(error).__name__
        raise ParaLoopError(
            f"{filename}, line {line}: tqdm refused progress={dict(options or {})!r} ({why}); "
            "give the keywords tqdm takes, e.g. progress={'desc': 'files', 'unit': 'file'}"
        ) from None


def close_bar(bar: Any) -> None:
    """Close a bar (a second close does nothing), whatever the loop's end."""
    if bar is not None:
        bar.close()
