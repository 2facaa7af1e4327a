"""Module globals in the workers as they were when the loop started.

A function of one of the user's own modules (not the script, not an installed package)
travels to a worker by name: the worker runs its own copy of the module, whose globals
hold what its import made (spawn, forkserver) or what the caller had when the worker was
forked.  A global the program set at run time (``MODEL = load()`` in ``main()``, ``SCALE =
1000`` between two loops) and that a function the body calls reads would be stale there,
and the loop's result wrong without a word.  So the caller sends, with each loop's job, the
current values of the globals the functions of the user's modules that the job reaches
may read, and a worker sets them in its copies of those modules before the loop's first
chunk.

What a job reaches: the body's own module, and, from the functions, classes, instances,
bound methods and partials the body captures or names, the modules that define them, and
the user's modules those modules name.  What is sent of such a module: its globals named by
the code of any reached module (attribute reads included: ``config.THRESHOLD`` names
``THRESHOLD``), except its own functions and classes, modules, dunder names, what comes
from installed packages, per-worker objects and what belongs to this process (an open
file, a lock: the worker keeps its own).  A value that cannot be pickled is not sent
either; the worker keeps its own.  Large numpy arrays go through shared memory, as a
captured array does; any other value is copied to each worker once per loop, as a value
the body names itself is.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
from collections.abc import Iterable
from typing import Any

from . import serialize

__all__ = ["Globals", "apply", "snapshot"]

#: Per module reached: its name, and (global name, pickled value) pairs; and the caller's pid.
Globals = tuple[int, tuple[tuple[str, tuple[tuple[str, bytes], ...]], ...]]

NONE: Globals = (0, ())


def snapshot(function: Any, values: Iterable[Any]) -> Globals:
    """The globals of the user's modules that the job of ``function`` (the body) with the
    captured ``values`` reaches, pickled for the workers (see the module's docstring)."""
    modules = _reached(function, values)
    if not modules:
        return NONE
    names: set[str] = set()
    for module in modules.values():
        names |= _names_read(module)
    sent = []
    for name, module in sorted(modules.items()):
        namespace = module.__dict__
        pairs = []
        for global_name in sorted(names & namespace.keys()):
            if global_name.startswith("__") and global_name.endswith("__"):
                continue
            value = namespace[global_name]
            if _kept_by_worker(value, module, global_name):
                continue
            data = serialize.dumps_global(value)
            if data is not None:
                pairs.append((global_name, data))
        if pairs:
            sent.append((name, tuple(pairs)))
    return (os.getpid(), tuple(sent)) if sent else NONE


def apply(sent: Globals) -> None:
    """In a worker: set the caller's globals (from :func:`snapshot`) in this process's modules.

    Not in the caller's own process (a Dask worker thread of an in-process cluster): its
    modules hold the originals."""
    pid, modules = sent
    if not modules or pid == os.getpid():
        return
    for name, pairs in modules:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the body may never need it
                continue
        namespace = module.__dict__
        for global_name, data in pairs:
            try:
                namespace[global_name] = serialize.loads(data)
            except Exception:  # noqa: BLE001 - the worker keeps its own, as before
                continue


def _user_module(name: Any) -> types.ModuleType | None:
    """The module ``name`` if it is one of the user's own that travels by name."""
    if not isinstance(name, str) or name == "__main__":
        return None
    module = sys.modules.get(name)
    if not isinstance(module, types.ModuleType) or getattr(module, "__file__", None) is None:
        return None
    if serialize.sent_by_name(module) or serialize.importing_module(name):
        return None
    return module


def _reached(function: Any, values: Iterable[Any]) -> dict[str, types.ModuleType]:
    modules: dict[str, types.ModuleType] = {}
    todo: list[Any] = list(values)
    own = _user_module(getattr(function, "__module__", None))
    if own is not None:
        modules[own.__name__] = own
    namespace = getattr(function, "__globals__", {})
    code = getattr(function, "__code__", None)
    if code is not None:
        todo += [namespace[name] for name in serialize.code_names(code) if name in namespace]
    seen: set[int] = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            module = _user_module(obj.__name__)
        elif isinstance(obj, (types.FunctionType, type)):
            module = _user_module(getattr(obj, "__module__", None))
        elif isinstance(obj, types.MethodType):
            todo += [obj.__func__, obj.__self__]
            continue
        elif isinstance(obj, functools.partial):
            todo.append(obj.func)
            continue
        else:
            todo.append(type(obj))
            continue
        if module is None or module.__name__ in modules:
            continue
        modules[module.__name__] = module
        # The user's modules this one names (its functions may call theirs).
        todo += [value for value in module.__dict__.values() if _may_be_user_code(value)]
    return modules


def _may_be_user_code(value: Any) -> bool:
    return isinstance(value, (types.ModuleType, types.FunctionType, type))


def _kept_by_worker(value: Any, module: types.ModuleType, name: str) -> bool:
    """Whether the worker's own module already holds ``value`` under ``name`` (or should keep
    its own): the module's own definitions, modules, what installed packages define,
    per-worker objects and what belongs to this process."""
    if isinstance(value, types.ModuleType):
        return True
    if isinstance(value, (types.FunctionType, type, types.BuiltinFunctionType)):
        owner = getattr(value, "__module__", None)
        if owner == module.__name__ and getattr(value, "__qualname__", None) == name:
            return True  # its own definition
        # What an installed package defines is the same there; a function of the user's
        # (a lambda set at run time, another module's function bound here) is sent.
        return isinstance(owner, str) and owner != "__main__" and _user_module(owner) is None
    from .resources import PerWorker

    return isinstance(value, PerWorker) or serialize.bound_here(value)


# The names a code object (and the code nested in it) reads, by code object: a module's
# functions are read again for every loop that reaches the module.
_read_by: dict[types.CodeType, frozenset[str]] = {}
_READ_BY = 4096


def _names_read(module: types.ModuleType) -> set[str]:
    """The global and attribute names the module's own functions and classes' methods read."""
    names: set[str] = set()
    for value in list(module.__dict__.values()):
        if isinstance(value, types.FunctionType) and value.__globals__ is module.__dict__:
            names |= _code_names(value.__code__)
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for member in list(vars(value).values()):
                for code in _codes_of(member):
                    names |= _code_names(code)
    return names


def _codes_of(member: Any) -> Iterable[types.CodeType]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [
            f.__code__ for f in (member.fget, member.fset, member.fdel) if isinstance(f, types.FunctionType)
        ]
    if isinstance(member, types.FunctionType):
        return [member.__code__]
    return []


def _code_names(code: types.CodeType) -> frozenset[str]:
    names = _read_by.get(code)
    if names is None:
        if len(_read_by) >= _READ_BY:
            _read_by.clear()
        names = _read_by[code] = frozenset(serialize.code_names(code))
    return names
