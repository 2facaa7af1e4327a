# paraloop: enable
"""The README loop at module level."""
from __future__ import annotations

from paraloop import ParaLoop, Variable, aggregation_strategies

counter = Variable(3, aggregation_strategy=aggregation_strategies.Sum)
for i in ParaLoop(range(100), num_processes=8):
    counter += i
    if i % 2:
        continue
    square = i * i
else:
    print("finished")
