"""Running a source as the plain loop it would be without paraloop, for differential tests."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import paraloop


def run_plain(source: str) -> dict[str, Any]:
    """Exec ``source`` unrewritten (ParaLoop iterates sequentially, its warning silenced)."""
    namespace: dict[str, Any] = {"__name__": "plain"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
        exec(compile(textwrap.dedent(source), "<plain>", "exec"), namespace)
    return namespace


def assert_same_as_plain(load_module: Callable[..., ModuleType], source: str, names: list[str]) -> None:
    """``source`` run by paraloop (``load_module``) gives each of ``names`` the plain run's value."""
    source = textwrap.dedent(source)
    expected = run_plain(source)
    module = load_module(source)
    for name in names:
        assert getattr(module, name) == expected[name], name
