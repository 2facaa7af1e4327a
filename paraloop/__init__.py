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

from ._version import __version__
from .errors import (
    IterationTimeoutError,
    ParaLoopError,
    ParaLoopWarning,
    UnsupportedLoopError,
    WorkerCrashedError,
)
from .hook import install, uninstall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import aggregation_strategies
    from .explanation import Explanation
    from .hook.rewriter import show
    from .loop import ParaLoop
    from .resources import per_worker
    from .settings import config
    from .shared import SharedArray
    from .variable import Variable

# Imported on first use (PEP 562), so that 'import paraloop' costs little: a program
# pays for the runtime when its first marked module names ParaLoop.
_LAZY = {
    "ParaLoop": "loop",
    "SharedArray": "shared",
    "Variable": "variable",
    "aggregation_strategies": None,
    "config": "settings",
    "per_worker": "resources",
    "show": "hook.rewriter",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'paraloop' has no attribute {name!r}")
    import importlib

    where = _LAZY[name]
    if where is None:
        value: object = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "explain",
    "install",
    "per_worker",
    "show",
    "uninstall",
]


def explain(source: str | bytes, filename: str = "<string>") -> Explanation:
    """Report what paraloop does with each ParaLoop loop of ``source``; ``str()`` of the report is
    what ``python -m paraloop --explain FILE`` prints (see :mod:`paraloop.explanation`)::

        >>> report = paraloop.explain("from paraloop import ParaLoop\\ntotal = 0\\n"
        ...                           "for i in ParaLoop(range(9)):\\n    total += i\\n")
        >>> report.loop(3).name("total").strategy
        'Sum'
    """
    from .explanation import explain as report

    return report(source, filename)


def load_ipython_extension(shell: object) -> None:
    """``%load_ext paraloop`` in IPython or Jupyter: rewrite the loops of every later cell."""
    from .ipython import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    """``%unload_ext paraloop``: stop rewriting cells."""
    from .ipython import unload_ipython_extension as unload

    unload(shell)


install()
