"""Findings of session 43's second adversarial pass, against the fixes of the first
(tests/test_adversarial_session43.py; commits f5843b5, e43a581): the ``Withheld`` stand-ins of
variables a body reads only through its frame, ``_Frame`` and ``_ModuleFrame``, ``eval(src,
None)``, the refusal of ``globals()`` in a body, ``nonlocal`` with ``bound_outside``, and
module-level ``exec()`` storing into the module's globals.

Every program runs as a user runs it (``python -m paraloop program.py``, conftest.run_source) and,
where a test compares, also as plain Python (``ParaLoop`` replaced by the identity): each test
asserts what plain Python gives, or a paraloop refusal.  Findings are strict xfails; the attacks
that held are plain tests.
"""

from __future__ import annotations

import sys

import pytest
from case_programs import BACKENDS, FORK, SPAWN, THREADS, program
from conftest import last_json, plain_and_paraloop, run_plain, run_source


def _plain_or_refused(plain: list, got: list) -> None:
    """Each case gives the plain value or a paraloop refusal."""
    for expected, outcome in zip(plain, got, strict=True):
        assert outcome in (expected, "ParaLoopError", "UnsupportedLoopError"), (expected, outcome)


# Finding 1. nonlocal of a name the body assigns first, inside a with or try block. -----------------------

_NONLOCAL_IN_A_BLOCK = {
    "with": """
        def counts(rows):
            n = 0
            res = []
            for row in ParaLoop(rows, chunksize=1):
                with open(__file__) as fh:
                    n = 0
                    def count(v):
                        nonlocal n
                        n += v
                    for v in row:
                        count(v)
                res.append(n)
            return res
        """,
    "try": """
        def counts(rows):
            n = 0
            res = []
            for row in ParaLoop(rows, chunksize=1):
                try:
                    n = 0
                    def count(v):
                        nonlocal n
                        n += v
                    for v in row:
                        count(v)
                finally:
                    pass
                res.append(n)
            return res
        """,
}


# Finding 1, fixed: an assignment on the way to the function (its block, or one around it) binds.
@pytest.mark.parametrize("block", sorted(_NONLOCAL_IN_A_BLOCK))
def test_f1_nonlocal_of_a_name_assigned_first_in_a_block(tmp_path, block) -> None:
    source = program(_NONLOCAL_IN_A_BLOCK[block], "lambda: counts([[1, 2], [3, 4], [5]])")
    plain, got = plain_and_paraloop(tmp_path, source, **FORK)
    assert plain == [[3, 7, 5]]
    assert got == plain


# Finding 2. globals() handed to __import__ (for the package only): refused, the advice beside it. --------

_IMPORT_WITH_GLOBALS = program(
    """
    def load():
        out = []
        for name in ParaLoop(["json", "os.path"], chunksize=1):
            module = __import__(name, globals(), None, ["join"])
            out.append(module.__name__)
        return out
    """,
    "load",
)


# Finding 2, fixed: globals() handed to __import__ is left alone.
@pytest.mark.parametrize("env", [FORK, SPAWN], ids=["fork", "spawn"])
def test_f2_globals_handed_to_import(tmp_path, env) -> None:
    plain, got = plain_and_paraloop(tmp_path, _IMPORT_WITH_GLOBALS, **env)
    assert plain == [["json", "posixpath"]]
    assert got == plain


# Finding 3. A Withheld stand-in answers .name (and .where) with paraloop's own slots. ---------------------

_WITHHELD_FILE_NAME = program(
    """
    def tagged(path):
        out = []
        with open(path) as fh:
            for line in ParaLoop(["a", "b"], chunksize=1):
                out.append("{fh.name}:{line}".format(**locals()))
        return out

    with open("data.txt", "w") as f:
        f.write("x\\n")
    """,
    "lambda: tagged('data.txt')",
)


# Finding 3, fixed: the stand-in's own attributes are spelled _paraloop_*.
@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_f3_a_withheld_file_s_name(tmp_path, backend) -> None:
    plain, got = plain_and_paraloop(tmp_path, _WITHHELD_FILE_NAME, **BACKENDS[backend])
    assert plain == [["data.txt:a", "data.txt:b"]]
    _plain_or_refused(plain, got)


# Finding 4. A Withheld stand-in used through a special method Python looks up on its type. ----------------

_WITHHELD_PROTOCOLS = program(
    """
    import threading

    def next_of_an_iterator():
        it = iter(range(100, 200))
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(eval("next(it)"))
        return out

    def with_a_lock():
        lock = threading.Lock()
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            exec("with lock:\\n    pass")
            out.append(i)
        return out
    """,
    "next_of_an_iterator, with_a_lock",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 4: eval('next(it)') and exec('with lock: ...') on a Withheld stand-in raise "
    'TypeError ("\'Withheld\' object is not an iterator", "... does not support the context '
    'manager protocol"), not ParaLoopError, on every backend (the plain loop: [100, 101, 102], '
    "[0, 1, 2])",
)
@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_f4_a_withheld_value_s_protocols(tmp_path, backend) -> None:
    plain, got = plain_and_paraloop(tmp_path, _WITHHELD_PROTOCOLS, **BACKENDS[backend])
    assert plain == [[100, 101, 102], [0, 1, 2]]
    _plain_or_refused(plain, got)


# Finding 5. json.dumps(locals()) with an accumulated name: TypeError, not ParaLoopError. ------------------

_JSON_OF_THE_FRAME = program(
    """
    def log_lines():
        lines = []
        for i in ParaLoop(range(3), chunksize=1):
            square = i * i
            lines.append(json.dumps(locals()))
        return len(lines)
    """,
    "log_lines",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 5: json.dumps(locals()) in a body that accumulates 'lines': TypeError 'Object "
    "of type Accumulated is not JSON serializable' (neither the plain 3 nor the ParaLoopError the "
    "docs promise for a use of the stand-in)",
)
def test_f5_json_of_the_frame(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _JSON_OF_THE_FRAME, **FORK)
    assert plain == [3]
    _plain_or_refused(plain, got)


# Finding 6. The Accumulated stand-in leaves the loop: returned, or kept in a result. ----------------------

_STAND_IN_LEAVES = program(
    """
    def returned():
        seen = []
        for i in ParaLoop(range(5), chunksize=1):
            seen.append(i)
            if i == 2:
                return locals()

    def kept():
        total = 0
        snaps = []
        for i in ParaLoop(range(3), chunksize=1):
            total += i
            snaps.append({k: v for k, v in locals().items() if k != "snaps"})
        return snaps
    """,
    "lambda: json.dumps(returned()), lambda: json.dumps(kept())",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 6: 'return locals()' in the body, or a snapshot of locals() appended to a "
    "list: the Accumulated stand-in is in the loop's result, where the plain loop has the value "
    "({'seen': [0, 1, 2], 'i': 2}); json.dumps of it after the loop raises TypeError",
)
def test_f6_the_stand_in_leaves_the_loop(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _STAND_IN_LEAVES, **FORK)
    assert plain == [
        '{"seen": [0, 1, 2], "i": 2}',
        '[{"total": 0, "i": 0}, {"total": 1, "i": 1}, {"total": 3, "i": 2}]',
    ]
    _plain_or_refused(plain, got)


# Finding 7. Python 3.13+: eval() given its namespaces by keyword reads the worker's frame. ----------------

_EVAL_KEYWORDS = program(
    """
    def scaled():
        k = 5
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(eval("k * i", globals=None, locals=None))
        return out

    def counted():
        out = []
        for i in ParaLoop(range(4), chunksize=2):
            out.append(i)
            n = eval("len(out)", locals=None)
        return n
    """,
    "scaled, counted",
)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="eval() takes its namespaces by keyword from 3.13")
# Finding 7, fixed: eval(src, globals=None, locals=None) reads the frame as eval(src) (3.13+).
def test_f7_eval_with_keyword_namespaces(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _EVAL_KEYWORDS, **FORK)
    assert plain == [[0, 5, 10], 4]
    _plain_or_refused(plain, got)


# Finding 8. Threads: exec() at the top of a module stores into the globals the iterations share. -----------

_MODULE_EXEC_THEN_READ = program(
    """
    import time

    y = -1
    got = []
    for i in ParaLoop(range(4), chunksize=1, num_processes=4):
        exec("y = i * 10")
        time.sleep(0.3 if i == 0 else 0.05)
        got.append(eval("y"))
    print(json.dumps([got, y]))
    """
)


# Finding 8, fixed up to 3.12: exec()'s store reaches the iteration's own locals() too; from 3.13
# locals() is a new snapshot each call, and on threads the module's globals are shared (documented).
@pytest.mark.xfail(
    sys.version_info >= (3, 13),
    strict=True,
    reason="finding 8, open on 3.13+: threads: exec('y = ...') then eval('y') at the top of a module "
    "reads the module's y, which the iterations beside it rebind",
)
def test_f8_module_exec_on_threads_is_shared(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _MODULE_EXEC_THEN_READ, **THREADS)
    assert plain == [[0, 10, 20, 30], 30]
    assert got == plain


# Finding 9. locals() in a body lists the module's globals the body names. -------------------------------

_GLOBALS_IN_THE_FRAME = program(
    """
    import copy

    SCALE = 2

    def square(v):
        return v * v

    def listed():
        k = 4
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append([sorted(locals()), square(i) * SCALE])
        return out

    def copied():
        k = 4
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            frame = copy.deepcopy(locals())
            out.append(frame["k"] * frame["i"])
        return out
    """,
    "listed, copied",
)


# Finding 9, fixed: the module's globals the worker has as parameters are left out.
@pytest.mark.parametrize("backend", ["fork", "sequential"])
def test_f9_the_module_s_globals_in_locals(tmp_path, backend) -> None:
    plain, got = plain_and_paraloop(tmp_path, _GLOBALS_IN_THE_FRAME, **BACKENDS[backend])
    assert plain == [[[["i", "k", "out"], 0], [["i", "k", "out"], 2]], [0, 4, 8]]
    _plain_or_refused(plain, got)


# Finding 10. The globals() refusal's advice (a dict made before the loop) for a namespace. -----------------

_ADVICE_FOR_A_NAMESPACE = program(
    """
    import timeit

    def square(v):
        return v * v

    def timed():
        names = {"square": square}
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(timeit.timeit(f"square({i})", globals=names, number=2) >= 0)
        return out

    def evaluated():
        names = {"square": square}
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(eval("square(i)", names, {"i": i}))
        return out
    """,
    "timed, evaluated",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 10: following the globals() refusal's advice for timeit(..., globals=globals()) "
    "(look values up in a dict made before the loop) is refused in turn: Python adds "
    "'__builtins__' to a namespace dict, and the loop raises 'an iteration changed names'",
)
@pytest.mark.parametrize("env", [FORK, SPAWN], ids=["fork", "spawn"])
def test_f10_the_globals_advice_for_a_namespace(tmp_path, env) -> None:
    plain, got = plain_and_paraloop(tmp_path, _ADVICE_FOR_A_NAMESPACE, **env)
    assert plain == [[True, True, True], [0, 1, 4]]
    assert got == plain


# Attacks that held. --------------------------------------------------------------------------------------

_HELD = program(
    """
    import itertools

    def an_unused_counter():
        ids = itertools.count(10)
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(sorted(k for k, v in locals().items() if v is not None))
        return out

    def returned_keys():
        seen = []
        for i in ParaLoop(range(5), chunksize=1):
            seen.append(i)
            if i == 2:
                return sorted(locals())

    def exec_then_eval():
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            exec(f"y = {i} * 3")
            out.append(eval("y"))
        return out

    def nonlocal_after_a_top_assignment():
        n = None
        res = []
        for row in ParaLoop([[1, 2], [3]], chunksize=1):
            n = 0
            def count(v):
                nonlocal n
                n += v
            for v in row:
                count(v)
            res.append(n)
        return res, n

    def outside_the_body():
        k = 1
        a = []
        for i in ParaLoop(range(2)):
            a.append(i)
        d = locals()
        d["extra"] = 2
        return sorted(locals()), locals()["extra"]
    """,
    "an_unused_counter, returned_keys, exec_then_eval, nonlocal_after_a_top_assignment, outside_the_body",
)


@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_held_frames_and_stand_ins(tmp_path, backend) -> None:
    plain, got = plain_and_paraloop(tmp_path, _HELD, **BACKENDS[backend])
    assert got == plain


@pytest.mark.parametrize(
    "body",
    [
        "t = timeit.timeit(f'square({i})', globals=globals(), number=2)",
        "t = string.Template('$GREETING $who').substitute(globals(), who=i)",
        "t = sorted(globals())",
        "t = {**globals(), 'i': i}",
    ],
    ids=["timeit", "template", "debugging", "spread"],
)
def test_held_globals_refused_at_import(tmp_path, body) -> None:
    source = program(
        f"""
        import string
        import timeit

        GREETING = "hi"

        def square(v):
            return v * v

        def run():
            out = []
            for i in ParaLoop(range(3), chunksize=1):
                {body}
                out.append(bool(t))
            return out
        """,
        "run",
    )
    assert last_json(run_plain(tmp_path, source)) == [[True, True, True]]
    result = run_source(tmp_path, source, **FORK)
    assert result.returncode == 1
    assert "UnsupportedLoopError: globals() in a ParaLoop body" in result.stderr


@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_held_module_exec_refused_or_stored(tmp_path, backend) -> None:
    source = program(
        """
        y = -1
        got = []
        for i in ParaLoop(range(3), chunksize=1):
            exec("y = i * 10", None, None)
            got.append(i)
        print(json.dumps([got, y]))
        """
    )
    assert last_json(run_plain(tmp_path, source)) == [[0, 1, 2], 20]
    result = run_source(tmp_path, source, **BACKENDS[backend])
    if result.returncode == 0:
        assert last_json(result) == [[0, 1, 2], 20]
    else:
        assert "an iteration rebound the global 'y'" in result.stderr
