"""An exception a program's signal handler raises while paraloop's own code runs reaches the program.

Python runs a signal handler in the main thread, between two bytecodes of whatever runs there:
during a loop, most often paraloop's own code, which in places catches ``Exception`` to try
another way (pickle, then dill; an item's own loading, then a named error).  The exception of an
alarm's handler landed in such a place and was swallowed (the loop went on to its end, as if no
alarm had rung) or reported as another error ("the results of iteration 5 ... could not be
loaded here: Alarm"); the plain loop raises it.

So while a ``for`` loop runs in the main thread, each handler the program gave in Python is
wrapped: an ``Exception`` it raises travels as :class:`HandlerRaised`, a ``BaseException``
which those fallbacks let through as they let ``KeyboardInterrupt`` through, and
:func:`paraloop.runtime.run` raises the handler's own exception at the loop's line.  In a
chunk's iterations (those the caller runs itself) and in a worker process forked meanwhile,
the wrapper raises it as it is: there the body's own ``try``/``except`` must see it.  Python's
own SIGINT handler raises ``KeyboardInterrupt``, which nothing swallows, and is left alone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import tracebacks

__all__ = [
    "HANDLED_SIGNALS",
    "getsignal",
    "HandlerRaised",
    "despite_ctrl_c",
    "ctrl_c_deferred",
    "unwrap_handlers",
    "wrap_handlers",
    "in_body",
    "python_handlers",
    "released",
]

# Set while this thread runs a chunk's iterations (execute.py): a handler's exception there is
# the iteration's, for the body's own except, as in the plain loop.
in_body = threading.local()

# The C function: signal.getsignal is a Python wrapper that converts to enums, 0.4 us a call,
# and every loop and every worker's start asks about each signal (1.4 us for all, against 27).
getsignal: Callable[[int], Any] = __import__("_signal").getsignal

# Signals a program may handle (not SIGKILL, SIGSTOP).
HANDLED_SIGNALS = tuple(
    number
    for number in signal.valid_signals()
    if number not in (getattr(signal, "SIGKILL", None), getattr(signal, "SIGSTOP", None))
)


def despite_ctrl_c(action: Callable[[], Any]) -> KeyboardInterrupt | None:
    """Run ``action`` to its end, again each time Ctrl-C interrupts it (it must be safe to run
    again); the last KeyboardInterrupt, for the caller to raise once done, if any.

    A loop's cleanup that a second Ctrl-C cuts short leaves what the loop held (the caller's
    native pools limited, the backend's generator unclosed) for the rest of the program.
    """
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            action()
            return interrupted
        except KeyboardInterrupt as error:
            interrupted = error


_setsignal: Callable[[int, Any], Any] = __import__("_signal").signal


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """In the main thread: a Ctrl-C that comes inside is handled as the block ends, by the
    handler it would have met (Python's raises KeyboardInterrupt there).

    Around a worker's start: one cut short half way leaves processes nobody waits for
    (multiprocess's fork server, told half a request, dies of it; a child it forked waits for ever
    for what the program was to send it, holding the resource tracker's pipe, which the program's
    exit then waited for, for ever)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[Any] = []
    handler = getsignal(signal.SIGINT)
    if not callable(handler):
        yield  # ignored, or left to the system: nothing is raised in Python
        return
    _setsignal(signal.SIGINT, lambda number, frame: came.append(frame))
    try:
        yield
    finally:
        _setsignal(signal.SIGINT, handler)
        if came:
            handler(signal.SIGINT, came[0])


def released(error: Exception) -> Exception:
    """``error``, whose traceback starts at the program's handler, without the finished frames
    of paraloop's that the handler's frame leads back to (the code it interrupted): their
    locals (the loop's workers, its chunks) would live as long as the exception does, which a
    program may keep to its end."""
    traceback = error.__traceback__
    frame = traceback.tb_frame.f_back if traceback is not None else None
    while frame is not None:
        try:
            frame.clear()
        except RuntimeError:
            pass  # still running: the loop's own caller, the program's frames
        frame = frame.f_back
    return error


def python_handlers() -> dict[Any, Callable[[int, Any], Any]]:
    """The signals the program handles in Python (Python's own SIGINT handler among them), with
    their handlers."""
    return {number: handler for number in HANDLED_SIGNALS if callable(handler := getsignal(number))}


class HandlerRaised(BaseException):
    """A program's signal handler raised ``error`` while paraloop's code ran."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _wrapper(handler: Callable[[int, Any], Any], pid: int) -> Callable[[int, Any], Any]:
    def wrapped(number: int, frame: Any) -> Any:
        try:
            return handler(number, frame)
        except Exception as error:
            if os.getpid() != pid or getattr(in_body, "active", False):
                raise
            # Its traceback from the program's handler on, as the plain loop shows it.
            if error.__traceback__ is not None and not tracebacks.full():
                error.__traceback__ = error.__traceback__.tb_next
            raise HandlerRaised(error) from None

    wrapped.__paraloop_wraps__ = handler  # type: ignore[attr-defined]
    return wrapped


def wrap_handlers(wrapped: dict[int, Callable[[int, Any], Any]]) -> None:
    """Before a loop run from the main thread: see the module's docstring.  Each handler wrapped
    is noted in ``wrapped`` first, for :func:`unwrap_handlers` (however this ends)."""
    if threading.current_thread() is not threading.main_thread():
        return
    pid = os.getpid()
    for number, handler in python_handlers().items():
        if handler is not signal.default_int_handler:
            wrapped[number] = handler
            _setsignal(number, _wrapper(handler, pid))


def unwrap_handlers(wrapped: dict[int, Callable[[int, Any], Any]]) -> None:
    """After the loop: the program's own handlers back, each taken out of ``wrapped`` once done
    (called again after a Ctrl-C, it goes on where it was cut).  Unless the program gave the
    signal another handler meanwhile."""
    while wrapped:
        number, handler = next(iter(wrapped.items()))
        if getattr(getsignal(number), "__paraloop_wraps__", None) is handler:
            _setsignal(number, handler)
        del wrapped[number]
