# paraloop: enable
"""W9 small loops: what a loop whose whole work takes a few milliseconds costs.

Three shapes (``setup(shape)``): 10 trivial iterations; 10 iterations of 1 ms; 100 of 0.1 ms
(``time.sleep``, so the work itself does not depend on the machine's load). CONTRACT.md
section 9 asks for at most about a millisecond more than the plain loop, cold or warm.
"""

import time

from warm import warm_up  # noqa: F401 - child.py calls it for the :warm variants

SHAPES = {"trivial": (10, 0.0), "10x1ms": (10, 0.001), "100x0.1ms": (100, 0.0001)}


def setup(shape):
    return SHAPES[shape]


def plain(n, seconds):
    total = 0
    for i in range(n):
        if seconds:
            time.sleep(seconds)
        total += i
    return total


def paraloop(n, seconds):
    from paraloop import ParaLoop

    total = 0
    for i in ParaLoop(range(n)):
        if seconds:
            time.sleep(seconds)
        total += i
    return total


def thread_pool(n, seconds):
    import peers

    def step(i):
        if seconds:
            time.sleep(seconds)
        return i

    return sum(peers.thread_pool(step, range(n)))


def joblib(n, seconds):
    import peers

    return sum(peers.joblib_parallel(_step, [(i, seconds) for i in range(n)]))


def _step(args):
    i, seconds = args
    if seconds:
        time.sleep(seconds)
    return i
