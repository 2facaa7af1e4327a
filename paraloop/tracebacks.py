"""What a traceback that leaves a loop shows: the program's frames, as the plain loop's would.

A paraloop error ends at the user's loop line, where the generated code raises it.  Another
error keeps the frames of the program's code only: the iterable's own exception shows the
iterable's frames, an iteration's shows the body's.  A Ctrl-C lands wherever the caller was,
most often in paraloop's wait for its workers, where the plain loop would have been in the body;
it shows the loop's line, and the program's frames when it came as the caller ran the program's
code (an iteration in the caller, the iterable).  ``PARALOOP_TRACEBACK=full`` keeps every frame.
"""

from __future__ import annotations

import itertools
import os
import sys
import types

from .errors import ParaLoopError

__all__ = ["full", "hidden"]


def full() -> bool:
    """Whether the user asked for paraloop's own frames (``PARALOOP_TRACEBACK=full``)."""
    return os.environ.get("PARALOOP_TRACEBACK", "").strip() == "full"


def _library_prefixes() -> tuple[str, ...]:
    places = {os.path.dirname(os.__file__)}
    found = getattr(sys.modules.get("site"), "getsitepackages", None)
    if callable(found):
        # Where the installed packages are, as site found them at start-up: sysconfig's purelib
        # and platlib (and the folders a distribution adds, Debian's dist-packages), without
        # importing sysconfig, which took about 1 ms of every program's import of the runtime.
        places.update(place for place in found() if type(place) is str)
    else:  # without site (python -S)
        import sysconfig

        places |= {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return (*(os.path.join(place, "") for place in places if place), "<frozen ")


# Where the standard library and installed packages live: a Ctrl-C's frames there, between
# paraloop's own and the program's, are paraloop's machinery (contextlib's __exit__ around
# paraloop's own generator, threading's locks, os.environ's lookups).  A program installed
# among the packages is told from them by nothing: its Ctrl-C shows the loop's line only.
_LIBRARY = _library_prefixes()


def hidden(error: BaseException) -> BaseException:
    """``error`` without paraloop's frames (see the module's docstring)."""
    if full():
        return error
    if isinstance(error, ParaLoopError):
        error.__traceback__ = None
        return error
    return _own_frames_dropped(error, machinery=isinstance(error, KeyboardInterrupt))


def _own_frames_dropped(error: BaseException, *, machinery: bool) -> BaseException:
    """``error`` with the frames of paraloop's own modules left out of its traceback; with
    ``machinery``, also the library frames paraloop's code called, unless the program's own code
    comes after them (a library generator the program chose as its iterable, calling the
    program's key function: its frames are the path to the program's, as the plain loop's).

    Told by the module's name and the file's place, in C calls only: this runs in the cleanup
    after a Ctrl-C, where each Python call is a moment a second Ctrl-C may come (a path per frame
    made the tests that try a second Ctrl-C at each such call three times slower)."""
    kept: list[types.TracebackType] = []
    # Library frames since paraloop's last, held until the program's code or paraloop's comes.
    held: list[types.TracebackType] = []
    entry = error.__traceback__
    inside = False
    while entry is not None:
        frame = entry.tb_frame
        module = frame.f_globals.get("__name__")
        if isinstance(module, str) and (module == "paraloop" or module.startswith("paraloop.")):
            inside = True
            held.clear()
        elif (
            inside
            and machinery
            # A named tuple's __new__ is compiled from a string, in a module of its own name.
            and (frame.f_code.co_filename.startswith(_LIBRARY) or str(module).startswith("namedtuple_"))
        ):
            held.append(entry)
        else:
            kept.extend(held)
            held.clear()
            kept.append(entry)
            inside = False
        entry = entry.tb_next
    for earlier, later in itertools.pairwise(kept):
        earlier.tb_next = later
    if kept:
        kept[-1].tb_next = None
    error.__traceback__ = kept[0] if kept else None
    return error
