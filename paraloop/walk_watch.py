"""A loop over ``os.walk`` whose body prunes the walk: refused, since paraloop reads the walk ahead.

``os.walk`` (top-down, its default) yields ``(root, dirs, files)`` and walks into the folders left
in ``dirs`` only when the next item is asked for, so a plain loop prunes the walk by changing that
list in its body::

    for root, dirs, files in os.walk(top):
        if "venv" in dirs:
            dirs.remove("venv")     # the walk skips venv

paraloop reads items ahead of the iterations (a chunk at a time, while others run): the walk has
gone into those folders before the body changed the list, and the loop would visit what the plain
loop skips, silently (a public script counted 91 to 262 lines for the plain loop's 92).  So, for a
loop over a top-down ``os.walk``, ``os.fwalk`` or ``pathlib.Path.walk`` on a backend that reads
ahead (every one but the sequential backend, which reads each item just before its iteration, as
the plain loop does),
:class:`WalkWatch` keeps each yielded ``dirs`` list with a copy of its names, and once the chunk
of its iteration is combined (the list changed in place by the body on threads, or written back
from a worker's copy), a list that changed refuses the loop from there on, with advice that works:
prune in a generator of the program's own, which runs as each item is read.
"""

from __future__ import annotations

import collections
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

from .errors import ParaLoopError

__all__ = ["WalkWatch", "walk_of"]

# The code of the generators os.walk and os.fwalk return (os.walk is a generator function from
# Python 3.12; before, a function returning os._walk's generator).
_WALKS = frozenset(
    function.__code__
    for function in (getattr(os, name, None) for name in ("walk", "_walk", "fwalk", "_fwalk"))
    if isinstance(function, types.FunctionType)
)


def walk_of(iterable: Any) -> bool:
    """Whether ``iterable`` is a top-down ``os.walk``, ``os.fwalk`` or ``pathlib.Path.walk`` (Python
    3.12+) not finished yet."""
    if type(iterable) is not types.GeneratorType:
        return False
    code = iterable.gi_code
    if code not in _WALKS and code is not _path_walk():
        return False
    frame = iterable.gi_frame
    if frame is None:
        return False
    local = frame.f_locals
    return local.get("topdown", True) is not False and local.get("top_down", True) is not False


def _path_walk() -> Any:
    """The code of ``pathlib.Path.walk``, where pathlib is imported (a loop over one imported it)."""
    pathlib = sys.modules.get("pathlib")
    walk = getattr(getattr(pathlib, "Path", None), "walk", None)
    return getattr(walk, "__code__", None)


class WalkWatch:
    """The ``dirs`` lists a walk yielded, each with its names then, until its chunk is combined."""

    def __init__(self, walk: Iterator[Any], filename: str, line: int) -> None:
        self._walk = walk
        self._where = f"{filename}, line {line}"
        self._index = 0
        # (iteration, root, the list, its names when yielded), oldest first.
        self._yielded: collections.deque[tuple[int, Any, list[Any], list[Any]]] = collections.deque()

    def items(self) -> Iterator[Any]:
        """The walk's items, as it yields them, each ``dirs`` list noted."""
        for item in self._walk:
            if type(item) is tuple and len(item) >= 3 and type(item[1]) is list:
                # (root, dirs, files), and fwalk's descriptor after them
                self._yielded.append((self._index, item[0], item[1], list(item[1])))
            self._index += 1
            yield item

    def check(self, through: int) -> ParaLoopError | None:
        """A refusal if the body changed a ``dirs`` list of the iterations before ``through`` (whose
        chunks are combined), else None; those lists are let go of."""
        while self._yielded and self._yielded[0][0] < through:
            index, root, dirs, names = self._yielded.popleft()
            if dirs != names:
                return ParaLoopError(
                    f"{self._where}: iteration {index} changed the list of folders os.walk yielded "
                    f"for {root!r} ({names!r} became {dirs!r}), pruning the walk; os.walk reads that "
                    "list when the next item is asked for, but paraloop reads the walk ahead of the "
                    "iterations, so it would go into the folders the body took out. Prune in a "
                    "generator of your own, which runs as each item is read: def walk(top): for "
                    "root, dirs, files in os.walk(top): dirs[:] = [d for d in dirs if d != 'venv']; "
                    "yield root, dirs, files (one statement a line), then loop over "
                    "ParaLoop(walk(top)); or run it with backend='sequential'"
                )
        return None
