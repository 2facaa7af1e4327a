# paraloop: enable
"""W3 CPU-bound: n iterations of pure-Python arithmetic, each about 35 ms (``calibrate``)."""

import time

import peers
from warm import warm_up  # noqa: F401 - child.py calls it for the :warm variants


def spin(i, rounds):
    """A linear congruential walk: pure Python, no allocation, deterministic."""
    x = i
    for _ in range(rounds):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate(target=0.035):
    """The ``rounds`` for which one ``spin`` takes about ``target`` seconds here."""
    rounds = 10_000
    while True:
        began = time.perf_counter()
        spin(0, rounds)
        took = time.perf_counter() - began
        if took > 0.005:
            break
        rounds *= 4
    timings = []
    for _ in range(5):
        scaled = int(rounds * target / took)
        began = time.perf_counter()
        spin(0, scaled)
        timings.append(time.perf_counter() - began)
    timings.sort()
    return int(scaled * target / timings[2])


def setup(n, rounds):
    return (n, rounds)


def work(args):
    return spin(*args)


def plain(n, rounds):
    out = []
    for i in range(n):
        out.append(spin(i, rounds))
    return out


def paraloop(n, rounds):
    from paraloop import ParaLoop

    out = []
    for i in ParaLoop(range(n)):
        out.append(spin(i, rounds))
    return out


# Peers: one iteration per message, since each iteration is long.
def mp_pool(n, rounds):
    return peers.mp_pool(work, [(i, rounds) for i in range(n)], chunksize=1)


def process_pool(n, rounds):
    return peers.process_pool(work, [(i, rounds) for i in range(n)], chunksize=1)


def thread_pool(n, rounds):
    return peers.thread_pool(work, [(i, rounds) for i in range(n)])


def joblib(n, rounds):
    from joblib import Parallel, delayed

    return Parallel(n_jobs=-1)(delayed(spin)(i, rounds) for i in range(n))


def mpire(n, rounds):
    # mpire unpacks a tuple item into the function's arguments.
    return peers.mpire_pool(spin, [(i, rounds) for i in range(n)])
