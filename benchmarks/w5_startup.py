"""W5 start-up: a whole ``python`` process whose work is one 16-iteration loop.

    python w5_startup.py plain                   # no paraloop at all
    python -m paraloop w5_startup.py paraloop    # with PARALOOP_START_METHOD=fork|forkserver|spawn
    python w5_startup.py mp_pool                 # or another peer

The driver times the whole process; the process prints the same BENCH-RESULT
line as ``child.py`` (its loop time, and the result checked against the plain one).
"""

import sys
import time

from harness import report


def square(i):
    return i * i


def main(variant):
    began = time.perf_counter()
    if variant == "plain":
        total = 0
        for i in range(16):
            total += i * i
    elif variant == "paraloop":
        from paraloop import ParaLoop

        total = 0
        for i in ParaLoop(range(16)):
            total += i * i
    else:
        import peers

        function = {
            "mp_pool": peers.mp_pool,
            "process_pool": peers.process_pool,
            "thread_pool": peers.thread_pool,
            "joblib": peers.joblib_parallel,
            "mpire": peers.mpire_pool,
        }[variant]
        total = sum(function(square, range(16)))
    report(time.perf_counter() - began, total)


if __name__ == "__main__":
    main(sys.argv[1])
