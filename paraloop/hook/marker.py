"""Does a source file ask to be rewritten?

The marker is a comment line ``# paraloop: enable`` in the module's leading
block: the comments, blank lines and docstring before its first statement.
Every import in the interpreter passes the finder, so the check reads only
the head of the file, bails out unless the bytes ``paraloop:`` occur there,
confirms with the tokenizer that the marker is a real comment (not text in a
string), and remembers the answer per path, modification time and size.
A module can opt out with ``# paraloop: disable``.
"""

from __future__ import annotations

import io
import os
import threading
import tokenize

__all__ = ["HEAD_BYTES", "clear_cache", "has_marker", "marker_in_head"]

ENABLE = "paraloop: enable"
DISABLE = "paraloop: disable"
# The leading block must fit in the first bytes of the file.
HEAD_BYTES = 16384

_cache: dict[str, tuple[int, int, bool]] = {}
_lock = threading.Lock()

_SKIPPED = {tokenize.ENCODING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def marker_in_head(head: bytes) -> bool:
    """True if the leading comment block of ``head`` enables paraloop (and does not disable it)."""
    if b"paraloop:" not in head:
        return False
    enabled = False
    seen_docstring = False
    try:
        for token in tokenize.tokenize(io.BytesIO(head).readline):
            if token.type in _SKIPPED:
                continue
            if token.type == tokenize.COMMENT:
                text = token.string.lstrip("#").strip()
                if text == DISABLE:
                    return False
                enabled = enabled or text == ENABLE
                continue
            if token.type == tokenize.STRING and not seen_docstring:
                seen_docstring = True
                continue
            break
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        # The head ends inside a token, or the file does not decode: what
        # was read before that still counts.
        pass
    return enabled


def has_marker(path: str) -> bool:
    """Whether the file at ``path`` carries the marker; cached per (mtime, size)."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    with _lock:
        known = _cache.get(path)
    if known is not None and known[0] == stat.st_mtime_ns and known[1] == stat.st_size:
        return known[2]
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False
    answer = marker_in_head(head)
    with _lock:
        _cache[path] = (stat.st_mtime_ns, stat.st_size, answer)
    return answer


def clear_cache() -> None:
    with _lock:
        _cache.clear()
