"""The examples do what the README says they do."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=EXAMPLES.parent
    )


def check_readme_output(stdout: str) -> None:
    counter, dictionary = stdout.splitlines()
    assert counter == "4953"
    parsed = ast.literal_eval(dictionary)
    assert list(parsed) == [f"key_{i}" for i in range(100)]
    assert set(parsed.values()) == {"Hi!"}


def test_readme_example_through_paraloop() -> None:
    """python -m paraloop examples/readme_example.py prints 4953 and the keys in order, no warning."""
    result = run("-m", "paraloop", "examples/readme_example.py")
    assert result.returncode == 0, result.stderr
    check_readme_output(result.stdout)
    assert result.stderr == ""


def test_readme_example_plain_python_warns_once() -> None:
    """Plain python prints the same, plus one ParaLoopWarning on stderr."""
    result = run("examples/readme_example.py")
    assert result.returncode == 0, result.stderr
    check_readme_output(result.stdout)
    assert result.stderr.count("ParaLoopWarning") == 1
    assert "python -m paraloop" in result.stderr


def test_word_frequencies_agree_with_the_plain_loop() -> None:
    """The word count example checks itself against the plain loop and prints its figures."""
    result = run("-m", "paraloop", "examples/word_frequencies.py", "150")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["files"].strip() == "150"
    assert int(lines["distinct words"]) > 1000
    assert int(lines["total words"]) > int(lines["distinct words"])
    assert "plain loop" in lines and lines["plain loop"].strip().endswith(" s")


def test_show_prints_every_example_rewritten() -> None:
    """python -m paraloop --show prints each example's rewritten source."""
    for example in sorted(EXAMPLES.glob("*.py")):
        result = run("-m", "paraloop", "--show", str(example))
        assert result.returncode == 0, result.stderr
        assert "__paraloop_rt__.run(" in result.stdout, example.name
        compile(result.stdout, str(example), "exec")


def test_help_names_every_option_and_variable() -> None:
    """python -m paraloop --help documents the options and environment variables."""
    result = run("-m", "paraloop", "--help")
    assert result.returncode == 0
    for word in ("--show", "PARALOOP_BACKEND", "PARALOOP_WORKERS", "PARALOOP_START_METHOD", "threads"):
        assert word in result.stdout, word
