# paraloop: enable
"""What the ``:warm`` variants run before the clock (see child.py and benchmarks/README.md)."""


def warm_up(n=8):
    """A program that ran loops before: the pool started (every iteration of the first loop in a
    worker; one this short would otherwise end in the caller and start none), and the caller's
    own first-loop costs paid (the second ends in the caller)."""
    from paraloop import ParaLoop

    for _ in ParaLoop(range(n), caller_runs=False):
        pass
    for _ in ParaLoop(range(n)):
        pass
