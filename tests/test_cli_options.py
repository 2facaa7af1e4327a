"""The command line's options: ``-m MODULE``, ``-c CODE``, ``--version``, ``--show`` and its
errors, unknown options, the installed ``paraloop`` command, and programs that are a directory
or a zip archive with a ``__main__.py`` or come from standard input (``-``).

Every test runs real programs in a subprocess from ``tmp_path`` and looks only at what a user
sees: stdout, stderr and the exit code, compared with what plain ``python -m``/``python -c``
print for the same code where python has an answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

START_METHODS = ["fork", "forkserver", "spawn"]
TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "paraloop"


def _env() -> dict[str, str]:
    """The test's environment without any PARALOOP_* setting."""
    return {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=TIMEOUT)


def paraloop(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m paraloop ARGS...`` run in ``cwd``."""
    return _run([sys.executable, "-m", "paraloop", *args], cwd)


def python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain ``python ARGS...`` run in ``cwd``, for comparison."""
    return _run([sys.executable, *args], cwd)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def only_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# What the running program sees of itself; the same for a module and for -c code.
CONTEXT = """
    import json
    import sys

    print(json.dumps({
        "argv": sys.argv,
        "path0": sys.path[0],
        "name": __name__,
        "file": globals().get("__file__"),
        "package": __package__,
        "spec": getattr(__spec__, "name", None),
        "cached": globals().get("__cached__"),
        "is_main_module": sys.modules["__main__"].__dict__ is globals(),
        "imported_under_own_name": getattr(__spec__, "name", None) in sys.modules,
    }))
"""

# A loop without the '# paraloop: enable' marker that uses a function from a sibling module
# (a relative import), a function and a class of its own; the start method is argv[1].
LOOP = """
    import json
    import os
    import sys

    from paraloop import ParaLoop
    {import_helper}

    def shift(x):
        return x + 1


    class Scale:
        def __init__(self, k):
            self.k = k

        def apply(self, x):
            return x * self.k


    out = []
    pids = set()
    for i in ParaLoop(range(50), num_processes=2, chunksize=5, start_method=sys.argv[1]):
        out.append(Scale(3).apply(shift(square(i))))
        pids.add(os.getpid())
    print(json.dumps({{"out": out, "in_workers": any(p != os.getpid() for p in pids)}}))
"""

MODULE_LOOP = LOOP.format(import_helper="from .helpers import square")
COMMAND_LOOP = LOOP.format(import_helper="square = lambda x: x * x")


def make_packages(root: Path) -> None:
    """``pkg`` (modules 'where', 'loop', 'fails', 'broken', a __main__ with the loop) and
    ``ctx`` (a __main__ that shows its context) and ``plain`` (no __main__)."""
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "helpers.py", "def square(x):\n    return x * x\n")
    write(root / "pkg" / "where.py", CONTEXT)
    write(root / "pkg" / "loop.py", MODULE_LOOP)
    write(root / "pkg" / "__main__.py", MODULE_LOOP)
    write(root / "pkg" / "fails.py", "def fail(key):\n    raise KeyError(key)\n\nfail('gone')\n")
    write(root / "pkg" / "broken.py", "x = 1\ny = (\n")
    write(root / "ctx" / "__init__.py", "")
    write(root / "ctx" / "__main__.py", CONTEXT)
    write(root / "plain" / "__init__.py", "")


def without_runpy_frames(stderr: str) -> str:
    """Python's report for ``python -m``, less the frames of runpy and importlib that paraloop
    does not show (and the header they leave for a syntax error)."""
    lines = []
    skipping = False
    for line in stderr.splitlines(keepends=True):
        if line.startswith('  File "'):
            # runpy is frozen from 3.11 on; before, its frames name runpy.py (and show source),
            # and, for a zip archive on 3.10, importlib/util.py's find_spec.
            skipping = (
                line.startswith('  File "<frozen ')
                or '/runpy.py", line ' in line
                or "/importlib/" in line.partition('", line ')[0]
            )
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            lines.append(line)
    frames = [line for line in lines if line.startswith('  File "') and ", in " in line]
    if lines and lines[0].startswith("Traceback") and not frames:
        lines = lines[1:]
    return "".join(lines)


# --------------------------------------------------------------------------------------
# -m MODULE
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["pkg.where", "ctx"], ids=["module", "package-main"])
def test_module_sees_what_python_dash_m_gives_it(tmp_path: Path, target: str) -> None:
    """sys.argv, sys.path[0], __name__, __file__, __package__, __spec__ are python -m's."""
    make_packages(tmp_path)
    plain = only_json(python(tmp_path, "-m", target, "a", "--b"))
    para = paraloop(tmp_path, "-m", target, "a", "--b")

    assert para.stderr == ""
    seen = only_json(para)
    assert seen == plain
    assert seen["name"] == "__main__"
    assert seen["path0"] == os.path.realpath(tmp_path)
    assert seen["argv"][1:] == ["a", "--b"] and seen["argv"][0].endswith(
        "__main__.py" if target == "ctx" else "where.py"
    )


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("target", ["pkg.loop", "pkg"], ids=["module", "package-main"])
def test_module_loop_runs_in_workers_without_the_marker(tmp_path: Path, target: str, method: str) -> None:
    """The module's loop (no marker) runs in workers under every start method, with the plain result."""
    make_packages(tmp_path)
    plain = python(tmp_path, "-m", target, method)
    para = paraloop(tmp_path, "-m", target, method)

    assert "ParaLoopWarning" in plain.stderr  # plain python runs it sequentially
    assert para.stderr == ""
    seen = only_json(para)
    assert seen["out"] == only_json(plain)["out"] == [(i * i + 1) * 3 for i in range(50)]
    assert seen["in_workers"] is True


def test_module_error_is_reported_like_python(tmp_path: Path) -> None:
    """An exception in the module: python -m's traceback (less runpy's frames), exit 1."""
    make_packages(tmp_path)
    plain = python(tmp_path, "-m", "pkg.fails")
    para = paraloop(tmp_path, "-m", "pkg.fails")

    assert plain.returncode == para.returncode == 1
    assert para.stdout == ""
    assert "KeyError: 'gone'" in para.stderr
    assert para.stderr == without_runpy_frames(plain.stderr)


def test_module_syntax_error_is_reported_like_python(tmp_path: Path) -> None:
    """A syntax error in the module: python -m's report of it (less runpy's frames), exit 1."""
    make_packages(tmp_path)
    plain = python(tmp_path, "-m", "pkg.broken")
    para = paraloop(tmp_path, "-m", "pkg.broken")

    assert plain.returncode == para.returncode == 1
    assert f'File "{tmp_path / "pkg" / "broken.py"}", line 2' in para.stderr
    assert para.stderr == without_runpy_frames(plain.stderr)


@pytest.mark.parametrize("target", ["nosuch", "pkg.nosuch", "plain", ".relative", "pkg.where.x"])
def test_module_that_cannot_run_gives_pythons_one_line_error(tmp_path: Path, target: str) -> None:
    """A missing module, a package without __main__, a relative name: python -m's line and code."""
    make_packages(tmp_path)
    plain = python(tmp_path, "-m", target)
    para = paraloop(tmp_path, "-m", target)

    assert para.returncode == plain.returncode == 1
    assert para.stderr == plain.stderr
    assert para.stderr.count("\n") == 1 and para.stderr.startswith(f"{sys.executable}: ")
    assert "Traceback" not in para.stderr


def test_module_name_may_be_attached_to_the_option(tmp_path: Path) -> None:
    """'-mNAME' works as '-m NAME', as it does for python."""
    make_packages(tmp_path)
    assert only_json(paraloop(tmp_path, "-mpkg.where", "x")) == only_json(
        python(tmp_path, "-mpkg.where", "x")
    )


# --------------------------------------------------------------------------------------
# -c CODE
# --------------------------------------------------------------------------------------


def test_command_sees_what_python_dash_c_gives_it(tmp_path: Path) -> None:
    """sys.argv[0] == '-c', sys.path[0] == '', __name__, no __file__ or __spec__: python -c's."""
    code = textwrap.dedent(CONTEXT)
    plain = only_json(python(tmp_path, "-c", code, "a", "--b"))
    para = paraloop(tmp_path, "-c", code, "a", "--b")

    assert para.stderr == ""
    seen = only_json(para)
    assert seen == plain
    assert seen["argv"] == ["-c", "a", "--b"]
    assert seen["path0"] == ""
    assert seen["name"] == "__main__" and seen["file"] is None and seen["spec"] is None


@pytest.mark.parametrize("method", START_METHODS)
def test_command_loop_runs_in_workers_under_every_start_method(tmp_path: Path, method: str) -> None:
    """The code's loop runs in workers, its own function, lambda and class sent by value."""
    code = textwrap.dedent(COMMAND_LOOP)
    plain = python(tmp_path, "-c", code, method)
    para = paraloop(tmp_path, "-c", code, method)

    assert "ParaLoopWarning" in plain.stderr
    assert para.stderr == ""
    seen = only_json(para)
    assert seen["out"] == only_json(plain)["out"] == [(i * i + 1) * 3 for i in range(50)]
    assert seen["in_workers"] is True


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_command_loop_error_names_the_code_line(tmp_path: Path, method: str) -> None:
    """An exception in an iteration of -c code: exit 1, the <string> line and the iteration."""
    code = textwrap.dedent(f"""
        from paraloop import ParaLoop

        for i in ParaLoop(range(8), num_processes=2, chunksize=1, start_method={method!r}):
            if i == 5:
                raise ValueError("five")
    """)
    result = paraloop(tmp_path, "-c", code)

    assert result.returncode == 1
    assert result.stdout == ""
    assert 'File "<string>", line 6' in result.stderr
    lines = result.stderr.rstrip().splitlines()
    named = "paraloop: raised in iteration 5 (item 5) of the loop at <string>, line 4"
    if sys.version_info >= (3, 11):
        assert lines[-2:] == ["ValueError: five", named]
    else:  # no exception notes before 3.11: the remote traceback carries the line
        assert lines[-1] == "ValueError: five" and named in lines


@pytest.mark.parametrize(
    "code",
    ["def f(key):\n    raise KeyError(key)\n\nf('gone')\n", "x = 1\ny = (\n"],
    ids=["raises", "syntax"],
)
def test_command_error_is_reported_exactly_like_python(tmp_path: Path, code: str) -> None:
    """An exception or a syntax error in -c code: exactly python -c's report, exit 1."""
    plain = python(tmp_path, "-c", code)
    para = paraloop(tmp_path, "-c", code)

    assert plain.returncode == para.returncode == 1
    assert para.stdout == ""
    assert para.stderr == plain.stderr


# --------------------------------------------------------------------------------------
# --version, --show, scripts that cannot run, wrong options
# --------------------------------------------------------------------------------------


def _version() -> str:
    match = re.search(r'__version__ = "([^"]+)"', (ROOT / "paraloop" / "_version.py").read_text())
    assert match is not None
    return match.group(1)


def test_version_prints_paraloops_version(tmp_path: Path) -> None:
    """--version prints 'paraloop X.Y.Z' and exits 0."""
    result = paraloop(tmp_path, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"paraloop {_version()}\n", "")
    assert re.fullmatch(r"paraloop \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    "target,message,status",
    [
        ("missing.py", "paraloop: cannot open 'missing.py': No such file or directory", 2),
        ("folder", "paraloop: cannot open 'folder': Is a directory", 2),
        ("broken.py", "paraloop: cannot rewrite 'broken.py': line 2: '(' was never closed", 1),
    ],
    ids=["missing", "directory", "syntax-error"],
)
def test_show_of_a_file_it_cannot_rewrite_is_one_line(
    tmp_path: Path, target: str, message: str, status: int
) -> None:
    """--show of a missing file, a directory or a file with a syntax error: one line, no traceback."""
    (tmp_path / "folder").mkdir()
    write(tmp_path / "broken.py", "x = 1\ny = (\n")
    result = paraloop(tmp_path, "--show", target)
    assert (result.returncode, result.stdout, result.stderr) == (status, "", message + "\n")


def test_missing_script_is_reported_exactly_like_python(tmp_path: Path) -> None:
    """A script that does not exist: python's own line ('can't open file ... [Errno 2]'), exit 2."""
    plain = python(tmp_path, "missing.py")
    para = paraloop(tmp_path, "missing.py")
    assert (para.returncode, para.stdout, para.stderr) == (plain.returncode, "", plain.stderr)
    assert para.returncode == 2 and "[Errno 2]" in para.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bogus"], "paraloop: unknown option '--bogus'; --help lists the options"),
        (["-x", "script.py"], "paraloop: unknown option '-x'; --help lists the options"),
        (["-m"], "paraloop: option -m needs an argument"),
        (["-c"], "paraloop: option -c needs an argument"),
        (["--show"], "paraloop: --show takes one FILE"),
    ],
    ids=["bogus", "unknown-before-script", "m-alone", "c-alone", "show-alone"],
)
def test_wrong_option_is_a_one_line_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    """An unknown option or a missing option argument: one line on stderr, exit 2."""
    result = paraloop(tmp_path, *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")


def test_double_dash_ends_the_options(tmp_path: Path) -> None:
    """'--' lets a script whose name starts with '-' run, as 'python -- -name.py' does."""
    write(tmp_path / "-odd.py", CONTEXT)
    assert only_json(paraloop(tmp_path, "--", "-odd.py", "x")) == only_json(
        python(tmp_path, "--", "-odd.py", "x")
    )


def test_help_documents_the_options_and_the_command(tmp_path: Path) -> None:
    """--help names -m, -c, --version and the installed 'paraloop' command."""
    result = paraloop(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for text in ("-m MODULE", "-c CODE", "--version", "--show FILE", "'paraloop' command"):
        assert text in result.stdout


# --------------------------------------------------------------------------------------
# The installed 'paraloop' command
# --------------------------------------------------------------------------------------


def console(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``paraloop`` command, or its entry point where it is not installed."""
    if CONSOLE_SCRIPT.exists():
        return _run([str(CONSOLE_SCRIPT), *args], cwd)
    starter = "import sys; from paraloop.cli import console_main; sys.argv[0] = 'paraloop'; console_main()"
    return _run([sys.executable, "-c", starter, *args], cwd)


def test_console_command_runs_a_module_as_python_dash_m(tmp_path: Path) -> None:
    """'paraloop -m MODULE' gives the module python -m's context (sys.path[0] the current directory)."""
    make_packages(tmp_path)
    assert only_json(console(tmp_path, "-m", "pkg.where", "a")) == only_json(
        python(tmp_path, "-m", "pkg.where", "a")
    )


def test_console_command_runs_code_and_loops_as_python_dash_m_paraloop(tmp_path: Path) -> None:
    """'paraloop -c CODE' gives python -c's context, runs loops in workers, and --version works."""
    code = textwrap.dedent(CONTEXT)
    assert only_json(console(tmp_path, "-c", code, "a")) == only_json(python(tmp_path, "-c", code, "a"))
    loop = only_json(console(tmp_path, "-c", textwrap.dedent(COMMAND_LOOP), "spawn"))
    assert loop == {"out": [(i * i + 1) * 3 for i in range(50)], "in_workers": True}
    version = console(tmp_path, "--version")
    assert (version.returncode, version.stdout) == (0, f"paraloop {_version()}\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P is new in 3.11")
@pytest.mark.parametrize("how", ["-c", "-m"])
def test_safe_path_flag_keeps_sys_path_as_python_does(tmp_path: Path, how: str) -> None:
    """Under 'python -P' no directory is put first on sys.path, as 'python -P -c/-m' puts none."""
    make_packages(tmp_path)
    target = textwrap.dedent(CONTEXT) if how == "-c" else "ctx"
    # -P keeps the current directory off sys.path: 'ctx' is found through PYTHONPATH.
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    plain = subprocess.run(
        [sys.executable, "-P", how, target],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
    )
    para = subprocess.run(
        [sys.executable, "-P", "-m", "paraloop", how, target],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
    )
    assert para.stderr == ""
    assert only_json(para)["path0"] == only_json(plain)["path0"] == str(tmp_path)


# --------------------------------------------------------------------------------------
# A directory or a zip archive with __main__.py, and '-' (the program from stdin)
# --------------------------------------------------------------------------------------

# The loop of a directory's or archive's __main__.py: its helper module sits beside it.
MAIN_LOOP = LOOP.format(import_helper="from helpers import square")
STDIN_LOOP = COMMAND_LOOP


def make_app(root: Path, kind: str, files: dict[str, str], name: str = "app") -> str:
    """A directory ``name`` or a zip archive ``name.zip`` holding ``files``; its name as given."""
    if kind == "directory":
        for file, source in files.items():
            write(root / name / file, source)
        return name
    import zipfile

    with zipfile.ZipFile(root / f"{name}.zip", "w") as archive:
        for file, source in files.items():
            archive.writestr(file, textwrap.dedent(source).lstrip())
    return f"{name}.zip"


def piped(cwd: Path, source: str, *args: str, paraloop: bool) -> subprocess.CompletedProcess[str]:
    """``python - ARGS`` or ``python -m paraloop - ARGS`` with ``source`` on standard input."""
    command = [sys.executable, *(["-m", "paraloop"] if paraloop else []), "-", *args]
    return subprocess.run(
        command, input=source, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=TIMEOUT
    )


KINDS = ["directory", "zip"]


@pytest.mark.parametrize("kind", KINDS)
def test_directory_or_zip_sees_what_python_gives_it(tmp_path: Path, kind: str) -> None:
    """sys.argv (the name as given), sys.path[0] (its absolute path), __name__, __file__,
    __package__, __spec__, __cached__ are what 'python app' and 'python app.zip' set."""
    target = make_app(tmp_path, kind, {"__main__.py": CONTEXT})
    plain = only_json(python(tmp_path, target, "a", "--b"))
    para = paraloop(tmp_path, target, "a", "--b")

    assert para.stderr == ""
    seen = only_json(para)
    assert seen == plain
    assert seen["argv"] == [target, "a", "--b"]
    assert seen["path0"] == str(tmp_path / target)
    assert seen["file"] == str(tmp_path / target / "__main__.py")
    assert (seen["name"], seen["spec"], seen["package"]) == ("__main__", "__main__", "")


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_directory_or_zip_loop_runs_in_workers(tmp_path: Path, kind: str, method: str) -> None:
    """Its __main__.py's loop (no marker) runs in workers under every start method, with a
    helper module imported from beside it, its own function and class; the plain result."""
    target = make_app(
        tmp_path, kind, {"__main__.py": MAIN_LOOP, "helpers.py": "def square(x):\n    return x * x\n"}
    )
    plain = python(tmp_path, target, method)
    para = paraloop(tmp_path, target, method)

    assert "ParaLoopWarning" in plain.stderr
    assert para.stderr == ""
    seen = only_json(para)
    assert seen["out"] == only_json(plain)["out"] == [(i * i + 1) * 3 for i in range(50)]
    assert seen["in_workers"] is True


MARKED_HELPER = """
    # paraloop: enable
    import os

    from paraloop import ParaLoop


    def pids():
        seen = set()
        for i in ParaLoop(range(8), num_processes=2, chunksize=1):
            seen.add(os.getpid())
        return seen
"""
USES_MARKED = """
    import os

    import marked

    print("in workers" if os.getpid() not in marked.pids() else "in the caller")
"""


def test_marked_module_in_a_directory_is_rewritten_in_a_zip_it_warns(tmp_path: Path) -> None:
    """A marked module imported from the directory is rewritten; from a zip archive paraloop
    does not rewrite it, and says so (its loop runs sequentially, correctly)."""
    files = {"__main__.py": USES_MARKED, "marked.py": MARKED_HELPER}
    directory = paraloop(tmp_path, make_app(tmp_path, "directory", files))
    archive = paraloop(tmp_path, make_app(tmp_path, "zip", files))

    assert (directory.returncode, directory.stdout, directory.stderr) == (0, "in workers\n", "")
    assert (archive.returncode, archive.stdout) == (0, "in the caller\n")
    assert (
        "ParaLoopWarning: module 'marked' carries '# paraloop: enable' but is imported from a zip "
        "archive, which paraloop does not rewrite" in archive.stderr
    )


@pytest.mark.parametrize("kind", KINDS)
def test_directory_or_zip_without_main_is_pythons_one_line_error(tmp_path: Path, kind: str) -> None:
    """No __main__.py in it: python's own line ("can't find '__main__' module in ..."), exit 1."""
    target = make_app(tmp_path, kind, {"other.py": "print('not run')\n"})
    plain = python(tmp_path, target)
    para = paraloop(tmp_path, target)

    assert (para.returncode, para.stdout, para.stderr) == (plain.returncode, "", plain.stderr)
    assert para.stderr == f"{sys.executable}: can't find '__main__' module in {str(tmp_path / target)!r}\n"
    assert para.returncode == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "code",
    ["def f(key):\n    raise KeyError(key)\n\nf('gone')\n", "x = 1\ny = (\n"],
    ids=["raises", "syntax"],
)
def test_directory_or_zip_error_is_reported_like_python(tmp_path: Path, kind: str, code: str) -> None:
    """An exception or a syntax error in __main__.py: python's report (less runpy's frames), exit 1."""
    target = make_app(tmp_path, kind, {"__main__.py": code})
    plain = python(tmp_path, target)
    para = paraloop(tmp_path, target)

    assert plain.returncode == para.returncode == 1
    assert para.stdout == ""
    assert f'File "{tmp_path / target / "__main__.py"}", line ' in para.stderr
    assert para.stderr == without_runpy_frames(plain.stderr)


def test_file_named_zip_that_is_no_archive_runs_as_a_script(tmp_path: Path) -> None:
    """What python runs as a zip archive is what zipimport reads, not a name: 'x.zip' holding
    code is a script, its loops rewritten."""
    write(tmp_path / "notes.zip", CONTEXT)
    plain = only_json(python(tmp_path, "notes.zip", "a"))
    para = paraloop(tmp_path, "notes.zip", "a")

    assert para.stderr == ""
    assert only_json(para) == plain
    assert plain["file"] == str(tmp_path / "notes.zip") and plain["spec"] is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P is new in 3.11")
def test_safe_path_flag_still_puts_the_directory_first(tmp_path: Path) -> None:
    """'python -P app' still puts app first on sys.path (only the script's directory and the
    current directory are left off): so does 'python -P -m paraloop app'."""
    target = make_app(tmp_path, "directory", {"__main__.py": CONTEXT})
    plain = only_json(python(tmp_path, "-P", target))
    para = _run([sys.executable, "-P", "-m", "paraloop", target], tmp_path)

    assert para.stderr == ""
    assert only_json(para) == plain
    assert plain["path0"] == str(tmp_path / target)


def test_stdin_program_sees_what_python_dash_gives_it(tmp_path: Path) -> None:
    """'-': sys.argv[0] == '-', sys.path[0] == '', __file__ '<stdin>', no __spec__: python -'s."""
    code = textwrap.dedent(CONTEXT)
    plain = only_json(piped(tmp_path, code, "a", "--b", paraloop=False))
    para = piped(tmp_path, code, "a", "--b", paraloop=True)

    assert para.stderr == ""
    seen = only_json(para)
    assert seen == plain
    assert seen["argv"] == ["-", "a", "--b"]
    assert (seen["path0"], seen["file"], seen["spec"]) == ("", "<stdin>", None)


@pytest.mark.parametrize("method", START_METHODS)
def test_stdin_program_loop_runs_in_workers(tmp_path: Path, method: str) -> None:
    """The piped program's loop runs in workers, its function, lambda and class sent by value."""
    code = textwrap.dedent(STDIN_LOOP)
    plain = piped(tmp_path, code, method, paraloop=False)
    para = piped(tmp_path, code, method, paraloop=True)

    assert "ParaLoopWarning" in plain.stderr
    assert para.stderr == ""
    seen = only_json(para)
    assert seen["out"] == only_json(plain)["out"] == [(i * i + 1) * 3 for i in range(50)]
    assert seen["in_workers"] is True


@pytest.mark.parametrize(
    "code",
    ["def f(key):\n    raise KeyError(key)\n\nf('gone')\n", "x = 1\ny = (\n"],
    ids=["raises", "syntax"],
)
def test_stdin_program_error_is_reported_exactly_like_python(tmp_path: Path, code: str) -> None:
    """An exception or a syntax error in the piped program: exactly python -'s report, exit 1."""
    plain = piped(tmp_path, code, paraloop=False)
    para = piped(tmp_path, code, paraloop=True)

    assert plain.returncode == para.returncode == 1
    assert para.stdout == ""
    assert para.stderr == plain.stderr
    assert 'File "<stdin>", line ' in para.stderr


def test_help_names_directories_zips_and_stdin(tmp_path: Path) -> None:
    result = paraloop(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "python -m paraloop [--] DIRECTORY|ZIPFILE [ARGS...]" in result.stdout
    assert "python -m paraloop - [ARGS...]" in result.stdout
    assert "read the program from standard input" in result.stdout
