"""Warnings the body shows in a worker process are decided as the plain loop's, and shown once.

``warnings.warn`` in the plain loop consults the program's filters (``simplefilter("error")``
makes it raise, ``"ignore"`` drops it) and the registry of the module that warned: under the
default action a warning shows once per place, however many iterations warn.  A worker process
has filters of its own (a spawn or forkserver worker: the interpreter's defaults; a fork worker
kept from an earlier loop: the program's of then) and registries of its own.  So a program that
made warnings errors saw a loop under spawn run to its end, each warning printed, and the plain
loop's once-per-place warning showed once per worker, outside the program's ``showwarning``.

So:

- the filters the program has as a loop starts travel with the job (:func:`for_workers`) and a
  worker takes them (:func:`apply`) before the loop's first chunk.  A filter's category other than
  a built-in one travels by name and matches by name along the warning's class's bases
  (:class:`_ByNameMeta`): the worker imports nothing for it, and a class of the script, which
  reaches a worker by value, still matches;
- the worker decides, with those filters and whatever the body or a library changes in them
  there: a warning that is an error raises in its iteration, one ignored is dropped, and its
  registries deduplicate within the worker;
- what the worker would show joins the chunk's output (see :mod:`paraloop.output`) with the
  action its filters chose (:func:`_relay`), and the caller shows it through the program's
  ``showwarning`` as it combines that chunk (:func:`replay`): ``catch_warnings(record=True)``,
  ``pytest.warns`` and ``logging.captureWarnings`` around the loop see it.  The caller does not
  filter again (a library's ``catch_warnings()`` + ``simplefilter("always")`` in the body would
  have become an error under a program's ``-W error``); it only keeps the actions that show a
  warning once per place from showing it once per worker (:func:`_first`), and notes what its own
  chunks show (:func:`observing`).

Dask workers are shared with other work: their filters stay theirs, and the program's filters and
registries decide in the caller what they would show.
"""

from __future__ import annotations

import pickle
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import loaded_modules, output

__all__ = [
    "apply",
    "count_mutations",
    "drain_loose",
    "for_workers",
    "forget_shown",
    "install",
    "observing",
    "replay",
    "take_loose",
    "unmutated",
]

# A filter as it travels: (action, message pattern, category, module pattern, line number); the
# category a built-in class or, for any other, (module, qualified name).
Filter = tuple[str, Any, Any, Any, int]

# The script's module is "__main__" in the caller and "__mp_main__" in a spawned worker.
_SCRIPT = frozenset({"__main__", "__mp_main__"})

_installed: list[Any] = []  # the showwarning found when the relay was installed
_install_lock = threading.Lock()


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
        travelling.append((action, message, category, module, lineno))
    if not _travels(travelling):
        # A filter a library put there by hand, holding what cannot travel, stays behind.
        travelling = [entry for entry in travelling if _travels(entry)]
    default: str = getattr(warnings, "defaultaction", "default")
    return tuple(travelling), default


def _travels(value: Any) -> bool:
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - whatever pickling a hand-made entry raises
        return False
    return True


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
    count_mutations()
    warnings._filters_mutated()  # type: ignore[attr-defined]


def _script_too(module: Any) -> Any:
    """A filter's module pattern that names the script ("__main__", as Python's own default
    filter for DeprecationWarning does) also names it where a spawned worker has it."""
    if module == "__main__":  # the interpreter's own default filter holds the name itself
        return re.compile(r"(?:__main__|__mp_main__)\Z")
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


def count_mutations() -> None:
    """Count every change of the filters in this process (``warnings._filters_mutated``, which
    ``filterwarnings``, ``simplefilter``, ``resetwarnings`` and ``catch_warnings`` call, and which
    makes the registries forget what they showed): a warning shown under other filters shows
    again, as CPython's registries have it."""
    current = warnings._filters_mutated  # type: ignore[attr-defined]
    if getattr(current, "__paraloop_counting__", False):
        return

    def counted() -> None:
        _mutations[0] += 1
        current()
        capture = getattr(output._local, "capture", None)
        if capture is not None and _installed and not _importing():
            # In a worker (paraloop's or Dask's), an iteration's change (catch_warnings in the
            # body, or in a library it calls): the plain loop's registries forgot here, in its
            # order; the caller forgets as it combines this point of the chunk's output.  (Not a
            # module's import: the plain loop imported it once, the workers each again.)
            capture.writes.append((output.WARNING, None))

    counted.__paraloop_counting__ = True  # type: ignore[attr-defined]
    warnings._filters_mutated = counted  # type: ignore[attr-defined]


# Changes of the filters in this process since count_mutations.
_mutations = [0]


def _importing() -> bool:
    """Whether this thread is importing a module (its top level adds filters, as some do) in the
    running chunk: the frames below the chunk's are not its own (a fork worker keeps the stack
    of the caller it was forked from, which may have been importing a module whose top level
    started the pool)."""
    frame: Any = sys._getframe(2)
    chunk = output.run_captured.__code__
    while frame is not None:
        code = frame.f_code
        if code is chunk:
            return False
        if code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def unmutated() -> Iterator[None]:
    """Around paraloop's own use of ``warnings.catch_warnings`` (dill pickling a code object):
    the filters are put back as they were, so the registries need not forget (a warning the
    program showed once before a loop whose job holds a class of the script showed again after it)."""
    mutated = warnings._filters_mutated  # type: ignore[attr-defined]
    warnings._filters_mutated = _unchanged  # type: ignore[attr-defined]
    try:
        yield
    finally:
        warnings._filters_mutated = mutated  # type: ignore[attr-defined]


def _unchanged() -> None:
    pass


_owned = [False]


def install(owned: bool = True) -> None:
    """In a worker process (paraloop's, ``owned``, or a Dask worker): what a running chunk's
    iteration would show goes to the caller with the chunk's output.  In a worker process of
    paraloop's, so does a warning of a thread the body started (with the next outcome); in a Dask
    worker, a warning outside a chunk is the worker's own."""
    with _install_lock:
        count_mutations()
        _owned[0] = owned
        if _installed and warnings.showwarning is _relay:
            return
        _installed[:] = [warnings.showwarning]
        warnings.showwarning = _relay
        output.relaying = True
        if owned and take_loose not in output.loose_takers:
            output.loose_takers.append(take_loose)


def forget_shown() -> None:
    """In a worker process (paraloop's or Dask's), as a chunk starts: its registries forget what
    they showed, so that the chunk's first warning of each place comes to the caller, which
    decides in the loop's order (:func:`_first`; a Dask worker's, the program's filters and
    registries, :func:`_decide_here`).  Else a warning a worker showed in an earlier chunk was
    not sent again: lost where the plain loop's registries had forgotten it meanwhile (a
    ``catch_warnings()`` in another worker's iteration, the program's filters changed between
    two loops), and shown late where the worker ran a later chunk first (Dask).  A Dask worker's
    other work may see a warning of its own once more.  Not counted as the body's change of the
    filters (see :func:`count_mutations`)."""
    # CPython's own function, not warnings._filters_mutated, which count_mutations replaced.
    import _warnings

    mutated = getattr(_warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


def _show_here(message: Any, category: Any, filename: Any, lineno: Any, file: Any, line: Any) -> None:
    shown = _installed[0] if _installed else warnings._showwarning_orig  # type: ignore[attr-defined]
    shown(message, category, filename, lineno, file, line)


# Warnings of threads that ran no chunk (a thread an iteration started, while chunks run in lanes):
# they go with the worker's next outcome.
_loose: list[Any] = []
_loose_lock = threading.Lock()


def take_loose() -> list[Any]:
    """The warnings no chunk took, as writes for the outcome being sent."""
    with _loose_lock:
        loose, _loose[:] = list(_loose), []
    return loose


def drain_loose() -> None:
    """At a worker's end: warnings no chunk took are shown by the worker."""
    for _, shown in take_loose():
        if shown is not None:
            message, category, filename, lineno, line, *_ = shown
            _show_here(message, category, filename, lineno, None, line)


def _relay(
    message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None
) -> None:
    if file is not None:  # showwarning called by hand, to a file of its own
        _show_here(message, category, filename, lineno, file, line)
        return
    capture = output.current()
    if capture is None and not _owned[0]:
        _show_here(message, category, filename, lineno, file, line)
        return
    module, decided, unregistered = _decided(message, category, filename, lineno)
    action: str | None = decided
    if not _owned[0]:
        # A Dask worker's filters are its own, not the program's: the caller's decide there,
        # with the module's registry, or with none where CPython noted the warning in none.
        action = _UNREGISTERED if unregistered else None
    shown = _write(message, category, filename, lineno, line, module, action)
    if capture is None:
        with _loose_lock:
            _loose.append(shown)
        return
    capture.writes.append(shown)


def _registry_of(module: str) -> dict[Any, Any] | None:
    namespace = loaded_modules.namespace(sys.modules.get(module))
    registry = namespace.get("__warningregistry__") if namespace is not None else None
    return registry if isinstance(registry, dict) else None


def _write(
    message: Any, category: Any, filename: Any, lineno: Any, line: Any, module: str, action: str | None
) -> tuple[str, Any]:
    """A warning as it travels among a chunk's writes, for the caller's :func:`replay`."""
    return output.WARNING, (_travelling(message), category, filename, lineno, line, module, action)


# What a Dask worker's warning that went through no registry travels with (see _relay, replay).
_UNREGISTERED = "unregistered"


def _decided(message: Any, category: Any, filename: Any, lineno: Any) -> tuple[str, str, bool]:
    """The module the warning is attributed to, and the action this process's filters chose for
    it (it is shown, so not "error" nor "ignore"), as ``warnings.warn`` found them: "always"
    where CPython noted it in no registry (see :func:`_registered`), and whether that was so."""
    module, registries = _module_at(filename, lineno)
    text = str(message)
    action = getattr(warnings, "defaultaction", "default")
    entries: list[Any] = list(warnings.filters)
    for entry in entries:
        try:
            kind_of, pattern, kind, module_pattern, line = entry
            if (
                _matched(pattern, text)
                and issubclass(category, kind)
                and _matched(module_pattern, module)
                and (line == 0 or lineno == line)
            ):
                action = kind_of
                break
        except Exception:  # noqa: BLE001 - an entry warnings itself would trip over: not this one
            continue
    action = _shown_as(action)
    if action in ("default", "module", "once"):
        noted = _registered(message, category, lineno, registries, action)
        if noted is None:
            # Shown with no registry (``warn_explicit`` without one, a module whose
            # ``__warningregistry__`` is None, a registry of the call's own): CPython
            # deduplicated nothing, so neither does the caller.
            return module, "always", True
        if noted is _ONCE_ONLY:
            # "once" with no registry: CPython's onceregistry, by text and class whatever the
            # module; so the caller's key names none.
            return "", action, False
    return module, action, False


_ONCE_ONLY: dict[Any, Any] = {}


def _registered(
    message: Any, category: Any, lineno: Any, registries: list[Any], action: str
) -> dict[Any, Any] | None:
    """Whether CPython, just before it showed the warning, noted it in a registry (the one of the
    frame that warned, which ``warnings.warn`` gives; one ``warn_explicit`` was given) or, under
    "once" with no registry, in its ``onceregistry`` (then ``_ONCE_ONLY``): by its text, which
    is the object warned with (``warn(None)``: None) or the warning's text.  None: in none."""
    texts = [str(message)]
    arguments: Any = getattr(message, "args", ())
    if isinstance(message, Warning) and len(arguments) == 1 and not isinstance(arguments[0], str):
        texts.append(arguments[0])
    for registry in registries:
        if isinstance(registry, dict):
            if any(_get(registry, (text, category, lineno)) for text in texts):
                return registry
    once = getattr(warnings, "onceregistry", None)
    if action == "once" and isinstance(once, dict) and any(_get(once, (text, category)) for text in texts):
        return _ONCE_ONLY
    return None


def _get(registry: dict[Any, Any], key: Any) -> Any:
    try:
        return registry.get(key)
    except TypeError:  # an object warned with that cannot be a key
        return None


def _matched(pattern: Any, text: str) -> bool:
    # As CPython's check_matched: None matches all; a string (the interpreter's own default
    # filters hold "__main__") is compared whole; anything else is a compiled pattern.
    if pattern is None:
        return True
    if isinstance(pattern, str):
        return pattern == text
    return bool(pattern.match(text))


def _shown_as(action: Any) -> str:
    # The warning is being shown: an action that would not show it (a filter changed since, by
    # another thread) counts as the default one.
    return action if action in ("always", "all", "default", "module", "once") else "default"


def _module_at(filename: Any, lineno: Any) -> tuple[str, list[Any]]:
    """The ``__name__`` of the frame that warned (``warnings.warn`` attributes the warning to it),
    else what ``warn_explicit`` makes of the file name; and the registries CPython may have
    noted the warning in (see :func:`_registered`)."""
    frame: Any = sys._getframe(3)
    # The frame that called warn() or warn_explicit(), above the warnings module's own.
    calling = frame
    while calling is not None and calling.f_code.co_filename == warnings.__file__:
        calling = calling.f_back
    registries: list[Any] = []
    if calling is not None:
        # warn_explicit(..., registry=...): a registry the calling frame holds (its module's, or
        # one of its own names'); a literal one of the call's own is in none.
        registries.append(calling.f_globals.get("__warningregistry__"))
        registries.extend(value for value in calling.f_locals.values() if type(value) is dict)
    for _ in range(200):
        if frame is None:
            break
        if frame.f_code.co_filename == filename and frame.f_lineno == lineno:
            name = frame.f_globals.get("__name__")
            registries.insert(0, frame.f_globals.get("__warningregistry__"))
            return (name if isinstance(name, str) else "<string>"), registries
        frame = frame.f_back
    if filename in ("sys", "<sys>"):
        # A stacklevel past the outermost frame: CPython takes the sys module's namespace.
        registries.insert(0, sys.__dict__.get("__warningregistry__"))
        return "sys", registries
    name = filename if isinstance(filename, str) and filename else "<unknown>"
    return (name[:-3] if name[-3:].lower() == ".py" else name), registries


def _travelling(message: Any) -> Any:
    """The warning itself when it can travel (its attributes kept), else its text.

    Loaded again here, too: a warning class whose ``__init__`` takes other arguments than its
    text pickles, but fails to load (``BaseException`` pickles its ``args``), which would fail the
    whole chunk's outcome in the caller."""
    if isinstance(message, Warning):
        if type(message).__module__ == "builtins" and len(message.args) == 1 and type(message.args[0]) is str:
            return message  # the usual warning: a built-in class and its text
        try:
            pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # noqa: BLE001 - anything a warning's arguments may raise: its text then
            return str(message)
    return message


def _rebuilt(message: Any, category: Any) -> Any:
    """A warning that travelled as its text, as an instance of its class made without its
    ``__init__`` (which may want other arguments): its text is its ``args``, as the worker's."""
    if isinstance(message, str) and isinstance(category, type) and issubclass(category, Warning):
        try:
            made = category.__new__(category, message)
        except Exception:  # noqa: BLE001 - a class with a __new__ of its own: the text goes as it is
            return message
        if isinstance(made, Warning):
            return made
    return message


# What the caller showed of the workers' warnings (and of its own chunks', see observing), by
# the key its registry would hold; forgotten whenever the filters change, here or in a worker
# (CPython's registries forget so), which also bounds it as they are bounded.
_shown: set[Any] = set()
_shown_lock = threading.Lock()
# The count of filter changes here when _shown was last emptied.
_shown_since = [0]


def replay(shown: tuple[Any, ...] | None) -> None:
    """In the caller, as the chunk that showed it is combined: the warning, shown through the
    program's ``showwarning`` (``catch_warnings(record=True)``, ``pytest.warns``,
    ``logging.captureWarnings`` see it), unless a warning of the same place was shown already
    where the worker's action shows one only once."""
    count_mutations()
    if shown is None:
        # The filters changed in a worker's iteration: forgotten what was shown, as there, and
        # what the program's registries hold (which decide a Dask worker's warnings), as the
        # plain loop's change made them forget.
        with _shown_lock:
            _shown.clear()
        warnings._filters_mutated()  # type: ignore[attr-defined]
        return
    message, category, filename, lineno, line, module, action = shown
    if isinstance(category, type) and _module_name(category) == "__mp_main__":
        category = getattr(sys.modules.get("__main__"), category.__qualname__, category)
    module = "__main__" if module == "__mp_main__" else module
    message = _rebuilt(message, category)
    if action is None or action == _UNREGISTERED:
        _decide_here(message, category, filename, lineno, module, action is None)
        return
    if action in ("default", "module", "once") and not _first(action, message, category, module, lineno):
        return
    warnings._showwarnmsg(  # type: ignore[attr-defined]
        warnings.WarningMessage(message, category, filename, lineno, None, line)
    )


# Registries of modules the caller does not have (one only a Dask worker imported).
_registries: dict[str, dict[Any, Any]] = {}


def _decide_here(
    message: Any, category: Any, filename: Any, lineno: Any, module: str, registered: bool = True
) -> None:
    """A Dask worker's warning: the program's filters and the registry of its module decide (no
    registry where CPython noted it in none in the worker)."""
    namespace = loaded_modules.namespace(sys.modules.get(module))
    registry: Any = namespace.setdefault("__warningregistry__", {}) if namespace is not None else None
    if not registered:
        registry = None
    elif not isinstance(registry, dict):
        registry = _registries.setdefault(module, {})
    warnings.warn_explicit(message, category, filename, lineno, module, registry, namespace)


def _first(action: str, message: Any, category: Any, module: str, lineno: Any) -> bool:
    """Whether a warning shown under ``action`` is the first of its place since the filters last
    changed, by the key CPython's registry of the module gives it (its line under "default";
    under "module" and "once" its text and class alone, in the module's registry): noted so,
    here and in the program's registry, which the program's own later warnings consult."""
    text = str(message)
    kind = (_module_name(category), getattr(category, "__qualname__", repr(category)))
    key = (module, text, kind, lineno if action == "default" else None)
    with _shown_lock:
        if _shown_since[0] != _mutations[0]:
            _shown.clear()
            _shown_since[0] = _mutations[0]
        if key in _shown:
            return False
        _shown.add(key)
        # The program showed it itself since the filters last changed (before the loop, in a
        # chunk of its own, in a thread of one): as in the plain loop, not again.
        if _held(action, text, category, module, lineno):
            return False
    _note_in_registry(action, text, category, module, lineno)
    return True


def _held(action: str, text: str, category: Any, module: str, lineno: Any) -> bool:
    """Whether the program's registry of the module holds the warning as CPython would look it
    up, marked with the filters' current version (an older one CPython would empty first)."""
    registry = _registry_of(module)
    if not registry or registry.get("version") != _filters_version():
        return False
    if registry.get((text, category, lineno)):
        return True
    return action in ("module", "once") and bool(registry.get((text, category)))


def _unnote(action: str, text: str, category: Any, module: str, lineno: Any) -> None:
    """Undo what CPython just noted in the module's registry of a warning it did not show yet
    (held back among a chunk's writes, shown in that chunk's turn, see observing)."""
    registry = _registry_of(module)
    if registry is not None:
        registry.pop((text, category, lineno), None)
        if action in ("module", "once"):
            registry.pop((text, category), None)


def _note_in_registry(action: str, text: str, category: Any, module: str, lineno: Any) -> None:
    """Where CPython's registry of the module keeps a warning shown (a later warning of the
    program's is then not shown, as after the plain loop), by the keys CPython's own
    ``warn_explicit`` (C) gives it: its text, class and line, and under "module" and "once" its
    text and class (in the module's registry, not ``onceregistry``, where a registry is given,
    as ``warnings.warn`` gives one).  The registry is marked with the filters' current version,
    as CPython marks it: one of another version it empties at its next look."""
    try:
        namespace = loaded_modules.namespace(sys.modules.get(module))
        if namespace is None:
            return
        registry = namespace.setdefault("__warningregistry__", {})
        version = _filters_version()
        if not isinstance(registry, dict) or version is None:
            return
        if registry.get("version") != version:
            registry.clear()
            registry["version"] = version
        registry[(text, category, lineno)] = True
        if action in ("module", "once"):
            registry[(text, category)] = True
    except Exception:  # noqa: BLE001 - a registry of an odd kind: only the later warning may show again
        pass


# A module name no module has: the filter that ignores it, put first for a moment (see
# _filters_version), matches no other warning.
_PROBE = "paraloop\x00version probe"
_PROBE_FILTER = ("ignore", None, Warning, re.compile(re.escape(_PROBE) + r"\Z"), 0)


def _filters_version() -> int | None:
    """The filters' version as CPython counts it (not exposed: a registry it checks is marked
    with it), read by a warning no filter but paraloop's own, first for the moment, lets
    through: it is ignored, and the empty registry it was checked against is marked."""
    filters: Any = warnings.filters
    registry: dict[Any, Any] = {}
    filters.insert(0, _PROBE_FILTER)
    try:
        warnings.warn_explicit("", Warning, _PROBE, 1, module=_PROBE, registry=registry)
    finally:
        try:
            filters.remove(_PROBE_FILTER)
        except ValueError:  # another thread's catch_warnings() put its own list back meanwhile
            pass
    version = registry.get("version")
    return version if type(version) is int else None


_local = threading.local()


@contextmanager
def observing() -> Iterator[None]:
    """In the caller, around a chunk it runs itself: what its iterations show (through the
    program's filters and registries, in this process) is noted, so that a worker's warning of the
    same place is not shown again."""
    previous = warnings.showwarning
    if getattr(_local, "observing", False):
        yield
        return

    def observer(
        message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None
    ) -> None:
        if file is None and getattr(_local, "observing", False):
            module, action, _ = _decided(message, category, filename, lineno)
            capture = getattr(output._local, "capture", None)
            if capture is not None:
                # A chunk run while earlier ones are at the workers: its warnings wait for its
                # turn, as its prints do (a chunk after a break or an exception shows none).
                # Not yet in the registry, then: an earlier chunk's warning of the place shows.
                capture.writes.append(_write(message, category, filename, lineno, line, module, action))
                if action in ("default", "module", "once"):
                    _unnote(action, str(message), category, module, lineno)
                return
            if action in ("default", "module", "once"):
                _first(action, message, category, module, lineno)
        if not callable(previous):
            # What CPython's own _showwarnmsg raises for a showwarning the program set so.
            raise TypeError("warnings.showwarning() must be set to a function or method")
        previous(message, category, filename, lineno, file, line)

    count_mutations()
    warnings.showwarning = observer
    _local.observing = True
    try:
        yield
    finally:
        _local.observing = False
        if warnings.showwarning is observer:
            warnings.showwarning = previous
