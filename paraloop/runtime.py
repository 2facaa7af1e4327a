"""What the rewritten loops call: gather the captured values, run the chunks, combine.

Generated code calls :func:`run` once per loop.  The data path is one way:
the worker function and the captured values go to a backend (a process pool,
or inline for ``backend="sequential"`` and for loops nested in a worker); the
backend returns one :class:`~paraloop.execute.Outcome` per chunk in any order;
:class:`Combiner` applies them strictly in chunk order, so tracked state ends
as the sequential loop leaves it, also after a ``break``, a ``return`` or an
exception.
"""

from __future__ import annotations

import builtins
import copy
import functools
import itertools
import sys
import threading
import time
import types
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from . import broken_pipe, environment, log, native_threads
from .aggregation_strategies import ElementUpdates, Scratch

# Imported with the runtime, when a module with ParaLoop loops is imported, not
# when its first loop starts: the process pool's libraries (multiprocess and
# dill) take tens of milliseconds to import, which a first loop should not wait for.
from .backends.processes.pool import get_pool
from .backends.running import in_worker_thread
from .backends.sequential import run_inline
from .chunks import Chunker, read_once, sliceable
from .combine import Combiner, LoopResult, with_context
from .cpus import available_cpus, waiting_iterations
from .errors import ParaLoopError, ParaLoopWarning
from .execute import (
    BROKE,
    DONE,
    LOG_PREFIX,
    RAISED,
    RETURNED,
    UNBOUND,
    Job,
    Outcome,
)
from .frame_names import Withheld, frame_names, module_frame, sorted_names, withheld
from .guard import GENERATOR_MODULES, reached
from .items import COPY, INLINE, SHARE, is_file, length
from .live_names import LiveNames, LiveNamespace, LiveScope
from .loop import ParaLoop
from .output import replaced_streams, write_output
from .plan import Form, Kind, LoopPlan, Use, read
from .process_state import MODULE_STATE, describe
from .progress import close_bar, open_bar
from .reductions import infer_reductions, replay_operation, whole_partials
from .replay import CONTINUED_TYPES
from .resources import PerWorker
from .signal_errors import HandlerRaised, despite_ctrl_c, released, unwrap_handlers, wrap_handlers
from .tracebacks import hidden
from .variable import Variable
from .walk_watch import WalkWatch, walk_of

if TYPE_CHECKING:
    from .iterable_watch import BetweenItems, IterableWatch

# What generated code names (the outcomes a worker returns, run, comprehension), and the records
# of a loop's plan, which paraloop.plan.read makes from the constants generated code spells.
__all__ = [
    "BROKE",
    "DONE",
    "RAISED",
    "RETURNED",
    "UNBOUND",
    "Form",
    "Kind",
    "LiveScope",
    "LoopPlan",
    "LoopResult",
    "Use",
    "comprehension",
    "frame_names",
    "module_frame",
    "run",
    "sorted_names",
]


def _lookup(
    name: str, scope: Mapping[str, Any] | None, local: tuple[str, ...], globs: Mapping[str, Any]
) -> Any:
    if scope is not None and name in scope:
        return scope[name]
    if name in local:
        return UNBOUND
    if name in globs:
        return globs[name]
    return getattr(builtins, name, UNBOUND)


def _process_wide(
    uses: tuple[Use, ...],
    scope: Mapping[str, Any] | None,
    local: tuple[str, ...],
    globs: Mapping[str, Any],
) -> str | None:
    """The first process-wide state the body changes, as (what, line), or None: the body calls
    os.chdir, redirect_stdout, random.seed, ..., or assigns sys.stdout or os.environ[...]."""
    for use in uses:
        name, kind, text = use.name, use.form.kind, use.source
        if kind is Kind.INVOKE:
            found: Any = _lookup(name, scope, local, globs)
            for attribute in use.form.detail.split(".")[1:]:
                found = None if isinstance(found, PerWorker) else getattr(found, attribute, None)
            what = describe(found)
        elif kind in (Kind.ATTRIBUTE, Kind.MUTATE):
            module = _lookup(name, scope, local, globs)
            attribute = text.partition(f"{name}.")[2].split("[")[0].split(" ")[0].split(".")[0]
            what = (
                MODULE_STATE.get((getattr(module, "__name__", ""), attribute))
                if isinstance(module, types.ModuleType)
                else None
            )
        else:
            continue
        if what is not None:
            return f"{what} (line {use.line}: {text})"
    return None


def _shared_on_threads(shared: str, filename: str, line: int) -> ParaLoopError:
    """The refusal of a loop on the threads backend whose body changes process-wide state: its
    iterations run side by side in threads of one process, where each would see the others'
    changes (another iteration's seed between an iteration's ``random.seed(i)`` and its draw),
    which no plain loop does.  ``lanes=True`` says the body is safe so, and runs it; so does one
    thread (``num_processes=1``), which runs the iterations one after another."""
    if "random generator" in shared:
        # Not "without threads": a seed the body calls by its own name (from random import seed)
        # is refused on processes as a method of the generator changed (session 46's adversary).
        advice = (
            "Give each iteration a generator of its own (rng = random.Random(i), or "
            "numpy.random.default_rng(i)) and draw from it, or run it with backend='sequential'"
        )
    else:
        advice = (
            "Run it without backend='threads' (worker processes run one iteration at a time each), "
            "on one thread (num_processes=1) or with backend='sequential'; or keep the change out "
            "of the body"
        )
    return ParaLoopError(
        f"{filename}, line {line}: the body changes {shared}, which every thread of a process "
        "shares: with backend='threads' its iterations run side by side and would see each other's "
        f"changes. {advice}; or, if iterations cannot meet there, say so with ParaLoop(..., lanes=True)"
    )


def _global_random(
    uses: tuple[Use, ...],
    scope: Mapping[str, Any] | None,
    local: tuple[str, ...],
    globs: Mapping[str, Any],
) -> tuple[list[tuple[int, str]], bool]:
    """The body's draws from a global random generator (``random``'s, numpy's legacy one), and
    whether the body seeds it."""
    draws: list[tuple[int, str]] = []
    seeds = False
    for use in uses:
        if use.form.kind is not Kind.INVOKE:
            continue
        called = use.form.detail
        found: Any = _lookup(use.name, scope, local, globs)
        for attribute in called.split(".")[1:]:
            # (Not a per-worker object's: looking would make one here.)
            found = None if isinstance(found, PerWorker) else getattr(found, attribute, None)
        seeding = called.endswith(".seed") or called == "seed"
        if seeding and getattr(found, "__module__", None) == "numpy.random":
            seeds = True  # numpy.random.seed is a function of its own, which seeds the global one
        elif _is_global_generator(getattr(found, "__self__", None)):
            if seeding:
                seeds = True
            else:
                draws.append((use.line, use.source))
    return draws, seeds


def _is_global_generator(owner: Any) -> bool:
    random_module = sys.modules.get("random")
    if random_module is not None and owner is getattr(random_module, "_inst", None):
        return True
    mtrand = sys.modules.get("numpy.random.mtrand")
    return mtrand is not None and owner is getattr(mtrand, "_rand", None)


def _without_global_random(
    loop: ParaLoop[Any], draws: list[tuple[int, str]], filename: str, line: int
) -> ParaLoop[Any]:
    """A loop whose iterations draw from the global random generator depend on each other: the
    plain loop's draws come only in the plain loop's order.  With default settings it runs so;
    asked explicitly to run in parallel, it is refused."""
    where, text = draws[0]
    explanation = (
        f"{filename}, line {line}: the body draws from the global random generator ({text!r}, line "
        f"{where}), so each iteration's numbers depend on the draws of every iteration before it. "
        "To run it in parallel with the same numbers every time, give each iteration a generator of "
        "its own: rng = random.Random(seed + i) (or numpy.random.default_rng([seed, i])) and draw "
        "from rng, or seed the global generator at the start of each iteration"
    )
    if loop.backend is not None or environment.variable("PARALOOP_BACKEND", "").strip():
        raise ParaLoopError(explanation)
    warnings.warn(explanation + "; it ran sequentially", ParaLoopWarning, stacklevel=4)
    plain = copy.copy(loop)
    plain.backend = "sequential"
    return plain


def _check_scratch(
    variables: Mapping[str, Variable[Any]],
    params: tuple[str, ...],
    values: list[Any],
    filename: str,
    line: int,
) -> None:
    """A scratch buffer each chunk copies must be reached by no other way: that way would see
    the caller's buffer, not the chunk's copy."""
    wanted = {
        id(variable.value): name
        for name, variable in variables.items()
        if isinstance(variable.aggregation_strategy, Scratch) and variable.aggregation_strategy.concurrent
    }
    if not wanted:
        return
    for name, how in reached(params, tuple(values), wanted).items():
        raise ParaLoopError(
            f"{filename}, line {line}: {name!r} is a buffer every iteration overwrites, so each worker "
            f"uses a copy of its own; but the body also reaches it as {how}, which would see the "
            f"caller's buffer instead. Use it by its own name in the body: pass it to the function "
            f"as an argument (f({name}) rather than a global), or run the loop with backend='sequential'"
        )


def _check_iterators(
    variables: Mapping[str, Variable[Any]],
    params: tuple[str, ...],
    values: list[Any],
    filename: str,
    line: int,
    iterable: Any = None,
) -> None:
    """An iterator from outside the loop that the body reads: each iteration would take the next
    value in the order the workers happen to run (or from a worker's own copy)."""
    for name, value in zip(params, values):
        if name in variables or name.startswith("__paraloop"):
            continue
        if (
            value is iterable
            and iterable is not None
            and hasattr(type(value), "__next__")
            and not is_file(value)
        ):
            held = (
                f"ParaLoop((item, {name}.line_num) for item in {name}) for a reader's line number"
                if hasattr(value, "line_num")
                else f"ParaLoop((item, ...) for item in {name}), what the body reads of it in place of ..."
            )
            raise ParaLoopError(
                f"{filename}, line {line}: the body uses {name!r}, the iterator the loop runs over, "
                "which paraloop reads ahead of the iterations. If the body takes values from it "
                f"(next({name})), each iteration depends on the ones before it: the loop is "
                "sequential by nature. If it reads what the iterator holds (a reader's line number, "
                "a position), that is where the reading ahead left it: take it along with each "
                f"item, {held}, or ParaLoop(enumerate({name}, 1)) for a count of the items"
            )
        if hasattr(type(value), "__next__") and not is_file(value):
            raise ParaLoopError(
                f"{filename}, line {line}: the body uses {name!r}, an iterator from outside the loop: "
                "iterations running in parallel would each take its next value in whatever order they "
                "run. Make it part of the loop's iterable, for item, value in "
                f"ParaLoop(zip(items, {name})), or, if each value depends on the one before, "
                "the loop is sequential by nature"
            )


def _check_own_iterable(iterable: Any, written: Mapping[str, Any], filename: str, line: int) -> None:
    """A body that writes into the very sequence the loop iterates (``data[j] = e``,
    ``data.append(e)``): the plain loop's later iterations get the items written, paraloop's
    were handed out before.  (A mapping or set is left alone: writing a value under a key
    changes no key the loop iterates, and adding one makes the plain loop raise.)"""
    for name, value in written.items():
        # (The ABC last: the first isinstance() of a type against one walks its subclasses.)
        if value is iterable and not isinstance(iterable, (Mapping, AbstractSet)):
            raise ParaLoopError(
                f"{filename}, line {line}: the body writes into {name!r}, the sequence the loop "
                "iterates: in the plain loop the later iterations get the items written, but "
                "paraloop hands items out before the iterations that write them run. If each item "
                "depends on the writes before it, the loop is sequential by nature "
                "(backend='sequential'); otherwise iterate over a copy, "
                f"ParaLoop(list({name})), or write into another list"
            )


def _start_of(name: str, value: Any, uses: tuple[Use, ...]) -> Any:
    """What a reduction combines onto: a copy for ``x = x + e`` on a list or array, which
    makes a new object each time (a name bound to the old one keeps the old one)."""
    written_out = any(use.name == name and use.form.kind in (Kind.BINOP, Kind.COMMUTED) for use in uses)
    if written_out and isinstance(value, (list, bytearray, dict, set, deque)):
        return copy.copy(value)
    if written_out and type(value).__module__ == "numpy" and type(value).__name__ == "ndarray":
        return value.copy()
    return value


def _rename(worker: Callable[..., Any], name: str) -> None:
    """Make tracebacks say ``in run`` (the user's function), not ``in __paraloop_body_1__``."""
    code = worker.__code__
    if code.co_name != name:
        worker.__code__ = code.replace(co_name=name)


def _capture(
    worker: Callable[..., Any], scope: Mapping[str, Any] | None, local: tuple[str, ...]
) -> tuple[tuple[str, ...], list[Any]]:
    """The worker's parameters and their values where the loop stands.

    A log parameter (see :mod:`paraloop.replay`) is None unless a chunk records
    into it.
    """
    code = worker.__code__
    params = code.co_varnames[1 : code.co_argcount]
    values = [
        None if name.startswith(LOG_PREFIX) else _lookup(name, scope, local, worker.__globals__)
        for name in params
    ]
    return params, values


def _plan_replay(
    variables: Mapping[str, Variable[Any]],
    uses: tuple[Use, ...],
    params: tuple[str, ...],
) -> tuple[dict[str, str], frozenset[str]]:
    """Which tracked names the workers record for the caller to replay, and which must stay whole."""
    forms: dict[str, set[Form]] = {}
    for use in uses:
        forms.setdefault(use.name, set()).add(use.form)
    replayed: dict[str, str] = {}
    whole: set[str] = set()
    for name, variable in variables.items():
        strategy = variable.aggregation_strategy
        own = forms.get(name, set())
        operation = replay_operation(strategy, variable.value, own)
        if operation is not None and f"{LOG_PREFIX}{name}__" in params:
            if type(variable.value) is int and operation in ("add", "mul"):
                # Whole numbers add exactly in any grouping: a worker records its first chunk,
                # and adds per chunk once that shows whole numbers (see paraloop.replay).
                operation += "?"
            replayed[name] = operation
        elif whole_partials(strategy, variable.value, own):
            whole.add(name)
    return replayed, frozenset(whole)


def _backend(loop: ParaLoop[Any]) -> str:
    """The loop's backend; a loop nested in a worker (process or thread) runs sequentially, and
    so does one of processes or Dask while the program exits.

    In an ``atexit`` function (the main thread has ended then), workers would start after the
    exit's clean-up ran, or in the middle of it: under forkserver the fork server's folder was
    gone (the loop raised, and Python ignores an exit function's error: its work was lost), and
    under Python 3.13 such workers kept the program from ending."""
    if _in_worker_process() or in_worker_thread():
        return "sequential"
    backend = loop.resolved_backend()
    if backend in ("processes", "dask") and not threading.main_thread().is_alive():
        return "sequential"
    return backend


_ITEM_MODES = {"sequential": INLINE, "threads": SHARE}


def _in_worker_process() -> bool:
    """Whether this is a paraloop worker process: its child module serves there, and is not
    imported in a program that never started a worker (it would cost the import milliseconds)."""
    child = sys.modules.get("paraloop.backends.processes.child")
    # Another thread may be importing it (its first worker is starting): a module not yet
    # run to its end is the caller's, since a worker's was whole before it served.
    in_worker = getattr(child, "in_worker", None)
    return in_worker is not None and bool(in_worker())


def _chunker(loop: ParaLoop[Any], one_by_one: bool = False) -> Chunker:
    """The loop's chunks, each item fixed as the backend needs (see :mod:`paraloop.items`); with
    ``one_by_one``, a chunk per item."""
    return Chunker(loop.iterable, 1 if one_by_one else loop.chunksize, _ITEM_MODES.get(_backend(loop), COPY))


def _body_watch(
    loop: ParaLoop[Any], job: Job, scope: Mapping[str, Any] | None, local: tuple[str, ...]
) -> IterableWatch | None:
    """The look at what the body reads, as the program's code may change it while the loop's items
    are read (see :mod:`paraloop.iterable_watch`), or None if the body reads nothing it could."""
    from .iterable_watch import IterableWatch  # only for loops over iterators, and generator expressions

    module = job.function.__globals__
    namespace: Mapping[str, Any] | LiveNamespace = module
    live: frozenset[str] = frozenset()
    if isinstance(scope, LiveNames):
        # The variables of the functions around the loop (or the expression): watched as globals are.
        namespace = LiveNamespace(scope, module)
        live = namespace.names
    # Not the variables withheld from a body that reads them through its frame only (they stand
    # for the program's, which the iterator may well advance: the loop's own file).
    watched = [
        (name, value) for name, value in zip(job.params, job.values) if not isinstance(value, Withheld)
    ]
    return IterableWatch.of(
        tuple(name for name, _ in watched),
        [value for _, value in watched],
        job.tracked,
        lambda name: name in live or _global_name(name, scope, local, module),
        namespace,
        f"{job.filename}, line {job.line}",
        # Each item is read (or asked for) just before its iteration runs: with the value rebound.
        _adopting(job) if _backend(loop) == "sequential" else None,
    )


def _watch_iterable(
    chunker: Chunker, loop: ParaLoop[Any], job: Job, scope: Mapping[str, Any] | None, local: tuple[str, ...]
) -> None:
    """Where the items come from an iterator: look, as they are read, for what its code changes
    that the body reads."""
    if not chunker.reads_iterator:
        return
    watch = _body_watch(loop, job, scope, local)
    if watch is not None:
        watch.noted = job.iterable_changes()
        chunker.watch_with(watch)


def _between_items(
    loop: ParaLoop[Any], job: Job, scope: Mapping[str, Any] | None, local: tuple[str, ...]
) -> BetweenItems | None:
    """For a generator expression over ParaLoop: the look at what the program changes between its
    items, that its body reads (see :class:`paraloop.iterable_watch.BetweenItems`)."""
    from .iterable_watch import BetweenItems

    watch = _body_watch(loop, job, scope, local)
    return None if watch is None else BetweenItems(watch)


def _global_name(
    name: str, scope: Mapping[str, Any] | None, local: tuple[str, ...], namespace: Mapping[str, Any]
) -> bool:
    """Whether the body's ``name`` is a global of its module: bound there, or bound nowhere yet
    (an iterable may bind it before its first item: a builtin's name is the builtin)."""
    if (scope is not None and name in scope) or name in local:
        return False
    return name in namespace or not hasattr(builtins, name)


def _adopting(job: Job) -> Callable[[str, Any], None]:
    """For the sequential backend, which runs each iteration just after its item is read (or asked
    for): the job's value of a global the program rebound since, for the iterations to come."""

    def adopt(name: str, value: Any) -> None:
        position = job.params.index(name)
        job.values = (*job.values[:position], value, *job.values[position + 1 :])

    return adopt


# The threads and Dask backends, imported by the first loop that uses each and kept: a program
# that takes them out of sys.modules again (``mock.patch.dict(sys.modules)`` around a loop, a
# snapshot of it restored) imported a copy for each loop, and each copy of the threads backend
# registered an exit handler that kept it (and its queue module) to the program's end.
_run_threads: Callable[[Job, Chunker, int], Iterator[Outcome]] | None = None
_run_dask: Callable[..., Iterator[Outcome]] | None = None


def _outcomes(loop: ParaLoop[Any], job: Job, chunker: Chunker, between: bool = False) -> Iterator[Outcome]:
    """Run the job's chunks on the loop's backend; outcomes arrive in any order.

    ``between``: the program's own code runs between the loop's items (a generator expression
    over ParaLoop), so the caller neither runs chunks itself (see backends/processes/caller.py)
    nor holds its native pools at the workers' share (see native_threads.Hold).
    """
    global _run_threads, _run_dask
    backend = _backend(loop)
    chosen = loop.resolved_num_processes()
    count = chosen or available_cpus()
    log.debug("loop at %s, line %d: backend %s, %d worker(s)", job.filename, job.line, backend, count)
    if backend == "dask" and loop.native_threads is not None:
        raise ParaLoopError(
            f"{job.filename}, line {job.line}: native_threads= is not available with backend='dask': "
            "a Dask worker's nanny sets its native thread counts (distributed.nanny.pre-spawn-environ "
            "in Dask's configuration, 1 by default); set them there"
        )
    if backend in ("processes", "threads"):
        # Dask's nanny limits its workers' pools itself; sequential runs one iteration at a time.
        job.native_threads = native_threads.plan(loop.resolved_native_threads(), count)
    if backend == "sequential":
        return run_inline(job, chunker)
    if backend == "threads":
        # Imported by the loops that use it: queue and heapq, which it needs, cost a program
        # whose loops never do 1 ms.
        if _run_threads is None:
            from .backends.threads import run_threads

            _run_threads = run_threads
        return _run_threads(job, chunker, count)
    if backend == "dask":
        if _run_dask is None:
            from .backends.dask import run_dask

            _run_dask = run_dask
        return _run_dask(job, chunker, loop.scheduler, chosen)
    # With no count given, a loop whose iterations mostly wait may get more workers.
    grow_to = waiting_iterations() if chosen is None else None
    recycle = loop.max_iterations_per_worker
    return get_pool(loop.resolved_start_method()).run(
        job,
        chunker,
        count,
        grow_to,
        recycle,
        caller_runs=not between and loop.resolved_caller_runs(),
        hold_native=not between,
    )


def _drive(outcomes: Iterator[Outcome], chunker: Chunker, inline: bool, bar: Any = None) -> Iterator[Outcome]:
    """Yield outcomes in chunk order, stopping at the first that did not finish its chunk.

    Feeds the chunker the measured times (and what each chunk cost the caller),
    and closes the backend's stream however the consumer stops.
    """
    pending: dict[int, Outcome] = {}
    expected = 0
    try:
        for outcome in outcomes:
            if bar is not None:
                bar.update(outcome.iterations)
            if outcome.kind != DONE:
                chunker.stop()
            pending[outcome.chunk] = outcome
            combining = 0.0
            while expected in pending:
                current = pending.pop(expected)
                expected += 1
                began = time.perf_counter()
                yield current  # the consumer combines it meanwhile
                combining += time.perf_counter() - began
                if current.kind != DONE:
                    return
            # What this chunk cost: receiving it and combining it (not the time spent
            # waiting for it), and checking what it changed.
            overhead = outcome.checked + (0.0 if inline else outcome.received + combining)
            chunker.observe(outcome.iterations, outcome.seconds, overhead)
        if chunker.error is not None:
            raise chunker.error
        if pending:
            # A later chunk came back and an earlier one never did: never a result short.
            raise ParaLoopError(
                f"paraloop lost chunk {expected} of this loop (chunks {sorted(pending)} came back): "
                "this is a bug in paraloop; please report it. Run the loop with "
                "backend='sequential' meanwhile"
            )
    finally:
        interrupted = closed(outcomes)
        close_bar(bar)
        if interrupted is not None:
            raise interrupted


def closed(outcomes: Iterator[Any]) -> KeyboardInterrupt | None:
    """Close ``outcomes`` (a backend's generator, whose cleanup stops the loop's workers and
    gives back what the loop holds), done even if Ctrl-C interrupts it; that Ctrl-C, if any.

    A generator not closed is closed only when the garbage collector gets to it, which for one
    held in a cycle (an exception's traceback) may be never: a second Ctrl-C during a loop's
    cleanup left the caller's native pools limited for the rest of the program.
    """
    close = getattr(outcomes, "close", None)
    # Closed again after an interruption: a generator's own cleanup ran on as far as it could.
    return None if close is None else despite_ctrl_c(close)


def _watching(loop: ParaLoop[Any]) -> dict[str, Any]:
    """What the workers must match of the caller, and check (see :mod:`paraloop.guard`).

    The sequential backend runs the plain loop: nothing to check.  Worker
    processes and Dask also get copies of the items.  Decimal arithmetic in
    another thread or process would use its own context.
    """
    backend = _backend(loop)
    context = None
    decimal = sys.modules.get("decimal")
    if decimal is not None and backend != "sequential":
        try:
            current = decimal.getcontext()
            pristine = _pristine(decimal)
        except AttributeError:
            # decimal half imported (by another thread of the program, as the loop starts): no
            # code of the program can have set a context of it yet.
            current = pristine = None
        # Against decimal's own defaults, not decimal.DefaultContext: the program may have changed
        # that, which a spawned (or fork server's) worker does not inherit.
        if current is not None and _settings(current) != _settings(pristine):
            context = current.copy()
    return {
        "guarded": backend != "sequential",
        "copied": backend in ("processes", "dask"),
        "shared_process": backend == "dask",
        "decimal": context,
        "generators": tuple(name for name in GENERATOR_MODULES if name in sys.modules)
        if backend == "processes"
        else (),
        # Threads print into the program's own streams; other processes must send it back.
        "streams": replaced_streams() if backend in ("processes", "dask") else {},
    }


def _pristine(decimal: Any) -> Any:
    """A context with the settings decimal.DefaultContext has in a new process."""
    return decimal.Context(
        prec=28,
        rounding=decimal.ROUND_HALF_EVEN,
        Emin=-999999,
        Emax=999999,
        capitals=1,
        clamp=0,
        flags=[],
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )


def _settings(context: Any) -> tuple[Any, ...]:
    traps = tuple(sorted(str(signal) for signal, on in context.traps.items() if on))
    limits = (context.Emin, context.Emax, context.capitals, context.clamp)
    return (context.prec, context.rounding, *limits, traps)


def _one_per_thread(values: list[Any]) -> bool:
    """Whether the body uses a per-worker object made once per thread (see paraloop.resources):
    then a worker runs the loop's iterations in its main thread, never in lanes."""
    return any(isinstance(value, PerWorker) and not value.__paraloop_thread_safe__ for value in values)


def _plain_job(
    loop: Any, worker: Callable[..., Any], values: list[Any], params: tuple[str, ...], line: int
) -> Job:
    return Job(
        lanes=False if _one_per_thread(values) else None,
        timeout=loop.timeout,
        function=worker,
        params=params,
        values=tuple(values),
        tracked=frozenset(),
        wrapped=frozenset(),
        stored=(),
        after=frozenset(),
        filename=worker.__code__.co_filename,
        line=line,
        **_watching(loop),
    )


def run(
    loop: Any, worker: Callable[..., Any], scope: Mapping[str, Any] | None, plan: LoopPlan | tuple[Any, ...]
) -> LoopResult:
    """Run one rewritten loop. Called by generated code only; its signature may change.

    ``scope`` holds the names the worker captures from a function or class body (None at
    module level: the worker's globals; in a function, a :class:`~paraloop.live_names.LiveScope`,
    which also reads the function's variables as they are later); ``plan`` is what the rewriter
    found about the loop,
    as the generated code spells it (see :func:`paraloop.plan.read`).
    """
    wrapped: dict[int, Any] = {}
    try:
        try:
            wrap_handlers(wrapped)
            result = _run(loop, worker, scope, read(plan))
        finally:
            # Not a context manager: a second Ctrl-C at the call of its __exit__ skipped the
            # restoring, and the program's SIGINT handler stayed paraloop's wrapper for good.
            # Here one anywhere is caught (despite_ctrl_c's own call could be cut too), and the
            # restoring goes on where it was cut.
            again = None
            while wrapped:
                try:
                    unwrap_handlers(wrapped)
                except KeyboardInterrupt as interrupted:
                    again = interrupted
            if again is not None:
                raise again
        broken_pipe.die_as_plain(result.error)
        return result
    except ParaLoopError as refusal:
        # Raised by the generated code at the user's loop line, without paraloop's own frames.
        return LoopResult(error=hidden(refusal))
    except HandlerRaised as raised:
        # A signal handler's exception, where the plain loop raises it: in the loop.
        return LoopResult(error=released(raised.error))
    except KeyboardInterrupt as interrupted:
        # Ctrl-C before the loop's chunks began or after they were combined: at the loop's line.
        return LoopResult(error=hidden(interrupted))


def _run(
    loop: Any, worker: Callable[..., Any], scope: Mapping[str, Any] | None, plan: LoopPlan
) -> LoopResult:
    line, local, stored, after, wrapped, uses = (
        plan.line, plan.local, plan.stored, plan.after, plan.wrapped, plan.uses
    )  # fmt: skip
    _rename(worker, plan.name)
    if not isinstance(loop, ParaLoop):
        # ``ParaLoop`` was rebound to something else: iterate it plainly, in order.
        loop = ParaLoop(loop, backend="sequential")
    draws, seeds = _global_random(uses, scope, local, worker.__globals__)
    if draws and not seeds and _backend(loop) != "sequential":
        loop = _without_global_random(loop, draws, worker.__code__.co_filename, line)
    lanes = loop.resolved_lanes()
    if lanes is not True:
        shared = _process_wide(uses, scope, local, worker.__globals__)
        if (
            shared is not None
            and _backend(loop) == "threads"
            and (loop.resolved_num_processes() or available_cpus()) > 1
        ):
            raise _shared_on_threads(shared, worker.__code__.co_filename, line)
        if shared is not None and lanes is None:
            log.debug("loop at line %d changes %s: no lanes", line, shared)
            lanes = False
    params, values = _capture(worker, scope, local)
    if plan.seen:
        values = withheld(params, values, plan.seen, f"{worker.__code__.co_filename}, line {line}")
    if lanes is None and _one_per_thread(values):
        lanes = False
    variables = {name: v for name, v in zip(params, values) if isinstance(v, Variable)}
    inferred: dict[str, Any] = {}
    if uses:
        known = dict(zip(params, values))
        for use in uses:
            if use.name not in known:
                known[use.name] = _lookup(use.name, scope, local, worker.__globals__)
        for reduced, strategy in infer_reductions(uses, known, worker.__code__.co_filename).items():
            if reduced in params:
                # A plain name updated by the body is tracked like a Variable; the combined
                # value is rebound to the name unless it was updated in place.
                inferred[reduced] = known[reduced]
                if isinstance(strategy, Scratch):
                    strategy.concurrent = _backend(loop) != "sequential"
                variables[reduced] = Variable._unchecked(_start_of(reduced, known[reduced], uses), strategy)
    for variable in variables.values():
        strategy = variable.aggregation_strategy
        if type(strategy) is ElementUpdates:
            # Inferred or a Variable's own (which serves each loop it is in): the elements this
            # loop's chunks update are this loop's alone, and only chunks run at the same time are
            # refused a repeated element (the sequential backend runs it as the plain loop).
            strategy.updated = set()
            strategy.concurrent = _backend(loop) != "sequential"
    _check_scratch(variables, params, values, worker.__code__.co_filename, line)
    # The module globals among the names the loop combines, as they are now (see _rebound).
    globals_now = {
        name: worker.__globals__[name]
        for name in inferred
        if (scope is None or name not in scope) and name not in local and name in worker.__globals__
    }
    if _backend(loop) != "sequential":
        _check_iterators(variables, params, values, worker.__code__.co_filename, line, loop.iterable)
    # Sequentially too: the writes are combined at the loop's end, after the items were read.
    _check_own_iterable(loop.iterable, inferred, worker.__code__.co_filename, line)
    values = [variables.get(name, value) for name, value in zip(params, values)]
    replayed, whole = _plan_replay(variables, uses, params)
    job = Job(
        function=worker,
        params=params,
        values=tuple(v._private() if isinstance(v, Variable) else v for v in values),
        tracked=frozenset(variables),
        wrapped=frozenset(wrapped),
        stored=stored,
        after=frozenset(after),
        filename=worker.__code__.co_filename,
        line=line,
        timeout=loop.timeout,
        replay=replayed,
        whole=whole,
        seeded=seeds,
        lanes=lanes,
        **_watching(loop),
    )
    job.__dict__["_starts"] = {
        name: variables[name].value
        for name, operation in replayed.items()
        if operation in ("add", "mul")
        and name not in job.wrapped
        and type(variables[name].value) in CONTINUED_TYPES
    }
    walk = None
    if _backend(loop) != "sequential" and walk_of(loop.iterable):
        # The body may prune the walk (see paraloop.walk_watch): read through a watch.
        walk = WalkWatch(loop.iterable, job.filename, line)
        loop = copy.copy(loop)
        loop.iterable = walk.items()
    chunker = _chunker(loop)
    _watch_iterable(chunker, loop, job, scope, local)
    combiner = Combiner(variables, job, inferred, chunker.held)
    inline = _backend(loop) in ("threads", "sequential")
    bar = open_bar(loop.iterable, job.filename, line, loop.progress_options) if loop.progress else None
    outcomes: Iterator[Outcome] = iter(())
    driving: Iterator[Outcome] = iter(())
    try:
        outcomes = _outcomes(loop, job, chunker)
        driving = _drive(outcomes, chunker, inline, bar)
        for outcome in driving:
            ended = combiner.add(outcome)
            # Also where the chunk broke or raised: the plain walk, pruned, may not have got there.
            if walk is not None and (pruned := walk.check(outcome.start + outcome.size)) is not None:
                combiner.result.error = hidden(pruned)
                break
            if ended:
                break
    except BaseException as error:  # noqa: BLE001 - handed to the generated code
        # The iterable raised, a worker died, an iteration timed out, Ctrl-C, a signal
        # handler's exception: tracked state keeps what the chunks before it contributed.
        combiner.result.error = released(error.error) if isinstance(error, HandlerRaised) else hidden(error)
    else:
        if inline and combiner.result.error is None:
            # Threads: what the chunks left unchecked (worker processes check on their own).
            combiner.result.error = job.final_check()
    finally:
        # Now, not when the garbage collector gets to them: a second Ctrl-C may have cut short
        # the cleanup that closes them (see closed).
        interrupted = closed(driving)
        interrupted = closed(outcomes) or interrupted
        native_threads.let_go_here(job)
        if interrupted is not None and combiner.result.error is None:
            combiner.result.error = hidden(interrupted)
        close_bar(bar)  # also when the backend failed to start
    try:
        result = combiner.finish()
    finally:
        job.release_guard([*combiner.result.bound.values(), combiner.result.value])
    rebound = _rebound(globals_now, worker.__globals__, uses, job)
    # Not in place of a refusal already made (the iterable watch's, which sees the same rebinding
    # as an item is read), nor of a Ctrl-C.
    raised = result.error
    if rebound is not None and (
        raised is None or (isinstance(raised, Exception) and not isinstance(raised, ParaLoopError))
    ):
        # Before an iteration's exception too: the plain loop raised it with the function's
        # changes kept, which the result would have overwritten (the refusal names both).
        rebound.__context__ = result.error
        result.error = rebound
    return result


def _rebound(
    before: Mapping[str, Any],
    globs: Mapping[str, Any],
    uses: tuple[Use, ...],
    job: Job,
) -> BaseException | None:
    """A refusal where a module global the loop combines (``cnt += 1`` in the body) was rebound while
    the loop ran by other code (a function the body calls, with ``global cnt``): the loop's own
    result, bound to it next, would overwrite that change, which the plain loop keeps.  In worker
    processes such a function rebinds a copy of the module, which is refused as it happens; on
    threads, sequentially and in the caller's own chunks it rebinds the program's."""
    # Each of them: one the loop rebinds (cnt += 1) as one it updates in place (seen.append(i),
    # whose appends then went to the list the function replaced).
    for name, value in before.items():
        if globs.get(name, UNBOUND) is not value:
            source = next((use.source for use in uses if use.name == name), name)
            return hidden(
                ParaLoopError(
                    f"{job.filename}, line {job.line}: other code rebound the global {name!r} while "
                    f"the loop ran (a function the body calls, with global {name}, or the loop's "
                    f"iterable), which the body updates itself ('{source}'): the loop's own result "
                    "would overwrite that change. "
                    f"Have that function return its part and update {name} in the body (or collect "
                    "the parts in a list the body appends to), or run it as a plain loop (without "
                    "ParaLoop)"
                )
            )
    return None


def comprehension(
    loop: Any,
    worker: Callable[..., Any],
    scope: Mapping[str, Any] | tuple[tuple[str, Callable[[], Any]], ...] | None,
    plan: LoopPlan | tuple[Any, ...],
) -> Callable[[], Any]:
    """A list, set, dict or generator comprehension over ParaLoop, built chunk by chunk, in order.

    ``plan.kind`` is the comprehension's kind: ``"list"``, ``"set"``, ``"dict"`` or ``"generator"``.
    Returns what the generated code calls where the comprehension stood, for its value (for a
    generator expression, the iterator its own expression hands the items out from): a C
    callable, so that an error (a refusal, an iteration's exception, Ctrl-C) is raised in the
    program's frame, as the plain comprehension's, with no frame of paraloop's in between.

    In a function ``scope`` holds readers of the function's variables (see
    :mod:`paraloop.live_names`); a generator expression's names are captured when its first item
    is asked for, as a plain one reads them then.
    """
    try:
        plan = read(plan)
        kind, local = plan.kind, plan.local
        _rename(worker, plan.name)
        if not isinstance(loop, ParaLoop):
            loop = ParaLoop(loop, backend="sequential")
        if kind == "generator":
            loop = _iterated_now(loop)
        names = LiveNames(scope) if isinstance(scope, tuple) else scope

        def setup() -> tuple[Generator[Iterable[Any], None, None], BetweenItems | None]:
            params, values = _capture(worker, names, local)
            if plan.seen:
                values = withheld(
                    params, values, plan.seen, f"{worker.__code__.co_filename}, line {plan.line}"
                )
            job = _plain_job(loop, worker, values, params, plan.line)
            # A generator expression whose body reads what the program may change between its
            # items (see _between_items); the sequential backend then computes each item when it
            # is asked for.
            between = _between_items(loop, job, names, local) if kind == "generator" else None
            return _parts(loop, job, names, local, kind, between), between

        # A generator expression computes nothing, and reads none of its body's names, until its
        # first item is asked for (a name may be bound after it is made): nor does paraloop's.
        delivered = _delivered(setup if kind == "generator" else setup())
        next(delivered)  # into its try (see _delivered)
    except BaseException as error:  # noqa: BLE001 - raised where the comprehension stands
        return functools.partial(_SPENT.throw, hidden(error))
    build = _BUILDS[kind]
    # Lazy, like what it replaces: nothing runs until the value is built or an item asked for.
    return functools.partial(build, itertools.chain.from_iterable(delivered))


def _iterated_now(loop: ParaLoop[Any]) -> ParaLoop[Any]:
    """The loop of a generator expression as it is made: plain Python calls ``iter()`` on the
    expression's iterable there, once, so an object that cannot be iterated raises where the
    expression stands (a ``try`` around it catches it), and a class's own ``__iter__`` runs then.
    The loop goes on over the iterator it gave (a copy of the ParaLoop holds it: the program's
    own is left as it was).  A range, list or tuple is cut into slices without an ``iter()``, and
    its ``iter()`` cannot fail: it stays as it is."""
    source = loop.iterable
    if sliceable(source):
        return loop
    made = copy.copy(loop)
    # Read through its __next__ where its __iter__ is Python code (see chunks.read_once): the
    # Chunker's own iter() then gives it back as it is, and that __iter__ runs this once only.
    made.iterable = read_once(iter(source))
    if loop.progress and "total" not in loop.progress_options:
        total = length(source)
        if total is not None:
            # The iterator has no len() of its own: the bar's total is still the iterable's.
            made.progress_options = {**loop.progress_options, "total": total}
    return made


_BUILDS: dict[str, Callable[[Iterable[Any]], Any]] = {
    "list": list,
    "set": set,
    "dict": dict,
    "generator": iter,
}


def _spent() -> Generator[Any, None, None]:
    yield from ()


# An ended generator: its throw() raises the exception it is given from C, so in the frame of
# whoever called it.
_SPENT = _spent()
next(_SPENT, None)


def _delivered(
    started: (
        tuple[Generator[Iterable[Any], None, None], BetweenItems | None]
        | Callable[[], tuple[Generator[Iterable[Any], None, None], BetweenItems | None]]
    ),
) -> Iterator[Iterable[Any]]:
    """The values of the comprehension's chunks (for a generator expression whose body reads what
    the program may change, each item alone in a tuple, handed out once nothing it read changed);
    if they raise, then an iterator that raises the error from C, where the next item is asked for
    (see comprehension).  ``started``: the chunks' values and the look between items, or (a
    generator expression) what makes them when the first item is asked for."""
    try:
        yield ()  # where comprehension leaves it: a Ctrl-C as it is first resumed is delivered too
        parts, between = started() if callable(started) else started
        if between is None:
            yield from parts
            return
        index = 0
        refused = None
        while refused is None:
            # Before the next chunk is asked for (the sequential backend computes it then, with a
            # name the program rebound taken).
            refused = between.changed(index)
            part = next(parts, None)
            if part is None:
                # No item follows: a change since the last is read by none, but for one only a
                # container's pickle shows (a set's element replaced), maybe made before it.
                if refused is not None:
                    refused = between.end(index)
                if refused is None:
                    return
                break
            if refused is not None:
                break
            # A fast test before each item after the chunk's first (see BetweenItems.rebound_test),
            # judged if it fires; it compares with the entries as the first is handed out.
            rebound = between.rebound_test()
            items = iter(part)
            for item in items:
                yield (item,)
                index += 1
                break
            for item in items:
                try:
                    fired = rebound()
                except ValueError:  # a variable the expression reads was deleted
                    fired = True
                if fired:
                    refused = between.changed(index)
                    if refused is not None:
                        break
                    rebound = between.rebound_test()  # an equal value set again: the test anew
                yield (item,)
                index += 1
        parts.close()  # the loop's workers stop now, not when the expression is collected
        raise refused
    except GeneratorExit:
        raise  # closed: the program dropped the comprehension's generator
    except BaseException as error:  # noqa: BLE001 - raised by the consumer's next item
        raised = error.error if isinstance(error, _BodyRaised) else error
        yield map(_SPENT.throw, (hidden(raised),))


class _BodyRaised(BaseException):
    """An iteration's exception on its way out of _parts: not taken for the close() of the
    comprehension's generator if it is a GeneratorExit."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _parts(
    loop: ParaLoop[Any],
    job: Job,
    scope: Mapping[str, Any] | None,
    local: tuple[str, ...],
    kind: str,
    between: BetweenItems | None,
) -> Generator[Iterable[Any], None, None]:
    """The values of a comprehension's chunks, in order (a dict's as its items)."""
    line = job.line
    chunker = _chunker(loop, one_by_one=between is not None and _backend(loop) == "sequential")
    _watch_iterable(chunker, loop, job, scope, local)
    inline = _backend(loop) in ("threads", "sequential")
    bar = open_bar(loop.iterable, job.filename, line, loop.progress_options) if loop.progress else None
    outcomes: Iterator[Outcome] = iter(())
    driving: Iterator[Outcome] = iter(())
    try:
        # Not in a generator expression's loop: the program's own code runs between its
        # items and may change what the body reads, which the caller's chunks would take
        # for an iteration's change (they run on the program's objects, see backends/processes/caller.py).
        outcomes = _outcomes(loop, job, chunker, between=kind == "generator")
        driving = _drive(outcomes, chunker, inline, bar)
        # Items an iteration changed in place, in a worker's copy, are written back into the
        # program's, as a for loop's are (a comprehension has no names to combine).
        items = Combiner({}, job, {}, chunker.held)
        for outcome in driving:
            for part in items.written_back(outcome):
                if part.output:
                    write_output(part.output)
                if part.kind == RAISED:
                    raise _BodyRaised(with_context(part, job))
                yield part.value.items() if kind == "dict" else part.value
    except ParaLoopError as error:
        broken_pipe.die_as_plain(error)
        raise hidden(error) from None
    finally:
        # Now, not when the garbage collector gets to them (see closed).
        interrupted = closed(driving)
        interrupted = closed(outcomes) or interrupted
        native_threads.let_go_here(job)
        close_bar(bar)  # also when the backend failed to start, or the generator was dropped
        job.release_guard()
        if interrupted is not None:
            raise interrupted
