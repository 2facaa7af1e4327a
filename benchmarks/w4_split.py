# paraloop: enable
"""W4 split: the word count a user writes first, over every standard library ``.py`` file.

Each iteration reads a file and counts its ``str.split()`` words into one
``defaultdict(int)`` (``counts[word] += 1``) plus a running total: about
450,000 distinct keys, so each chunk's partial dict is large and combining
them costs the caller real time.  The peers are used as their users would for
this: map a function over a few contiguous runs of files (8, ``Pool(2).map``
style), each returning a ``Counter``, merged in file order so the key order is
the plain loop's.
"""

from collections import Counter, defaultdict

import peers
from w4_words import read, standard_library_files

RUNS = 8


def setup():
    return (standard_library_files(),)


def plain(files):
    counts = defaultdict(int)
    total = 0
    for path in files:
        for word in read(path).split():
            counts[word] += 1
            total += 1
    return counts, total


def paraloop(files):
    from paraloop import ParaLoop

    counts = defaultdict(int)
    total = 0
    for path in ParaLoop(files):
        for word in read(path).split():
            counts[word] += 1
            total += 1
    return counts, total


def count_run(paths):
    """The peers' function: the loop body over one run of files."""
    counts = Counter()
    for path in paths:
        counts.update(read(path).split())
    return counts


def runs(files):
    size = -(-len(files) // RUNS)
    return [files[i : i + size] for i in range(0, len(files), size)]


def combine(parts):
    counts = Counter()
    for part in parts:
        counts.update(part)
    return counts, counts.total()


def mp_pool(files):
    return combine(peers.mp_pool(count_run, runs(files)))


def process_pool(files):
    return combine(peers.process_pool(count_run, runs(files)))


def thread_pool(files):
    return combine(peers.thread_pool(count_run, runs(files)))


def joblib(files):
    return combine(peers.joblib_parallel(count_run, runs(files)))


def mpire(files):
    # mpire unpacks an item that is a list into arguments: each run goes as a 1-tuple.
    return combine(peers.mpire_pool(count_run, [(run,) for run in runs(files)]))
