"""Values a loop hands back that are objects from outside it travel as references.

After ``for i in ParaLoop(...): f = arr[0:]`` the plain program's ``f`` is a
view of ``arr``: writing ``f[0] = 7`` changes ``arr``.  A worker process has
its own copy of ``arr``, so a name bound to it (or to a view of it, or to an
element of a captured list or dict), or a value returned, would come back as
yet another copy.  Instead the worker sends a :class:`Reference` to the
captured name, and the caller puts its own object (or the same view of it) in
its place.  Classes captured by the body (an exception class defined in the
function around the loop) come back as the caller's class the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .guard import ATOMS

__all__ = ["Reference", "captured", "captured_arrays", "refer", "resolve"]

# Elements of a captured list or dict that can come back as references, at most.
_ELEMENTS = 10_000


class Reference:
    """Stands for the captured value ``name`` (or its element ``key``, or a view of it)."""

    __slots__ = ("key", "name", "view")

    def __init__(self, name: str, key: Any = None, view: tuple[Any, ...] | None = None) -> None:
        self.name = name
        # The element of the captured list or dict, as a 1-tuple (None: the value itself).
        self.key = key
        # (offset in bytes, shape, strides, dtype, the array's own strides) of a view of
        # a contiguous captured array.
        self.view = view

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reference, (self.name, self.key, self.view))


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def captured(params: Sequence[str], values: Sequence[Any], skip: frozenset[str]) -> dict[int, Reference]:
    """The captured values (and the elements of captured lists and dicts) that could come back, by id."""
    found: dict[int, Reference] = {}
    for name, value in zip(params, values):
        if name in skip or name.startswith("__paraloop"):
            continue
        if type(value) in ATOMS and not isinstance(value, type):
            continue
        found.setdefault(id(value), Reference(name))
        if isinstance(value, (list, tuple)) and len(value) <= _ELEMENTS:
            elements: Any = enumerate(value)
        elif isinstance(value, dict) and len(value) <= _ELEMENTS:
            elements = value.items()
        else:
            continue
        for key, element in elements:
            if type(element) not in ATOMS:
                found.setdefault(id(element), Reference(name, (key,)))
    return found


def captured_arrays(
    params: Sequence[str], values: Sequence[Any], skip: frozenset[str]
) -> list[tuple[str, Any]]:
    """The captured numpy arrays, by name."""
    return [
        (name, value)
        for name, value in zip(params, values)
        if name not in skip and _is_numpy_array(value) and not name.startswith("__paraloop")
    ]


def _contiguous(array: Any) -> bool:
    flags = array.flags
    return bool(flags.c_contiguous or flags.f_contiguous)


def refer(value: Any, by_id: Mapping[int, Reference], arrays: Sequence[tuple[str, Any]] = ()) -> Any:
    """``value``, or a Reference if it is a captured object, an element of one, or a view of a
    captured array (``arrays``: the captured numpy arrays, by name)."""
    reference = by_id.get(id(value))
    if reference is not None:
        return reference
    if arrays and _is_numpy_array(value) and value.base is not None:
        # numpy shortens a view's chain of bases, so the view is found by its memory.
        start = value.__array_interface__["data"][0]
        for owner, array in arrays:
            if _contiguous(array):
                origin = array.__array_interface__["data"][0]
                if origin <= start < origin + max(array.nbytes, 1):
                    view = (start - origin, value.shape, value.strides, value.dtype.str, array.strides)
                    return Reference(owner, None, view)
    if _is_numpy_array(value) and not value.flags.writeable and value.base is not None:
        # A view of a captured array made read-only for the loop, laid out otherwise: a copy.
        return value.copy()
    return value


def resolve(value: Any, params: Sequence[str], values: Sequence[Any]) -> Any:
    """The caller's object for a Reference (anything else as it is)."""
    if type(value) is not Reference:
        return value
    original = values[list(params).index(value.name)]
    if value.key is not None:
        return original[value.key[0]]
    if value.view is None:
        return original
    offset, shape, strides, dtype, layout = value.view
    import numpy

    if _is_numpy_array(original) and _contiguous(original) and original.strides == tuple(layout):
        return numpy.ndarray(shape, numpy.dtype(dtype), buffer=original, offset=offset, strides=strides)
    # The caller's array is laid out otherwise than the worker's copy: the view's elements,
    # as they are in a copy laid out as the worker's.
    copied = (
        numpy.asfortranarray(original)
        if len(layout) > 1 and layout[0] < layout[-1]
        else numpy.array(original)
    )
    return numpy.ndarray(shape, numpy.dtype(dtype), buffer=copied, offset=offset, strides=strides).copy()
