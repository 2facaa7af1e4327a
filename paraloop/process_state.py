"""State every thread of a process shares, which iterations running side by side would mix.

With default settings, a worker whose iterations mostly wait runs several of
them at once in threads ("lanes", see :mod:`paraloop.backends.processes.policy`).  That is only
right when iterations cannot see each other.  An iteration that changes the
current directory, the environment, the global random generator's seed,
``sys.stdout`` (``contextlib.redirect_stdout``), the locale, signal handlers,
warnings filters, the recursion limit or pyplot's current figure would leak
into the iterations beside it.  So lanes stay off for a loop:

- whose body calls such a function or assigns such state (seen when the loop
  starts: :func:`describe` names the call), or
- whose first iterations changed such state when they ran in a worker
  (:func:`snapshot` before and after, compared by :func:`changed`).

An iteration that changes it while running in lanes after all fails the loop
with a ParaLoopError naming what changed, rather than returning mixed results.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from . import loaded_modules
from .loaded_modules import imported

__all__ = [
    "changed",
    "count_writes",
    "counted_here",
    "describe",
    "generators",
    "imported_since",
    "numpy_state",
    "settling",
    "snapshot",
]

# Held by paraloop's own code while it changes process-wide state for a moment, and by
# snapshot: dill pickles a code object inside ``warnings.catch_warnings()``, which puts a copy of
# the filters in place until it ends, and a worker pickles one chunk's outcome (a class of the
# script by value, with its methods' code) while lanes of another chunk take their snapshots.
# A snapshot taken meanwhile saw "the warnings filters" changed, and the loop was refused.
settling = threading.RLock()

# Functions of these modules change what every thread of the process sees.
_FUNCTIONS = {
    ("posix", "chdir"): "the current directory",
    ("posix", "fchdir"): "the current directory",
    ("posix", "putenv"): "the environment",
    ("posix", "unsetenv"): "the environment",
    ("posix", "umask"): "the file mode mask",
    ("locale", "setlocale"): "the locale",
    ("_signal", "signal"): "signal handlers",
    ("warnings", "filterwarnings"): "the warnings filters",
    ("warnings", "simplefilter"): "the warnings filters",
    ("warnings", "resetwarnings"): "the warnings filters",
    ("warnings", "catch_warnings"): "the warnings filters",
    ("sys", "setrecursionlimit"): "the recursion limit",
    ("time", "tzset"): "the time zone",
    ("_socket", "setdefaulttimeout"): "the default socket timeout",
    ("contextlib", "redirect_stdout"): "sys.stdout",
    ("contextlib", "redirect_stderr"): "sys.stderr",
}


def describe(function: Any) -> str | None:
    """What process-wide state calling ``function`` changes, or None."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__name__", None)
    if module == "matplotlib.pyplot":
        return "pyplot's current figure"
    found = _FUNCTIONS.get((module or "", name or ""))
    if found is not None:
        return found
    owner = getattr(function, "__self__", None)
    random_module = sys.modules.get("random")
    if random_module is not None and owner is getattr(random_module, "_inst", None) and name == "seed":
        return "the global random generator"
    mtrand = sys.modules.get("numpy.random.mtrand")
    if mtrand is not None and owner is getattr(mtrand, "_rand", None) and name == "seed":
        return "numpy's global random generator"
    if module == "numpy.random" and name == "seed":
        return "numpy's global random generator"
    return None


# Module attributes whose assignment (sys.stdout = ..., os.environ[k] = ...) is process-wide.
MODULE_STATE = {
    ("sys", "stdout"): "sys.stdout",
    ("sys", "stderr"): "sys.stderr",
    ("sys", "stdin"): "sys.stdin",
    ("os", "environ"): "the environment",
    ("sys", "path"): "sys.path",
}


def numpy_state(mtrand: Any) -> int:
    """A digest of numpy's global generator: its key and its position in it (a draw moves the
    position; the key changes only every 624 draws)."""
    _, key, position, has_gauss, gauss = mtrand._rand.get_state()
    return hash((key.tobytes(), position, has_gauss, gauss))


def generators() -> dict[str, int]:
    """Digests of the global random generators' states (``random``'s, numpy's legacy one), by
    module, for those imported: a draw changes its generator's digest.

    ``random.getstate()`` makes 625 ints (a tenth of a tiny loop's cost in the caller, taken four
    times a chunk), so a chunk reads them once before and once after, for both the guard (which
    refuses draws) and :func:`snapshot`.
    """
    states: dict[str, int] = {}
    random_module = imported("random")
    if random_module is not None:
        states["random"] = hash(random_module.getstate())
    mtrand = imported("numpy.random.mtrand")
    if mtrand is not None:
        states["numpy.random.mtrand"] = numpy_state(mtrand)
    return states


def snapshot(random_states: dict[str, int] | None = None) -> tuple[Any, ...]:
    """The process-wide state an iteration may change, cheaply: some microseconds.

    ``random_states``: what :func:`generators` gives now, if the caller has it already.  The
    current directory comes with how often Python changed it (a worker counts, see
    :func:`count_writes`): a folder entered and left again shows.
    """
    if random_states is None:
        random_states = generators()
    if _uncounted:
        _count_imported()
    pyplot = sys.modules.get("matplotlib.pyplot")
    warnings = sys.modules.get("warnings")
    with settling:
        filters = (id(warnings.filters), len(warnings.filters)) if warnings is not None else (None, None)
    # How often the filters changed (a worker, and the caller around its chunks, count it: see
    # warnings_relay.count_mutations): a catch_warnings() left again puts the same list back.
    relay = sys.modules.get("paraloop.warnings_relay")
    mutations = relay._mutations[0] if relay is not None else None
    return (
        (_cwd(), _chdirs[0]),
        _environment(),
        random_states.get("random"),
        random_states.get("numpy.random.mtrand"),
        id(sys.stdout),
        _redirected[0],
        id(sys.stderr),
        _redirected[1],
        *filters,
        mutations,
        sys.getrecursionlimit(),
        tuple(pyplot.get_fignums()) if pyplot is not None else None,
        _sys_path(),
        *_calls,
        # Not compared (no name in _NAMES): how many modules were loaded, for a refusal's advice
        # (see imported_since).
        len(sys.modules),
    )


_NAMES = (
    "the current directory",
    "the environment",
    "the global random generator",
    "numpy's global random generator",
    "sys.stdout",
    "sys.stdout",
    "sys.stderr",
    "sys.stderr",
    "the warnings filters",
    "the warnings filters",
    "the warnings filters",
    "the recursion limit",
    "pyplot's figures",
    "sys.path",
    "signal handlers",
    "the default socket timeout",
    "the file mode mask",
    "the locale",
)


def changed(before: tuple[Any, ...], after: tuple[Any, ...]) -> str | None:
    """What differs between two snapshots, or None.

    A module first imported in between (a worker imports the global random generators
    before its first iteration, see paraloop.guard) starts with state of its own: that is
    no change, except figures pyplot holds already.
    """
    for name, old, new in zip(_NAMES, before, after):
        if old == new:
            continue
        if old is None and name != "the current directory" and (name != "pyplot's figures" or not new):
            continue
        return name
    return None


def imported_since(before: tuple[Any, ...]) -> list[str]:
    """The top-level packages of the modules first imported since the snapshot ``before``, in
    the order they were (sys.modules keeps it): the first is the one an iteration imported, the
    others mostly what it imports."""
    names: list[str] = []
    for name in list(sys.modules)[before[-1] :]:
        top = name.partition(".")[0]
        if top not in names and not top.startswith("_"):
            names.append(top)
    return names


def _sys_path() -> tuple[int, Any]:
    # A list a program may replace or change in place: its identity and what it holds.
    path = sys.path
    try:
        return id(path), hash(tuple(path))
    except TypeError:  # an entry that is no string, nor hashable
        return id(path), tuple(map(id, path))


def _environment() -> tuple[int, int]:
    # The bytes os.environ keeps (``_data``) hash without decoding each name and value:
    # a few microseconds rather than tens.  With the count of writes (see count_writes): lanes
    # that each set a variable and remove it again leave it as it was, yet read each other's.
    data = getattr(os.environ, "_data", None)
    return _writes[0], hash(frozenset((data if isinstance(data, dict) else os.environ).items()))


# How often the environment was written, and the current directory changed, in this process
# since count_writes.
_writes = [0]
_chdirs = [0]
# How often a signal handler, the default socket timeout, the file mode mask and the locale were
# set in this process since count_writes (a function of the program's own that the body calls
# may set them, which the look at the body's own calls does not see, and put them back before
# it returns: reading them around an iteration would not see that either).
_calls = [0, 0, 0, 0]
_CALLS = {
    ("signal", "signal"): 0,
    ("socket", "setdefaulttimeout"): 1,
    ("os", "umask"): 2,
    ("locale", "setlocale"): 3,
}


def count_writes() -> None:
    """In a worker process: count every write to the environment (``os.environ`` calls
    ``os.putenv`` and ``os.unsetenv`` for each), so that a snapshot tells a variable set and
    removed again from one never touched: in lanes, an iteration that does so reads the
    variables of those beside it (one read another's, or found it removed: a KeyError the plain
    loop never raises), and its snapshots before and after were the same.  Likewise every
    change of the current directory by ``os.chdir`` or ``os.fchdir`` (``contextlib.chdir`` too):
    an iteration that goes into a folder and back.  A call that fails, or leaves the directory
    as it was, changes nothing and counts nothing.

    The counting functions replace the originals in ``posix`` as well as ``os``: ``from os
    import chdir`` after this gets them, and they pickle by reference as the originals do
    (``posix.chdir``, the original in the process that loads it).  A name bound to an original
    before (a module the program imported before a fork worker was forked from it) still calls
    it uncounted: a part's look at the directory around itself may see such a visit.
    """
    if _worker_counts[0]:
        return
    _worker_counts[0] = True
    # Every thread's calls count here: a worker's lanes are threads.  (A process forked while
    # its parent counted one thread's calls has the counting functions already.)
    _counting_thread[0] = None
    if not getattr(os.putenv, "__paraloop_counting__", False):
        _install(_os_counters())
    _install(_redirect_counters())
    _uncounted.update(_CALLS)
    _count_imported()


# Whether count_writes ran in this process.
_worker_counts = [False]


@contextlib.contextmanager
def counted_here() -> Iterator[None]:
    """In the calling process, while its thread runs a chunk of a loop: count what
    :func:`count_writes` counts in a worker (the functions of :data:`_CALLS` whose modules are
    imported too), from this thread alone, and put the originals back afterwards.

    Without it the caller's first iterations, whose snapshots decide whether the workers may run
    lanes, saw nothing of an environment variable set and removed again within an iteration, or
    of ``locale.getpreferredencoding()`` (which sets the locale and puts it back): lanes started,
    and the workers, which count, refused the loop.  Only this thread's calls count: the
    program's other threads (and paraloop's own, starting workers meanwhile) are not the chunk's.
    """
    if _worker_counts[0] or _counting_thread[0] is not None:
        yield  # a worker counts already; a nested loop runs inside the outer one's chunk
        return
    counters, missing = _caller_counters[0]
    if (
        not counters
        or not all(getattr(module, name, None) is original for module, name, original, _ in counters)
        or any(name in sys.modules for name in missing)
    ):
        # Made once (20 us, against 4 for putting them in place), again only if the program
        # replaced a function since, or imported a module of _CALLS.
        counters = _os_counters() + _redirect_counters()
        missing = []
        for module_name, name in _CALLS:
            module = imported(module_name)
            if module is not None:
                counters.extend(_call_counters(module, module_name, name, _CALLS[module_name, name]))
            else:
                missing.append(module_name)
        _caller_counters[0] = (counters, missing)
    _counting_thread[0] = threading.get_ident()
    _install(counters)
    try:
        yield
    finally:
        _counting_thread[0] = None
        for module, name, original, counting in counters:
            if getattr(module, name, None) is counting:  # the program may have set its own since
                setattr(module, name, original)
        os.supports_fd.difference_update(counting for _, _, _, counting in counters)


# The counting functions counted_here puts in place, with the originals they replace, and the
# modules of _CALLS not imported when they were made.
_caller_counters: list[tuple[list[tuple[Any, str, Any, Any]], list[str]]] = [([], [])]

# Where the counting functions count only one thread's calls (see counted_here): its ident.
_counting_thread: list[int | None] = [None]


def _counts() -> bool:
    only = _counting_thread[0]
    return only is None or only == threading.get_ident()


def _like(original: Any) -> Callable[[Any], Any]:
    """``functools.wraps`` for the counting functions, at a third of its cost on a program's first
    loop (it tries attributes a built-in function lacks): the names pickle finds them by (they
    pickle by reference, as the originals do) and ``__wrapped__``."""

    def dressed(function: Any) -> Any:
        function.__module__ = original.__module__
        function.__name__ = original.__name__
        function.__qualname__ = original.__qualname__
        function.__doc__ = original.__doc__
        function.__wrapped__ = original
        return function

    return dressed


def _os_counters() -> list[tuple[Any, str, Any, Any]]:
    """(module, name, original, counting function) for os's and posix's directory and
    environment changes (see count_writes)."""
    posix: Any = sys.modules.get(os.name)

    def moved(change: Any) -> Any:
        @_like(change)
        def counted(*args: Any, **kwargs: Any) -> None:
            if not _counts():
                return change(*args, **kwargs)  # type: ignore[no-any-return]
            before = _cwd()
            change(*args, **kwargs)
            if before is None or _cwd() != before:
                _chdirs[0] += 1

        return counted

    def written(write: Any) -> Any:
        @_like(write)
        def counted(*args: Any, **kwargs: Any) -> None:
            if _counts():
                _writes[0] += 1
            write(*args, **kwargs)

        return counted

    counters = []
    for name, count in (("chdir", moved), ("fchdir", moved), ("putenv", written), ("unsetenv", written)):
        original = getattr(os, name)
        counting = count(original)
        counting.__paraloop_counting__ = True
        counters.append((os, name, original, counting))
        if posix is not None and getattr(posix, name, None) is original:
            counters.append((posix, name, original, counting))
    return counters


def _redirect_counters() -> list[tuple[Any, str, Any, Any]]:
    """Count each ``contextlib.redirect_stdout`` and ``redirect_stderr`` entered: one left again
    puts the same stream back, and a function of the program's that wraps its work in one changed
    what the iterations beside it print into.  (The class's method: a name bound to
    ``redirect_stdout`` before counts too.)"""
    redirect = getattr(contextlib, "_RedirectStream", None)
    original = getattr(redirect, "__enter__", None)
    if original is None or getattr(original, "__paraloop_counting__", False):
        return []

    @_like(original)
    def entered(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _counts():
            _redirected[0 if getattr(self, "_stream", None) == "stdout" else 1] += 1
        return original(self, *args, **kwargs)

    entered.__paraloop_counting__ = True
    return [(redirect, "__enter__", original, entered)]


# How often redirect_stdout and redirect_stderr were entered (see _redirect_counters).
_redirected = [0, 0]


def _install(counters: list[tuple[Any, str, Any, Any]]) -> None:
    for module, name, original, counting in counters:
        setattr(module, name, counting)
        if original in os.supports_fd:
            # What asks whether os.chdir takes a descriptor gets the same answer.
            os.supports_fd.add(counting)


# The functions of _CALLS not counted yet: their modules were not imported (importing them for
# this would cost a worker's start milliseconds; a later snapshot counts them once they are).
_uncounted: set[tuple[str, str]] = set()
# loaded_modules.state() when _count_imported last looked.
_looked: list[Any] = [None]


def _count_imported() -> None:
    # Looked at again only once sys.modules changed (a snapshot per lane part is a hot path).
    now = loaded_modules.state()
    if _looked[0] == now:
        return
    _looked[0] = now
    for module_name, name in list(_uncounted):
        module = imported(module_name)
        if module is not None:
            _uncounted.discard((module_name, name))
            _count_calls(module, module_name, name, _CALLS[module_name, name])


def _count_calls(module: Any, module_name: str, name: str, slot: int) -> None:
    """Count each call of ``module_name.name`` that sets its state (see :data:`_CALLS`), in the
    module and wherever its original lives under the same name (``_socket``, ``posix``).
    Counted before the call: one that fails in a thread other than the main one
    (``signal.signal``) was still an attempt to change what every thread sees."""
    _install(_call_counters(module, module_name, name, slot))


def _call_counters(module: Any, module_name: str, name: str, slot: int) -> list[tuple[Any, str, Any, Any]]:
    original = getattr(module, name, None)
    if original is None or getattr(original, "__paraloop_counting__", False):
        return []
    reads = module_name == "locale"

    @_like(original)
    def counted(*args: Any, **kwargs: Any) -> Any:
        # locale.setlocale(category) with no locale, or None, only reads it.
        if _counts() and (not reads or (args[1] if len(args) > 1 else kwargs.get("locale")) is not None):
            _calls[slot] += 1
        return original(*args, **kwargs)

    counted.__paraloop_counting__ = True
    counters = [(module, name, original, counted)]
    for home in ("_" + module_name, os.name):
        other = sys.modules.get(home)
        if other is not None and getattr(other, name, None) is original:
            counters.append((other, name, original, counted))
    return counters


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None  # the directory was removed
