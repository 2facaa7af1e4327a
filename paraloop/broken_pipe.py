"""A program that lets SIGPIPE end it dies of it, quietly, when a worker's write hits a closed pipe.

Command-line tools restore SIGPIPE's default action (``signal.signal(SIGPIPE, SIG_DFL)``) so that
``tool | head`` ends quietly once ``head`` has read enough: the first write into the closed pipe
ends the process, exit status 141, no traceback.  In a loop whose workers print, that write is a
worker's: a fork worker (which inherits the action) died of it, and the program reported a
``WorkerCrashedError`` with a traceback; a spawn or forkserver worker (whose Python ignores
SIGPIPE) raised ``BrokenPipeError`` in the iteration.  So:

- a worker takes the caller's action for SIGPIPE with each loop (:func:`take`): with the default
  action, its write into a closed pipe ends it, under every start method;
- when a worker died of SIGPIPE and the program's action is the default, the program dies of
  SIGPIPE where the loop would report the crash (:func:`die_as_plain`), once the chunks before it
  are combined, as the plain loop died at that iteration's write.  Its workers end with it (their
  lifeline to the program).

Python's own ignoring of SIGPIPE (its default) and a program's handler are left alone: the write
raises ``BrokenPipeError`` in the iteration, as in the plain loop.
"""

from __future__ import annotations

import os
import signal
import threading

from .errors import WorkerCrashedError
from .signal_errors import getsignal

__all__ = ["die_as_plain", "kills", "take"]

_SIGPIPE: int | None = getattr(signal, "SIGPIPE", None)


def kills() -> bool:
    """In the caller: whether SIGPIPE ends this program (its default action)."""
    return _SIGPIPE is not None and getsignal(_SIGPIPE) == signal.SIG_DFL


def take(default: bool) -> None:
    """In a worker process, as a loop's job arrives: the caller's action for SIGPIPE (the default,
    or ignored) unless the worker has a handler of the program's (a fork worker's)."""
    if _SIGPIPE is None or threading.current_thread() is not threading.main_thread():
        return
    current = getsignal(_SIGPIPE)
    if current not in (signal.SIG_DFL, signal.SIG_IGN):
        return
    wanted = signal.SIG_DFL if default else signal.SIG_IGN
    if current != wanted:
        signal.signal(_SIGPIPE, wanted)


def die_as_plain(error: BaseException | None) -> None:
    """In the caller, before the loop raises ``error``: if a worker died of SIGPIPE and SIGPIPE
    ends this program, end it so, as the plain loop's write would have."""
    if not (isinstance(error, WorkerCrashedError) and error.signal == _SIGPIPE and kills()):
        return
    assert _SIGPIPE is not None
    # A thread of the program's may hold SIGPIPE blocked (paraloop's own sends do, a moment);
    # the signal ends the process from whichever thread takes it.
    os.kill(os.getpid(), _SIGPIPE)
    # Still here (blocked in every thread): the error is raised, as before.
