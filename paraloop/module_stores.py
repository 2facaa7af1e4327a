"""Globals of the program's modules that an iteration rebinds, which a worker process would lose.

The rewriter refuses a body that spells such a store out (``helpers.last = i``).
An iteration can also rebind a module's global in other ways: a function of the
module that assigns its ``global``, ``setattr(helpers, "last", i)``,
``vars(helpers)[...]``, ``sys.modules[...]``, another name for the module.  In a
worker process (or a Dask worker) that rebinds the worker's copy of the module,
and the caller's module never sees it.  So a chunk that runs on copies takes
the bindings of the program's own modules before it runs (:func:`snapshot`),
and :func:`changed` names one it rebound; the loop then fails with a
ParaLoopError rather than lose the store.

A binding to a module (``import pkg.sub`` binds ``sub`` in ``pkg``) is not a
store of the program's.  Names starting with two underscores are the import
system's.  A global rebound to an equal number, string or other atom is no
change.  Modules of the interpreter's installation and paraloop's own are not
the program's (as :func:`paraloop.serialize.installed` tells).  Neither is ``__main__`` nor a
stand-in for a module the caller is importing: paraloop itself puts the classes and
functions that arrive by value there, while other threads of a worker may run iterations.
"""

from __future__ import annotations

import operator
import sys
import types
from typing import Any

from . import serialize

__all__ = ["changed", "snapshot"]

_ATOMS = (int, float, complex, str, bytes, bool, type(None))
# The script, under the names it has in the caller (``python -m paraloop`` keeps the module it
# runs under another key too) and in a worker.
_MAIN = ("__main__", "__mp_main__")

# The program's modules, found again when sys.modules grows: (its size then, the modules).
_found: tuple[int, list[types.ModuleType]] = (-1, [])

Snapshot = list[tuple[types.ModuleType, dict[str, Any]]]


def _programs_modules() -> list[types.ModuleType]:
    global _found
    count = len(sys.modules)
    if _found[0] != count:
        # What serialize.installed tells, as one C call per module (a loop's first chunk pays
        # for the scan of a few hundred modules).
        prefixes = tuple({prefix + "/" for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
        modules = []
        # Left out by name, at a set lookup each: the standard library's (most of sys.modules),
        # paraloop's own (dozens), the script.
        skipped = {*getattr(sys, "stdlib_module_names", ()), "paraloop", *_MAIN}
        for name, module in list(sys.modules.items()):
            if name.partition(".")[0] in skipped:
                continue
            try:
                # The namespace, not getattr: a module's __getattr__ may import on demand.
                filename = vars(module).get("__file__")
            except TypeError:
                continue  # not a module (sys.modules may hold anything)
            if (
                type(filename) is str
                and not filename.startswith(prefixes)
                and vars(module).get("__name__") not in _MAIN
                and serialize._stand_ins.get(name) is not module
            ):
                modules.append(module)
        _found = (count, modules)
    return _found[1]


def snapshot() -> Snapshot:
    """The bindings of the program's modules now (a shallow copy of each namespace)."""
    return [(module, dict(vars(module))) for module in _programs_modules()]


def changed(before: Snapshot) -> tuple[str, str] | None:
    """(module, global) of a binding the program rebound since ``before``, or None."""
    for module, old in before:
        now = vars(module)
        if now.keys() == old.keys() and all(map(operator.is_, now.values(), old.values())):
            continue  # the usual case, in C
        for name, value in now.items():
            if name.startswith("__") or isinstance(value, types.ModuleType):
                continue
            previous = old.get(name, _UNBOUND)
            if previous is value:
                continue
            if type(value) in _ATOMS and type(previous) is type(value) and previous == value:
                continue
            return module.__name__, name
    return None


_UNBOUND = object()
