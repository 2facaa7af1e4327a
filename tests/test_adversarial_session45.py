"""Adversarial tests of session 45's element updates (``x[i] = f(x[i])``, ``i`` the loop's own item)
and their new rule: items that repeat an element are refused wherever the two iterations fall.

Each finding was a strict xfail asserting the correct behaviour (all eight fixed in session 45:
the comment above each test names its finding); the attacks that held are ordinary tests.  A loop is run on processes (fork, and with the caller taking part), threads and
sequentially, for chunk sizes 1, 2,
None and more than the items, and compared with the plain loop (CONTRACT: the plain result or a
ParaLoopError, the same outcome on every backend that runs chunks at the same time).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from conftest import use_backend
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]
CONCURRENT = ("fork", "caller", "threads")
CHUNKS = (1, 2, None, 1000)


def _plain(source: str) -> tuple[str, Any]:
    try:
        return ("result", run_plain(source.replace("CHUNK", "None"))["result"])
    except Exception as error:  # noqa: BLE001 - the plain loop's outcome, whatever it raised
        return (type(error).__name__, None)


def _outcome(load_module: Loader, source: str, chunk: int | None) -> tuple[str, Any]:
    """("result", value), ("refused", element message) or (the exception's type name, None)."""
    try:
        return ("result", load_module(source.replace("CHUNK", repr(chunk))).result)
    except paraloop.ParaLoopError as error:
        return ("refused", "updated by two iterations" in str(error))
    except Exception as error:  # noqa: BLE001
        return (type(error).__name__, None)


def _outcomes(
    load_module: Loader,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> dict[tuple[str, int | None], tuple[str, Any]]:
    found = {}
    for backend in (*CONCURRENT, "sequential"):
        monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
        use_backend(backend, request, monkeypatch)
        for chunk in CHUNKS:
            found[backend, chunk] = _outcome(load_module, textwrap.dedent(source), chunk)
    return found


def _plain_or_refused(load_module: Loader, request: Any, monkeypatch: Any, source: str) -> None:
    """Sequentially the plain outcome; concurrently the plain outcome or a refusal, one for all."""
    expected = _plain(textwrap.dedent(source))
    found = _outcomes(load_module, request, monkeypatch, source)
    for (backend, chunk), outcome in found.items():
        if backend == "sequential":
            assert outcome == expected, (backend, chunk, outcome, expected)
        else:
            assert outcome in (expected, ("refused", True)), (backend, chunk, outcome, expected)
    concurrent = {repr(outcome) for (backend, _), outcome in found.items() if backend in CONCURRENT}
    assert len(concurrent) == 1, found


@pytest.fixture
def check(load_module: Loader, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    return lambda source: _plain_or_refused(load_module, request, monkeypatch, source)


# Findings ---------------------------------------------------------------------------------------


# finding 1: x[-4] of 3 elements wraps to x[-1] instead of IndexError (fixed in session 45)
def test_negative_index_below_minus_len_raises_as_in_the_plain_loop(check: Any) -> None:
    check(
        """
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i in ParaLoop([-4, 0], num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10
        result = x
        """
    )


# finding 1: the same with a numpy array's row (fixed in session 45)
def test_negative_row_below_minus_len_raises_as_in_the_plain_loop(check: Any) -> None:
    check(
        """
        import numpy as np
        from paraloop import ParaLoop
        x = np.arange(6).reshape(3, 2)
        for i in ParaLoop([1, -5], num_processes=2, chunksize=CHUNK):
            x[i, :] = x[i, :] + 100
        result = x.tolist()
        """
    )


# finding 2: list of arrays: x[i] = x[i] / 2 casts into the old int array (fixed in session 45)
def test_a_list_of_arrays_gets_new_arrays_as_in_the_plain_loop(check: Any) -> None:
    check(
        """
        import numpy as np
        from paraloop import ParaLoop
        x = [np.array([1, 2]), np.array([3, 4])]
        for i in ParaLoop([0, 1], num_processes=2, chunksize=CHUNK):
            x[i] = x[i] / 2
        result = [a.tolist() for a in x]
        """
    )


# finding 2: a new array of another shape fails to broadcast (fixed in session 45)
def test_a_list_of_arrays_may_get_arrays_of_another_shape(check: Any) -> None:
    check(
        """
        import numpy as np
        from paraloop import ParaLoop
        x = [np.array([1.0, 2.0]), np.array([3.0])]
        for i in ParaLoop([0, 1], num_processes=2, chunksize=CHUNK):
            x[i] = np.append(x[i], 9.0)
        result = [a.tolist() for a in x]
        """
    )


# finding 3: [1, 1.0] or [1, np.True_]: TypeError or refusal by chunk size; a result sequentially (fixed in session 45)
@pytest.mark.parametrize("other", ["1.0", "np.True_"])
def test_a_non_index_equal_to_an_earlier_index_fails_the_same_way_every_time(check: Any, other: str) -> None:
    check(
        f"""
        import numpy as np
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i in ParaLoop([1, {other}], num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10
        result = x
        """
    )


def _refused_everywhere(load_module: Loader, request: Any, monkeypatch: Any, source: str, words: str) -> None:
    """Refused with ``words`` in the message on every backend (sequential too) and chunk size."""
    for backend in (*CONCURRENT, "sequential"):
        monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
        use_backend(backend, request, monkeypatch)
        for chunk in CHUNKS:
            with pytest.raises(paraloop.ParaLoopError, match=words):
                load_module(textwrap.dedent(source).replace("CHUNK", repr(chunk)))


# finding 4: numpy x[True] is the whole array, keyed as element 1 (a silent result that varied by
# chunk size).  Fixed in session 45: refused everywhere (the body updates the whole array).
def test_a_boolean_index_of_an_array_is_refused(load_module: Loader, request: Any, monkeypatch: Any) -> None:
    _refused_everywhere(
        load_module,
        request,
        monkeypatch,
        """
        import numpy as np
        from paraloop import ParaLoop
        x = np.array([1, 2, 3])
        for i in ParaLoop([np.True_, 0], num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10
        result = x.tolist()
        """,
        r"selects the whole array \(a boolean index\)",
    )


# finding 5: an explicit ElementUpdates keeps 'updated' from loop to loop (fixed in session 45)
def test_an_explicit_element_updates_variable_serves_two_loops(check: Any) -> None:
    check(
        """
        from paraloop import ParaLoop, Variable
        from paraloop.aggregation_strategies import ElementUpdates
        x = Variable([1, 2, 3], aggregation_strategy=ElementUpdates())
        for i in ParaLoop([0, 1], num_processes=2, chunksize=CHUNK):
            x.value[i] = x.value[i] * 10
        for i in ParaLoop([0, 1], num_processes=2, chunksize=CHUNK):
            x.value[i] = x.value[i] + 1
        result = x.value
        """
    )


# finding 6: explicit ElementUpdates refuses repeats on backend='sequential' (fixed in session 45)
def test_the_sequential_advice_works_for_an_explicit_variable(load_module: Loader) -> None:
    source = textwrap.dedent(
        """
        from paraloop import ParaLoop, Variable
        from paraloop.aggregation_strategies import ElementUpdates
        x = Variable([1, 2, 3], aggregation_strategy=ElementUpdates())
        for i in ParaLoop([0, 1, 0], num_processes=2, backend="sequential"):
            x.value[i] = x.value[i] * 10
        result = x.value
        """
    )
    assert load_module(source).result == run_plain(source)["result"] == [100, 20, 3]


# finding 7: x[(0, 1)] on a list of arrays runs as x[0][1] (fixed in session 45)
def test_a_tuple_index_of_a_list_raises_as_in_the_plain_loop(check: Any) -> None:
    check(
        """
        import numpy as np
        from paraloop import ParaLoop
        x = [np.array([1, 2]), np.array([3, 4])]
        for i in ParaLoop([(0, 1), (1, 0)], num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10
        result = [a.tolist() for a in x]
        """
    )


# finding 8: slice items gave a bare TypeError, sequentially too.  Fixed in session 45: refused
# everywhere, with advice that works (the parts written into another array).
def test_blocks_of_an_array_by_slice_items_are_refused_with_advice_that_works(
    load_module: Loader, request: Any, monkeypatch: Any
) -> None:
    _refused_everywhere(
        load_module,
        request,
        monkeypatch,
        """
        import numpy as np
        from paraloop import ParaLoop
        x = np.arange(8.0)
        for s in ParaLoop([slice(0, 4), slice(4, 8)], num_processes=2, chunksize=CHUNK):
            x[s] = np.sqrt(x[s]) + 1
        result = x.tolist()
        """,
        r"names no single element .*out\[s\] = f\(x\[s\]\)",
    )
    advised = """
        import numpy as np
        from paraloop import ParaLoop
        x = np.arange(8.0)
        out = np.empty_like(x)
        for s in ParaLoop([slice(0, 4), slice(4, 8)], num_processes=2, chunksize=CHUNK):
            out[s] = np.sqrt(x[s]) + 1
        x[:] = out
        result = x.tolist()
        """
    _plain_or_refused(load_module, request, monkeypatch, advised)
    assert _outcome(load_module, textwrap.dedent(advised), 1) == _plain(textwrap.dedent(advised))


# Attacks that held ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    ["[0, 0, 5]", "[5, 0, 0]", "[1, True, 2]", "[True, 2, 0]", "[2, -1]", "[-3, 0]", "[0, 2, -2]"],
)
def test_exceptions_bools_and_negatives_around_repeats(check: Any, items: str) -> None:
    check(
        f"""
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i in ParaLoop({items}, num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10 + 1
        result = x
        """
    )


def test_numpy_integer_items_and_negative_rows(check: Any) -> None:
    check(
        """
        import numpy as np
        from paraloop import ParaLoop
        x = np.arange(12.0).reshape(4, 3)
        for r in ParaLoop(np.array([3, 0, -3, -1], dtype=np.int16), num_processes=2, chunksize=CHUNK):
            x[r, :] = x[r, :] * 2
            x[r, 0] += 1
        result = x.tolist()
        """
    )


@pytest.mark.parametrize("stop", ["(0, True)", "(1, False)"])
def test_break_at_or_after_the_repeat(check: Any, stop: str) -> None:
    check(
        f"""
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i, halt in ParaLoop([(0, False), {stop}, (0, False), (2, True)], num_processes=2, chunksize=CHUNK):
            if halt and i == 1:
                break
            x[i] = x[i] * 10
            if halt:
                break
        result = x
        """
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_exception_beside_a_repeat_caught_around_the_loop(check: Any, where: str) -> None:
    check(
        f"""
        from paraloop import ParaLoop
        x = [1, 2, 3, 4, 5]
        items = [4, 0, 2, 0, 3] if {where!r} == "after" else [4, 0, 0, 2, 3]
        try:
            for i in ParaLoop(items, num_processes=2, chunksize=CHUNK):
                x[i] = x[i] * 10
                if i == 2:
                    raise KeyError(i)
        except KeyError:
            pass
        result = x
        """
    )


def test_a_return_before_the_repeat_and_the_loop_called_twice(check: Any) -> None:
    check(
        """
        from paraloop import ParaLoop
        def f(x, items):
            for i in ParaLoop(items, num_processes=2, chunksize=CHUNK):
                x[i] = x[i] * 10 + 1
                if i == 2:
                    return i
            return None
        y = [1, 2, 3]
        f(y, [0, 2, 0])
        f(y, [1, 2, 1])
        result = y
        """
    )


@pytest.mark.parametrize("pairs", ["[(0, 1), (2, 3)]", "[(0, 1), (1, 2)]", "[(1, 0), (2, 1)]", "[(3, 3)]"])
def test_an_unpacked_target_reading_another_element(check: Any, pairs: str) -> None:
    check(
        f"""
        from paraloop import ParaLoop
        x = [1, 2, 3, 4]
        for i, j in ParaLoop({pairs}, num_processes=2, chunksize=CHUNK):
            x[i] = x[j] + 1
            x[j] = x[j] * 2
        result = x
        """
    )


def test_a_generator_of_items_with_enumerate(check: Any) -> None:
    check(
        """
        from paraloop import ParaLoop
        x = [1.5, 2.5, 3.5, 4.5]
        for i, v in ParaLoop(enumerate(v * v for v in range(4)), num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * v - 1
        result = x
        """
    )


@pytest.mark.parametrize("items", ["[0, 2, -1]", "[0, 1, -3]"])
def test_a_bytearray_and_an_object_array(check: Any, items: str) -> None:
    check(
        f"""
        import numpy as np
        from paraloop import ParaLoop
        b = bytearray(b"abc")
        o = np.array([[1], "s", 2.5], dtype=object)
        for i in ParaLoop({items}, num_processes=2, chunksize=CHUNK):
            b[i] = (b[i] * 3) % 256
            o[i] = o[i] * 2
        result = (bytes(b), o.tolist())
        """
    )


def test_a_conditional_touch_with_a_read_only_use(check: Any) -> None:
    check(
        """
        from paraloop import ParaLoop
        x = [10, 20, 30]
        total = 0
        for i, mode in ParaLoop([(0, "w"), (1, "w"), (0, "skip"), (2, "r")], num_processes=2, chunksize=CHUNK):
            if mode == "w":
                x[i] = x[i] + 1
            elif mode == "r":
                total += x[i]
        result = (x, total)
        """
    )


@pytest.mark.parametrize("options", ["caller_runs=False", "timeout=30"])
@pytest.mark.parametrize("items", ["[0, 1, 2]", "[0, 1, 0]"])
def test_caller_runs_and_timeout(check: Any, options: str, items: str) -> None:
    check(
        f"""
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i in ParaLoop({items}, num_processes=2, chunksize=CHUNK, {options}):
            x[i] = x[i] * 10 + 1
        result = x
        """
    )


def test_a_loop_run_in_a_thread(load_module: Loader, request: Any, monkeypatch: Any) -> None:
    use_backend("fork", request, monkeypatch)
    source = """
        import threading
        from paraloop import ParaLoop
        out = {}
        def work(items):
            x = [1, 2, 3]
            try:
                for i in ParaLoop(items, num_processes=2, chunksize=2):
                    x[i] = x[i] * 10
            except Exception as error:
                out[tuple(items)] = type(error).__name__
            else:
                out[tuple(items)] = x
        for items in ([2, 0, 1], [2, 0, 2]):
            t = threading.Thread(target=work, args=(items,))
            t.start()
            t.join()
        result = out
        """
    assert load_module(source).result == {(2, 0, 1): [10, 20, 30], (2, 0, 2): "ParaLoopError"}


def test_on_dask(load_module: Loader, request: Any, monkeypatch: Any) -> None:
    pytest.importorskip("distributed")
    source = """
        from paraloop import ParaLoop
        x = [1, 2, 3]
        for i in ParaLoop(ITEMS, num_processes=2, chunksize=CHUNK):
            x[i] = x[i] * 10 + 1
        result = x
        """
    use_backend("dask", request, monkeypatch)
    for chunk in (1, None):
        assert _outcome(load_module, source.replace("ITEMS", "[2, 0, 1]"), chunk) == ("result", [11, 21, 31])
        assert _outcome(load_module, source.replace("ITEMS", "[2, 0, -1]"), chunk) == ("refused", True)


def test_many_trivial_element_updates(load_module: Loader, request: Any, monkeypatch: Any) -> None:
    """200,000 iterations of x[i] = x[i] * 2 + 1 (measured once: about 0.15 s on processes, threads
    and sequentially against 0.015 s plain, the numbering about 10% of it; not a timed test)."""
    use_backend("fork", request, monkeypatch)
    module = load_module(
        """
        from paraloop import ParaLoop
        x = list(range(200_000))
        for i in ParaLoop(range(200_000), num_processes=2):
            x[i] = x[i] * 2 + 1
        result = x[:3] + x[-1:]
        """
    )
    assert module.result == [1, 3, 5, 399999]
