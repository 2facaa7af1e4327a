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
from collections.abc import Callable

from ... import log
from ...execute import Outcome
from .protocol import Early

__all__ = ["EVIDENCE_SECONDS", "MAX_LANES", "LanePolicy", "Probe", "in_flight", "mostly_waiting"]


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


def in_flight(outcome: Outcome, cpus: int) -> int:
    """Iterations in flight that keep ``cpus`` busy, judged by this chunk's wall and CPU time.

    One iteration waits ``wall`` and computes ``cpu``: about wall/cpu of them
    share a CPU.  A chunk run in lanes took its wall time once for all lanes.
    """
    iterations = max(1, outcome.iterations)
    wall = outcome.seconds * len(outcome.parts or (outcome,)) / iterations
    cpu = max((outcome.cpu + outcome.queued) / iterations, 1e-6)
    return max(1, math.ceil(cpus * wall / cpu))


class LanePolicy:
    """One loop's decisions about lanes and worker count, from what its chunks measured.

    The dispatcher (see dispatch.py) tells it what happened (the caller's first chunks, an
    early word, each outcome) and asks it what to do next (how many lanes the next chunk
    gets, whether it is a probe or watched, whether a worker may hold a second chunk, how
    many workers the loop wants).  It does no I/O: the tests feed it made-up outcomes.

    ``grow_to``: iterations in flight at most, or None for a loop that never grows (a count
    of workers was given).  ``allowed``: lanes may run at all (not with a timeout, which a
    thread cannot honour, nor ``lanes=False``, nor ``max_iterations_per_worker``); such a
    loop whose iterations wait gets more worker processes instead, up to ``process_cap``.
    ``state_matters``: an iteration that changes process-wide state (see
    paraloop.process_state) switches lanes off, unless ``lanes=True`` was given.
    """

    def __init__(
        self, count: int, grow_to: int | None, allowed: bool, state_matters: bool, process_cap: int
    ) -> None:
        self.count = count
        self.grow_to = grow_to
        self.allowed = allowed
        self.state_matters = state_matters
        self.process_cap = process_cap
        self.lanes = 1
        # Lanes were switched on by an Early: the chunk's outcome may still switch them off.
        self.provisional = False
        self.probe = Probe()
        # The loop's chunks so far, together.
        self.wall = self.cpu = self.queued = 0.0

    def _spread(self, workers: int) -> int:
        """As many in flight as allowed at once: a first estimate from the first chunks (whose
        CPU time includes one-off costs) falls short, and each step up costs a round of chunks."""
        assert self.grow_to is not None
        return min(MAX_LANES, math.ceil(self.grow_to / workers))

    def state_changed(self) -> None:
        """An iteration changed process-wide state: no lanes from now on (unless forced)."""
        if self.state_matters:
            self.allowed, self.lanes, self.provisional = False, 1, False

    def after_caller(self, wall: float, cpu: float, queued: float, items: int, changed: bool) -> None:
        """The caller ran the loop's first chunks (see caller.py) and measured them."""
        if changed and self.state_matters:
            self.allowed = False
        self.wall, self.cpu, self.queued = wall, cpu, queued
        # Iterations run one at a time, as the probe compares lanes chunks with.
        self.probe.alone_cpu, self.probe.alone_items = cpu, items
        if self.grow_to is not None and self.allowed and mostly_waiting(wall, cpu, queued):
            # The caller's iterations waited: the workers run lanes from the start (their
            # first chunks need not be watched for it).  Run alone, they are what a probe
            # measures: each worker may hold a second chunk from the start, so that its lanes
            # do not idle while its first chunk's slowest iterations finish.
            self.lanes = self._spread(self.count)
            self.probe.confirmed = True
            log.debug(
                "the caller's iterations wait (%d in %.1f ms: CPU %.1f ms, queued %.1f ms): "
                "%d lanes per worker",
                items,
                wall * 1e3,
                cpu * 1e3,
                queued * 1e3,
                self.lanes,
            )

    def watches(self) -> bool:
        """Whether a worker's first chunk of the loop is watched, to start lanes early."""
        return self.lanes == 1 and self.grow_to is not None and self.allowed

    def second_chunks(self, fixed: bool, left: int | None = None, workers: int = 1) -> bool:
        """Whether a worker that holds one chunk may get a second: once lanes proved right, and
        not while a probe is wanted or running (it waits for a worker that holds nothing, and
        its verdict should come soon) unless the loop is ending (see :meth:`probes`).
        ``fixed``: the loop's chunk size was given."""
        wanted = self.probe.wanted and not self._ending(left, workers)
        probing_soon = (wanted or self.probe.running) and not fixed
        return self.lanes > 1 and self.probe.confirmed and not probing_soon

    def probes(self, holds_nothing: bool, fixed: bool, left: int | None = None, workers: int = 1) -> bool:
        """Whether the next chunk, for a worker that holds nothing (or not), is a probe: it
        runs alone, so only on a worker that holds nothing.

        Not once the loop is ending: with ``left`` iterations left (where known) filling at most
        two rounds of chunks on ``workers`` workers, the verdict could change little, and the
        probe's few iterations run alone would take the place of a round's worth in lanes (at
        the end of the loop, when nothing else is left to run meanwhile).
        """
        wanted = self.lanes > 1 and self.probe.wanted and not fixed and holds_nothing
        return wanted and not self._ending(left, workers)

    def _ending(self, left: int | None, workers: int) -> bool:
        return left is not None and left <= 2 * self.lanes * workers

    def on_early(self, early: Early) -> bool:
        """A watched chunk's early word: whether its worker gets a chunk for lanes now."""
        if not (
            self.grow_to is not None
            and self.allowed
            and not (early.state and self.state_matters)
            and mostly_waiting(self.wall + early.seconds, self.cpu + early.cpu, self.queued + early.queued)
        ):
            return False
        if self.lanes == 1:
            self.lanes = self._spread(self.count)
            self.provisional = True
            log.debug("iterations wait so far: %d lanes per worker", self.lanes)
        return True

    def on_outcome(
        self,
        outcome: Outcome,
        probing: bool,
        early_cpu: float | None,
        workers: int,
        cpus: Callable[[], int],
    ) -> int:
        """A chunk's outcome (``probing``: it was a probe; ``early_cpu``: the CPU time its
        chunk had used when it sent an Early).  Returns how many workers the loop wants now,
        or 0 for no more than the ``workers`` it has."""
        self.wall += outcome.seconds
        self.cpu += outcome.cpu
        self.queued += outcome.queued
        if outcome.process_state is not None and self.allowed and self.state_matters:
            log.debug("iterations changed %s: no lanes", outcome.process_state)
            self.allowed, self.lanes, self.provisional = False, 1, False
        if probing:
            self._probed(outcome)
        elif outcome.parts and self.lanes > 1:
            # (A lanes chunk may come back before the watched chunk that switched lanes on:
            # its verdict stays provisional until then.)
            self.probe.after_lanes(outcome)
        elif not outcome.parts and self.grow_to is not None:
            self._alone(outcome, early_cpu)
        if self.grow_to is None or not mostly_waiting(self.wall, self.cpu, self.queued):
            return 0
        if self.allowed:
            if self.lanes == 1:
                self.lanes = self._spread(workers)
                log.debug("iterations mostly wait: %d lanes per worker", self.lanes)
            return 0
        wanted = min(self.grow_to, self.process_cap, in_flight(outcome, cpus()))
        return wanted if wanted > workers else 0

    def _probed(self, outcome: Outcome) -> None:
        if self.probe.add(outcome) is False and self.lanes > 1:
            # Threads would only contend for the CPU, and each part's private copies cost
            # the caller combining.
            log.debug("iterations run alone keep the CPU busy: back to 1 lane")
            self.lanes, self.grow_to = 1, None

    def _alone(self, outcome: Outcome, early_cpu: float | None) -> None:
        self.probe.alone(outcome, early_cpu)
        if self.provisional and early_cpu is not None:
            self.provisional = False
            if not mostly_waiting(outcome.seconds, outcome.cpu, outcome.queued):
                # All of the chunk's time says otherwise than its first part did.  (Lanes that
                # compute beside it make it look waiting on the GIL; the probe catches those.)
                log.debug("iterations did not keep waiting: back to 1 lane")
                self.lanes = 1
