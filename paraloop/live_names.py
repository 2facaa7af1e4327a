"""The variables of a function that a loop or comprehension in it reads, as they are later.

A plain generator expression looks its body's names up as each item is computed (late
binding)::

    def scaled(rows):
        factor = 1
        values = (row * factor for row in ParaLoop(rows))
        factor = 100       # plain Python: every row times 100
        return list(values)

A snapshot of the function's locals taken as the expression is made (``locals()``) would give
the old value silently.  So the generated code hands the runtime a reader per name, a
``lambda`` over it (a closure shares the function's variable, not its value then): the runtime
captures the values when the first item is asked for, and looks before each later item whether
the function rebound one since (see :class:`paraloop.iterable_watch.BetweenItems`): a rebinding
then is refused, or taken by the sequential backend, which computes each item when it is asked
for.

A for loop or comprehension in a function gets the same readers beside ``locals()``
(:class:`LiveScope`): a generator nested in the function may rebind a variable the body reads as
it yields its items (``nonlocal scale; scale = i``), which the watch of the loop's iterator sees
(:mod:`paraloop.iterable_watch`); and a loop in a class body reads the variables of the
functions around the class through them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["LiveScope", "LiveNames", "LiveNamespace"]


class LiveNames(Mapping[str, Any]):
    """The function's names, each read through its reader when looked up; an unbound one (its
    reader raises NameError) is not in the mapping, as it is not in ``locals()``."""

    def __init__(self, readers: tuple[tuple[str, Callable[[], Any]], ...]) -> None:
        self.readers = dict(readers)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.readers[name]()
        except NameError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        reader = self.readers.get(name)  # type: ignore[call-overload]
        if reader is None:
            return False
        try:
            reader()
        except NameError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (name for name in self.readers if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class LiveScope(LiveNames):
    """What a loop in a function or in a class body reads: the scope's names as the loop begins
    (``locals()``) first, then the variables of the functions around it, read as they are now
    (a class body looks them up so; in a function, the watch of what an iterator changes as it
    yields reads them: a generator nested in the function may rebind one, ``nonlocal``)."""

    def __init__(
        self, namespace: Mapping[str, Any], readers: tuple[tuple[str, Callable[[], Any]], ...]
    ) -> None:
        super().__init__(readers)
        self.namespace = namespace

    def __getitem__(self, name: str) -> Any:
        if name in self.namespace:
            return self.namespace[name]
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        return name in self.namespace or super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        yield from self.namespace
        yield from (name for name in super().__iter__() if name not in self.namespace)


class LiveNamespace:
    """What the watch of a generator expression's names reads (its ``get``): the function's names
    as they are now, the module's globals for the others."""

    def __init__(self, names: LiveNames, module: Mapping[str, Any]) -> None:
        self._readers = names.readers
        self._module = module
        # The functions' variables among them (a refusal names them so, not as globals).
        self.names = frozenset(names.readers)
        # Each variable's cell, shared by the function and its reader: the watch's test before
        # each item reads it without calling Python code.
        self.cells: dict[str, Any] = {
            name: reader.__closure__[0]
            for name, reader in names.readers.items()
            if reader.__closure__ is not None and reader.__code__.co_freevars == (name,)
        }

    def get(self, name: str, default: Any = None) -> Any:
        reader = self._readers.get(name)
        if reader is None:
            return self._module.get(name, default)
        try:
            return reader()
        except NameError:
            return default
