"""Golden tests: the source each file in tests/golden/ becomes, compared with its .expected twin.

Set PARALOOP_UPDATE_GOLDEN=1 to rewrite the .expected files after an intended change
(and bump paraloop.hook.rewriter.REWRITER_VERSION: the generated code is part of the cache key).
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

import paraloop
from paraloop.hook.rewriter import rewrite

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted(p for p in GOLDEN.glob("*.py"))


@pytest.mark.parametrize("source_path", INPUTS, ids=[p.stem for p in INPUTS])
def test_rewritten_source_matches_golden(source_path: Path) -> None:
    """Each golden input rewrites to exactly the expected source, the same way every time."""
    source = source_path.read_bytes()
    shown = paraloop.show(source, source_path.name)
    assert shown == paraloop.show(source, source_path.name), "rewriting is not deterministic"
    expected_path = source_path.with_suffix(".expected")
    if os.environ.get("PARALOOP_UPDATE_GOLDEN"):
        expected_path.write_text(shown)
    expected = expected_path.read_text()
    # The same code on every version; ast.unparse's spelling changed after 3.10.
    assert ast.dump(ast.parse(shown)) == ast.dump(ast.parse(expected))
    if sys.version_info >= (3, 11):
        assert shown == expected
    compile(shown, source_path.name, "exec", dont_inherit=True)


def test_module_without_paraloop_is_left_alone() -> None:
    """The rewriter changes nothing in a module that does not use ParaLoop."""
    source = (GOLDEN / "unchanged.py").read_text()
    tree = ast.parse(source)
    before = ast.dump(tree, include_attributes=True)
    assert rewrite(tree, "unchanged.py", source.splitlines()) == 0
    assert ast.dump(tree, include_attributes=True) == before


def test_generated_nodes_point_at_the_loop_and_body_keeps_its_lines() -> None:
    """Generated statements carry the loop's line; the body keeps the user's lines."""
    source = (GOLDEN / "module_level.py").read_text()
    tree = ast.parse(source)
    rewrite(tree, "module_level.py", source.splitlines())
    loop_line = next(n for n, text in enumerate(source.splitlines(), 1) if "ParaLoop(range(100)" in text)
    body_line = next(n for n, text in enumerate(source.splitlines(), 1) if "square = i * i" in text)
    worker = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    assert worker.lineno == loop_line
    assigns = [
        n for n in ast.walk(worker) if isinstance(n, ast.Assign) and ast.unparse(n) == "square = i * i"
    ]
    assert [a.lineno for a in assigns] == [body_line]
