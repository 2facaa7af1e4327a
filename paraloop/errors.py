"""The exceptions and the warning paraloop raises.

Every paraloop error derives from :class:`ParaLoopError`, so ``except
paraloop.ParaLoopError`` catches all of them.  Errors raised by the user's own
loop bodies are re-raised with their own type, never wrapped.
"""

from __future__ import annotations

__all__ = [
    "IterationTimeoutError",
    "ParaLoopError",
    "ParaLoopWarning",
    "RemoteTraceback",
    "UnsupportedLoopError",
    "WorkerCrashedError",
]


class ParaLoopError(Exception):
    """Base class of every error paraloop raises itself.

    Example::

        try:
            run_analysis()
        except paraloop.ParaLoopError as error:
            print("paraloop refused the loop:", error)
    """


class UnsupportedLoopError(ParaLoopError, SyntaxError):
    """A marked module holds a ``ParaLoop`` loop the rewriter cannot handle.

    Raised when the module is imported (rewrite time).  It is a ``SyntaxError``
    so that Python shows the file, the line and a caret under the offending
    code; the message says what to change.
    """


class WorkerCrashedError(ParaLoopError):
    """A worker process died (segfault, ``os._exit``, killed) while it held iterations.

    ``signal``: the number of the signal that ended the worker, if one did.
    """

    signal: int | None = None


class IterationTimeoutError(ParaLoopError, TimeoutError):
    """One iteration ran longer than the loop's ``timeout=``."""


class ParaLoopWarning(UserWarning):
    """Something paraloop could not do as asked, and did in a slower or safer way."""


class RemoteTraceback(Exception):
    """Carries the formatted traceback of an exception raised in a worker.

    Set as the ``__cause__`` of the re-raised exception, so Python prints the
    worker's traceback (with the user's file and line) above the caller's.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text
