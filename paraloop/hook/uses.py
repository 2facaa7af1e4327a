"""What a loop body does to names from outside it that paraloop cannot combine on its own.

The rewriter records, per loop, the outer names the body carries from one
iteration to the next (reads before assigning, ``x += e``), mutates in place
(``x.append(e)``, ``x[k] = e``), or whose attributes it changes
(``self.hits += 1``).  Whether that is fine depends on the value at run time
(a :class:`~paraloop.Variable` is combined; a plain list is not), so the
runtime makes the decision when the loop starts, naming the line of the use.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = ["MUTATING_METHODS", "Use", "outer_uses"]

MUTATING_METHODS = frozenset(
    {
        "append", "extend", "insert", "pop", "remove", "clear", "add", "update", "discard",
        "setdefault", "sort", "reverse", "popitem", "appendleft", "extendleft", "popleft",
        "difference_update", "intersection_update", "symmetric_difference_update",
        "__setitem__", "__delitem__", "__iadd__",
    }
)  # fmt: skip

# (name, line, kind, what) with kind one of "carried", "mutated", "attribute".
Use = tuple[str, int, str, str]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _in_order(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under ``node`` roughly in evaluation order (values before their targets)."""
    yield node
    if isinstance(node, ast.Assign):
        children: list[ast.AST] = [node.value, *node.targets]
    elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)):
        children = [c for c in (node.value, node.target) if c is not None]
    elif isinstance(node, ast.AugAssign):
        children = [node.value, node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        children = [node.iter, node.target, *node.body, *node.orelse]
    elif isinstance(node, _SCOPES):
        # A nested function reads outer names when called; count them as reads here.
        children = list(ast.walk(node))[1:]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _in_order(child)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def outer_uses(target: ast.expr, body: list[ast.stmt]) -> list[Use]:
    """The uses of outer names in a loop body that need a Variable (or are refused).

    A name is *outer* when, in evaluation order, the body reads it before it
    assigns it: it then refers to the value from before the loop (or, in a
    plain loop, from the previous iteration).
    """
    first: dict[str, str] = {}
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            first[node.id] = "store"
    ordered = [node for statement in body for node in _in_order(statement)]
    for node in ordered:
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            first.setdefault(node.target.id, "load")
        elif isinstance(node, ast.Name):
            first.setdefault(node.id, "load" if isinstance(node.ctx, ast.Load) else "store")

    def outer(name: str | None) -> bool:
        return name is not None and first.get(name) == "load"

    uses: list[Use] = []
    for node in ordered:
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            if outer(node.target.id):
                uses.append((node.target.id, node.lineno, "carried", _source(node)))
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            if outer(node.id):
                uses.append((node.id, node.lineno, "carried", f"{node.id} = ..."))
            continue
        changed: ast.expr | None = None
        if isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            changed = node
        elif isinstance(node, ast.AugAssign):
            changed = node.target
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATING_METHODS:
                changed = node.func.value
        if changed is None:
            continue
        name = _root_name(changed)
        if name is None or not outer(name):
            continue
        direct = isinstance(changed, ast.Name) or (
            isinstance(changed, ast.Subscript) and isinstance(changed.value, ast.Name)
        )
        kind = "mutated" if direct else "attribute"
        uses.append((name, getattr(node, "lineno", 0), kind, _source(node)))
    return uses
