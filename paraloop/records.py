"""The base of paraloop's plain data classes (a chunk, a job, an outcome...).

Each class writes its ``__init__`` out and names its fields in ``_fields``; this gives them
the equality and repr that ``dataclasses`` would.  ``dataclasses`` itself would cost every
marked program's start: its decorator runs 0.3 ms a class (it compiles the methods it makes),
eight classes on the way of a program's first loop, and the module imports ``inspect``
(with ``ast``, ``dis`` and ``tokenize``), 8 ms where the program imported none of them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Record"]


class Record:
    """Equality (same class, equal fields) and repr over the class's ``_fields``, as a dataclass's.

    Example::

        class Point(Record):
            _fields = ("x", "y")

            def __init__(self, x: int, y: int = 0) -> None:
                self.x = x
                self.y = y

        Point(1) == Point(1, 0)  # True; repr: Point(x=1, y=0)
    """

    _fields: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # changeable, as a dataclass's

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self._values()))
        return f"{type(self).__qualname__}({shown})"

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def _copy(self, **changes: Any) -> Any:
        """A copy with the fields only (not what was cached on this one), ``changes`` applied,
        as ``dataclasses.replace`` makes."""
        copy = object.__new__(type(self))
        copy.__dict__.update({name: getattr(self, name) for name in self._fields}, **changes)
        return copy
