"""What travels between the caller and a worker, whichever backend carries it.

The job goes out as bytes (:func:`job_bytes`: a value that cannot travel is refused by
name, before any chunk runs); a chunk's outcome comes back as bytes
(:func:`encode_outcome`: names bound to captured objects travel as references, and a value
that cannot travel becomes the loop's error, naming it, instead of a broken pipe).  The
process pool, its caller's chunks and Dask's tasks all use these, so a loop's result and
its errors do not depend on where a chunk ran.
"""

from __future__ import annotations

import _socket
import reprlib
import time
from typing import Any

from . import serialize
from .aggregation_strategies import counts_for_travel
from .chunks import Chunk
from .errors import ParaLoopError
from .execute import RAISED, RETURNED, Job, Outcome
from .items import bound_to_this_process, is_file
from .references import captured_arrays, refer
from .resources import PerWorker
from .sharing import Segments, sharing

__all__ = ["arrived", "encode_outcome", "job_bytes", "job_failure", "unreadable"]


def job_bytes(job: Job, segments: Segments | None = None) -> bytes:
    """The job by value, or a ParaLoopError naming the captured value that cannot travel.

    With ``segments``, large captured arrays go into shared-memory segments rather than
    into the bytes (see :mod:`paraloop.sharing`); the caller frees them after the loop.
    """
    with sharing(segments):
        return _job_bytes(job)


def _job_bytes(job: Job) -> bytes:
    for name, value in zip(job.params, job.values):
        if bound_to_this_process(value):
            raise ParaLoopError(
                f"{job.filename}, line {job.line}: the loop body uses {name!r}, a "
                f"{type(value).__module__}.{type(value).__qualname__} that belongs to this process "
                "and cannot be sent to a worker process. Create it inside the body, or use "
                "backend='threads', which shares it"
            )
    fast = serialize.dumps_function_job(job, job.function)  # type: ignore[arg-type]
    if fast is not None:
        return fast
    bound: list[Any] = []
    failure: Exception | None = None
    try:
        data = serialize.dumps_job(job.portable(), bound)
    except Exception as error:  # noqa: BLE001 - find out which value it was
        failure = error
    if bound:
        refused = _held_refusal(job, bound)
        if refused is not None:
            raise refused from None
    if failure is None:
        return data
    for name, value in zip(job.params, job.values):
        try:
            serialize.dumps_by_value(value)
        except Exception as error:  # noqa: BLE001
            if isinstance(value, PerWorker):
                raise ParaLoopError(
                    f"{job.filename}, line {job.line}: the loop body uses {name!r}, a "
                    f"paraloop.per_worker object whose factory or arguments cannot be sent to a "
                    f"worker process ({type(error).__name__}: {error}); each worker calls the "
                    "factory itself. Pass what identifies the object (a path, an address, a "
                    "name) and make the rest in the factory, which must be importable or "
                    "defined in the script"
                ) from None
            if "_thread._local" in str(error):
                # Threads see their own attributes of it: paraloop's threads would not see the
                # program's either.
                raise ParaLoopError(
                    f"{job.filename}, line {job.line}: the loop body uses {name!r}, a "
                    f"{_type_name(value)} that reaches a threading.local ({type(error).__name__}: "
                    f"{error}): what a thread stores there only that thread sees, so neither a worker "
                    "process nor another thread would find what your program put in it. Read what "
                    "the body needs from it before the loop (unit = local.unit) and use that name in "
                    "the body, or use backend='sequential'"
                ) from None
            raise ParaLoopError(
                f"{job.filename}, line {job.line}: the loop body uses {name!r}, a "
                f"{_type_name(value)} that cannot be sent to a "
                f"worker process ({type(error).__name__}: {error}). Create it inside the body, "
                "or use backend='threads', which shares it"
            ) from None
    raise ParaLoopError(
        f"{job.filename}, line {job.line}: the loop body cannot be sent to a worker process "
        f"({type(failure).__name__}: {failure}); something it uses from around the loop cannot be "
        "pickled. Create it inside the body, or use backend='threads'"
    ) from failure


def _held_refusal(job: Job, bound: list[Any]) -> ParaLoopError | None:
    """The error for a job that holds objects bound to this process (``bound``, met while
    pickling it) other than by a captured name: through a bound method (``write = f.write``),
    a container (``holder["out"]``), an attribute (``log.f``), a function the body calls.

    A lock that only a class or a module sent by value holds (a ``cached_property``'s) travels
    as a new lock (see serialize's ``save_lock``): it guards nothing the iterations share.  A
    file or a socket is refused wherever it is: a copy would be the file opened anew.
    """
    roots = list(zip(job.params, job.values))
    function = job.function
    namespace = getattr(function, "__globals__", {})
    code = getattr(function, "__code__", None)
    if code is not None:
        roots += [(name, namespace[name]) for name in sorted(serialize.code_names(code)) if name in namespace]
    found = serialize.held_at(roots, {id(value): value for value in bound}, wide=False)
    if found is None:
        carried = {id(value): value for value in bound if _copied_anew(value)}
        if not carried:
            return None
        found = serialize.held_at(roots, carried, wide=True)
        if found is None:
            value = next(iter(carried.values()))
            return ParaLoopError(
                f"{job.filename}, line {job.line}: something the loop body uses holds {_shown(value)}: "
                f"it belongs to this process and cannot be sent to a worker process, {_fix(value)}"
            )
    root, path, value = found
    held = f", {_shown(value)}" if path == root else f", which holds at {path} {_shown(value)}"
    return ParaLoopError(
        f"{job.filename}, line {job.line}: the loop body uses {root!r}{held}: it belongs to this "
        f"process and cannot be sent to a worker process, {_fix(value)}"
    )


def _copied_anew(value: Any) -> bool:
    return is_file(value) or isinstance(value, _socket.socket)


def _shown(value: Any) -> str:
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    name = getattr(value, "name", None) if is_file(value) else None
    return f"the open file {name!r} (a {kind})" if isinstance(name, str) else f"a {kind}"


def _fix(value: Any) -> str:
    if is_file(value):
        return (
            "where a copy would be the file opened anew, and what the iterations write to it or "
            "read from it would not be the plain loop's. Open the file in each iteration (pass "
            "its path instead), make one per worker with paraloop.per_worker(open, path, ...), "
            "or use backend='threads', which shares it"
        )
    return (
        "where a copy would not be the same object (a lock would exclude nobody, an event "
        "would signal nobody), and what the iterations do with it would be lost. Create it in "
        "each iteration, make one per worker with paraloop.per_worker(...), or use "
        "backend='threads', which shares it"
    )


def encode_outcome(outcome: Outcome, job: Job) -> bytes:
    """Serialize an outcome; values that cannot travel are dropped or reported by name."""
    parts = outcome.parts or []
    guard = job.__dict__.get("_guard")
    outcome.unchecked = guard is not None and guard.pending
    by_id = job.captured_ids()
    arrays = captured_arrays(job.params, job.values, job.tracked) if by_id else []
    for each in (*parts, outcome):
        # A word count's partial dict travels as two lists (see Counts): its keys, its counts.
        each.partials = {
            name: counts_for_travel(job.strategy(name), partial) for name, partial in each.partials.items()
        }
        if each.kind == RAISED:
            classes = {key: ref for key, ref in by_id.items() if ref.key is None}
            each.value = (
                parts[-1].value if each is outcome and parts else serialize.Carried(each.value, classes)
            )
        elif by_id:
            # A name bound to a captured object (or a view of one) comes back as that object.
            each.bound = {name: refer(value, by_id, arrays) for name, value in each.bound.items()}
            if each.kind == RETURNED:
                each.value = refer(each.value, by_id, arrays)
    try:
        return serialize.dumps(outcome)
    except Exception:  # noqa: BLE001 - find out which value could not travel
        pass
    if not parts:
        return _repaired(outcome, job)
    repaired = [serialize.loads(_repaired(part, job)) for part in parts]
    for number, part in enumerate(repaired):
        if part.kind == RAISED and parts[number].kind != RAISED:
            # A value of this part could not travel: the chunk ends there.
            repaired = repaired[: number + 1]
            outcome.kind, outcome.stop, outcome.value = part.kind, part.stop, part.value
            break
    outcome.parts = repaired
    return serialize.dumps(outcome)


def _repaired(outcome: Outcome, job: Job) -> bytes:
    """An outcome that failed to serialize: drop what need not travel, or name what cannot."""
    try:
        return serialize.dumps(outcome)
    except Exception:  # noqa: BLE001 - find out which value could not travel
        pass
    for name, value in list(outcome.bound.items()):
        if not _travels(value):
            if name in job.after:
                return _cannot_travel(outcome, job, name, value, "is read after the loop")
            # Nothing after the loop reads it: it need not travel back.
            del outcome.bound[name]
    for name, value in outcome.partials.items():
        if not _travels(value):
            return _cannot_travel(
                outcome, job, name, value, "is a result of the loop, combined from its iterations"
            )
    if outcome.value is not None and not _travels(outcome.value):
        return _cannot_travel(outcome, job, "return value", outcome.value, "is returned")
    return serialize.dumps(outcome)


def _travels(value: Any) -> bool:
    try:
        serialize.dumps(value)
    except Exception:  # noqa: BLE001
        return False
    return True


def _cannot_travel(outcome: Outcome, job: Job, name: str, value: Any, why: str) -> bytes:
    last = outcome.start + outcome.size - 1
    which = f"iteration {last}" if last <= outcome.start else f"one of iterations {outcome.start} to {last}"
    culprit, problem = _culprit(value)
    advice = (
        "Keep such objects inside the loop body and send back something plain (a number, a string, "
        "a dict of them), or use backend='threads' or backend='sequential'"
    )
    if why == "is read after the loop" and not name.startswith("_") and _top_level(job):
        # Read after it or not: other modules can import a module's public names, so what the
        # last iteration bound there must come back (a `with ThreadPoolExecutor() as ex:` in
        # the body of a loop at a script's top level).
        advice = (
            f"At a module's (or class's) top level every name the loop binds counts as read after "
            f"it (other modules can import it): if nothing after the loop reads it, name it "
            f"{'_' + name!r}, or put the loop in a function; else {advice[0].lower()}{advice[1:]}"
        )
    error = ParaLoopError(
        f"{job.filename}, line {job.line}: {name!r} {why}, but what {which} put there cannot be sent "
        f"back from a worker process: {culprit}, a {_type_name(problem)} ({_travel_error(problem)}). "
        f"{advice}"
    )
    failed = Outcome(outcome.chunk, outcome.start, outcome.size, RAISED, outcome.start, error)
    return serialize.dumps(failed)


def _top_level(job: Job) -> bool:
    """Whether the loop stands at a module's or class's top level, not in a function (whose
    worker function is defined inside it)."""
    return "<locals>" not in getattr(job.function, "__qualname__", "<locals>")


def _culprit(value: Any, depth: int = 0) -> tuple[str, Any]:
    """Where in ``value`` (which does not travel) the first object that does not travel is, and
    that object: an element of a list, tuple or set, a dict's value or key, or ``value`` itself."""
    if depth < 4 and type(value) in (list, tuple, set, frozenset, dict) and len(value) <= 100_000:
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, inner in pairs:
            if isinstance(value, dict) and not _travels(key):
                return f"the key {reprlib.repr(key)}", key
            if not _travels(inner):
                where, found = _culprit(inner, depth + 1)
                label = f"the value at {reprlib.repr(key)}" if isinstance(value, dict) else "an element"
                return (label if where == "it" else f"{where} in {label}"), found
    return "it", value


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ in ("builtins", "__main__")
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _travel_error(value: Any) -> str:
    try:
        serialize.dumps(value)
    except Exception as error:  # noqa: BLE001 - what pickling it said
        return f"{type(error).__name__}: {error}"
    return "it travels alone, not with the rest"


def arrived(outcome: Outcome, began: float) -> Outcome:
    """An outcome just decoded on the caller's side (from a worker process, a Dask task or the
    caller's own chunk run as a worker's), decoding begun at ``began`` (``perf_counter``): it
    notes what receiving it cost the caller, and that it travelled, parts included (its
    exception's traceback then comes from the other side).  The one place a receiver
    changes an outcome."""
    outcome.received = time.perf_counter() - began
    outcome.remote = True
    for part in outcome.parts or ():
        part.remote = True
    return outcome


def unreadable(job: Job, chunk: Chunk, error: Exception) -> Outcome:
    """The outcome of a chunk whose results could not be loaded in the caller (a result's
    ``__setstate__`` raised there): an error naming its iterations; the chunks before it
    are combined as usual."""
    last = chunk.start + len(chunk.items) - 1
    which = f"iteration {last}" if last == chunk.start else f"iterations {chunk.start} to {last}"
    refused = ParaLoopError(
        f"{job.filename}, line {job.line}: the results of {which} came back from a worker process "
        f"but could not be loaded here: {type(error).__name__}: {error} (a class's __setstate__ "
        "or __reduce__ failed in the caller). Return plain values (numbers, strings, lists, dicts) "
        "from the body, or fix that class"
    )
    refused.__cause__ = error
    return Outcome(chunk.index, chunk.start, len(chunk.items), RAISED, chunk.start, refused)


def job_failure(error: BaseException) -> ParaLoopError:
    if isinstance(error, ParaLoopError):
        return error  # it says what failed and what to do
    return ParaLoopError(
        f"a worker process could not load the loop ({type(error).__name__}: {error}). "
        "Everything the loop body uses must be importable in a new process, or defined in "
        "the script itself; use backend='sequential' to run the loop in the caller"
    )
