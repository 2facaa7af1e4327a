"""Measured causes: one instrumented run of a paraloop variant, printed as JSON.

    python diagnose.py chunks MODULE VARIANT '{"n": 64}' [MODULE,...]  # how the loop was cut
                                    # into chunks (MODULE,...: imported before the loop)
    python diagnose.py finder DIRECTORY                     # where the import hook's time goes
    python diagnose.py marked DIRECTORY                     # what importing a marked module imports
    python diagnose.py caller MODULE VARIANT '{"shape": "trivial"}'  # the caller's chunks of a
                                    # small loop, and the same loop run again in the process

These look inside paraloop (``paraloop.chunks.Chunker``, ``paraloop.backends.processes.pool``,
``paraloop.hook.finder``) and only observe: they wrap methods to record what
happens. They explain a figure; the figures themselves come from ``child.py``.
"""

import cProfile
import importlib
import json
import pstats
import sys
import time


def chunks(module_name, variant, args, preload=()):
    import paraloop  # noqa: F401 - installs the hook before the workload is imported

    for name in preload:
        importlib.import_module(name)
    from paraloop import chunks as chunking

    events = {"sizes": [], "cut": [], "seconds": [], "arrivals": [], "overheads": [], "targets": []}
    began = time.perf_counter()
    original_next, original_observe = chunking.Chunker._next, chunking.Chunker._observe

    def next_chunk(self, *args):
        chunk = original_next(self, *args)
        if chunk is not None:
            events["sizes"].append(len(chunk.items))
            events["cut"].append(time.perf_counter() - began)
        return chunk

    def observe(self, items, seconds, overhead):
        events["seconds"].append(seconds)
        events["arrivals"].append(time.perf_counter() - began)
        events["overheads"].append(overhead)
        original_observe(self, items, seconds, overhead)
        events["targets"].append(self.target)

    original_give_back = chunking.Chunker.give_back

    def give_back(self, chunk, ran):
        # The caller's chunk stopped at its deadline: only its first ``ran`` items were the chunk
        # (the rest are cut again), and it is the last one cut.
        events["sizes"][-1] = ran
        original_give_back(self, chunk, ran)

    chunking.Chunker._next, chunking.Chunker._observe = next_chunk, observe
    chunking.Chunker.give_back = give_back
    # The caller's own time combining per-key sums (a word count's partial dicts), and how many
    # entries those partials held: the share of the caller's time that combining takes.
    from paraloop import aggregation_strategies

    events["combine_seconds"], events["combined_entries"] = 0.0, 0
    original_combine = aggregation_strategies.Sum.combine

    def combine(self, accumulated, partial):
        if type(partial) is aggregation_strategies.Counts:
            events["combined_entries"] += len(partial.amounts)
            began_combine = time.perf_counter()
            try:
                return original_combine(self, accumulated, partial)
            finally:
                events["combine_seconds"] += time.perf_counter() - began_combine
        return original_combine(self, accumulated, partial)

    aggregation_strategies.Sum.combine = combine
    module = importlib.import_module(module_name)
    inputs = module.setup(**args)
    modules = set(sys.modules)
    began = time.perf_counter()
    result = getattr(module, variant)(*inputs)
    events["loop_seconds"] = time.perf_counter() - began
    aggregation_strategies.Sum.combine = original_combine
    if events["combined_entries"] and module_name == "w4_split":
        events["result_keys"] = len(result[0])
        events["alone"] = _combine_alone(module, inputs, events["sizes"])
    # Top-level modules the caller imported during the loop (inside the clock).
    events["imported"] = sorted(m for m in set(sys.modules) - modules if "." not in m and m[0] != "_")
    from paraloop.backends.processes import pool

    events["worker_processes"] = sum(len(p.workers) for p in pool._pools.values())
    return events


def _combine_alone(module, inputs, sizes):
    """W4 split's per-chunk partials (``str.split()`` counts of the chunks' files) combined again
    with nothing else running (no workers): what combining costs without sharing the CPUs."""
    import pickle
    from collections import defaultdict

    from paraloop.aggregation_strategies import Counts, Sum

    files, position, partials = inputs[0], 0, []
    for size in sizes:
        counts = defaultdict(int)
        for path in files[position : position + size]:
            for word in module.read(path).split():
                counts[word] += 1
        partials.append(pickle.dumps(Counts(list(counts), list(counts.values())), pickle.HIGHEST_PROTOCOL))
        position += size
    accumulated, strategy = defaultdict(int), Sum()
    began = time.perf_counter()
    for data in partials:
        accumulated = strategy.combine(accumulated, pickle.loads(data))
    return time.perf_counter() - began


def caller(module_name, variant, args):
    """A small loop's chunks in the caller (how many, their items, their iterations' own time),
    cold, then the same loop again in this process: what the loop costs beyond its iterations."""
    import paraloop  # noqa: F401 - installs the hook before the workload is imported
    from paraloop.backends.processes import caller as calling
    from paraloop.backends.processes import pool

    runs = []
    original = calling.CallerWorker.run

    def run(self, chunk, chunker, in_order=False):
        outcome = original(self, chunk, chunker, in_order)
        runs[-1]["chunks"].append(outcome.iterations)
        runs[-1]["iterations_seconds"] += outcome.seconds
        return outcome

    calling.CallerWorker.run = run
    module = importlib.import_module(module_name)
    inputs = module.setup(**args)
    function = getattr(module, variant)
    for _ in range(2):
        runs.append({"chunks": [], "iterations_seconds": 0.0})
        began = time.perf_counter()
        function(*inputs)
        runs[-1]["loop_seconds"] = time.perf_counter() - began
    runs[0]["worker_processes"] = sum(len(p.workers) for p in pool._pools.values())
    return {"cold": runs[0], "again": runs[1]}


def finder(directory):
    import paraloop  # noqa: F401

    sys.path.insert(0, directory)
    profile = cProfile.Profile()
    profile.enable()
    for k in range(200):
        importlib.import_module(f"w6_plain_{k:03d}")
    profile.disable()
    stats = pstats.Stats(profile).stats
    found = {"hook_own": 0.0, "later_finders": 0.0, "has_marker": 0.0, "all_imports": 0.0}
    hook = [key for key in stats if "/paraloop/hook/" in key[0].replace("\\", "/")]
    asking = [key for key in hook if key[2] == "find_spec"]
    for key, (_, _, own, cumulative, callers) in stats.items():
        if key in hook:
            found["hook_own"] += own  # the hook's own Python code: its finder and its loader
        if key[2] == "has_marker" and key in hook:
            found["has_marker"] += cumulative
        if key[2] == "find_spec" and key not in hook:
            # A finder after paraloop's, asked by it (the import system asks no other then).
            found["later_finders"] += sum(callers[caller][3] for caller in asking if caller in callers)
        if key[2] == "_find_and_load":
            found["all_imports"] = max(found["all_imports"], cumulative)
    return found


def marked(directory):
    """The modules that importing the marked module (cached) brings in after ``import paraloop``."""
    import paraloop  # noqa: F401

    sys.dont_write_bytecode = False
    sys.path.insert(0, directory)
    before = set(sys.modules)
    began = time.perf_counter()
    importlib.import_module("w6_marked")
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "new_modules": sorted(set(sys.modules) - before - {"w6_marked"})}


if __name__ == "__main__":
    if sys.argv[1] == "chunks":
        preload = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] else ()
        result = chunks(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), preload)
    elif sys.argv[1] == "marked":
        result = marked(sys.argv[2])
    elif sys.argv[1] == "caller":
        result = caller(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
    else:
        result = finder(sys.argv[2])
    print(json.dumps(result))
