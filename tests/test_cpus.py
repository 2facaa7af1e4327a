"""The CPU count a user gives Python (3.13's ``-X cpu_count`` and ``PYTHON_CPU_COUNT``) is
the count paraloop sizes its pool by, on every Python version."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LINUX_FACILITIES

from paraloop.cpus import available_cpus

SCRIPT = """\
import os, time
from paraloop import ParaLoop
from paraloop.cpus import available_cpus
pids = set()
for i in ParaLoop(range(12), chunksize=1):
    time.sleep(0.05)
    pids.add(os.getpid())
print(available_cpus(), len(pids))
"""


def _run(tmp_path: Path, options: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "count.py"
    script.write_text(SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARALOOP_", "PYTHON_CPU")) or k == "PARALOOP_CALLER_RUNS"
    }
    env.update(environment)
    return subprocess.run(
        [sys.executable, *options, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


@pytest.mark.skipif(available_cpus() < 2, reason="one CPU: the override cannot be told from the default")
@pytest.mark.parametrize("how", ["environment", "option"])
def test_the_pythons_cpu_count_sizes_the_pool(tmp_path: Path, how: str) -> None:
    """One CPU for Python: one worker runs every iteration (on 2+ CPUs, several would)."""
    if how == "environment":
        done = _run(tmp_path, [], PYTHON_CPU_COUNT="1")
    else:
        done = _run(tmp_path, ["-X", "cpu_count=1"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_without_it_the_pool_uses_the_cpus(tmp_path: Path) -> None:
    done = _run(tmp_path, [], PYTHON_CPU_COUNT="default")
    assert done.returncode == 0, done.stderr
    cpus, workers = map(int, done.stdout.split())
    assert cpus == available_cpus() and workers == min(cpus, 12)


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="Python 3.13 refuses a bad value itself, at startup")
def test_a_bad_count_is_refused_with_what_to_give(tmp_path: Path) -> None:
    done = _run(tmp_path, [], PYTHON_CPU_COUNT="many")
    assert done.returncode == 1
    assert "PYTHON_CPU_COUNT='many' is not a positive whole number" in done.stderr
    assert "PYTHON_CPU_COUNT=4" in done.stderr


@pytest.mark.skipif(not LINUX_FACILITIES, reason="PARALOOP_PORTABLE: no schedstat file is opened")
def test_threads_reading_their_queued_time_close_no_other_descriptor() -> None:
    """Several threads of a program run loops at once, and each reads its own queued time:
    none closes a descriptor it does not own (two threads once closed the same one, and the
    number, reused by a worker's pipe, made the loop's next send fail with EBADF)."""
    import gc
    import threading

    from paraloop.cpus import queued_seconds

    read_end, write_end = os.pipe()
    failures: list[BaseException] = []

    def schedstat_descriptors() -> int:
        # Only the schedstat files count: the test runs in a process where an earlier test's
        # pool may still open or close pipes in the background (a count of every descriptor
        # once failed by two, in CI, with no schedstat file among them).
        count = 0
        for name in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{name}").endswith("/schedstat")
            except OSError:
                pass  # closed between the listing and the read
        return count

    before = schedstat_descriptors()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to meet the race
    try:

        def read_many() -> None:
            try:
                for _ in range(3000):
                    queued_seconds()
                    os.fstat(read_end)
                    os.fstat(write_end)
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=read_many) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    try:
        assert not failures, failures[0]
        os.write(write_end, b"x")
        assert os.read(read_end, 1) == b"x"
        gc.collect()
        # The threads that ended left no schedstat file open (one is this thread's own, at most).
        assert schedstat_descriptors() <= before + 1
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.alone
@pytest.mark.skipif(
    not LINUX_FACILITIES,
    reason="PARALOOP_PORTABLE hides the time queued for a CPU (Linux's schedstat), as on macOS",
)
def test_a_busy_thread_on_a_loaded_machine_measures_its_time_queued_for_a_cpu() -> None:
    """What the lanes policy needs to tell a busy iteration from a waiting one on a loaded
    machine (its decisions are tested in test_lanes_policy.py): three programs per CPU that
    only compute leave a busy thread a fraction of a CPU, and the rest shows as queued time."""
    import time

    from paraloop.cpus import queued_seconds

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3 * available_cpus())]
    try:
        time.sleep(0.2)  # the hogs are running, not starting
        began_queued, began = queued_seconds(), time.perf_counter()
        while time.perf_counter() - began < 0.5:
            pass
        queued = queued_seconds() - began_queued
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    # A fair share is a quarter of a CPU: about 0.37 s of the 0.5 s queued.  Far less would
    # mean the figure is not read.
    assert queued > 0.1, queued


@pytest.mark.skipif(
    not LINUX_FACILITIES,
    reason="PARALOOP_PORTABLE hides the time queued for a CPU (Linux's schedstat), as on macOS",
)
def test_other_threads_queued_time_is_read_and_an_ended_one_is_told() -> None:
    """What the caller's chunk adds for a thread that held the GIL while queued (the lanes
    policy's decision is tested in test_failures.py): the other threads' figures, one started
    meanwhile from its start, and no figure (None) once one of them ended, its figure gone."""
    import threading

    from paraloop.cpus import others_queued, others_queued_since

    stop = threading.Event()
    running = threading.Thread(target=stop.wait)
    running.start()
    try:
        before = others_queued()
        assert running.native_id in before
        assert threading.get_native_id() not in before
        assert others_queued(skip=running.native_id).get(running.native_id) is None
        started = threading.Thread(target=stop.wait)
        started.start()
        since = others_queued_since(before)
        assert since is not None and since >= 0.0
        stop.set()
        running.join()
        started.join()
        assert others_queued_since(before) is None
    finally:
        stop.set()


@pytest.mark.skipif(
    not LINUX_FACILITIES,
    reason="PARALOOP_PORTABLE hides the time queued for a CPU (Linux's schedstat), as on macOS",
)
def test_a_program_with_many_threads_leaves_their_queued_time_unknown() -> None:
    """Each thread read costs a caller's chunk two reads: past MAX_OTHERS the figure is unknown
    (None), and the caller's chunk is then bounded by its own wake-ups only."""
    import threading

    from paraloop.cpus import MAX_OTHERS, others_queued, others_queued_since

    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(MAX_OTHERS + 3)]
    for thread in threads:
        thread.start()
    try:
        assert others_queued() is None
        assert others_queued_since(None) is None
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert others_queued() is not None


@pytest.mark.parametrize(
    ("off_cpu", "held", "runs", "expected"),
    [
        (0.25, 0.3, 60, 0.25),  # woke every switch interval: all of it, up to what it was off
        (0.25, 0.1, 60, 0.1),  # no more than the others queued
        (0.1, 0.09, 2, 0.01),  # a sleep of 100 ms beside an import queued 90 ms: two wake-ups
        (0.1, math.inf, 2, 0.01),  # a thread ended meanwhile: its figure unknown
        (0.0, 0.3, 60, 0.0),
    ],
)
def test_the_wait_for_the_gil_is_bounded_by_wake_ups(
    off_cpu: float, held: float, runs: int, expected: float
) -> None:
    """A thread waiting for the GIL wakes every switch interval to ask for it; one waiting for
    a reply wakes once: the others' queueing counts as the chunk's only as far as its wake-ups
    reach (how the caller tells a busy chunk beside a preempted GIL holder from a waiting one)."""
    from paraloop.cpus import waited_for_the_gil

    assert sys.getswitchinterval() == 0.005
    assert waited_for_the_gil(off_cpu, held, runs) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        ("150000 100000\n", None, 2),  # 1.5 CPUs: the pool gets 2
        ("50000 100000\n", None, 1),  # half a CPU: never fewer than one
        ("max 100000\n", ("100000\n", "100000\n"), None),  # v2 says no quota: v1 is not asked
        (None, ("100000\n", "100000\n"), 1),
        (None, ("-1\n", "100000\n"), None),  # v1's "no quota"
        (None, None, None),
        ("garbled\n", None, None),
    ],
)
def test_the_cgroups_cpu_quota_caps_the_count(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    v2: str | None,
    v1: tuple[str, str] | None,
    expected: int | None,
) -> None:
    """A container limited to 1.5 CPUs gets a pool of 2 workers, not one per CPU of the host."""
    from paraloop import cpus

    v2_path = tmp_path / "cpu.max"
    v1_paths = (tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us")
    if v2 is not None:
        v2_path.write_text(v2)
    if v1 is not None:
        for path, text in zip(v1_paths, v1):
            path.write_text(text)
    monkeypatch.setattr(cpus, "CGROUP_V2", str(v2_path))
    monkeypatch.setattr(cpus, "CGROUP_V1", tuple(map(str, v1_paths)))
    monkeypatch.setattr(cpus, "_quota_read", (-1e9, None))
    monkeypatch.delenv("PYTHON_CPU_COUNT", raising=False)
    quota = cpus._read_cgroup_quota()
    assert (None if quota is None else max(1, math.ceil(quota))) == expected
    if LINUX_FACILITIES:
        cpus._quota_read = (-1e9, None)
        assert available_cpus() == min(len(os.sched_getaffinity(0)), expected or 10**6)
