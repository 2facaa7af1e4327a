"""Bytes on the wire: the standard pickle where it can, dill where it must.

The standard pickle is several times faster than dill on plain data (large
dicts of strings and numbers), so items and results go through it first.
Anything it cannot carry, and anything that refers to ``__main__`` (which a
spawned worker does not have: it never runs the user's script), goes through
dill, which sends functions and classes of ``__main__`` by value.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib
import io
import itertools
import marshal
import os
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import loaded_modules, process_state
from .sharing import reduce_shared

__all__ = [
    "Carried",
    "bound_here",
    "dumps",
    "dumps_by_value",
    "dumps_function_job",
    "dumps_global",
    "dumps_job",
    "held_at",
    "importing_module",
    "loads",
    "sent_by_name",
]

_PICKLE = b"P"
_DILL = b"D"


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` with the fastest serializer that can carry it."""
    with _pickling_here():
        return _dumps(obj)


# How deep this thread is in dumps or dumps_by_value.
_pickling = threading.local()


@contextlib.contextmanager
def _pickling_here() -> Iterator[None]:
    """While this thread pickles, a stand-in asked for a name it lacks answers that it has none
    (see _stand_in_module): pickle asks to see whether a function may go by reference."""
    _pickling.depth = getattr(_pickling, "depth", 0) + 1
    try:
        yield
    finally:
        _pickling.depth -= 1


def _pickling_now() -> bool:
    return bool(getattr(_pickling, "depth", 0))


def _dumps(obj: Any) -> bytes:
    global _false_alarms
    if _false_alarms >= FALSE_ALARMS:
        checked = _without_references(obj, _by_value_modules())
        return _PICKLE + checked if checked is not None else dumps_by_value(obj)
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - any failure means: let dill try
        pass
    else:
        if not _names_module(data, "__main__") and not _names_importing(data):
            return _PICKLE + data
        # The bytes hold the name as a string: most often a string among the data (a word
        # counted, a path), not a reference.  Pickled again, noting what is pickled by
        # reference, a false alarm costs one more C pickling instead of dill's, tens of times
        # slower for large data (a 70,000-key dict: 12 ms against 280 ms).
        checked = _without_references(obj, _by_value_modules())
        if checked is not None:
            _false_alarms += 1
            return _PICKLE + checked
    return dumps_by_value(obj)


# False alarms seen (see dumps): after a few, a loop's data (the words it counts) will most
# likely raise them again, and the noting pickler goes first (one pickling instead of two).
_false_alarms = 0
FALSE_ALARMS = 3


def _by_value_modules() -> set[str]:
    """The modules whose functions and classes travel by value: the script, and the modules
    the caller is still importing."""
    return {"__main__", *filter(_importing_module, _importing)}


class _ReferenceFinder(pickle.Pickler):
    """The standard pickle, noting whether an object it pickles belongs to one of ``modules``
    (a function, a class, or an instance of one): such objects travel by reference, which a
    worker cannot follow to the script or to a module the caller is still importing.

    ``reducer_override`` is called for every object but None, booleans and exact ints,
    floats, bytes, str, dict, set, frozenset, list and tuple, and before a class or a
    function is pickled as a global: the C pickler's speed, one Python call per other object.
    """

    def __init__(self, file: io.BytesIO, modules: set[str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules = modules
        self.found = False

    def reducer_override(self, obj: Any) -> Any:
        try:
            module = obj.__module__
        except Exception:  # noqa: BLE001 - an object without one (or that refuses to say)
            module = None
        if module is None and isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            # Pickled by reference to the module where pickle finds it, maybe the script.
            self.found = True
        elif type(module) is str and module in self.modules:
            self.found = True
        return NotImplemented


def _without_references(obj: Any, modules: set[str]) -> bytes | None:
    """``obj`` pickled by the standard pickle if nothing in it belongs to ``modules``, else None."""
    buffer = io.BytesIO()
    finder = _ReferenceFinder(buffer, modules)
    try:
        finder.dump(obj)
    except Exception:  # noqa: BLE001 - dill then tries, or names what cannot travel
        return None
    return None if finder.found else buffer.getvalue()


def _names_module(data: bytes, name: str) -> bool:
    """Whether pickle ``data`` (protocol 4 or later, the C pickler's) may name module ``name``.

    A reference to a module's function or class pickles the module's name as a string of its
    own, and the first time a string occurs it is written whole: for a short one, the opcode
    SHORT_BINUNICODE, its length and its bytes.  Looking for exactly that, rather than for the
    name's bytes anywhere, a string that merely contains it (a path to ``json/__main__.py``
    among a loop's items) does not send the data through dill, several times slower.  A
    string equal to the name does (false alarms cost time, never correctness).
    """
    encoded = name.encode()
    size = len(encoded)
    if size < 256:
        return b"\x8c" + bytes((size,)) + encoded in data
    return b"X" + size.to_bytes(4, "little") + encoded in data


# Modules of the user's that the caller was still importing when a loop started (the loop
# runs at their top level): a worker must not import them, which would run their top level
# again, loop included.  Their functions and classes travel by value, like __main__'s, and
# a worker gives them a stand-in module (see :func:`stand_in`).
_importing: set[str] = set()


# A module the caller is importing, as a worker's stand-in gets it: its name, a package's
# __path__, and what its namespace holds from elsewhere (name: module, attribute or None).
# Its plain constants too (``SCALE = 3``), for a submodule that imports them from it.
Importing = tuple[str, "list[str] | None", "dict[str, tuple[str, str | None]]", "dict[str, Any]"]


def importing_now() -> tuple[Importing, ...]:
    """The user's modules this thread is importing now, noted for :func:`dumps` as well."""
    found: list[Importing] = []
    for name, module in _being_imported():
        if _users_half_imported(name, module) and _imported_here(name):
            path = getattr(module, "__path__", None)
            found.append(
                (name, list(path) if path is not None else None, _from_elsewhere(module), _constants(module))
            )
    _importing.update(name for name, _, _, _ in found)
    return tuple(found)


def _being_imported() -> list[tuple[str, Any]]:
    """The modules some import may still be running: those with an import lock alive (a few),
    rather than all of sys.modules (hundreds, at every loop's start)."""
    try:
        from importlib import _bootstrap

        names = list(_bootstrap._module_locks)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a Python without these internals: every module
        return list(sys.modules.items())
    return [(name, sys.modules[name]) for name in names if name in sys.modules]


def _from_elsewhere(module: types.ModuleType) -> dict[str, tuple[str, str | None]]:
    """The module's names bound to other modules, or to what other modules hold under the same
    name (``from typing import Optional``): a stand-in gets them, for code that reads the
    module's namespace directly (``typing.get_type_hints``)."""
    found: dict[str, tuple[str, str | None]] = {}
    for name, value in list(vars(module).items()):
        if name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__ in sys.modules and not _importing_module(value.__name__):
                found[name] = (value.__name__, None)
            continue
        home = getattr(value, "__module__", None)
        if isinstance(home, str) and home != module.__name__ and home in sys.modules:
            try:
                if getattr(sys.modules[home], name, None) is value:
                    found[name] = (home, name)
            except Exception:  # noqa: BLE001 - a module whose attributes raise: left out
                continue
    return found


# Values that are data and nothing else (module_stores compares them by value too); a stand-in
# gets the module's constants made of them, small and pickled at C speed.
ATOMS = (type(None), bool, int, float, complex, str, bytes)
CONSTANT_CHARACTERS = 10_000


def _constants(module: types.ModuleType) -> dict[str, Any]:
    """The module's names bound to plain data (numbers, short strings, tuples of them): what a
    submodule may import from it (``from package import SCALE``) while a worker runs the loop."""
    found: dict[str, Any] = {}
    for name, value in list(vars(module).items()):
        if not name.startswith("__") and _is_constant(value, 3):
            found[name] = value
    return found


def _is_constant(value: Any, depth: int) -> bool:
    if type(value) in ATOMS:
        return not isinstance(value, (str, bytes)) or len(value) <= CONSTANT_CHARACTERS
    if type(value) in (tuple, frozenset) and depth and len(value) <= 64:
        return all(_is_constant(item, depth - 1) for item in value)
    return False


def _initializing(module: Any) -> bool:
    """Whether ``module`` is being imported (its top level has not finished), or reloaded by
    this thread: ``importlib.reload`` runs the top level again holding the module's import lock,
    without marking its spec."""
    # Read from its namespace: getattr would run a wrapper's __getattr__ (sys.modules may hold
    # anything: a placeholder whose every attribute raises ImportError).
    namespace = loaded_modules.namespace(module)
    spec = namespace.get("__spec__") if namespace is not None else None
    if getattr(spec, "_initializing", False):
        return True
    name = getattr(spec, "name", None)
    return isinstance(name, str) and _reloading_here(name)


def _reloading_here(name: str) -> bool:
    try:
        owner = _import_lock_owner(name)
    except Exception:  # noqa: BLE001 - a Python without these internals: no reload is seen
        return False
    return owner == threading.get_ident()


def _import_lock_owner(name: str) -> int | None:
    """The thread that holds module ``name``'s import lock, or None; raises on a Python without
    importlib's internals."""
    from importlib import _bootstrap

    reference = _bootstrap._module_locks.get(name)  # type: ignore[attr-defined]
    lock = reference() if reference is not None else None
    owner: int | None = getattr(lock, "owner", None)
    return owner


def _users_half_imported(name: str, module: types.ModuleType) -> bool:
    """A module of the user's own (not installed, not paraloop's, not ``__main__``) whose import
    has not finished."""
    if name == "__main__" or not _initializing(module):
        return False
    namespace = loaded_modules.namespace(module)
    filename = namespace.get("__file__") if namespace is not None else None
    return type(filename) is str and not installed(filename) and name.partition(".")[0] != "paraloop"


def _imported_here(name: str) -> bool:
    """Whether this thread (not another one) holds the import lock of module ``name``."""
    try:
        owner = _import_lock_owner(name)
    except Exception:  # noqa: BLE001 - a Python without these internals: assume this thread
        return True
    return owner is None or owner == threading.get_ident()


def _importing_module(name: str | None) -> bool:
    return name in _importing and _initializing(sys.modules.get(name or ""))


def _names_importing(data: bytes) -> bool:
    return any(_names_module(data, name) and _importing_module(name) for name in _importing)


# In a worker: the stand-ins it made, by name.
_stand_ins: dict[str, types.ModuleType] = {}


# True in a paraloop worker process (set by paraloop.backends.processes.child).
in_worker_process = False


def stand_in(importing: tuple[Importing, ...]) -> None:
    """In a worker, as a loop's job arrives: a stand-in module for each module the caller is
    importing (see :data:`_importing`), which the functions and classes that travel by value
    fill; the stand-ins of earlier loops go, and so does what a fork left of a module that was
    half imported then, so that a module the caller has finished importing is imported here
    for real when something needs it."""
    _importing.clear()  # the caller's (inherited by a fork): this process imports nothing
    names = {name for name, _, _, _ in importing}
    for name in list(_stand_ins):
        if name not in names and sys.modules.get(name) is _stand_ins.pop(name):
            del sys.modules[name]
    for name, module in list(sys.modules.items()):
        if name not in names and _users_half_imported(name, module):
            del sys.modules[name]  # half of it, forever: this process does not run its import
    add_stand_ins(importing)


def add_stand_ins(importing: tuple[Importing, ...]) -> list[str]:
    """A stand-in for each module of ``importing`` this process lacks; their names.  Nothing
    else of the process changes: a Dask worker runs other programs' tasks too (and, in the
    caller's own process, has the modules themselves)."""
    added = []
    for name, path, elsewhere, constants in importing:
        if name in sys.modules:
            continue
        module = _stand_ins[name] = sys.modules[name] = _stand_in_module(name, path)
        added.append(name)
        for attribute, value in constants.items():
            setattr(module, attribute, value)
        for attribute, (home, inner) in elsewhere.items():
            try:
                value = importlib.import_module(home)
                setattr(module, attribute, getattr(value, inner) if inner else value)
            except Exception:  # noqa: BLE001 - not here: the stand-in does without it
                continue
    return added


def drop_stand_in(name: str) -> None:
    """Take away the stand-in of module ``name`` (if it still stands in): a later import is real."""
    module = _stand_ins.pop(name, None)
    if module is not None and sys.modules.get(name) is module:
        del sys.modules[name]


def _stand_in_module(name: str, path: list[str] | None) -> types.ModuleType:
    """An empty module ``name``; asked for something that did not travel by value (an Enum, a
    cached function, a TypeVar), it imports the real module after all, running its top level
    here (as multiprocessing's workers do), and answers from it."""
    module = types.ModuleType(name)
    if path is not None:
        module.__path__ = list(path)  # submodules of a package import as usual

    def __getattr__(attribute: str) -> Any:
        # Pickling, pickle (and dill) look each function and class up by its qualified name, to
        # see whether it may go by reference: one the stand-in lacks goes by value instead, and
        # the real module is not imported (its top level would run here, loop included).  A
        # lambda's name (``<lambda>``) is in no module at all.
        if attribute.startswith("__") or not attribute.isidentifier() or _pickling_now():
            raise AttributeError(attribute)
        if sys.modules.get(name) is module:
            del sys.modules[name]
            _stand_ins.pop(name, None)
        real = importlib.import_module(name)
        for key, value in vars(module).items():
            if not key.startswith("__") and key not in vars(real):
                setattr(real, key, value)
        return getattr(real, attribute)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _register(module: str, qualname: str, value: Any) -> Any:
    """Put a function or class rebuilt by value into its stand-in module: a result that refers
    to it by name then finds it, in the worker and in the caller."""
    if not qualname.isidentifier():
        return value  # nested, or a lambda: not an attribute of its module
    found = sys.modules.get(module)
    # Its namespace, not getattr: a stand-in asked for a name it lacks imports the real module.
    existing = vars(found).get(qualname) if found is not None else None
    if isinstance(value, type) and isinstance(existing, type) and existing.__qualname__ == qualname:
        # The class this process has (the caller's own, or one a forked worker inherited).
        return existing
    if found is not None and (
        _stand_ins.get(module) is found or (_initializing(found) and in_worker_process)
    ):
        # A stand-in, or what a fork left of the module: it gets the caller's current version,
        # so a result that is this function goes back by name, as the caller's own.
        setattr(found, qualname, value)
    return value


def dumps_by_value(obj: Any) -> bytes:
    """Serialize with dill, functions and classes of ``__main__`` by value."""
    buffer = io.BytesIO()
    with _pickling_here():
        _pickler_class()(buffer, protocol=pickle.HIGHEST_PROTOCOL, recurse=True).dump(obj)
    return _DILL + buffer.getvalue()


def dumps_job(obj: Any, bound: list[Any]) -> bytes:
    """A loop's job by value, as :func:`dumps_by_value`, noting in ``bound`` each object bound
    to this process (:func:`paraloop.items.bound_to_this_process`) that it pickles, wherever
    it is (a bound method's ``__self__``, a dict, an attribute): dill would copy it, and a
    copy is another file or lock (see :func:`held_at`, which finds where)."""
    buffer = io.BytesIO()
    with _pickling_here():
        pickler = _job_pickler_class()(buffer, protocol=pickle.HIGHEST_PROTOCOL, recurse=True)
        pickler.bound = bound
        pickler.exempt = set()
        pickler.dump(obj)
    return _DILL + buffer.getvalue()


def dumps_function_job(obj: Any, function: types.FunctionType) -> bytes | None:
    """``obj`` with ``function`` by value through the standard pickle, or None if dill is needed.

    dill finds a function's globals by disassembling it and pickles in pure
    Python: several milliseconds for a loop's first job, all of it before any
    worker can start.  For the common case (a body that uses importable
    functions, modules of the standard library or of installed packages, and
    plain values) the standard pickle does the same work in a fraction of
    that: the function's code goes through :mod:`marshal`, with the globals it
    names; the script's own functions (``__main__``) travel so too.  Anything it
    cannot carry as dill would (a class of the script or of a module being
    imported, a closure, a module of the user's own project) falls back to dill.
    """
    buffer = io.BytesIO()
    try:
        _FunctionPickler(buffer, function).dump(obj)
    except Exception:  # noqa: BLE001 - dill handles it, or names what cannot travel
        return None
    data = buffer.getvalue()
    if _names_module(data, "__main__"):
        # Something of the script's by reference (its functions travel by value, naming their
        # module None for this check), or the text in a constant: dill sorts it out.
        return None
    return _PICKLE + data


def dumps_global(value: Any) -> bytes | None:
    """A module global's value for the workers (see :mod:`paraloop.module_globals`), or None
    if it cannot go: large numpy arrays go through shared memory, as in a job; a value that
    holds something bound to this process (a file, a lock), or that cannot be pickled, stays
    behind (the worker keeps its own)."""
    buffer = io.BytesIO()
    with _pickling_here():
        try:
            _GlobalPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        except Exception:  # noqa: BLE001 - dill may carry it
            pass
        else:
            data = buffer.getvalue()
            if not _names_module(data, "__main__") and not _names_importing(data):
                return _PICKLE + data
    bound: list[Any] = []
    try:
        data = dumps_job(value, bound)
    except Exception:  # noqa: BLE001 - it stays behind
        return None
    return None if bound else data


class _GlobalPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if _bound_here(obj):
            raise _NeedsDill  # dill's job pickling notes it, and the value stays behind
        return reduce_shared(obj)


def sent_by_name(module: types.ModuleType) -> bool:
    """Whether ``module`` travels by name: an installed one, a built-in one, or paraloop's."""
    return _sent_by_name(module)


def importing_module(name: str | None) -> bool:
    """Whether the caller is importing module ``name`` now (its functions travel by value)."""
    return _importing_module(name)


def bound_here(obj: Any) -> bool:
    """Whether ``obj`` belongs to this process (an open file, a lock, a socket)."""
    return _bound_here(obj)


class _NeedsDill(Exception):
    pass


class _FunctionPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, function: types.FunctionType) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.function = function

    def reducer_override(self, obj: Any) -> Any:
        shared = reduce_shared(obj)
        if shared is not NotImplemented:
            return shared
        if _bound_here(obj):
            # Most such objects fail here anyway; one that would not (a class registered as a
            # file) goes to dill's job pickling, which notes it.
            raise _NeedsDill
        if isinstance(obj, types.FunctionType) and (
            obj is self.function
            or obj.__module__ == "__main__"  # a worker's __main__ is not the script: by value
            or not _locatable(obj)
            or _importing_module(obj.__module__)
        ):
            if (dispatching := _reduce_singledispatch(obj)) is not NotImplemented:
                return dispatching
            if obj.__closure__:
                raise _NeedsDill
            # The globals, defaults and attributes as state: pickle remembers the function before
            # it saves them, so a function that names itself or one that names it back (mutual
            # recursion) refers to the one being rebuilt instead of recursing without end.
            return _function, _function_head(obj), _function_state(obj), None, None, _set_function_state
        if isinstance(obj, type) and (obj.__module__ == "__main__" or _importing_module(obj.__module__)):
            raise _NeedsDill  # dill sends it by value
        if isinstance(obj, types.ModuleType):
            if not _sent_by_name(obj):
                raise _NeedsDill  # dill sends its namespace
            return importlib.import_module, (obj.__name__,)
        return NotImplemented


def _locatable(function: types.FunctionType) -> bool:
    """Whether the standard pickle finds ``function`` by its module and qualified name."""
    found: Any = sys.modules.get(function.__module__)
    for part in function.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is function


def _paraloop_module(module: types.ModuleType) -> bool:
    return module.__name__ == "paraloop" or module.__name__.startswith("paraloop.")


def _sent_by_name(module: types.ModuleType) -> bool:
    """Modules dill sends by name (installed ones) and paraloop's own."""
    name = module.__name__
    if _paraloop_module(module):
        return True
    filename = getattr(module, "__file__", None)
    if filename is None:
        return hasattr(module, "__spec__") and name in sys.builtin_module_names
    return installed(filename)


def installed(filename: str) -> bool:
    """Whether ``filename`` is part of the interpreter's installation (the standard library, a
    package installed into it), not the user's own code."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return any(filename.startswith(prefix + "/") for prefix in prefixes)


def code_names(code: types.CodeType) -> set[str]:
    """The global names ``code`` (and the code nested in it) may read, the names its nested
    ParaLoop loops read included (see :func:`_loop_names`)."""
    return _names(code, instructions=True)


def _loop_names(code: types.CodeType) -> set[str]:
    """The global names the ParaLoop loops rewritten inside ``code`` read.

    A loop's body function receives what the body uses as parameters, which the runtime
    looks up by name when the loop starts (paraloop.runtime._capture): those not local to
    the code around the loop come from its globals, though no instruction names them.  A
    function sent by value must take them along.
    """
    return _names(code, instructions=False)


def _names(code: types.CodeType, instructions: bool) -> set[str]:
    """The names of :func:`_loop_names` in ``code`` and the code nested in it; with
    ``instructions``, those its instructions name as well (``co_names``)."""
    names = set(code.co_names) if instructions else set()
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant, instructions)
            if constant.co_name.startswith(_BODY_PREFIX):
                names |= _body_parameters(constant, code)
    return names


def _body_parameters(body: types.CodeType, around: types.CodeType) -> set[str]:
    local = {*around.co_varnames, *around.co_cellvars, *around.co_freevars}
    return {name for name in body.co_varnames[1 : body.co_argcount] if name not in local}


# How the rewriter (paraloop.hook.rewriter) names a loop's body function.
_BODY_PREFIX = "__paraloop_body_"


def _function_head(function: types.FunctionType) -> tuple[Any, ...]:
    return (
        marshal.dumps(function.__code__),
        None if function.__module__ == "__main__" else function.__module__,
        function.__name__,
        function.__qualname__,
    )


def _function_state(function: types.FunctionType) -> tuple[Any, ...]:
    namespace = function.__globals__
    used = {name: namespace[name] for name in sorted(code_names(function.__code__)) if name in namespace}
    # What the script set on the function (helper.factor = 3) and its annotations: dill sent them too.
    return (
        used,
        function.__defaults__,
        function.__kwdefaults__,
        function.__dict__ or None,
        function.__annotations__ or None,
    )


def _function(code: bytes, module: str | None, name: str, qualname: str) -> types.FunctionType:
    """Rebuild a function sent by :func:`dumps_function_job`; :func:`_set_function_state` then
    gives it the globals it uses, its defaults and its attributes."""
    module = module or "__main__"
    namespace = {"__builtins__": builtins, "__name__": module}
    function = types.FunctionType(marshal.loads(code), namespace, name)
    function.__qualname__ = qualname
    function.__module__ = module
    return _register(module, qualname, function)  # type: ignore[no-any-return]


def _set_function_state(function: types.FunctionType, state: tuple[Any, ...]) -> types.FunctionType:
    used, defaults, kwdefaults, attributes, annotations = state
    function.__globals__.update(used)
    function.__defaults__ = defaults
    function.__kwdefaults__ = kwdefaults
    if attributes:
        function.__dict__.update(attributes)
    if annotations:
        function.__annotations__ = annotations
    return function


def _with_finder(parts: tuple[Any, ...], find: Any) -> Any:
    whole, kind, args, state, notes, cause, context, suppress, described = parts
    return _rebuilt(whole, kind, args, state, notes, cause, context, suppress, described, find)


def _resolved(link: Any) -> BaseException | None:
    # A link whose class only the caller has, rebuilt without a way to find it: left out.
    return None if isinstance(link, Unresolved) else link


_pickler: type | None = None
_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


def _pickler_class() -> type:
    """dill's pickler, except that paraloop's own modules always travel by name.

    dill sends a module that lies outside the interpreter's prefix (a project
    directory, an editable install) with its whole namespace, so that the
    receiver sees the sender's current module attributes.  That is right for
    the user's modules, but every worker function refers to paraloop's runtime,
    and its namespace cost milliseconds to pickle for every loop.
    """
    global _pickler
    if _pickler is None:
        import dill  # type: ignore[import-untyped,unused-ignore]

        save_module = dill.Pickler.dispatch[types.ModuleType]

        def save_module_by_name(pickler: Any, module: types.ModuleType) -> None:
            # From a worker (an outcome), every module by name: a worker's copy of the user's
            # module must not overwrite the caller's (dill sends one with its namespace).
            if _paraloop_module(module) or in_worker_process:
                pickler.save_reduce(importlib.import_module, (module.__name__,), obj=module)
            else:
                save_module(pickler, module)

        def save_lock(pickler: Any, lock: Any) -> None:
            # A lock inside a class or object sent by value (cached_property holds one)
            # arrives as a new, unlocked lock: dill would rebuild it in the state it had,
            # held by a thread the worker does not have, and every worker would wait on it.
            fresh = threading.RLock if type(lock) is _RLOCK else threading.Lock
            pickler.save_reduce(fresh, (), obj=lock)

        from .warnings_relay import unmutated

        save_code = dill.Pickler.dispatch[types.CodeType]

        def save_code_settled(pickler: Any, code: types.CodeType) -> None:
            # dill reads the code's fields inside warnings.catch_warnings(), which puts other
            # filters in place for a moment: not while a lane of this worker looks at them, and
            # without making the registries forget what they showed.
            with process_state.settling, unmutated():
                save_code(pickler, code)

        _by_value_for_importing_modules(dill)
        _globals_of_nested_loops(dill)
        _quiet_nested_globals(dill)
        dispatch = type(dill.Pickler.dispatch)(dill.Pickler.dispatch)
        dispatch[types.ModuleType] = save_module_by_name
        dispatch[_LOCK] = save_lock
        dispatch[_RLOCK] = save_lock
        dispatch[types.CodeType] = save_code_settled
        for kind in _FILE_TYPES:
            dispatch[kind] = functools.partial(_save_file, dispatch.get(kind))
        _pickler = type(
            "_Pickler",
            (dill.Pickler,),
            # reducer_override: large captured arrays go through shared memory (paraloop.sharing).
            {"dispatch": dispatch, "paraloop": True, "reducer_override": _reduce_shared},
        )
    return _pickler


# The types of the objects ``open()`` makes, which dill would carry by opening their path again.
_FILE_TYPES = (io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.BufferedRandom, io.FileIO)


def _save_file(dills: Any, pickler: Any, file: Any) -> None:
    """A file travels as a closed file of the same name, made without opening its path; an open
    one cannot travel, but the standard streams, which dill sends by name (``dills``: dill's
    own way for this type).

    dill opens the file's path again where it arrives, in the file's mode: a name a loop body
    bound with ``with open(path, "w") as f``, sent back to the caller, emptied the file the
    iteration had just written (and a copy of an open file would be another file).
    """
    if dills is not None and any(
        file is stream
        for stream in (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    ):
        dills(pickler, file)
        return
    if not file.closed:
        raise pickle.PicklingError(
            f"{type(file).__module__}.{type(file).__qualname__} {getattr(file, 'name', '?')!r} is an "
            "open file: it belongs to the process that opened it"
        )
    mode = getattr(file, "mode", "r")
    pickler.save_reduce(closed_file, (getattr(file, "name", None), mode, type(file).__name__), obj=file)


def closed_file(name: Any, mode: str, kind: str) -> Any:
    """A closed file of type ``kind`` (see _FILE_TYPES) named ``name``: ``/dev/null`` opened and
    closed (no path of the program's is opened), as a closed file of that name looks."""
    raw = io.FileIO(_DEVNULL, "r+")
    if name is not None:
        raw.name = name
    file: Any = raw
    if kind == "TextIOWrapper":
        file = io.TextIOWrapper(io.BufferedRandom(raw))
        file.mode = mode
    elif kind in ("BufferedReader", "BufferedWriter", "BufferedRandom"):
        file = getattr(io, kind)(raw)
    file.close()
    return file


_DEVNULL = os.devnull


def _reduce_shared(pickler: Any, obj: Any) -> Any:
    if type(obj) is types.FunctionType and (
        obj.__module__ == "__main__" or _importing_module(obj.__module__) or not _locatable(obj)
    ):
        return _reduce_singledispatch(obj)
    if isinstance(obj, type) and (obj.__module__ == "__main__" or _importing_module(obj.__module__)):
        if "__orig_bases__" in obj.__dict__:
            return _reduce_generic(obj)
        return _reduce_enum(obj)
    if _is_typevar(obj) and (obj.__module__ == "__main__" or _importing_module(obj.__module__)):
        return _typevar, (
            obj.__name__,
            obj.__constraints__,
            obj.__bound__,
            obj.__covariant__,
            obj.__contravariant__,
            obj.__module__,
        )
    return reduce_shared(obj)


_job_pickler: type | None = None


def _job_pickler_class() -> type:
    global _job_pickler
    if _job_pickler is None:
        _job_pickler = type("_JobPickler", (_pickler_class(),), {"reducer_override": _reduce_in_job})
    return _job_pickler


def _reduce_in_job(pickler: Any, obj: Any) -> Any:
    if _bound_here(obj):
        if not _standard_stream(obj) and id(obj) not in pickler.exempt:
            pickler.bound.append(obj)
    elif type(obj) is functools.cached_property:
        # Its lock (before Python 3.12) makes threads wait for one computation of the value:
        # each worker computes its own, and a new lock there does that as well.
        pickler.exempt.add(id(getattr(obj, "lock", None)))
    return _reduce_shared(pickler, obj)


# Whether objects of a type are bound to this process, by type (pickling asks for every object):
# a type is judged once, by paraloop.items.bound_to_this_process, which goes by type alone.
_bound_types: dict[type, bool] = {}
# Emptied when it grows past this: some programs make classes without end.
_BOUND_TYPES = 4096


def _bound_here(obj: Any) -> bool:
    """Whether ``obj`` is bound to this process, judged once per type."""
    bound = _bound_types.get(type(obj))
    return _judged(obj) if bound is None else bound


def _judged(obj: Any) -> bool:
    from .items import bound_to_this_process

    bound = bound_to_this_process(obj)
    kind = type(obj)
    if getattr(obj, "__class__", None) is kind:  # a proxy that poses as another class: not kept
        if len(_bound_types) >= _BOUND_TYPES:
            _bound_types.clear()
        _bound_types[kind] = bound
    return bound


def _standard_stream(obj: Any) -> bool:
    """``sys.stdout`` and the like: what the body prints there is output, which goes to the
    worker's own stream as ``print`` does (dill sends them as references to it)."""
    return any(
        obj is stream
        for stream in (sys.stdout, sys.stderr, sys.stdin, sys.__stdout__, sys.__stderr__, sys.__stdin__)
    )


# How many objects held_at looks at from one captured value, and from all, before it gives up:
# it runs only for a job that holds an object bound to this process, but its values may be large.
HELD_AT_OBJECTS = 50_000
HELD_AT_ALL_OBJECTS = 200_000
# How much of what an object holds held_at takes in one turn.
HELD_AT_TURN = 32
_MORE = object()

# A step from an object to what it holds: (the way, a key) formats as the way does, later.
_Step = tuple[str, Any]
_ITEM, _ATTRIBUTE, _ELEMENT, _TYPE, _SUFFIX = "item", "attribute", "element", "type", "suffix"


def held_at(
    roots: list[tuple[str, Any]], targets: Mapping[int, Any], wide: bool
) -> tuple[str, str, Any] | None:
    """A short way from one of ``roots`` (name, value) to one of ``targets`` (by id): the
    root's name, the way as an expression (``holder['out']``, ``write.__self__``, ``log.f``)
    and the target; or None.

    It follows what the values hold: items of lists, tuples, sets and dicts, attributes of
    objects, a bound method's object, a partial's arguments, a closure's cells, the defaults
    of a function and, for a function sent by value, the globals it uses.  ``wide`` also
    follows the namespaces of classes and modules sent by value.  Breadth first, one root at
    a time, so that a large value does not hide a file a small one holds.
    """
    from collections import deque

    from .resources import PerWorker

    _HOLD_NOTHING.add(PerWorker)
    looked = 0
    for name, root in roots:
        # (value, the entry it was reached from, the step from there), or (_MORE, the entry of a
        # container, the rest of what it holds): a container gives a few at a time, so that a
        # large one does not hide what its siblings hold.
        queue: deque[tuple[Any, Any, Any]] = deque([(root, None, None)])
        seen: set[int] = set()
        while queue and len(seen) < HELD_AT_OBJECTS and looked < HELD_AT_ALL_OBJECTS:
            entry = queue.popleft()
            value = entry[0]
            if value is _MORE:
                parent, rest = entry[1], entry[2]
                try:
                    taken = list(itertools.islice(rest, HELD_AT_TURN))
                except Exception:  # noqa: BLE001 - an object that refuses to show what it holds
                    continue
                queue.extend((inner, parent, step) for step, inner in taken if type(inner) not in ATOMS)
                if len(taken) == HELD_AT_TURN:
                    queue.append(entry)
                continue
            if id(value) in targets:
                return name, _way(name, entry), value
            if id(value) in seen:
                continue
            seen.add(id(value))
            looked += 1
            queue.append((_MORE, entry, _held(value, wide)))
    return None


def _way(name: str, entry: tuple[Any, Any, _Step | None]) -> str:
    steps: list[_Step] = []
    while entry[2] is not None:
        steps.append(entry[2])
        entry = entry[1]
    way = name
    for kind, key in reversed(steps):
        if kind == _ITEM:
            way = f"{way}[{key!r}]"
        elif kind == _ATTRIBUTE:
            way = f"{way}.{key}"
        elif kind == _ELEMENT:
            way = f"an element of {way}"
        elif kind == _TYPE:
            way = f"type({way})"
        else:
            way += key
    return way


def _held(value: Any, wide: bool) -> Iterator[tuple[_Step, Any]]:
    kind = type(value)
    if kind in _HOLD_NOTHING or kind.__module__.partition(".")[0] == "numpy":
        return  # made in each worker; an array holds numbers
    if isinstance(value, dict):
        yield from (((_ITEM, key), inner) for key, inner in list(value.items()))
    elif isinstance(value, (list, tuple)):
        yield from (((_ITEM, position), inner) for position, inner in enumerate(value))
    elif isinstance(value, (set, frozenset)):
        yield from (((_ELEMENT, None), inner) for inner in list(value))
    elif isinstance(value, types.MethodType):
        yield (_ATTRIBUTE, "__self__"), value.__self__
        yield (_ATTRIBUTE, "__func__"), value.__func__
    elif isinstance(value, types.BuiltinMethodType):
        owner = value.__self__
        if owner is not None and not isinstance(owner, types.ModuleType):
            yield (_ATTRIBUTE, "__self__"), owner
    elif isinstance(value, types.FunctionType):
        yield from _held_by_function(value)
    elif isinstance(value, functools.partial):
        yield (_ATTRIBUTE, "func"), value.func
        yield from (((_SUFFIX, f".args[{n}]"), argument) for n, argument in enumerate(value.args))
        yield from (((_SUFFIX, f".keywords[{k!r}]"), argument) for k, argument in value.keywords.items())
    elif isinstance(value, type):
        if wide and (value.__module__ == "__main__" or _importing_module(value.__module__)):
            yield from (((_ATTRIBUTE, name), inner) for name, inner in list(vars(value).items()))
    elif isinstance(value, types.ModuleType):
        if wide and not _sent_by_name(value):
            yield from (((_ATTRIBUTE, name), inner) for name, inner in list(vars(value).items()))
    else:
        yield from _attributes(value)
        if wide:
            yield (_TYPE, None), kind  # its class's attributes travel with it (by value)


def _held_by_function(function: types.FunctionType) -> Iterator[tuple[_Step, Any]]:
    for position, cell in enumerate(function.__closure__ or ()):
        try:
            contents = cell.cell_contents
        except ValueError:
            continue  # an empty cell
        yield (_SUFFIX, f".__closure__[{position}].cell_contents"), contents
    for n, default in enumerate(function.__defaults__ or ()):
        yield (_SUFFIX, f".__defaults__[{n}]"), default
    for k, default in (function.__kwdefaults__ or {}).items():
        yield (_SUFFIX, f".__kwdefaults__[{k!r}]"), default
    if (
        function.__module__ == "__main__"
        or _importing_module(function.__module__)
        or not _locatable(function)
    ):
        namespace = function.__globals__
        for name in sorted(code_names(function.__code__)):
            if name in namespace:
                yield (_SUFFIX, f".__globals__[{name!r}]"), namespace[name]


def _attributes(value: Any) -> Iterator[tuple[_Step, Any]]:
    """An object's attributes, read around its own ``__getattr__`` (a proxy's would make or
    fetch something)."""
    try:
        state = object.__getattribute__(value, "__dict__")
    except Exception:  # noqa: BLE001 - no __dict__
        state = None
    if isinstance(state, dict):
        yield from (((_ATTRIBUTE, name), inner) for name, inner in list(state.items()))
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            stored = name
            if name.startswith("__") and not name.endswith("__") and cls.__name__.strip("_"):
                stored = f"_{cls.__name__.lstrip('_')}{name}"
            try:
                inner = object.__getattribute__(value, stored)
            except Exception:  # noqa: BLE001 - an empty slot, or a mangled name
                continue
            yield (_ATTRIBUTE, name), inner


# Types whose objects hold nothing held_at follows: made in each worker (per_worker handles),
# or plain data.
_HOLD_NOTHING: set[type] = {*ATOMS, bytearray, range, memoryview}


def _is_typevar(obj: Any) -> bool:
    typing = sys.modules.get("typing")
    return typing is not None and isinstance(obj, typing.TypeVar)


def _typevar(
    name: str, constraints: tuple[Any, ...], bound: Any, covariant: bool, contravariant: bool, module: str
) -> Any:
    """A TypeVar of the script (or of a module being imported) sent by value: the one this process
    has under that name, or a new one kept there, so that classes generic in it agree."""
    import typing

    home = sys.modules.get(module)
    existing = vars(home).get(name) if home is not None else None
    if isinstance(existing, typing.TypeVar) and existing.__name__ == name:
        return existing
    made = typing.TypeVar(  # type: ignore[misc]
        name, *constraints, bound=bound, covariant=covariant, contravariant=contravariant
    )
    made.__module__ = module
    if home is not None and existing is None:
        if module == "__main__":
            setattr(home, name, made)
        else:
            _register(module, name, made)
    return made


# What types.new_class makes of a class statement itself, not of its body.
_CLASS_MADE = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__orig_bases__", "__parameters__"}
)


def _reduce_generic(cls: type) -> Any:
    """A generic class (``class Box(typing.Generic[T])``) that travels by value, as its name and
    generic bases, then the rest of its body once it exists; or NotImplemented (a class with
    ``__slots__``, left to dill).

    dill rebuilds one through ``types.new_class``: a new class each time, so results came back
    as instances of a copy (``type(r) is Box`` false) and a worker's chunks each had their own.
    """
    if "__slots__" in cls.__dict__:
        return NotImplemented
    head = (type(cls), cls.__name__, cls.__dict__["__orig_bases__"], cls.__module__, cls.__qualname__)
    rest = {name: value for name, value in cls.__dict__.items() if name not in _CLASS_MADE}
    return _generic, head, rest, None, None, _set_class


def _generic(metaclass: Any, name: str, bases: tuple[Any, ...], module: str, qualname: str) -> Any:
    """The generic class this process has under that name, or a new one (see :func:`_kept_class`)."""
    import types as _types

    return _kept_class(
        module,
        name,
        qualname,
        lambda existing: "__orig_bases__" in vars(existing),
        lambda: _types.new_class(
            name,
            bases,
            None if metaclass is type else {"metaclass": metaclass},
            lambda namespace: namespace.update(__module__=module, __qualname__=qualname),
        ),
    )


def _set_class(cls: Any, rest: dict[str, Any]) -> Any:
    if cls in _made_classes:
        for name, value in rest.items():
            type.__setattr__(cls, name, value)
    return cls


def _reduce_enum(cls: type) -> Any:
    """An Enum class that travels by value, as what makes it: its members' names and values,
    its bases and ``__init__``, then (once it exists) the rest of what its body defined, or
    NotImplemented.

    dill cannot send one (its members refer to the class: "recursive self-references"), and
    sent by reference it cannot be found in a spawned or fork server's worker.  An Enum with
    its own ``__new__`` is left to dill (Enum keeps that under names that differ by version).
    """
    import enum

    if not isinstance(cls, enum.EnumMeta) or not cls.__members__ or "__new__" in _body(cls):
        return NotImplemented
    metaclass = type(cls)
    found: Mapping[str, Any] = cls.__members__
    members = tuple((name, member._value_) for name, member in found.items())
    init = cls.__dict__.get("__init__")
    head = (metaclass, cls.__name__, cls.__bases__, members, init, cls.__module__, cls.__qualname__)
    names = _enum_body_names.get(cls)
    if names is None:
        # What the body defined: what a class made of the head alone lacks.
        fresh = _make_enum(*head)
        names = _enum_body_names[cls] = [
            name
            for name in cls.__dict__
            if (name not in fresh.__dict__ or name == "__doc__") and name not in cls.__members__
        ]
    rest = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    return _enum, head, rest, None, None, _set_class


_enum_body_names: weakref.WeakKeyDictionary[type, list[str]] = weakref.WeakKeyDictionary()
# Classes this process rebuilt (rather than found): they take the rest of their body.
_made_classes: weakref.WeakSet[type] = weakref.WeakSet()


def _body(cls: type) -> dict[str, Any]:
    # What the class statement defined that Enum moves: a __new__ of the body is kept as
    # _new_member_ (3.11 on) or __new_member__ (3.10).
    found = {}
    for name in ("_new_member_", "__new_member__"):
        new = cls.__dict__.get(name)
        if new is not None and getattr(new, "__module__", None) == cls.__module__:
            found["__new__"] = new
    return found


def _enum(
    metaclass: Any,
    name: str,
    bases: tuple[type, ...],
    members: tuple[tuple[str, Any], ...],
    init: Any,
    module: str,
    qualname: str,
) -> Any:
    """The Enum class this process has under that name, or a new one (see :func:`_kept_class`)."""
    return _kept_class(
        module,
        name,
        qualname,
        lambda existing: isinstance(existing, metaclass),
        lambda: _make_enum(metaclass, name, bases, members, init, module, qualname),
    )


def _kept_class(
    module: str, name: str, qualname: str, fits: Callable[[Any], bool], make: Callable[[], type]
) -> Any:
    """The class this process has as ``module.name`` if it ``fits`` (the caller's own, for a
    result; one a forked worker inherited, or rebuilt for an earlier chunk), else one ``make``
    gives, kept there so that later chunks and results find it (see :func:`_main_type`); a
    class made here takes the rest of its body (:func:`_set_class`)."""
    home = sys.modules.get(module)
    existing = vars(home).get(name) if home is not None and qualname.isidentifier() else None
    if isinstance(existing, type) and existing.__qualname__ == qualname and fits(existing):
        return existing
    made = make()
    _made_classes.add(made)
    if module == "__main__" and home is not None and existing is None:
        setattr(home, name, made)
        return made
    return _register(module, qualname, made)


def _make_enum(
    metaclass: Any,
    name: str,
    bases: tuple[type, ...],
    members: tuple[tuple[str, Any], ...],
    init: Any,
    module: str,
    qualname: str,
) -> Any:
    namespace = metaclass.__prepare__(name, bases)
    namespace["__module__"] = module
    namespace["__qualname__"] = qualname
    if init is not None:
        namespace["__init__"] = init
    for member, value in members:
        namespace[member] = value
    return metaclass(name, bases, namespace)


def _reduce_singledispatch(function: types.FunctionType) -> Any:
    """A ``functools.singledispatch`` function that travels by value, as its default and its
    registered implementations (each by value or by name, as any function), or NotImplemented.

    Sent as the function it is (a closure over its registry and a weak-keyed cache), dill
    recursed without end on it.  The state (the implementations) is set once the function
    exists, so an implementation that calls the function itself (a recursive dispatch)
    refers to the one being rebuilt.
    """
    registry = getattr(function, "registry", None)
    if not (
        function.__closure__
        and isinstance(registry, types.MappingProxyType)
        and object in registry
        and callable(getattr(function, "register", None))
        and callable(getattr(function, "dispatch", None))
    ):
        return NotImplemented
    pairs = tuple((kind, implementation) for kind, implementation in registry.items() if kind is not object)
    return _singledispatch, (), (registry[object], pairs), None, None, _set_singledispatch


def _unset(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("paraloop: a singledispatch function still being rebuilt was called")


def _singledispatch() -> Any:
    import functools

    return functools.singledispatch(_unset)


def _set_singledispatch(function: Any, state: tuple[Any, tuple[tuple[Any, Any], ...]]) -> Any:
    import functools

    default, pairs = state
    function.register(object, default)
    for kind, implementation in pairs:
        function.register(kind, implementation)
    functools.update_wrapper(function, default)
    return function


def _by_value_for_importing_modules(dill: Any) -> None:
    """Make dill send functions and classes of a module the caller is importing by value.

    dill decides by name (``_locate_function``) whether an object travels by reference;
    it treats ``__main__`` so.  Only paraloop's own pickler is affected.
    """
    locate = getattr(dill._dill, "_locate_function", None)
    if locate is None or getattr(locate, "paraloop", False):
        return

    def _locate_function(obj: Any, pickler: Any = None) -> bool:
        if getattr(pickler, "paraloop", False) and _importing_module(getattr(obj, "__module__", None)):
            return False
        return bool(locate(obj, pickler))

    _locate_function.paraloop = True  # type: ignore[attr-defined]
    dill._dill._locate_function = _locate_function


def _globals_of_nested_loops(dill: Any) -> None:
    """Make dill send a function by value with the globals its nested ParaLoop loops read
    (see :func:`_loop_names`): dill finds a function's globals in its instructions alone.

    ``save_function`` imports ``dill.detect.globalvars`` at each call, so the module's
    attribute is replaced; only while paraloop pickles in this thread does it add names.
    """
    detect = dill.detect
    original = detect.globalvars
    if getattr(original, "paraloop", False):
        return

    def globalvars(func: Any, recurse: bool = True, builtin: bool = False) -> Any:
        found = original(func, recurse, builtin)
        if recurse and _pickling_now() and isinstance(func, types.FunctionType) and func.__globals__:
            namespace = func.__globals__
            for name in _loop_names(func.__code__):
                if name not in found and name in namespace:
                    found[name] = namespace[name]
        return found

    globalvars.paraloop = True  # type: ignore[attr-defined]
    detect.globalvars = globalvars


def _quiet_nested_globals(dill: Any) -> None:
    """dill finds the global names of a function it sends by value by printing the function's
    disassembly into ``sys.stdout``, a StringIO meanwhile (``dill.temp.capture``): what another
    thread printed then went there instead, and a worker's lane whose iterations began before
    saw ``sys.stdout`` changed, and refused the loop.  The same names, from the instructions."""
    import dis

    detect = dill.detect
    if getattr(detect.nestedglobals, "paraloop", False):
        return

    def nestedglobals(func: Any, recurse: bool = True) -> list[str]:
        code = detect.code(func)
        if code is None:
            return []
        names = {
            instruction.argval
            for instruction in dis.get_instructions(code)
            if "_GLOBAL" in instruction.opname and isinstance(instruction.argval, str)
        }
        if recurse:
            for constant in code.co_consts:
                if constant and detect.iscode(constant):
                    names.update(nestedglobals(constant, recurse=True))
        return list(names)

    nestedglobals.paraloop = True  # type: ignore[attr-defined]
    detect.nestedglobals = nestedglobals


def _main_type(kind: type, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """Rebuild a class sent by value (of ``__main__``, or of a module the caller is importing),
    or reuse the one this process has.

    Without this, a dataclass defined in the user's script would come back
    from a worker as a new class of the same name: ``isinstance`` and ``==``
    with the script's own objects would fail.  A worker keeps the classes it
    rebuilds in its ``__main__`` (or the module's stand-in), so later items and
    results refer to one class; a worker's class takes the attributes that arrive
    with it, which the caller may have changed since the last loop.
    """
    module = str(namespace.get("__module__"))
    qualname = str(namespace.get("__qualname__", name))
    home = sys.modules.get(module)
    existing = vars(home).get(name) if home is not None and qualname.isidentifier() else None
    if isinstance(existing, type) and existing.__qualname__ == qualname:
        if in_worker_process:
            _refresh(existing, namespace)
        return existing
    created: type = _create_type(kind, name, bases, namespace)
    if module == "__main__" and home is not None and existing is None:
        setattr(home, name, created)
        return created
    return _register(module, qualname, created)  # type: ignore[no-any-return]


def _refresh(kind: type, namespace: dict[str, Any]) -> None:
    """Give a plain class (not an Enum, not one with a metaclass) the attributes that arrived."""
    if type(kind) is not type:
        return
    for key, value in namespace.items():
        if key.startswith("_") or kind.__dict__.get(key) is value:
            continue
        try:
            setattr(kind, key, value)
        except (AttributeError, TypeError):
            pass


def _create_type(kind: type, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    import dill  # type: ignore[import-untyped,unused-ignore]

    created: type = dill._dill._create_type(kind, name, bases, namespace)
    return created


def _unpickler(payload: memoryview) -> Any:
    import dill  # type: ignore[import-untyped,unused-ignore]

    class _Unpickler(dill.Unpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if module == "dill._dill" and name == "_create_type":
                return _main_type
            return super().find_class(module, name)

    return _Unpickler(io.BytesIO(payload))


def failing_item(data: bytes | memoryview) -> int | None:
    """For a serialized list whose loading raised: the position of the item that raised, if
    the standard pickle's own (pure Python) unpickler can tell where it stopped."""
    view = memoryview(data)
    if bytes(view[:1]) != _PICKLE:
        return None
    unpickler = pickle._Unpickler(io.BytesIO(view[1:]))
    try:
        unpickler.load()
    except Exception:  # noqa: BLE001 - where it stopped is the answer
        outer = getattr(unpickler, "metastack", None)
        inner = getattr(unpickler, "stack", None)
        # Stopped inside the list's run of items: [the list] outside, the items built so far
        # and the one that raised (left on the stack by REDUCE and BUILD) inside.
        if outer and len(outer) == 1 and outer[0] and isinstance(outer[0][-1], list) and inner:
            return len(outer[0][-1]) + len(inner) - 1
        # A list of one item is built without a mark: [the list, the item].
        if not outer and inner and len(inner) == 2 and isinstance(inner[0], list):
            return len(inner[0])
    return None


def loads(data: bytes | memoryview) -> Any:
    view = memoryview(data)
    tag, payload = bytes(view[:1]), view[1:]
    if tag == _PICKLE:
        return pickle.loads(payload)
    if tag == _DILL:
        return _unpickler(payload).load()
    raise ValueError(f"unknown paraloop payload tag {tag!r}")


# How deep a chain of causes and contexts travels with an exception.
_CHAIN_DEPTH = 8


# A context that is the exception's cause (see _parts).
_SAME_AS_CAUSE = "same as cause"


class Carried:
    """An exception on its way from a worker: it arrives as its own class, with its chain.

    The standard pickle of an exception calls its class with ``args``: an
    exception whose ``__init__`` takes other arguments cannot be rebuilt that
    way, and its ``__cause__`` and ``__context__`` are not sent at all.  A
    carried exception is rebuilt without calling ``__init__`` when it must be
    (so ``except TheirClass:`` still catches it), with its attributes, notes,
    cause and context, as far as each of them can travel.
    """

    __slots__ = ("classes", "error")

    def __init__(self, error: BaseException, classes: Mapping[int, Any] | None = None) -> None:
        self.error = error
        # Classes the caller has under a name the loop captured (a class defined in the
        # function around the loop): they travel as references to the caller's class.
        self.classes = classes or {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, _parts(self.error, _CHAIN_DEPTH, set(), self.classes))


class Unresolved:
    """An exception whose class is the caller's own: rebuilt once the caller resolves it."""

    def __init__(self, parts: tuple[Any, ...]) -> None:
        self.parts = parts

    def resolve(self, find: Any) -> BaseException:
        """The exception, its class found by ``find`` (a reference to the caller's class)."""
        rebuilt: BaseException = _with_finder(self.parts, find)
        return rebuilt


def _parts(error: BaseException, depth: int, seen: set[int], classes: Mapping[int, Any]) -> tuple[Any, ...]:
    seen.add(id(error))
    whole: bytes | None = None
    if id(type(error)) not in classes:
        try:
            data = dumps(error)
            whole = data if type(loads(data)) is type(error) else None
        except Exception:  # noqa: BLE001 - rebuilt from its parts instead
            whole = None
    kind: bytes | None = None
    if id(type(error)) in classes:
        kind = dumps(classes[id(type(error))])
    elif whole is None:
        try:
            kind = dumps(type(error))
        except Exception:  # noqa: BLE001 - described by a ParaLoopError instead
            kind = None
    args = tuple(_portable(arg) for arg in error.args)
    state = {key: value for key, value in vars(error).items() if _travels(value)} if kind is not None else {}
    chain: list[tuple[Any, ...] | str | None] = []
    for link in (error.__cause__, error.__context__):
        if link is not None and link is error.__cause__ and chain:
            # raise ... from error, inside its except: the one exception is both.
            chain.append(_SAME_AS_CAUSE)
        elif link is None or depth <= 0 or id(link) in seen:
            chain.append(None)
        else:
            chain.append(_parts(link, depth - 1, seen, classes))
    notes = [str(note) for note in getattr(error, "__notes__", ())]
    described = f"{type(error).__module__}.{type(error).__qualname__}: {_text(error)}"
    return (whole, kind, args, state, notes, chain[0], chain[1], error.__suppress_context__, described)


def _portable(value: Any) -> Any:
    return value if _travels(value) else repr(value)


def _travels(value: Any) -> bool:
    try:
        dumps(value)
    except Exception:  # noqa: BLE001
        return False
    return True


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        return repr(error.args)


def _rebuilt(
    whole: bytes | None,
    kind: bytes | None,
    args: tuple[Any, ...],
    state: dict[str, Any],
    notes: list[str],
    cause: tuple[Any, ...] | None,
    context: tuple[Any, ...] | str | None,
    suppress: bool,
    described: str,
    find: Any = None,
) -> Any:
    error: BaseException
    if whole is not None:
        error = loads(whole)
    elif kind is not None:
        cls = loads(kind)
        if not isinstance(cls, type):
            if find is None:
                parts = (whole, kind, args, state, notes, cause, context, suppress, described)
                return Unresolved(parts)
            cls = find(cls)
        error = cls.__new__(cls, *args)
        error.args = args
        if isinstance(error, SystemExit):
            # SystemExit.__init__, not __new__, sets its code (as for SystemExit(*args)).
            code: Any = args[0] if len(args) == 1 else (args or None)
            error.code = code
        vars(error).update(state)
    else:
        from .errors import ParaLoopError

        error = ParaLoopError(f"{described} (its class could not be sent from the worker process)")
    if notes:
        error.__notes__ = list(notes)  # type: ignore[attr-defined]
    if cause is not None:
        error.__cause__ = _resolved(_with_finder(cause, find))
    if isinstance(context, str):  # _SAME_AS_CAUSE
        error.__context__ = error.__cause__
    elif context is not None:
        error.__context__ = _resolved(_with_finder(context, find))
    error.__suppress_context__ = suppress
    return error
