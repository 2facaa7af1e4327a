# paraloop: enable
"""Word frequencies over every ``.py`` file of this Python's standard library.

The proof of concept counted words of web pages; this counts a real local
corpus instead: once with a plain loop, once with ParaLoop and Variables, and
once with ParaLoop and no Variable at all (a plain Counter and a plain int,
whose reductions paraloop infers). It checks that all three give the same
counts, in the same key order, and prints the timings.

    python -m paraloop examples/word_frequencies.py
"""

import re
import sys
import sysconfig
import time
from collections import Counter, defaultdict
from pathlib import Path

from paraloop import ParaLoop, Variable, aggregation_strategies

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def standard_library_files() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        str(path)
        for path in root.rglob("*.py")
        if "site-packages" not in path.parts and "dist-packages" not in path.parts
    )


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def count_plain(files: list[str]) -> tuple[dict[str, int], int]:
    frequencies: defaultdict[str, int] = defaultdict(int)
    total = 0
    for path in files:
        for word in WORD.findall(read(path)):
            frequencies[word] += 1
            total += 1
    return frequencies, total


def count_parallel(files: list[str]) -> tuple[dict[str, int], int]:
    frequencies: Variable[defaultdict[str, int]] = Variable(
        defaultdict(int), aggregation_strategy=aggregation_strategies.Sum
    )
    total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
    for path in ParaLoop(files):
        for word in WORD.findall(read(path)):
            frequencies[word] += 1
            total += 1
    return frequencies.value, total.value


def count_parallel_plain_names(files: list[str]) -> tuple[dict[str, int], int]:
    frequencies: Counter[str] = Counter()
    total = 0
    for path in ParaLoop(files):
        for word in WORD.findall(read(path)):
            frequencies[word] += 1
            total += 1
    return frequencies, total


def main() -> None:
    files = standard_library_files()
    if len(sys.argv) > 1:
        files = files[: int(sys.argv[1])]
    began = time.perf_counter()
    plain, plain_total = count_plain(files)
    plain_seconds = time.perf_counter() - began
    began = time.perf_counter()
    parallel, parallel_total = count_parallel(files)
    parallel_seconds = time.perf_counter() - began
    began = time.perf_counter()
    inferred, inferred_total = count_parallel_plain_names(files)
    inferred_seconds = time.perf_counter() - began

    for counts, total in ((parallel, parallel_total), (inferred, inferred_total)):
        assert dict(counts) == dict(plain), "ParaLoop's counts differ from the plain loop's"
        assert list(counts) == list(plain), "ParaLoop's key order differs from the plain loop's"
        assert total == plain_total
    print(f"files:          {len(files)}")
    print(f"distinct words: {len(parallel)}")
    print(f"total words:    {parallel_total}")
    print(f"plain loop:     {plain_seconds:.2f} s")
    print(f"ParaLoop:       {parallel_seconds:.2f} s  (Variables)")
    print(f"ParaLoop:       {inferred_seconds:.2f} s  (plain Counter and int, no Variable)")


main()
