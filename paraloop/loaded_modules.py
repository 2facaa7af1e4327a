"""The program's modules as ``sys.modules`` holds them, read without importing anything.

:func:`imported` gives a module once its import has finished: paraloop's log lines and its
process-state checks read logging, random and numpy only then (multiprocess, imported in a
thread during a loop's first iteration, imports logging and random, half made meanwhile).

``module_stores`` (the program's own modules, whose globals a loop may change) and
``native_threads`` (is an extension module of a package loaded?) both need the modules
beyond the standard library: :func:`beyond_stdlib` walks ``sys.modules`` once for both, and
again only once it changed (a loop's first chunk paid 0.1-0.15 ms for each walk of a few
hundred modules).  The walk skips whole top-level packages by name at a set lookup each (the
standard library is most of ``sys.modules``), and reads each remaining module's ``__file__``
from its namespace (``getattr`` could run a module's ``__getattr__``, which may import on
demand).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # paraloop.log imports this module for every program that imports paraloop
    from collections.abc import Iterator
    from typing import Any

__all__ = ["STDLIB", "beyond_stdlib", "imported", "state", "with_files"]

STDLIB: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ()))


def with_files(skipped: frozenset[str] | set[str]) -> Iterator[tuple[str, Any, str]]:
    """(name, module, file) of each module in ``sys.modules`` whose top-level package is not in
    ``skipped`` and whose namespace names a file (a string ``__file__``)."""
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in skipped:
            continue
        try:
            filename = vars(module).get("__file__")
        except TypeError:
            continue  # not a module (sys.modules may hold anything)
        if type(filename) is str:
            yield name, module, filename


def state() -> tuple[int, Any, int]:
    """What changes when ``sys.modules`` does: its size and its last entry (a module added since,
    or one taken out and another put in, as tests and reloads do)."""
    modules = sys.modules
    last = next(reversed(modules), None) if modules else None
    return (len(modules), last, id(modules.get(last)) if last is not None else 0)


# Neither asks about paraloop's own modules (dozens, no extension among them).
_PAST = STDLIB | {"paraloop"}
# The last walk: (state() then, what it found).
_walked: tuple[Any, list[tuple[str, Any, str]]] = (None, [])


def beyond_stdlib() -> list[tuple[str, Any, str]]:
    """:func:`with_files` past the standard library and paraloop's own modules, walked again
    only once ``sys.modules`` changed (see :func:`state`).  The list is shared: do not change
    it."""
    global _walked
    now = state()
    walked = _walked
    if walked[0] != now:
        walked = _walked = (now, list(with_files(_PAST)))
    return walked[1]


def imported(name: str) -> Any:
    """The module ``name`` if imported, not while a thread still imports it (its namespace half
    made), else None."""
    module = sys.modules.get(name)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module
