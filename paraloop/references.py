"""Values a loop hands back that are objects from outside it travel as references.

After ``for i in ParaLoop(...): f = arr[0:]`` the plain program's ``f`` is a
view of ``arr``: writing ``f[0] = 7`` changes ``arr``.  A worker process has
its own copy of ``arr``, so a name bound to it (or to a view of it), or a
value returned, would come back as yet another copy.  Instead the worker sends
a :class:`Reference` to the captured name, and the caller puts its own object
(or the same view of it) in its place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .guard import ATOMS

__all__ = ["Reference", "captured", "captured_arrays", "refer", "resolve"]


class Reference:
    """Stands for the captured value ``name`` (with ``view``: a view of that array)."""

    __slots__ = ("name", "view")

    def __init__(self, name: str, view: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None) -> None:
        self.name = name
        # (offset in bytes, shape, strides) of a view of a C-contiguous array.
        self.view = view

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reference, (self.name, self.view))


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def captured(params: Sequence[str], values: Sequence[Any], skip: frozenset[str]) -> dict[int, str]:
    """The captured values that could come back, by id."""
    found: dict[int, str] = {}
    for name, value in zip(params, values):
        if name not in skip and type(value) not in ATOMS and not name.startswith("__paraloop"):
            found.setdefault(id(value), name)
    return found


def refer(value: Any, by_id: Mapping[int, str], arrays: Sequence[tuple[str, Any]] = ()) -> Any:
    """``value``, or a Reference if it is a captured object or a view of a captured array.

    ``arrays`` are the captured numpy arrays, by name.
    """
    name = by_id.get(id(value))
    if name is not None:
        return Reference(name)
    if arrays and _is_numpy_array(value) and value.base is not None:
        # numpy shortens a view's chain of bases, so the view is found by its memory.
        start = value.__array_interface__["data"][0]
        for owner, array in arrays:
            if array.flags.c_contiguous and array.dtype == value.dtype:
                origin = array.__array_interface__["data"][0]
                if origin <= start < origin + max(array.nbytes, 1):
                    return Reference(owner, (start - origin, value.shape, value.strides))
    return value


def captured_arrays(
    params: Sequence[str], values: Sequence[Any], skip: frozenset[str]
) -> list[tuple[str, Any]]:
    """The captured numpy arrays, by name."""
    return [
        (name, value)
        for name, value in zip(params, values)
        if name not in skip and _is_numpy_array(value) and not name.startswith("__paraloop")
    ]


def resolve(value: Any, params: Sequence[str], values: Sequence[Any]) -> Any:
    """The caller's object for a Reference (anything else as it is)."""
    if type(value) is not Reference:
        return value
    original = values[list(params).index(value.name)]
    if value.view is None:
        return original
    offset, shape, strides = value.view
    if not (_is_numpy_array(original) and original.flags.c_contiguous):
        # Not laid out as the worker's copy: the view's elements, as a copy.
        return _copy_of_view(original, offset, shape, strides)
    import numpy

    start = original.reshape(-1)[offset // original.itemsize :]
    return numpy.lib.stride_tricks.as_strided(start, shape=shape, strides=strides)


def _copy_of_view(original: Any, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
    import numpy

    contiguous = numpy.ascontiguousarray(original)
    start = contiguous.reshape(-1)[offset // contiguous.itemsize :]
    return numpy.lib.stride_tricks.as_strided(start, shape=shape, strides=strides).copy()
