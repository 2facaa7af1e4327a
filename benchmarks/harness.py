"""Timing helpers shared by the driver and the child processes.

Every measurement runs in a fresh child process (``child.py``), so a worker
pool never survives from one repetition to the next. The child prints one JSON
line; the driver adds the whole process's wall time around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "BENCH-RESULT "


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The children's environment: bytecode caching on (as for a user), no inherited overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALOOP_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def digest(value: object) -> str:
    """A hash of a result, key order included (a dict's items are hashed as an ordered list)."""

    def normal(v: object) -> object:
        if isinstance(v, dict):
            return ("dict", [(normal(k), normal(x)) for k, x in v.items()])
        if isinstance(v, (list, tuple)):
            return (type(v).__name__, [normal(x) for x in v])
        return v

    return hashlib.sha256(repr(normal(value)).encode()).hexdigest()[:16]


def report(seconds: float, result: object, **extra: object) -> None:
    """Called in a child: print the one line the driver reads."""
    import resource

    line = {
        "seconds": seconds,
        "digest": digest(result),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }
    print(MARK + json.dumps(line), flush=True)


@dataclass
class Sample:
    """One repetition: in-process seconds, whole-process seconds, result digest, peak RSS."""

    seconds: float
    process: float
    digest: str
    maxrss_mb: float


def run_child(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Sample:
    """Run ``python argv...`` in a fresh process; return what it reported and its wall time."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=child_env(env), timeout=timeout, cwd=HERE
    )
    return _parse(argv, done.stdout, done.stderr, done.returncode, time.perf_counter() - began)


def run_together(argvs: list[list[str]]) -> list[Sample]:
    """Start several children at once and wait for all (their whole-process time is not kept)."""
    children = [
        subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=HERE,
        )
        for argv in argvs
    ]
    outputs = [child.communicate(timeout=300) for child in children]
    return [
        _parse(argv, out, err, child.returncode, 0.0)
        for argv, child, (out, err) in zip(argvs, children, outputs)
    ]


def _parse(argv: list[str], stdout: str, stderr: str, returncode: int, process: float) -> Sample:
    lines = [line for line in stdout.splitlines() if line.startswith(MARK)]
    if returncode != 0 or not lines:
        raise RuntimeError(
            f"child {' '.join(argv)} failed (exit {returncode}):\n{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    data = json.loads(lines[-1][len(MARK) :])
    return Sample(data["seconds"], process, data["digest"], data["maxrss_mb"])


@dataclass
class Stats:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


@dataclass
class Row:
    """All repetitions of one tool on one workload."""

    label: str
    kind: str  # "plain", "paraloop", "peer" or "info" (shown, but not a contender)
    loop: Stats = field(default_factory=Stats)
    process: Stats = field(default_factory=Stats)
    digests: set[str] = field(default_factory=set)
    maxrss_mb: Stats = field(default_factory=Stats)

    def speedup(self, plain: Row, clock: str = "loop") -> float:
        """How many times faster than the plain loop (median over median)."""
        return getattr(plain, clock).median / getattr(self, clock).median

    def add(self, sample: Sample) -> None:
        self.loop.values.append(sample.seconds)
        self.process.values.append(sample.process)
        self.digests.add(sample.digest)
        self.maxrss_mb.values.append(sample.maxrss_mb)


@dataclass
class Table:
    """One workload at one size: a row per tool, the first row being the plain loop."""

    key: str
    title: str
    rows: dict[str, Row] = field(default_factory=dict)
    # Which clock the ratios use: "loop" (in-process) or "process" (the whole process),
    # and whether the other clock's ratio means anything here too.
    clock: str = "loop"
    both_clocks: bool = True

    @property
    def plain(self) -> Row:
        return next(iter(self.rows.values()))

    def ratio(self, variant: str, clock: str | None = None) -> float:
        """Median time of ``variant`` over the plain loop's median time (below 1 is faster)."""
        clock = clock or self.clock
        return getattr(self.rows[variant], clock).median / getattr(self.plain, clock).median

    def best_peer(self) -> str:
        """The peer with the lowest median time."""
        peers = [v for v, row in self.rows.items() if row.kind == "peer"]
        return min(peers, key=lambda v: getattr(self.rows[v], self.clock).median)

    def check_results(self) -> None:
        """Every tool must give exactly the plain loop's result, in every repetition."""
        expected = self.plain.digests
        if len(expected) != 1:
            raise SystemExit(f"{self.title}: the plain loop's result changed between repetitions")
        for variant, row in self.rows.items():
            if row.digests != expected:
                raise SystemExit(
                    f"RESULT MISMATCH in {self.title}: {row.label} ({variant}) gave {sorted(row.digests)}, "
                    f"the plain loop {sorted(expected)}"
                )


def measure(table: Table, variants: list[tuple[str, str, str]], argv_for, repetitions: int, env_for=None):
    """Run each (variant, label, kind) ``repetitions`` times, interleaved so that noise hits all alike."""
    for variant, label, kind in variants:
        table.rows[variant] = Row(label, kind)
    for rep in range(repetitions):
        for variant, _, _ in variants:
            env = env_for(variant) if env_for else None
            table.rows[variant].add(run_child(argv_for(variant), env))
        log(f"  {table.title}: repetition {rep + 1}/{repetitions} done")
    table.check_results()
    return table


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)
