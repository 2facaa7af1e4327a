"""paraloop: run the iterations of an ordinary ``for`` loop in parallel.

Mark a module with the line ``# paraloop: enable``, wrap a loop's iterable in
``ParaLoop(...)``, and import the module after ``paraloop``: the loop's
iterations run in worker processes and the program afterwards sees what the
plain loop would have left::

    # paraloop: enable
    from paraloop import ParaLoop, Variable, aggregation_strategies

    counter = Variable(3, aggregation_strategy=aggregation_strategies.Sum)
    for i in ParaLoop(range(100)):
        counter += i
    print(counter)   # 4953

Importing paraloop installs the import hook that does the rewriting.
"""

from __future__ import annotations

from . import aggregation_strategies
from ._version import __version__
from .errors import (
    IterationTimeoutError,
    ParaLoopError,
    ParaLoopWarning,
    UnsupportedLoopError,
    WorkerCrashedError,
)
from .hook import install, uninstall
from .hook.rewriter import show
from .loop import ParaLoop
from .settings import config
from .shared import SharedArray
from .variable import Variable

__all__ = [
    "IterationTimeoutError",
    "ParaLoop",
    "ParaLoopError",
    "ParaLoopWarning",
    "SharedArray",
    "UnsupportedLoopError",
    "Variable",
    "WorkerCrashedError",
    "__version__",
    "aggregation_strategies",
    "config",
    "install",
    "show",
    "uninstall",
]


def load_ipython_extension(shell: object) -> None:
    """``%load_ext paraloop`` in IPython or Jupyter: rewrite the loops of every later cell."""
    from .ipython import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    """``%unload_ext paraloop``: stop rewriting cells."""
    from .ipython import unload_ipython_extension as unload

    unload(shell)


install()
