"""The program's modules as ``sys.modules`` holds them, read without importing anything.

:func:`imported` gives a module once its import has finished: paraloop's log lines and its
process-state checks read logging, random and numpy only then (multiprocess, imported in a
thread during a loop's first iteration, imports logging and random, half made meanwhile).

``module_stores`` (the program's own modules, whose globals a loop may change) and
``native_threads`` (is an extension module of a package loaded?) both need the modules
beyond the standard library: :func:`beyond_stdlib` walks ``sys.modules`` once for both, and
again only once it changed (a loop's first chunk paid 0.1-0.15 ms for each walk of a few
hundred modules).  The walk skips whole top-level packages by name at a set lookup each (the
standard library is most of ``sys.modules``), once their top-level module proved to be the
standard library's (the program's own ``sched.py`` or ``calendar.py`` is the program's), and
reads each remaining module's ``__file__`` from its namespace (``getattr`` could run a module's
``__getattr__``, which may import on demand).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # paraloop.log imports this module for every program that imports paraloop
    from typing import Any

__all__ = ["STDLIB", "beyond_stdlib", "imported", "state"]

STDLIB: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ()))


def _walk() -> list[tuple[str, Any, str]]:
    """(name, module, file) of each module in ``sys.modules`` past the standard library and
    paraloop's own, whose namespace names a file (a string ``__file__``)."""
    found = []
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top == "paraloop" or (top in STDLIB and _standard(top)):
            continue
        filename = _file(module)
        if filename is not None:
            found.append((name, module, filename))
    return found


def _file(module: Any) -> str | None:
    try:
        filename = vars(module).get("__file__")
    except TypeError:
        return None  # not a module (sys.modules may hold anything)
    return filename if type(filename) is str else None


# Where the standard library's own modules are (os is one of them), with its extension modules.
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep if type(getattr(os, "__file__", None)) is str else None
_PACKAGES = ("site-packages", "dist-packages")
# By top-level name: (the id of the module judged, whether it is the standard library's).
_verdicts: dict[str, tuple[int, bool]] = {}


def _standard(top: str) -> bool:
    """Whether the top-level module ``top``, named like one of the standard library's, is the
    standard library's: built in, frozen, or a file of its directory (not of a package
    installed there).  Judged once per module object."""
    module = sys.modules.get(top)
    if module is None or _STDLIB_DIR is None:
        return True
    seen = _verdicts.get(top)
    if seen is not None and seen[0] == id(module):
        return seen[1]
    filename = _file(module)
    standard = filename is None or (
        filename.startswith(_STDLIB_DIR)
        and filename[len(_STDLIB_DIR) :].partition(os.sep)[0] not in _PACKAGES
    )
    _verdicts[top] = (id(module), standard)
    return standard


def state() -> tuple[int, Any, int]:
    """What changes when ``sys.modules`` does: its size and its last entry (a module added since,
    or one taken out and another put in, as tests and reloads do)."""
    modules = sys.modules
    last = next(reversed(modules), None) if modules else None
    return (len(modules), last, id(modules.get(last)) if last is not None else 0)


# The last walk: (state() then, what it found).
_walked: tuple[Any, list[tuple[str, Any, str]]] = (None, [])


def beyond_stdlib() -> list[tuple[str, Any, str]]:
    """(name, module, file) of the modules past the standard library and paraloop's own (which
    neither caller asks about: dozens, no extension among them), walked again only once
    ``sys.modules`` changed (see :func:`state`).  The list is shared: do not change it."""
    global _walked
    now = state()
    walked = _walked
    if walked[0] != now:
        walked = _walked = (now, _walk())
    return walked[1]


def imported(name: str) -> Any:
    """The module ``name`` if imported, not while a thread still imports it (its namespace half
    made), else None."""
    module = sys.modules.get(name)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module
