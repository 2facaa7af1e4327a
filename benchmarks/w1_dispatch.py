# paraloop: enable
"""W1 dispatch: ``acc += i * i`` over n iterations, cold (the pool starts inside the clock).

The ``*_float`` variants sum ``i * 0.5`` instead: a float sum, which paraloop gives bit for
bit as the plain loop does, by replaying each term in iteration order.

The body is as cheap as a body gets, so this measures what handing out
iterations costs. The ``*_gen`` variants read a generator instead of a range
(for the parent's peak memory). ``warm_up`` starts paraloop's pool beforehand,
to tell the pool's start from the rest.
"""

import os

import peers
from warm import warm_up  # noqa: F401 - child.py calls it for the :warm variants


def setup(n):
    return (n,)


def square(i):
    return i * i


def chunksize(n):
    """Tuned for the peers: four chunks per CPU (Pool.map's own rule, given explicitly)."""
    return -(-n // (4 * os.cpu_count()))


def plain(n):
    acc = 0
    for i in range(n):
        acc += i * i
    return acc


def paraloop(n):
    from paraloop import ParaLoop

    acc = 0
    for i in ParaLoop(range(n)):
        acc += i * i
    return acc


def plain_float(n):
    acc = 0.0
    for i in range(n):
        acc += i * 0.5
    return acc


def paraloop_float(n):
    """The float sum: paraloop replays every term in order (the plain loop's bits)."""
    from paraloop import ParaLoop

    acc = 0.0
    for i in ParaLoop(range(n)):
        acc += i * 0.5
    return acc


def half(i):
    return i * 0.5


def mp_pool_float(n):
    """Pool.map over chunks, then the terms added in order (the plain loop's bits, as paraloop)."""
    acc = 0.0
    for term in peers.mp_pool(half, range(n), chunksize=chunksize(n)):
        acc += term
    return acc


def plain_gen(n):
    acc = 0
    for i in (i for i in range(n)):
        acc += i * i
    return acc


def paraloop_gen(n):
    from paraloop import ParaLoop

    acc = 0
    for i in ParaLoop(i for i in range(n)):
        acc += i * i
    return acc


def mp_pool(n):
    return sum(peers.mp_pool(square, range(n), chunksize=chunksize(n)))


def mp_pool_gen(n):
    return sum(peers.mp_pool(square, (i for i in range(n)), chunksize=chunksize(n)))


def process_pool(n):
    return sum(peers.process_pool(square, range(n), chunksize=chunksize(n)))


def thread_pool(n):
    return sum(peers.thread_pool(square, range(n), chunksize=chunksize(n)))


def joblib(n):
    return sum(peers.joblib_parallel(square, range(n)))


def mpire(n):
    return sum(peers.mpire_pool(square, range(n)))
