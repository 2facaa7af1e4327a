"""What ``locals()``, ``vars()``, ``dir()`` and ``eval()``/``exec()`` without namespaces show in
a loop's body (docs/semantics.md, "What a body's frame shows").

In the plain loop they read the frame the loop runs in: a function's variables, the loop's own
names.  The rewritten body runs in a worker function of its own, whose frame holds the names the
body spells out and paraloop's (``__paraloop_chunk__``...).  So the rewriter hands such a body
every variable of the function (as it hands it the names it reads) and turns those calls into
calls that read :func:`frame_names`: the function's names in the plain frame's order, the
worker's own left out.  At the top of a module, ``eval`` and ``exec`` read :func:`module_frame`:
the loop's names, which the plain loop has as globals, and ``exec`` stores in the module.

Two stand-ins take the place of values an iteration cannot be given; any use of one raises
:class:`~paraloop.ParaLoopError` naming it.  A name the loop accumulates (``total += x``,
``out.append(x)``) holds, inside an iteration, only what the chunk so far added (on a worker),
where the plain loop has every earlier iteration's: :class:`Accumulated`, as reading it directly
in the body is refused when the loop starts.  A variable the body reads only through its frame
that cannot go to a worker (an open file, a lock, an iterator): :class:`Withheld`, rather than a
refusal of a loop that does not use it.  Example::

    def report(rows):
        name = "run"
        out = []
        for i in ParaLoop(range(3)):
            out.append("{name}-{i}".format(**locals()))   # name and i, as in the plain loop
        return out
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import ParaLoopError
from .items import bound_to_this_process, is_file

__all__ = ["Accumulated", "StandIn", "Withheld", "frame_names", "module_frame", "sorted_names", "withheld"]

_RESERVED = "__paraloop"


class StandIn:
    """Stands, in what :func:`frame_names` shows, for a name whose value an iteration cannot be
    given: any use of it raises ParaLoopError (its ``message``)."""

    # Spelled so that no attribute a program reads (a file's .name) is one of them.
    __slots__ = ("_paraloop_name", "_paraloop_where")

    def __init__(self, name: str, where: str) -> None:
        self._paraloop_name = name
        self._paraloop_where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._paraloop_name, self._paraloop_where))

    def message(self) -> str:
        raise NotImplementedError

    def _refuse(self, *args: Any) -> NoReturn:
        raise ParaLoopError(
            f"{self._paraloop_where}: the body read {self._paraloop_name!r} through locals(), vars() "
            f"or eval(); {self.message()}"
        )

    def __repr__(self) -> str:
        self._refuse()

    __str__ = __format__ = __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __index__ = __int__ = __float__ = _refuse
    __enter__ = __exit__ = _refuse

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            # What pickle, copy and hasattr() probe for: absent, as on any object.
            raise AttributeError(attribute)
        self._refuse()

    __hash__ = object.__hash__


class Accumulated(StandIn):
    """A name the loop accumulates: its value inside an iteration is not the plain loop's."""

    __slots__ = ()

    def message(self) -> str:
        return (
            f"the loop accumulates {self._paraloop_name!r}, and inside an iteration its value is not "
            "the plain loop's (the iterations before it ran elsewhere). Read it after the loop, or "
            "keep what an iteration needs in a name of its own"
        )


class Withheld(StandIn):
    """A variable of the function the body names only through its frame, whose value cannot go to
    a worker (an open file, a lock, an iterator): the loop runs without it."""

    __slots__ = ()

    def message(self) -> str:
        return (
            f"{self._paraloop_name!r}, a variable of the function that the body does not name, holds what a "
            "worker cannot be given (an open file, a lock, an iterator), so the iterations have it "
            f"only in name. Name it in the body, or read what the body needs from it before the loop "
            "into a name of its own"
        )


def withheld(params: tuple[str, ...], values: list[Any], seen: tuple[str, ...], where: str) -> list[Any]:
    """``values`` of the worker's ``params`` with those of the names in ``seen`` (read only through
    the frame) that cannot go to a worker replaced by :class:`Withheld` stand-ins: the body that
    calls ``locals()`` does not need them, and they would refuse the loop."""
    changed = list(values)
    for index, name in enumerate(params):
        if name in seen:
            value = changed[index]
            if bound_to_this_process(value) or is_file(value) or hasattr(type(value), "__next__"):
                changed[index] = Withheld(name, where)
    return changed


# Arithmetic on the stand-in, reflected and in place too, and the unary operators.
_OPERATORS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift",
              "rshift", "and", "xor", "or")  # fmt: skip
for _operator in _OPERATORS:
    for _spelled in (f"__{_operator}__", f"__r{_operator}__", f"__i{_operator}__"):
        setattr(StandIn, _spelled, StandIn._refuse)
for _spelled in ("__neg__", "__pos__", "__abs__", "__invert__", "__round__"):
    setattr(StandIn, _spelled, StandIn._refuse)


class _Frame(dict):  # type: ignore[type-arg]
    """What :func:`frame_names` and :func:`module_frame` return: a dict whose stores
    (``exec("y = 2")``) reach the worker's own ``locals()`` too, where the iteration's next call
    finds them, as the plain frame's dict keeps them (up to Python 3.12; from 3.13 ``locals()`` is
    a new snapshot each time, in both), and, at the top of a module, the module's globals."""

    __slots__ = ("_into",)
    _into: tuple[dict[str, Any], ...]

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        for namespace in self._into:
            namespace[name] = value

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        for namespace in self._into:
            namespace.pop(name, None)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy, or an iteration's result (return locals()), is the dict the plain loop's is.
        return (dict, (dict(self),))


def frame_names(
    names: dict[str, Any],
    order: tuple[str, ...],
    accumulated: tuple[str, ...],
    where: str,
    hidden: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The worker function's ``names`` (its ``locals()``) as the plain function's frame shows
    them: in ``order`` (the function's variables as its code lists them), paraloop's own and
    ``hidden`` (globals the worker has as parameters) left out, each name in ``accumulated`` an
    :class:`Accumulated` stand-in (``where``: the loop's file and line)."""
    shown = _Frame()
    shown._into = (names,)
    for name in order:
        if name in names:
            dict.__setitem__(shown, name, names[name])
    # The worker's other names (what exec() stored there), but the module's globals the body
    # names, which the worker has as parameters and the plain frame as globals.
    for name, value in names.items():
        if name not in shown and name not in hidden and not name.startswith(_RESERVED):
            dict.__setitem__(shown, name, value)
    for name in accumulated:
        if name in shown:
            dict.__setitem__(shown, name, Accumulated(name, where))
    return shown


def module_frame(
    names: dict[str, Any], module: dict[str, Any], accumulated: tuple[str, ...], where: str
) -> dict[str, Any]:
    """The worker function's ``names`` (the loop's own, paraloop's left out) for eval() and exec()
    in a body at the top of a module, its stores going to ``module`` (the body's globals); each
    name in ``accumulated`` an :class:`Accumulated` stand-in."""
    # The worker's own locals too: the iteration's next eval() finds a store there (up to 3.12)
    # rather than in the module, which iterations beside it on threads rebind.
    frame = _Frame()
    frame._into = (module, names)
    for name, value in names.items():
        if not name.startswith(_RESERVED):
            dict.__setitem__(frame, name, Accumulated(name, where) if name in accumulated else value)
    return frame


def sorted_names(shown: dict[str, Any]) -> list[str]:
    """``dir()`` in the body: the plain frame's names (:func:`frame_names`), sorted."""
    return sorted(shown)
