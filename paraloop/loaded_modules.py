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

import itertools
import operator
import os
import sys
from types import FunctionType, MemberDescriptorType, ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:  # paraloop.log imports this module for every program that imports paraloop
    from typing import Any

__all__ = [
    "STDLIB", "beyond_stdlib", "import_own", "imported", "initializing", "namespace",
    "namespace_initializing", "original", "replaced", "state",
]  # fmt: skip

STDLIB: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ()))


def _walk() -> tuple[list[tuple[str, Any, str]], list[tuple[str, Any]]]:
    """(name, module, file) of each module in ``sys.modules`` past the standard library and
    paraloop's own, whose namespace names a file (a string ``__file__``); and (name, value) of
    the entries there that are neither a module nor None (see :func:`replaced`)."""
    found = []
    others = []
    shadowed = _shadowing()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top == "paraloop" or (top in STDLIB and top not in shadowed):
            continue
        filename = _file(module)
        if filename is not None:
            found.append((name, module, filename))
        if module is not None and (filename is None or type(module) is not ModuleType):
            others.append((name, module))
    return found, others


def _file(module: Any) -> str | None:
    found = namespace(module)
    filename = found.get("__file__") if found is not None else None
    return filename if type(filename) is str else None


def namespace(value: Any) -> dict[str, Any] | None:
    """The namespace of ``value``, an entry of ``sys.modules`` (which may hold anything), read
    without running any of its code: not ``vars()`` nor ``getattr``, which would run a wrapper's
    ``__getattr__`` or ``__getattribute__`` (a lazy module's import, a placeholder's ImportError)."""
    if type(value) is ModuleType:
        return value.__dict__
    try:
        found = object.__getattribute__(value, "__dict__")
    except Exception:  # noqa: BLE001 - no namespace (a slotted object), or one that fails to give it
        return None
    return found if type(found) is dict else None


# Where the standard library's own modules are (os is one of them), with its extension modules,
# and the packages installed there.
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep if type(getattr(os, "__file__", None)) is str else ""
_INSTALLED = (_STDLIB_DIR + "site-packages" + os.sep, _STDLIB_DIR + "dist-packages" + os.sep)


# Top-level names of the standard library's judged so far: those that are its own (built-in
# modules need no judging), and those that are not (the program's own).
_standard: set[str] = set(sys.builtin_module_names)
_shadowed: set[str] = set()


def _shadowing() -> set[str]:
    """The top-level modules named like the standard library's that are not its own (the
    program's ``sched.py`` or ``calendar.py``): a file outside its directory.  Each name is
    judged once per process, its module's file looked up in C for a few dozen at once (one
    Python step per module cost a program's first loop 0.2 ms; touching each module at all
    costs it tens of microseconds, which only the first pays)."""
    modules = sys.modules
    tops = list(STDLIB.intersection(modules).difference(_standard, _shadowed))
    if not tops:
        return _shadowed
    try:
        if set(map(type, map(modules.__getitem__, tops))) != {ModuleType}:
            raise TypeError  # not all modules: read one by one, never by vars() (see namespace)
        # A module without a file (frozen, or one that set none) counts as the standard library's.
        files = list(
            map(
                dict.get,
                map(vars, map(modules.__getitem__, tops)),
                itertools.repeat("__file__"),
                itertools.repeat(_STDLIB_DIR),
            )
        )
        own = list(
            map(
                operator.and_,
                map(str.startswith, files, itertools.repeat(_STDLIB_DIR)),
                map(operator.not_, map(str.startswith, files, itertools.repeat(_INSTALLED))),
            )
        )
    except (TypeError, KeyError):  # not a module or a file name, or one just gone
        files = [_file(modules.get(top)) or _STDLIB_DIR for top in tops]
        own = [name.startswith(_STDLIB_DIR) and not name.startswith(_INSTALLED) for name in files]
    _standard.update(itertools.compress(tops, own))
    _shadowed.update(itertools.compress(tops, map(operator.not_, own)))
    return _shadowed


def state() -> tuple[int, Any, int]:
    """What changes when ``sys.modules`` does: its size and its last entry (a module added since,
    or one taken out and another put in, as tests and reloads do); but not a module of
    paraloop's own imported on demand (see :func:`import_own`)."""
    now = _raw_state()
    return _same.get(now, now) if _same else now


def _raw_state() -> tuple[int, Any, int]:
    modules = sys.modules
    last = next(reversed(modules), None) if modules else None
    return (len(modules), last, id(modules.get(last)) if last is not None else 0)


# The raw state of sys.modules that differs from an earlier one only by the modules import_own
# added: that state, to which state() answers as to the earlier one (one entry, the latest).
_same: dict[tuple[int, Any, int], tuple[int, Any, int]] = {}


def import_own(name: str) -> Any:
    """paraloop's own module ``name`` (``"paraloop.…"``), imported where a loop first needs it,
    without making stale what was learnt from ``sys.modules`` before: the walks skip paraloop's
    modules, so where that import added only itself, :func:`state` answers as before it.  (The
    import of OpenBLAS's own controller in a program's first numpy loop made the next loop walk
    sys.modules and read the process's map again, 0.2 ms of a loop of 1 ms.)  Where anything
    else changed in ``sys.modules`` meanwhile (another thread's import, a module taken out or
    replaced), the state is new, as it would be: the entries before and after are compared, one
    by one (about 0.02 ms, once per module per process)."""
    before, entries = state(), list(sys.modules.items())
    __import__(name)
    module = sys.modules[name]
    now = list(sys.modules.items())
    if len(now) == len(entries) + 1 and now[-1] == (name, module) and all(map(_same_entry, now, entries)):
        # One at a time: ``before`` already answers for an earlier one, and a program that takes
        # the module out again and again (mock.patch.dict around each loop) leaves no trail.
        _same.clear()
        _same[_raw_state()] = before
    return module


def _same_entry(now: tuple[str, Any], then: tuple[str, Any]) -> bool:
    return now[0] == then[0] and now[1] is then[1]


# The last walk: (state() then, what it found).
_walked: tuple[Any, tuple[list[tuple[str, Any, str]], list[tuple[str, Any]]]] = (None, ([], []))


def beyond_stdlib() -> list[tuple[str, Any, str]]:
    """(name, module, file) of the modules past the standard library and paraloop's own (which
    neither caller asks about: dozens, no extension among them), walked again only once
    ``sys.modules`` changed (see :func:`state`).  The list is shared: do not change it."""
    return _walked_now()[0]


def replaced() -> list[tuple[str, Any]]:
    """(name, value) of the entries of ``sys.modules`` past the standard library and paraloop's
    own that are neither a module (of ModuleType itself) nor None: modules that put something
    else in their place (see :func:`original`).  From the same walk as :func:`beyond_stdlib`."""
    return _walked_now()[1]


def _walked_now() -> tuple[list[tuple[str, Any, str]], list[tuple[str, Any]]]:
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
    return None if module is not None and initializing(module) else module


def initializing(module: Any) -> bool:
    """Whether ``module``'s import has not finished: another thread is importing it (or, in a
    forked worker, the thread that was importing it when the fork copied it)."""
    found = namespace(module)
    return found is not None and namespace_initializing(found)


def namespace_initializing(found: dict[str, Any]) -> bool:
    """:func:`initializing`, of the module whose namespace is ``found``."""
    return getattr(found.get("__spec__"), "_initializing", False) is True


def original(name: str, value: Any, _depth: int = 0) -> dict[str, Any] | None:
    """The namespace of the module ``name`` that put ``value`` in its place in ``sys.modules``
    (a wrapper, as deprecation shims and lazy modules do: ``sys.modules[__name__] = _Shim()``),
    or None.  The module's functions store their globals there, not in the wrapper.

    Found where such wrappers keep it: an attribute of the wrapper (in its namespace or a slot)
    holding the module, itself perhaps a wrapper (a shim wrapped again by a deprecation helper);
    the globals of a function in the wrapper's namespace (a copy of the module's, or its public
    functions) or of a method of the wrapper's class, defined in the module itself.  Read without
    running any of the wrapper's code (see :func:`namespace`; a lazy proxy among its attributes is
    not asked what it is either).
    """
    own = namespace(value)
    held = list(own.values()) if own is not None else []
    kinds = type(value).__mro__
    for kind in kinds:
        slots = kind.__dict__.get("__slots__")
        if slots is None:
            continue
        for slot in (slots,) if type(slots) is str else slots:
            descriptor = kind.__dict__.get(slot) if type(slot) is str else None
            if type(descriptor) is MemberDescriptorType:
                try:
                    held.append(descriptor.__get__(value, kind))
                except AttributeError:  # an empty slot
                    pass
    for candidate in held:
        kind = type(candidate)
        if kind is FunctionType:
            globals_: dict[str, Any] = candidate.__globals__
            if globals_ is not own and globals_.get("__name__") == name:
                return globals_
        elif ModuleType in kind.__mro__ and candidate is not value:
            found = namespace(candidate)
            if found is not None and found.get("__name__") == name:
                inner = original(name, candidate, _depth + 1) if _depth < 4 else None
                return inner if inner is not None else found
    for kind in kinds:
        if kind is ModuleType or kind is object:
            continue
        for attribute in kind.__dict__.values():
            wrapping = type(attribute)
            if wrapping is classmethod or wrapping is staticmethod:
                attribute = attribute.__func__
            elif wrapping is property:
                attribute = attribute.fget
            if type(attribute) is FunctionType:
                found = attribute.__globals__
                if found is not own and found.get("__name__") == name:
                    return found
    return None
