"""tox's inline plugin (tox loads ``toxfile.py`` itself): the interpreters pyenv installed.

pyenv's shims run only the versions selected (``pyenv global``, ``PYENV_VERSION``), so
``tox`` would skip the other versions of the matrix although they are installed. This adds
every ``$PYENV_ROOT/versions/3.*/bin/python3`` to tox's ``--discover`` list, which tox tries
first when it looks for ``py310``, ``py311`` and so on. An interpreter still missing is named
in tox's ``SKIP`` lines (and is an error in CI, which sets ``TOX_SKIP_MISSING_INTERPRETERS``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tox.plugin import impl


def _pyenv_interpreters() -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return [str(python) for python in sorted(root.glob("versions/3.*/bin/python3")) if python.is_file()]


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    options = state.conf.options
    known = list(getattr(options, "discover", None) or [])
    options.discover = known + [python for python in _pyenv_interpreters() if python not in known]
