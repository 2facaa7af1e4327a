"""Findings of session 33's second adversarial pass, against paraloop.iterable_watch (commit c7f76e6):
the caller's look, as each item comes out of an iterator, at the globals the body reads (identity)
and at the small containers of plain values it reads (their own entries at each item, a pickle
hash at each read's end), and, for a generator expression over ParaLoop, between its items.

Every program runs as a user runs it (``python -m paraloop program.py``, conftest.run_source), and
each test asserts what the plain loop gives, or a ``ParaLoopError`` where the contract allows a
refusal (CONTRACT sections 1, 5, 6).  No assertion is on timings.
"""

from __future__ import annotations

import pytest
from conftest import last_json, run_source
from test_adversarial_session33 import _plain_or_iterable_refusal, _program


def _plain_or_between_items_refusal(out: object, plain: object) -> None:
    """The plain result, or BetweenItems' refusal (read the expression whole first)."""
    if isinstance(out, str):
        assert out.startswith("refused: ") and "the program changed" in out, out
    else:
        assert out == plain


# The backends on which the watch looks at containers: worker processes with the caller's chunks
# off (fork: the quickest), and threads.
_WATCHED = {
    "fork": {"PARALOOP_BACKEND": "processes", "PARALOOP_START_METHOD": "fork", "PARALOOP_CALLER_RUNS": "0"},
    "threads": {"PARALOOP_BACKEND": "threads"},
}


# F1. A change deeper in a container, undone within the same read: silent. ------------------------
#
# The entries of a container are compared at each item, but a change deeper in (an entry of a
# list held in the dict) only by the pickle hash at the read's end.  A generator that sets such a
# value for one item and puts it back at the next leaves the hash as it was whenever both items
# fall in one read (reads grow to hundreds of items): no refusal, and the item read the loop
# start's value.  Plain: out[1000] == 1.  paraloop (fork caller off, threads): all 0, silently.

_UNDONE_DEEPER = _program(
    """
CONFIG = {"weights": [0]}
def rows(n):
    for i in range(n):
        CONFIG["weights"][0] = 1 if i == 1000 else 0
        yield i
""",
    """
for i in ParaLoop(rows(2000)):
    out.append(CONFIG["weights"][0])
""",
)


@pytest.mark.parametrize("backend", _WATCHED)
def test_a_deeper_change_undone_within_one_read_is_seen(tmp_path, backend) -> None:
    out = last_json(run_source(tmp_path, _UNDONE_DEEPER, **_WATCHED[backend]))
    _plain_or_iterable_refusal(out, [1 if i == 1000 else 0 for i in range(2000)])


# F2. The iterable's own exception skips the read's end check. ---------------------------------
#
# ``Chunker._next`` calls ``watch.end`` only when ``_read`` returns; when the iterable raises (a
# truncated file), ``Partial`` goes past it, and the items of that read run with the loop start's
# value of a change deeper in a container.  Plain: [..., 0, 1, 1, 1, "truncated file"].
# paraloop: fork (caller off) [..., 0, 0, 0, 0, "truncated file"], silently; threads: the
# guard's "an iteration changed 'CONFIG'", which blames the body.

_RAISES_AFTER_A_DEEPER_CHANGE = _program(
    """
CONFIG = {"weights": [0]}
def rows(n):
    for i in range(n):
        if i == n - 3:
            CONFIG["weights"][0] = 1
        yield i
    raise ValueError("truncated file")
""",
    """
try:
    for i in ParaLoop(rows(40)):
        out.append(CONFIG["weights"][0])
except ValueError as error:
    out.append(str(error))
""",
)


@pytest.mark.parametrize("backend", _WATCHED)
def test_the_read_s_end_check_is_not_skipped_when_the_iterable_raises(tmp_path, backend) -> None:
    out = last_json(run_source(tmp_path, _RAISES_AFTER_A_DEEPER_CHANGE, **_WATCHED[backend]))
    _plain_or_iterable_refusal(out, [0] * 37 + [1, 1, 1, "truncated file"])


# F3. A container changed after the first item: the guard's refusal, blaming the body. ------------
#
# A generator reading several files sets ``config["unit"]`` at the second file's first item.  On
# threads, and on worker processes with the caller's chunks (the default), the watch's refusal
# (yield the value with the item) is pre-empted by the guard's: "an iteration changed 'config'
# ... Update it in the loop body itself, in a form paraloop combines ... or return the values
# and apply them after the loop", advice that does not apply (CONTRACT section 6).  Only a
# change at the first item (every case of tests/test_iterable_changes.py) gets the watch's.

_UNIT_OF_THE_SECOND_FILE = _program(
    """
config = {"unit": 1}
def rows(n):
    for i in range(n):
        if i == 20:
            config["unit"] = 1000
        yield i
""",
    """
for i in ParaLoop(rows(40)):
    out.append(i * config["unit"])
""",
)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"PARALOOP_BACKEND": "processes", "PARALOOP_CALLER_RUNS": "1"}, id="caller"),
        pytest.param({"PARALOOP_BACKEND": "threads"}, id="threads"),
    ],
)
def test_a_container_changed_after_the_first_item_is_refused_with_the_watch_s_advice(tmp_path, env) -> None:
    out = last_json(run_source(tmp_path, _UNIT_OF_THE_SECOND_FILE, **env))
    _plain_or_iterable_refusal(out, [i * (1000 if i >= 20 else 1) for i in range(40)])


# F4. The 4 KB is shared: a tiny config dict goes unwatched beside a larger one. ---------------
#
# ``IterableWatch.of`` gives the containers one budget of _SMALL bytes in the order of the body's
# names; docs/semantics.md says each small container is watched ("at most 4 KB pickled").  Here
# ``NAMES`` (60 entries, 4096 bytes) takes it all, so ``ZCFG`` ({"scale": 1}, 25 bytes) is not
# looked at: the generator's change for item 50 (undone at 51, so the guard sees nothing either)
# is silently lost.  Plain: out[50] == 5900.  paraloop (fork caller off, threads): 59, silently.

_BUDGET_TAKEN = _program(
    """
NAMES = {f"k{i:02d}": (f"{i:02d}" * 30)[:59] for i in range(60)}
ZCFG = {"scale": 1}
def rows(n):
    for i in range(n):
        ZCFG["scale"] = 100 if i == 50 else 1
        yield f"k{i % 60:02d}"
""",
    """
for k in ParaLoop(rows(100)):
    out.append(len(NAMES[k]) * ZCFG["scale"])
""",
)


@pytest.mark.parametrize("backend", _WATCHED)
def test_a_small_container_is_watched_beside_one_that_takes_the_budget(tmp_path, backend) -> None:
    out = last_json(run_source(tmp_path, _BUDGET_TAKEN, **_WATCHED[backend]))
    plain = [59 * (100 if i == 50 else 1) for i in range(100)]
    _plain_or_iterable_refusal(out, plain)


# F5. A generator expression: an in-place change undone before the next chunk: silent. ------------
#
# BetweenItems looks at containers at a chunk's first item only; a change the program makes
# after item 100 and undoes after item 101 is never seen (the fingerprints at the next chunk and
# at the end are as at the start), yet the plain expression computed item 101 with it.  The docs
# promise a refusal ("may have reached your program with the old value before the refusal
# comes").  Plain: out[101] == 1101.  paraloop (fork, threads): 101, silently.

_GENEXP_UNDONE = _program(
    """
CONFIG = {"k": 0}
""",
    """
for n, v in enumerate(CONFIG["k"] + i for i in ParaLoop(range(200))):
    out.append(v)
    CONFIG["k"] = 1000 if n == 100 else 0
""",
)


@pytest.mark.parametrize("backend", _WATCHED)
def test_a_generator_expression_sees_an_in_place_change_undone_before_the_next_chunk(
    tmp_path, backend
) -> None:
    out = last_json(run_source(tmp_path, _GENEXP_UNDONE, **_WATCHED[backend]))
    _plain_or_between_items_refusal(out, [i + (1000 if i == 101 else 0) for i in range(200)])


# F6. A generator expression in a function, reading a local the function rebinds between items. ----
#
# The most common place for a generator expression is a function, reading the function's own
# variables.  BetweenItems looked at globals and containers only: ``scale = 100`` between two items
# was not seen, and every backend gave the values of when the expression was made, silently,
# sequential included, though docs/semantics.md says "The sequential backend computes each item
# when it is asked for, as Python does, and gives the plain result".  Plain: out[11] == 1100.
# Seen since session 35 (paraloop/live_names.py): refused, or the plain result sequentially.

_GENEXP_LOCAL = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop, ParaLoopError

    def run():
        scale = 1
        out = []
        for n, v in enumerate(i * scale for i in ParaLoop(range(100))):
            out.append(v)
            if n == 10:
                scale = 100
        return out

    try:
        out = run()
    except ParaLoopError as error:
        out = "refused: " + str(error)
    print(json.dumps(out))
    """


@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_a_generator_expression_in_a_function_sees_a_local_rebound_between_items(tmp_path, backend) -> None:
    env = _WATCHED.get(backend, {"PARALOOP_BACKEND": backend})
    out = last_json(run_source(tmp_path, _GENEXP_LOCAL, **env))
    plain = [i * (100 if i > 10 else 1) for i in range(100)]
    if backend == "sequential":
        assert out == plain
    else:
        _plain_or_between_items_refusal(out, plain)


# F7. False refusal: a NaN entry set again. --------------------------------------------------------
#
# A generator that sets ``STATS["fill"] = float(header["fill"])`` for each item, always "nan":
# the pickle (what the docs say is compared) is the same, but the per-item comparison of the
# entries uses ==, and a new nan object is not equal to the old one.  Refused: "the loop's
# iterable changed 'STATS' (in place: dict)"; commit 543e715 gave the plain result.

_NAN_SET_AGAIN = _program(
    """
STATS = {"fill": float("nan"), "scale": 2}
def rows(n):
    for i in range(n):
        STATS["fill"] = float("nan")
        yield i
""",
    """
for i in ParaLoop(rows(100)):
    out.append([str(STATS["fill"] * i), STATS["scale"] * i])
""",
)


@pytest.mark.parametrize("backend", _WATCHED)
def test_a_nan_entry_set_again_is_not_refused(tmp_path, backend) -> None:
    out = last_json(run_source(tmp_path, _NAN_SET_AGAIN, **_WATCHED[backend]))
    assert out == [["nan", 2 * i] for i in range(100)]
