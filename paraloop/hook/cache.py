"""The bytecode cache of rewritten modules.

Rewritten code lives beside ordinary bytecode under a tag of its own
(``name.cpython-312.paraloop-<version>.pyc``), so a plain import never loads
it.  The file holds the interpreter's magic number and a hash of the source
and of paraloop's version: a change to either makes it stale.  Files are
written atomically (a temporary file, then ``os.replace``) and silently not
written when ``sys.dont_write_bytecode`` is set or the directory is read-only;
``sys.pycache_prefix`` is honoured.  A cache file is no more readable than its
source (it takes the source's permission bits, as CPython's own bytecode
does: a 0600 module's constants stay private), and its temporary file is
created exclusively, so a link planted at that name is not followed.
"""

from __future__ import annotations

import _thread
import importlib.util
import marshal
import os
import sys
from types import CodeType

from .._version import REWRITER_VERSION, __version__

__all__ = ["TAG", "beside", "cache_path", "read", "write"]


TAG = f"paraloop-{__version__}-r{REWRITER_VERSION}"
_HEADER = importlib.util.MAGIC_NUMBER + b"PLOP"


def _key(source: bytes) -> bytes:
    return importlib.util.source_hash(TAG.encode() + b"\0" + source)


def cache_path(source_path: str) -> str | None:
    """Where the rewritten bytecode of ``source_path`` is cached, or None (no cache tag)."""
    try:
        ordinary = importlib.util.cache_from_source(source_path)
    except (NotImplementedError, ValueError):
        return None
    return beside(ordinary)


def beside(ordinary: str) -> str:
    """The cache path that goes with the ordinary pyc path ``ordinary``."""
    return ordinary[: -len(".pyc")] + f".{TAG}.pyc"


def read(path: str | None, source: bytes) -> CodeType | None:
    """The code cached at ``path`` (see :func:`cache_path`) for exactly ``source``, or None."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    header = _HEADER + _key(source)
    if not data.startswith(header):
        return None
    try:
        code = marshal.loads(memoryview(data)[len(header) :])
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def write(path: str | None, source_path: str, source: bytes, code: CodeType) -> None:
    """Cache ``code``, the rewrite of ``source`` (read from ``source_path``), at ``path``."""
    if sys.dont_write_bytecode:
        return
    if path is None:
        return
    data = _HEADER + _key(source) + marshal.dumps(code)
    temporary = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
    try:
        mode = os.stat(source_path).st_mode & 0o666 | 0o200  # the source's, and writable by its owner
    except OSError:
        mode = 0o600
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # O_EXCL: never write through a link (or file) someone planted at the temporary name.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with open(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # the umask may have narrowed it; never widened beyond the source
        os.replace(temporary, path)
    except OSError:
        # Read-only directory, full disk: the module works, only uncached.
        try:
            os.unlink(temporary)
        except OSError:
            pass
