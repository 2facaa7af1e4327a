"""``python -m paraloop``: run a script with its ParaLoop loops rewritten, or show the rewrite."""

from __future__ import annotations

import builtins
import os
import sys
import types

from .hook.loader import ParaLoopLoader, compile_rewritten
from .hook.rewriter import show

__all__ = ["main", "run_script"]

USAGE = """\
usage: python -m paraloop SCRIPT [ARGS...]
       python -m paraloop --show FILE

Run SCRIPT as __main__ (with sys.argv, sys.path[0] and __file__ as
'python SCRIPT' sets them) with its ParaLoop loops running in parallel; the
script needs no '# paraloop: enable' line.  Modules it imports are rewritten
when they carry that line.

  --show FILE   print FILE's source as paraloop rewrites it
  -h, --help    print this help

Environment variables:
  PARALOOP_BACKEND        processes (default), threads, sequential or dask, for every loop
  PARALOOP_WORKERS        number of worker processes for loops that give none
  PARALOOP_START_METHOD   fork, forkserver or spawn for the worker processes
  PARALOOP_DASK_SCHEDULER address of the Dask scheduler for backend dask
"""


def run_script(script: str, args: list[str]) -> None:
    """Run ``script`` as ``__main__`` with its loops rewritten, as ``python script`` would."""
    # As the interpreter does: __file__ is the path as given, made absolute but not
    # normalised; sys.path[0] is the directory of the real file (symlinks resolved).
    path = script if os.path.isabs(script) else os.path.join(os.getcwd(), script)
    with open(path, "rb") as handle:
        source = handle.read()
    code = compile_rewritten(source, path)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__spec__ = None
    main.__loader__ = ParaLoopLoader("__main__", path)
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__cached__ = None  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    sys.argv[:] = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    exec(code, main.__dict__)


def _report(error: BaseException, compiling: bool) -> None:
    """Print the error as 'python script.py' would: from the script's frame on.

    A syntax error in the script itself has no frames at all.
    """
    traceback_ = None
    if not compiling:
        traceback_ = error.__traceback__
        here = os.path.abspath(__file__)
        while traceback_ is not None and os.path.abspath(traceback_.tb_frame.f_code.co_filename) == here:
            traceback_ = traceback_.tb_next
    # The default excepthook prints the exception's own traceback, so trim that.
    sys.excepthook(type(error), error.with_traceback(traceback_), traceback_)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    if args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] == "--show":
        if len(args) != 2:
            sys.stderr.write(USAGE)
            return 2
        with open(args[1], "rb") as handle:
            sys.stdout.write(show(handle.read(), args[1]))
        return 0
    script = args[0]
    if not os.path.isfile(script):
        sys.stderr.write(
            f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
            "[Errno 2] No such file or directory\n"
        )
        return 2
    try:
        run_script(script, args[1:])
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:  # noqa: BLE001 - reported like the interpreter does
        _report(error, compiling=_in_compile(error))
        return 1
    return 0


def _in_compile(error: BaseException) -> bool:
    """True for a syntax error raised while compiling the script, not while running it."""
    if not isinstance(error, SyntaxError):
        return False
    traceback_ = error.__traceback__
    while traceback_ is not None:
        if traceback_.tb_frame.f_code is run_script.__code__ and traceback_.tb_next is not None:
            return traceback_.tb_next.tb_frame.f_code.co_name != "<module>"
        traceback_ = traceback_.tb_next
    return True


def console_main() -> None:
    """The ``paraloop`` console script: ``paraloop script.py`` is ``python -m paraloop script.py``."""
    sys.exit(main())
