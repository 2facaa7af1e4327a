"""The benchmark suite: ``python benchmarks/run.py [--quick]``.

Runs every workload (``w1_dispatch`` ... ``w6_import``, ``w8_numpy``, ``w9_tiny``,
``w10_array``) for the plain loop,
paraloop and the peers, each repetition in a fresh process, checks that every
tool's result equals the plain loop's, and writes ``docs/benchmarks.md`` and
``docs/benchmarks.png``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import report
import w2_io
import w3_cpu
import w6_import
from harness import Stats, Table, log, measure, run_child, run_together

PEERS = [
    ("mp_pool", "multiprocessing.Pool.map", "peer"),
    ("process_pool", "ProcessPoolExecutor.map", "peer"),
    ("thread_pool", "ThreadPoolExecutor.map", "peer"),
    ("joblib", "joblib.Parallel", "peer"),
    ("mpire", "mpire.WorkerPool.map", "peer"),
]
PLAIN = ("plain", "plain loop", "plain")
PARALOOP = ("paraloop", "paraloop", "paraloop")
WARM = ("paraloop:warm", "paraloop, pool started before the clock", "info")


def workload(module: str, args: dict):
    """The argv of ``child.py`` for one variant of ``module``."""
    return lambda variant: ["child.py", module, variant, json.dumps(args)]


def w1(reps: int) -> list[Table]:
    tables = []
    for n in (200_000, 1_000_000):
        table = Table(f"w1-{n}", f"W1 dispatch, {n:,} iterations (cold)")
        tables.append(
            measure(table, [PLAIN, PARALOOP, *PEERS, WARM], workload("w1_dispatch", {"n": n}), reps)
        )
    variants = [
        ("plain_gen", "plain loop", "plain"),
        ("paraloop_gen", "paraloop", "paraloop"),
        ("mp_pool_gen", "multiprocessing.Pool.map", "peer"),
    ]
    table = Table("w1-gen", "W1 memory: 1,000,000 iterations read from a generator")
    tables.append(measure(table, variants, workload("w1_dispatch", {"n": 1_000_000}), reps))
    variants = [
        ("plain_float", "plain loop", "plain"),
        ("paraloop_float", "paraloop", "paraloop"),
        ("mp_pool_float", "multiprocessing.Pool.map, terms added in order", "peer"),
    ]
    table = Table("w1-float", "W1 float sum: acc += i * 0.5, 200,000 iterations (cold, bit for bit)")
    tables.append(measure(table, variants, workload("w1_dispatch", {"n": 200_000}), reps))
    return tables


def w2(reps: int) -> Table:
    variants = [PLAIN, ("paraloop", "paraloop (default settings)", "paraloop"),
                ("paraloop_threads", 'paraloop backend="threads", 64', "paraloop"),
                ("mp_pool", "Pool(32).map, chunksize 1", "peer"),
                ("process_pool", "ProcessPoolExecutor(32)", "peer"),
                ("thread_pool", "ThreadPoolExecutor(64)", "peer"),
                ("joblib", 'joblib (64, prefer="threads")', "peer"),
                ("mpire", 'mpire (64, "threading")', "peer")]  # fmt: skip
    with w2_io.serve() as url:
        table = Table("w2", "W2 I/O-bound: 256 HTTP GETs answered after 20 ms")
        return measure(table, variants, workload("w2_io", {"n": 256}), reps, lambda _: {"BENCH_URL": url})


def w3(reps: int, rounds: int) -> Table:
    table = Table("w3", "W3 CPU-bound: 64 iterations of ~35 ms (cold)")
    return measure(
        table, [PLAIN, PARALOOP, *PEERS, WARM], workload("w3_cpu", {"n": 64, "rounds": rounds}), reps
    )


def w4(reps: int) -> list[Table]:
    tables = []
    for fraction, name in ((0.5, "half"), (1.0, "all")):
        table = Table(f"w4-{name}", f"W4 word frequencies, {name} of the stdlib's .py files (cold)")
        tables.append(
            measure(table, [PLAIN, PARALOOP, *PEERS], workload("w4_words", {"fraction": fraction}), reps)
        )
    return tables


def w4_split(reps: int) -> Table:
    table = Table("w4-split", "W4 split: str.split() word count of every stdlib .py file (cold)")
    return measure(table, [PLAIN, PARALOOP, *PEERS], workload("w4_split", {}), reps)


def w8(reps: int) -> Table:
    variants = [PLAIN, PARALOOP, ("joblib", "joblib.Parallel (loky, its default)", "peer")]
    table = Table("w8", "W8 numpy: 24 iterations of fifteen 300x300 matrix products (cold)")
    return measure(table, variants, workload("w8_numpy", {"n": 24}), reps)


def w9(reps: int) -> list[Table]:
    tables = []
    variants = [PLAIN, PARALOOP, WARM, ("thread_pool", "ThreadPoolExecutor.map", "peer"),
                ("joblib", "joblib.Parallel", "peer")]  # fmt: skip
    for shape, title in (("trivial", "10 trivial iterations"), ("10x1ms", "10 iterations of 1 ms"),
                         ("100x0.1ms", "100 iterations of 0.1 ms")):  # fmt: skip
        table = Table(f"w9-{shape}", f"W9 a small loop: {title}")
        tables.append(measure(table, variants, workload("w9_tiny", {"shape": shape}), reps))
    table = Table("w9-numpy", "W9 a small loop: 10 iterations of a 50x50 numpy product")
    tables.append(measure(table, [PLAIN, PARALOOP, WARM], workload("w9_numpy", {}), reps))
    return tables


def w10(reps: int) -> Table:
    variants = [PLAIN, PARALOOP, WARM, ("joblib", "joblib.Parallel (memory-maps large arrays)", "peer"),
                ("mp_pool", "multiprocessing.Pool, the array through its initializer", "peer")]  # fmt: skip
    table = Table("w10", "W10 a captured 200 MB numpy array, 8 trivial iterations")
    return measure(table, variants, workload("w10_array", {}), reps)


def w5(reps: int) -> Table:
    methods = ("fork", "forkserver", "spawn")
    variants = [PLAIN] + [(f"paraloop_{m}", f"paraloop, {m}", "paraloop") for m in methods] + PEERS

    def argv(variant):
        if variant.startswith("paraloop"):
            return ["-m", "paraloop", "w5_startup.py", "paraloop"]
        return ["w5_startup.py", variant]

    def env(variant):
        return {"PARALOOP_START_METHOD": variant.split("_")[1]} if variant.startswith("paraloop") else None

    title = "W5 start-up: a whole python process running a 16-iteration loop"
    table = Table("w5", title, clock="process", both_clocks=False)
    return measure(table, variants, argv, reps, env)


def w6(reps: int, directory: str) -> list[Table]:
    w6_import.generate(directory)
    modes = ("unmarked_200", "unmarked_200_hook", "unmarked_cached", "marked_cached", "marked_cached_runtime")
    for mode in modes:  # fill the bytecode caches once
        run_child(["w6_import.py", mode, directory])
    argv = lambda mode: ["w6_import.py", mode, directory]  # noqa: E731
    many = Table("w6-hook", "W6 import: 200 unmarked modules (cached bytecode)", both_clocks=False)
    measure(many, [("unmarked_200", "without paraloop", "plain"),
                   ("unmarked_200_hook", "after import paraloop (hook installed)", "paraloop")],
            argv, reps)  # fmt: skip
    marked = Table("w6-marked", "W6 import: one module with a ParaLoop loop in a function", both_clocks=False)
    measure(marked, [("unmarked_cached", "unmarked module, cached (plain import)", "plain"),
                     ("marked_cached", "marked module, from paraloop's cache, importing paraloop.runtime", "info"),
                     ("marked_cold", "marked module, cold (no cache)", "paraloop"),
                     ("marked_cached_runtime", "marked module, from paraloop's cache, paraloop.runtime imported before", "paraloop")],
            argv, reps)  # fmt: skip
    alone = Table("w6-paraloop", "W6 import: `import paraloop` in a fresh process", clock="process", both_clocks=False)
    measure(alone, [("nothing", "a process that imports nothing", "plain"),
                    ("import_paraloop", "import paraloop", "paraloop")],
            argv, reps)  # fmt: skip
    return [many, marked, alone]


def example(reps: int) -> dict:
    """The README's word-count example as a user runs it (``python -m paraloop
    examples/word_frequencies.py``): the times it prints, plain loop and ParaLoop."""
    printed: dict[str, list[float]] = {"plain": [], "variables": [], "names": []}
    for _ in range(reps):
        done = subprocess.run(
            [sys.executable, "-m", "paraloop", "examples/word_frequencies.py"], capture_output=True,
            text=True, cwd=harness.HERE.parent, env=harness.child_env(None), timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"examples/word_frequencies.py failed: {done.stderr[-2000:]}")
        times = [float(line.split(":", 1)[1].split()[0]) for line in done.stdout.splitlines()
                 if line.startswith(("plain loop:", "ParaLoop:"))]  # fmt: skip
        for key, seconds in zip(printed, times):
            printed[key].append(seconds)
    return printed


def parallel_capacity(reps: int, rounds: int) -> Stats:
    """Two pure-Python processes at once against one alone: the ceiling for two workers here.

    Alone, together, alone again: the VM's speed drifts, so "alone" is the mean of the two.
    """
    argv = ["child.py", "w3_cpu", "plain", json.dumps({"n": 16, "rounds": rounds})]
    ratios = Stats()
    for _ in range(reps):
        before = run_child(argv).seconds
        together = run_together([argv, argv])
        alone = (before + run_child(argv).seconds) / 2
        ratios.values.append(2 * alone / max(sample.seconds for sample in together))
    return ratios


def diagnose(argv: list[str], env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "diagnose.py", *argv], capture_output=True, text=True, cwd=harness.HERE,
        env=harness.child_env(env), timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        log(f"diagnosis {argv} failed: {done.stderr[-500:]}")
        return {}
    return json.loads(done.stdout.splitlines()[-1])


def causes(rounds: int, directory: str) -> dict:
    """Instrumented runs that explain the figures (not part of them)."""
    found = {
        "w1": w1_imports(),
        "w3": diagnose(["chunks", "w3_cpu", "paraloop", json.dumps({"n": 64, "rounds": rounds})]),
        "w4": diagnose(["chunks", "w4_words", "paraloop", json.dumps({"fraction": 1.0})]),
        "w4-split": diagnose(["chunks", "w4_split", "paraloop", json.dumps({})]),
        "finder": diagnose(["finder", directory]),
        **{
            f"w9-{shape}": diagnose(["caller", "w9_tiny", "paraloop", json.dumps({"shape": shape})])
            for shape in ("trivial", "10x1ms", "100x0.1ms")
        },
        "marked": diagnose(["marked", directory]),
    }
    with w2_io.serve() as url:
        env = {"BENCH_URL": url}
        found["w2"] = diagnose(["chunks", "w2_io", "paraloop", json.dumps({"n": 256})], env)
        found["w2-threads"] = diagnose(["chunks", "w2_io", "paraloop_threads", json.dumps({"n": 256})], env)
    return found


def w1_imports(runs: int = 3) -> dict:
    """W1 at 200,000, cold: what the caller imports during the loop, and the loop without that."""
    argv = ["chunks", "w1_dispatch", "paraloop", json.dumps({"n": 200_000})]
    cold = [diagnose(argv) for _ in range(runs)]
    if not all(cold):
        return {}
    found = {**cold[0], "cold": statistics.median(run["loop_seconds"] for run in cold)}
    if found["imported"]:
        preloaded = [diagnose([*argv, ",".join(found["imported"])]) for _ in range(runs)]
        if all(preloaded):
            found["preloaded"] = statistics.median(run["loop_seconds"] for run in preloaded)
    return found


LAST_RUN = Path(tempfile.gettempdir()) / "paraloop-bench-last-run.pickle"


def measure_all(reps: int, quick: bool) -> tuple[list[Table], dict, report.Context]:
    began, commit = time.perf_counter(), report.commit()
    log(f"paraloop at {commit}; warming bytecode caches")
    run_child(["child.py", "w1_dispatch", "paraloop", json.dumps({"n": 10})])
    for peer, _, _ in PEERS:
        run_child(["child.py", "w1_dispatch", peer, json.dumps({"n": 10})])
    rounds = w3_cpu.calibrate()
    log(f"W3 calibrated: {rounds} rounds per iteration; measuring the machine's parallel capacity")
    capacity = parallel_capacity(reps, rounds)
    tables: list[Table] = []
    with tempfile.TemporaryDirectory(prefix="paraloop-bench-w6-") as directory:
        tables += w1(reps)
        tables.append(w2(reps))
        tables.append(w3(reps, rounds))
        tables += w4(reps)
        tables.append(w4_split(reps))
        tables.append(w8(reps))
        tables += w9(reps)
        tables.append(w10(reps))
        tables.append(w5(reps))
        # Imports take milliseconds each and this VM's speed swings by tens of percent from one
        # process to the next: six times the repetitions (a few seconds in all) for stable medians.
        tables += w6(6 * reps, directory)
        log("diagnosing causes")
        found = causes(rounds, directory)
        log("the README's word-count example")
        found["example"] = example(reps)
    seconds = time.perf_counter() - began
    finished = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return tables, found, report.Context(reps, quick, seconds, rounds, capacity, commit, finished)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5 (a smoke test)")
    parser.add_argument("--output", type=Path, default=harness.HERE.parent / "docs", help="where to write")
    parser.add_argument(
        "--report-only", action="store_true", help=f"rewrite the report from the last run's {LAST_RUN}"
    )
    options = parser.parse_args()
    if options.report_only:
        tables, found, context = pickle.loads(LAST_RUN.read_bytes())
    else:
        tables, found, context = measure_all(2 if options.quick else 5, options.quick)
        LAST_RUN.write_bytes(pickle.dumps((tables, found, context)))
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "benchmarks.md").write_text(report.markdown(tables, found, context))
    report.chart(tables, options.output / "benchmarks.png")
    log(f"wrote {options.output / 'benchmarks.md'} and benchmarks.png ({context.seconds:.0f} s of measuring)")


if __name__ == "__main__":
    main()
