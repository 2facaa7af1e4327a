# A module without ParaLoop: the rewriter leaves it exactly as it is.
import itertools


def pairs(values):
    for a, b in itertools.pairwise(values):
        yield a + b
