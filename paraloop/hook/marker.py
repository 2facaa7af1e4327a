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

import _thread
import os

__all__ = ["HEAD_BYTES", "clear_cache", "has_marker", "marker_in_head"]

ENABLE = "paraloop: enable"
DISABLE = "paraloop: disable"
# The leading block must fit in the first bytes of the file.
HEAD_BYTES = 16384

_cache: dict[str, tuple[int, int, bool]] = {}
_lock = _thread.allocate_lock()

_FIRST_LINE = b"# " + ENABLE.encode()
_DISABLE = DISABLE.encode()


def marker_in_head(head: bytes) -> bool:
    """True if the leading comment block of ``head`` enables paraloop (and does not disable it)."""
    if b"paraloop:" not in head:
        return False
    if (
        head.startswith(_FIRST_LINE)
        and head[len(_FIRST_LINE) : len(_FIRST_LINE) + 1] in (b"\n", b"\r")
        and _DISABLE not in head
    ):
        # The common spelling, alone on the first line (a comment whatever follows): no tokenizer.
        return True
    import io
    import tokenize  # only for heads that mention paraloop at all

    skipped = {tokenize.ENCODING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    enabled = False
    seen_docstring = False
    try:
        for token in tokenize.tokenize(io.BytesIO(head).readline):
            if token.type in skipped:
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
