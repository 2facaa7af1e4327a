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
:mod:`paraloop.first_imports`).  A module that put a wrapper in its place in ``sys.modules``
(a deprecation shim, a lazy module) is compared by its own namespace, where its functions
store, as :func:`paraloop.loaded_modules.original` finds it.

The script (``__main__``) and a stand-in for a module the caller is importing are compared by a
rule of their own (:func:`_arrival`): paraloop itself puts the classes and functions that
arrive by value there, while other threads of a worker may run iterations.  So are the globals
of the script's functions that arrive by value, which are their own (see
``serialize._function``): a ``global`` statement of such a function stores there.
"""

from __future__ import annotations

import operator
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from . import first_imports, loaded_modules, serialize

__all__ = ["Snapshot", "changed", "snapshot"]

# The script, under the names it has in the caller (``python -m paraloop`` keeps the module it
# runs under another key too) and in a worker.
_MAIN = ("__main__", "__mp_main__")

# The program's modules, found again when sys.modules changes: (what it was then, the modules,
# the scripts, the modules' namespaces with those of modules that put a wrapper in their place).
_found: tuple[Any, list[types.ModuleType], list[types.ModuleType], list[dict[str, Any]]] = (None, [], [], [])

_SKIPPED = frozenset({"paraloop", "multiprocess", "_multiprocess", "dill", *_MAIN})

# (namespace, a copy of it then)
Namespaces = list[tuple[dict[str, Any], dict[str, Any]]]
# The program's modules' bindings before a chunk, the script's, where its first imports start (see
# paraloop.first_imports), and which of the modules' namespaces were being imported then.
Snapshot = tuple[Namespaces, Namespaces, int, frozenset[int]]


def _programs_modules() -> list[types.ModuleType]:
    _found_modules()
    return _found[1]


def _found_modules() -> tuple[list[dict[str, Any]], list[types.ModuleType]]:
    """The namespaces of the program's modules, and its scripts (see :func:`_arrival`)."""
    global _found
    state = loaded_modules.state()
    if _found[0] != state:
        # What serialize.installed tells, as one C call per module (a loop's first chunk pays
        # for the scan of a few hundred modules).
        prefixes = _installation()
        modules = []
        scripts: dict[int, types.ModuleType] = {}  # a script may be under two names
        # Left out by name (the standard library's, most of sys.modules, already is): paraloop's
        # own (dozens), and paraloop's own dependencies, wherever installed: multiprocess may be
        # importing in a thread meanwhile (see background_import), its namespace half made.
        for name, module, filename in loaded_modules.beyond_stdlib():
            top = name.partition(".")[0]
            if filename.startswith(prefixes) or (top in _SKIPPED and name not in _MAIN):
                continue
            if (
                name in _MAIN
                or (loaded_modules.namespace(module) or {}).get("__name__") in _MAIN
                or serialize._stand_ins.get(name) is module
            ):
                scripts[id(module)] = module
            else:
                modules.append(module)
        for module in serialize._stand_ins.values():  # no __file__: not in the walk
            scripts[id(module)] = module
        # (Each has one: the walk read its file there.)
        namespaces: list[dict[str, Any]] = list(map(loaded_modules.namespace, modules))  # type: ignore[arg-type]
        # Modules that put a wrapper in their place: their own namespaces, where they store.
        for name, value in loaded_modules.replaced():
            namespace = loaded_modules.original(name, value)
            if namespace is not None and _programs(namespace, prefixes):
                namespaces.append(namespace)
        _found = (state, modules, list(scripts.values()), namespaces)
    return _found[3], _found[2]


def _installation() -> tuple[str, ...]:
    return tuple({prefix + "/" for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)})


def _programs(namespace: dict[str, Any], prefixes: tuple[str, ...]) -> bool:
    """Whether ``namespace`` is a module of the program's, by its file, as the walk tells: not the
    installation's, nor paraloop's or its dependencies'."""
    origin = namespace.get("__file__")
    name = namespace.get("__name__")
    return (
        type(origin) is str
        and not origin.startswith(prefixes)
        and type(name) is str
        and name.partition(".")[0] not in _SKIPPED
    )


def snapshot(scripts: bool = True, arguments: Iterable[Any] = ()) -> Snapshot:
    """The bindings of the program's modules now (a shallow copy of each namespace); modules
    imported from now on until :func:`changed` are kept as their imports leave them.
    ``scripts``: the script's too (not in a process other programs' tasks share, a Dask
    worker's, where theirs arrive meanwhile); and the namespaces of the script's functions that
    arrived by value among ``arguments`` (the body's captured values), each its own."""
    start = first_imports.begin()
    namespaces, script_modules = _found_modules()
    return (
        [(namespace, dict(namespace)) for namespace in namespaces],
        # (A stand-in for a module the caller is importing has that import's spec, initializing.)
        ([(vars(module), dict(vars(module))) for module in script_modules] if scripts else [])
        + [(namespace, dict(namespace)) for namespace in _private_namespaces(arguments)],
        start,
        # Being imported: by another thread (a worker's lane), or by the caller when a fork copied
        # it (then for ever, in the worker).
        frozenset(
            id(namespace) for namespace in namespaces if loaded_modules.namespace_initializing(namespace)
        ),
    )


def changed(before: Snapshot) -> tuple[str, str | None] | None:
    """(module, global) of a binding the program rebound or deleted since ``before`` (or since
    the import of a module of the program imported meanwhile), (module, None) for a module
    reloaded meanwhile, or None."""
    bindings, scripts, start, importing = before
    imported = first_imports.end(start)
    if imported:
        programs = {id(namespace) for namespace in _found_modules()[0]}
        prefixes = _installation()
        late: Namespaces = []
        for namespace, old in imported:
            # (Not among them: the module of a wrapper that copied its namespace, in its place.)
            if id(namespace) in programs or _programs(namespace, prefixes):
                if old is None:
                    return namespace.get("__name__", "?"), None
                late.append((namespace, old))
        bindings = bindings + late
    for namespace, old in scripts:
        name = _rebound(namespace, old, _arrival)
        if name is not None:
            return namespace.get("__name__", "__main__"), name
    for namespace, old in bindings:
        if importing and id(namespace) in importing and not loaded_modules.namespace_initializing(namespace):
            # Another thread (a worker's lane) finished importing it meanwhile: what the chunk
            # saw was half made; the import's own record is compared (with the late ones).
            continue
        name = _rebound(namespace, old, _submodule)
        if name is not None:
            return namespace.get("__name__", "?"), name
    return None


def _rebound(
    now: dict[str, Any], old: dict[str, Any], ignored: Callable[[dict[str, Any], str, Any], bool]
) -> str | None:
    """A name of namespace ``now`` rebound, deleted or made since it was ``old``, or None; not a
    dunder, nor a binding ``ignored(now, name, value)`` tells is no store of the program's."""
    if now.keys() == old.keys() and all(map(operator.is_, now.values(), old.values())):
        return None  # the usual case, in C
    for name in old.keys() - now.keys():
        if not _dunder(name):
            return name
    for name, value in now.items():
        if _dunder(name) or ignored(now, name, value):
            continue
        previous = old.get(name, _UNBOUND)
        if previous is value or _same_atom(previous, value):
            continue
        return name
    return None


def _arrival(namespace: dict[str, Any], name: str, value: Any) -> bool:
    """In the script's namespace: paraloop's own names, and the script's functions, classes and
    modules that paraloop puts there as they arrive by value (a worker's lanes load them while
    other lanes run).  A global of the script that a function of it rebinds is any other."""
    return name.startswith("__paraloop") or isinstance(value, _ARRIVALS)


_ARRIVALS = (types.FunctionType, type, types.ModuleType)


def _private_namespaces(arguments: Iterable[Any]) -> list[dict[str, Any]]:
    """The globals of the functions among ``arguments`` (and of the functions those name) that
    are no module's namespace: a function of the script that arrived by value has globals of its
    own, where its ``global`` statements store."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()
    stack = [value for value in arguments if type(value) is types.FunctionType]
    while stack:
        namespace = stack.pop().__globals__
        if id(namespace) in seen:
            continue
        seen.add(id(namespace))
        module = sys.modules.get(namespace.get("__name__", ""))
        if module is not None and getattr(module, "__dict__", None) is namespace:
            continue  # a module's own, compared as the module
        found.append(namespace)
        stack.extend(value for value in namespace.values() if type(value) is types.FunctionType)
    return found


def _dunder(name: str) -> bool:
    # The import system's (__spec__, __loader__, __cached__...), not a name like __n.
    return len(name) > 4 and name[:2] == name[-2:] == "__"


def _submodule(namespace: dict[str, Any], name: str, value: Any) -> bool:
    """``import pkg.sub`` binds ``sub`` in ``pkg`` (whose ``namespace`` this is): the import
    system's binding, not a store; what ``sys.modules`` holds for it, which is the submodule or
    whatever it put in its place."""
    full = f"{namespace.get('__name__')}.{name}"
    if sys.modules.get(full) is value:
        return True
    if types.ModuleType not in type(value).__mro__:
        return False
    found = loaded_modules.namespace(value)
    return found is not None and found.get("__name__") == full


def _same_atom(previous: Any, value: Any) -> bool:
    """An equal number, string or the like: no change (but -0.0 is not 0.0)."""
    return type(value) in serialize.ATOMS and type(previous) is type(value) and repr(previous) == repr(value)


_UNBOUND = object()
