"""Which names one iteration of a loop body may read before it assigns them.

Such a name refers to a value from outside the iteration: from before the
loop, or from the previous iteration in a plain loop.  That is what makes a
reduction (``total += x`` reads ``total`` first) and what makes a loop-carried
dependency (``if c: last = x`` ... ``print(last)``).  The analysis follows
every path through the statements of one iteration, as a definite-assignment
analysis does.  An inner loop's body is followed from the state on entry, as
its first pass runs (``total += 1`` in an inner loop reads the outer total).
Reads in the bodies of nested functions happen when they are called and are
not counted.
"""

from __future__ import annotations

import ast

from .names import block_names

__all__ = ["read_before_assigned"]

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Flow:
    def __init__(self) -> None:
        self.early: set[str] = set()

    # Expressions, in evaluation order.
    def expression(self, node: ast.AST | None, assigned: set[str]) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                if node.id not in assigned:
                    self.early.add(node.id)
            else:
                assigned.add(node.id)
            return
        if isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                self.expression(default, assigned)
            return  # its body runs when it is called
        if isinstance(node, _COMPREHENSIONS):
            names = block_names([ast.Expr(node)])
            self.early |= names.loads - assigned
            # Its := targets are assigned only if it runs at least once: not definitely.
            return
        if isinstance(node, ast.BoolOp):
            # Only the first operand surely runs; := in the others may not happen.
            self.expression(node.values[0], assigned)
            for operand in node.values[1:]:
                self.expression(operand, set(assigned))
            return
        if isinstance(node, ast.IfExp):
            self.expression(node.test, assigned)
            body, orelse = set(assigned), set(assigned)
            self.expression(node.body, body)
            self.expression(node.orelse, orelse)
            assigned |= body & orelse
            return
        if isinstance(node, ast.NamedExpr):
            self.expression(node.value, assigned)
            self.expression(node.target, assigned)
            return
        for child in ast.iter_child_nodes(node):
            self.expression(child, assigned)

    def store(self, target: ast.AST, assigned: set[str]) -> None:
        """An assignment target: names become assigned; x[k] and x.a read x (and k)."""
        if isinstance(target, ast.Name):
            assigned.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.store(element, assigned)
        elif isinstance(target, ast.Starred):
            self.store(target.value, assigned)
        elif isinstance(target, ast.Attribute):
            self.expression(target.value, assigned)
        elif isinstance(target, ast.Subscript):
            self.expression(target.value, assigned)
            self.expression(target.slice, assigned)

    # Statements: return the names assigned on every path, or None if no path goes on.
    def block(self, statements: list[ast.stmt], assigned: set[str]) -> set[str] | None:
        current: set[str] | None = set(assigned)
        for statement in statements:
            assert current is not None
            current = self.statement(statement, current)
            if current is None:
                return None
        return current

    def loop_body(self, body: list[ast.stmt], assigned: set[str]) -> None:
        # Later passes only see more names assigned: the first pass finds every early read.
        self.block(body, set(assigned))

    def statement(self, node: ast.stmt, assigned: set[str]) -> set[str] | None:
        a = set(assigned)
        if isinstance(node, ast.Assign):
            self.expression(node.value, a)
            for target in node.targets:
                self.store(target, a)
            return a
        if isinstance(node, ast.AugAssign):
            self.expression(node.value, a)
            if isinstance(node.target, ast.Name):
                if node.target.id not in a:
                    self.early.add(node.target.id)
                a.add(node.target.id)
            else:
                self.store(node.target, a)
            return a
        if isinstance(node, ast.AnnAssign):
            self.expression(node.value, a)
            if node.value is not None:
                self.store(node.target, a)
            return a
        if isinstance(node, ast.If):
            self.expression(node.test, a)
            return _merge(self.block(node.body, a), self.block(node.orelse, a))
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.expression(node.iter, a)
            inside = set(a)
            self.store(node.target, inside)
            self.loop_body(node.body, inside)
            return self.block(node.orelse, a)
        if isinstance(node, ast.While):
            self.expression(node.test, a)
            self.loop_body(node.body, a)
            return self.block(node.orelse, a)
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expression(item.context_expr, a)
                if item.optional_vars is not None:
                    self.store(item.optional_vars, a)
            return self.block(node.body, a)
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            body_end = self.block(node.body, a)  # type: ignore[attr-defined]
            ends = [self.block(node.orelse, body_end) if body_end is not None else None]  # type: ignore[attr-defined]
            for handler in node.handlers:  # type: ignore[attr-defined]
                self.expression(handler.type, set(a))
                caught = set(a) | ({handler.name} if handler.name else set())
                ends.append(self.block(handler.body, caught))
            merged: set[str] | None = None
            for end in ends:
                merged = end if merged is None else _merge(merged, end)
            final = self.block(node.finalbody, a)  # type: ignore[attr-defined]
            if merged is None or final is None:
                return None
            return merged | final
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for decorator in node.decorator_list:
                self.expression(decorator, a)
            if isinstance(node, ast.ClassDef):
                for base in [*node.bases, *(k.value for k in node.keywords)]:
                    self.expression(base, a)
            else:
                for default in [*node.args.defaults, *node.args.kw_defaults]:
                    self.expression(default, a)
            a.add(node.name)
            return a
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    a.add(alias.asname or alias.name.partition(".")[0])
            return a
        if isinstance(node, ast.Match):
            self.expression(node.subject, a)
            case_ends: list[set[str] | None] = []
            exhaustive = False
            for case in node.cases:
                bound = set(a)
                for pattern in ast.walk(case.pattern):
                    name = getattr(pattern, "name", None)
                    if isinstance(name, str):
                        bound.add(name)
                self.expression(case.guard, bound)
                case_ends.append(self.block(case.body, bound))
                # case _: (or a bare capture) without a guard matches anything.
                if (
                    isinstance(case.pattern, ast.MatchAs)
                    and case.pattern.pattern is None
                    and case.guard is None
                ):
                    exhaustive = True
            if not exhaustive:
                case_ends.append(a)  # no case matched
            after: set[str] | None = None
            for end in case_ends:
                after = end if after is None else _merge(after, end)
            return after
        if isinstance(node, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
            for child in ast.iter_child_nodes(node):
                self.expression(child, a)
            return None
        if isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    if target.id not in a:
                        self.early.add(target.id)
                    a.discard(target.id)
                else:
                    self.store(target, a)
            return a
        for child in ast.iter_child_nodes(node):
            self.expression(child, a)
        return a


def _merge(first: set[str] | None, second: set[str] | None) -> set[str] | None:
    if first is None:
        return second
    if second is None:
        return first
    return first & second


def read_before_assigned(target: ast.expr, body: list[ast.stmt]) -> set[str]:
    """Names some path through one iteration of ``body`` reads before assigning them."""
    flow = _Flow()
    assigned: set[str] = set()
    flow.store(target, assigned)
    flow.block(body, assigned)
    return flow.early
