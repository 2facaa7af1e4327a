"""The lanes probe's decisions, fed with made-up outcomes: fast and deterministic.

The end-to-end lanes tests (tests/test_lanes.py) show what a user sees; these pin the
policy that decides it, including the cases a loaded machine makes hard to time.
"""

from __future__ import annotations

from paraloop.backends.processes.policy import EVIDENCE_SECONDS, PROBE_SPACING, Probe, mostly_waiting
from paraloop.execute import Outcome


def _chunk(seconds: float, cpu: float, queued: float = 0.0, iterations: int = 32) -> Outcome:
    return Outcome(0, 0, iterations, seconds=seconds, cpu=cpu, queued=queued)


def _switched_on_by_waiting() -> Probe:
    """A probe after a first chunk whose iterations waited (a slow start)."""
    probe = Probe()
    probe.alone(_chunk(0.12, 0.004, iterations=4))
    return probe


def test_a_busy_loop_in_lanes_on_a_loaded_machine_is_probed_at_once() -> None:
    """CPU plus time queued for a CPU fills the chunk: it computes, though its CPU share is low.

    Seen in CI: a loop of 200 busy iterations after a slow start stayed in lanes to its
    end, because a quarter of a CPU looked like waiting and the probe waited 8 chunks.
    """
    probe = _switched_on_by_waiting()
    # Iterations that use about as much CPU each as the slow start's did: nothing "changed".
    probe.after_lanes(_chunk(seconds=0.4, cpu=0.1, queued=0.29, iterations=300))
    assert probe.wanted


def test_a_waiting_loop_in_lanes_is_not_probed_before_its_time() -> None:
    probe = _switched_on_by_waiting()
    for _ in range(PROBE_SPACING + 2):
        probe.after_lanes(_chunk(seconds=0.4, cpu=0.01, queued=0.01, iterations=32))
        assert not probe.wanted
    assert probe.confirmed


def test_lanes_that_now_compute_far_more_per_iteration_are_probed() -> None:
    probe = _switched_on_by_waiting()
    probe.after_lanes(_chunk(seconds=0.4, cpu=0.2, iterations=32))
    assert probe.wanted


def test_after_a_probe_a_busy_worker_is_probed_again_only_after_the_spacing() -> None:
    probe = _switched_on_by_waiting()
    probe.after_lanes(_chunk(seconds=0.4, cpu=0.39, iterations=32))
    probe.start()
    # The probe's iterations, run alone, still wait: lanes stay.
    assert probe.add(_chunk(seconds=0.03, cpu=0.001, iterations=1)) is True
    for number in range(1, PROBE_SPACING + 1):
        probe.after_lanes(_chunk(seconds=0.4, cpu=0.39, iterations=32))
        assert probe.wanted == (number >= PROBE_SPACING)


def test_a_probe_gathers_evidence_before_it_decides() -> None:
    probe = _switched_on_by_waiting()
    probe.start()
    assert probe.add(_chunk(seconds=EVIDENCE_SECONDS / 3, cpu=EVIDENCE_SECONDS / 3, iterations=1)) is None
    assert probe.wanted and probe.start() >= 2
    # A quarter of a CPU, and queued for the rest: computing on a loaded machine.
    assert probe.add(_chunk(seconds=0.016, cpu=0.004, queued=0.012, iterations=1)) is False


def test_queueing_for_a_cpu_is_not_waiting() -> None:
    assert mostly_waiting(0.1, 0.01)
    assert not mostly_waiting(0.1, 0.025, queued=0.075)
    assert mostly_waiting(0.1, 0.025, queued=0.02)
    # Too little evidence either way.
    assert not mostly_waiting(EVIDENCE_SECONDS / 2, 0.0)
