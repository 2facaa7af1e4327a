# paraloop: enable
"""W8 numpy: 24 iterations, each fifteen products of 300x300 matrices (BLAS in the body).

numpy's BLAS starts a thread per CPU: without limits, two workers on two CPUs run
four BLAS threads.  A matrix product's last bits depend on the BLAS's thread
count, so results are compared rounded to 9 significant digits.
"""

import numpy


def step(seed):
    rng = numpy.random.default_rng(seed)
    a = rng.standard_normal((300, 300))
    b = rng.standard_normal((300, 300))
    for _ in range(15):
        a = a @ b
        a /= numpy.abs(a).max()
    return float(f"{a.sum():.9g}")


def setup(n):
    return (n,)


def plain(n):
    out = []
    for i in range(n):
        out.append(step(i))
    return out


def paraloop(n):
    from paraloop import ParaLoop

    out = []
    for i in ParaLoop(range(n)):
        out.append(step(i))
    return out


def joblib(n):
    from joblib import Parallel, delayed

    return Parallel(n_jobs=-1)(delayed(step)(i) for i in range(n))
