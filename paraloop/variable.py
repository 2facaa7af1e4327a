"""``Variable``: a value whose per-worker copies paraloop combines after the loop."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from . import aggregation_strategies
from .aggregation_strategies import AggregationStrategy
from .errors import ParaLoopError

__all__ = ["Variable"]

T = TypeVar("T")


def _strategy_instance(strategy: object) -> AggregationStrategy:
    if isinstance(strategy, type) and issubclass(strategy, AggregationStrategy):
        return strategy()
    if isinstance(strategy, AggregationStrategy):
        return strategy
    raise ParaLoopError(
        f"aggregation_strategy={strategy!r} is not an aggregation strategy; pass one of "
        "paraloop.aggregation_strategies (Sum, Concatenate, ...) or a subclass of "
        "aggregation_strategies.AggregationStrategy"
    )


class Variable(Generic[T]):
    """A value that a ``ParaLoop`` body updates, combined across workers after the loop.

    Inside the body use it exactly as you would use the value: ``v += x``,
    ``v.append(x)``, ``v[key] = x``, ``v = min(v, x)``.  Each worker updates a
    private copy; after the loop the copies are combined in iteration order
    with the strategy, onto the pre-loop value, so the Variable ends up holding
    what the plain loop would have produced.  ``.value`` is the wrapped object.

    Example::

        counter = Variable(3, aggregation_strategy=aggregation_strategies.Sum)
        for i in ParaLoop(range(100)):
            counter += i
        print(counter)          # 4953
    """

    __slots__ = ("aggregation_strategy", "value")

    value: T
    aggregation_strategy: AggregationStrategy

    def __init__(
        self,
        value: T,
        aggregation_strategy: type[AggregationStrategy] | AggregationStrategy = (aggregation_strategies.Last),
    ) -> None:
        strategy = _strategy_instance(aggregation_strategy)
        reason = strategy.check(value)
        if reason is not None:
            raise ParaLoopError(
                f"Variable({value!r}, aggregation_strategy={type(strategy).__name__}): {reason}"
            )
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "aggregation_strategy", strategy)

    def _private(self) -> Variable[Any]:
        """A fresh copy for one worker's share of the iterations."""
        copy: Variable[Any] = Variable.__new__(Variable)
        object.__setattr__(copy, "value", self.aggregation_strategy.start(self.value))
        object.__setattr__(copy, "aggregation_strategy", self.aggregation_strategy)
        return copy

    def __reduce__(self) -> tuple[Callable[..., Variable[T]], tuple[Any, ...]]:
        return (_rebuild, (self.value, self.aggregation_strategy))

    # Behave like the wrapped value.
    def __getattr__(self, name: str) -> Any:
        return getattr(self.value, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Variable.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.value, name, value)

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __len__(self) -> int:
        return len(self.value)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        iterable: Any = self.value
        return iter(iterable)

    def __contains__(self, item: object) -> bool:
        return item in self.value  # type: ignore[operator]

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]  # type: ignore[index]

    def __setitem__(self, key: Any, item: Any) -> None:
        self.value[key] = item  # type: ignore[index]

    def __delitem__(self, key: Any) -> None:
        del self.value[key]  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __int__(self) -> int:
        number: Any = self.value
        return int(number)

    def __float__(self) -> float:
        return float(self.value)  # type: ignore[arg-type]

    def __index__(self) -> int:
        return operator.index(self.value)  # type: ignore[arg-type]

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self.value, ndigits)  # type: ignore[call-overload]


def _rebuild(value: Any, strategy: AggregationStrategy) -> Variable[Any]:
    rebuilt: Variable[Any] = Variable.__new__(Variable)
    object.__setattr__(rebuilt, "value", value)
    object.__setattr__(rebuilt, "aggregation_strategy", strategy)
    return rebuilt


def _unwrap(value: object) -> object:
    return value.value if isinstance(value, Variable) else value


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[Variable[Any], Any], Any]:
    def forward(self: Variable[Any], other: Any) -> Any:
        return op(self.value, _unwrap(other))

    return forward


def _reflected(op: Callable[[Any, Any], Any]) -> Callable[[Variable[Any], Any], Any]:
    def forward(self: Variable[Any], other: Any) -> Any:
        return op(_unwrap(other), self.value)

    return forward


def _inplace(op: Callable[[Any, Any], Any]) -> Callable[[Variable[Any], Any], Any]:
    # ``v += x`` must leave the name bound to the Variable, so the result of the
    # in-place operation goes into .value and the Variable itself is returned.
    def forward(self: Variable[Any], other: Any) -> Variable[Any]:
        object.__setattr__(self, "value", op(self.value, _unwrap(other)))
        return self

    return forward


def _unary(op: Callable[[Any], Any]) -> Callable[[Variable[Any]], Any]:
    def forward(self: Variable[Any]) -> Any:
        return op(self.value)

    return forward


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
):
    _op = getattr(operator, f"{_name}_" if _name in ("and", "or") else _name)
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _reflected(_op))
    setattr(Variable, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Variable, f"__{_name}__", _binary(getattr(operator, _name)))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Variable, f"__{_name}__", _unary(getattr(operator, _name)))
for _name, _method in (("__divmod__", _binary(divmod)), ("__rdivmod__", _reflected(divmod))):
    setattr(Variable, _name, _method)
