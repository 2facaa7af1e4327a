"""``python -m paraloop``: run a script, a directory or zip archive with a ``__main__.py``, a
module, a string of code or a program read from standard input with its ParaLoop loops
rewritten, or show the rewrite.  The ``paraloop`` console script is the same command."""

from __future__ import annotations

import builtins
import copy
import importlib.machinery
import importlib.util
import linecache
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from typing import Any

from ._version import __version__
from .hook.loader import ParaLoopLoader, compile_rewritten
from .hook.rewriter import show

__all__ = ["console_main", "main", "run_script"]

USAGE = """\
usage: python -m paraloop [--] SCRIPT [ARGS...]
       python -m paraloop [--] DIRECTORY|ZIPFILE [ARGS...]
       python -m paraloop -m MODULE [ARGS...]
       python -m paraloop -c CODE [ARGS...]
       python -m paraloop - [ARGS...]
       python -m paraloop --show FILE
       python -m paraloop --explain FILE
       python -m paraloop --version

The installed 'paraloop' command is the same as 'python -m paraloop'
(for example 'paraloop -m package.module').

Run SCRIPT as __main__ (with sys.argv, sys.path[0] and __file__ as
'python SCRIPT' sets them) with its ParaLoop loops running in parallel; the
script needs no '# paraloop: enable' line.  Modules it imports are rewritten
when they carry that line.  A DIRECTORY or ZIPFILE holding a __main__.py runs
that as 'python DIRECTORY' does (sys.argv[0] as given, the directory or archive
first on sys.path), its loops rewritten; modules imported from a zip archive
are not rewritten (a marked one gets a warning).

  -m MODULE     run MODULE as 'python -m MODULE' does (a package runs its
                __main__ module; sys.argv[0] is the module's file and
                sys.path[0] the current directory), its loops rewritten
                without the marker line
  -c CODE       run CODE as 'python -c CODE' does (sys.argv[0] is '-c',
                sys.path[0] is ''), its loops rewritten; functions and
                classes it defines reach workers under every start method
  -             read the program from standard input, as 'python -' does
                (sys.argv[0] is '-', sys.path[0] is ''), its loops rewritten
  --show FILE   print FILE's source as paraloop rewrites it; exit status 2
                when FILE cannot be read, 1 when it does not compile
  --explain FILE
                report what paraloop does with each ParaLoop loop of FILE:
                its line and, for each name from outside the loop the body
                touches, the reduction it infers (Sum for 'total += x', ...),
                lastprivate (the last iteration's value is kept), captured
                read-only, or the user's Variable; or why it refuses the loop,
                with the fix (paraloop.explain(source) gives the same report).
                Exit status 0, or 1 when it refuses a loop or FILE does not
                compile (reported as python reports it), 2 when FILE cannot
                be read
  --version     print paraloop's version
  -h, --help    print this help

Options come before SCRIPT, MODULE or CODE; every argument after those is the
program's own.  Errors in the program are reported as python reports them
(exit status 1); a missing SCRIPT or MODULE, or a DIRECTORY or ZIPFILE
without __main__.py, as python reports it (2, 1 and 1); a wrong option in one
line (exit status 2).

Environment variables (each overrides what the code says, in ParaLoop(...) or in
a paraloop.config(...) block; in the code, a loop's own option wins over a block's):
  PARALOOP_BACKEND        processes (default), threads, sequential or dask, for every loop
  PARALOOP_WORKERS        number of workers for every loop; -1 all CPUs, -2 all but one
  PARALOOP_START_METHOD   fork, forkserver or spawn for the worker processes
  PARALOOP_DASK_SCHEDULER address of the Dask scheduler for backend dask
  PARALOOP_DASK_DASHBOARD port of the dashboard of paraloop's own Dask cluster
                          on 127.0.0.1, or off (the default)
  PARALOOP_LANES          0 or 1: whether workers may run waiting iterations in threads
  PARALOOP_NATIVE_THREADS off, or threads for each worker's BLAS/OpenMP pools
See docs/configuration.md.
"""


class _UsageError(Exception):
    """A wrong command line: one line on stderr, exit status 2."""


class _CannotRun(Exception):
    """The program cannot be found or opened: reported as python reports it, in one line."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _SyntaxErrorFound(Exception):
    """The program's syntax error, met while locating it: reported as python does, without frames."""

    def __init__(self, error: SyntaxError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Program:
    """What runs as ``__main__``: its source (or code, for a module without source) and module."""

    module: types.ModuleType
    filename: str
    source: bytes | str | types.CodeType

    def compile(self) -> types.CodeType:
        if isinstance(self.source, types.CodeType):
            return self.source
        if self.filename == "<string>" and sys.version_info >= (3, 13):
            # Python 3.13 shows the lines of -c code in tracebacks (its linecache holds them
            # under "<string>"); earlier versions show none.
            text = self.source.decode() if isinstance(self.source, bytes) else self.source
            lines = [line + "\n" for line in text.splitlines()]
            linecache.cache["<string>"] = (len(text), None, lines, "<string>")
        return compile_rewritten(self.source, self.filename)


def _main_module(**attributes: object) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    for name, value in attributes.items():
        setattr(module, name, value)
    return module


def _set_path0(entry: str) -> None:
    # 'python -P' (safe_path) puts no program directory on sys.path: then
    # sys.path[0] is a real entry that must stay.
    if not getattr(sys.flags, "safe_path", False):
        sys.path[0] = entry


def _locate_script(script: str, args: list[str]) -> _Program:
    # As the interpreter does: __file__ is the path as given, made absolute but not
    # normalised; sys.path[0] is the directory of the real file (symlinks resolved).
    path = script if os.path.isabs(script) else os.path.join(os.getcwd(), script)
    if os.path.isdir(path) or _is_zip(path):
        return _locate_main_in(script, args)
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as error:
        raise _CannotRun(
            f"can't open file {os.path.abspath(script)!r}: [Errno {error.errno}] {error.strerror}", 2
        ) from None
    sys.argv[:] = [script, *args]
    _set_path0(os.path.dirname(os.path.realpath(path)))
    module = _main_module(
        __file__=path, __spec__=None, __cached__=None, __loader__=ParaLoopLoader("__main__", path)
    )
    return _Program(module, path, source)


def _is_zip(path: str) -> bool:
    """Whether python would run ``path`` as a zip archive (as zipimport reads it, whatever its name)."""
    if not os.path.isfile(path):
        return False
    import zipimport

    try:
        zipimport.zipimporter(path)
    except (zipimport.ZipImportError, OSError):
        return False
    return True


def _locate_main_in(where: str, args: list[str]) -> _Program:
    """A directory or a zip archive runs its ``__main__`` module, as ``python WHERE`` does:
    ``sys.argv[0]`` is WHERE as given, WHERE (absolute) is put first on ``sys.path`` (also
    under ``-P``) and ``__main__.py`` found there runs with the name ``__main__``.  Its loops
    are rewritten, a zip archive's too (paraloop reads the member's source); the modules it
    imports are rewritten when marked, except those in a zip archive, which are imported
    as they are (the import hook warns about a marked one)."""
    entry = os.path.abspath(where)
    sys.argv[:] = [where, *args]
    if getattr(sys.flags, "safe_path", False):
        sys.path.insert(0, entry)
    else:
        sys.path[0] = entry
    # Only WHERE is searched (python searches sys.path for __main__ with WHERE first: another
    # entry holding a top-level __main__ module is no program to run).
    try:
        spec = importlib.machinery.PathFinder.find_spec("__main__", [entry])
    except SyntaxError as error:
        # zipimport compiles the module while finding it.
        raise _SyntaxErrorFound(error) from None
    if spec is None or spec.loader is None or spec.origin is None:
        raise _CannotRun(f"can't find '__main__' module in {entry!r}", 1)
    origin = spec.origin
    source = _source_of(spec)
    if source is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
        # Its code is the rewritten code: so is what its loader gives.
        spec = copy.copy(spec)
        spec.loader = ParaLoopLoader(spec.name, origin)
    module = _main_module(
        __file__=origin,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=spec,
    )
    return _Program(module, origin, _code_of(spec) if source is None else source)


def _locate_stdin(args: list[str]) -> _Program:
    """``python -``: the program is read from standard input; ``sys.path[0]`` is ``''``."""
    source = sys.stdin.buffer.read()
    sys.argv[:] = ["-", *args]
    _set_path0("")
    module = _main_module(
        __file__="<stdin>",
        __cached__=None,
        __spec__=None,
        __package__=None,
        __loader__=importlib.machinery.BuiltinImporter,
    )
    return _Program(module, "<stdin>", source)


def _locate_module(name: str, args: list[str]) -> _Program:
    # 'python -m' runs the search with sys.argv[0] == "-m" and the current
    # directory first on sys.path, then names the module's file in sys.argv[0].
    sys.argv[:] = ["-m", *args]
    _set_path0(os.getcwd())
    spec, origin = _main_spec(name)
    sys.argv[0] = origin
    source = _source_of(spec)
    if source is not None:
        # Its code is the rewritten code: so is what its loader gives.
        spec = copy.copy(spec)
        spec.loader = ParaLoopLoader(spec.name, origin)
    module = _main_module(
        __file__=origin,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=spec,
    )
    # A module without source (only bytecode) runs as it is, its loops sequential.
    return _Program(module, origin, _code_of(spec) if source is None else source)


def _code_of(spec: ModuleSpec) -> types.CodeType:
    get_code = getattr(spec.loader, "get_code", None)
    code = None if get_code is None else get_code(spec.name)
    if not isinstance(code, types.CodeType):
        raise _CannotRun(f"No code object available for {spec.name}", 1)
    return code


def _source_of(spec: ModuleSpec) -> str | None:
    get_source = getattr(spec.loader, "get_source", None)
    if get_source is None:
        return None
    try:
        source: str | None = get_source(spec.name)
    except ImportError as error:
        raise _CannotRun(str(error), 1) from None
    return source


def _main_spec(name: str) -> tuple[ModuleSpec, str]:
    """The spec and file of the module 'python -m NAME' runs, with runpy's messages when there is none."""
    if name.startswith("."):
        raise _CannotRun("Relative module names not supported", 1)
    parent = name.rpartition(".")[0]
    if parent:
        # Imported first, as runpy does, so that an error in the package itself is
        # reported as that error; only a missing package falls through to find_spec.
        try:
            __import__(parent)
        except ImportError as error:
            if error.name is None or (error.name != parent and not parent.startswith(error.name + ".")):
                raise
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        message = f"Error while finding module specification for {name!r} ({type(error).__name__}: {error})"
        if name.endswith(".py"):
            message += f". Try using '{name[:-3]}' instead of '{name}' as the module name."
        raise _CannotRun(message, 1) from None
    if spec is None:
        raise _CannotRun(f"No module named {name}", 1)
    if spec.submodule_search_locations is not None:
        return _package_main_spec(name)
    if spec.loader is None or spec.origin is None:
        raise _CannotRun(f"{name!r} is a namespace package and cannot be executed", 1)
    return spec, spec.origin


def _package_main_spec(name: str) -> tuple[ModuleSpec, str]:
    if name == "__main__" or name.endswith(".__main__"):
        raise _CannotRun("Cannot use package as __main__ module", 1)
    try:
        return _main_spec(name + ".__main__")
    except _CannotRun as error:
        if name not in sys.modules:
            raise
        raise _CannotRun(f"{error}; {name!r} is a package and cannot be directly executed", 1) from None


def _locate_command(text: str, args: list[str]) -> _Program:
    sys.argv[:] = ["-c", *args]
    _set_path0("")
    module = _main_module(__spec__=None, __package__=None, __loader__=importlib.machinery.BuiltinImporter)
    return _Program(module, "<string>", text)


def run_script(script: str, args: list[str]) -> None:
    """Run ``script`` as ``__main__`` with its loops rewritten, as ``python script`` would."""
    _execute(_locate_script(script, args))


def _execute(program: _Program) -> None:
    code = program.compile()
    sys.modules["__main__"] = program.module
    exec(code, program.module.__dict__)


def _run(locate: Callable[[], _Program]) -> int:
    """Locate, compile and run a program, reporting each stage's failure as python would."""
    try:
        program = locate()
    except _CannotRun as error:
        sys.stderr.write(f"{sys.executable}: {error}\n")
        return error.status
    except _SyntaxErrorFound as found:
        _report(found.error, with_frames=False)
        return 1
    except (_UsageError, SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:  # noqa: BLE001 - an error importing the module's package
        _report(error, with_frames=True)
        return 1
    try:
        code = program.compile()
    except Exception as error:  # noqa: BLE001 - the program's syntax error, reported as python does
        # A syntax error in the program itself has no frames at all.
        _report(error, with_frames=False)
        return 1
    sys.modules["__main__"] = program.module
    try:
        exec(code, program.module.__dict__)
    except SystemExit:
        raise
    except KeyboardInterrupt as interrupted:
        # Raised on: python prints it and then dies of SIGINT, as after the plain program's.
        _printed_from_the_program(interrupted, program.module.__dict__)
        raise
    except BaseException as error:  # noqa: BLE001 - reported like the interpreter does
        _report(error, with_frames=True)
        return 1
    return 0


def _printed_from_the_program(error: BaseException, namespace: dict[str, Any]) -> None:
    """Have python's printing of ``error``, uncaught, start at the program's first frame, not at
    runpy's and this module's (the program may set sys.excepthook meanwhile: then it is its own)."""
    hook = sys.excepthook

    def from_the_program(kind: type[BaseException], value: BaseException, traceback_: Any) -> None:
        sys.excepthook = hook
        if value is error:
            entry = traceback_
            while entry is not None and entry.tb_frame.f_globals is not namespace:
                entry = entry.tb_next
            if entry is not None:
                traceback_ = entry
                value.with_traceback(entry)
        hook(kind, value, traceback_)

    sys.excepthook = from_the_program


def _report(error: BaseException, with_frames: bool) -> None:
    """Print the error as python would: from the program's frame on."""
    traceback_ = None
    if with_frames:
        traceback_ = error.__traceback__
        here = os.path.abspath(__file__)
        while traceback_ is not None and os.path.abspath(traceback_.tb_frame.f_code.co_filename) == here:
            traceback_ = traceback_.tb_next
    # The default excepthook prints the exception's own traceback, so trim that.
    sys.excepthook(type(error), error.with_traceback(traceback_), traceback_)


def _file_argument(args: list[str], option: str) -> tuple[str, bytes] | int:
    """The one FILE ``option`` takes and its bytes, or the exit status of a one-line error."""
    if len(args) != 1:
        raise _UsageError(f"{option} takes one FILE")
    path = args[0]
    try:
        with open(path, "rb") as handle:
            return path, handle.read()
    except OSError as error:
        return _fail(f"cannot open {path!r}: {error.strerror}", 2)


def _show(args: list[str]) -> int:
    found = _file_argument(args, "--show")
    if isinstance(found, int):
        return found
    path, source = found
    try:
        text = show(source, path)
    except (SyntaxError, ValueError) as error:  # ValueError: null bytes, on Python 3.11
        return _fail(f"cannot rewrite {path!r}: {_one_line(error)}", 1)
    sys.stdout.write(text)
    return 0


def _explain(args: list[str]) -> int:
    found = _file_argument(args, "--explain")
    if isinstance(found, int):
        return found
    path, source = found
    from .explanation import explain

    try:
        report = explain(source, path)
    except (SyntaxError, ValueError) as error:  # ValueError: null bytes, on Python 3.11
        if isinstance(error, SyntaxError) and error.filename == path:
            # As 'python FILE' reports it: with the file's absolute path.
            error.filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        _report(error, with_frames=False)
        return 1
    sys.stdout.write(str(report))
    return 1 if report.refused else 0


def _one_line(error: BaseException) -> str:
    where = f"line {error.lineno}: " if isinstance(error, SyntaxError) and error.lineno else ""
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return where + " ".join(str(message).split())


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"paraloop: {message}\n")
    return status


def _option_value(option: str, args: list[str]) -> tuple[str, list[str]]:
    """The value of ``-m``/``-c`` (next argument, or attached as ``-mNAME``) and the arguments after it."""
    if len(args[0]) > 2:
        return args[0][2:], args[1:]
    if len(args) < 2:
        raise _UsageError(f"option {option} needs an argument")
    return args[1], args[2:]


def _dispatch(args: list[str]) -> int:
    first = args[0]
    if first in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if first == "--version":
        sys.stdout.write(f"paraloop {__version__}\n")
        return 0
    if first == "--show":
        return _show(args[1:])
    if first == "--explain":
        return _explain(args[1:])
    if first.startswith("-m"):
        name, rest = _option_value("-m", args)
        return _run(lambda: _locate_module(name, rest))
    if first.startswith("-c"):
        text, rest = _option_value("-c", args)
        return _run(lambda: _locate_command(text, rest))
    if first == "-":
        return _run(lambda: _locate_stdin(args[1:]))
    if first == "--" and len(args) > 1:
        args = args[1:]
    elif first.startswith("-"):
        raise _UsageError(f"unknown option {first!r}; --help lists the options")
    return _run(lambda: _locate_script(args[0], args[1:]))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    try:
        return _dispatch(args)
    except _UsageError as error:
        return _fail(str(error), 2)


def console_main() -> None:
    """The ``paraloop`` console script: ``paraloop ARGS`` is ``python -m paraloop ARGS``."""
    sys.exit(main())
