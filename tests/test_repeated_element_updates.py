"""Element updates (``x[i] = f(x[i])``, ``i`` the loop's own item) whose items repeat an index: the
same outcome every run, whatever the chunk sizes (CONTRACT section 7).

Two iterations that use the same element need each other's results.  Before session 45 the loop
was refused only where the two fell in different chunks, and gave the plain result where they
fell in one: which of the two a program got depended on where the chunks were cut, which the
time its iterations took decides (the caller's first chunk ends at a time budget, even under a
fixed ``chunksize``), so the same program was refused in one run and not in the next.  Now every
backend that runs chunks at the same time refuses it wherever the two iterations fall, naming the
element, the file and the loop's line, with advice that works (``x[i] += e`` for a sum per index,
or ``backend="sequential"``); the sequential backend runs it as the plain loop does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from types import ModuleType

import pytest
from plain_loop import assert_same_as_plain, run_plain

import paraloop

Loader = Callable[..., ModuleType]

# The loop's line in the module load_module writes (it adds the marker line above the source).
REPEATED = """
from paraloop import ParaLoop
x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
for i in ParaLoop(ITEMS, num_processes=2, chunksize=CHUNK):
    x[i] = x[i] * 2 + 1
result = x
"""
LOOP_LINE = 5


def _source(items: list[int], chunk: int | None) -> str:
    return REPEATED.replace("ITEMS", repr(items)).replace("CHUNK", repr(chunk))


def _refused_or_plain(load_module: Loader, source: str, backend: str, element: int) -> None:
    """Refused naming ``element`` and the loop's line where chunks run at the same time; the plain
    result on the sequential backend."""
    if backend == "sequential":
        assert load_module(source).result == run_plain(source)["result"]
        return
    with pytest.raises(paraloop.ParaLoopError) as refused:
        load_module(source)
    message = str(refused.value)
    assert f".py, line {LOOP_LINE}: element {element} is updated by two iterations" in message
    assert "x[i] += e" in message
    assert "backend='sequential'" in message


@pytest.mark.parametrize("chunk", [None, 1, 2, 4, 6])
def test_a_repeated_index_is_refused_wherever_the_chunks_are_cut(
    load_module: Loader, every_backend: str, chunk: int | None
) -> None:
    # 0 comes back at the third item: in one chunk of 4 or 6, in two of 1 or 2.
    _refused_or_plain(load_module, _source([0, 1, 0, 2, 3, 4], chunk), every_backend, 0)


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_a_negative_index_repeats_the_element_it_names(
    load_module: Loader, every_backend: str, chunk: int | None
) -> None:
    # -1 is element 5 of six.
    _refused_or_plain(load_module, _source([5, -1, 0], chunk), every_backend, 5)


@pytest.mark.usefixtures("every_backend")
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_distinct_indexes_give_the_plain_result(load_module: Loader, chunk: int | None) -> None:
    assert_same_as_plain(load_module, _source([3, 1, 0, 2, 5, 4], chunk), ["result"])


def test_a_repeated_row_of_an_array_is_refused(load_module: Loader, every_backend: str) -> None:
    pytest.importorskip("numpy")
    source = textwrap.dedent(
        """
        import numpy as np
        from paraloop import ParaLoop
        grid = np.arange(12.0).reshape(4, 3)
        for r in ParaLoop([2, 0, 3, 2], num_processes=2, chunksize=4):
            grid[r, :] = grid[r, :] * 2
            grid[r, 0] += 1
        result = grid.tolist()
        """
    )
    if every_backend == "sequential":
        assert load_module(source).result == run_plain(source)["result"]
        return
    with pytest.raises(paraloop.ParaLoopError, match=r"line 6: element 2 is updated by two iterations"):
        load_module(source)


@pytest.mark.usefixtures("every_backend")
def test_an_iteration_that_leaves_the_repeated_element_alone_is_no_repeat(load_module: Loader) -> None:
    """Only iterations that use the element count: the third item names element 0 again but its
    iteration never touches x, so nothing depends on another iteration's write."""
    assert_same_as_plain(
        load_module,
        """
        from paraloop import ParaLoop
        x = [10, 20, 30]
        for i, touch in ParaLoop([(0, True), (1, True), (0, False), (2, True)], num_processes=2, chunksize=4):
            if touch:
                x[i] = x[i] * 3
        result = x
        """,
        ["result"],
    )


@pytest.mark.usefixtures("every_backend")
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_the_advice_for_a_sum_per_index_gives_the_plain_result(
    load_module: Loader, chunk: int | None
) -> None:
    """The refusal's advice: a sum per index written x[i] += e is combined, repeats and all."""
    assert_same_as_plain(
        load_module,
        f"""
        from paraloop import ParaLoop
        x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        for i in ParaLoop([0, 1, 0, 2, 3, 4, 0, -1], num_processes=2, chunksize={chunk!r}):
            x[i] += 0.1 * (i + 2)
        result = x
        """,
        ["result"],
    )


def test_the_advice_to_run_sequentially_gives_the_plain_result(load_module: Loader) -> None:
    """The refusal's other advice, in the code (no backend set in the environment, which wins)."""
    source = _source([0, 1, 0, 2, 3, 4], 2).replace("chunksize=2", "chunksize=2, backend='sequential'")
    assert load_module(source).result == run_plain(source)["result"]
