"""paraloop's pytest plugin (the ``pytest11`` entry point ``paraloop``).

A test module marked ``# paraloop: enable`` gets both rewrites: paraloop's (its loops run
in parallel) and then pytest's (a failing ``assert`` reports its values, in a loop body
too).  For that, paraloop's import hook must be on ``sys.meta_path`` before pytest imports
the test modules; the plugin puts it there when pytest starts, so no ``conftest.py``
needs to ``import paraloop``.

typeguard's plugin (``--typeguard-packages``) installs typeguard's import hook in its own
``pytest_configure``, in front of paraloop's; the plugin puts paraloop's back in front when
the session starts, so a marked module typeguard instruments gets paraloop's rewrite too.

``-p no:paraloop`` turns the plugin off: marked test modules are then rewritten only if
something imports paraloop first, and without pytest's assertion rewrite.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure", "pytest_sessionstart"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Ahead of pytest's assertion rewriter on sys.meta_path: the finder asks the finders
    # after it, pytest's included, and composes with what pytest would do.
    from .hook import install

    install()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # After every plugin's pytest_configure: an import hook installed there (typeguard's)
    # sits ahead of paraloop's; behind it, it composes with paraloop's rewrite.
    from .hook import install

    install()
