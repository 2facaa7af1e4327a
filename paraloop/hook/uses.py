"""How a loop body uses the names it reads from outside the loop.

For every *outer* name (one the body reads before it assigns it) the rewriter
records each use with its form: an update paraloop knows how to combine
(``x += e``, ``x = max(x, e)``, ``x.append(e)``, ``x[k] = e``, ``x[k] += e``,
...), a plain read, an assignment, a mutation it cannot combine
(``x.sort()``), or a change to an attribute (``self.hits += 1``).  Whether a
use is fine depends on the value when the loop starts (a Variable, a plain
int, a list, an object of the user's own class), so :mod:`paraloop.reductions`
decides at run time, and names the line of any use it refuses.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .flow import read_before_assigned

__all__ = ["MUTATING_METHODS", "UPDATE_METHODS", "Use", "outer_uses"]

# Methods whose effect paraloop can combine, as the statement ``x.method(e)``.
UPDATE_METHODS = frozenset({"append", "extend", "add", "update", "appendleft"})
# Methods that change a container in a way that depends on its current state.
MUTATING_METHODS = frozenset(
    {
        "insert", "pop", "remove", "clear", "discard", "setdefault", "sort", "reverse",
        "popitem", "extendleft", "popleft", "rotate", "difference_update",
        "intersection_update", "symmetric_difference_update", "subtract",
        "__setitem__", "__delitem__", "__iadd__", "fill", "resize", "put", "itemset",
        *UPDATE_METHODS,
    }
)  # fmt: skip

# (name, line, form, source of the use)
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


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


class _Classifier(ast.NodeVisitor):
    def __init__(self, outer: set[str]) -> None:
        self.outer = outer
        self.uses: list[Use] = []
        self.statement: ast.AST | None = None

    def name_of(self, node: ast.AST) -> str | None:
        """``x`` or ``x.value`` (a Variable's value) for an outer name ``x``."""
        if isinstance(node, ast.Attribute) and node.attr == "value":
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.outer:
            return node.id
        return None

    def root_of(self, node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) and node.id in self.outer else None

    def add(self, name: str, node: ast.AST, form: str) -> None:
        where = self.statement if self.statement is not None else node
        self.uses.append((name, getattr(node, "lineno", 0), form, _source(where)))

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            outer_statement, self.statement = self.statement, node
            super().visit(node)
            self.statement = outer_statement
        else:
            super().visit(node)

    # Updates paraloop can combine.
    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        op = type(node.op).__name__
        name = self.name_of(node.target)
        if name is not None and not _mentions(node.value, name):
            self.add(name, node, f"aug:{op}")
            self.visit(node.value)
            return
        target = node.target
        if isinstance(target, ast.Subscript) and (name := self.name_of(target.value)) is not None:
            if not _mentions(node.value, name) and not _mentions(target.slice, name):
                self.add(name, node, f"item-aug:{op}")
                self.visit(target.slice)
                self.visit(node.value)
                return
        self.changed(target, node)
        self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if len(node.targets) == 1 and (name := self.name_of(node.targets[0])) is not None:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in ("max", "min")
                and len(value.args) == 2
                and not value.keywords
            ):
                others: list[ast.AST] = [a for a in value.args if self.name_of(a) != name]
                if len(others) == 1 and not _mentions(others[0], name):
                    self.add(name, node, value.func.id)
                    self.visit(others[0])
                    return
            if (
                isinstance(value, ast.BoolOp)
                and len(value.values) == 2
                and sum(self.name_of(v) == name for v in value.values) == 1
            ):
                other = next(v for v in value.values if self.name_of(v) != name)
                if not _mentions(other, name):
                    # found = found or test(x); ok = ok and test(x)
                    self.add(name, node, "or" if isinstance(value.op, ast.Or) else "and")
                    self.visit(other)
                    return
            if isinstance(value, ast.Call) and not _mentions(value.func, name):
                # g = gcd(g, x), a = np.concatenate([a, row]): the user's own combining function.
                spots: list[ast.AST] = []
                for argument in value.args:
                    inner = argument.elts if isinstance(argument, (ast.List, ast.Tuple)) else [argument]
                    spots.extend(inner)
                spots.extend(value.keywords)
                others = [spot for spot in spots if self.name_of(spot) != name]
                if len(spots) - len(others) == 1 and not any(_mentions(o, name) for o in others):
                    self.add(name, node, "apply")
                    self.visit(value.func)
                    for spot in others:
                        self.visit(spot)
                    return
            self.add(name, node, "assign")
            self.visit(value)
            return
        for target in node.targets:
            if isinstance(target, ast.Subscript) and (name := self.name_of(target.value)) is not None:
                if not _mentions(value, name) and not _mentions(target.slice, name):
                    self.add(name, node, "item")
                    self.visit(target.slice)
                    continue
            self.changed(target, node)
        self.visit(value)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and (name := self.name_of(call.func.value)) is not None
            and call.func.attr in UPDATE_METHODS
            and not any(_mentions(a, name) for a in [*call.args, *call.keywords])
        ):
            self.add(name, node, f"call:{call.func.attr}")
            for argument in [*call.args, *call.keywords]:
                self.visit(argument)
            return
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in UPDATE_METHODS
            and isinstance(call.func.value, ast.Subscript)
            and (name := self.name_of(call.func.value.value)) is not None
            and not any(_mentions(a, name) for a in [call.func.value.slice, *call.args, *call.keywords])
        ):
            # groups[key].append(item): grows one entry of a mapping.
            self.add(name, node, f"item-call:{call.func.attr}")
            for argument in [call.func.value.slice, *call.args, *call.keywords]:
                self.visit(argument)
            return
        self.generic_visit(node)

    # Everything else.
    def changed(self, target: ast.AST, statement: ast.AST) -> None:
        """A store into ``target`` that is not a recognised update."""
        if isinstance(target, ast.Name):
            if target.id in self.outer:
                self.add(target.id, statement, "assign")
            return
        if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            for element in ast.iter_child_nodes(target):
                self.changed(element, statement)
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            root = self.root_of(target)
            if root is not None:
                direct = isinstance(target, ast.Subscript) and self.name_of(target.value) == root
                self.add(root, statement, "mutate:item" if direct else "attribute")
            for child in ast.iter_child_nodes(target):
                if not isinstance(child, ast.expr_context):
                    self.visit(child)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            root = self.root_of(func.value)
            if root is not None:
                direct = self.name_of(func.value) == root
                self.add(root, node, f"mutate:{func.attr}" if direct else "attribute")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.changed(target, node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.outer:
            self.add(node.id, node, "read" if isinstance(node.ctx, ast.Load) else "assign")

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.changed(node.target, node)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.changed(node.target, node)


def outer_uses(target: ast.expr, body: list[ast.stmt]) -> list[Use]:
    """Every use of every outer name in a loop body, with its form.

    A name is *outer* when some path through one iteration reads it before
    assigning it (see :mod:`paraloop.hook.flow`): it then refers to the value
    from before the loop, or, in a plain loop, from the previous iteration.
    """
    classifier = _Classifier(read_before_assigned(target, body))
    for statement in body:
        classifier.visit(statement)
    # Names the body only reads are inputs: nothing to decide about them.
    changed = {name for name, _line, form, _source in classifier.uses if form != "read"}
    return [use for use in classifier.uses if use[0] in changed]
