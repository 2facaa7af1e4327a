"""Every Python code block of the README and docs/ runs, and prints what its comments say.

Blocks tagged ``python`` must run as scripts under ``python -m paraloop`` with no error
and nothing on stderr. In docs/, a ``print(...)  # text`` line promises that exact
line of output. Illustrative snippets are tagged ``text``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Once (tests/conftest.py): the docs' examples show what the other tests check on every Python.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+# (.*)$")


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            found.append((f"{page.relative_to(ROOT)}#{number}", match.group(1)))
    return found


BLOCKS = blocks()


def test_the_docs_have_code_to_run() -> None:
    """The pages exist and hold runnable blocks (a guard against a broken pattern)."""
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("name,code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_code_block_runs(name: str, code: str, tmp_path: Path) -> None:
    """The block runs under python -m paraloop; in docs/, printed lines match their comments."""
    script = tmp_path / "block.py"
    script.write_text(code)
    # Dask's scheduler takes port 8787 for its HTTP pages, or warns and takes another when a
    # Dask cluster of a test running beside this one holds it: not the block's doing.
    environment = {**os.environ, "PYTHONWARNINGS": "ignore:Port 8787 is already in use"}
    result = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if name.startswith("docs"):
        promised = [m.group(1) for line in code.splitlines() if (m := PRINT_COMMENT.match(line))]
        assert result.stdout.splitlines() == promised
