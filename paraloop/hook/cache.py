"""The bytecode cache of rewritten modules.

Rewritten code lives beside ordinary bytecode under a tag of its own
(``name.cpython-312.paraloop-<version>.pyc``), so a plain import never loads
it.  The file holds the interpreter's magic number, then what it was written
for: a hash of the source (with paraloop's version), the source's
modification time (nanoseconds) and size, when the file was written, and
whether the source carried the marker itself (not only ``python -m
paraloop``'s say-so).

A cache is validated as CPython validates a pyc, from the source's ``stat``
alone (one read, of the cache file), when the source's time and size are the
ones it was written for and the source was already older than the cache by
``RACY_NS`` then.  A source changed within that second of the cache's
writing might change again with the same size within one tick of the
file system's clock (as a test that rewrites a module does): such a
"racy" cache is validated by the source's hash, and rewritten with its new
time once the source is old enough (git's answer to the same question about
its index).  An edit that keeps the size and sets the time back to the
nanosecond (``os.utime``) is not seen, as CPython's own pyc, which compares
whole seconds, does not see it either.

A cache file is trusted as CPython trusts its own bytecode: the loader hands its code to
CPython's ``get_code`` as a timestamp pyc, so a file damaged after its writing, its header
intact, fails the import as a damaged pyc does.

Files are written atomically (a temporary file, then ``os.replace``) and
silently not written when ``sys.dont_write_bytecode`` is set or the directory
is read-only; ``sys.pycache_prefix`` is honoured.  A cache file is no more
readable than its source (it takes the source's permission bits, as
CPython's own bytecode does: a 0600 module's constants stay private), and its
temporary file is created exclusively, so a link planted at that name is not
followed.
"""

from __future__ import annotations

import _io
import _thread
import importlib.util
import marshal
import os
import sys
import time
from types import CodeType

from .._version import REWRITER_VERSION, __version__
from .marker import HEAD_BYTES, marker_in_head

__all__ = ["RACY_NS", "TAG", "Entry", "beside", "cache_path", "load", "read", "write"]


TAG = f"paraloop-{__version__}-r{REWRITER_VERSION}"
# The interpreter's magic number, then the layout's own (the first layout, "PLOP", had the hash alone).
_HEADER = importlib.util.MAGIC_NUMBER + b"PLC2"
# After the header: the source's hash (8 bytes), its mtime (ns), its size, the write's time (ns)
# (8 bytes each, little-endian, signed), and 1 when the source carried the marker.  (Not the
# struct module: one more import for every program that imports paraloop.)
_START = len(_HEADER) + 8 + 3 * 8 + 1


def _number(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little", signed=True)


def _fields(key: bytes, mtime_ns: int, size: int, written_ns: int, marked: bool) -> bytes:
    numbers = (n.to_bytes(8, "little", signed=True) for n in (mtime_ns, size, written_ns))
    return key + b"".join(numbers) + (b"\1" if marked else b"\0")


# A source changed this recently before its cache was written is "racy" (see above).
RACY_NS = 1_000_000_000


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


class Entry:
    """A cache file's content: what it was written for, and its code (not yet unmarshalled)."""

    def __init__(self, data: bytes) -> None:
        at = len(_HEADER)
        self.key = data[at : at + 8]
        self.mtime_ns = _number(data, at + 8)
        self.size = _number(data, at + 16)
        self.written_ns = _number(data, at + 24)
        self.marked = data[at + 32] == 1
        self._data = data

    def fresh(self, stat: os.stat_result) -> bool:
        """Whether the source with ``stat`` is the one this was written for, from its stat alone."""
        return (
            self.mtime_ns == stat.st_mtime_ns
            and self.size == stat.st_size
            and self.written_ns - self.mtime_ns >= RACY_NS
        )

    def marshalled(self) -> memoryview:
        """The code, as marshal wrote it."""
        return memoryview(self._data)[_START:]

    def code(self) -> CodeType | None:
        try:
            code = marshal.loads(self.marshalled())
        except (EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, CodeType) else None


def load(path: str | None) -> Entry | None:
    """The cache file at ``path`` (see :func:`cache_path`), or None (none, or not this format)."""
    if path is None:
        return None
    try:
        # As CPython reads its own bytecode: open_code, not open (a few microseconds less,
        # paid by every marked import).
        with _io.open_code(path) as handle:
            data = handle.read()
    except OSError:
        return None
    if len(data) < _START or not data.startswith(_HEADER):
        return None
    return Entry(data)


def read(
    path: str | None, entry: Entry | None, source: bytes, stat: os.stat_result | None = None
) -> CodeType | None:
    """The code of ``entry`` (the cache file at ``path``, as :func:`load` read it) if it was
    written for exactly ``source``, or None.

    With the source's ``stat``, a racy cache whose source has since grown old is rewritten with
    its new time, so that the next import validates it from the stat alone.
    """
    if entry is None or entry.key != _key(source):
        return None
    code = entry.code()
    if code is not None and stat is not None and not entry.fresh(stat):
        if time.time_ns() - stat.st_mtime_ns >= RACY_NS:
            write(path, None, source, code, stat, entry.marked)
    return code


def write(
    path: str | None,
    source_path: str | None,
    source: bytes,
    code: CodeType,
    stat: os.stat_result | None = None,
    marked: bool | None = None,
) -> None:
    """Cache ``code``, the rewrite of ``source`` (read from ``source_path``, whose ``stat`` it had
    when read), at ``path``.  ``marked``: whether the source carries the marker (None: look)."""
    if sys.dont_write_bytecode:
        return
    if path is None:
        return
    if stat is None and source_path is not None:
        try:
            stat = os.stat(source_path)
        except OSError:
            stat = None
    if marked is None:
        marked = marker_in_head(source[:HEAD_BYTES])
    fields = _fields(
        _key(source),
        stat.st_mtime_ns if stat is not None else -1,
        stat.st_size if stat is not None else -1,
        time.time_ns(),
        marked,
    )
    data = _HEADER + fields + marshal.dumps(code)
    temporary = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
    # The source's permission bits, and writable by its owner.
    mode = stat.st_mode & 0o666 | 0o200 if stat is not None else 0o600
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
