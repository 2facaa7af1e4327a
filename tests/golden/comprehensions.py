# paraloop: enable
from paraloop import ParaLoop

offset = 3
squares = [x * x + offset for x in ParaLoop(range(10)) if x % 2]


def lazy(rows):
    return (sum(row) for row in ParaLoop(rows))


def scaled(rows, factor):
    values = (row * factor + offset for row in ParaLoop(rows))
    factor = -factor
    return values
