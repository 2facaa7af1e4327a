"""``python -m paraloop script.py``: the script runs as ``python script.py`` would, its loops in parallel.

Every test writes a real script into ``tmp_path`` and runs it in a subprocess,
then looks only at what a user sees: stdout, stderr and the exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

START_METHODS = ["fork", "forkserver", "spawn"]
TIMEOUT = 120


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without any PARALOOP_* setting, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    env.update(extra)
    return env


def write_script(directory: Path, source: str, name: str = "script.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def run_paraloop(
    script_path: str | os.PathLike[str],
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m paraloop SCRIPT ARGS...``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "paraloop", str(script_path), *args],
        capture_output=True,
        text=True,
        env=_env() if env is None else env,
        cwd=cwd,
        timeout=TIMEOUT,
    )


def run_plain(
    script_path: str | os.PathLike[str],
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT ARGS...``, for comparison."""
    return subprocess.run(
        [sys.executable, str(script_path), *args],
        capture_output=True,
        text=True,
        env=_env() if env is None else env,
        cwd=cwd,
        timeout=TIMEOUT,
    )


def line_of(path: Path, marker: str) -> int:
    """The 1-based line number of the only line of ``path`` that contains ``marker``."""
    numbers = [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    assert len(numbers) == 1, numbers
    return numbers[0]


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------
# 1. The script's view of itself
# --------------------------------------------------------------------------------------

SHOW_CONTEXT = """
    import json
    import sys

    print(json.dumps({
        "argv": sys.argv,
        "file": __file__,
        "path0": sys.path[0],
        "name": __name__,
        "spec": repr(__spec__),
    }))
"""


@pytest.mark.parametrize(
    "workdir,relative",
    [("", "proj/show.py"), ("elsewhere", "../proj/show.py")],
    ids=["subdirectory", "sibling-directory"],
)
def test_script_sees_argv_file_path_name_spec_as_plain_python(
    tmp_path: Path, workdir: str, relative: str
) -> None:
    """sys.argv, __file__, sys.path[0], __name__ and __spec__ are what 'python script.py' gives."""
    write_script(tmp_path / "proj", SHOW_CONTEXT, "show.py")
    cwd = tmp_path / workdir
    cwd.mkdir(exist_ok=True)

    plain = run_plain(relative, "a", "b", "--c", cwd=cwd)
    para = run_paraloop(relative, "a", "b", "--c", cwd=cwd)

    assert plain.returncode == 0, plain.stderr
    assert para.returncode == 0, para.stderr
    assert para.stderr == ""
    seen = json.loads(para.stdout)
    assert seen["argv"] == [relative, "a", "b", "--c"]
    assert seen["name"] == "__main__"
    assert seen["spec"] == "None"
    assert os.path.isabs(seen["file"]) and os.path.isabs(seen["path0"])
    assert json.loads(para.stdout) == json.loads(plain.stdout)


def test_symlinked_script_gets_the_real_directory_on_sys_path(tmp_path: Path) -> None:
    """For a symlinked script, sys.path[0] is the target's directory, as 'python script.py' gives."""
    write_script(tmp_path / "real", SHOW_CONTEXT, "show.py")
    (tmp_path / "bin").mkdir()
    link = tmp_path / "bin" / "tool.py"
    link.symlink_to(tmp_path / "real" / "show.py")

    plain = run_plain(link, cwd=tmp_path)
    para = run_paraloop(link, cwd=tmp_path)

    assert plain.returncode == 0, plain.stderr
    assert para.returncode == 0, para.stderr
    assert json.loads(para.stdout) == json.loads(plain.stdout)


# --------------------------------------------------------------------------------------
# 2-4. Scripts with and without a main guard, under every start method
# --------------------------------------------------------------------------------------

UNGUARDED = """
    import json
    import os

    from paraloop import ParaLoop, Variable, aggregation_strategies

    print("start", flush=True)


    def helper(x):
        return x * x + 1


    class Scaler:
        def __init__(self, factor):
            self.factor = factor

        def apply(self, x):
            return x * self.factor


    results = Variable([], aggregation_strategy=aggregation_strategies.Concatenate)
    total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
    pids = Variable(set(), aggregation_strategy=aggregation_strategies.Union)
    for i in ParaLoop(range(50), num_processes=2, chunksize=5):
        value = Scaler(3).apply(helper(i))
        results.append(value)
        total += value
        pids.add(os.getpid())

    print(json.dumps({
        "results": results.value,
        "total": total.value,
        "pids": sorted(pids.value),
        "me": os.getpid(),
    }))
"""

GUARDED = """
    import json
    import os

    from paraloop import ParaLoop, Variable, aggregation_strategies

    print("start", flush=True)


    def helper(x):
        return x * x + 1


    class Scaler:
        def __init__(self, factor):
            self.factor = factor

        def apply(self, x):
            return x * self.factor


    def main():
        offset = 7
        scaler = Scaler(3)

        def shift(x):
            return x + offset

        results = Variable([], aggregation_strategy=aggregation_strategies.Concatenate)
        total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        pids = Variable(set(), aggregation_strategy=aggregation_strategies.Union)
        for i in ParaLoop(range(50), num_processes=2, chunksize=5):
            value = shift(scaler.apply(helper(i)))
            results.append(value)
            total += value
            pids.add(os.getpid())

        print(json.dumps({
            "results": results.value,
            "total": total.value,
            "pids": sorted(pids.value),
            "me": os.getpid(),
        }))


    if __name__ == "__main__":
        main()
"""


def _check_loop_output(result: subprocess.CompletedProcess[str], expected: list[int]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    lines = result.stdout.splitlines()
    assert lines.count("start") == 1, result.stdout
    assert len(lines) == 2, result.stdout
    seen = json.loads(lines[-1])
    assert seen["results"] == expected
    assert seen["total"] == sum(expected)
    assert seen["pids"], "no iteration recorded its pid"
    assert seen["me"] not in seen["pids"]
    assert len(seen["pids"]) <= 2


@pytest.mark.parametrize("method", START_METHODS)
def test_script_without_main_guard_runs_once(tmp_path: Path, method: str) -> None:
    """A script without a main guard runs once, its loop in workers, under every start method."""
    script = write_script(tmp_path, UNGUARDED)
    result = run_paraloop(script, env=_env(PARALOOP_START_METHOD=method), cwd=tmp_path)
    _check_loop_output(result, [(i * i + 1) * 3 for i in range(50)])


@pytest.mark.parametrize("method", START_METHODS)
def test_script_with_main_guard_and_loop_in_function(tmp_path: Path, method: str) -> None:
    """A loop inside main() with captured locals and a closure runs in workers, under every start method."""
    script = write_script(tmp_path, GUARDED)
    result = run_paraloop(script, env=_env(PARALOOP_START_METHOD=method), cwd=tmp_path)
    _check_loop_output(result, [(i * i + 1) * 3 + 7 for i in range(50)])


RAISING_SLOW = """
    import time

    from paraloop import ParaLoop

    for i in ParaLoop(range(40), num_processes=2, chunksize=1):
        if i == 3:
            raise ValueError("stop here")
        time.sleep(0.2)
"""


def _group_members(pgrp: int) -> list[str]:
    """'pid state comm' of every live (non-zombie) process whose process group is ``pgrp``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended while we looked
        comm_end = text.rfind(")")
        fields = text[comm_end + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgrp and state != "Z":
            found.append(f"{stat.parent.name} {state} {text[: comm_end + 1]}")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("kind", ["finishes", "raises"])
def test_no_process_outlives_the_script(tmp_path: Path, method: str, kind: str) -> None:
    """When the script exits, no worker (nor forkserver or helper) process of it remains."""
    script = write_script(tmp_path, UNGUARDED if kind == "finishes" else RAISING_SLOW)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    # Output goes to files: a leftover process holding a pipe must not make us hang.
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "paraloop", str(script)],
            stdout=stdout,
            stderr=stderr,
            env=_env(PARALOOP_START_METHOD=method),
            cwd=tmp_path,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == (0 if kind == "finishes" else 1), err.read_text()
    if kind == "raises":
        assert "ValueError: stop here" in err.read_text()
    # Children are reaped asynchronously: allow them a moment to go.
    deadline = time.monotonic() + 3.0
    while (left := _group_members(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert left == []
    finally:
        for line in left:
            try:
                os.kill(int(line.split()[0]), 9)
            except OSError:
                pass


# --------------------------------------------------------------------------------------
# 5. Errors
# --------------------------------------------------------------------------------------

RAISES_AT_13 = """
    from paraloop import ParaLoop, Variable, aggregation_strategies

    total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
    for i in ParaLoop(range(40), num_processes=2, chunksize=4):
        total += i
        if i == 13:
            raise KeyError("missing 13")  # the failing line
    print("not reached")
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_exception_in_iteration_is_reported_like_python(tmp_path: Path, method: str) -> None:
    """An exception in an iteration exits 1 with a traceback at the script's line and no cli.py frames."""
    script = write_script(tmp_path, RAISES_AT_13)
    line = line_of(script, "the failing line")
    result = run_paraloop(script, env=_env(PARALOOP_START_METHOD=method), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "KeyError: 'missing 13'" in result.stderr
    assert f'File "{script}", line {line}' in result.stderr
    assert "iteration 13" in result.stderr
    assert "paraloop/cli.py" not in result.stderr, result.stderr


def test_exception_outside_loops_gives_the_same_traceback_as_python(tmp_path: Path) -> None:
    """A script raising outside any loop prints exactly the traceback 'python script.py' prints."""
    script = write_script(
        tmp_path,
        """
        def fail(key):
            raise KeyError(key)

        fail("gone")
        """,
    )
    plain = run_plain(script, cwd=tmp_path)
    para = run_paraloop(script, cwd=tmp_path)

    assert plain.returncode == para.returncode == 1
    assert para.stdout == plain.stdout == ""
    assert para.stderr == plain.stderr


def test_syntax_error_in_script_is_reported_like_python(tmp_path: Path) -> None:
    """A script with a syntax error exits 1 with exactly the report 'python script.py' prints."""
    script = write_script(tmp_path, "x = 1\ny = (\n")
    plain = run_plain(script, cwd=tmp_path)
    para = run_paraloop(script, cwd=tmp_path)

    assert plain.returncode == para.returncode == 1
    assert f'File "{script}", line 2' in para.stderr
    assert "SyntaxError" in para.stderr
    assert para.stderr == plain.stderr


# --------------------------------------------------------------------------------------
# 6. Command line
# --------------------------------------------------------------------------------------


def test_show_prints_the_rewritten_source(tmp_path: Path) -> None:
    """--show FILE prints the rewritten source, with the loop body and the runtime call."""
    script = write_script(tmp_path, UNGUARDED)
    result = subprocess.run(
        [sys.executable, "-m", "paraloop", "--show", str(script)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "def __paraloop_body_1__" in result.stdout
    assert "__paraloop_rt__.run(" in result.stdout
    assert "start" not in result.stderr


def test_help_exits_0_and_documents_the_start_method(tmp_path: Path) -> None:
    """--help prints usage naming PARALOOP_START_METHOD and exits 0."""
    for flag in ("--help", "-h"):
        result = subprocess.run(
            [sys.executable, "-m", "paraloop", flag],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        assert "PARALOOP_START_METHOD" in result.stdout


def test_missing_script_exits_2_naming_it(tmp_path: Path) -> None:
    """A script that does not exist: exit code 2 and its path in stderr, as python does."""
    missing = tmp_path / "no_such_script.py"
    result = run_paraloop(missing, cwd=tmp_path)
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert result.stdout == ""


def test_no_arguments_exits_2(tmp_path: Path) -> None:
    """'python -m paraloop' with no script exits 2 with the usage."""
    result = subprocess.run(
        [sys.executable, "-m", "paraloop"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "usage" in result.stderr.lower()


# --------------------------------------------------------------------------------------
# 7-9. Plain runs, exits, by-value transport
# --------------------------------------------------------------------------------------


def test_plain_python_runs_the_loop_sequentially_with_one_warning(tmp_path: Path) -> None:
    """'python script.py' without the marker runs the loop sequentially and warns once."""
    script = write_script(tmp_path, UNGUARDED)
    result = run_plain(script, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("start") == 1
    seen = json.loads(lines[-1])
    expected = [(i * i + 1) * 3 for i in range(50)]
    assert seen["results"] == expected
    assert seen["total"] == sum(expected)
    assert seen["pids"] == [seen["me"]]
    warning_lines = [text for text in result.stderr.splitlines() if "ParaLoopWarning" in text]
    assert len(warning_lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["module", "function"])
def test_sys_exit_after_the_loop_sets_the_exit_code(tmp_path: Path, where: str) -> None:
    """sys.exit(3) after a loop ends the run with exit code 3 and no traceback."""
    body = """
        total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        for i in ParaLoop(range(20), num_processes=2):
            total += i
        print(total.value, flush=True)
        sys.exit(3)
    """
    if where == "function":
        body = "def main():\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\nmain()\n"
    source = (
        "import sys\nfrom paraloop import ParaLoop, Variable, aggregation_strategies\n"
        + textwrap.dedent(body)
    )
    script = write_script(tmp_path, source)
    result = run_paraloop(script, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == str(sum(range(20)))
    assert result.stderr == ""


@pytest.mark.parametrize("method", START_METHODS)
def test_sys_exit_inside_the_loop_body_sets_the_exit_code(tmp_path: Path, method: str) -> None:
    """sys.exit(3) raised in an iteration ends the run with exit code 3, as the plain loop would."""
    script = write_script(
        tmp_path,
        """
        import sys
        from paraloop import ParaLoop

        for i in ParaLoop(range(20), num_processes=2, chunksize=2):
            if i == 5:
                sys.exit(3)
        print("not reached")
        """,
    )
    result = run_paraloop(script, env=_env(PARALOOP_START_METHOD=method), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""


def test_lambda_and_module_constant_travel_by_value_under_spawn(tmp_path: Path) -> None:
    """A lambda and a dict constant of the script reach spawned workers by value."""
    script = write_script(
        tmp_path,
        """
        import json
        from paraloop import ParaLoop, Variable, aggregation_strategies

        TABLE = {"a": 1, "b": 20, "c": 300}
        weight = lambda key: TABLE[key] * 2

        out = Variable([], aggregation_strategy=aggregation_strategies.Concatenate)
        total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        for key in ParaLoop(list("abc") * 10, num_processes=2, chunksize=3, start_method="spawn"):
            out.append(weight(key))
            total += TABLE[key]
        print(json.dumps([out.value, total.value]))
        """,
    )
    result = run_paraloop(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    table = {"a": 1, "b": 20, "c": 300}
    keys = list("abc") * 10
    assert json.loads(result.stdout) == [[table[k] * 2 for k in keys], sum(table[k] for k in keys)]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_script_classes_come_back_as_the_scripts_own(tmp_path: Path, method: str) -> None:
    """Instances of a dataclass defined in the script are of the script's class after the loop."""
    script = tmp_path / "classes.py"
    script.write_text(
        textwrap.dedent(f"""
            from dataclasses import dataclass
            from paraloop import ParaLoop

            @dataclass
            class Point:
                x: int

            out = []
            for i in ParaLoop(range(6), num_processes=2, chunksize=1, start_method={method!r}):
                out.append(Point(i))
            last = Point(-1)
            for p in ParaLoop([Point(1), Point(2)], num_processes=2, chunksize=1, start_method={method!r}):
                last = Point(p.x * 10)
            print(all(type(p) is Point for p in out), out == [Point(i) for i in range(6)])
            print(type(last) is Point, last == Point(20))
        """)
    )
    result = run_paraloop(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 4
