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
    "caller_runs",
    "dask_dashboard",
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# The blocks entered in this context, outermost first: (the entry, the block's own settings,
# those merged over the blocks around it).  Each exit removes its own entry wherever it
# stands, rather than restoring what the context held at its entry: a generator suspended
# inside a block (Python runs it in its caller's context) may leave it after its caller
# entered and left blocks of its own, and restoring would drop the caller's block, or bring
# back one it left.
_Layer = tuple[object, Mapping[str, Any], Mapping[str, Any]]
_layers: contextvars.ContextVar[tuple[_Layer, ...]] = contextvars.ContextVar("paraloop_config", default=())


def current() -> Mapping[str, Any]:
    """The settings of the ``paraloop.config`` blocks around the caller, innermost winning."""
    layers = _layers.get()
    return layers[-1][2] if layers else _EMPTY


class config:
    """Defaults for every ``ParaLoop`` loop started inside a ``with`` block.

    Takes the options ``ParaLoop`` takes (``backend``, ``num_processes``,
    ``start_method``, ``scheduler``, ``chunksize``, ``timeout``, ``progress``,
    ``lanes``, ``native_threads``, ``caller_runs``) and ``dask_dashboard`` (the port of the
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
        caller_runs: bool | None = None,
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
            "caller_runs": caller_runs,
            "dask_dashboard": dask_dashboard,
        }
        from .loop import check_settings  # imported with paraloop already

        self.settings: Mapping[str, Any] = MappingProxyType(
            check_settings(
                {name: value for name, value in given.items() if value is not None}, unknown, "config"
            )
        )
        # This block's entries, the last entered last (a block may be entered again inside itself).
        self._entries: list[object] = []

    def __enter__(self) -> config:
        entry = object()
        layers = _layers.get()
        outer = layers[-1][2] if layers else _EMPTY
        _layers.set((*layers, (entry, self.settings, MappingProxyType({**outer, **self.settings}))))
        self._entries.append(entry)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._entries:
            return
        layers = _layers.get()
        # This context's latest entry of the block (a block object may be entered by several
        # threads or tasks at once: each leaves its own entry).
        here = {id(each) for each, _, _ in layers}
        position = next(
            (i for i in range(len(self._entries) - 1, -1, -1) if id(self._entries[i]) in here),
            len(self._entries) - 1,
        )
        entry = self._entries.pop(position)
        if layers and layers[-1][0] is entry:
            _layers.set(layers[:-1])  # the usual case: the innermost block ends
            return
        # Left out of order (a generator's block), or entered in another context (another
        # thread's, an asyncio task's), where there is nothing to remove here.
        rebuilt: list[_Layer] = []
        merged: Mapping[str, Any] = _EMPTY
        for each, own, _ in layers:
            if each is not entry:
                merged = MappingProxyType({**merged, **own})
                rebuilt.append((each, own, merged))
        _layers.set(tuple(rebuilt))

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.settings.items())
        return f"paraloop.config({options})"
