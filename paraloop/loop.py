"""``ParaLoop``: the marker a user wraps around a loop's iterable."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .cpus import environment_workers, worker_count
from .environment import variable
from .errors import ParaLoopError, ParaLoopWarning
from .settings import current as current_config

if TYPE_CHECKING:
    from types import FrameType

    from typing_extensions import Never

__all__ = ["BACKENDS", "ParaLoop", "check_settings"]

T = TypeVar("T")

BACKENDS = ("processes", "threads", "sequential", "dask")
# A timeout longer than this (about 115 days) means none: the clocks that enforce one
# (setitimer, select) cannot count that far.
NO_TIMEOUT = 1e7
START_METHODS = ("fork", "forkserver", "spawn")

_NOT_REWRITTEN = (
    "this ParaLoop loop was not rewritten, so it runs sequentially. To run it in "
    "parallel, put the line '# paraloop: enable' at the top of its module and import "
    "paraloop before importing that module, or run the script with "
    "'python -m paraloop script.py'"
)

# What other libraries call the worker count, refused with paraloop's name for it.
_OTHER_NAMES = {"n_jobs": "joblib", "max_workers": "concurrent.futures", "processes": "multiprocessing.Pool"}
# ...and the names of recycling a worker after some tasks, refused with paraloop's.
_RECYCLING_NAMES = {
    "max_tasks_per_child": "concurrent.futures",
    "maxtasksperchild": "multiprocessing.Pool",
    "worker_lifespan": "mpire",
}
_OPTIONS = (
    "num_processes, backend, chunksize, start_method, timeout, progress, scheduler, lanes, native_threads"
)


def _refuse_if_typeguard_took_it(frame: FrameType) -> None:
    """Refuse a loop of a marked module that typeguard's import hook compiled alone.

    typeguard's hook, installed after paraloop's, sits ahead of it on ``sys.meta_path``
    and asks the path finder itself, so paraloop never sees the module.  Rather than run
    a marked loop sequentially, say how to get both.
    """
    from .hook.finder import is_typeguard_loader
    from .hook.marker import has_marker

    namespace = frame.f_globals
    spec = namespace.get("__spec__")
    loader = getattr(spec, "loader", None) or namespace.get("__loader__")
    path = frame.f_code.co_filename
    if not is_typeguard_loader(loader) or not has_marker(path):
        return
    name = namespace.get("__name__", "?")
    raise ParaLoopError(
        f"{path}, line {frame.f_lineno}: module {name!r} carries '# paraloop: enable', but "
        "typeguard's import hook, installed after paraloop's, imported it without paraloop's "
        "rewrite, so this ParaLoop loop would run sequentially. Call paraloop.install() after "
        "typeguard.install_import_hook(...) and before importing the module (paraloop's hook "
        "goes first again, and the module gets both: paraloop's rewrite, then typeguard's "
        "checks), or install typeguard's hook before importing paraloop"
    )


def _unknown(unknown: Mapping[str, Any], where: str) -> ParaLoopError:
    """The error for keywords ``where`` (``ParaLoop`` or ``config``) does not take."""
    known = {**_OTHER_NAMES, **_RECYCLING_NAMES}
    name = next((name for name in unknown if name in known), next(iter(unknown)))
    if name in _RECYCLING_NAMES:
        return ParaLoopError(
            f"{where}({name}={unknown[name]!r}): {name} is {_RECYCLING_NAMES[name]}'s name for replacing "
            "a worker after some tasks; paraloop's is max_iterations_per_worker, an option of the loop: "
            f"ParaLoop(..., max_iterations_per_worker={unknown[name]!r})"
        )
    if name in _OTHER_NAMES:
        return ParaLoopError(
            f"{where}({name}={unknown[name]!r}): {name} is {_OTHER_NAMES[name]}'s name for the worker "
            f"count; paraloop's is num_processes: {where}(..., num_processes={unknown[name]!r}) "
            "(-1: all the CPUs this process may use, -2: all but one)"
        )
    options = _OPTIONS + (", dask_dashboard" if where == "config" else ", max_iterations_per_worker")
    return ParaLoopError(f"{where}() takes no option {name!r}; its options are {options}")


def check_settings(settings: dict[str, Any], unknown: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The settings of a ``paraloop.config`` block, checked as ``ParaLoop`` checks its options."""
    if unknown:
        raise _unknown(unknown, where)
    dashboard = settings.get("dask_dashboard")
    if dashboard is not None and not (
        isinstance(dashboard, bool) or (isinstance(dashboard, int) and 1 <= dashboard <= 65535)
    ):
        raise ParaLoopError(
            f"dask_dashboard={dashboard!r}: give the dashboard's port on 127.0.0.1 (8787), True "
            "(Dask's usual port, 8787) or False (no dashboard)"
        )
    if isinstance(settings.get("progress"), Mapping):
        settings["progress"] = dict(settings["progress"])
    ParaLoop((), **{name: value for name, value in settings.items() if name != "dask_dashboard"})
    return settings


class ParaLoop(Generic[T]):
    """Wrap a ``for`` loop's iterable to run the loop's iterations in parallel.

    In a module marked with ``# paraloop: enable`` (or a script run with
    ``python -m paraloop``), the loop below runs across worker processes and
    leaves ``counter`` exactly as the plain loop would::

        # paraloop: enable
        from paraloop import ParaLoop, Variable, aggregation_strategies

        counter = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        for i in ParaLoop(range(100), num_processes=2):
            counter += i

    Options:

    - ``num_processes``: the number of workers; ``-1``: all the CPUs this
      process may use (the default), ``-2``: all but one (joblib's ``n_jobs``
      convention); ``PARALOOP_WORKERS`` overrides it.
    - ``backend``: ``"processes"`` (default), ``"threads"`` (for iterations
      that mostly wait, or bodies that use locks, open files or sockets) or
      ``"sequential"`` (runs in the caller, for debugging with pdb) or
      ``"dask"`` (a Dask distributed cluster; extra ``paraloop[dask]``);
      ``PARALOOP_BACKEND`` overrides it.
    - ``scheduler``: for ``backend="dask"``, the cluster: a scheduler
      address (``"tcp://10.0.0.5:8786"``) or a ``distributed.Client``;
      default: ``PARALOOP_DASK_SCHEDULER``, else the client the program
      already made, else a ``LocalCluster`` paraloop starts on this machine.
    - ``chunksize``: iterations per message to a worker; default: adapted to
      the measured iteration time.
    - ``start_method``: ``"fork"``, ``"forkserver"`` or ``"spawn"`` for the
      worker processes; default: ``PARALOOP_START_METHOD`` or the platform's.
    - ``timeout``: seconds one iteration may take; a longer one raises
      :class:`~paraloop.IterationTimeoutError` (its worker is stopped).
      ``float("inf")`` (or more than 10**7 s) means no timeout.
    - ``progress``: show a progress bar (tqdm; the notebook widget in
      Jupyter), with the total where the iterable has a ``len()``; a dict
      of tqdm's keywords shows one made with them, ``progress={"desc": "files"}``.
    - ``lanes``: whether a worker whose iterations mostly wait may run several
      of them at once in threads.  ``None`` (default): yes, unless the body
      changes process-wide state (the current directory, the environment,
      ``sys.stdout``, a global random seed, ...); ``False``: never; ``True``:
      always (the body is thread-safe).  ``PARALOOP_LANES=0`` or ``1``
      overrides it.
    - ``native_threads``: threads for each worker's native pools (BLAS and
      OpenMP: numpy, scipy, ...).  ``None`` (default): the worker's share of
      the CPUs, so that workers do not oversubscribe the machine, unless
      ``OMP_NUM_THREADS`` or a similar variable is set (then they are left
      alone); ``False``: leave them alone; a number: that many.
      ``PARALOOP_NATIVE_THREADS`` (``off`` or a number) overrides it.
    - ``max_iterations_per_worker``: replace a worker process by a new one
      after it ran this many iterations (as ``max_tasks_per_child`` of the
      standard library's pools), for bodies that leak memory; results are
      those of the plain loop.  Such a loop's workers run one chunk at a
      time, without lanes.  The threads and sequential backends have no
      worker process to replace and Dask manages its own workers (its
      ``distributed.worker.lifetime`` settings): there it is accepted and has
      no effect.  ``ParaLoop(items, max_iterations_per_worker=100)``.
    - ``caller_runs``: with the processes backend, the calling process runs
      the loop's first iterations itself (for about 2 ms) while the workers
      get ready, so a short loop costs about what the plain loop costs.
      ``None`` (default): where it may (not with ``timeout=``, per-worker
      objects, ``max_iterations_per_worker`` or a body that changes
      process-wide state); ``False``: every iteration runs in a worker (an
      iteration that crashes its process then raises WorkerCrashedError
      rather than ending the program).  ``PARALOOP_CALLER_RUNS=0`` or ``1``
      overrides it.

    An option not given here comes from the innermost :class:`paraloop.config`
    block around the loop, if any.  ``ParaLoop(..., n_jobs=4)`` and
    ``max_workers=4`` are refused with a ParaLoopError that gives paraloop's name.

    Iterated directly (a loop that was not rewritten), it yields the items of
    ``iterable`` in order and warns once that the loop ran sequentially.
    """

    def __init__(
        self,
        iterable: Iterable[T],
        num_processes: int | None = None,
        *,
        backend: str | None = None,
        chunksize: int | None = None,
        start_method: str | None = None,
        timeout: float | None = None,
        progress: bool | Mapping[str, Any] | None = None,
        scheduler: Any = None,
        lanes: bool | None = None,
        native_threads: int | bool | None = None,
        max_iterations_per_worker: int | None = None,
        caller_runs: bool | None = None,
        **unknown: Never,
    ) -> None:
        if unknown:
            raise _unknown(unknown, "ParaLoop")
        # What the loop does not say, the innermost paraloop.config block around it may.
        block = current_config()
        num_processes = block.get("num_processes") if num_processes is None else num_processes
        backend = block.get("backend") if backend is None else backend
        chunksize = block.get("chunksize") if chunksize is None else chunksize
        start_method = block.get("start_method") if start_method is None else start_method
        timeout = block.get("timeout") if timeout is None else timeout
        progress = block.get("progress", False) if progress is None else progress
        scheduler = block.get("scheduler") if scheduler is None else scheduler
        lanes = block.get("lanes") if lanes is None else lanes
        native_threads = block.get("native_threads") if native_threads is None else native_threads
        caller_runs = block.get("caller_runs") if caller_runs is None else caller_runs
        if num_processes is not None:
            num_processes = worker_count(num_processes, "num_processes")
        if chunksize is not None and (
            not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1
        ):
            raise ParaLoopError(f"chunksize={chunksize!r}: give a whole number of at least 1")
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0
        ):
            raise ParaLoopError(f"timeout={timeout!r}: give the seconds one iteration may take, above 0")
        if timeout is not None and timeout > NO_TIMEOUT:
            timeout = None  # float("inf"), or longer than any clock here counts: no timeout
        if backend is not None and backend not in BACKENDS:
            raise ParaLoopError(
                f"backend={backend!r} is not available; choose one of {', '.join(map(repr, BACKENDS))}"
            )
        if start_method is not None and start_method not in START_METHODS:
            raise ParaLoopError(
                f"start_method={start_method!r}: choose one of {', '.join(map(repr, START_METHODS))}"
            )
        self.iterable = iterable
        self.num_processes = num_processes
        self.backend = backend
        self.chunksize = chunksize
        self.start_method = start_method
        self.timeout = float(timeout) if timeout is not None else None
        # (The default first: the first isinstance() of a type against an ABC walks the ABC's
        # subclasses, tens of microseconds of a loop's first run.)
        if type(progress) is not bool and isinstance(progress, Mapping):
            if not all(isinstance(key, str) for key in progress):
                raise ParaLoopError(
                    f"progress={progress!r}: give tqdm's keywords by name, e.g. {{'desc': 'files'}}"
                )
            self.progress_options: dict[str, Any] = dict(progress)
            self.progress = True
        elif isinstance(progress, bool):
            self.progress_options = {}
            self.progress = progress
        else:
            raise ParaLoopError(
                f"progress={progress!r}: give True (a progress bar), False, or a dict of tqdm's "
                "keywords, e.g. {'desc': 'files'}"
            )
        self.scheduler = scheduler
        if lanes is not None and not isinstance(lanes, bool):
            raise ParaLoopError(f"lanes={lanes!r}: give True, False or None (decided by paraloop)")
        self.lanes = lanes
        if (
            native_threads is not None
            and native_threads is not False
            and (not isinstance(native_threads, int) or native_threads is True or native_threads < 1)
        ):
            raise ParaLoopError(
                f"native_threads={native_threads!r}: give a whole number of at least 1, "
                "False (leave native thread pools alone) or None (decided by paraloop)"
            )
        self.native_threads = native_threads
        if max_iterations_per_worker is not None and (
            not isinstance(max_iterations_per_worker, int)
            or isinstance(max_iterations_per_worker, bool)
            or max_iterations_per_worker < 1
        ):
            raise ParaLoopError(
                f"max_iterations_per_worker={max_iterations_per_worker!r}: give a whole number of at "
                "least 1 (iterations a worker process runs before a new one replaces it), or None"
            )
        self.max_iterations_per_worker = max_iterations_per_worker
        if caller_runs is not None and not isinstance(caller_runs, bool):
            raise ParaLoopError(
                f"caller_runs={caller_runs!r}: give False (every iteration runs in a worker) or "
                "None (the caller runs the first iterations while workers start, where it may)"
            )
        self.caller_runs = caller_runs

    def resolved_caller_runs(self) -> bool:
        """Whether the caller may run the first iterations itself (see
        :mod:`paraloop.backends.processes.caller`): ``PARALOOP_CALLER_RUNS`` (0 or 1) overrides
        the code."""
        override = variable("PARALOOP_CALLER_RUNS", "").strip()
        if override:
            if override not in ("0", "1"):
                raise ParaLoopError(
                    f"PARALOOP_CALLER_RUNS={override!r}: give 0 (every iteration runs in a worker) or 1"
                )
            return override == "1"
        return self.caller_runs is not False

    def resolved_lanes(self) -> bool | None:
        """Whether workers may run iterations side by side in threads: ``PARALOOP_LANES``
        (0 or 1) overrides the code; None lets paraloop decide."""
        override = variable("PARALOOP_LANES", "").strip()
        if override:
            if override not in ("0", "1"):
                raise ParaLoopError(f"PARALOOP_LANES={override!r}: give 0 (never) or 1 (allowed)")
            return override == "1"
        return self.lanes

    def resolved_native_threads(self) -> int | bool | None:
        """Threads for each worker's native pools: ``PARALOOP_NATIVE_THREADS`` (``off`` or a
        number) overrides the code; None lets paraloop decide (see :mod:`paraloop.native_threads`)."""
        override = variable("PARALOOP_NATIVE_THREADS", "").strip()
        if override:
            if override.lower() == "off":
                return False
            if not override.isdigit() or int(override) < 1:
                raise ParaLoopError(
                    f"PARALOOP_NATIVE_THREADS={override!r}: give off (leave native thread pools "
                    "alone) or a whole number of at least 1"
                )
            return int(override)
        return self.native_threads

    def resolved_num_processes(self) -> int | None:
        """The worker count: ``PARALOOP_WORKERS`` overrides the code; None: paraloop chooses."""
        override = environment_workers()
        return self.num_processes if override is None else override

    def resolved_backend(self) -> str:
        override = variable("PARALOOP_BACKEND", "").strip()
        if override:
            if override not in BACKENDS:
                raise ParaLoopError(
                    f"PARALOOP_BACKEND={override!r} is not a backend; choose one of {', '.join(BACKENDS)}"
                )
            return override
        return self.backend or "processes"

    def resolved_start_method(self) -> str | None:
        override = variable("PARALOOP_START_METHOD", "").strip()
        if override:
            if override not in START_METHODS:
                raise ParaLoopError(
                    f"PARALOOP_START_METHOD={override!r}: choose one of {', '.join(START_METHODS)}"
                )
            return override
        return self.start_method

    def __iter__(self) -> Iterator[T]:
        _refuse_if_typeguard_took_it(sys._getframe(1))
        warnings.warn(_NOT_REWRITTEN, ParaLoopWarning, stacklevel=2)
        return iter(self.iterable)

    def __repr__(self) -> str:
        return f"ParaLoop({self.iterable!r}, num_processes={self.num_processes!r})"
