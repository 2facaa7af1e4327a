"""``ParaLoop``: the marker a user wraps around a loop's iterable."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from .errors import ParaLoopError, ParaLoopWarning

__all__ = ["BACKENDS", "ParaLoop"]

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

    - ``num_processes``: the number of workers; default: the CPUs this process
      may use, or ``PARALOOP_WORKERS``.
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
      Jupyter), with the total where the iterable has a ``len()``.
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
        progress: bool = False,
        scheduler: Any = None,
        lanes: bool | None = None,
        native_threads: int | bool | None = None,
    ) -> None:
        if num_processes is not None and (
            not isinstance(num_processes, int) or isinstance(num_processes, bool) or num_processes < 1
        ):
            raise ParaLoopError(f"num_processes={num_processes!r}: give a whole number of at least 1")
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
        self.progress = bool(progress)
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

    def resolved_lanes(self) -> bool | None:
        """Whether workers may run iterations side by side in threads: ``PARALOOP_LANES``
        (0 or 1) overrides the code; None lets paraloop decide."""
        override = os.environ.get("PARALOOP_LANES", "").strip()
        if override:
            if override not in ("0", "1"):
                raise ParaLoopError(f"PARALOOP_LANES={override!r}: give 0 (never) or 1 (allowed)")
            return override == "1"
        return self.lanes

    def resolved_native_threads(self) -> int | bool | None:
        """Threads for each worker's native pools: ``PARALOOP_NATIVE_THREADS`` (``off`` or a
        number) overrides the code; None lets paraloop decide (see :mod:`paraloop.native_threads`)."""
        override = os.environ.get("PARALOOP_NATIVE_THREADS", "").strip()
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

    def resolved_backend(self) -> str:
        override = os.environ.get("PARALOOP_BACKEND", "").strip()
        if override:
            if override not in BACKENDS:
                raise ParaLoopError(
                    f"PARALOOP_BACKEND={override!r} is not a backend; choose one of {', '.join(BACKENDS)}"
                )
            return override
        return self.backend or "processes"

    def resolved_start_method(self) -> str | None:
        override = os.environ.get("PARALOOP_START_METHOD", "").strip()
        if override:
            if override not in START_METHODS:
                raise ParaLoopError(
                    f"PARALOOP_START_METHOD={override!r}: choose one of {', '.join(START_METHODS)}"
                )
            return override
        return self.start_method

    def __iter__(self) -> Iterator[T]:
        warnings.warn(_NOT_REWRITTEN, ParaLoopWarning, stacklevel=2)
        return iter(self.iterable)

    def __repr__(self) -> str:
        return f"ParaLoop({self.iterable!r}, num_processes={self.num_processes!r})"
