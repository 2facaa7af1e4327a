"""The conversation between the caller and one worker process, over the worker's own pipe.

Every message from the caller is a fixed header (:data:`HEADER`: kind, loop id, chunk
index, start index, lanes) followed by a payload.  Every message from a worker is one
pickled object: an :class:`~paraloop.execute.Outcome`, an :class:`Early` or a
:class:`Checked`.  One loop, as seen from a worker::

    caller (dispatch.py)                           worker (child.py)
    --------------------                           -----------------
    JOB   loop id, payload: sys.path, job bytes  ->  loads the job (once per loop;
                                                     a failure answers every chunk)
    CHUNK index, start, lanes=WATCHED, items     ->  runs it in its main thread;
                                                     a watcher thread (watch.py) looks on
                          <- Early(seconds, cpu, queued, state)
                             (only if the iterations mostly waited so far)
    CHUNK index, start, lanes=n, items           ->  the answer, read by the watcher:
      or NOTHING                                     parts run in n lane threads
                          <- Outcome of the watched chunk
                          <- Outcome of the lanes chunk (parts in order)
    CHUNK index, start, lanes=1 | n, items       ->  one chunk alone, or in n lanes;
    CHUNK ... (with lanes, a second one queued)      a lanes chunk's answer comes from
                          <- Outcome                 a thread of its own, so the main
                                                     thread keeps reading
    CHECK loop id                                ->  checks what its chunks left
                          <- Checked(error)          unchecked (only if asked)
    QUIT                                         ->  closes its per-worker objects, exits

Rules both sides keep:

- A worker holds at most one chunk, or two when the chunks run in lanes; the caller
  never sends to a worker that holds more, so a large chunk or result cannot deadlock
  the pipe.
- A watched chunk (``lanes == WATCHED``) is the worker's first chunk of a loop that may
  switch lanes on.  Its worker sends at most one :class:`Early`, and the caller answers
  each Early exactly once (a CHUNK for lanes or NOTHING) and sends nothing else to that
  worker until then: the watcher thread reads that one answer while the main thread
  still runs the chunk.
- Every chunk gets exactly one Outcome, whatever happens in it; a worker that cannot
  send one exits (status 70), and the caller sees its process sentinel and names the
  iterations it held.
"""

from __future__ import annotations

import struct

from ...errors import ParaLoopError
from ...records import Record

__all__ = ["CHECK", "CHUNK", "HEADER", "JOB", "NOTHING", "QUIT", "WATCHED", "Checked", "Early"]

# Message header: kind, loop id, chunk index, start index, lanes.
HEADER = struct.Struct("<BQQQH")
JOB = 1
CHUNK = 2
QUIT = 3
# The caller's answer to an Early that brings no chunk.
NOTHING = 4
# At the loop's end: check what chunks left unchecked (see paraloop.guard); the answer is a
# Checked.
CHECK = 5

# The lanes field of a CHUNK whose chunk runs in one lane and is watched (see watch.py).
WATCHED = 0


class Checked(Record):
    """A worker's answer to CHECK: the change it found to an object from outside the loop."""

    error: ParaLoopError | None

    _fields = ("error",)

    def __init__(
        self,
        error: ParaLoopError | None,
    ) -> None:
        self.error = error


class Early(Record):
    """Sent by a worker: its running chunk's iterations mostly waited so far."""

    seconds: float
    cpu: float
    queued: float
    # The chunk changed process-wide state so far (see paraloop.process_state): no lanes.
    state: bool = False

    _fields = ("seconds", "cpu", "queued", "state")

    def __init__(
        self,
        seconds: float,
        cpu: float,
        queued: float,
        state: bool = False,
    ) -> None:
        self.seconds = seconds
        self.cpu = cpu
        self.queued = queued
        self.state = state
