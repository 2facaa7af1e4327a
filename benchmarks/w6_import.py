"""W6 import: what the import hook costs modules it does not rewrite, and a rewritten one.

    python w6_import.py MODE DIRECTORY

``generate(DIRECTORY)`` writes 200 unmarked modules and ``TWINS`` (100) copies of a module
with a ParaLoop loop inside a function, marked (``w6_marked_00`` ...) and unmarked
(``w6_unmarked_00`` ..., the same source without the marker line), and one more marked copy
(``w6_marked``, for diagnose.py). Each MODE runs in a fresh process and times only the import
statement(s), with bytecode caching on, after a ``gc.collect()`` (the same collections then
fall inside the clock with paraloop and without):

- ``unmarked_200`` / ``unmarked_200_hook``: import the 200 modules, without
  paraloop / after ``import paraloop`` (which installs the hook);
- ``unmarked_cached``: after ``import paraloop``, the 100 unmarked copies from their cache,
  the time per module;
- ``marked_cached_runtime``: after ``import paraloop`` and ``paraloop.runtime``, the 100
  marked copies from paraloop's cache, the time per module;
- ``marked_cached``: after ``import paraloop``, one marked copy from paraloop's cache (its
  first line imports ``paraloop.runtime``);
- ``marked_cold``: the same with paraloop's cache of it deleted first (parse, rewrite,
  compile, write);
- ``import_paraloop`` / ``nothing``: ``import paraloop`` alone, and a process that times nothing.
"""

import gc
import importlib
import sys
import time
from pathlib import Path

from harness import report

COUNT = 200
# The one-module rows import this many twins and report the time per module: one import of
# 0.2 ms in a fresh process measured 0.24 or 0.58 ms for the same code path, depending on
# whether the process's memory happened to grow (an mmap and a munmap) within it.
TWINS = 100
FILLER = """
CONST = {k}


def scale(x):
    return x * CONST + {k}


def describe(items):
    return ", ".join(str(scale(item)) for item in items)


class Record:
    def __init__(self, value):
        self.value = value

    def doubled(self):
        return Record(self.value * 2)
"""
LOOP = """from paraloop import ParaLoop

def total(items):
    acc = 0
    for item in ParaLoop(items):
        acc += scale(item)
    return acc
"""


def generate(directory):
    directory = Path(directory)
    for k in range(COUNT):
        (directory / f"w6_plain_{k:03d}.py").write_text(f'"""Generated module {k}."""\n' + FILLER.format(k=k))
    body = LOOP + FILLER.format(k=7)
    (directory / "w6_marked.py").write_text("# paraloop: enable\n" + body)
    for k in range(TWINS):
        (directory / f"w6_marked_{k:02d}.py").write_text("# paraloop: enable\n" + body)
        (directory / f"w6_unmarked_{k:02d}.py").write_text("# (the same module, without the marker)\n" + body)


def main(mode, directory):
    sys.dont_write_bytecode = False
    sys.path.insert(0, directory)
    if mode in ("nothing", "import_paraloop"):
        # What ``import paraloop`` costs a program (the hook it installs included), against a
        # process that imports nothing: the same interpreter start, the same exit.
        began = time.perf_counter()
        if mode == "import_paraloop":
            import paraloop  # noqa: F401
        report(time.perf_counter() - began, None)
        return
    if mode != "unmarked_200":
        import paraloop  # installs the hook
    if mode == "marked_cold":
        for cached in Path(directory, "__pycache__").glob("w6_marked_00.*paraloop*.pyc"):
            cached.unlink()
    if not mode.startswith("unmarked_200"):
        # What the module's own "from paraloop import ParaLoop" needs (import paraloop loads it
        # on first use): outside the clock, so the rows compare the module's import itself.
        import paraloop.loop  # noqa: F401
    if mode == "marked_cached_runtime":
        import paraloop.runtime  # noqa: F401
    # Each mode starts from an empty young generation: the collector runs after a count of
    # allocations, and where that count stands when the clock starts (after ``import paraloop``
    # or without it) decides whether a collection of the middle generation (0.7 ms) falls
    # inside the 200 imports or just after them, whatever the imports cost.
    gc.collect()
    if mode.startswith("unmarked_200"):
        began = time.perf_counter()
        modules = [importlib.import_module(f"w6_plain_{k:03d}") for k in range(COUNT)]
        seconds = time.perf_counter() - began
        result = sum(module.scale(1) for module in modules)
    else:
        kind = "w6_unmarked" if mode == "unmarked_cached" else "w6_marked"
        # The runtime's import (marked_cached) and a rewrite (marked_cold) take milliseconds:
        # one module shows them.
        count = TWINS if mode in ("unmarked_cached", "marked_cached_runtime") else 1
        began = time.perf_counter()
        modules = [importlib.import_module(f"{kind}_{k:02d}") for k in range(count)]
        seconds = (time.perf_counter() - began) / count
        # Every mode's result is the first module's (the modes import 100 copies or one).
        module = modules[0]
        result = (sorted(n for n in vars(module) if not n.startswith("__")), module.describe([1, 2]))
    report(seconds, result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
