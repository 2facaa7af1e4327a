# paraloop: enable
"""W4 aggregation-heavy: word frequencies over the standard library's ``.py`` files.

Every iteration reads a file and counts its words (a regex) into one Counter,
plus a running total: the loop's result is large (about 10^5 distinct words),
so combining partial results costs the caller real time. ``setup`` takes the
first ``fraction`` of the sorted file list.
"""

import re
import sysconfig
from collections import Counter
from pathlib import Path

import peers

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def standard_library_files():
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        str(path)
        for path in root.rglob("*.py")
        if "site-packages" not in path.parts and "dist-packages" not in path.parts
    )


def setup(fraction):
    files = standard_library_files()
    return (files[: round(len(files) * fraction)],)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def plain(files):
    counts = Counter()
    total = 0
    for path in files:
        for word in WORD.findall(read(path)):
            counts[word] += 1
            total += 1
    return counts, total


def paraloop(files):
    from paraloop import ParaLoop

    counts = Counter()
    total = 0
    for path in ParaLoop(files):
        for word in WORD.findall(read(path)):
            counts[word] += 1
            total += 1
    return counts, total


def count_file(path):
    """The peers' per-item function: the loop body, for one file."""
    counts = Counter()
    for word in WORD.findall(read(path)):
        counts[word] += 1
    return counts


def combine(parts):
    """Merged in file order, so the key order is the plain loop's."""
    counts = Counter()
    total = 0
    for part in parts:
        counts.update(part)
        total += part.total()
    return counts, total


def mp_pool(files):
    return combine(peers.mp_pool(count_file, files, chunksize=16))


def process_pool(files):
    return combine(peers.process_pool(count_file, files, chunksize=16))


def thread_pool(files):
    return combine(peers.thread_pool(count_file, files, chunksize=16))


def joblib(files):
    return combine(peers.joblib_parallel(count_file, files))


def mpire(files):
    return combine(peers.mpire_pool(count_file, files))
