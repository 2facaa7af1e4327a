"""Findings of session 31b's adversarial pass on the three changes of the hour before it
(0625a26: counted calls that set process-wide state; 8606a53: items that share memory;
fba4181: reworded refusals).

Every program runs as a user runs it (``python -m paraloop program.py`` with paraloop's own
defaults, conftest.run_source), and each test asserts what the plain loop gives, or a
``ParaLoopError`` whose advice fits the loop.  No assertion is on timings: the cost finding counts
the calls paraloop makes to ``numpy.shares_memory``.
"""

from __future__ import annotations

import pytest
from conftest import last_json, run_source

# B1. Columns of an array, changed in place, cost a quadratic number of overlap checks. ------------
#
# 8606a53 looks for items that share memory among the views in flight, bisected by their bytes'
# bounds.  The columns of a C-ordered array (a list of a[:, j], or the array a.T iterated) each
# span nearly the whole array: every column's bounds overlap every other's, so each changed column
# is checked with numpy.shares_memory against every column in flight.  20,000 columns: 289 s where
# cbb6fda took 1.2 s (a.T: 193 s against 1.9 s).  2,000 columns: 2.4 million calls.

COLUMNS_CHANGED_IN_PLACE = """
    # paraloop: enable
    import json, sys
    import numpy as np
    from paraloop import ParaLoop
    calls = [0]
    _real = np.shares_memory
    def counting(*args, **kwargs):
        calls[0] += 1
        return _real(*args, **kwargs)
    np.shares_memory = counting
    n = 2000
    a = np.zeros((4, n))
    items = [a[:, j] for j in range(n)] if sys.argv[1] == "list" else a.T
    for column in ParaLoop(items):
        column += 1
    print(json.dumps([calls[0], float(a.sum())]))
    """


@pytest.mark.parametrize("kind", ["list", "transposed"])
def test_columns_changed_in_place_are_checked_for_overlap_in_linear_work(tmp_path, kind) -> None:
    """Plain: every element 1.0 (sum 8000.0).  paraloop: the same sum, after about 2.4 million
    numpy.shares_memory calls for 2,000 columns (quadratic: combine._ChunkArrays.overlapping walks
    back over every span whose start is within the longest span of this one's)."""
    calls, total = last_json(run_source(tmp_path, COLUMNS_CHANGED_IN_PLACE, kind, timeout=300))
    assert total == 8000.0
    assert calls <= 20 * 2000, f"{calls} numpy.shares_memory calls for 2,000 columns"


# B2. Overlapping windows made by separate as_strided calls are not found. -------------------------
#
# numpy.lib.stride_tricks.as_strided makes an array whose .base is a DummyArray (not an ndarray,
# not a memoryview): combine._memory stops there, so each window is its own "memory" and windows
# over one array are never compared.  Each worker adds 1 to a copy of zeros and the copies are
# written back: every element ends 1.0, silently, where the plain loop adds up to 3.0.

AS_STRIDED_WINDOWS = """
    # paraloop: enable
    import json
    import numpy as np
    from numpy.lib.stride_tricks import as_strided
    from paraloop import ParaLoop, ParaLoopError
    def make():
        a = np.zeros(12)
        return a, [as_strided(a[i:], shape=(3,), strides=(8,), writeable=True) for i in range(10)]
    a, items = make()
    for window in items:
        window += 1
    plain = a.tolist()
    a, items = make()
    try:
        for window in ParaLoop(items):
            window += 1
        got = a.tolist()
    except ParaLoopError as error:
        got = "refused: " + str(error)
    print(json.dumps([plain, got]))
    """


def test_overlapping_as_strided_windows_changed_in_place_give_the_plain_result_or_are_refused(
    tmp_path,
) -> None:
    """Plain: [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1].  paraloop: twelve 1.0s, no error (CONTRACT
    section 5: no silent loss; items are what the plain loop would have seen)."""
    plain, got = last_json(run_source(tmp_path, AS_STRIDED_WINDOWS))
    assert plain == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0]
    assert got == plain or (isinstance(got, str) and got.startswith("refused: ")), got


# B3. A view of an array the body reads through a dict is stale, silently. ------------------------
#
# 8606a53 refuses an item that is a view of an array the body captures by name
# (Combiner._captured_memory looks at the captured values themselves); the same array reached
# through a captured dict (store["a"]) is not looked at, and the worker's copy of it never sees
# the change the iteration made through its item.

VIEW_OF_AN_ARRAY_IN_A_DICT = """
    # paraloop: enable
    import json
    import numpy as np
    from paraloop import ParaLoop, ParaLoopError
    def run(parallel):
        a = np.zeros(20)
        store = {"a": a}
        items = [a[i:i + 2] for i in range(0, 20, 2)]
        out = []
        if parallel:
            for pair in ParaLoop(items):
                pair += 1
                out.append(float(store["a"].sum()))
        else:
            for pair in items:
                pair += 1
                out.append(float(store["a"].sum()))
        return out
    plain = run(False)
    try:
        got = run(True)
    except ParaLoopError as error:
        got = "refused: " + str(error)
    print(json.dumps([plain, got]))
    """


def test_a_view_of_an_array_the_body_reads_through_a_dict_gives_the_plain_result_or_is_refused(
    tmp_path,
) -> None:
    """Plain: [2.0, 4.0, ..., 20.0] (each iteration sees the ones before it through the array).
    paraloop: [0.0, 0.0, ...], no error (CONTRACT section 5)."""
    plain, got = last_json(run_source(tmp_path, VIEW_OF_AN_ARRAY_IN_A_DICT))
    assert plain == [2.0 * k for k in range(1, 11)]
    assert got == plain or (isinstance(got, str) and got.startswith("refused: ")), got


# B4. The own-iterator refusal names advice that does not fit a body that calls next() on it. -----
#
# fba4181 gives a body that uses the loop's own iterator the advice ParaLoop(enumerate(g, 1)) or
# ParaLoop((item, g.line_num) for item in g).  A body that takes a second value with next(g)
# (pairs of items) is sequential by nature; a generator has no line_num (following the advice
# raises AttributeError), and enumerate gives no pairs.  cbb6fda said that each iteration would
# take the next value in the order the workers run, which fits.

NEXT_ON_THE_LOOPS_OWN_GENERATOR = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop, ParaLoopError
    def gen():
        yield from range(10)
    g = gen()
    out = []
    try:
        for a in ParaLoop(g):
            b = next(g, None)
            out.append([a, b])
    except ParaLoopError as error:
        out = "refused: " + str(error)
    print(json.dumps(out))
    """


def test_next_on_the_loops_own_generator_is_not_told_to_read_its_line_num(tmp_path) -> None:
    """Plain: [[0, 1], [2, 3], ...].  paraloop: refused with 'ParaLoop((item, g.line_num) for item
    in g)', an attribute a generator does not have (CONTRACT section 6: a fix that works, or
    sequential by nature)."""
    got = last_json(run_source(tmp_path, NEXT_ON_THE_LOOPS_OWN_GENERATOR))
    assert got == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]] or (
        isinstance(got, str) and got.startswith("refused: ")
    ), got
    if isinstance(got, str):
        assert "g.line_num" not in got, got


# B5. The nested-count refusal fires for stores that count nothing. --------------------------------
#
# fba4181 answers any Kind.ATTRIBUTE use spelled name[...][...] on a dict with "Key each pair once:
# name[(key, inner_key)] += 1 on a collections.defaultdict(int)".  For a store of values into the
# lists or dicts inside a dict (c[k][j] = v, names[k][i] = str(i), a slice assignment), following
# that advice counts the pairs instead of keeping the values: never the plain result.

NESTED_STORES = {
    "dict-of-lists": """
        # paraloop: enable
        import json
        from paraloop import ParaLoop, ParaLoopError
        c = {k: [0, 0, 0] for k in "ab"}
        try:
            for i in ParaLoop(range(6)):
                c["ab"[i % 2]][i % 3] = i
            out = c
        except ParaLoopError as error:
            out = "refused: " + str(error)
        print(json.dumps(out))
        """,
    "dict-of-dicts": """
        # paraloop: enable
        import json
        from paraloop import ParaLoop, ParaLoopError
        c = {"a": {}, "b": {}}
        try:
            for i in ParaLoop(range(6)):
                c["ab"[i % 2]][str(i)] = str(i)
            out = c
        except ParaLoopError as error:
            out = "refused: " + str(error)
        print(json.dumps(out))
        """,
    "slice-insert": """
        # paraloop: enable
        import json
        from paraloop import ParaLoop, ParaLoopError
        c = {"a": [], "b": []}
        try:
            for i in ParaLoop(range(6)):
                c["ab"[i % 2]][0:0] = [i]
            out = c
        except ParaLoopError as error:
            out = "refused: " + str(error)
        print(json.dumps(out))
        """,
}
NESTED_PLAIN = {
    "dict-of-lists": {"a": [0, 4, 2], "b": [3, 1, 5]},
    "dict-of-dicts": {"a": {"0": "0", "2": "2", "4": "4"}, "b": {"1": "1", "3": "3", "5": "5"}},
    "slice-insert": {"a": [4, 2, 0], "b": [5, 3, 1]},
}


@pytest.mark.parametrize("case", sorted(NESTED_STORES))
def test_a_store_into_a_dicts_inner_objects_is_not_told_to_count_pairs(tmp_path, case) -> None:
    """Plain: the values stored.  paraloop: refused with 'c[(key, inner_key)] += 1 on a
    collections.defaultdict(int)', which gives counts of 1 in place of the values (CONTRACT
    section 6: every refusal names a fix that works)."""
    got = last_json(run_source(tmp_path, NESTED_STORES[case]))
    assert got == NESTED_PLAIN[case] or (isinstance(got, str) and got.startswith("refused: ")), got
    if isinstance(got, str):
        assert "+= 1 on a collections.defaultdict(int)" not in got, got


# B6. Rows of a numpy.memmap changed in place are lost, silently. ---------------------------------
#
# Probing 8606a53's views with a memmap: the rows of a np.memmap (iterated directly, or a list of
# its row views) that the body changes in place come back unchanged in the caller, with no error.
# Not new (cbb6fda does the same): the write-back of a changed item recognises an array by its
# exact type (paraloop/items.py, write_back: type numpy.ndarray), and a memmap is a subclass.

MEMMAP_ROWS = """
    # paraloop: enable
    import json, os, sys, tempfile
    import numpy as np
    from paraloop import ParaLoop, ParaLoopError
    def make():
        path = os.path.join(tempfile.mkdtemp(), "m.dat")
        mm = np.memmap(path, dtype="float64", mode="w+", shape=(6, 4))
        mm[:] = 1.0
        return mm
    mm = make()
    items = mm if sys.argv[1] == "iterated" else [mm[i] for i in range(6)]
    try:
        for row in ParaLoop(items):
            row += 1
        got = mm.tolist()
    except ParaLoopError as error:
        got = "refused: " + str(error)
    print(json.dumps(got))
    """


@pytest.mark.parametrize("kind", ["iterated", "row-views"])
def test_rows_of_a_memmap_changed_in_place_give_the_plain_result_or_are_refused(tmp_path, kind) -> None:
    """Plain: every element 2.0.  paraloop: every element still 1.0, no error (CONTRACT section 5:
    every object from outside the loop that an iteration changes is combined or refused)."""
    got = last_json(run_source(tmp_path, MEMMAP_ROWS, kind))
    assert got == [[2.0] * 4] * 6 or (isinstance(got, str) and got.startswith("refused: ")), got


def test_an_array_changed_in_place_beside_its_own_views_is_refused(tmp_path) -> None:
    """Items: an array, then views of it that share no memory with each other (laid apart, so
    they need no comparison among themselves); the body changes the whole array only and reads
    each piece, in the workers.  Plain: the pieces after it see its change ([6.0, 2.0, 2.0, 2.0];
    paraloop gave [6.0, 0.0, 0.0, 2.0], silently).  Found on
    759fffc's own review: the views' shortcut skipped the array that they all view."""
    pytest.importorskip("numpy")
    got = last_json(
        run_source(
            tmp_path,
            """
            # paraloop: enable
            import json, time
            import numpy as np
            from paraloop import ParaLoop, ParaLoopError
            a = np.zeros(6)
            sums = []
            try:
                for piece in ParaLoop([a, a[0:2], a[2:4], a[4:6]], caller_runs=False):
                    time.sleep(0.002)
                    if piece.size == 6:
                        piece += 1
                    sums.append(float(piece.sum()))
                print(json.dumps(sums))
            except ParaLoopError as error:
                print(json.dumps("refused: " + str(error)))
            """,
        )
    )
    assert got == [6.0, 2.0, 2.0, 2.0] or (isinstance(got, str) and "shares its memory" in got), got
