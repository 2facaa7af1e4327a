"""coverage.py in worker processes: a measured program has its loop bodies measured too.

A program run under coverage (``coverage run``, pytest-cov, or ``Coverage().start()``)
would otherwise report a ``ParaLoop`` body as never run: the iterations run in worker
processes, which leave through ``os._exit`` and never start or save coverage.  So:

- the caller sends, with each loop's job, the options of the coverage measuring it
  (:func:`settings`); nothing is sent when coverage is not running;
- each worker starts its own measurement with those options the first time
  (:func:`start`).  A forked worker stops the caller's copy it inherited (it would never
  be saved); its data goes to a file next to the caller's, suffixed
  ``.paraloop.<caller pid>.<worker pid>``;
- the worker saves at each loop's end and when it stops (:func:`save`), so a tool that
  combines data files when its run ends (pytest-cov) finds them;
- the caller takes the workers' data into its own at each loop's end and at exit
  (:func:`combine`), so ``coverage report`` needs no ``coverage combine`` first.

Only coverage's public API is used (``Coverage.current``, ``get_option``,
``set_option``, ``save``, ``get_data``, ``CoverageData``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["combine", "save", "settings", "start"]

# The options that decide what is measured and how; the rest (reporting) stay with the caller.
_OPTIONS = (
    "run:branch",
    "run:source",
    "run:source_pkgs",
    "run:source_dirs",
    "run:include",
    "run:omit",
    "run:cover_pylib",
    "run:timid",
    "run:context",
    "run:plugins",
    "run:relative_files",
    "run:disable_warnings",
)


def _current() -> Any:
    """The caller's running Coverage, if coverage is imported and measuring."""
    module = sys.modules.get("coverage")
    if module is None:
        return None
    coverage_class = getattr(module, "Coverage", None)
    return coverage_class.current() if coverage_class is not None else None


def settings() -> dict[str, Any] | None:
    """What a worker needs to measure as the caller does, or None when nothing measures."""
    current = _current()
    if current is None:
        return None
    options: dict[str, Any] = {}
    for name in _OPTIONS:
        try:
            options[name] = current.get_option(name)
        except Exception:  # noqa: BLE001 - an option this version of coverage lacks
            continue
    return {"data_file": _data_file(current), "options": options, "caller": os.getpid()}


def _data_file(current: Any) -> str:
    """The absolute path of the caller's data file: workers may run elsewhere in the tree."""
    return os.path.abspath(current.get_option("run:data_file") or ".coverage")


# In a worker: its own measurement, once started.
_measuring: Any = None


def start(given: dict[str, Any] | None) -> None:
    """In a worker, when a loop's job arrives: measure as the caller does, if it measures."""
    global _measuring
    if given is None or _measuring is not None:
        return
    import coverage

    inherited = coverage.Coverage.current()
    if inherited is not None:
        # A forked worker's copy of the caller's measurement: stopped, never saved here.
        inherited.stop()
    measuring = coverage.Coverage(
        data_file=given["data_file"],
        data_suffix=f"paraloop.{given['caller']}.{os.getpid()}",
        config_file=False,
        auto_data=False,
    )
    for name, value in given["options"].items():
        try:
            measuring.set_option(name, value)
        except Exception:  # noqa: BLE001 - an option this version of coverage lacks
            continue
    measuring.start()
    _measuring = measuring


def save() -> None:
    """In a worker: write what was measured so far (at a loop's end, and when it stops)."""
    if _measuring is None:
        return
    try:
        _measuring.save()
    except Exception as error:  # noqa: BLE001 - the loop's result does not depend on it
        print(f"paraloop: could not save coverage data of a worker: {error}", file=sys.stderr)


def combine(final: bool = False) -> None:
    """In the caller: take the workers' data into the running measurement.

    At each loop's end, once the workers saved: a report made in this process (or by
    ``coverage run``, which saves before the interpreter's exit handlers run) then shows
    the loop bodies covered.  At exit (``final``), once the workers stopped, the files are
    also removed.  Without a running measurement they stay for the tool that combines data
    files (``coverage combine``; recent versions of ``coverage report`` do it themselves).
    """
    current = _current()
    if current is None:
        return
    import glob  # only under coverage, which imports it anyway

    import coverage

    files = sorted(glob.glob(glob.escape(_data_file(current)) + f".paraloop.{os.getpid()}.*"))
    if not files:
        return
    # CoverageData rather than Coverage.combine: combine prints a line on the program's
    # output under ``coverage run``, and deletes files the workers still write.
    data = current.get_data()
    for name in files:
        theirs = coverage.CoverageData(basename=name)
        theirs.read()
        data.update(theirs)
        if final:
            os.remove(name)
