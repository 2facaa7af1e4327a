"""Refusing, at loop start, what the workers would silently get wrong.

The rewriter lists the uses of outer names in a loop body that cannot be
combined as they stand (see :mod:`paraloop.hook.uses`); here they are checked
against the values the names have when the loop starts.  A Variable is fine:
its private copies are combined.  A plain container mutated in the body, a
value carried from one iteration to the next, or an attribute of an outer
object changed in the body would only change in the workers: refused, with
the file, the line, the name and the fix.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Mapping
from typing import Any

from .errors import ParaLoopError
from .execute import UNBOUND
from .variable import Variable

__all__ = ["check_uses"]

_CONTAINERS = (list, dict, set, bytearray, deque, Counter, OrderedDict, defaultdict)

_STRATEGY_HINT = {
    "list": "Concatenate",
    "dict": "Merge",
    "set": "Union",
    "int": "Sum",
    "float": "Sum",
    "str": "Concatenate",
}


def _is_container(value: object) -> bool:
    if isinstance(value, _CONTAINERS):
        return True
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ == "ndarray"


def _fix(name: str, value: object) -> str:
    strategy = _STRATEGY_HINT.get(type(value).__name__, "Sum")
    return (
        f"wrap it before the loop: {name} = Variable({name}, "
        f"aggregation_strategy=aggregation_strategies.{strategy})"
    )


def check_uses(uses: tuple[tuple[str, int, str, str], ...], values: Mapping[str, Any], filename: str) -> None:
    """Raise ParaLoopError for the first use the workers could not combine."""
    for name, line, kind, what in uses:
        value = values.get(name, UNBOUND)
        if value is UNBOUND or isinstance(value, Variable):
            continue
        where = f"{filename}, line {line}"
        if kind == "attribute":
            raise ParaLoopError(
                f"{where}: the ParaLoop body changes an attribute of {name!r} ({what}). "
                "Worker processes change their own copies, so the change would be lost. "
                "Collect the values in a Variable and assign the attribute after the loop"
            )
        if kind == "mutated" and _is_container(value):
            raise ParaLoopError(
                f"{where}: the ParaLoop body changes {name!r}, a {type(value).__name__} from "
                f"outside the loop ({what}); the workers' changes would be lost. {_fix(name, value)}"
            )
        if kind == "carried":
            raise ParaLoopError(
                f"{where}: {name!r} carries a value from one iteration to the next ({what}), "
                f"which iterations running in parallel cannot do. {_fix(name, value)}"
            )
