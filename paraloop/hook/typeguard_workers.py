"""typeguard's import hook in worker processes too.

A program that installed typeguard's hook (``typeguard.install_import_hook``, or pytest's
``--typeguard-packages``) has its modules instrumented in the caller; a worker started by
fork inherits the hook, but one started by spawn or forkserver imports the loop's modules
afresh, and without the hook a function the body calls would go unchecked there.  So the
caller's hooks (their packages and the ones they ignore) and typeguard's configuration travel
with each loop's job, and a worker installs what it lacks before it loads the job, paraloop's
finder staying first so that marked modules get both rewrites.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["install", "settings"]

Hooks = tuple[tuple[tuple[list[str] | None, list[str]], ...], dict[str, Any]]


def settings() -> Hooks | None:
    """The typeguard import hooks installed here and typeguard's configuration, or None."""
    module = sys.modules.get("typeguard._importhook")
    if module is None:
        return None
    hooks = tuple(
        (None if finder.packages is None else list(finder.packages), list(finder.ignore_packages))
        for finder in sys.meta_path
        if isinstance(finder, module.TypeguardFinder)
    )
    if not hooks:
        return None
    import pickle

    from typeguard import config

    travels: dict[str, Any] = {}
    for name, value in vars(config).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - a callback defined in the script: workers keep their own
            continue
        travels[name] = value
    return hooks, travels


def install(hooks: Hooks | None) -> None:
    """In a worker: install the caller's typeguard hooks this process does not have yet."""
    if hooks is None:
        return
    wanted, configuration = hooks
    import typeguard
    from typeguard import _importhook

    have = {
        (None if finder.packages is None else tuple(finder.packages), tuple(finder.ignore_packages))
        for finder in sys.meta_path
        if isinstance(finder, _importhook.TypeguardFinder)
    }
    added = False
    for packages, ignored in wanted:
        if (None if packages is None else tuple(packages), tuple(ignored)) not in have:
            typeguard.install_import_hook(packages, ignored)
            added = True
    for name, value in configuration.items():
        setattr(typeguard.config, name, value)
    if added:
        from . import install as install_paraloop

        install_paraloop()  # paraloop's finder first again: marked modules get both
