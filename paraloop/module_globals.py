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

What a job reaches: from the body (its code and the values it captures), the functions the
names its code reads hold, the names their code reads, and so on: a function of a user's
module notes the globals of that module its code reads (through a module it names, the
attributes it reads: ``settings.THRESHOLD``); a class of a user's module (of a captured
object too) is followed into its methods.  Not sent: dunder names, the module's own functions
and classes under their own names, modules, what installed packages define, per-worker
objects, and what belongs to this process (an open file, a lock) or cannot be pickled: the
worker keeps its own.  Large numpy arrays go through shared memory (mapped read-only, as a
captured array is); any other value is copied to each worker once per loop, as a value the
body names itself is.  The items are not known when the job is made: their classes are not
followed (following every class the loop's module holds pickled, for every loop, a large
global that only a method no iteration calls read).
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
from .errors import ParaLoopError

__all__ = ["Globals", "apply", "snapshot"]

#: Per module reached: its name, and (global name, pickled value) pairs; and the caller's pid.
Globals = tuple[int, tuple[tuple[str, tuple[tuple[str, bytes], ...]], ...]]

NONE: Globals = (0, ())


def snapshot(function: Any, values: Iterable[Any]) -> Globals:
    """The globals of the user's modules that the job of ``function`` (the body) with the
    captured ``values`` reaches, pickled for the workers (see the module's docstring)."""
    needed = _reached(function, values)
    sent = []
    for name, wanted in sorted(needed.items()):
        module = sys.modules[name]
        pairs = []
        for global_name, value in sorted(wanted.items()):
            if global_name.startswith("__") and global_name.endswith("__"):
                continue
            if _kept_by_worker(value, module, global_name):
                continue
            data = serialize.dumps_global(value)
            if data is not None:
                pairs.append((global_name, data))
        if pairs:
            sent.append((name, tuple(pairs)))
    return (os.getpid(), tuple(sent)) if sent else NONE


def apply(sent: Globals, where: str) -> None:
    """In a worker: set the caller's globals (from :func:`snapshot`) in this process's modules;
    a value that does not load here is the loop's ParaLoopError, naming it (the worker's own
    would be stale).

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
                value = serialize.loads(data)
            except Exception as error:  # noqa: BLE001 - kept, its own value would be stale
                raise ParaLoopError(
                    f"{where}: {global_name!r}, a global of module {name} that a function the loop body "
                    f"calls reads, holds a value your program set that a worker process cannot "
                    f"load ({type(error).__name__}: {error}). Pass the value to the body (a name "
                    "of the function around the loop), or use backend='threads', which shares it"
                ) from None
            if "." not in global_name:
                namespace[global_name] = value
                continue
            # A class's attribute (see _note_class_data).
            path, attribute = global_name.rsplit(".", 1)
            owner: Any = module
            for part in path.split("."):
                owner = getattr(owner, part, None)
            if isinstance(owner, type):
                setattr(owner, attribute, value)


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


def _reached(function: Any, values: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """By module name, the globals (name: value) that the functions of the user's modules the
    job reaches read: from the body and its captured values, along the names each function's
    code reads (``helpers.scale`` through a module reads ``scale`` of ``helpers``), into the
    functions and classes those name, and the methods of the classes of captured objects."""
    needed: dict[str, dict[str, Any]] = {}
    todo: list[Any] = [function, *values]
    seen: set[int] = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            todo += _read_by_function(obj, needed, record=obj is not function)
        elif isinstance(obj, type):
            if _user_module(obj.__module__) is not None:
                methods = [code for member in list(vars(obj).values()) for code in _functions_of(member)]
                todo += methods
                # Its own data its methods read (``self.FACTOR``, ``Holder.FACTOR``).
                named = frozenset().union(*(_code_names(method.__code__) for method in methods))
                _note_class_data(obj, named, needed)
        elif isinstance(obj, types.MethodType):
            todo += [obj.__func__, obj.__self__]
        elif isinstance(obj, functools.partial):
            todo.append(obj.func)
        elif not isinstance(obj, types.ModuleType):
            todo.append(type(obj))
    return needed


def _read_by_function(
    function: types.FunctionType, needed: dict[str, dict[str, Any]], record: bool
) -> list[Any]:
    """Note in ``needed`` the globals of its user module that ``function`` reads (with
    ``record``: the body travels with its own); what they hold, to follow."""
    names = _code_names(function.__code__)
    namespace = function.__globals__
    module = _user_module(function.__module__)
    if module is not None and module.__dict__ is not namespace:
        module = None
    follow: list[Any] = [cell.cell_contents for cell in function.__closure__ or () if _filled(cell)]
    follow += function.__defaults__ or ()
    for name in names & namespace.keys():
        value = namespace[name]
        if module is not None and record:
            needed.setdefault(module.__name__, {})[name] = value
        if isinstance(value, type) and _user_module(value.__module__) is not None:
            _note_class_data(value, names, needed)  # ``Holder.FACTOR`` read by this function
        if isinstance(value, types.ModuleType):
            # Its attributes the function reads (``settings.THRESHOLD``).
            other = _user_module(value.__name__)
            if other is not None:
                for attribute in names & other.__dict__.keys():
                    found = other.__dict__[attribute]
                    needed.setdefault(other.__name__, {})[attribute] = found
                    follow.append(found)
        else:
            follow.append(value)
    return follow


def _note_class_data(cls: type, names: frozenset[str], needed: dict[str, dict[str, Any]]) -> None:
    """Note the attributes of the user's class ``cls`` that hold data (not methods, not
    descriptors) and that ``names`` name: set at run time (``Holder.FACTOR = 5``), the
    worker's copy of the class would have those of its import.  Noted as ``Class.attribute``."""
    for attribute in names & vars(cls).keys():
        if attribute.startswith("__") and attribute.endswith("__"):
            continue
        value = vars(cls)[attribute]
        if isinstance(value, (types.FunctionType, staticmethod, classmethod, property, type)):
            continue
        if hasattr(type(value), "__get__"):
            continue  # a descriptor of its own: the class's code makes it
        needed.setdefault(cls.__module__, {})[f"{cls.__qualname__}.{attribute}"] = value


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


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


def _functions_of(member: Any) -> list[types.FunctionType]:
    """The functions of a class attribute: a method, a static or class method, a property's."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [f for f in (member.fget, member.fset, member.fdel) if isinstance(f, types.FunctionType)]
    return [member] if isinstance(member, types.FunctionType) else []


def _code_names(code: types.CodeType) -> frozenset[str]:
    names = _read_by.get(code)
    if names is None:
        if len(_read_by) >= _READ_BY:
            _read_by.clear()
        names = _read_by[code] = frozenset(serialize.code_names(code))
    return names
