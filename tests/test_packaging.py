"""The sdist is a complete, testable copy of the project, and the wheel says its license.

Distribution packagers build from the sdist and run its tests there, so the sdist must
carry every file the tests read (conftest, helpers, golden files, the docs whose code
blocks run, the examples) and a quick part of the suite must pass from the unpacked sdist
alone.  The build runs offline with the setuptools already installed (no build isolation,
nothing downloaded).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The directories whose files the sdist must carry whole (what the tests read, and the
# benchmark scripts docs/benchmarks.md reports on), beside these single files.
SHIPPED_DIRECTORIES = ("tests", "docs", "examples", "benchmarks")
SHIPPED_FILES = ("LICENSE", "README.md", "pyproject.toml", "tox.ini", "toxfile.py", "paraloop/py.typed")
# Quick tests that read the shipped docs and golden files: they fail if those are missing.
# The golden rewrites and the README's code blocks (docs/ is checked whole by the main run;
# the sdist carries it, see below).
QUICK_TESTS = ("tests/test_golden.py", "tests/test_docs.py", "-k", "golden or README")


def _setuptools_major() -> int:
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return 0
    return int(version.split(".")[0])


# An offline build uses the setuptools installed here; tox's environments for Python 3.12
# and later are made without one (virtualenv no longer seeds it).
pytestmark = [
    # Once (tests/conftest.py): the package built from the sdist is the same for every Python.
    pytest.mark.once,
    pytest.mark.skipif(
        _setuptools_major() < 77,
        reason="building offline needs setuptools>=77 (SPDX license) installed in this environment",
    ),
]


def _build(kind: str, source: Path, out: Path) -> Path:
    """Build an sdist or a wheel of ``source`` into ``out`` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("build") is not None:
        command = [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", str(out), "."]
    else:
        hook = "build_sdist" if kind == "sdist" else "build_wheel"
        command = [
            sys.executable,
            "-c",
            f"import sys; from setuptools import build_meta; build_meta.{hook}(sys.argv[1])",
            str(out),
        ]
    result = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("*.tar.gz" if kind == "sdist" else "*.whl")
    return built


def _unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data") if sys.version_info >= (3, 12) else archive.extractall(into)
    (unpacked,) = into.iterdir()
    return unpacked


def _tracked_files(directory: str) -> list[str]:
    """The project's files under ``directory``: git's list in a checkout (stray local files
    are not the project's), else every file that is not bytecode."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "--", directory], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        return [name for name in listed if (ROOT / name).is_file()]
    return [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / directory).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sdist")
    sdist = _build("sdist", ROOT, base / "dist")
    return _unpack(sdist, base / "unpacked")


def test_sdist_holds_what_the_tests_read(sdist_tree: Path) -> None:
    needed = [*SHIPPED_FILES]
    for directory in SHIPPED_DIRECTORIES:
        needed += _tracked_files(directory)
    assert "tests/conftest.py" in needed and "tests/golden/module_level.expected" in needed
    missing = [name for name in needed if not (sdist_tree / name).is_file()]
    assert missing == []
    bytecode = [
        path.name for path in sdist_tree.rglob("*") if path.suffix == ".pyc" or path.name == "__pycache__"
    ]
    assert bytecode == []


def test_quick_tests_pass_from_the_unpacked_sdist(sdist_tree: Path) -> None:
    """The unpacked tree's own tests, run against its own package, not this checkout's."""
    env = {**os.environ, "PYTHONPATH": str(sdist_tree)}
    where = subprocess.run(
        [sys.executable, "-c", "import paraloop; print(paraloop.__file__)"],
        cwd=sdist_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(sdist_tree), where.stdout + where.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUICK_TESTS],
        cwd=sdist_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout.splitlines()[-1]


def test_wheel_built_from_the_sdist_declares_the_license(sdist_tree: Path, tmp_path: Path) -> None:
    # A second copy of the sdist: building a wheel writes build/ and egg-info into its tree.
    sdist = _build("sdist", sdist_tree, tmp_path / "again")
    wheel = _build("wheel", _unpack(sdist, tmp_path / "source"), tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        licenses = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
        assert licenses, names
        assert "MIT License" in archive.read(licenses[0]).decode()
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    # The SPDX expression replaces the license classifier; setuptools rejects both at once.
    assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    assert "paraloop/py.typed" in names
