"""When a loop runs in lanes: the caller's decisions from measured outcomes, without I/O.

Lanes: a worker process runs the parts of one chunk in threads (see lanes.py), for
iterations that wait.

An I/O-bound loop (network requests, disk) needs many iterations in flight at
once, far more than there are CPUs; starting that many processes costs more
than the waiting it saves.  So when the caller measures that iterations mostly
wait, it asks each worker to split a chunk into consecutive parts and run
them in threads of its own ("lanes").  Each part runs on its own private
copies of the tracked state, exactly like a chunk, and the caller combines
the parts in order, so the result is the one the plain loop gives.

Whether lanes still pay is checked with a probe (:class:`Probe`): a chunk of a
few iterations run alone.  Measured in lanes, a loop that computes and a
waiting loop that keeps its worker busy look alike (the CPU is busy either
way, and a thread waiting for the GIL looks like one waiting for the network).
"""

from __future__ import annotations

import math

from ...execute import Outcome

__all__ = ["EVIDENCE_SECONDS", "MAX_LANES", "Probe", "mostly_waiting"]

# Threads one worker process may run a chunk on.
MAX_LANES = 64
# Iterations measured for at least this long tell whether they wait.
EVIDENCE_SECONDS = 0.015
# A chunk in lanes busier than this share of its time has a probe looked again (the
# first time at once)...
BUSY_SHARE = 0.8
# ...but no sooner than this many chunks in lanes after the last probe.
PROBE_SPACING = 8
# A first probe is sent if iterations in lanes use this many times the CPU
# the iterations run alone used before lanes: the loop may have changed.
CHANGED = 3


def mostly_waiting(wall: float, cpu: float, queued: float = 0.0) -> bool:
    """Iterations that used a CPU under half of their time, after enough evidence.

    Under half: a second iteration in flight per worker already gains, and the
    first iterations of a loop that waits carry one-off costs (a first
    connection, lazy imports) that put them near 30% (a first HTTP request to
    a local server measured 11 ms of CPU in 37 ms).

    ``queued`` is time they were ready to run but waited for a CPU.  An iteration
    that computes on a loaded machine gets a fraction of a CPU and queues for the
    rest: CPU plus queueing fills its time.  One that waits queues a little each
    time it wakes up on a busy machine; up to 60% of its time with the CPU.
    """
    return wall > EVIDENCE_SECONDS and cpu < 0.5 * wall and cpu + queued < 0.6 * wall


class Probe:
    """The caller's probe of a loop running in lanes: do its iterations, run alone, still wait?

    A chunk back from lanes asks for a probe when its iterations used far more
    CPU each than the iterations that switched lanes on (those waited for a
    cold cache or a first connection, and the rest compute), or, every few
    chunks, when its worker's CPU was busy.  A probe costs a waiting loop a
    few iterations run one at a time.
    """

    def __init__(self) -> None:
        self.wanted = False
        self.running = False
        # Items the next probe chunk may hold: one, until a first probe measured them.
        self.size = 1
        self.wall = 0.0
        self.cpu = 0.0
        self.queued = 0.0
        self.items = 0
        self.probes = 0
        self.since = 0
        # A chunk back from lanes (or a probe) showed iterations that still wait.
        self.confirmed = False
        # CPU time per iteration of the chunks run alone before lanes.
        self.alone_cpu = 0.0
        self.alone_items = 0

    def alone(self, outcome: Outcome, early_cpu: float | None = None) -> None:
        """Note a chunk run in one lane before lanes were switched on.

        For a watched chunk whose early word switched lanes on, ``early_cpu`` is the CPU
        time it had used by then: lanes that compute beside the chunk inflate its own
        thread's CPU time afterwards (waiting for the GIL costs CPU: a 30 ms sleep measured
        up to 1.6 ms among 32 busy threads), and would hide the change the probe looks for.
        """
        # CPU alone: a waiting iteration on a loaded machine also queues for a CPU once it wakes.
        if early_cpu is None:
            self.alone_cpu += outcome.cpu
            self.alone_items += outcome.iterations
        else:
            self.alone_cpu += early_cpu
            self.alone_items += 1

    def after_lanes(self, outcome: Outcome) -> None:
        """Note a chunk that ran in lanes; ask for a probe if it is time."""
        self.since += 1
        # Lanes waiting for the GIL are not queued for a CPU: the one holding it is, on a
        # loaded machine, so CPU plus queueing is what a busy chunk in lanes asked for.
        busy = outcome.cpu + outcome.queued > BUSY_SHARE * outcome.seconds
        before = self.alone_cpu / max(1, self.alone_items)
        changed = outcome.cpu / max(1, outcome.iterations) > CHANGED * before
        # A first probe as soon as lanes look busy: a short loop may end before the spacing.
        first = self.probes == 0 and (changed or busy)
        if not self.running and (first or (busy and self.since >= PROBE_SPACING)):
            self.wanted = True
        elif not changed:
            self.confirmed = True

    def start(self) -> int:
        """The probe chunk is being sent: the most items it may hold."""
        self.wanted, self.running = False, True
        return self.size

    def add(self, outcome: Outcome) -> bool | None:
        """A probe chunk's outcome: whether iterations wait, or None while evidence is short."""
        self.running = False
        self.wall += outcome.seconds
        self.cpu += outcome.cpu
        self.queued += outcome.queued
        self.items += outcome.iterations
        if self.wall <= EVIDENCE_SECONDS:
            per_item = max(self.wall / max(1, self.items), 1e-6)
            self.size = max(1, math.ceil((EVIDENCE_SECONDS - self.wall) / per_item))
            self.wanted = True
            return None
        waiting = mostly_waiting(self.wall, self.cpu, self.queued)
        self.confirmed = waiting
        self.wall = self.cpu = self.queued = 0.0
        self.items, self.size, self.since = 0, 1, 0
        self.probes += 1
        return waiting
