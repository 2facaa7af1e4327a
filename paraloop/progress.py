"""The progress bar of ``ParaLoop(..., progress=True)``: tqdm, the notebook widget in Jupyter.

``progress={"desc": "files", "unit": "file"}`` passes tqdm's keywords on; they win over
paraloop's own (the total from ``len()``, ``unit="it"``, ``dynamic_ncols=True``).  The
runtime closes the bar however the loop ends: at its end, after ``break``, an exception,
a timeout or Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ParaLoopError
from .items import length

__all__ = ["close_bar", "open_bar"]


def open_bar(iterable: object, filename: str, line: int, options: Mapping[str, Any] | None = None) -> Any:
    """A tqdm bar for a loop over ``iterable``; its total is ``len(iterable)`` where that exists.

    ``options`` are tqdm's keywords (``desc``, ``unit``, ``file``, ``leave``, ...).
    """
    if options and options.get("disable") is True:
        # tqdm's own idiom, progress={"disable": not verbose}: no bar, so tqdm is not needed.
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        shown = "progress=True" if not options else f"progress={dict(options)!r}"
        raise ParaLoopError(
            f"{filename}, line {line}: {shown} needs tqdm; install it with "
            "'pip install paraloop[progress]' (or 'pip install tqdm')"
        ) from None
    settings: dict[str, Any] = {"unit": "it", "dynamic_ncols": True}
    if "total" not in (options or {}):
        settings["total"] = length(iterable)
    settings.update(options or {})
    instances = getattr(tqdm, "_instances", None)
    before = set(instances) if instances is not None else set()
    bar = None
    try:
        bar = _without_monitor(tqdm)(**settings)
        # A value tqdm takes but cannot use (mininterval="1", file=an int) fails at the first
        # update: found here, before the loop runs, rather than in the middle of it.
        bar.update(0)
    except Exception as error:  # noqa: BLE001 - whatever tqdm raised for the user's keywords
        _forget(tqdm, bar, before)
        # str() of a KeyError (tqdm's TqdmKeyError) quotes its message: show the message itself.
        why = (
            error.args[0]
            if isinstance(error, KeyError) and error.args
            else f"{type(error).__name__}: {error}"
        )
        raise ParaLoopError(
            f"{filename}, line {line}: tqdm refused progress={dict(options or {})!r} ({why}); "
            "give the keywords tqdm takes, with values of their types, e.g. "
            "progress={'desc': 'files', 'unit': 'file'}"
        ) from None
    return bar


_quiet: dict[type, type] = {}


def _without_monitor(tqdm: type) -> type:
    """``tqdm`` without its monitor thread (``monitor_interval = 0``), for paraloop's bars.

    tqdm starts a thread with its first bar, which wakes every 10 seconds to tune bars that stalled:
    paraloop's bar is updated as chunks end, and a thread beside the program as its first loop
    starts its workers keeps the fork server from being forked from the program (see
    backends/processes/fork_server.py), whose workers then hashed strings their own way."""
    quiet = _quiet.get(tqdm)
    if quiet is None:
        # The lock made now on tqdm's class: made on first use by the subclass, it would be the
        # subclass's own, beside the one of the program's bars (and tqdm's bookkeeping through
        # the base class, paraloop's cleanup of a refused bar included, would find none).
        tqdm.get_lock()  # type: ignore[attr-defined]
        quiet = _quiet[tqdm] = type(
            tqdm.__name__, (tqdm,), {"monitor_interval": 0, "__module__": tqdm.__module__}
        )
    return quiet


def _forget(tqdm: Any, bar: Any, before: set[Any]) -> None:
    """Unregister a bar tqdm refused halfway: tqdm registers a bar before it draws it, and one
    left registered pushes every later bar a line down."""
    instances = getattr(tqdm, "_instances", None)
    if instances is None:
        return
    for made in [*([bar] if bar is not None else []), *(set(instances) - before)]:
        try:
            made.disable = True  # close() then neither draws nor writes to a broken file
            tqdm._decr_instances(made)
        except Exception:  # noqa: BLE001 - best effort on tqdm's internals
            pass


def close_bar(bar: Any) -> None:
    """Close a bar (a second close does nothing), whatever the loop's end."""
    if bar is not None:
        bar.close()
