# paraloop: enable
"""W9 numpy: a small loop whose body calls numpy, the commonest research loop.

Ten iterations, each a product of a 50x50 matrix (a fraction of a millisecond).  numpy is
imported before the clock (``setup``), as a program that uses it has.  CONTRACT.md section 9
asks for at most about a millisecond more than the plain loop, cold or warm; paraloop limits
the caller's BLAS to a worker's share around its chunks (so that every iteration's product has
the same bits wherever it runs), and the first loop of a program that does so imports
threadpoolctl.
"""

from warm import warm_up  # noqa: F401 - child.py calls it for the :warm variants


def setup():
    import numpy

    return (numpy.ones((50, 50)),)


def plain(matrix):
    total = 0.0
    for i in range(10):
        total += float((matrix @ matrix)[0, 0]) + i
    return total


def paraloop(matrix):
    from paraloop import ParaLoop

    total = 0.0
    for i in ParaLoop(range(10)):
        total += float((matrix @ matrix)[0, 0]) + i
    return total
