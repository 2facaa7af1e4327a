"""Warnings the body shows in a worker process are decided as the program's, and shown once.

``warnings.warn`` in the plain loop consults the program's filters (``simplefilter("error")``
makes it raise, ``"ignore"`` drops it) and the registry of the module that warned: under the
default action a warning shows once per place, however many iterations warn.  A worker process
has filters of its own (a spawn or forkserver worker: the interpreter's defaults; a fork worker
kept from an earlier loop: the program's of then) and registries of its own.  So a program that
made warnings errors saw a loop under spawn run to its end, each warning printed, and the plain
loop's once-per-place warning showed once per worker.

So:

- the filters the program has as a loop starts travel with the job (:func:`for_workers`) and a
  worker takes them (:func:`apply`) before the loop's first chunk: a warning that is an error
  there raises in its iteration, as in the plain loop; one ignored there is dropped there.  A
  filter's category other than a built-in one travels by name and matches by name along the
  warning's class's bases (:class:`_ByNameMeta`): the worker imports nothing for it, and a class of
  the script, which reaches a worker by value, still matches;
- a warning a worker would show is not shown there: it joins the chunk's output (see
  :mod:`paraloop.output`), and the caller shows it as it combines that chunk
  (:func:`replay`), through ``warnings.warn_explicit`` with the registry of the module the
  warning names: the program's filters and registries decide, once for the whole loop, and
  ``catch_warnings(record=True)``, ``pytest.warns`` or ``logging.captureWarnings`` around the loop
  see it.  A warning comes with its chunk's results, not when the iteration ran.

Dask workers are shared with other work: their filters stay theirs (a filter the program set is
not applied there), but what they would show comes back once, as from a worker process.
"""

from __future__ import annotations

import pickle
import re
import sys
import threading
import warnings
from typing import Any

from . import loaded_modules, output

__all__ = ["apply", "for_workers", "install", "replay"]

# A filter as it travels: (action, message pattern, category, module pattern, line number); the
# category a built-in class or, for any other, (module, qualified name).
Filter = tuple[str, Any, Any, Any, int]

# The script's module is "__main__" in the caller and "__mp_main__" in a spawned worker.
_SCRIPT = frozenset({"__main__", "__mp_main__"})

_installed: list[Any] = []  # the showwarning found when the relay was installed
_install_lock = threading.Lock()
# Registries of warnings whose file is no module's (code run by exec, a notebook cell's).
_registries: dict[str, dict[Any, Any]] = {}


def for_workers() -> tuple[tuple[Filter, ...], str]:
    """In the caller, as a loop starts: its warnings filters and default action, for workers."""
    travelling: list[Filter] = []
    entries: list[Any] = list(warnings.filters)
    for entry in entries:
        if not (isinstance(entry, tuple) and len(entry) == 5):
            continue
        action, message, category, module, lineno = entry
        if isinstance(category, type) and category.__module__ != "builtins":
            category = (_module_name(category), category.__qualname__)
        try:
            # A filter a library put there by hand, holding what cannot travel, stays behind.
            pickle.dumps((action, message, category, module, lineno), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - whatever pickling such an entry raises
            continue
        travelling.append((action, message, category, module, lineno))
    default: str = getattr(warnings, "defaultaction", "default")
    return tuple(travelling), default


def apply(travelled: tuple[tuple[Filter, ...], str] | None) -> None:
    """In a worker process, before a loop's first chunk: the program's filters, as sent."""
    if travelled is None:
        return
    filters, default = travelled
    mine = [
        (
            action,
            message,
            _by_name(category) if isinstance(category, tuple) else category,
            _script_too(module),
            lineno,
        )
        for action, message, category, module, lineno in filters
    ]
    current: list[Any] = warnings.filters  # type: ignore[assignment]
    current[:] = mine
    setattr(warnings, "defaultaction", default)  # noqa: B010 - not in the module's stubs
    # The registries remember what was shown under the filters of then.
    warnings._filters_mutated()  # type: ignore[attr-defined]


def _script_too(module: Any) -> Any:
    """A filter's module pattern that names the script ("__main__", as Python's own default
    filter for DeprecationWarning does) also names it where a spawned worker has it."""
    if isinstance(module, re.Pattern) and module.match("__main__") and not module.match("__mp_main__"):
        return re.compile(f"(?:{module.pattern})|__mp_main__\\Z", module.flags)
    return module


class _ByNameMeta(type):
    """Matching a warning's class by the names of its bases: the class itself need not be here."""

    _module: str
    _qualname: str

    def __subclasscheck__(cls, subclass: Any) -> bool:
        for base in getattr(subclass, "__mro__", ()):
            if base.__qualname__ == cls._qualname and _same_module(_module_name(base), cls._module):
                return True
        return False

    def __instancecheck__(cls, instance: Any) -> bool:
        return cls.__subclasscheck__(type(instance))

    def __repr__(cls) -> str:
        return f"<warning category {cls._module}.{cls._qualname}>"


_made: dict[tuple[str, str], type] = {}


def _by_name(category: tuple[str, str]) -> type:
    found = _made.get(category)
    if found is None:
        module, qualname = category
        found = _made[category] = _ByNameMeta(
            qualname.rpartition(".")[2], (Warning,), {"_module": module, "_qualname": qualname}
        )
    return found


def _module_name(kind: type) -> str:
    module = getattr(kind, "__module__", None)
    return module if isinstance(module, str) else ""


def _same_module(one: str, other: str) -> bool:
    return one == other or (one in _SCRIPT and other in _SCRIPT)


def install() -> None:
    """In a worker process (paraloop's, or a Dask worker): what a running chunk's iteration would
    show goes to the caller with the chunk's output; any other warning is shown as before."""
    with _install_lock:
        if _installed and warnings.showwarning is _relay:
            return
        _installed[:] = [warnings.showwarning]
        warnings.showwarning = _relay
        output.relaying = True


def _relay(
    message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None
) -> None:
    capture = output.current() if file is None else None
    if capture is None:
        shown = _installed[0] if _installed else warnings._showwarning_orig  # type: ignore[attr-defined]
        shown(message, category, filename, lineno, file, line)
        return
    capture.writes.append((output.WARNING, (_travelling(message), category, filename, lineno)))


def _travelling(message: Any) -> Any:
    """The warning itself when it can travel (its attributes kept), else its text."""
    if isinstance(message, Warning):
        try:
            pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - anything a warning's arguments may raise: its text then
            return str(message)
    return message


def replay(shown: tuple[Any, Any, Any, Any]) -> None:
    """In the caller, as the chunk that showed it is combined: the warning, through the program's
    filters and the registry of the module whose file it names."""
    message, category, filename, lineno = shown
    name, namespace = _module_of(filename)
    if namespace is not None:
        registry = namespace.setdefault("__warningregistry__", {})
    else:
        registry = _registries.setdefault(str(filename), {})
    if isinstance(category, type) and _module_name(category) == "__mp_main__":
        category = getattr(sys.modules.get("__main__"), category.__qualname__, category)
    warnings.warn_explicit(
        message, category, filename, lineno, module=name, registry=registry, module_globals=namespace
    )


def _module_of(filename: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The name and namespace of the module whose file is ``filename``, if any."""
    if not isinstance(filename, str):
        return None, None
    for name, module in list(sys.modules.items()):
        namespace = loaded_modules.namespace(module)
        if namespace is not None and namespace.get("__file__") == filename:
            return ("__main__" if name == "__mp_main__" else name), namespace
    return None, None
