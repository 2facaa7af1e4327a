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

A submodule's binding (``import pkg.sub`` binds ``sub`` in ``pkg``) is not a
store of the program's, nor are dunder names (``__spec__``...).  A global rebound
to an equal number, string or other atom (by its repr: -0.0 is not 0.0) is no
change; a deleted one is.  Modules of the interpreter's installation and paraloop's own are not
the program's (as :func:`paraloop.serialize.installed` tells).  A module of the program that
the chunk imports for the first time is compared from the bindings its import made (see
:mod:`paraloop.first_imports`).  Neither is ``__main__`` nor a
stand-in for a module the caller is importing: paraloop itself puts the classes and
functions that arrive by value there, while other threads of a worker may run iterations.
"""

from __future__ import annotations

import operator
import sys
import types
from typing import Any

from . import first_imports, loaded_modules, serialize

__all__ = ["Snapshot", "changed", "snapshot"]

# The script, under the names it has in the caller (``python -m paraloop`` keeps the module it
# runs under another key too) and in a worker.
_MAIN = ("__main__", "__mp_main__")

# The program's modules, found again when sys.modules changes: (what it was then, the modules).
_found: tuple[Any, list[types.ModuleType]] = (None, [])

_SKIPPED = frozenset({"paraloop", "multiprocess", "_multiprocess", "dill", *_MAIN})

Bindings = list[tuple[types.ModuleType, dict[str, Any]]]
# The program's modules' bindings before a chunk, and where its first imports start (see
# paraloop.first_imports).
Snapshot = tuple[Bindings, int]


def _programs_modules() -> list[types.ModuleType]:
    global _found
    state = loaded_modules.state()
    if _found[0] != state:
        # What serialize.installed tells, as one C call per module (a loop's first chunk pays
        # for the scan of a few hundred modules).
        prefixes = tuple({prefix + "/" for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
        modules = []
        # Left out by name (the standard library's, most of sys.modules, already is): paraloop's
        # own (dozens), the script, and paraloop's own dependencies, wherever installed:
        # multiprocess may be importing in a thread meanwhile (see background_import), its
        # namespace half made.
        for name, module, filename in loaded_modules.beyond_stdlib():
            if (
                name.partition(".")[0] not in _SKIPPED
                and not filename.startswith(prefixes)
                and vars(module).get("__name__") not in _MAIN
                and serialize._stand_ins.get(name) is not module
            ):
                modules.append(module)
        _found = (state, modules)
    return _found[1]


def snapshot() -> Snapshot:
    """The bindings of the program's modules now (a shallow copy of each namespace); modules
    imported from now on until :func:`changed` are kept as their imports leave them."""
    start = first_imports.begin()
    return [(module, dict(vars(module))) for module in _programs_modules() if not _importing(module)], start


def changed(before: Snapshot) -> tuple[str, str | None] | None:
    """(module, global) of a binding the program rebound or deleted since ``before`` (or since
    the import of a module of the program imported meanwhile), (module, None) for a module
    reloaded meanwhile, or None."""
    bindings, start = before
    imported = first_imports.end(start)
    if imported:
        programs = {id(module) for module in _programs_modules()}
        late: Bindings = []
        for module, old in imported:
            if id(module) in programs:
                if old is None:
                    return module.__name__, None
                late.append((module, old))
        bindings = bindings + late
    for module, old in bindings:
        now = vars(module)
        if now.keys() == old.keys() and all(map(operator.is_, now.values(), old.values())):
            continue  # the usual case, in C
        for name in old.keys() - now.keys():
            if not _dunder(name):
                return module.__name__, name
        for name, value in now.items():
            if _dunder(name) or _submodule(module, name, value):
                continue
            previous = old.get(name, _UNBOUND)
            if previous is value or _same_atom(previous, value):
                continue
            return module.__name__, name
    return None


def _importing(module: types.ModuleType) -> bool:
    """Whether another thread (a worker's lane) is still importing ``module``: its namespace is
    half made, and the import's own record (see paraloop.first_imports) is compared instead."""
    return getattr(getattr(module, "__spec__", None), "_initializing", False) is True


def _dunder(name: str) -> bool:
    # The import system's (__spec__, __loader__, __cached__...), not a name like __n.
    return len(name) > 4 and name[:2] == name[-2:] == "__"


def _submodule(module: types.ModuleType, name: str, value: Any) -> bool:
    """``import pkg.sub`` binds ``sub`` in ``pkg``: the import system's binding, not a store."""
    return isinstance(value, types.ModuleType) and value.__name__ == f"{module.__name__}.{name}"


def _same_atom(previous: Any, value: Any) -> bool:
    """An equal number, string or the like: no change (but -0.0 is not 0.0)."""
    return type(value) in serialize.ATOMS and type(previous) is type(value) and repr(previous) == repr(value)


_UNBOUND = object()
