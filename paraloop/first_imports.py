"""Modules imported for the first time while a chunk runs on copies, with their globals as their
import left them.

:mod:`paraloop.module_stores` takes the program's modules' bindings before a chunk runs, and
names one the chunk rebound.  A module the body imports for the first time in a worker (an
``import`` inside the body, or inside a function it calls) was not among them, and a global
that a function of it rebound there was lost, silently.  So while such a chunk runs, paraloop's
import hook hands each source module it finds here once its top level ran (:func:`record`, from
the module's spec, see ``hook.finder._WatchedSpec``), and the chunk's end compares those too.
Modules are kept by their namespaces: a module that put a wrapper in its place in
``sys.modules`` is kept by its own (see :func:`paraloop.loaded_modules.original`).

Only while a chunk watches (:func:`begin` to :func:`end`); thread-safe: a worker's lanes run
chunks in threads.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["begin", "end", "record", "reloaded", "watchers"]

_lock = _thread.allocate_lock()
# How many chunks of this process watch now (read by the import hook, without the lock).
watchers = 0
# The namespaces of the modules imported since the oldest watching chunk began, each with a copy
# as its import left it (None: a reload of the module).
_recorded: list[tuple[dict[str, Any], dict[str, Any] | None]] = []


def begin() -> int:
    """A chunk starts watching: where its modules start in the record."""
    global watchers
    with _lock:
        watchers += 1
        return len(_recorded)


def end(start: int) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """A chunk that began at ``start`` stops watching: the namespaces of the modules imported
    since, each with a copy as its import left it (None for a module reloaded)."""
    global watchers
    with _lock:
        found = _recorded[start:]
        watchers = max(0, watchers - 1)
        if not watchers:
            _recorded.clear()  # no chunk watches: the old namespaces are nobody's
        return found


def reloaded(namespace: dict[str, Any]) -> None:
    """``importlib.reload`` ran on the module of ``namespace``, if a chunk watches: its end names
    the module (a worker reloads its own copy, and the program's keeps what it had)."""
    with _lock:
        if watchers:
            _recorded.append((namespace, None))


def record(namespace: dict[str, Any]) -> None:
    """A module's top level ran, leaving ``namespace``: keep a copy, if a chunk watches."""
    with _lock:
        if watchers:
            _recorded.append((namespace, dict(namespace)))
