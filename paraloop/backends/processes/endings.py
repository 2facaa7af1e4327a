"""A worker's part in a loop that ends otherwise than with an outcome.

A crash (the worker's process died: its iterations are named in the error), an iteration
past the loop's timeout (its worker is stopped), the loop's end (each worker checks what
its chunks left unchecked) and a worker's retirement after ``max_iterations_per_worker``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from ... import coverage_workers, log, serialize
from ...chunks import Chunk
from ...errors import ParaLoopError, WorkerCrashedError
from ...execute import RAISED, Job, Outcome, timeout_error
from .handle import Worker, wait
from .protocol import CHECK, Checked

if TYPE_CHECKING:
    from .pool import ProcessPool

__all__ = [
    "CHECK_SECONDS",
    "crash_error",
    "crashed",
    "final_check",
    "lost",
    "overdue",
    "retire",
    "until_deadline",
]

# How long a worker may take to answer the end-of-loop check (fingerprints of large objects).
CHECK_SECONDS = 300.0


def crashed(pool: ProcessPool, worker: Worker, job: Job) -> NoReturn:
    """Raise the loop's WorkerCrashedError for ``worker``, naming the iterations it held (at
    the loop's end, when every outcome is in)."""
    raise crash_error(pool, worker, job, sorted(worker.chunks.values(), key=lambda c: c.start))


def lost(pool: ProcessPool, worker: Worker, job: Job, error: ParaLoopError | None = None) -> Outcome | None:
    """A worker died while the loop runs: its earliest chunk's outcome is the loop's
    WorkerCrashedError, at that chunk's first iteration (None if it held no chunk).

    The runtime raises it once the chunks before it are combined, as it does an
    iteration's exception: those still running on other workers then reach tracked state,
    which holds every iteration before the lost ones, as on Dask.  Raised at once, the error
    left out the earlier iterations that were still running elsewhere."""
    chunks = sorted(worker.chunks.values(), key=lambda chunk: chunk.start)
    if error is None:
        error = crash_error(pool, worker, job, chunks)
    else:
        worker.chunks.clear()
        pool.discard(worker)
    if not chunks:
        return None
    first = chunks[0]
    return Outcome(first.index, first.start, len(first.items), RAISED, first.start, error)


def crash_error(pool: ProcessPool, worker: Worker, job: Job, chunks: list[Chunk]) -> WorkerCrashedError:
    """Stop and discard ``worker``; the error naming its exit and the iterations of ``chunks``
    (none if the program exits: see ProcessPool.closing)."""
    pool.closing()
    worker.chunks.clear()
    how = worker.describe_exit()
    pool.discard(worker)
    spans = []
    for chunk in chunks:
        last = chunk.start + len(chunk.items) - 1
        one = last == chunk.start
        spans.append(f"iteration {last}" if one else f"iterations {chunk.start} to {last}")
    held = " and ".join(spans) or "no iterations"
    error = WorkerCrashedError(
        f"{job.filename}, line {job.line}: a worker process (pid {worker.process.pid}) {how} "
        f"while running {held} of the loop. The iterations it held were lost; "
        "if it ran out of memory, use fewer workers (num_processes=...) or smaller items"
    )
    code = worker.process.exitcode
    if isinstance(code, int) and code < 0:
        error.signal = -code
    return error


def until_deadline(waiting: list[Worker], timeout: float | None) -> float | None:
    """How long to wait before some running iteration would pass the timeout."""
    if timeout is None:
        return None
    started: list[float] = [w.clock[0] for w in waiting if w.clock[0] > 0]
    if not started:
        return min(timeout, 0.5)  # the iterations have not stamped their start yet
    # At most an hour per wait: poll() counts milliseconds in a C int (24 days), and a
    # timeout of a month would overflow it.  The caller waits again.
    return min(3600.0, max(0.0, min(started) + timeout - time.monotonic()) + 0.01)


def overdue(waiting: list[Worker], ready: list[Any], job: Job) -> Iterator[tuple[Worker, ParaLoopError]]:
    """The workers running an iteration past the timeout (that sent nothing meanwhile), each
    with the loop's IterationTimeoutError; the caller stops them (see dispatch.lose), and the
    error is raised in chunk order, as an iteration's exception is: an earlier iteration's
    exception or crash comes first, as in the plain loop."""
    assert job.timeout is not None
    now = time.monotonic()
    for worker in waiting:
        started = worker.clock[0]
        if worker.connection in ready or not started or now - started <= job.timeout:
            continue
        yield (
            worker,
            timeout_error(
                job, int(worker.clock[1]), worker.chunks.values(), "its worker process was stopped"
            ),
        )


def final_check(pool: ProcessPool, active: list[Worker], loop_id: int, job: Job, measured: bool) -> None:
    """At the loop's end, each worker checks the captured objects its chunks left unchecked
    (those whose check costs more than a few percent of a chunk): a change is an error.

    Under coverage (``measured``), each worker also saves what it measured (see
    paraloop.coverage_workers)."""
    if not job.guarded and not measured:
        return
    # A worker whose checks after each chunk covered everything has nothing to check: the
    # round trip is skipped (it was two of a small loop's seven messages).
    asked = [w for w in active if w.job_id == loop_id and (w.unchecked or measured)]
    for worker in asked:
        try:
            worker.send(CHECK, loop_id, 0, 0, b"")
        except OSError:  # a broken pipe, or one the program's exit closed (see ProcessPool.closing)
            crashed(pool, worker, job)
        # Until its answer is read: one left unread (another worker's crash, or Ctrl-C, ends
        # this early) stops the worker at the loop's end (see Worker.unclean).
        worker.unclean = True
    found: ParaLoopError | None = None
    for worker in asked:
        ready = wait([worker.connection, worker.ended], CHECK_SECONDS)
        if worker.connection not in ready:
            if not ready:
                worker.process.kill()  # never a hang: a worker that does not answer is stopped
            crashed(pool, worker, job)
        try:
            answer = serialize.loads(worker.connection.recv_bytes())
        except (EOFError, OSError):
            crashed(pool, worker, job)
        worker.unclean = False
        if isinstance(answer, Checked) and answer.error is not None and found is None:
            found = answer.error
    if measured:
        coverage_workers.combine()
    if found is not None:
        raise found


def retire(pool: ProcessPool, worker: Worker, loop_id: int, job: Job, measured: bool) -> None:
    """Stop a worker that ran its ``max_iterations_per_worker``: first the check a loop's end
    makes, then the order to quit (it closes its per-worker objects)."""
    log.debug(
        "retiring %s (pid %s) after %d iterations",
        worker.process.name,
        worker.process.pid,
        worker.assigned,
    )
    try:
        if worker.job_id == loop_id:
            final_check(pool, [worker], loop_id, job, measured)
    finally:
        pool.retire(worker)
