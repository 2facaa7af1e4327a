"""The lanes probe's decisions, fed with made-up outcomes: fast and deterministic.

The end-to-end lanes tests (tests/test_lanes.py) show what a user sees; these pin the
policy that decides it, including the cases a loaded machine makes hard to time.
"""

from __future__ import annotations

from paraloop.backends.processes.policy import (
    EVIDENCE_SECONDS,
    PROBE_SPACING,
    LanePolicy,
    Probe,
    mostly_waiting,
)
from paraloop.backends.processes.protocol import Early
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


# The loop-level decisions (LanePolicy): what the dispatcher does next, from made-up
# outcomes and early words.  Two workers, at most 64 iterations in flight.


def _policy(grow_to: int | None = 64, allowed: bool = True, state_matters: bool = True) -> LanePolicy:
    return LanePolicy(count=2, grow_to=grow_to, allowed=allowed, state_matters=state_matters, process_cap=16)


def _cpus() -> int:
    return 2


def _waiting(seconds: float = 0.12, iterations: int = 4) -> Outcome:
    """A chunk whose iterations slept: a few percent of a CPU."""
    return _chunk(seconds, cpu=seconds / 40, iterations=iterations)


def _computing(seconds: float = 0.12, iterations: int = 30) -> Outcome:
    return _chunk(seconds, cpu=seconds * 0.97, iterations=iterations)


def _in_lanes(seconds: float, cpu: float, iterations: int = 32) -> Outcome:
    outcome = _chunk(seconds, cpu=cpu, iterations=iterations)
    outcome.parts = [_chunk(seconds, cpu=cpu / 2, iterations=iterations // 2)] * 2
    return outcome


def _on(policy: LanePolicy, outcome: Outcome, probing: bool = False, early_cpu: float | None = None) -> int:
    return policy.on_outcome(outcome, probing, early_cpu, workers=2, cpus=_cpus)


def test_first_chunks_are_watched_only_where_lanes_may_start() -> None:
    assert _policy().watches()
    assert not _policy(grow_to=None).watches()  # a count of workers was given
    assert not _policy(allowed=False).watches()  # a timeout, lanes=False, max_iterations_per_worker


def test_an_early_word_of_waiting_switches_lanes_on_provisionally() -> None:
    policy = _policy()
    assert policy.on_early(Early(seconds=0.03, cpu=0.001, queued=0.0))
    assert policy.lanes == 32 and policy.provisional  # 64 in flight over the loop's 2 workers
    assert not policy.watches()


def test_an_early_word_of_a_chunk_that_changed_process_state_brings_no_lanes() -> None:
    assert not _policy().on_early(Early(seconds=0.03, cpu=0.001, queued=0.0, state=True))
    # Unless lanes=True was given.
    assert _policy(state_matters=False).on_early(Early(seconds=0.03, cpu=0.001, queued=0.0, state=True))


def test_an_early_word_with_too_little_evidence_or_busy_iterations_brings_nothing() -> None:
    assert not _policy().on_early(Early(seconds=EVIDENCE_SECONDS / 2, cpu=0.0, queued=0.0))
    assert not _policy().on_early(Early(seconds=0.03, cpu=0.02, queued=0.0))
    assert not _policy(grow_to=None).on_early(Early(seconds=0.03, cpu=0.001, queued=0.0))


def test_an_early_word_the_chunk_contradicts_is_taken_back() -> None:
    """The watched chunk waited 30 ms, then computed for 150: all its time says busy."""
    policy = _policy()
    assert policy.on_early(Early(seconds=0.03, cpu=0.001, queued=0.0))
    assert _on(policy, _chunk(0.18, cpu=0.151, iterations=2), early_cpu=0.001) == 0
    assert policy.lanes == 1 and not policy.provisional


def test_an_early_word_the_chunk_confirms_keeps_the_lanes() -> None:
    policy = _policy()
    policy.on_early(Early(seconds=0.03, cpu=0.001, queued=0.0))
    _on(policy, _waiting(0.4, iterations=1), early_cpu=0.001)
    assert policy.lanes == 32 and not policy.provisional
    # The probe compares lanes with the CPU the watched chunk had used when it spoke.
    assert policy.probe.alone_items == 1 and policy.probe.alone_cpu == 0.001


def test_waiting_outcomes_switch_lanes_on_and_busy_ones_do_not() -> None:
    policy = _policy()
    assert _on(policy, _waiting()) == 0
    assert policy.lanes == 32 and not policy.provisional
    busy = _policy()
    _on(busy, _computing())
    assert busy.lanes == 1


def test_a_loaded_machine_does_not_make_busy_outcomes_look_waiting() -> None:
    """A quarter of a CPU and queued for the rest: the iterations compute."""
    policy = _policy()
    _on(policy, _chunk(0.4, cpu=0.1, queued=0.29, iterations=100))
    assert policy.lanes == 1


def test_a_loop_that_only_started_waiting_goes_back_to_one_lane() -> None:
    """A slow start switched lanes on; lanes chunks that compute ask for a probe, whose
    iterations, run alone, keep the CPU busy: one lane, and no growing again."""
    policy = _policy()
    _on(policy, _waiting())
    assert policy.lanes == 32
    _on(policy, _in_lanes(seconds=0.2, cpu=0.39))
    assert policy.probe.wanted and not policy.second_chunks(fixed=False)
    assert policy.probes(holds_nothing=True, fixed=False)
    assert not policy.probes(holds_nothing=False, fixed=False)  # a probe runs alone
    policy.probe.start()
    _on(policy, _computing(0.03, iterations=6), probing=True)
    assert policy.lanes == 1 and policy.grow_to is None
    _on(policy, _waiting(1.0))  # however long the loop's totals say it waits
    assert policy.lanes == 1


def test_a_loop_that_keeps_waiting_keeps_its_lanes_and_gets_second_chunks() -> None:
    policy = _policy()
    _on(policy, _waiting())
    for _ in range(PROBE_SPACING * 3):
        _on(policy, _in_lanes(seconds=0.2, cpu=0.004))
        assert not policy.probe.wanted
    assert policy.lanes == 32 and policy.probe.confirmed
    assert policy.second_chunks(fixed=False)


def test_a_busy_worker_in_lanes_is_probed_and_lanes_stay_if_the_probe_waits() -> None:
    policy = _policy()
    _on(policy, _waiting())
    _on(policy, _in_lanes(seconds=0.2, cpu=0.19))  # busy in lanes: probed at once
    assert policy.probe.wanted
    policy.probe.start()
    _on(policy, _waiting(0.03, iterations=1), probing=True)
    assert policy.lanes == 32 and policy.probe.confirmed and not policy.probe.wanted


def test_a_chunk_that_changed_process_state_switches_lanes_off_for_good() -> None:
    policy = _policy()
    _on(policy, _waiting())
    changed = _waiting()
    changed.process_state = "the current directory"
    _on(policy, changed)
    assert policy.lanes == 1 and not policy.allowed
    assert not policy.watches()
    # With lanes=True given, the change does not matter.
    forced = _policy(state_matters=False)
    _on(forced, changed)
    assert forced.lanes == 32


def test_a_loop_without_lanes_whose_iterations_wait_asks_for_more_workers() -> None:
    """A timeout (a thread cannot be stopped): more processes instead, up to the cap."""
    policy = _policy(allowed=False)
    # 2 CPUs, iterations that compute 1/40 of their time: 80 in flight would keep them busy.
    assert _on(policy, _waiting()) == 16  # process_cap
    assert policy.lanes == 1
    small = LanePolicy(count=2, grow_to=5, allowed=False, state_matters=True, process_cap=16)
    assert small.on_outcome(_waiting(), False, None, workers=2, cpus=_cpus) == 5  # grow_to
    assert small.on_outcome(_waiting(), False, None, workers=5, cpus=_cpus) == 0  # has them


def test_a_loop_with_a_count_of_workers_never_grows() -> None:
    policy = _policy(grow_to=None)
    assert _on(policy, _waiting()) == 0
    assert policy.lanes == 1


def test_the_callers_waiting_chunks_start_lanes_from_the_first_chunk() -> None:
    policy = _policy()
    policy.after_caller(wall=0.03, cpu=0.0005, queued=0.0, items=3, changed=False)
    assert policy.lanes == 32 and not policy.watches()
    assert policy.probe.alone_cpu == 0.0005 and policy.probe.alone_items == 3
    # Run alone, the caller's iterations measured what a probe would: each worker may hold a
    # second chunk from the start (its lanes take it up as its first chunk's parts end).
    assert policy.second_chunks(fixed=False, left=1000, workers=2)
    busy = _policy()
    busy.after_caller(wall=0.03, cpu=0.029, queued=0.0, items=3, changed=False)
    assert busy.lanes == 1 and busy.watches()
    assert not busy.second_chunks(fixed=False, left=1000, workers=2)
    changed = _policy()
    changed.after_caller(wall=0.03, cpu=0.0005, queued=0.0, items=3, changed=True)
    assert changed.lanes == 1 and not changed.allowed


def test_a_callers_chunk_that_changes_process_state_while_workers_start_ends_lanes() -> None:
    policy = _policy()
    policy.on_early(Early(seconds=0.03, cpu=0.001, queued=0.0))
    policy.state_changed()
    assert policy.lanes == 1 and not policy.provisional and not policy.allowed


def test_no_probe_once_the_loop_is_ending() -> None:
    """A busy worker asks for a probe; with two rounds of chunks or less left (where the length
    is known), none runs: its iterations run alone would take a round's place at the loop's
    end, for a verdict that could change little.  Workers may then hold second chunks again."""
    policy = _policy()
    _on(policy, _waiting())
    for _ in range(PROBE_SPACING):
        _on(policy, _in_lanes(seconds=0.2, cpu=0.004))
    assert policy.lanes == 32 and policy.probe.confirmed
    _on(policy, _in_lanes(seconds=0.2, cpu=0.19))  # its CPU was busy: a probe is wanted
    assert policy.probe.wanted
    assert policy.probes(holds_nothing=True, fixed=False, left=1000, workers=2)
    assert policy.probes(holds_nothing=True, fixed=False)  # length unknown
    assert not policy.probes(holds_nothing=True, fixed=False, left=128, workers=2)
    assert not policy.second_chunks(fixed=False, left=1000, workers=2)
    assert policy.second_chunks(fixed=False, left=128, workers=2)
