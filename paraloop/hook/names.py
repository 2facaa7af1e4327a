"""Which names a block of code reads and binds, scope by scope.

The rewriter needs, for a loop body, the names it reads (they must reach the
worker) and the names it binds (they travel back); for the function around a
loop, its local names.  Nested functions, lambdas, classes and comprehensions
are scopes of their own: only their free names count for the block around them.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["BlockNames", "block_names", "function_locals", "module_bound", "own_stores"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass
class BlockNames:
    """Names read and bound by a block, seen from the scope the block belongs to."""

    loads: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    global_decls: set[str] = field(default_factory=set)
    nonlocal_decls: set[str] = field(default_factory=set)


class _Collector(ast.NodeVisitor):
    """Collects the names of one scope; nested scopes contribute their free names."""

    def __init__(self) -> None:
        self.names = BlockNames()

    # Bindings and reads.
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.names.loads.add(node.id)
        else:
            self.names.stores.add(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.names.loads.add(node.target.id)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.names.stores.add(alias.asname or alias.name.partition(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.names.stores.add(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.names.stores.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.names.stores.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.names.stores.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.names.stores.add(node.rest)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.names.global_decls.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.names.nonlocal_decls.update(node.names)

    # Nested scopes: what is evaluated here, plus the nested scope's free names.
    def _outer_parts_of_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)
        if node.returns is not None:
            self.visit(node.returns)

    def _absorb(self, inner: BlockNames, local: set[str]) -> None:
        self.names.loads |= (inner.loads | inner.stores) - local - inner.global_decls
        self.names.stores |= inner.nonlocal_decls & inner.stores

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.names.stores.add(node.name)
        self._outer_parts_of_function(node)
        inner = block_names(node.body)
        self._absorb(inner, function_locals(node, inner))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        inner = _collect([node.body])
        self._absorb(inner, _parameters(node.args) | inner.stores)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.names.stores.add(node.name)
        for expression in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expression)
        inner = block_names(node.body)
        self._absorb(inner, inner.stores - inner.nonlocal_decls - inner.global_decls)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        generators = node.generators
        # The first iterable is evaluated in the enclosing scope.
        self.visit(generators[0].iter)
        inner = _Collector()
        for index, generator in enumerate(generators):
            inner.visit(generator.target)
            if index:
                inner.visit(generator.iter)
            for condition in generator.ifs:
                inner.visit(condition)
        if isinstance(node, ast.DictComp):
            inner.visit(node.key)
            inner.visit(node.value)
        else:
            inner.visit(node.elt)
        targets: set[str] = set()
        for generator in generators:
            targets |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
        walrus = {n.target.id for n in _walk_same_scope(node) if isinstance(n, ast.NamedExpr)}
        # Assignment expressions in a comprehension bind in the enclosing scope.
        self.names.stores |= walrus
        self.names.loads |= (inner.names.loads | inner.names.stores) - targets - walrus
        self.names.loads |= inner.names.loads & walrus

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension


def _walk_same_scope(node: ast.AST) -> list[ast.AST]:
    """The nodes of ``node`` without descending into nested functions, lambdas and classes."""
    found: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        found.append(child)
        if not isinstance(child, _SCOPES):
            stack.extend(ast.iter_child_nodes(child))
    return found


def _parameters(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {arg.arg for arg in every if arg is not None}


def _collect(nodes: Sequence[ast.AST]) -> BlockNames:
    collector = _Collector()
    for node in nodes:
        collector.visit(node)
    return collector.names


def block_names(body: list[ast.stmt]) -> BlockNames:
    """The names a list of statements reads and binds in its own scope."""
    return _collect(body)


def function_locals(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, names: BlockNames | None = None
) -> set[str]:
    """Local names of a function: parameters and bindings, less global/nonlocal ones."""
    if names is None:
        names = _collect(node.body) if isinstance(node.body, list) else _collect([node.body])
    return (_parameters(node.args) | names.stores) - names.global_decls - names.nonlocal_decls


def module_bound(tree: ast.Module) -> set[str]:
    """Names bound at module level, and names functions declare global."""
    names = block_names(tree.body)
    bound = set(names.stores)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            bound.update(node.names)
    return bound


class _OwnCollector(_Collector):
    """As :class:`_Collector`, without the stores nested functions make through ``nonlocal``."""

    def _absorb(self, inner: BlockNames, local: set[str]) -> None:
        self.names.loads |= (inner.loads | inner.stores) - local - inner.global_decls


def own_stores(body: list[ast.stmt]) -> set[str]:
    """The names a block binds itself (a nested function's ``nonlocal`` store is not one)."""
    collector = _OwnCollector()
    for node in body:
        collector.visit(node)
    return collector.names.stores
