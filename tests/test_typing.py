"""What a type checker makes of code that uses paraloop: real mypy, in its default mode.

A ``Variable[T]`` behaves like its ``T`` at run time; these check that mypy agrees, so
that a user's checked code needs no casts around ``counter += i`` or ``v * 2.0``, and
that it still reports a misuse the plain value would not allow.  Every snippet is a file
of one mypy run (mypy's start-up dominates), checked as a user's code would be.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import textwrap
import typing
from pathlib import Path

import pytest
import typing_extensions

import paraloop
from paraloop import Variable

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
ERROR = re.compile(r"^(?P<file>[^:\s]+\.py):(?P<line>\d+): error: (?P<message>.*)$", re.M)


def _readme_first_example() -> str:
    match = BLOCK.search((ROOT / "README.md").read_text())
    assert match is not None
    return match.group(1)


def _doc_blocks() -> dict[str, str]:
    """The README's and docs/ pages' python blocks that use paraloop, named page_N."""
    found = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            if "paraloop" in match.group(1):
                found[f"{page.stem.replace('-', '_')}_{number}"] = match.group(1)
    return found


SNIPPETS = {
    "readme_first_example": _readme_first_example(),
    "iadd_int": """
        from paraloop import Variable, aggregation_strategies
        total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        for i in range(10):
            total += i
        total -= 1
        total *= 2
        also: Variable[int] = total
        plain: int = total.value
        """,
    "float_operators": """
        from paraloop import Variable, aggregation_strategies
        scale = Variable(1.5, aggregation_strategy=aggregation_strategies.Product)
        doubled: float = scale * 2.0
        shifted: float = scale + 1
        ratio: float = 3 / scale
        scale *= 2.0
        scale /= 4
        """,
    "int_promotes_like_int": """
        from paraloop import Variable, aggregation_strategies
        count = Variable(7, aggregation_strategy=aggregation_strategies.Sum)
        half: float = count / 2
        mixed: float = count + 0.5
        whole: int = count // 2
        smaller: bool = count < 2.5
        negative: int = -count
        """,
    "containers_and_empty_literals": """
        from paraloop import Variable, aggregation_strategies
        names = Variable(["start"], aggregation_strategy=aggregation_strategies.Concatenate)
        names += ["more"]
        joined: list[str] = names + ["end"]
        seen = Variable({1}, aggregation_strategy=aggregation_strategies.Union)
        seen |= {2}
        table = Variable({}, aggregation_strategy=aggregation_strategies.Merge)
        table["key"] = 1
        items = Variable([], aggregation_strategy=aggregation_strategies.Concatenate)
        items.append(1)
        """,
    # Each misuse is an error on the plain value too; the line numbers are asserted below.
    "misuse": """
        from paraloop import Variable, aggregation_strategies
        total = Variable(0, aggregation_strategy=aggregation_strategies.Sum)
        total + 1
        total + "a"
        total += "a"
        total += 0.5
        wrong: int = total / 2
        names = Variable(["a"], aggregation_strategy=aggregation_strategies.Concatenate)
        names += [1]
        """,
}
MISUSE_LINES = [5, 6, 7, 8, 10]

# Doc blocks that fail for reasons no declaration in paraloop can change.  Keyed by a line
# of the block, so that moving blocks around a page does not shift the list.
# (None now: the docs spell a Variable's update in a body `v.value = e`, which type-checks,
# and say that `v = e` does the same at run time.)
DOC_BLOCKS_KNOWN_TO_FAIL: dict[str, str] = {}


def _mypy_path() -> str | None:
    """Where mypy finds this paraloop: the source tree it was imported from, or nothing
    extra when it is installed (mypy reads the running interpreter's site-packages, and
    refuses a MYPYPATH that names them)."""
    home = Path(paraloop.__file__).resolve().parent.parent
    installed = {
        Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    }
    return None if home in installed else str(home)


def _run_mypy(directory: Path, sources: dict[str, str]) -> dict[str, list[tuple[int, str]]]:
    pytest.importorskip("mypy", reason="mypy comes with the type dependency group (tox's type environment)")
    for name, code in sources.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(code))
    # An empty config of its own: mypy's defaults, not this project's strict settings or
    # any found in the user's home.
    (directory / "mypy.ini").write_text("[mypy]\n")
    env = {"PATH": "/usr/bin:/bin"}
    if (path := _mypy_path()) is not None:
        env["MYPYPATH"] = path
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(directory / ".mypy_cache"),
            "--no-error-summary",
            "--show-absolute-path",
            *(f"{name}.py" for name in sources),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    errors: dict[str, list[tuple[int, str]]] = {name: [] for name in sources}
    for match in ERROR.finditer(result.stdout):
        name = Path(match["file"]).stem
        assert name in errors, f"mypy reported on a file it was not given: {match.group(0)}"
        errors[name].append((int(match["line"]), match["message"]))
    assert result.returncode == (1 if any(errors.values()) else 0), result.stdout + result.stderr
    return errors


@pytest.fixture(scope="module")
def snippet_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str]]]:
    return _run_mypy(tmp_path_factory.mktemp("snippets"), SNIPPETS)


@pytest.fixture(scope="module")
def doc_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str]]]:
    return _run_mypy(tmp_path_factory.mktemp("docs"), _doc_blocks())


def test_readme_first_example_type_checks(snippet_errors: dict[str, list[tuple[int, str]]]) -> None:
    """`counter += i` on a Variable[int] and `Variable({})` need no annotation or cast."""
    assert snippet_errors["readme_first_example"] == []


@pytest.mark.parametrize(
    "name", ["iadd_int", "float_operators", "int_promotes_like_int", "containers_and_empty_literals"]
)
def test_variable_operators_type_like_the_value(
    name: str, snippet_errors: dict[str, list[tuple[int, str]]]
) -> None:
    assert snippet_errors[name] == []


def test_misuse_is_still_reported(snippet_errors: dict[str, list[tuple[int, str]]]) -> None:
    """Exactly the misuses: the valid line among them passes, each wrong one is reported."""
    errors = snippet_errors["misuse"]
    assert sorted({line for line, _ in errors}) == MISUSE_LINES, errors
    assert any('"str"' in message for line, message in errors if line == 5), errors


def test_doc_blocks_type_check(doc_errors: dict[str, list[tuple[int, str]]]) -> None:
    """README and docs/ blocks using paraloop pass mypy, but for the known, listed ones."""
    blocks = _doc_blocks()
    assert "README_1" in blocks and len(blocks) >= 5
    unexpected = {}
    for name, errors in doc_errors.items():
        known = [expected for line, expected in DOC_BLOCKS_KNOWN_TO_FAIL.items() if line in blocks[name]]
        rest = [error for error in errors if not any(expected in error[1] for expected in known)]
        if rest:
            unexpected[name] = rest
    assert unexpected == {}
    # An entry whose block now passes (or is gone) is to be removed from the list.
    still_failing = [
        line
        for line, expected in DOC_BLOCKS_KNOWN_TO_FAIL.items()
        if any(
            line in blocks[name] and any(expected in message for _, message in errors)
            for name, errors in doc_errors.items()
        )
    ]
    assert still_failing == list(DOC_BLOCKS_KNOWN_TO_FAIL)


def test_constructor_overloads_resolve_at_run_time() -> None:
    """What a checker reads of the constructor, a runtime tool can read too, on 3.10 as well."""
    overloads = typing_extensions.get_overloads(Variable.__init__)
    values = [typing.get_type_hints(item)["value"] for item in overloads]
    assert values[:3] == [
        dict[typing_extensions.Never, typing_extensions.Never],
        list[typing_extensions.Never],
        set[typing_extensions.Never],
    ]
