"""paraloop's log lines, on ``logging.getLogger("paraloop")``, without importing logging.

A program that has not imported :mod:`logging` has configured no handler that could show
them: a line then costs a dictionary lookup, and the program does not pay the 2-4 ms of
importing logging for lines nobody sees (a loop's runtime imported it for them).  One that
imported it gets every line, whenever it configured its handlers.

Example::

    import logging
    logging.basicConfig(level=logging.DEBUG)  # paraloop's decisions now show
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["debug", "info"]


def debug(message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message % args`` at DEBUG on the "paraloop" logger, if logging is imported
    (``exc_info``: with the exception being handled)."""
    logging = _logging()
    if logging is not None:
        logging.getLogger("paraloop").debug(message, *args, exc_info=exc_info)


def info(message: str, *args: object) -> None:
    """Log ``message % args`` at INFO on the "paraloop" logger, if logging is imported."""
    logging = _logging()
    if logging is not None:
        logging.getLogger("paraloop").info(message, *args)


def _logging() -> Any:
    """The logging module, once imported, and not while a thread still imports it."""
    if "logging" not in sys.modules:
        return None  # most programs: and import paraloop imports no more than this module
    from .loaded_modules import imported

    return imported("logging")
