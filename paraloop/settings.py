"""``paraloop.config`` (defined here): defaults for the loops of a block of code.

Imported with ``paraloop`` itself, so it holds only a context variable; the
settings are checked (by :mod:`paraloop.loop`) when a block is entered.

The precedence, the same for every setting: a ``PARALOOP_*`` environment variable
(set by whoever runs the program) overrides the code; in the code, an option given
to ``ParaLoop(...)`` wins over the innermost ``paraloop.config`` block around the
loop, which wins over the blocks around it; paraloop's defaults fill in the rest.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Never

__all__ = ["SETTINGS", "config", "current"]

# What a block may set, in the order the docs list them.
SETTINGS = (
    "backend",
    "num_processes",
    "start_method",
    "scheduler",
    "chunksize",
    "timeout",
    "progress",
    "lanes",
    "native_threads",
    "dask_dashboard",
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_settings: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "paraloop_config", default=_EMPTY
)


def current() -> Mapping[str, Any]:
    """The settings of the ``paraloop.config`` blocks around the caller, innermost winning."""
    return _settings.get()


class config:
    """Defaults for every ``ParaLoop`` loop started inside a ``with`` block.

    Takes the options ``ParaLoop`` takes (``backend``, ``num_processes``,
    ``start_method``, ``scheduler``, ``chunksize``, ``timeout``, ``progress``,
    ``lanes``, ``native_threads``) and ``dask_dashboard`` (the port of the
    dashboard of the Dask cluster paraloop starts).  A loop's own options win over
    the block's, an inner block's over an outer one's, and a ``PARALOOP_*``
    environment variable over all of them::

        # paraloop: enable
        import paraloop
        from paraloop import ParaLoop

        with paraloop.config(backend="threads", num_processes=4):
            total = 0
            for i in ParaLoop(range(100)):   # runs in 4 threads
                total += i
        print(total)   # 4950

    The settings belong to the current thread (a ``contextvars`` context, as
    ``decimal.localcontext``): loops that other threads start meanwhile do not see
    them, and each asyncio task sees the blocks it was created in.  A setting left
    at ``None`` keeps the value of the block around it.
    """

    def __init__(
        self,
        *,
        backend: str | None = None,
        num_processes: int | None = None,
        start_method: str | None = None,
        scheduler: Any = None,
        chunksize: int | None = None,
        timeout: float | None = None,
        progress: bool | Mapping[str, Any] | None = None,
        lanes: bool | None = None,
        native_threads: int | bool | None = None,
        dask_dashboard: int | bool | None = None,
        **unknown: Never,
    ) -> None:
        given = {
            "backend": backend,
            "num_processes": num_processes,
            "start_method": start_method,
            "scheduler": scheduler,
            "chunksize": chunksize,
            "timeout": timeout,
            "progress": progress,
            "lanes": lanes,
            "native_threads": native_threads,
            "dask_dashboard": dask_dashboard,
        }
        from .loop import check_settings  # imported with paraloop already

        self.settings: Mapping[str, Any] = MappingProxyType(
            check_settings(
                {name: value for name, value in given.items() if value is not None}, unknown, "config"
            )
        )
        self._tokens: list[contextvars.Token[Mapping[str, Any]]] = []

    def __enter__(self) -> config:
        self._tokens.append(_settings.set(MappingProxyType({**_settings.get(), **self.settings})))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _settings.reset(self._tokens.pop())

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.settings.items())
        return f"paraloop.config({options})"
