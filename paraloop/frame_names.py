"""What ``locals()``, ``vars()``, ``dir()`` and ``eval()``/``exec()`` without namespaces show in
the body of a loop in a function.

In the plain loop they read the function's frame: its variables, the loop's own names.  The
rewritten body runs in a worker function of its own, whose frame holds the names the body spells
out and paraloop's (``__paraloop_chunk__``...).  So the rewriter hands such a body every variable
of the function (as it hands it the names it reads) and turns those calls into calls that read
:func:`frame_names`: the function's names in the plain frame's order, the worker's own left out.

A name the loop accumulates (``total += x``, ``out.append(x)``) holds, inside an iteration, only
what the chunk so far added (on a worker) where the plain loop has every earlier iteration's: it
is there, as in the plain frame, but as an :class:`Accumulated` stand-in whose use (printing it,
formatting it, arithmetic) raises :class:`~paraloop.ParaLoopError` naming it, as reading it
directly in the body is refused when the loop starts.  Example::

    def report(rows):
        name = "run"
        out = []
        for i in ParaLoop(range(3)):
            out.append("{name}-{i}".format(**locals()))   # name and i, as in the plain loop
        return out
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from .errors import ParaLoopError

__all__ = ["Accumulated", "frame_names", "sorted_names"]

_RESERVED = "__paraloop"


class Accumulated:
    """Stands for a name the loop accumulates in what :func:`frame_names` shows: its value inside
    an iteration is not the plain loop's, so any use of it raises ParaLoopError."""

    __slots__ = ("name", "where")

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (Accumulated, (self.name, self.where))

    def _refuse(self, *args: Any) -> NoReturn:
        raise ParaLoopError(
            f"{self.where}: the body read {self.name!r} through locals(), vars() or eval(); the loop "
            f"accumulates {self.name!r}, and inside an iteration its value is not the plain loop's "
            "(the iterations before it ran elsewhere). Read it after the loop, or keep what an "
            "iteration needs in a name of its own"
        )

    def __repr__(self) -> str:
        self._refuse()

    __str__ = __format__ = __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __index__ = __int__ = __float__ = _refuse
    __call__ = _refuse

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            # What pickle, copy and hasattr() probe for: absent, as on any object.
            raise AttributeError(attribute)
        self._refuse()

    __hash__ = object.__hash__


# Arithmetic on the stand-in, reflected and in place too, and the unary operators.
_OPERATORS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift",
              "rshift", "and", "xor", "or")  # fmt: skip
for _operator in _OPERATORS:
    for _spelled in (f"__{_operator}__", f"__r{_operator}__", f"__i{_operator}__"):
        setattr(Accumulated, _spelled, Accumulated._refuse)
for _spelled in ("__neg__", "__pos__", "__abs__", "__invert__", "__round__"):
    setattr(Accumulated, _spelled, Accumulated._refuse)


def frame_names(
    names: Mapping[str, Any], order: tuple[str, ...], accumulated: tuple[str, ...], where: str
) -> dict[str, Any]:
    """The worker function's ``names`` (its ``locals()``) as the plain function's frame shows
    them: in ``order`` (the function's variables as its code lists them), paraloop's own left
    out, each name in ``accumulated`` an :class:`Accumulated` stand-in (``where``: the loop's
    file and line)."""
    shown: dict[str, Any] = {}
    for name in order:
        if name in names:
            shown[name] = names[name]
    for name, value in names.items():
        if name not in shown and not name.startswith(_RESERVED):
            shown[name] = value
    for name in accumulated:
        if name in shown:
            shown[name] = Accumulated(name, where)
    return shown


def sorted_names(shown: dict[str, Any]) -> list[str]:
    """``dir()`` in the body: the plain frame's names (:func:`frame_names`), sorted."""
    return sorted(shown)
