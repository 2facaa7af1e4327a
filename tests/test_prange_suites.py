"""Differential tests: loops from other projects' parallel-loop test suites give the plain loop's result.

The cases live in tests/prange_suites/: loops translated from the prange and OpenMP tests of
numba (numba/tests/test_parfors.py ...), Cython (tests/run/sequential_parallel.pyx, parallel.pyx ...)
and pythran (pythran/tests/openmp.legacy, openmp.4), which nobody here wrote. Each suite file is a
marked module; each case in it is a top-level function without parameters that builds its inputs
deterministically, runs its loops (``prange(n)`` spelt ``ParaLoop(range(n), **OPTIONS)``) and returns
what a program can observe afterwards. The comment block right above the function names the
case's origin and its expectation:

- ``# expect: exact``: paraloop must give the plain loop's outcome; a refusal is a failure.
- ``# expect: exact-or-refused``: a genuine loop-carried dependency, or a change the contract lets
  paraloop refuse (through a view, an attribute, a function called from the body): a
  ``paraloop.ParaLoopError`` is acceptable, a different outcome never is.

Each case runs once plain (its module exec'd unrewritten, so ``ParaLoop`` iterates sequentially)
and then, through paraloop, on every backend with several worker counts and chunk sizes. The
outcomes must be the same: the same type and value, floats and numpy arrays bit for bit (numpy
arrays with the same dtype and shape), dicts with the same key order; or, when the plain loop
raises, an exception of the same type with the same arguments. A ``ParaLoopWarning`` (say, a loop
that was not rewritten) fails the case too.

The module of a case is its suite file with every other case blanked out, so its line numbers,
and those in paraloop's messages, are the suite file's.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import settings_for
from differences import difference, short
from plain_loop import run_plain

import paraloop
from paraloop.cpus import available_cpus

Loader = Callable[..., ModuleType]

SUITES = Path(__file__).parent / "prange_suites"

#: (num_processes, chunksize): every case runs with each, on every backend but Dask.
SETTINGS = [(2, None), (3, 1), (2, 7)]
#: ...and on threads, more of them than CPUs, whose chunks hold two iterations while many are left.
MANY_THREADS = (available_cpus() + 2, None)

EXPECTATIONS = ("exact", "exact-or-refused")

#: The suite files (named after the project, then an underscore) and the repositories their loops come from.
REPOSITORIES = {
    "numba": "numba/numba",
    "cython": "cython/cython",
    "pythran": "serge-sans-paille/pythran",
    "joblib": "joblib/joblib",
}

#: A hang is a failure too (paraloop never hangs, docs/semantics.md), found well before pytest's own timeout.
pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Case:
    suite: str
    suite_file: str
    name: str
    origin: str
    expect: str
    raises: str | None  # the exception the plain loop raises, by name ("# raises:"), if it does
    source: str

    @property
    def id(self) -> str:
        return f"{self.suite}.{self.name}"


def read_suite(path: Path) -> list[Case]:
    """The cases of one suite file: its top-level functions whose names do not start with ``_``."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    spans: list[tuple[str, int, int, dict[str, str]]] = []
    for node in ast.parse(text).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        fields: dict[str, str] = {}
        for line in lines[start : node.lineno]:
            found = re.match(r"\s*#\s*(origin|expect|raises):\s*(.+?)\s*$", line)
            if found:
                fields[found[1]] = found[2]
        where = f"{path.name}, line {node.lineno}, {node.name}"
        assert "origin" in fields, f"{where}: no '# origin:' comment above the case"
        assert fields.get("expect") in EXPECTATIONS, f"{where}: '# expect:' must be one of {EXPECTATIONS}"
        assert node.end_lineno is not None
        spans.append((node.name, start, node.end_lineno, fields))
    suite = path.stem.split("_")[0]
    cases = []
    for name, _, _, fields in spans:
        kept = list(lines)
        for other, start, end, _ in spans:
            if other != name:
                kept[start:end] = ["\n"] * (end - start)
        case = Case(
            suite, path.name, name, fields["origin"], fields["expect"], fields.get("raises"), "".join(kept)
        )
        cases.append(case)
    return cases


CASES = [case for path in sorted(SUITES.glob("*.py")) for case in read_suite(path)]


# ---------------------------------------------------------------------------
# Outcomes and how they compare
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "returned", "raised", or "refused" (a ParaLoopError that is not a crash or a timeout)
    value: Any  # what the case returned, or the exception
    warned: tuple[str, ...] = ()


def is_refusal(error: BaseException) -> bool:
    return isinstance(error, paraloop.ParaLoopError) and not isinstance(
        error, (paraloop.WorkerCrashedError, paraloop.IterationTimeoutError)
    )


def outcome_of(function: Callable[[], Any]) -> Outcome:
    """Call a case, recording what it returned or raised and the ParaLoopWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", paraloop.ParaLoopWarning)
        try:
            outcome = Outcome("returned", function())
        except Exception as error:  # noqa: BLE001 - the exception is the outcome being compared
            outcome = Outcome("refused" if is_refusal(error) else "raised", error)
    outcome.warned = tuple(
        str(w.message).splitlines()[0] for w in caught if issubclass(w.category, paraloop.ParaLoopWarning)
    )
    return outcome


_plain: dict[str, Outcome] = {}


def plain_outcome(case: Case) -> Outcome:
    """The case run unrewritten (computed once per case, shared by every backend)."""
    if case.id not in _plain:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
            namespace = run_plain(case.source)
            outcome = outcome_of(namespace[case.name])
        assert outcome.kind != "refused", f"{case.id}: the plain run raised {outcome.value!r}"
        _plain[case.id] = outcome
    return _plain[case.id]


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def problem(case: Case, plain: Outcome, got: Outcome) -> str | None:
    """What is wrong with paraloop's outcome ``got`` for ``case``, or None."""
    if got.warned:
        return f"ParaLoopWarning: {got.warned[0]}"
    if got.kind == "refused":
        if case.expect == "exact-or-refused":
            return None
        return f"refused an exact case: {first_line(got.value)}"
    if plain.kind == "returned":
        if got.kind == "raised":
            return f"raised {first_line(got.value)} where the plain loop returned {short(plain.value)}"
        found = difference(plain.value, got.value)
        return f"wrong value: {found}" if found else None
    if got.kind == "returned":
        return f"returned {short(got.value)} where the plain loop raised {first_line(plain.value)}"
    if type(got.value) is not type(plain.value):
        return f"raised {first_line(got.value)} instead of {first_line(plain.value)}"
    found = difference(plain.value.args, got.value.args, "exception args")
    return f"raised {found}" if found else None


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


def test_every_case_is_read() -> None:
    """The suites hold the cases this file promises, each named once, each with its origin."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 80
    for suite in REPOSITORIES:
        assert any(case.suite == suite for case in CASES), suite
    for case in CASES:
        assert case.origin.startswith(REPOSITORIES[case.suite] + " "), case.id
        assert len(re.findall(rf"^def {case.name}\(", case.source, re.MULTILINE)) == 1, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plain_loop_runs_as_translated(case: Case) -> None:
    """Unrewritten, each case returns, or raises what its '# raises:' comment says: no translation slip."""
    plain = plain_outcome(case)
    raised = type(plain.value).__name__ if plain.kind == "raised" else None
    assert raised == case.raises, f"{case.id}: the plain loop raised {plain.value!r}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_suite_loop_gives_the_plain_outcome(case: Case, every_backend: str, load_module: Loader) -> None:
    """The translated loop, through paraloop, gives exactly what the plain loop gives."""
    plain = plain_outcome(case)
    settings = settings_for(every_backend, SETTINGS) + ([MANY_THREADS] if every_backend == "threads" else [])
    outcomes: dict[tuple[int, int | None], Outcome] = {}
    try:
        module = load_module(case.source, marked=False)
    except paraloop.ParaLoopError as error:  # UnsupportedLoopError: refused at import
        module_file = str(getattr(error, "filename", None) or "")
        outcomes = dict.fromkeys(settings, Outcome("refused", error))
    else:
        module_file = str(module.__file__)
        for workers, chunksize in settings:
            module.OPTIONS = {"num_processes": workers, "chunksize": chunksize}
            outcomes[workers, chunksize] = outcome_of(getattr(module, case.name))
    settings_by_problem: dict[str, list[str]] = {}
    for (workers, chunksize), got in outcomes.items():
        found = problem(case, plain, got)
        if found:
            settings_by_problem.setdefault(found, []).append(
                f"num_processes={workers}, chunksize={chunksize}"
            )
    if settings_by_problem:
        report = "\n".join(f"  {'; '.join(where)}: {found}" for found, where in settings_by_problem.items())
        if module_file:  # paraloop names the case's module; its line numbers are the suite file's
            report = report.replace(module_file, f"tests/prange_suites/{case.suite_file}")
        pytest.fail(
            f"{case.id} ({case.origin}; expect {case.expect}) on {every_backend}:\n{report}", pytrace=False
        )
