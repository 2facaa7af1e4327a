"""The peer tools, each written the way its documentation shows, as map(function, items).

Each workload module calls these with its own per-item function, worker
counts and chunk sizes, and combines the returned list as its plain loop does.
Libraries are imported inside the functions, so a child process only imports
the one it measures (``child.py`` imports it before the clock starts).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any


def mp_pool(function: Callable[[Any], Any], items: Iterable[Any], workers=None, chunksize=None) -> list[Any]:
    """``multiprocessing.Pool(workers).map(function, items, chunksize)``."""
    from multiprocessing import Pool

    with Pool(workers) as pool:
        return pool.map(function, items, chunksize)


def process_pool(function, items, workers=None, chunksize=1) -> list[Any]:
    """``concurrent.futures.ProcessPoolExecutor(workers).map(function, items, chunksize=...)``."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as executor:
        return list(executor.map(function, items, chunksize=chunksize))


def _run_chunk(function, chunk):
    return [function(item) for item in chunk]


def thread_pool(function, items, workers=None, chunksize=1) -> list[Any]:
    """``concurrent.futures.ThreadPoolExecutor(workers).map(function, items)``.

    Its ``map`` ignores ``chunksize``, so for chunksize > 1 the items are mapped
    in hand-made chunks (one future per chunk instead of one per item).
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as executor:
        if chunksize == 1:
            return list(executor.map(function, items))
        iterator = iter(items)
        chunks = iter(lambda: list(itertools.islice(iterator, chunksize)), [])
        parts = executor.map(_run_chunk, itertools.repeat(function), chunks)
        return [result for part in parts for result in part]


def joblib_parallel(function, items, n_jobs=-1, **options) -> list[Any]:
    """``joblib.Parallel(n_jobs)(delayed(function)(item) for item in items)``: default batching."""
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, **options)(delayed(function)(item) for item in items)


def mpire_pool(function, items, n_jobs=None, **options) -> list[Any]:
    """``mpire.WorkerPool(n_jobs).map(function, items)``: its default chunking (n_jobs * 64 splits)."""
    from mpire import WorkerPool

    with WorkerPool(n_jobs=n_jobs, **options) as pool:
        return pool.map(function, items)
