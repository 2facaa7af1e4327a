"""The rewriter against real code nobody here wrote: every module of the standard library.

Two properties. A module without ParaLoop compiles to exactly the code a plain
compile gives (the rewriter is a no-op). And with every ``for`` loop of the
module turned into a ``ParaLoop`` loop, the rewriter either produces code that
compiles or refuses the loop with UnsupportedLoopError; it never crashes.
"""

from __future__ import annotations

import ast
import marshal
import math
import sysconfig
import warnings
from pathlib import Path
from types import CodeType

import pytest

from paraloop import UnsupportedLoopError
from paraloop.hook.loader import compile_rewritten
from paraloop.hook.rewriter import rewrite

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FILES = sorted(
    p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts
)


def read(path: Path) -> tuple[bytes, CodeType] | None:
    """The file's source and its plain compile, or None for files that are not valid Python."""
    source = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return source, compile(source, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None  # test data of the stdlib that is not valid Python on purpose


class _EveryLoopParallel(ast.NodeTransformer):
    """Turns ``for t in x:`` into ``for t in ParaLoop(x):``."""

    def visit_For(self, node: ast.For) -> ast.For:
        self.generic_visit(node)
        node.iter = ast.Call(func=ast.Name("ParaLoop", ast.Load()), args=[node.iter], keywords=[])
        return node


def _normal(value: object) -> object:
    """A code object's contents, with NaN constants made comparable (nan != nan)."""
    if isinstance(value, CodeType):
        return (
            value.co_code,
            value.co_names,
            value.co_varnames,
            value.co_freevars,
            value.co_cellvars,
            value.co_flags,
            value.co_firstlineno,
            value.co_name,
            list(value.co_lines()),
            tuple(_normal(const) for const in value.co_consts),
        )
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, complex) and (math.isnan(value.real) or math.isnan(value.imag)):
        return ("complex-nan", repr(value))
    if isinstance(value, frozenset):
        # A set's iteration order is not part of the code.
        return ("frozenset", tuple(sorted((_normal(v) for v in value), key=repr)))
    if isinstance(value, tuple):
        return ("tuple", tuple(_normal(v) for v in value))
    return (type(value).__name__, value)


def test_the_corpus_is_there() -> None:
    """The standard library was found (guards against testing nothing)."""
    assert len(FILES) > 500


# Each test's modules in four parts, tests of their own: the parts run side by side (xdist),
# not one long test at the end of the run.  Under every Python the first two parts run (every
# fourth module for the no-op, every eighth with every loop parallel); the others are marked
# once (tests/conftest.py): py313 runs them all.
SHARDS = [0, 1, *(pytest.param(shard, marks=pytest.mark.once) for shard in (2, 3))]
SHARD_COUNT = len(SHARDS)


@pytest.mark.parametrize("shard", SHARDS)
def test_rewriter_is_a_no_op_without_paraloop(shard: int) -> None:
    """Every other stdlib module compiles to the same code through the rewriter as plainly
    (every one would take 18 s on each Python of the matrix)."""
    checked = 0
    for path in FILES[2 * shard :: 2 * SHARD_COUNT]:
        found = read(path)
        if found is None:
            continue
        source, plain = found
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rewritten = compile_rewritten(source, str(path))
        # The same bytes mean the same code; otherwise compare structurally.
        if marshal.dumps(rewritten) != marshal.dumps(plain):
            assert _normal(rewritten) == _normal(plain), path
        checked += 1
    assert checked > 250 / SHARD_COUNT


@pytest.mark.parametrize("shard", SHARDS)
def test_rewriter_never_crashes_on_real_loops(shard: int) -> None:
    """With every for loop made a ParaLoop loop, each module compiles or is refused clearly.

    Every fourth module, to keep the suite fast on every Python of the matrix.
    """
    refused = compiled = 0
    for path in FILES[4 * shard :: 4 * SHARD_COUNT]:
        found = read(path)
        if found is None:
            continue
        source = found[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
            tree = _EveryLoopParallel().visit(tree)
            position = 0
            while position < len(tree.body) and (
                (
                    isinstance(tree.body[position], ast.ImportFrom)
                    and tree.body[position].module == "__future__"
                )
                or (position == 0 and isinstance(tree.body[0], ast.Expr))
            ):
                position += 1
            tree.body.insert(position, ast.ImportFrom("paraloop", [ast.alias("ParaLoop")], 0))
            ast.fix_missing_locations(tree)
            try:
                rewrite(tree, str(path), source.decode("utf-8", "replace").splitlines())
            except UnsupportedLoopError as error:
                assert error.filename == str(path) and error.lineno, path
                refused += 1
                continue
            try:
                compile(tree, str(path), "exec", dont_inherit=True)
            except SyntaxError as error:
                pytest.fail(f"{path}: rewritten code does not compile: {error}")
        compiled += 1
    assert compiled > 100 / SHARD_COUNT
