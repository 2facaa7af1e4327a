# paraloop: enable
"""W10 a large captured value: 8 trivial iterations that read a 200 MB numpy array.

What a skeptic checks first with large inputs: whether the array is copied once per worker.
The peers get the array as their users would pass it (joblib memory-maps large arrays on
its own; a Pool gets it through its initializer, once per worker).
"""

import numpy

import peers
import warm

SIZE = 25_000_000  # float64: 200 MB


def setup(size=SIZE):
    return (numpy.arange(size, dtype=numpy.float64),)


def plain(array):
    out = []
    for i in range(8):
        out.append(float(array[i * 1000]) + array.shape[0])
    return out


def paraloop(array):
    from paraloop import ParaLoop

    out = []
    for i in ParaLoop(range(8)):
        out.append(float(array[i * 1000]) + array.shape[0])
    return out


def warm_up():
    warm.warm_up(4)


def _read(array, i):
    return float(array[i * 1000]) + array.shape[0]


def joblib(array):
    from joblib import Parallel, delayed

    return Parallel(n_jobs=-1)(delayed(_read)(array, i) for i in range(8))


_shared = None


def _keep(array):
    global _shared
    _shared = array


def _read_kept(i):
    return float(_shared[i * 1000]) + _shared.shape[0]


def mp_pool(array):
    import multiprocessing

    with multiprocessing.Pool(initializer=_keep, initargs=(array,)) as pool:
        return pool.map(_read_kept, range(8))
