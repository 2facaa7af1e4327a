"""The environment variables each loop reads, read in one dict lookup each.

A loop reads about twenty: its settings' ``PARALOOP_*`` overrides, the native pools'
``OMP_NUM_THREADS`` and the like, ``PYTHON_CPU_COUNT``.  ``os.environ.get`` of a
variable that is not set raises and catches a KeyError inside (about 0.8 us each,
warm): a few percent of what a loop of a few trivial iterations costs.  On POSIX,
``os.environ`` keeps the variables as encoded bytes in a plain dict, which it
updates on every write, so reading that dict gives the same answer.  Anything else
(Windows, where names are upper-cased; an ``os.environ`` a program replaced) is
read through ``os.environ.get``, as before.

    >>> import os
    >>> os.environ["PARALOOP_EXAMPLE"] = "1"
    >>> variable("PARALOOP_EXAMPLE"), variable("PARALOOP_NOT_SET", "")
    ('1', '')
"""

from __future__ import annotations

import os
from typing import overload

__all__ = ["variable"]

_POSIX = os.name == "posix"


@overload
def variable(name: str) -> str | None: ...


@overload
def variable(name: str, default: str) -> str: ...


def variable(name: str, default: str | None = None) -> str | None:
    """``os.environ.get(name, default)``, for an ASCII ``name``."""
    environ = os.environ
    data = getattr(environ, "_data", None) if _POSIX and type(environ) is os._Environ else None
    if type(data) is not dict:
        return environ.get(name, default)
    value = data.get(name.encode())
    # As os.environ decodes its values (the file system encoding, surrogateescape).
    return default if value is None else os.fsdecode(value)
