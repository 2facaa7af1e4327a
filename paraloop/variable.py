"""``Variable``: a value whose per-worker copies paraloop combines after the loop."""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

# The constructor's overloads exist at run time, where typing_extensions.get_overloads
# finds them on 3.10 too (typing.overload keeps no record there) and get_type_hints must
# resolve the Never they spell an empty literal's element type with.  typing has both from
# 3.11 on (and typing_extensions hands out typing's there): its 2-3 ms import only on 3.10.
if sys.version_info >= (3, 11):
    from typing import Never, overload
else:
    from typing_extensions import Never, overload

from . import aggregation_strategies
from .aggregation_strategies import AggregationStrategy
from .errors import ParaLoopError

__all__ = ["Variable"]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing import Protocol

    _A = TypeVar("_A")
    _B = TypeVar("_B")
    _In = TypeVar("_In", contravariant=True)
    _Out = TypeVar("_Out", covariant=True)
    _Value = TypeVar("_Value", covariant=True)

    class _Holds(Protocol[_Value]):
        """Anything with a readable ``.value``: how an operator's declaration reaches the
        wrapped value's own operator (``Variable`` is invariant in ``T``, so matching
        ``Variable[int]`` against ``Variable[<protocol>]`` would fail)."""

        @property
        def value(self) -> _Value: ...

    # One protocol per operator method, so that a declaration can ask "what does the
    # wrapped value's __add__ take and give" (typing has no way to name that generically).
    class _Add(Protocol[_In, _Out]):
        def __add__(self, other: _In, /) -> _Out: ...

    class _RAdd(Protocol[_In, _Out]):
        def __radd__(self, other: _In, /) -> _Out: ...

    class _IAdd(Protocol[_In, _Out]):
        def __iadd__(self, other: _In, /) -> _Out: ...

    class _Sub(Protocol[_In, _Out]):
        def __sub__(self, other: _In, /) -> _Out: ...

    class _RSub(Protocol[_In, _Out]):
        def __rsub__(self, other: _In, /) -> _Out: ...

    class _ISub(Protocol[_In, _Out]):
        def __isub__(self, other: _In, /) -> _Out: ...

    class _Mul(Protocol[_In, _Out]):
        def __mul__(self, other: _In, /) -> _Out: ...

    class _RMul(Protocol[_In, _Out]):
        def __rmul__(self, other: _In, /) -> _Out: ...

    class _IMul(Protocol[_In, _Out]):
        def __imul__(self, other: _In, /) -> _Out: ...

    class _Truediv(Protocol[_In, _Out]):
        def __truediv__(self, other: _In, /) -> _Out: ...

    class _RTruediv(Protocol[_In, _Out]):
        def __rtruediv__(self, other: _In, /) -> _Out: ...

    class _ITruediv(Protocol[_In, _Out]):
        def __itruediv__(self, other: _In, /) -> _Out: ...

    class _Floordiv(Protocol[_In, _Out]):
        def __floordiv__(self, other: _In, /) -> _Out: ...

    class _RFloordiv(Protocol[_In, _Out]):
        def __rfloordiv__(self, other: _In, /) -> _Out: ...

    class _IFloordiv(Protocol[_In, _Out]):
        def __ifloordiv__(self, other: _In, /) -> _Out: ...

    class _Mod(Protocol[_In, _Out]):
        def __mod__(self, other: _In, /) -> _Out: ...

    class _RMod(Protocol[_In, _Out]):
        def __rmod__(self, other: _In, /) -> _Out: ...

    class _IMod(Protocol[_In, _Out]):
        def __imod__(self, other: _In, /) -> _Out: ...

    class _Pow(Protocol[_In, _Out]):
        def __pow__(self, other: _In, /) -> _Out: ...

    class _RPow(Protocol[_In, _Out]):
        def __rpow__(self, other: _In, /) -> _Out: ...

    class _IPow(Protocol[_In, _Out]):
        def __ipow__(self, other: _In, /) -> _Out: ...

    class _Matmul(Protocol[_In, _Out]):
        def __matmul__(self, other: _In, /) -> _Out: ...

    class _RMatmul(Protocol[_In, _Out]):
        def __rmatmul__(self, other: _In, /) -> _Out: ...

    class _IMatmul(Protocol[_In, _Out]):
        def __imatmul__(self, other: _In, /) -> _Out: ...

    class _And(Protocol[_In, _Out]):
        def __and__(self, other: _In, /) -> _Out: ...

    class _RAnd(Protocol[_In, _Out]):
        def __rand__(self, other: _In, /) -> _Out: ...

    class _IAnd(Protocol[_In, _Out]):
        def __iand__(self, other: _In, /) -> _Out: ...

    class _Or(Protocol[_In, _Out]):
        def __or__(self, other: _In, /) -> _Out: ...

    class _ROr(Protocol[_In, _Out]):
        def __ror__(self, other: _In, /) -> _Out: ...

    class _IOr(Protocol[_In, _Out]):
        def __ior__(self, other: _In, /) -> _Out: ...

    class _Xor(Protocol[_In, _Out]):
        def __xor__(self, other: _In, /) -> _Out: ...

    class _RXor(Protocol[_In, _Out]):
        def __rxor__(self, other: _In, /) -> _Out: ...

    class _IXor(Protocol[_In, _Out]):
        def __ixor__(self, other: _In, /) -> _Out: ...

    class _Lshift(Protocol[_In, _Out]):
        def __lshift__(self, other: _In, /) -> _Out: ...

    class _RLshift(Protocol[_In, _Out]):
        def __rlshift__(self, other: _In, /) -> _Out: ...

    class _ILshift(Protocol[_In, _Out]):
        def __ilshift__(self, other: _In, /) -> _Out: ...

    class _Rshift(Protocol[_In, _Out]):
        def __rshift__(self, other: _In, /) -> _Out: ...

    class _RRshift(Protocol[_In, _Out]):
        def __rrshift__(self, other: _In, /) -> _Out: ...

    class _IRshift(Protocol[_In, _Out]):
        def __irshift__(self, other: _In, /) -> _Out: ...

    class _Divmod(Protocol[_In, _Out]):
        def __divmod__(self, other: _In, /) -> _Out: ...

    class _RDivmod(Protocol[_In, _Out]):
        def __rdivmod__(self, other: _In, /) -> _Out: ...

    class _Lt(Protocol[_In, _Out]):
        def __lt__(self, other: _In, /) -> _Out: ...

    class _Le(Protocol[_In, _Out]):
        def __le__(self, other: _In, /) -> _Out: ...

    class _Gt(Protocol[_In, _Out]):
        def __gt__(self, other: _In, /) -> _Out: ...

    class _Ge(Protocol[_In, _Out]):
        def __ge__(self, other: _In, /) -> _Out: ...

    class _Neg(Protocol[_Out]):
        def __neg__(self) -> _Out: ...

    class _Pos(Protocol[_Out]):
        def __pos__(self) -> _Out: ...

    class _Abs(Protocol[_Out]):
        def __abs__(self) -> _Out: ...

    class _Invert(Protocol[_Out]):
        def __invert__(self) -> _Out: ...


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

    # An empty literal gives a checker no element types to infer (mypy: "Need type
    # annotation"); ``Variable({})`` is the README's own example, so it means
    # ``Variable[dict[Any, Any]]`` unless the name is annotated.
    @overload
    def __init__(
        self: Variable[dict[Any, Any]],
        value: dict[Never, Never],
        aggregation_strategy: type[AggregationStrategy] | AggregationStrategy = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: Variable[list[Any]],
        value: list[Never],
        aggregation_strategy: type[AggregationStrategy] | AggregationStrategy = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: Variable[set[Any]],
        value: set[Never],
        aggregation_strategy: type[AggregationStrategy] | AggregationStrategy = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        value: T,
        aggregation_strategy: type[AggregationStrategy] | AggregationStrategy = ...,
    ) -> None: ...
    def __init__(
        self,
        value: Any,
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

    @classmethod
    def _unchecked(cls, value: Any, strategy: AggregationStrategy) -> Variable[Any]:
        """A Variable paraloop makes itself: a worker's share, one rebuilt from a pickle, a plain
        name the runtime tracks with an inferred strategy.  The strategy is already an instance
        chosen for the value, so the check ``__init__`` makes for the user is not made again."""
        variable: Variable[Any] = cls.__new__(cls)
        object.__setattr__(variable, "value", value)
        object.__setattr__(variable, "aggregation_strategy", strategy)
        return variable

    def _private(self) -> Variable[Any]:
        """A fresh copy for one worker's share of the iterations."""
        return Variable._unchecked(self.aggregation_strategy.start(self.value), self.aggregation_strategy)

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

    if TYPE_CHECKING:
        # The operators are installed at run time by the loop at the end of this module;
        # here a type checker is told what they do: ``v + x`` is the wrapped value's
        # ``value + x`` (a plain value), ``v += x`` keeps the name bound to the Variable.
        # Each one is tried, in order, as
        # - closed: the value's own type on both sides, which gives that type back (tried
        #   first: str, list and numpy declare their operators as overloads, which the
        #   protocol forms below cannot read);
        # - the wrapped value's operator, read through a protocol (Fraction + int);
        # - the other operand's reflected operator (Variable[int] + 1.5 is a float).
        # Anything none of them accepts is an error, as it would be on the plain value.
        # Not read: an operand the value's overloaded operator takes besides its own type
        # (numpy array * 2.0 is rejected; write v.value * 2.0).  The ignored [misc] errors:
        # mypy expects v += x to give what v + x gives, and here, as at run time, it gives
        # the Variable; the reflected forms overlap the way Python's fallback order does.

        @overload
        def __add__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __add__(self: _Holds[_Add[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __add__(self: Variable[_A], other: _RAdd[_A, _B], /) -> _B: ...
        def __add__(self, other: Any, /) -> Any: ...

        @overload
        def __radd__(self, other: T, /) -> T: ...
        @overload
        def __radd__(self: _Holds[_RAdd[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __radd__(self: Variable[_A], other: _Add[_A, _B], /) -> _B: ...
        def __radd__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __iadd__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __iadd__(self: _Holds[_IAdd[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __iadd__(self: _Holds[_Add[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __iadd__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __sub__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __sub__(self: _Holds[_Sub[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __sub__(self: Variable[_A], other: _RSub[_A, _B], /) -> _B: ...
        def __sub__(self, other: Any, /) -> Any: ...

        @overload
        def __rsub__(self, other: T, /) -> T: ...
        @overload
        def __rsub__(self: _Holds[_RSub[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rsub__(self: Variable[_A], other: _Sub[_A, _B], /) -> _B: ...
        def __rsub__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __isub__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __isub__(self: _Holds[_ISub[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __isub__(self: _Holds[_Sub[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __isub__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __mul__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __mul__(self: _Holds[_Mul[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __mul__(self: Variable[_A], other: _RMul[_A, _B], /) -> _B: ...
        def __mul__(self, other: Any, /) -> Any: ...

        @overload
        def __rmul__(self, other: T, /) -> T: ...
        @overload
        def __rmul__(self: _Holds[_RMul[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rmul__(self: Variable[_A], other: _Mul[_A, _B], /) -> _B: ...
        def __rmul__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __imul__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __imul__(self: _Holds[_IMul[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __imul__(self: _Holds[_Mul[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __imul__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __truediv__(self: _Holds[_Truediv[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __truediv__(self: Variable[_A], other: _RTruediv[_A, _B], /) -> _B: ...
        @overload
        def __truediv__(self, other: T | Variable[T], /) -> T: ...
        def __truediv__(self, other: Any, /) -> Any: ...

        @overload
        def __rtruediv__(self: _Holds[_RTruediv[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rtruediv__(self: Variable[_A], other: _Truediv[_A, _B], /) -> _B: ...
        @overload
        def __rtruediv__(self, other: T, /) -> T: ...
        def __rtruediv__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __itruediv__(self: _Holds[_ITruediv[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __itruediv__(self: _Holds[_Truediv[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __itruediv__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __floordiv__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __floordiv__(self: _Holds[_Floordiv[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __floordiv__(self: Variable[_A], other: _RFloordiv[_A, _B], /) -> _B: ...
        def __floordiv__(self, other: Any, /) -> Any: ...

        @overload
        def __rfloordiv__(self, other: T, /) -> T: ...
        @overload
        def __rfloordiv__(self: _Holds[_RFloordiv[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rfloordiv__(self: Variable[_A], other: _Floordiv[_A, _B], /) -> _B: ...
        def __rfloordiv__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __ifloordiv__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __ifloordiv__(self: _Holds[_IFloordiv[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ifloordiv__(self: _Holds[_Floordiv[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __ifloordiv__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __mod__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __mod__(self: _Holds[_Mod[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __mod__(self: Variable[_A], other: _RMod[_A, _B], /) -> _B: ...
        def __mod__(self, other: Any, /) -> Any: ...

        @overload
        def __rmod__(self, other: T, /) -> T: ...
        @overload
        def __rmod__(self: _Holds[_RMod[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rmod__(self: Variable[_A], other: _Mod[_A, _B], /) -> _B: ...
        def __rmod__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __imod__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __imod__(self: _Holds[_IMod[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __imod__(self: _Holds[_Mod[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __imod__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __pow__(self, other: T | Variable[T], /) -> Any: ...
        @overload
        def __pow__(self: _Holds[_Pow[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __pow__(self: Variable[_A], other: _RPow[_A, _B], /) -> _B: ...
        def __pow__(self, other: Any, /) -> Any: ...

        @overload
        def __rpow__(self, other: T, /) -> Any: ...
        @overload
        def __rpow__(self: _Holds[_RPow[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rpow__(self: Variable[_A], other: _Pow[_A, _B], /) -> _B: ...  # type: ignore[misc]
        def __rpow__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __ipow__(self: _Holds[_IPow[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ipow__(self: _Holds[_Pow[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ipow__(self, other: T | Variable[T], /) -> Variable[Any]: ...
        def __ipow__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __matmul__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __matmul__(self: _Holds[_Matmul[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __matmul__(self: Variable[_A], other: _RMatmul[_A, _B], /) -> _B: ...
        def __matmul__(self, other: Any, /) -> Any: ...

        @overload
        def __rmatmul__(self, other: T, /) -> T: ...
        @overload
        def __rmatmul__(self: _Holds[_RMatmul[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rmatmul__(self: Variable[_A], other: _Matmul[_A, _B], /) -> _B: ...
        def __rmatmul__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __imatmul__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __imatmul__(self: _Holds[_IMatmul[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __imatmul__(self: _Holds[_Matmul[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __imatmul__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __and__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __and__(self: _Holds[_And[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __and__(self: Variable[_A], other: _RAnd[_A, _B], /) -> _B: ...
        def __and__(self, other: Any, /) -> Any: ...

        @overload
        def __rand__(self, other: T, /) -> T: ...
        @overload
        def __rand__(self: _Holds[_RAnd[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rand__(self: Variable[_A], other: _And[_A, _B], /) -> _B: ...
        def __rand__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __iand__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __iand__(self: _Holds[_IAnd[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __iand__(self: _Holds[_And[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __iand__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __or__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __or__(self: _Holds[_Or[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __or__(self: Variable[_A], other: _ROr[_A, _B], /) -> _B: ...
        def __or__(self, other: Any, /) -> Any: ...

        @overload
        def __ror__(self, other: T, /) -> T: ...
        @overload
        def __ror__(self: _Holds[_ROr[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __ror__(self: Variable[_A], other: _Or[_A, _B], /) -> _B: ...
        def __ror__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __ior__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __ior__(self: _Holds[_IOr[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ior__(self: _Holds[_Or[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __ior__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __xor__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __xor__(self: _Holds[_Xor[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __xor__(self: Variable[_A], other: _RXor[_A, _B], /) -> _B: ...
        def __xor__(self, other: Any, /) -> Any: ...

        @overload
        def __rxor__(self, other: T, /) -> T: ...
        @overload
        def __rxor__(self: _Holds[_RXor[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rxor__(self: Variable[_A], other: _Xor[_A, _B], /) -> _B: ...
        def __rxor__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __ixor__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __ixor__(self: _Holds[_IXor[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ixor__(self: _Holds[_Xor[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __ixor__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __lshift__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __lshift__(self: _Holds[_Lshift[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __lshift__(self: Variable[_A], other: _RLshift[_A, _B], /) -> _B: ...
        def __lshift__(self, other: Any, /) -> Any: ...

        @overload
        def __rlshift__(self, other: T, /) -> T: ...
        @overload
        def __rlshift__(self: _Holds[_RLshift[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rlshift__(self: Variable[_A], other: _Lshift[_A, _B], /) -> _B: ...
        def __rlshift__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __ilshift__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __ilshift__(self: _Holds[_ILshift[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __ilshift__(self: _Holds[_Lshift[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __ilshift__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __rshift__(self, other: T | Variable[T], /) -> T: ...
        @overload
        def __rshift__(self: _Holds[_Rshift[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __rshift__(self: Variable[_A], other: _RRshift[_A, _B], /) -> _B: ...
        def __rshift__(self, other: Any, /) -> Any: ...

        @overload
        def __rrshift__(self, other: T, /) -> T: ...
        @overload
        def __rrshift__(self: _Holds[_RRshift[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rrshift__(self: Variable[_A], other: _Rshift[_A, _B], /) -> _B: ...
        def __rrshift__(self, other: Any, /) -> Any: ...

        @overload  # type: ignore[misc]
        def __irshift__(self, other: T | Variable[T], /) -> Variable[T]: ...
        @overload
        def __irshift__(self: _Holds[_IRshift[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        @overload
        def __irshift__(self: _Holds[_Rshift[_A, _B]], other: _A | Variable[_A], /) -> Variable[_B]: ...
        def __irshift__(self, other: Any, /) -> Variable[Any]: ...  # type: ignore[misc]

        @overload
        def __divmod__(self: _Holds[_Divmod[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __divmod__(self: Variable[_A], other: _RDivmod[_A, _B], /) -> _B: ...
        def __divmod__(self, other: Any, /) -> Any: ...

        @overload
        def __rdivmod__(self: _Holds[_RDivmod[_A, _B]], other: _A, /) -> _B: ...
        @overload
        def __rdivmod__(self: Variable[_A], other: _Divmod[_A, _B], /) -> _B: ...
        def __rdivmod__(self, other: Any, /) -> Any: ...

        @overload
        def __lt__(self: _Holds[_Lt[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __lt__(self: Variable[_A], other: _Gt[_A, _B], /) -> _B: ...  # type: ignore[misc]
        @overload
        def __lt__(self, other: T | Variable[T], /) -> Any: ...
        def __lt__(self, other: Any, /) -> Any: ...

        @overload
        def __le__(self: _Holds[_Le[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __le__(self: Variable[_A], other: _Ge[_A, _B], /) -> _B: ...  # type: ignore[misc]
        @overload
        def __le__(self, other: T | Variable[T], /) -> Any: ...
        def __le__(self, other: Any, /) -> Any: ...

        @overload
        def __gt__(self: _Holds[_Gt[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __gt__(self: Variable[_A], other: _Lt[_A, _B], /) -> _B: ...  # type: ignore[misc]
        @overload
        def __gt__(self, other: T | Variable[T], /) -> Any: ...
        def __gt__(self, other: Any, /) -> Any: ...

        @overload
        def __ge__(self: _Holds[_Ge[_A, _B]], other: _A | Variable[_A], /) -> _B: ...
        @overload
        def __ge__(self: Variable[_A], other: _Le[_A, _B], /) -> _B: ...  # type: ignore[misc]
        @overload
        def __ge__(self, other: T | Variable[T], /) -> Any: ...
        def __ge__(self, other: Any, /) -> Any: ...

        def __neg__(self: _Holds[_Neg[_B]]) -> _B: ...

        def __pos__(self: _Holds[_Pos[_B]]) -> _B: ...

        def __abs__(self: _Holds[_Abs[_B]]) -> _B: ...

        def __invert__(self: _Holds[_Invert[_B]]) -> _B: ...


def _rebuild(value: Any, strategy: AggregationStrategy) -> Variable[Any]:
    # Named in pickles (Variable.__reduce__): keep it a module-level function.
    return Variable._unchecked(value, strategy)


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
