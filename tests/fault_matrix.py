"""The fault matrix, run several times: no hang, no leaked process or segment, no wrong result.

    python tests/fault_matrix.py [--runs 3]

Runs the fault tests (worker crashes, timeouts, Ctrl-C, killed programs, bad items and
results, lazy and failing inputs, shared memory, the Dask cluster's faults, no silent loss)
``--runs`` times in a row, each under a hard time limit, and after each run lists the
processes and shared-memory segments that appeared during it and are still there. It
prints one line per run and exits 1 if any run hung, failed (a failed test is a wrong
result or a missing error) or left something behind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = [
    "test_failures.py",
    "test_shared.py",
    "test_dask.py",
    "test_no_silent_loss.py",
    "test_adversarial.py",
]
# A run longer than this is a hang.
LIMIT_SECONDS = 900
# Processes may take this long to go after the run (workers watch their program twice a second).
SETTLE_SECONDS = 10


def processes() -> dict[int, str]:
    """This user's processes, by pid, with their command lines."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        found[int(entry)] = command
    return found


def segments() -> set[str]:
    return set(os.listdir("/dev/shm"))


def run_once(number: int) -> bool:
    before_processes, before_segments = processes(), segments()
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=LIMIT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        print(f"run {number}: HUNG (over {LIMIT_SECONDS} s)")
        return False
    seconds = time.monotonic() - began
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        # New Python programs (workers, fork servers, Dask's programs) still running; other
        # programs this user starts meanwhile (a shell) are not the run's.
        left = {
            pid: command
            for pid, command in processes().items()
            if pid not in before_processes and pid != os.getpid() and "python" in command
        }
        leaked_segments = segments() - before_segments
        if (not left and not leaked_segments) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ok = done.returncode == 0 and not left and not leaked_segments
    print(
        f"run {number}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s: {summary}; "
        f"{len(left)} process(es) and {len(leaked_segments)} segment(s) left"
    )
    for pid, command in sorted(left.items()):
        print(f"    left: pid {pid}: {command[:160]}")
    for name in sorted(leaked_segments):
        print(f"    left: /dev/shm/{name}")
    if done.returncode != 0:
        print(done.stdout[-3000:])
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    results = [run_once(number) for number in range(1, runs + 1)]
    print(f"{sum(results)} of {runs} runs clean")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
