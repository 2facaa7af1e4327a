# ruff: noqa: RUF001 - the report writes multiplication signs and dashes on purpose
"""Writes ``docs/benchmarks.md`` (machine, targets, tables, measured causes) and the chart."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from harness import Stats, Table

W2_DELAY = 0.020


@dataclass
class Context:
    reps: int
    quick: bool
    seconds: float
    rounds: int
    capacity: Stats
    commit: str = ""  # paraloop's commit when the run started
    finished: str = ""  # when the measuring ended


def duration(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def spread(stats: Stats) -> str:
    return f"{duration(stats.median)} [{duration(stats.low)}–{duration(stats.high)}]"


def machine(context: Context) -> list[str]:
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        memory = int(handle.readline().split()[1]) / 1024**2
    versions = []
    for package in ("paraloop", "joblib", "mpire", "matplotlib", "numpy"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    capacity = context.capacity
    return [
        f"- paraloop at commit {context.commit}"
        + ("" if commit() == context.commit else f" (**changed during the run**, now {commit()})"),
        f"- `nproc`: {len(os.sched_getaffinity(0))} (os.cpu_count(): {os.cpu_count()}); CPU model: {model}; "
        f"memory {memory:.0f} GiB",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- {', '.join(versions)}",
        "- Parallel capacity, measured in this run: two pure-Python processes at once did "
        f"{capacity.median:.2f}× [{capacity.low:.2f}–{capacity.high:.2f}] the work of one alone in the "
        "same time (2.00× would be two full cores; the spread shows how much the VM's speed varies).",
    ]


Target = tuple[str, str, bool, str]  # target, measured, met, measured cause


def commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h (%s)"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "paraloop"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{', with uncommitted changes to paraloop/' if dirty else ''}"


def target_rows(tables: dict[str, Table], found: dict) -> list[Target]:
    return [
        *_w1(tables, found),
        *_w2(tables["w2"], found),
        _w3(tables["w3"], found),
        *_w4(tables, found),
        *_w4_split(tables, found),
        *_w8(tables),
        *_w9(tables, found),
        *_w10(tables),
        *_w6(tables, found),
        *_start_up(tables),
        *_example(found),
    ]


def _start_up(tables: dict[str, Table]) -> list[Target]:
    """What paraloop adds to a whole program: ``import paraloop``, and W1's whole process."""
    rows = []
    t = tables.get("w6-paraloop")
    if t is not None:
        measured = t.rows["import_paraloop"].loop.median
        whole = t.rows["import_paraloop"].process.median - t.plain.process.median
        cause = f"timed around the statement; the whole process takes {duration(whole)} more than one importing nothing"
        rows.append(("`import paraloop` ≤ 12 ms", duration(measured), measured <= 0.012, cause))
    t = tables.get("w1-200000")
    if t is not None:
        more = t.rows["paraloop"].process.median - t.plain.process.median
        cause = (
            f"`python child.py w1_dispatch paraloop` against the same for the plain loop: importing paraloop "
            f"and its runtime, the loop (cold, its pool's start included: {duration(t.rows['paraloop'].loop.median)} "
            f"against {duration(t.plain.loop.median)}), and the pool's shutdown at exit"
        )
        rows.append(("W1 200,000, whole process: ≤ 25 ms more than the plain script", f"+{duration(more)}", more <= 0.025, cause))
    return rows


def _example(found: dict) -> list[Target]:
    printed = found.get("example")
    if not printed or not printed["plain"]:
        return []
    plain, variables, names = (statistics.median(printed[k]) for k in ("plain", "variables", "names"))
    measured = f"plain loop {plain:.2f} s, ParaLoop {variables:.2f} s (Variables), {names:.2f} s (plain names)"
    cause = f"the times the example printed, medians of {len(printed['plain'])} runs"
    target = "`python -m paraloop examples/word_frequencies.py` (the README's) prints a speedup"
    return [(target, measured, max(variables, names) < plain, cause)]


def _w9_cold(found: dict, shape: str, plain: float) -> str:
    """What an instrumented cold run of the loop showed (diagnose.py caller)."""
    seen = found.get(f"w9-{shape}")
    if not seen:
        return (
            f"plain loop {duration(plain)}; the caller runs the loop's first 2 ms itself and finishes "
            "the loop when that is sooner than handing it to workers (paraloop/backends/processes/caller.py)"
        )
    cold, again = seen["cold"], seen["again"]
    where = (
        "the caller ran the whole loop"
        if not cold["worker_processes"]
        else f"the caller ran {sum(cold['chunks'])} of its iterations and {cold['worker_processes']} workers the rest"
    )
    return (
        f"plain loop {duration(plain)}. An instrumented run: {where}, in {len(cold['chunks'])} chunk(s) "
        f"({', '.join(map(str, cold['chunks']))} iterations), whose iterations took "
        f"{duration(cold['iterations_seconds'])} of the loop's {duration(cold['loop_seconds'])}: the rest "
        "is the loop's own work in the caller (making the job's bytes as the workers would get them, "
        "copying the items, the chunk's checks of the captured objects and the program's modules, "
        "encoding and decoding its outcome), paid with cold caches by a program's first loop: the same "
        f"loop run again in that process took {duration(again['loop_seconds'])}, its iterations "
        f"{duration(again['iterations_seconds'])}"
    )


def _w9(tables: dict[str, Table], found: dict) -> list[Target]:
    """W9's target: a loop of a few milliseconds costs at most about 1 ms more than plain."""
    rows = []
    for shape, label in (("trivial", "10 trivial iterations"), ("10x1ms", "10 iterations of 1 ms"),
                         ("100x0.1ms", "100 iterations of 0.1 ms")):  # fmt: skip
        t = tables.get(f"w9-{shape}")
        if t is None:
            continue
        plain = t.plain.loop.median
        limit = plain + 0.001 if shape == "trivial" else plain * 1.05 + 0.0005
        for variant, clock in (("paraloop", "cold"), ("paraloop:warm", "warm")):
            measured = t.rows[variant].loop.median
            cause = (
                _w9_cold(found, shape, plain)
                if clock == "cold"
                else f"plain loop {duration(plain)}; an earlier loop started the pool (benchmarks/warm.py), "
                "so the workers are ready, but this is the first loop since their forks, and the "
                "caller pays for the memory pages and caches those forks touched (145 minor page "
                "faults in the trivial loop, measured at 0bc8465); the rest is handing the workers "
                "their chunks and getting them back"
            )
            rows.append((f"W9 {label}, {clock}: ≤ {duration(limit)}", duration(measured), measured <= limit, cause))
    t = tables.get("w9-numpy")
    if t is not None:
        plain = t.plain.loop.median
        causes = {
            "cold": "the program's first loop with numpy loaded looks for its BLAS (the walk of the "
            "program's modules and the process's map of loaded files, about 0.4-0.5 ms; OpenBLAS alone is "
            "limited through its own functions, without threadpoolctl) and pays a first loop's own costs "
            "(the trivial loop above); the caller's chunks run at a worker's share, so that a product "
            "has the same bits wherever its iteration runs",
            "warm": "the first loop since the pool's forks (the caller pays for the memory pages they "
            "touched, as in the trivial loop above), limiting OpenBLAS around the caller's chunk and "
            "giving it back (about 0.03 ms), and the chunk itself",
        }
        for variant, clock in (("paraloop", "cold"), ("paraloop:warm", "warm")):
            measured = t.rows[variant].loop.median
            rows.append((f"W9 10 small numpy products, {clock}: ≤ {duration(plain + 0.001)}", duration(measured),
                         measured <= plain + 0.001, f"plain loop {duration(plain)}; {causes[clock]}"))  # fmt: skip
    return rows


def _w10(tables: dict[str, Table]) -> list[Target]:
    t = tables.get("w10")
    if t is None:
        return []
    row = t.rows["paraloop"]
    measured, peak = row.loop.median, row.maxrss_mb.median
    array_mb = 200
    cause = (
        f"the array goes once into shared memory, which each worker maps; pool already started: "
        f"{duration(t.rows['paraloop:warm'].loop.median)}; the caller's peak {peak:.0f} MB "
        f"(the plain loop's {t.plain.maxrss_mb.median:.0f} MB)"
    )
    return [
        ("W10 a captured 200 MB array, 8 trivial iterations: ≤ 0.2 s", duration(measured), measured <= 0.2, cause),
        (
            "W10: the caller's peak memory ≤ 1.2× the array",
            f"{peak:.0f} MB",
            peak <= 1.2 * array_mb,
            cause,
        ),
    ]


def _w1(tables: dict[str, Table], found: dict) -> list[Target]:
    rows = []
    for n, limit in ((200_000, 1.5), (1_000_000, 1.3)):
        t = tables[f"w1-{n}"]
        ratio = t.ratio("paraloop")
        cold, warm = t.rows["paraloop"].loop.median, t.rows["paraloop:warm"].loop.median
        cause = (
            f"First-loop start-up (the pool's start and what the first loop imports): cold "
            f"{duration(cold)} − pool already started {duration(warm)} = {duration(cold - warm)}, "
            f"against a plain loop of {duration(t.plain.loop.median)}; with "
            f"the pool started paraloop is {t.ratio('paraloop:warm'):.2f}× the plain loop. Whole process: "
            f"{t.ratio('paraloop', 'process'):.2f}× (importing paraloop included)."
        )
        events = found.get("w1", {})
        if n == 200_000 and events.get("arrivals"):
            cause += (
                " In an instrumented cold run the first result came back after "
                f"{duration(events['arrivals'][0])} (the workers start first); it sent "
                f"{len(events['sizes'])} chunks ({_sizes(events['sizes'])} iterations)."
            )
        if n == 200_000 and events.get("preloaded"):
            cause += (
                f" During the loop the caller imported {_modules(events['imported'])}: with those imported "
                f"before the clock, the cold loop took {duration(events['preloaded'])} instead of "
                f"{duration(events['cold'])} (medians of 3 instrumented runs)."
            )
        target = f"W1 {n:,}: paraloop cold ≤ {limit}× the plain loop"
        rows.append((target, f"{ratio:.2f}×", ratio <= limit, cause))
    if "w1-float" in tables:
        t = tables["w1-float"]
        ratio = t.ratio("paraloop_float")
        cause = (
            "Every term travels to the caller, which adds them in iteration order (the plain "
            f"loop's bits): plain loop {duration(t.plain.loop.median)}, paraloop "
            f"{duration(t.rows['paraloop_float'].loop.median)}, with integers (W1 200,000) "
            f"{duration(tables['w1-200000'].rows['paraloop'].loop.median)}: the difference is the "
            "recording, sending and adding of 200,000 terms."
        )
        target = "W1 float sum 200,000: paraloop cold ≤ 1.5× the plain loop, bit for bit"
        rows.append((target, f"{ratio:.2f}×", ratio <= 1.5, cause))
    return rows


def _w2(t: Table, found: dict) -> list[Target]:
    best = t.best_peer()
    best_speedup = t.rows[best].speedup(t.plain)
    default, threads = t.rows["paraloop"].speedup(t.plain), t.rows["paraloop_threads"].speedup(t.plain)
    events, cause = found.get("w2", {}), ""
    if events.get("worker_processes", 0) > (os.cpu_count() or 1):
        workers, sizes = events["worker_processes"], events["sizes"]
        cause = (
            f"paraloop grew its pool to {workers} worker processes (its cap: 8 per CPU, at most 32), "
            f"so at most {workers} requests wait at once: 256 × 20 ms / {workers} ≥ "
            f"{duration(256 * W2_DELAY / workers)}, against {duration(t.rows[best].loop.median)} for "
            f"{t.rows[best].label}. It sent the requests in {len(sizes)} chunks of {_sizes(sizes)}, "
            f"each run one request after another in a worker (≥ {duration(max(sizes) * W2_DELAY)} for "
            f"the largest), its chunk target reaching {duration(max(events['targets']))}."
        )
    elif events.get("arrivals"):
        sizes, arrivals, cut = events["sizes"], events["arrivals"], events.get("cut", [])
        singles = next((n for n, size in enumerate(sizes) if size > 1), len(sizes))
        lanes_from = (
            f"the first chunk for lanes was sent {duration(cut[singles])} after the loop started"
            if singles < len(cut)
            else "no chunk ran in lanes"
        )
        cause = (
            f"paraloop kept {events.get('worker_processes', '?')} worker processes and, once it "
            f"measured that the iterations wait, ran each chunk in lanes (threads in the workers): "
            f"{len(sizes)} chunks of {_sizes(sizes)}. Before that, {singles} chunk(s) of one request "
            f"ran alone, the first in the calling process, which runs a loop's first iterations "
            f"(under fork the workers start after them, since a fork while the program's own code "
            f"runs could copy a lock it holds): that first request, with its one-off costs (a "
            f"first connection), was done after {duration(arrivals[0])}, and {lanes_from}; "
            f"{t.rows[best].label} has all its threads busy from the start. With 64 requests in "
            f"flight the client and the "
            f"server share 2 CPUs, so each round of chunks takes about twice the 20 ms delay."
        )
    measured = (
        f"{default:.1f}× vs {best_speedup:.1f}× ({t.rows[best].label}): {default / best_speedup:.2f} of it"
    )
    rows = [
        (
            "W2: paraloop default ≥ 0.9 of the best peer's speedup",
            measured,
            default >= 0.9 * best_speedup,
            cause,
        )
    ]
    sizes, cause = found.get("w2-threads", {}).get("sizes", []), ""
    if sizes and max(sizes) == 1:
        # Nothing waits behind another request: what is left is the machine's noise.
        cause = (
            f"Every chunk held one request, each thread taking the next as it finished, as "
            f"{t.rows[best].label}'s threads do: paraloop's loop took {spread(t.rows['paraloop_threads'].loop)}, "
            f"{t.rows[best].label}'s {spread(t.rows[best].loop)}."
        )
    elif sizes:
        cause = (
            f"The threads backend cut the 256 iterations into {len(sizes)} chunks of {_sizes(sizes)}; "
            f"the largest, {max(sizes)} requests, ran one after another in one thread "
            f"(≥ {duration(max(sizes) * W2_DELAY)}) while most of the 64 threads got no chunk."
        )
        if sizes[:4] == [1, 2, 4, 8]:
            cause += (
                " The size doubled with every chunk handed out before a first time was measured, and "
                "all the threads took their first chunk at once."
            )
    target = 'W2: paraloop backend="threads", 64 workers ≥ the best peer\'s speedup'
    rows.append((target, f"{threads:.1f}× vs {best_speedup:.1f}×", threads >= best_speedup, cause))
    return rows


def _w3(t: Table, found: dict) -> Target:
    speedup = t.rows["paraloop"].speedup(t.plain)
    best = t.best_peer()
    cause = (
        f"On this VM two processes at once did {found['capacity']:.2f}× the work of one (measured "
        f"above); the best peer, {t.rows[best].label}, reached {t.rows[best].speedup(t.plain):.2f}×, "
        "and paraloop with its pool started before the clock "
        f"{t.rows['paraloop:warm'].speedup(t.plain):.2f}×. "
        + _chunk_cause(found.get("w3", {}), "iterations", t.plain.loop.median)
    )
    return ("W3: paraloop ≥ 1.85× faster than the plain loop", f"{speedup:.2f}×", speedup >= 1.85, cause)


def _w4(tables: dict[str, Table], found: dict) -> list[Target]:
    rows = []
    for name in ("half", "all"):
        t = tables[f"w4-{name}"]
        speedup = t.rows["paraloop"].speedup(t.plain)
        cause = (
            "See the row for all files."
            if name == "half"
            else _chunk_cause(found.get("w4", {}), "files", t.plain.loop.median)
        )
        rows.append(
            (
                f"W4 ({name} of the files): paraloop cold ≥ 1.2× faster",
                f"{speedup:.2f}×",
                speedup >= 1.2,
                cause,
            )
        )
    return rows


def _w4_split(tables: dict[str, Table], found: dict) -> list[Target]:
    if "w4-split" not in tables:
        return []
    t = tables["w4-split"]
    speedup = t.rows["paraloop"].speedup(t.plain)
    best_name, best = max(
        ((row.label, row.speedup(t.plain)) for row in t.rows.values() if row.kind == "peer"),
        key=lambda pair: pair[1],
    )
    events = found.get("w4-split", {})
    cause = _chunk_cause(events, "files", t.plain.loop.median) + _combine_cause(events)
    return [
        (
            "W4 split: paraloop cold ≥ 1.3× faster than the plain loop, and as fast as the best peer",
            f"{speedup:.2f}× (best peer, {best_name}: {best:.2f}×)",
            speedup >= 1.3 and speedup >= best,
            cause,
        )
    ]


def _combine_cause(events: dict) -> str:
    """The caller's share of a word count: combining the partial dicts, and the floor it sets."""
    entries, combining, alone = events.get("combined_entries"), events.get("combine_seconds"), events.get("alone")
    if not entries or not combining or not alone:
        return ""
    busy = sum(events["seconds"])
    return (
        f" Of the caller's time, {duration(combining)} went to combining the chunks' partial dicts: "
        f"{entries:,} entries into a dict of {events['result_keys']:,} keys "
        f"({combining / entries * 1e9:.0f} ns an entry; the same partials combined with nothing else "
        f"running took {duration(alone)}, {alone / entries * 1e9:.0f} ns an entry: a dict that size "
        "misses the CPU's caches at each lookup). Most words are rare and sit in one chunk's "
        "partial only, so fewer, larger chunks would save few entries. The workers' "
        f"{duration(busy)} and the caller's combining, on 2 CPUs, take at least "
        f"{duration((busy + alone) / 2)} however well they overlap."
    )


def _w8(tables: dict[str, Table]) -> list[Target]:
    if "w8" not in tables:
        return []
    t = tables["w8"]
    ratio = t.rows["paraloop"].loop.median / t.plain.loop.median
    joblib = t.rows["joblib"].loop.median / t.plain.loop.median
    cause = (
        f"joblib (loky, which limits each worker's BLAS too): {joblib:.2f}× the plain loop. Each "
        "paraloop worker's native thread pools get its share of the CPUs (paraloop.native_threads); "
        "the plain loop's BLAS uses every CPU."
    )
    return [
        (
            "W8: paraloop ≤ 1.1× the plain loop and no slower than joblib",
            f"{ratio:.2f}×",
            ratio <= 1.1 and ratio <= joblib,
            cause,
        )
    ]


def _w6(tables: dict[str, Table], found: dict) -> list[Target]:
    t = tables["w6-hook"]
    ratio = t.ratio("unmarked_200_hook")
    finder, cause = found.get("finder", {}), ""
    if finder.get("all_imports"):
        cause = (
            f"Profiled (cProfile, which inflates small Python functions): of "
            f"{duration(finder['all_imports'])} for the 200 imports, paraloop's finder and loader ran "
            f"{duration(finder.get('hook_own', 0))} of their own code (per module: the search for "
            "ParaLoop in the bytecode the import reads, and handing the module back to CPython's "
            f"loader), {duration(finder.get('later_finders', 0))} went to the finders after it (the "
            "search itself, done once: the import system takes the spec paraloop hands back), and "
            f"{duration(finder.get('has_marker', 0))} to reading files' heads for the marker (only "
            "modules whose bytecode names ParaLoop)."
        )
    rows = [("W6: 200 unmarked imports ≤ 1.05× with the hook", f"{ratio:.2f}×", ratio <= 1.05, cause)]
    t = tables["w6-marked"]
    # The target is paraloop's own share: the runtime (imported once per program, by the first
    # module with loops) already imported, counted apart.
    ratio = t.ratio("marked_cached_runtime")
    imported = found.get("marked", {}).get("new_modules", [])
    cause = (
        f"With the runtime still to import, the same cached import takes "
        f"{duration(t.rows['marked_cached'].loop.median)} ({t.ratio('marked_cached'):.2f}×): the rewritten "
        "module's first line is `import paraloop.runtime`, once per program."
    )
    if imported:
        cause += (
            f" In a separate run that import brought in {len(imported)} more modules, among them "
            f"{', '.join(m for m in imported if m.startswith('paraloop') or m.split('.')[0][0] != '_')}."
        )
    rows.append(
        (
            "W6: a cached marked module, paraloop's own share (runtime already imported), ≤ 1.2× a plain "
            "cached import",
            f"{ratio:.2f}×",
            ratio <= 1.2,
            cause,
        )
    )
    return rows


def _modules(names: list[str]) -> str:
    """Third-party modules by name, standard-library ones counted."""
    others = [name for name in names if name not in sys.stdlib_module_names]
    standard = len(names) - len(others)
    return ", ".join(others) + (f" and {standard} standard-library modules" if standard else "")


def _sizes(sizes: list[int]) -> str:
    return ", ".join(map(str, sizes)) if len(sizes) <= 24 else ", ".join(map(str, sizes[:20])) + ", …"


def _chunk_cause(events: dict, unit: str, plain: float) -> str:
    sizes, arrivals = events.get("sizes", []), events.get("arrivals", [])
    if not sizes or len(arrivals) < 2:
        return ""
    counted, busy, took = sum(events["overheads"]), sum(events["seconds"]), events["loop_seconds"]
    text = (
        f"An instrumented run took {duration(took)}: paraloop cut the loop into {len(sizes)} chunks of "
        f"{_sizes(sizes)} {unit}; the workers spent {duration(busy)} on them in all, {busy / plain:.2f}× "
        f"the plain loop's {duration(plain)}, and the caller counted {duration(counted)} receiving and "
        "combining results."
    )
    if max(events["targets"]) > 0.05:
        text += (
            f" The chunk target grew from 20 ms to {duration(max(events['targets']))} (documented: "
            "about 20 ms)"
        )
        text += (
            ": the 'caller overhead' that drives it includes the caller's idle wait for results."
            if counted > 0.5 * took
            else "."
        )
    tail = arrivals[-1] - arrivals[-2]
    if tail > 0.05:
        text += f" The last result came {duration(tail)} after the one before it, a worker idle meanwhile."
    return text


def table_markdown(table: Table) -> list[str]:
    lines = [
        f"### {table.title}",
        "",
        "| tool | loop: median [min–max] | × plain | whole process: median [min–max] | × plain "
        "| parent peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def ratio(variant: str, clock: str) -> str:
        return f"{table.ratio(variant, clock):.2f}×" if table.both_clocks or clock == table.clock else "—"

    for variant, row in table.rows.items():
        label = f"*{row.label}*" if row.kind == "info" else row.label
        lines.append(
            f"| {label} | {spread(row.loop)} | {ratio(variant, 'loop')} | {spread(row.process)} "
            f"| {ratio(variant, 'process')} | {row.maxrss_mb.median:.0f} MB |"
        )
    return [*lines, ""]


NOTES = {
    "w1-200000": "Loop = the call of the loop's function in a fresh process (pool start included); "
    "whole process = `python child.py ...` from start to exit (imports and pool shutdown included). "
    "The italic row is not cold: before the clock, paraloop ran two short loops, one in its workers "
    "(which starts the pool) and one in the caller, as a program that ran loops before has, to show "
    "what starting them costs.",
    "w1-gen": "Peak resident memory of the parent process only (`ru_maxrss`), generator input: paraloop "
    "reads it a chunk at a time; Pool.map turns it into a list first.",
    "w2": "Peers hand-tuned for waiting: many workers, one item per message. The server "
    "(ThreadingHTTPServer) runs in a thread of the driver on 127.0.0.1.",
    "w3": "Per-iteration work calibrated once per run; Pool and ProcessPoolExecutor use chunksize 1.",
    "w4-half": "Result (the Counter and the total) checked equal to the plain loop's, key order included, "
    "for every tool. Peers map a per-file function (the loop body) and merge the Counters in file order.",
    "w4-split": "Result (the dict and the total) checked equal to the plain loop's, key order included. "
    "Peers map a function over 8 contiguous runs of files, each returning a Counter, merged in file order.",
    "w8": "numpy's wheels (OpenBLAS); results compared rounded to 9 significant digits, since a "
    "matrix product's last bits depend on the BLAS's thread count.",
    "w5": "Ratios use the whole process (a script whose only work is the loop). "
    "`python -m paraloop w5_startup.py paraloop` with `PARALOOP_START_METHOD` set.",
    "w6-hook": "Only the import statements are timed, in a fresh process each, with bytecode cached; "
    "'whole process' here also includes `import paraloop`.",
    "w6-marked": "`import paraloop` comes first (untimed) in every row. The cached rows without the runtime "
    "to import time 100 copies of the module and give the time per module (one import of 0.2 ms in a fresh "
    "process measured 0.24 or 0.58 ms for the same code, depending on whether the process's memory grew "
    "within it); the others time one module. The italic row is a diagnostic.",
}


def markdown(tables: list[Table], found: dict, context: Context) -> str:
    by_key = {t.key: t for t in tables}
    found = {**found, "capacity": context.capacity.median}
    now = context.finished or datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/run.py{' --quick' if context.quick else ''}` on {now}, "
        f"in {context.seconds / 60:.1f} minutes. Every figure is the median of {context.reps} repetitions "
        "(W6: six times as many), each in a fresh process, with its spread [min–max], and is also given as a "
        "ratio to the plain loop measured in the same run (below 1× is faster). Every tool's result was "
        "checked equal to the plain loop's. See [benchmarks/README.md](../benchmarks/README.md) for what "
        "each workload does.",
        "",
        "## Machine",
        "",
        *machine(context),
        "",
        "## Targets",
        "",
        "| target | measured | status | measured cause |",
        "|---|---|---|---|",
    ]
    for target, measured, met, cause in target_rows(by_key, found):
        lines.append(
            f"| {target} | {measured} | {'MET' if met else '**NOT MET**'} | {cause if not met else ''} |"
        )
    lines += ["", "![ratio to the plain loop per workload and tool](benchmarks.png)", "", "## Results", ""]
    for table in tables:
        lines += table_markdown(table)
        if table.key in NOTES:
            lines += [NOTES[table.key], ""]
    return "\n".join(lines)


COLORS = {"plain": "#9e9e9e", "paraloop": "#1f77b4", "peer": "#ff7f0e", "info": "#aec7e8"}


def chart(tables: list[Table], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    shown = [t for t in tables if t.key != "w1-gen"]
    columns = 3
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(19, 4.2 * rows))
    for ax, table in zip(axes.flat, shown):
        variants = list(table.rows)[::-1]
        ratios = [table.ratio(v) for v in variants]
        labels = [table.rows[v].label for v in variants]
        colors = [COLORS[table.rows[v].kind] for v in variants]
        ax.barh(range(len(variants)), ratios, color=colors)
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(variants)), labels, fontsize=8)
        title = table.title + (" [whole process]" if table.clock == "process" else "")
        ax.set_title("\n".join(textwrap.wrap(title, 48)), fontsize=9.5)
        ax.set_xlim(min(ratios) / 1.6, max(ratios) * 2.2)
        for y, ratio in enumerate(ratios):
            ax.text(ratio * 1.05, y, f"{ratio:.2f}×", va="center", fontsize=8)
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}×"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel("time ÷ plain loop's time (log scale; left of the line = faster)", fontsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    figure.legend(handles, ["plain loop", "paraloop", "peer", "paraloop, diagnostic"], loc="lower right",
                  ncol=4, fontsize=9)  # fmt: skip
    figure.suptitle(
        "paraloop benchmarks: median time relative to the plain loop of the same run", fontsize=13
    )
    figure.tight_layout(rect=(0, 0.02, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)
