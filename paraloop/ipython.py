"""``%load_ext paraloop``: rewrite the ParaLoop loops of every later IPython or Jupyter cell.

IPython hands each cell's syntax tree to the registered AST transformers
before compiling it.  A transformer that raises anything but
``InputRejected`` is removed for good, so a loop paraloop refuses is reported
as ``InputRejected`` (shown as the cell's error, with the cell's line).  The
cell's final expression is left last, so ``Out[]`` shows what it would.
Functions and classes defined in earlier cells live in ``__main__`` and
travel to the workers by value, under every start method.
"""

from __future__ import annotations

import ast
from typing import Any

from .errors import UnsupportedLoopError
from .hook.rewriter import rewrite

__all__ = ["ParaLoopTransformer", "load_ipython_extension", "unload_ipython_extension"]


class ParaLoopTransformer(ast.NodeTransformer):
    """Rewrites the ParaLoop loops of a cell, knowing what earlier cells bound."""

    def __init__(self, shell: Any) -> None:
        super().__init__()
        self.shell = shell

    def visit_Module(self, node: ast.Module) -> ast.Module:
        from IPython.core.error import InputRejected

        try:
            rewrite(node, "<cell>", ast.unparse(node).splitlines(), self.shell.user_ns)
        except UnsupportedLoopError as error:
            raise InputRejected(f"paraloop: line {error.lineno} of the cell: {error.msg}") from None
        ast.fix_missing_locations(node)
        return node


def _registered(shell: Any) -> list[ParaLoopTransformer]:
    return [t for t in shell.ast_transformers if isinstance(t, ParaLoopTransformer)]


def load_ipython_extension(shell: Any) -> None:
    """Called by ``%load_ext paraloop``: start rewriting later cells (once)."""
    if not _registered(shell):
        shell.ast_transformers.append(ParaLoopTransformer(shell))


def unload_ipython_extension(shell: Any) -> None:
    """Called by ``%unload_ext paraloop``: stop rewriting cells."""
    for transformer in _registered(shell):
        shell.ast_transformers.remove(transformer)
