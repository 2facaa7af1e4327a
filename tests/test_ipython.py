"""The IPython extension, in a real IPython shell: later cells' loops run in parallel."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

IPython = pytest.importorskip("IPython", reason="the ipython extra is not installed")


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    instance = InteractiveShell.instance()
    instance.run_cell("%load_ext paraloop", store_history=False)
    yield instance
    instance.run_cell("%unload_ext paraloop", store_history=False)
    InteractiveShell.clear_instance()


def run(shell: Any, code: str) -> Any:
    result = shell.run_cell(code, store_history=True)
    return result


def test_cells_are_rewritten_and_use_earlier_definitions(shell: Any) -> None:
    """A loop in a cell runs in workers and uses a function defined in an earlier cell."""
    assert run(shell, "import os\ndef square(x):\n    return x * x\n").success
    result = run(
        shell,
        "from paraloop import ParaLoop\n"
        "total = 0\n"
        "pids = set()\n"
        "for i in ParaLoop(range(30), num_processes=2, chunksize=3):\n"
        "    total += square(i)\n"
        "    pids.add(os.getpid())\n",
    )
    assert result.success, result.error_in_exec
    namespace = shell.user_ns
    assert namespace["total"] == sum(i * i for i in range(30))
    assert namespace["pids"] and os.getpid() not in namespace["pids"]


def test_last_expression_is_still_displayed(shell: Any) -> None:
    """A cell ending in a comprehension over ParaLoop shows its value as Out[]."""
    result = run(shell, "from paraloop import ParaLoop\n[x * 2 for x in ParaLoop(range(5), num_processes=2)]")
    assert result.success, result.error_in_exec
    assert result.result == [0, 2, 4, 6, 8]


def test_refusal_is_a_cell_error_with_the_line(shell: Any) -> None:
    """An unsupported loop is rejected with the cell's line; the extension stays loaded."""
    from paraloop.ipython import ParaLoopTransformer

    result = run(
        shell, "from paraloop import ParaLoop\ndef f(xs):\n    for x in ParaLoop(xs):\n        yield x\n"
    )
    assert not result.success
    assert "line 4" in str(result.error_before_exec) and "yield" in str(result.error_before_exec)
    assert any(isinstance(t, ParaLoopTransformer) for t in shell.ast_transformers)


def test_unload_stops_rewriting(shell: Any) -> None:
    """After %unload_ext paraloop, loops run sequentially with a ParaLoopWarning."""
    shell.run_cell("%unload_ext paraloop")
    result = run(
        shell,
        "import os, warnings\nfrom paraloop import ParaLoop, ParaLoopWarning\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    pids = {os.getpid() for i in ParaLoop(range(3))}\n"
        "warned = any(issubclass(w.category, ParaLoopWarning) for w in caught)\n",
    )
    assert result.success, result.error_in_exec
    assert shell.user_ns["pids"] == {os.getpid()}
    assert shell.user_ns["warned"]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_state_from_earlier_cells(shell: Any, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ParaLoop imported, a Variable and a plain list made in earlier cells: combined correctly."""
    monkeypatch.setenv("PARALOOP_START_METHOD", method)
    assert run(
        shell, "import paraloop as pl\nfrom paraloop import ParaLoop, Variable, aggregation_strategies as s"
    ).success
    assert run(
        shell, "seen = Variable([], aggregation_strategy=s.Concatenate)\nsquares = []\nclass Box:\n    k = 3"
    ).success
    result = run(
        shell,
        "for i in ParaLoop(range(12), num_processes=2, chunksize=2):\n"
        "    seen.append(i)\n"
        "    squares.append(i * i * Box.k)\n"
        "doubled = [x * 2 for x in pl.ParaLoop(range(4), num_processes=2)]\n",
    )
    assert result.success, result.error_in_exec
    assert shell.user_ns["seen"].value == list(range(12))
    assert shell.user_ns["squares"] == [i * i * 3 for i in range(12)]
    assert shell.user_ns["doubled"] == [0, 2, 4, 6]


def test_a_function_of_an_earlier_cell_keeps_its_loop_plan(shell: Any) -> None:
    """Each loop's plan is a global of the cell's namespace: a later cell's loops get plans of
    their own, and a function defined in an earlier cell still runs its loop with its own."""
    assert run(
        shell,
        "from paraloop import ParaLoop\n"
        "def total(xs):\n"
        "    t = 0\n"
        "    for x in ParaLoop(xs, num_processes=2, chunksize=2):\n"
        "        t += x\n"
        "    return t\n",
    ).success
    later = run(shell, "out = []\nfor y in ParaLoop(range(4), num_processes=2):\n    out.append(y * 2)\n")
    assert later.success, later.error_in_exec
    result = run(shell, "result = total(range(10))\n")
    assert result.success, result.error_in_exec
    assert shell.user_ns["out"] == [0, 2, 4, 6]
    assert shell.user_ns["result"] == 45
