"""Adversarial cases for native thread pools (#21) and modules still being imported.

Each test fails on the code it was written against; the docstring says what a user sees.
Native-thread cases run in a fresh interpreter (as tests/test_native_threads.py does):
the pools and the environment of the test process must not decide the outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import START_METHODS

from paraloop.cpus import available_cpus
from paraloop.native_threads import ENVIRONMENT

Loader = Callable[..., ModuleType]
CPUS = available_cpus()
TWO_CPUS = pytest.mark.skipif(CPUS < 2, reason="needs two CPUs to tell a worker's share from the whole")

PRELUDE = """\
import json, os, sys, threading, time
from paraloop import ParaLoop

def blas_threads():
    import numpy, threadpoolctl
    numpy.ones((64, 64)) @ numpy.ones((64, 64))
    counts = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    return counts[0]
"""


def _clean_env(**environment: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ENVIRONMENT}
    env = {key: value for key, value in env.items() if not key.startswith("PARALOOP_")}
    env.update(environment)
    return env


def _run(tmp_path: Path, body: str, *, module: bool = False, **environment: str) -> Any:
    """Run ``body`` after PRELUDE with ``python -m paraloop``; the last line of stdout is JSON."""
    script = tmp_path / "script.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        env=_clean_env(**environment),
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _import_in_fresh_interpreter(tmp_path: Path, files: dict[str, str], statement: str, **env: str) -> Any:
    """Write ``files`` under tmp_path, then run ``statement`` (after importing paraloop, with
    tmp_path on sys.path) in a fresh interpreter; the last line of stdout is JSON."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    code = f"import paraloop, sys; sys.path.insert(0, {str(tmp_path)!r})\n{textwrap.dedent(statement)}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(**env),
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Native thread pools
# ---------------------------------------------------------------------------------------------


@TWO_CPUS
@pytest.mark.parametrize("method", START_METHODS)
def test_native_threads_false_after_a_default_loop_gives_the_pools_back(tmp_path: Path, method: str) -> None:
    """A first loop (default settings, two workers) whose body imports numpy: OpenBLAS loads
    in each worker while paraloop's OPENBLAS_NUM_THREADS=1 is set.  A later loop with
    ``native_threads=False`` ("leave native pools alone") reuses those workers and still sees
    one BLAS thread, where the plain loop sees all the CPUs: paraloop restores the environment
    but not the pool that was sized by it."""
    seen = _run(
        tmp_path,
        f"""
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
            blas_threads()
        later = []
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1,
                          native_threads=False):
            later.append(blas_threads())
        print(json.dumps(later))
        """,
    )
    assert seen == [CPUS] * 4


@TWO_CPUS
def test_two_threads_backend_loops_at_once_leave_the_callers_pools_as_they_were(tmp_path: Path) -> None:
    """Two threads of the program each run a backend="threads" loop, overlapping in time.
    Each loop limits the process's BLAS pool to its share and restores "the original" at its
    end; the second saved the first's limit as its original, so after both the program's own
    numpy runs on one thread for the rest of its life."""
    seen = _run(
        tmp_path,
        """
        before = blas_threads()

        def run(delay, n):
            time.sleep(delay)
            for i in ParaLoop(range(n), backend="threads", num_processes=2, chunksize=1):
                time.sleep(0.05)

        first = threading.Thread(target=run, args=(0, 10))
        second = threading.Thread(target=run, args=(0.1, 20))
        first.start(); second.start(); first.join(); second.join()
        print(json.dumps([before, blas_threads()]))
        """,
    )
    assert seen == [CPUS, CPUS]


@TWO_CPUS
def test_a_limit_the_body_sets_on_the_threads_backend_outlives_the_loop(tmp_path: Path) -> None:
    """On backend="threads" the body runs in the program's own process: a body that calls
    ``threadpoolctl.threadpool_limits(1)`` (not as a context manager) limits the program's
    pools, and after the plain loop they stay at 1.  paraloop restores the counts it saw
    before the loop and silently undoes the user's setting."""
    seen = _run(
        tmp_path,
        """
        import threadpoolctl
        before = blas_threads()
        for i in ParaLoop(range(4), backend="threads", num_processes=2, chunksize=1):
            if i == 0:
                threadpoolctl.threadpool_limits(1)
        print(json.dumps([before, blas_threads()]))
        """,
    )
    assert seen == [CPUS, 1]


# ---------------------------------------------------------------------------------------------
# Modules still being imported
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_submodule_loop_may_use_another_submodule_of_its_package(tmp_path: Path, method: str) -> None:
    """``import pkg`` where pkg/__init__.py imports pkg.helpers, then pkg.sub, whose top level
    runs a loop calling pkg.helpers.triple.  The plain loop gives [0, 3, ...]; paraloop fails:
    "a worker process could not load the loop (ModuleNotFoundError: No module named
    'pkg.helpers'; 'pkg' is not a package)": the stand-in made for the package being
    imported has no __path__, so its submodules cannot be imported in the worker."""
    package = f"advpkg_{method}"
    seen = _import_in_fresh_interpreter(
        tmp_path,
        {
            f"{package}/__init__.py": "from . import helpers\nfrom . import sub\n",
            f"{package}/helpers.py": "def triple(x):\n    return 3 * x\n",
            f"{package}/sub.py": f"""\
                # paraloop: enable
                from paraloop import ParaLoop
                from {package}.helpers import triple

                out = []
                for i in ParaLoop(range(8), num_processes=2, start_method={method!r}, chunksize=1):
                    out.append(triple(i))
                """,
        },
        f"import json, {package}.sub as sub\nprint(json.dumps(sub.out))",
    )
    assert seen == [3 * i for i in range(8)]


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_an_lru_cached_function_of_a_module_being_imported(load_module: Loader, method: str) -> None:
    """A function decorated with functools.lru_cache (or cache) at the top of the module whose
    loop runs: the plain loop works; paraloop fails with "a worker process could not load the
    loop (AttributeError: Can't get attribute 'fib' on <module ...>)".  The cache wrapper
    is not a function, so it travels by name, and the worker's stand-in module has no such
    name (the same loop in a script works)."""
    module = load_module(f"""
        import functools
        from paraloop import ParaLoop

        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        out = []
        for i in ParaLoop(range(6), num_processes=2, start_method={method!r}, chunksize=1):
            out.append(fib(i + 10))
    """)
    assert module.out == [55, 89, 144, 233, 377, 610]


@pytest.mark.parametrize("method", START_METHODS)
def test_an_enum_of_a_module_being_imported(tmp_path: Path, method: str) -> None:
    """An enum.Enum defined in the module whose top level runs the loop, used in the body.
    Under fork: "a worker process could not load the loop (AttributeError: 'dict' object has
    no attribute '_member_names')" (the class sent by value is rebuilt with a plain dict
    before the worker's own Color is looked up); under forkserver/spawn: "Can't get
    attribute 'Color' on <module ...>" (its members travel by name into the stand-in)."""
    seen = _import_in_fresh_interpreter(
        tmp_path,
        {
            "advenum.py": f"""\
                # paraloop: enable
                import enum
                from paraloop import ParaLoop

                class Color(enum.Enum):
                    RED = 1
                    GREEN = 2

                out = []
                for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
                    out.append(Color.RED if i % 2 else Color.GREEN)
                """
        },
        """
        import json, advenum
        print(json.dumps([color is advenum.Color.RED if i % 2 else color is advenum.Color.GREEN
                          for i, color in enumerate(advenum.out)]))
        """,
    )
    assert seen == [True] * 4


def test_fork_workers_started_during_an_import_see_the_module_in_full_later(tmp_path: Path) -> None:
    """A module runs a fork loop at its top level and defines a class after it.  The program
    imports it, then runs its own fork loop over objects of that class.  The workers were
    forked while the module was half imported and kept that half: unpickling the items fails
    in the worker (AttributeError: Can't get attribute 'Late' on <module 'advlate'>), the
    worker dies, and the user reads "WorkerCrashedError: a worker process exited with code 1
    ... if it ran out of memory, use fewer workers": advice that has nothing to do with it.
    (tests/test_importing_module.py::test_a_module_imported_in_full_is_imported_by_later_loops
    [fork] fails the same way.)"""
    script = tmp_path / "main.py"
    (tmp_path / "advlate.py").write_text(
        textwrap.dedent("""\
            # paraloop: enable
            from paraloop import ParaLoop

            first = []
            for i in ParaLoop(range(4), num_processes=2, start_method="fork", chunksize=1):
                first.append(i)

            class Late:
                def __init__(self, v):
                    self.v = v
        """)
    )
    script.write_text(
        textwrap.dedent("""\
            import json
            import advlate
            from paraloop import ParaLoop

            out = []
            for obj in ParaLoop([advlate.Late(i) for i in range(6)], num_processes=2,
                                start_method="fork", chunksize=1):
                out.append(obj.v * 2)
            print(json.dumps(out))
        """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2 * i for i in range(6)]


@pytest.mark.parametrize("method", START_METHODS)
def test_a_class_attribute_changed_between_two_loops_of_a_module_being_imported(
    load_module: Loader, method: str
) -> None:
    """Two loops at a module's top level; between them the module sets ``Config.factor = 3``.
    The plain loops give [0, 2, 4, 6] then [0, 3, 6, 9]; paraloop gives [0, 2, 4, 6] twice,
    silently: the second job's Config arrives by value, but the worker keeps the class it
    registered (or inherited) for the first loop, with the old attribute.  (A script's
    ``__main__`` class behaves the same.)"""
    module = load_module(f"""
        from paraloop import ParaLoop

        class Config:
            factor = 2

        def scaled(x):
            return x * Config.factor

        first = []
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
            first.append(scaled(i))
        Config.factor = 3
        second = []
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
            second.append(scaled(i))
    """)
    assert module.first == [0, 2, 4, 6]
    assert module.second == [0, 3, 6, 9]


@pytest.mark.parametrize("method", START_METHODS)
def test_a_class_attribute_changed_between_two_loops_of_a_script(tmp_path: Path, method: str) -> None:
    """The same in a script run with ``python -m paraloop``: the second loop silently uses the
    attribute the class had when the workers first met it ([0, 2, 4, 6] instead of
    [0, 3, 6, 9])."""
    seen = _run(
        tmp_path,
        f"""
        class Config:
            factor = 2

        def scaled(x):
            return x * Config.factor

        first = []
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
            first.append(scaled(i))
        Config.factor = 3
        second = []
        for i in ParaLoop(range(4), num_processes=2, start_method={method!r}, chunksize=1):
            second.append(scaled(i))
        print(json.dumps([first, second]))
        """,
    )
    assert seen == [[0, 2, 4, 6], [0, 3, 6, 9]]


@TWO_CPUS
def test_the_body_sees_the_environment_of_the_plain_loop(tmp_path: Path) -> None:
    """A body that reads os.environ, or starts a program (which inherits it), sees
    OMP_NUM_THREADS/OPENBLAS_NUM_THREADS=1 that the user never set: the plain loop sees
    None.  (Possibly by design, as loky does; the docs promise the plain loop's results.)"""
    seen = _run(
        tmp_path,
        """
        out = []
        for i in ParaLoop(range(4), num_processes=2, chunksize=1):
            out.append([os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS")])
        print(json.dumps(out))
        """,
    )
    assert seen == [[None, None]] * 4
