"""Adversarial cases against the new parts: exact replay, inferred forms, the guard, items, exceptions, references.

Each test runs a loop a user could write and asserts what the docs promise for it (docs/semantics.md):
the plain loop's result, or a ``ParaLoopError`` whose advice works. A loop whose
result only goes wrong where iterations run in other processes runs on the
process backends (fork and spawn); the others run on every backend.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from conftest import use_backend
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = "from paraloop import ParaLoop, Variable, aggregation_strategies as s\n"


@pytest.fixture(params=["fork", "spawn"])
def processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test's loops in worker processes, under the fork and the spawn start methods."""
    return use_backend(request.param, request, monkeypatch)


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test's loops with what the code asks for: no PARALOOP_* override."""
    for name in ("PARALOOP_BACKEND", "PARALOOP_START_METHOD", "PARALOOP_WORKERS", "PARALOOP_DASK_SCHEDULER"):
        monkeypatch.delenv(name, raising=False)


def source_of(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def plain_result(source: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_plain(source)["result"]


def plain_or_refused(load_module: Loader, source: str) -> tuple[Any, paraloop.ParaLoopError | None]:
    """The plain loop's ``result`` and, through paraloop, either the same ``result`` or the refusal.

    A timeout is not a refusal: it stands for a hang the test bounded.
    """
    expected = plain_result(source)
    try:
        module = load_module(source)
    except paraloop.IterationTimeoutError:
        raise
    except paraloop.ParaLoopError as error:
        return expected, error
    assert module.result == expected
    return expected, None


# ---------------------------------------------------------------------------
# Exact reductions and the inferred forms
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("every_backend")
def test_written_out_sum_of_an_array_or_list_leaves_the_old_object_alone(load_module: Loader) -> None:
    """``acc = acc + e`` makes a new object each time: a name bound to the old one still sees the old one.

    The plain loop never changes the pre-loop array or list; replaying the terms
    with ``+=`` onto the caller's object changes it in place (all backends).
    """
    source = source_of("""
        import numpy as np
        acc = np.zeros(3)
        old_acc = acc
        lst = [0]
        old_lst = lst
        for i in ParaLoop(range(1, 20), num_processes=3, chunksize=2):
            acc = acc + np.ones(3) / i
            lst = lst + [i]
        result = (acc.tolist(), old_acc.tolist(), lst, old_lst, acc is old_acc, lst is old_lst)
    """)
    expected = plain_result(source)
    assert load_module(source).result == expected


@pytest.mark.usefixtures("every_backend")
def test_sum_with_the_name_on_the_right_is_not_called_sequential_by_nature(load_module: Loader) -> None:
    """``total = e + total`` (and ``e1 + total + e2``) is a sum like ``total += e``, bit for bit.

    It is refused today as a value carried from one iteration to the next,
    "sequential by nature", with advice to assign it before reading it: neither
    is true of a sum.
    """
    source = source_of("""
        total = 0.0
        other = 0.0
        for i in ParaLoop(range(1, 300), num_processes=3, chunksize=7):
            total = 1 / i + total
            other = 1 / i + other + 1 / (3 * i)
        result = (total.hex(), other.hex())
    """)
    _, refusal = plain_or_refused(load_module, source)
    if refusal is not None:
        assert "sequential by nature" not in str(refusal)


@pytest.mark.usefixtures("every_backend")
def test_own_index_update_through_a_negative_and_a_positive_index(load_module: Loader) -> None:
    """``x[i] = f(x[i])`` where items -1 and 3 name the same element of a list of 4.

    The plain loop applies f twice to x[3]; paraloop applies it once (silently).
    """
    source = source_of("""
        x = [1.0, 2.0, 3.0, 4.0]
        for i in ParaLoop(range(-1, 4), num_processes=2, chunksize=1):
            x[i] = x[i] * 2 + 1
        result = x
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("every_backend")
def test_own_row_update_through_a_negative_and_a_positive_index(load_module: Loader) -> None:
    """``a[i, :] = f(a[i, :])`` where rows -1 and 3 are the same row: f applies twice in the plain loop."""
    source = source_of("""
        import numpy as np
        a = np.ones((4, 2))
        for i in ParaLoop(range(-1, 4), num_processes=2, chunksize=1):
            a[i, :] = a[i, :] * 2 + 1
        result = a.tolist()
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("defaults")
def test_repeated_index_refusal_names_its_line_and_a_fix_that_works(load_module: Loader) -> None:
    """Items that repeat an index are refused suggesting backend='sequential': that loop must then run.

    Today the refusal names neither file nor line, and the same loop with
    backend='sequential' is refused again with the same message.
    """
    body = """
        x = [1.0, 2.0, 3.0, 4.0]
        for i in ParaLoop([0, 1, 0, 2, 0], {options}):
            x[i] = x[i] * 2 + 1
        result = x
    """
    source = source_of(body.replace("{options}", "num_processes=2, chunksize=1"))
    _, refusal = plain_or_refused(load_module, source)
    # Refused every run, wherever the chunks are cut (tests/test_repeated_element_updates.py).
    assert refusal is not None
    message = str(refusal)
    loop_line = ("# paraloop: enable\n" + source).splitlines().index(
        next(line for line in source.splitlines() if "for i in ParaLoop" in line)
    ) + 1
    assert f".py, line {loop_line}:" in message
    assert "backend='sequential'" in message
    sequential = source_of(body.replace("{options}", "backend='sequential'"))
    assert load_module(sequential).result == plain_result(sequential)


@pytest.mark.usefixtures("every_backend")
def test_scratch_buffer_read_through_a_helper_function(load_module: Loader) -> None:
    """A buffer overwritten whole in every iteration and read by a function using it as a global.

    Every worker gets its own copy of the buffer, but the function reads the
    caller's (never written) one: the plain loop's sums become zeros.
    """
    source = source_of("""
        import numpy as np
        buf = np.zeros(3)
        def total():
            return float(buf.sum())
        out = []
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            buf[:] = i
            out.append(total())
        result = (out, buf.tolist())
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("every_backend")
def test_scratch_buffer_read_through_an_alias(load_module: Loader) -> None:
    """``alias = buf`` before the loop, ``buf[:] = i`` then ``alias.sum()`` in the body.

    Processes silently read zeros; threads raise a bare ValueError (read-only).
    """
    source = source_of("""
        import numpy as np
        buf = np.zeros(3)
        alias = buf
        out = []
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            buf[:] = i
            out.append(float(alias.sum()))
        result = (out, buf.tolist(), alias is buf)
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("every_backend")
def test_a_sum_variable_mixing_add_and_multiply_is_refused(load_module: Loader) -> None:
    """``v += i; v *= 2`` on a Sum Variable carries a value: refused like the plain-name form, never summed."""
    source = source_of("""
        a = Variable(0.0, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(1, 20), num_processes=3, chunksize=2):
            a += i
            a *= 2
        result = a.value if isinstance(a, Variable) else a
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("every_backend")
def test_a_sum_variable_of_a_dict_assigned_by_key_keeps_the_last_value(load_module: Loader) -> None:
    """``v[k] = x`` on ``Variable({}, Sum)`` sets the entry in the plain loop; paraloop adds the values."""
    source = source_of("""
        f = Variable({}, aggregation_strategy=s.Sum)
        for i in ParaLoop(range(1, 40), num_processes=3, chunksize=4):
            f[i % 3] = i
        result = dict(f.value)
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("every_backend")
def test_decimal_terms_use_the_callers_decimal_context(load_module: Loader) -> None:
    """``getcontext().prec = 6`` before the loop: the plain loop's Decimal divisions round to 6 digits.

    Spawned workers and threads compute with the default 28 digits instead (silently).
    """
    source = source_of("""
        from decimal import Decimal, getcontext
        def run():
            getcontext().prec = 6
            terms = []
            for i in ParaLoop(range(1, 8), num_processes=2, chunksize=2):
                terms.append(Decimal(1) / Decimal(i))
            return [str(t) for t in terms]
        result = run()
    """)
    try:
        expected = plain_result(source)
        assert load_module(source).result == expected
    finally:
        __import__("decimal").getcontext().prec = 28


@pytest.mark.usefixtures("every_backend")
def test_dict_get_counting_refusal_names_a_fix_a_dict_has(load_module: Loader) -> None:
    """``counts[w] = counts.get(w, 0) + 1``: if refused, the advice must not be ``counts.append(v)``.

    A dict has no append, and the per-key count is not sequential by nature.
    """
    source = source_of("""
        counts = {}
        for w in ParaLoop("a b a c b a".split() * 5, num_processes=2, chunksize=3):
            counts[w] = counts.get(w, 0) + 1
        result = counts
    """)
    _, refusal = plain_or_refused(load_module, source)
    if refusal is not None:
        message = str(refusal)
        assert "counts.append" not in message
        assert "sequential by nature" not in message


# ---------------------------------------------------------------------------
# No silent loss: changes made through functions, methods and iterators
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("processes")
def test_a_helper_module_changing_its_own_global_is_not_lost(load_module: Loader) -> None:
    """``helpers.record(i)`` appends to a list of the user's helper module: combined or refused."""
    helpers = load_module("STORE = []\ndef record(x):\n    STORE.append(x)\n", marked=False)
    source = source_of(f"""
        import {helpers.__name__} as helpers
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            helpers.record(i)
        result = list(helpers.STORE)
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError:
        return
    assert module.result == list(range(10))


@pytest.mark.usefixtures("processes")
def test_a_method_changing_a_class_attribute_is_not_lost(load_module: Loader) -> None:
    """A method appending to a list held by the class, and counting on the class: combined or refused."""
    source = source_of("""
        class Tracker:
            seen = []
            count = 0
            def hit(self, x):
                Tracker.seen.append(x)
                type(self).count += 1
        t = Tracker()
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            t.hit(i)
        result = (list(Tracker.seen), Tracker.count)
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError:
        return
    assert module.result == (list(range(10)), 10)


@pytest.mark.usefixtures("processes")
def test_a_bound_method_changing_a_module_global_is_not_lost(load_module: Loader) -> None:
    """``log = Logger().log`` whose method appends to a module global: combined or refused."""
    source = source_of("""
        LOG = []
        class Logger:
            def log(self, x):
                LOG.append(x)
        log = Logger().log
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            log(i)
        result = list(LOG)
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError:
        return
    assert module.result == list(range(10))


@pytest.mark.usefixtures("processes")
def test_a_callable_object_changing_a_module_global_is_not_lost(load_module: Loader) -> None:
    """An instance whose ``__call__`` appends to a module global: combined or refused."""
    source = source_of("""
        LOG = []
        class Recorder:
            def __call__(self, x):
                LOG.append(x)
        record = Recorder()
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            record(i)
        result = list(LOG)
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError:
        return
    assert module.result == list(range(10))


@pytest.mark.usefixtures("processes")
def test_a_helper_changing_an_object_that_holds_a_lock_is_not_lost(load_module: Loader) -> None:
    """The fingerprint of an object holding a lock cannot be taken; its list changed by a helper is lost."""
    source = source_of("""
        import threading
        class Registry:
            def __init__(self):
                self.lock = threading.Lock()
                self.items = []
        registry = Registry()
        def record(x):
            registry.items.append(x)
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            record(i)
        result = list(registry.items)
    """)
    try:
        module = load_module(source)
    except paraloop.ParaLoopError:
        return
    assert module.result == list(range(10))


@pytest.mark.usefixtures("processes")
def test_a_captured_iterator_advanced_by_the_body(load_module: Loader) -> None:
    """``next(it)`` on an iterator from outside the loop: each worker's copy starts over (items repeat)."""
    source = source_of("""
        it = iter(range(100, 200))
        out = []
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            out.append(next(it))
        result = out
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("defaults")
def test_the_global_random_generator_gives_the_plain_draws_under_the_defaults(load_module: Loader) -> None:
    """A loop using the global RNG's seed gives the plain result under the defaults."""
    source = source_of("""
        import random
        import time
        random.seed(0)
        out = []
        for i in ParaLoop(range(40)):
            time.sleep(0.005)
            out.append(random.random())
        result = out
    """)
    with pytest.warns(paraloop.ParaLoopWarning, match="ran sequentially"):
        module = load_module(source)
    assert module.result == plain_result(source)


@pytest.mark.usefixtures("processes")
def test_a_class_holding_a_reentrant_lock_does_not_deadlock_the_workers(load_module: Loader) -> None:
    """A class (here local to a function, so pickled by value) with an RLock, as cached_property has on 3.11.

    dill rebuilds the RLock held, so every worker waits on it forever; the
    loop's timeout=5 turns that hang into IterationTimeoutError here.
    """
    module = load_module(
        source_of("""
        import threading
        def run():
            class Data:
                lock = threading.RLock()
                def get(self):
                    with self.lock:
                        return 1
            d = Data()
            out = []
            for i in ParaLoop(range(10), num_processes=2, chunksize=2, timeout=5):
                out.append(d.get() + i)
            return out
    """)
    )
    try:
        result = module.run()
    except paraloop.IterationTimeoutError:
        raise
    except paraloop.ParaLoopError:
        return
    assert result == list(range(1, 11))


@pytest.mark.usefixtures("every_backend")
def test_reading_a_cached_property_is_not_refused(load_module: Loader) -> None:
    """Reading a ``functools.cached_property`` fills its cache: the object's value did not change."""
    source = source_of("""
        import functools
        class Data:
            def __init__(self):
                self.values = list(range(100))
            @functools.cached_property
            def total(self):
                return sum(self.values)
        data = Data()
        out = []
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            out.append(data.total + i)
        result = out
    """)
    assert load_module(source).result == plain_result(source)


@pytest.mark.usefixtures("processes")
def test_a_guard_refusal_note_names_the_item_it_held(load_module: Loader) -> None:
    """The note of a refusal names the iteration and its item; no item of ``range(10)`` is None."""
    source = source_of("""
        LOG = []
        def record(x):
            LOG.append(x)
        for i in ParaLoop(range(10), num_processes=2, chunksize=2):
            record(i)
    """)
    with pytest.raises(paraloop.ParaLoopError) as caught:
        load_module(source)
    for note in getattr(caught.value, "__notes__", []):
        assert "(item None)" not in note


@pytest.mark.parametrize("choice", ["threads", "dask"])
def test_timeout_is_honoured_on_threads_and_dask(
    load_module: Loader, choice: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same program runs on every backend; timeout= is refused only where it cannot mean anything.

    On threads it raises IterationTimeoutError and leaves the thread to finish; on
    Dask the task's worker is restarted. Today both backends refuse the option.
    """
    use_backend(choice, request, monkeypatch)
    source = source_of("""
        out = []
        for i in ParaLoop(range(10), num_processes=2, chunksize=2, timeout=30):
            out.append(i * i)
        result = out
    """)
    assert load_module(source).result == plain_result(source)


# ---------------------------------------------------------------------------
# Items, exceptions and references
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("processes")
def test_numpy_items_changed_in_place_are_not_lost(load_module: Loader) -> None:
    """``for a in arrays: a += 1`` changes the caller's arrays; dict items are refused, arrays are lost."""
    source = source_of("""
        import numpy as np
        arrays = [np.zeros(2) for _ in range(4)]
        for a in ParaLoop(arrays, num_processes=2, chunksize=2):
            a += 1
        result = [a.tolist() for a in arrays]
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("processes")
def test_rows_of_an_array_normalised_in_place_are_not_lost(load_module: Loader) -> None:
    """``for row in matrix: row /= row.sum()``: the rows are views of the caller's matrix."""
    source = source_of("""
        import numpy as np
        matrix = np.arange(1.0, 9.0).reshape(4, 2)
        for row in ParaLoop(matrix, num_processes=2, chunksize=2):
            row /= row.sum()
        result = matrix.tolist()
    """)
    plain_or_refused(load_module, source)


@pytest.mark.usefixtures("processes")
def test_a_local_exception_class_is_caught_by_its_own_except(load_module: Loader) -> None:
    """``except Local:`` fires for an exception class defined in the function (section 5: type kept)."""
    module = load_module(
        source_of("""
        def run():
            class Local(ValueError):
                pass
            try:
                for i in ParaLoop(range(10), num_processes=2, chunksize=2):
                    if i == 5:
                        raise Local("local class")
            except Local as error:
                return ("Local", str(error))
            except ValueError as error:
                return ("only ValueError", type(error).__name__, str(error))
    """)
    )
    assert module.run() == ("Local", "local class")


@pytest.mark.usefixtures("every_backend")
def test_a_view_of_a_fortran_ordered_array_bound_in_the_body_is_a_writable_view(load_module: Loader) -> None:
    """``col = a[:, i]`` of an F-ordered array comes back read-only (and a copy) on processes."""
    source = source_of("""
        import numpy as np
        a = np.zeros((3, 4), order="F")
        for i in ParaLoop(range(3), num_processes=2, chunksize=1):
            col = a[:, i]
        col[0] = 5
        result = a[0].tolist()
    """)
    assert load_module(source).result == plain_result(source)


@pytest.mark.usefixtures("every_backend")
def test_a_view_with_another_dtype_bound_in_the_body_is_a_writable_view(load_module: Loader) -> None:
    """``ints = c.view(np.int64)`` comes back read-only (and a copy) on processes."""
    source = source_of("""
        import numpy as np
        c = np.zeros(6)
        for i in ParaLoop(range(3), num_processes=2, chunksize=1):
            ints = c.view(np.int64)
        ints[0] = 7
        result = bool(c[0] != 0)
    """)
    assert load_module(source).result == plain_result(source)


@pytest.mark.usefixtures("every_backend")
def test_an_element_of_a_captured_container_bound_in_the_body_is_that_element(load_module: Loader) -> None:
    """``row = rows[i]`` and ``params = cfg["params"]`` are the caller's objects after the loop, as plain."""
    source = source_of("""
        rows = [[0], [1], [2]]
        cfg = {"params": {"lr": 0.1}}
        for i in ParaLoop(range(3), num_processes=2, chunksize=1):
            row = rows[i]
            params = cfg["params"]
        row.append(99)
        params["lr"] = 0.5
        result = (rows, cfg)
    """)
    assert load_module(source).result == plain_result(source)
