"""Running a source as the plain loop it would be without paraloop, for differential tests."""

from __future__ import annotations

import textwrap
import warnings
from typing import Any

import paraloop


def run_plain(source: str) -> dict[str, Any]:
    """Exec ``source`` unrewritten (ParaLoop iterates sequentially, its warning silenced)."""
    namespace: dict[str, Any] = {"__name__": "plain"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        exec(compile(textwrap.dedent(source), "<plain>", "exec"), namespace)
    return namespace
