"""What the rewriter found about one loop, in the form the runtime reads it.

:mod:`paraloop.hook.uses` records each use of a name from outside a loop body
as a :class:`Use`, whose :class:`Form` says what the statement does to the name
(``total += x`` is ``Form(Kind.AUG, "Add")``, ``groups[k].append(x)`` is
``Form(Kind.ITEM_CALL, "append")``).  Whether a form can be combined depends on
the value the name holds when the loop starts, so :mod:`paraloop.reductions`
decides when the loop runs, from a table keyed by these forms.

The generated code spells one :class:`LoopPlan` per loop as a tuple of constants
(:func:`read` says how) and hands it to :func:`paraloop.runtime.run` (or
:func:`paraloop.runtime.comprehension`) each time the loop runs; the runtime reads it
into a ``LoopPlan`` the first time.

The hook imports this module when it rewrites one, so it imports nothing of
paraloop's runtime, and its records are named tuples: immutable and hashable as
frozen dataclasses would be, at half the import time (the ``dataclass``
decorator compiles each class's methods) and with hashing in C, which the
strategy table does for every form of every loop that starts.
"""

# No "from __future__ import annotations": typing.NamedTuple turns string annotations into
# ForwardRefs, compiling each, and the runtime's import took 1.1 ms longer for it (14.7 against
# 13.6 ms, medians of 21 fresh processes).  Every name the annotations use is defined above them.

import enum
from typing import Any, NamedTuple

__all__ = ["Form", "Kind", "LoopPlan", "Use", "read"]


class Kind(enum.Enum):
    """What a statement does to a name from outside the loop body.

    ``x`` is the name, ``k`` an index or key, ``i`` the iteration's own index
    (a name the loop target binds and the body never rebinds).  The
    :attr:`Form.detail` a kind carries is named in brackets.
    """

    READ = "read"  # any other mention of x
    OWN_READ = "own-read"  # x[i]
    ASSIGN = "assign"  # x = e (e not an update of x), for x in ..., del x
    ATTRIBUTE = "attribute"  # x.a = e, x.a.sort(), x[k][j] = e: below x's own items
    MUTATE = "mutate"  # [method] x.sort(), x.pop(); ["item"] del x[k], x[k] = e that reads x
    APPLY = "apply"  # x = f(x, e): the user's own combining function
    AUG = "aug"  # [operator] x += e
    BINOP = "binop"  # [operator] x = x + e, x = x * a * b
    COMMUTED = "commuted"  # [operator] x = e + x (the same as x += e for numbers only)
    ITEM_AUG = "item-aug"  # [operator] x[k] += e
    OWN_AUG = "own-aug"  # [operator] x[i] += e
    ITEM_GET = "item-get"  # ["Add"] x[k] = x.get(k, 0) + e
    OWN_UPDATE = "own-update"  # x[i] = f(x[i])
    ITEM = "item"  # x[k] = e
    OWN_ITEM = "own-item"  # x[i] = e
    CALL = "call"  # [method] x.append(e), x.update(e)
    ITEM_CALL = "item-call"  # [method] x[k].append(e), x.setdefault(k, []).append(e)
    MAX = "max"  # x = max(x, e)
    MIN = "min"  # x = min(x, e)
    OR = "or"  # x = x or e
    AND = "and"  # x = x and e
    OR_LAST = "or-last"  # x = e or x: the last value that decided
    AND_LAST = "and-last"  # x = e and x
    SCRATCH = "scratch"  # every iteration overwrites all of x first (x[:] = e, x.fill(e))
    INVOKE = "invoke"  # [dotted name] random.random(), os.chdir(p): x is the first part

    # A member is its only instance and equal only to itself: its identity is a hash, in C,
    # where Enum's own hashes its name in Python (most of the time of deciding a loop's
    # strategies went there).
    __hash__ = object.__hash__


class Form(NamedTuple):
    """A kind of use and its detail: the operator (``"Add"``, as :mod:`ast` names it), the
    method, or the dotted name called; empty for kinds without one."""

    kind: Kind
    detail: str = ""


class Use(NamedTuple):
    """One use of an outer name: the line it is on and its statement's source, shortened, for
    the messages that refuse it."""

    name: str
    line: int
    form: Form
    source: str


class LoopPlan(NamedTuple):
    """What the generated code tells the runtime about one loop or comprehension.

    ``kind`` is ``"for"``, or the comprehension's: ``"list"``, ``"set"``,
    ``"dict"``, ``"generator"``.  Names are as the compiler spells them in the
    loop's scope (mangled inside a class).
    """

    line: int  # of the ``for`` (of a comprehension: its first iterable), for messages
    name: str = "<module>"  # the function the loop is written in, for tracebacks
    kind: str = "for"
    local: tuple[str, ...] = ()  # captured names that are variables of the enclosing functions
    stored: tuple[str, ...] = ()  # names the body binds
    after: tuple[str, ...] = ()  # of those, the ones code after the loop may read
    wrapped: tuple[str, ...] = ()  # names the body uses as Variables (``v.value``)
    uses: tuple[Use, ...] = ()  # each use of each outer name
    # Captured names the body reads only through its frame (locals(), eval()): paraloop.frame_names.
    seen: tuple[str, ...] = ()


# The plans read so far, by their spelling (equal spellings are equal plans).
_READ: dict[tuple[Any, ...], LoopPlan] = {}
# Generated code compiled again and again (an IPython session's cells) adds plans: past this
# many, the ones read so far are forgotten and read again when their loops run.
_KEPT = 4096


def read(spelled: LoopPlan | tuple[Any, ...]) -> LoopPlan:
    """The plan the generated code spells as constants, read once.

    ``spelled`` holds the fields in their order, its uses as ``(name, line, kind's value,
    detail, source)``::

        >>> use = ("total", 4, "aug", "Add", "total += i")
        >>> plan = read((3, "f", "for", (), ("i", "total"), (), (), (use,)))
        >>> plan.stored, plan.uses[0].form
        (('i', 'total'), Form(kind=<Kind.AUG: 'aug'>, detail='Add'))

    A ``LoopPlan`` is returned as it is.
    """
    if type(spelled) is LoopPlan:
        return spelled
    plan = _READ.get(spelled)
    if plan is None:
        fields: tuple[Any, ...] = spelled
        line, name, kind, local, stored, after, wrapped, uses, *seen = fields
        plan = LoopPlan(
            line,
            name,
            kind,
            local,
            stored,
            after,
            wrapped,
            tuple(Use(who, at, Form(Kind(what), detail), source) for who, at, what, detail, source in uses),
            *seen,
        )
        if len(_READ) >= _KEPT:
            _READ.clear()
        _READ[spelled] = plan
    return plan
