"""The loader of marked modules: parse, rewrite, compile, with a cache of its own."""

from __future__ import annotations

import _imp
import ast
import importlib.machinery
import importlib.util
import logging
from types import CodeType
from typing import Any

from ..errors import ParaLoopError
from . import cache
from .rewriter import rewrite

__all__ = ["ParaLoopLoader", "compile_rewritten"]

logger = logging.getLogger("paraloop")


def compile_rewritten(
    source: bytes | str, path: str, optimize: int = -1, pytest_config: Any = None
) -> CodeType:
    """Compile ``source`` with its ParaLoop loops rewritten.

    A syntax error in the user's code comes straight from the parser; an
    unsupported loop raises :class:`~paraloop.UnsupportedLoopError`.  With
    ``pytest_config`` (a test module pytest also rewrites), pytest's assertion rewrite
    follows paraloop's, so asserts in loop bodies explain themselves too.
    """
    tree = ast.parse(source, path)
    text = importlib.util.decode_source(source) if isinstance(source, bytes) else source
    count = rewrite(tree, path, text.splitlines())
    logger.debug("rewrote %d ParaLoop loop(s) in %s", count, path)
    if pytest_config is not None:
        from _pytest.assertion.rewrite import rewrite_asserts

        data = source if isinstance(source, bytes) else source.encode("utf-8")
        rewrite_asserts(tree, data, path, pytest_config)
    try:
        return compile(tree, path, "exec", dont_inherit=True, optimize=optimize)
    except (SyntaxError, ValueError) as error:
        # The user's own code may be what the compiler refuses ('break'
        # outside a loop passes the parser): then report that, unchanged.
        compile(source, path, "exec", dont_inherit=True, optimize=optimize)
        raise ParaLoopError(
            f"{path}: paraloop rewrote this module into code that does not compile ({error}). "
            "This is a bug in paraloop; please report it with the output of "
            f"'python -m paraloop --show {path}'"
        ) from error


class ParaLoopLoader(importlib.machinery.SourceFileLoader):
    """A source loader that rewrites ParaLoop loops and caches the result under its own tag."""

    def __init__(self, fullname: str, path: str, pytest_config: Any = None) -> None:
        super().__init__(fullname, path)
        # The configuration of the pytest that also rewrites this module's asserts, if any.
        self.pytest_config = pytest_config

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        if self.pytest_config is not None:
            # Both rewrites: not cached, since pytest's depends on its configuration (and pytest
            # does not cache a test module it did not rewrite alone either).
            return self.source_to_code(source, path)
        code = cache.read(path, source)
        if code is None:
            code = self.source_to_code(source, path)
            cache.write(path, source, code)
        else:
            logger.debug("loaded rewritten %s from its cache", path)
            # The project may have moved since the cache was written: as the
            # interpreter does for its own bytecode, record the current path.
            _imp._fix_co_filename(code, path)  # type: ignore[attr-defined]
        return code

    def source_to_code(self, data: Any, path: Any, *, _optimize: int = -1) -> CodeType:  # type: ignore[override]
        return compile_rewritten(data, path, _optimize, self.pytest_config)
