"""No silent loss: a change to an object from outside the loop is combined, or refused.

paraloop combines what the body changes in the forms it understands (see
:mod:`paraloop.reductions`).  An iteration can change an outside object in
other ways: through a view (``row = A[i]; row[:] = 0``), a bound method kept
in a name (``add = out.append``), a function or closure it calls
(``store(buf, i)``, a ``nonlocal`` total).  In a worker process those changes
land on the worker's copy and would be lost; with threads they land in the
order the threads happen to run.  This module catches them:

- numpy arrays the body captures (and those inside captured lists, dicts and
  objects) are made read-only for the loop: a write raises at once, and is
  reported as a :class:`~paraloop.ParaLoopError` naming the arrays;
- every other captured object that can change (lists, dicts, sets, objects
  of the user's classes, the variables of closures, the module globals that
  the user's own functions use, the object behind a bound method) is
  fingerprinted when the loop's job arrives, and again after every chunk; a
  change fails the loop with a ParaLoopError naming the object.

A fingerprint is the hash of the object's pickle, numpy arrays left out
(they are read-only).  Its cost is measured and counted as the chunk's
overhead, so chunks grow until checking costs a few percent.  The sequential
backend runs the plain loop in the caller and needs no guard.
"""

from __future__ import annotations

import functools
import io
import itertools
import pickle
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import log
from .errors import ParaLoopError
from .items import bound_to_this_process, is_file
from .serialize import code_names, installed
from .sharing import shared_here

__all__ = ["ATOMS", "GENERATOR_MODULES", "Guard", "fingerprint", "reached", "read_only_error"]


ATOMS = frozenset(
    {int, float, complex, str, bytes, bool, type(None), range, frozenset, type, types.ModuleType}
)
# A fingerprint cheaper than this is taken after every chunk, whatever the chunk's share.
_ALWAYS = 1e-4
# The modules of the global random generators whose draws a worker watches for.
GENERATOR_MODULES = ("random", "numpy.random.mtrand")

_ATOM_MODULES = ("re", "decimal", "fractions", "datetime", "pathlib", "uuid", "enum")
# Objects nested this deep in captured containers are still searched for numpy arrays.
_ARRAY_DEPTH = 3


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _user_code(module_name: object, filename: object = None) -> bool:
    """Code of the user's own: not of the standard library, an installed package or paraloop."""
    if not isinstance(module_name, str) or not isinstance(filename, (str, type(None))):
        return False  # a class whose __module__ is not a name: a built-in's
    if module_name and module_name.split(".")[0] == "paraloop":
        return False
    if module_name in sys.builtin_module_names or module_name in ("builtins", "__builtin__"):
        return False
    module = sys.modules.get(module_name or "")
    if module is not None:
        filename = getattr(module, "__file__", None) or filename
        if not filename and getattr(getattr(module, "__spec__", None), "origin", None) in (
            "built-in",
            "frozen",
        ):
            return False
    if not filename:
        return True
    return not installed(str(filename))


def _user_function(function: types.FunctionType) -> bool:
    return _user_code(function.__module__, function.__code__.co_filename)


def _cached_names(kind: type) -> frozenset[str]:
    """The attributes of ``kind`` that functools.cached_property fills on first read."""
    names = _CACHED.get(kind)
    if names is None:
        names = frozenset(
            name
            for klass in kind.__mro__
            for name, attribute in vars(klass).items()
            if isinstance(attribute, functools.cached_property)
        )
        _CACHED[kind] = names
    return names


_CACHED: dict[type, frozenset[str]] = {}


class _Fingerprinter(pickle.Pickler):
    """Pickles for a fingerprint: arrays, functions, modules and classes by identity.

    Values a ``functools.cached_property`` stored are left out: reading one is
    not a change.  Locks and open files count by identity.
    """

    def reducer_override(self, obj: Any) -> Any:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict) and not issubclass(type(obj), type):
            cached = _cached_names(type(obj))
            if cached:
                kept = {key: value for key, value in state.items() if key not in cached}
                return (_Shape, (type(obj).__qualname__,), kept)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        # By the object's real type: isinstance() believes a __class__ property, and an object that
        # claims to be a class would be taken by identity, its changes unseen.
        if _is_numpy_array(obj) or issubclass(type(obj), (types.FunctionType, types.ModuleType, type)):
            return id(obj)
        if type(obj) is itertools.count:
            # A counter of ids a helper advances ("count(3)"): each worker would advance its
            # own copy, giving ids twice; its position shows in its repr, at no cost.
            return (id(obj), repr(obj))
        if hasattr(type(obj), "__next__") and not is_file(obj):
            return id(obj)  # an iterator: reading it is not changing it
        if bound_to_this_process(obj) or isinstance(obj, threading.Thread):
            return id(obj)
        return None


class _Shape:
    """Stands for an object's class in a fingerprint of its state."""

    def __init__(self, name: str) -> None:
        self.name = name


class _ContentFingerprinter(_Fingerprinter):
    """Pickles for a fingerprint with numpy arrays by their contents (for items)."""

    def persistent_id(self, obj: Any) -> Any:
        if _is_numpy_array(obj):
            return (obj.shape, obj.dtype.str, hash(obj.tobytes()))
        return super().persistent_id(obj)


def fingerprint(value: Any, contents: bool = False) -> int | None:
    """A hash of what ``value`` holds, or None if it cannot be pickled.

    With ``contents``, numpy arrays count by what they hold (else by identity:
    captured arrays are read-only instead).
    """
    buffer = io.BytesIO()
    kind = _ContentFingerprinter if contents else _Fingerprinter
    try:
        kind(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except Exception:  # noqa: BLE001 - an object paraloop cannot see into is not checked
        return None
    return hash(buffer.getvalue())


class Guard:
    """The watch over one loop's captured objects, in one process.

    ``where`` is the loop's file and line, for messages.
    """

    def __init__(self, params: tuple[str, ...], values: tuple[Any, ...], skip: frozenset[str], where: str):
        self.where = where
        # (what to call it, the object, its fingerprint)
        self.watched: list[tuple[str, Any, int]] = []
        # Arrays made read-only here, by what to call them, with their previous flag.
        self.arrays: list[tuple[str, Any, bool]] = []
        self._seen: set[int] = set()
        self._lock = threading.Lock()
        # Some watched objects were not checked after the last chunk (their fingerprint
        # costs more than the chunk's share): the loop's end checks them.
        self.pending = False
        self._credit = 0.0
        # What each watched object's fingerprint cost when last taken.
        self._costs: list[float] = []
        # Objects the loop's iterable was seen changing, by id, with that refusal (set by the job).
        self.excused: dict[int, ParaLoopError] = {}
        began = time.perf_counter()
        for name, value in zip(params, values):
            if name not in skip and not name.startswith("__paraloop"):
                try:
                    self._watch(repr(name), value, 0)
                except Exception:  # noqa: BLE001 - logged; the value is then not watched
                    log.debug("cannot watch %r", name, exc_info=True)
        self.cost = time.perf_counter() - began

    # Finding what to watch.
    def _watch(self, label: str, value: Any, depth: int, fingerprinted: bool = False) -> None:
        if id(value) in self._seen:
            return
        # By the real type (see persistent_id).
        if issubclass(type(value), types.ModuleType):
            self._watch_module(label, value)
            return
        if issubclass(type(value), type):
            self._watch_class(label, value)
            return
        if type(value) in ATOMS:
            return
        if type(value).__module__.partition(".")[0] in _ATOM_MODULES:
            return
        self._seen.add(id(value))
        if _is_numpy_array(value):
            self._freeze(label, value)
            return
        if type(value).__name__ == "SharedArray" and type(value).__module__ == "paraloop.shared":
            return  # shared on purpose: its writes land in the one copy
        if isinstance(value, types.FunctionType):
            self._watch_function(label, value)
            return
        if isinstance(value, (types.MethodType, types.BuiltinMethodType)):
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                self._watch(f"{label} (a method of {type(owner).__name__})", owner, depth)
            return
        # Its class's attributes and methods: a method may change them, or globals.
        self._watch_class(f"the class of {label}", type(value))
        if not fingerprinted:
            self._add(label, value)
        if depth < _ARRAY_DEPTH:
            # Arrays and functions inside: the fingerprint leaves them out.
            for inner_label, inner in _inside(label, value):
                self._watch(inner_label, inner, depth + 1, fingerprinted=True)

    def _add(self, label: str, value: Any) -> None:
        began = time.perf_counter()
        digest = fingerprint(value)
        if digest is not None:
            self.watched.append((label, value, digest))
            self._costs.append(time.perf_counter() - began)

    def _watch_module(self, label: str, module: types.ModuleType) -> None:
        """A module of the user's code: its globals."""
        self._seen.add(id(module))
        if not _user_code(module.__name__, getattr(module, "__file__", None)):
            return
        for name, value in list(vars(module).items()):
            if not name.startswith("__"):
                self._watch(f"the global {name!r} of {module.__name__}", value, 0)

    def _watch_class(self, label: str, kind: type) -> None:
        """A class of the user's code: its attributes (``Class.count += 1``) and methods."""
        if id(kind) in self._seen:
            return
        self._seen.add(id(kind))
        if not _user_code(kind.__module__):
            return
        state = _ClassState(kind)
        self._add(f"the attributes of the class {kind.__qualname__}", state)
        for name, attribute in list(vars(kind).items()):
            function = getattr(attribute, "__func__", attribute)
            if isinstance(function, types.FunctionType):
                self._watch_function(f"{kind.__qualname__}.{name}", function)
            elif not name.startswith("__") and not isinstance(
                attribute, (property, functools.cached_property)
            ):
                self._watch(f"{kind.__qualname__}.{name}", attribute, 0, fingerprinted=True)

    def _watch_function(self, label: str, function: types.FunctionType) -> None:
        if not _user_function(function):
            return
        code = function.__code__
        for name, cell in zip(code.co_freevars, function.__closure__ or ()):
            if id(cell) in self._seen:
                continue
            self._seen.add(id(cell))
            label = f"{name!r}, a variable of the function {function.__name__}"
            # Rebinding it (nonlocal) is a change too: the fingerprint is of the cell.
            contents = _CellContents(cell)
            self._add(label, contents)
            try:
                self._watch(label, cell.cell_contents, 0, fingerprinted=True)
            except ValueError:
                pass  # an empty cell
        for default in [*(function.__defaults__ or ()), *(function.__kwdefaults__ or {}).values()]:
            self._watch(f"a default argument of {function.__name__}", default, 0)
        namespace = function.__globals__
        module = namespace.get("__name__", "?")
        for name in sorted(code_names(code)):
            if name in namespace:
                used = f"the global {name!r} of {module} (used by {function.__name__})"
                self._watch(used, namespace[name], 0)

    def _freeze(self, label: str, array: Any) -> None:
        if not array.flags.writeable:
            if shared_here(array):
                # Writable in the caller, read-only here as it came (paraloop.sharing): a write
                # must be reported as a write to it, as for any captured array.
                self.arrays.append((label, array, False))
            return
        try:
            array.flags.writeable = False
        except ValueError:
            return  # a view of memory it does not own: left as it is
        self.arrays.append((label, array, True))

    # Checking.
    def drew(self, before: dict[str, int], after: dict[str, int]) -> ParaLoopError | None:
        """A ParaLoopError if a global random generator moved from ``before`` to ``after`` (both
        read by :func:`paraloop.process_state.generators`, around a chunk).

        A generator first imported during the iteration is not compared: it started
        from fresh entropy, in the plain loop as well (a worker imports the generators
        the caller had before the loop runs, see :data:`GENERATOR_MODULES`).
        """
        if all(after[name] == state for name, state in before.items()):
            return None
        return ParaLoopError(
            f"{self.where}: an iteration drew from the global random generator (in a function it "
            "calls), so each iteration's numbers depend on the draws of every iteration before it. "
            "Give each iteration a generator of its own (rng = random.Random(seed + i), or "
            "numpy.random.default_rng([seed, i])) and pass it to the function, or seed the global "
            "generator at the start of each iteration in the loop's own body (random.seed(...) "
            "written there, where paraloop sees it: a seed inside the function looks like any draw)"
        )

    def check(self, budget: float | None = None) -> ParaLoopError | None:
        """A ParaLoopError naming the first watched object that changed, or None.

        With ``budget`` (seconds this chunk may spend checking, a share of its own
        time), an object whose fingerprint costs more is checked once enough budget
        has gathered over chunks, and :attr:`pending` says some were left; the loop's
        end checks everything (:meth:`check` without a budget).
        """
        if budget is not None:
            self._credit += budget
        pending = False
        for position, (label, value, digest) in enumerate(self.watched):
            cost = self._costs[position]
            if budget is not None and cost > _ALWAYS and cost > self._credit:
                pending = True
                continue
            began = time.perf_counter()
            now = fingerprint(value)
            self._costs[position] = spent = time.perf_counter() - began
            if budget is not None and spent > _ALWAYS:
                self._credit = max(0.0, self._credit - spent)
            if now != digest:
                # The loop's iterable may have made that change (see paraloop.iterable_watch):
                # its own refusal, not one that blames the body.
                return self.excused.get(id(value)) or changed_error(self.where, label, value)
        self.pending = pending
        return None

    def release(self, results: Iterable[Any] = ()) -> None:
        """Give the arrays their write flag back (threads share them with the caller).

        ``results`` are values the loop hands back: a view of one of the arrays made
        during the loop was made read-only too, and is writable again.
        """
        with self._lock:
            arrays, self.arrays = self.arrays, []
        for _label, array, writeable in arrays:
            try:
                array.flags.writeable = writeable
            except ValueError:
                pass
        for value in results:
            if _is_numpy_array(value) and not value.flags.writeable:
                if any(_overlaps(value, array) for _label, array, _flag in arrays):
                    try:
                        value.flags.writeable = True
                    except ValueError:
                        pass

    def array_labels(self) -> list[str]:
        return [label for label, _array, _flag in self.arrays]


def _overlaps(view: Any, array: Any) -> bool:
    start = view.__array_interface__["data"][0]
    origin = array.__array_interface__["data"][0]
    return bool(origin <= start < origin + max(array.nbytes, 1))


def _enum_meta() -> type:
    import enum

    return enum.EnumMeta


class _ClassState:
    """Pickles as a class's data attributes (not its methods and descriptors)."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        # An Enum keeps its caches under _sunder_ names, which it reserves: a Flag caches each
        # combination of members (Perm.R | Perm.W) as the plain program makes it.
        enum_class = isinstance(self.kind, _enum_meta())
        data = {
            name: value
            for name, value in vars(self.kind).items()
            if not name.startswith("__")
            and not (enum_class and len(name) > 2 and name[0] == name[-1] == "_")
            and not isinstance(value, (types.FunctionType, staticmethod, classmethod, property))
            and not isinstance(value, functools.cached_property)
        }
        return (dict, (data,))


class _CellContents:
    """Pickles as what a closure's cell holds (so that rebinding shows in the fingerprint)."""

    __slots__ = ("cell",)

    def __init__(self, cell: Any) -> None:
        self.cell = cell

    def __reduce__(self) -> tuple[Any, ...]:
        try:
            return (tuple, ((self.cell.cell_contents,),))
        except ValueError:
            return (tuple, ((),))


def _inside(label: str, value: Any) -> Iterator[tuple[str, Any]]:
    """The objects directly inside a container or an object's attributes."""
    if isinstance(value, dict):
        for key, inner in list(value.items())[:1000]:
            yield f"{label}[{key!r}]", inner
    elif isinstance(value, (list, tuple)):
        for position, inner in enumerate(value[:1000]):
            yield f"{label}[{position}]", inner
    else:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            for key, inner in list(attributes.items())[:1000]:
                yield f"{label}.{key}", inner


def _kind(value: Any) -> str:
    if isinstance(value, _CellContents):
        return "variable"
    if isinstance(value, _ClassState):
        return "class"
    return f"{type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def reached(params: tuple[str, ...], values: tuple[Any, ...], wanted: Mapping[int, str]) -> dict[str, str]:
    """For the objects ``wanted`` (by id, with their own names), another way the body reaches them.

    Another captured name bound to the same object, an element of a captured
    list or dict, a global or closure variable of a function of the user's code
    that the body calls.  Returns, by the wanted object's name, how it is reached.
    """
    found: dict[str, str] = {}
    seen: set[int] = set()

    def walk(label: str, value: Any, depth: int) -> None:
        name = wanted.get(id(value))
        if name is not None and label != repr(name) and name not in found:
            found[name] = label
        if id(value) in seen or depth > 4 or (type(value) in ATOMS and not issubclass(type(value), type)):
            return
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            if _user_function(value):
                for cell_name, cell in zip(value.__code__.co_freevars, value.__closure__ or ()):
                    try:
                        walk(
                            f"{cell_name!r}, a variable of the function {value.__name__}",
                            cell.cell_contents,
                            depth + 1,
                        )
                    except ValueError:
                        pass
                namespace = value.__globals__
                for global_name in sorted(code_names(value.__code__)):
                    if global_name in namespace:
                        used = f"the global {global_name!r} of the function {value.__name__}"
                        walk(used, namespace[global_name], depth + 1)
            return
        if isinstance(value, (list, tuple)):
            for position, inner in enumerate(value[:1000]):
                walk(f"{label}[{position}]", inner, depth + 1)
        elif isinstance(value, dict):
            for key, inner in list(value.items())[:1000]:
                walk(f"{label}[{key!r}]", inner, depth + 1)
        elif isinstance(getattr(value, "__dict__", None), dict) and not isinstance(value, types.ModuleType):
            for key, inner in list(vars(value).items())[:1000]:
                walk(f"{label}.{key}", inner, depth + 1)

    for param, value in zip(params, values):
        if not param.startswith("__paraloop"):
            walk(repr(param), value, 0)
    return found


def changed_error(where: str, label: str, value: Any) -> ParaLoopError:
    if type(value) is itertools.count:
        return ParaLoopError(
            f"{where}: an iteration advanced {label} (an itertools.count from outside the loop, "
            "through a function it calls); iterations running in parallel would each take its next "
            "number in whatever order they run, and worker processes advance their own copies, so "
            "numbers would repeat. Number the items in the loop's iterable instead, "
            "for item, number in ParaLoop(zip(items, counter)), and hand the number to the "
            "function; or, if each number must follow the one before, the loop is sequential by nature"
        )
    return ParaLoopError(
        f"{where}: an iteration changed {label} (a {_kind(value)} from outside the loop) in a way "
        "paraloop does not combine (through a function it calls, a method kept in a name, an alias "
        "or a view); worker processes change their own copies, so the change would be lost. Update "
        "it in the loop body itself, in a form paraloop combines (x.append(v), x[k] = v, x += v, "
        "total += v), or return the values and apply them after the loop"
    )


def read_only_error(where: str, labels: list[str], error: BaseException) -> ParaLoopError | None:
    """The ParaLoopError for a write into a captured (read-only) array, or None for other errors."""
    if not isinstance(error, ValueError) or "read-only" not in str(error) or not labels:
        return None
    named = labels[0] if len(labels) == 1 else "one of " + ", ".join(labels)
    return ParaLoopError(
        f"{where}: an iteration wrote into {named}, a numpy array from outside the loop, other than "
        "through a form paraloop combines (it was a view, an alias, or a function the body calls); "
        "worker processes write into their own copies, so the writes would be lost. Write through "
        "the array's own name at the iteration's index (out[i] = ..., out[i, :] = ...), or share "
        "it with paraloop.SharedArray"
    )
