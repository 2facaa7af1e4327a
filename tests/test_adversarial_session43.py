"""Findings of session 43's adversarial pass against what a body's frame shows (commits 59cbb6e,
af6f3b9, 1590578: paraloop/frame_names.py, the rewriter's ``frame_readers``, ``read_frame_names``,
``plain_frame``, ``_outer_nonlocals`` and the comprehension path on Python 3.12+), and the body's
own globals compared on worker processes (3543347).

Every program runs as a user runs it (``python -m paraloop program.py``, conftest.run_source) and,
where a test compares, also as plain Python (``ParaLoop`` replaced by the identity): each test
asserts what plain Python gives, or the documented refusal.  Findings are strict xfails (some only
on the Python versions where they show); the attacks that held are plain tests.
"""

from __future__ import annotations

import sys

import pytest
from case_programs import BACKENDS, FORK, SEQUENTIAL, SPAWN, THREADS, program
from conftest import last_json, plain_and_paraloop, run_plain, run_source


def _same(tmp_path, source: str, env: dict[str, str]) -> None:
    plain, got = plain_and_paraloop(tmp_path, source, **env)
    assert got == plain


# Finding 1. A name the body binds, read through locals()/eval() before the iteration binds it. ----------

_PREVIOUS_ITERATION = program(
    """
    def first_flags():
        flags = []
        for i in ParaLoop(range(6), chunksize=2):
            flags.append("prev" not in locals())
            prev = i
        return flags

    def previous_by_get():
        seen = []
        for i in ParaLoop(range(6), chunksize=2):
            seen.append(locals().get("prev", "none"))
            prev = i
        return seen

    def previous_by_eval():
        seen = []
        prev = -1
        for i in ParaLoop(range(4), chunksize=1):
            seen.append(eval("prev"))
            prev = i
        return seen
    """,
    "first_flags, previous_by_get, previous_by_eval",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 1: a name bound by the previous iteration is missing from locals()/eval() at each "
    "chunk's start ([True, False, True, ...] where the plain loop gives [True, False, False, ...]), "
    "neither the plain value nor a loop-carried refusal",
)
def test_f1_names_of_the_previous_iteration_seen_through_the_frame(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _PREVIOUS_ITERATION, **FORK)
    assert plain == [[True, False, False, False, False, False], ["none", 0, 1, 2, 3, 4], [-1, 0, 1, 2]]
    if got != plain:
        # A refusal naming the loop-carried read would keep the contract too.
        assert all(outcome == "ParaLoopError" for outcome in got), got


# Finding 2. exec(src) then locals() in one iteration (Python 3.10 to 3.12). --------------------------------

_EXEC_THEN_LOCALS = program(
    """
    def exec_then_locals():
        out = []
        for i in ParaLoop(range(4), chunksize=2):
            exec(f"y = {i} * 2")
            out.append(locals()["y"])
        return out
    """,
    "exec_then_locals",
)


# Finding 2, fixed: what exec() stores reaches the worker's own locals() (paraloop/frame_names._Frame).
def test_f2_exec_then_locals_in_one_iteration(tmp_path) -> None:
    _same(tmp_path, _EXEC_THEN_LOCALS, FORK)


# Finding 3. locals() in the first iterable of a comprehension in the body (run in the body's frame). -----

_COMPREHENSION_ITERABLE = program(
    """
    def names_of_a_comprehension():
        k = 3
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(sorted(name for name in locals()))
        return out
    """,
    "names_of_a_comprehension",
)


# Finding 3, fixed: a comprehension's first iterable is read in the body's frame.
def test_f3_locals_in_a_comprehension_s_first_iterable(tmp_path) -> None:
    _same(tmp_path, _COMPREHENSION_ITERABLE, FORK)


# Finding 4. The stand-in of an accumulated name changes what isinstance() and callable() say. ------------

_STAND_IN_CHECKS = program(
    """
    def ints_of_the_frame():
        total = 0
        names = []
        for i in ParaLoop(range(4), chunksize=1):
            shown = []
            for key, value in list(locals().items()):
                if isinstance(value, int):
                    shown.append(key)
            names.append(sorted(shown))
            total += i
        return names

    def data_of_the_frame():
        out = []
        names = []
        for i in ParaLoop(range(3), chunksize=1):
            shown = []
            for key, value in list(locals().items()):
                if not callable(value):
                    shown.append(key)
            names.append(sorted(shown))
            out.append(i)
        return names
    """,
    "ints_of_the_frame, data_of_the_frame",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 4, in part (callable() is False for it since): the Accumulated stand-in is not an "
    "int for isinstance(): filtering locals() by type silently drops 'total' (documented)",
)
def test_f4_the_stand_in_answers_isinstance_and_callable_silently(tmp_path) -> None:
    plain, got = plain_and_paraloop(tmp_path, _STAND_IN_CHECKS, **FORK)
    if got != plain:
        assert all(outcome == "ParaLoopError" for outcome in got), got


# Finding 5. A ParaLoop loop inside a ParaLoop body: its body's locals(). -------------------------------

_NESTED_PARALOOP = program(
    """
    def nested():
        k = 2
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            for j in ParaLoop(range(2)):
                out.append(sorted(locals()))
        return out
    """,
    "nested",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 5: locals() in the body of a ParaLoop loop nested in a ParaLoop body shows "
    "'__paraloop_chunk__', '__paraloop_it__' and misses 'i' and 'k'",
)
def test_f5_locals_in_a_nested_paraloop_body(tmp_path) -> None:
    _same(tmp_path, _NESTED_PARALOOP, FORK)


# Finding 6. A body's function whose nonlocal names a variable the body binds only on some paths. ----------

_NONLOCAL_SOMETIMES_BOUND = program(
    """
    def counted():
        count = 0
        for i in ParaLoop(range(10), chunksize=2):
            if i < 0:
                count = 0
            def bump():
                nonlocal count
                count = count + 1
            bump()
        return count
    """,
    "counted",
)


# Finding 6, fixed: refused at import, as when the body never binds it.
@pytest.mark.parametrize("backend", ["fork", "sequential"])
def test_f6_nonlocal_of_a_name_the_body_binds_only_sometimes(tmp_path, backend) -> None:
    assert last_json(run_plain(tmp_path, _NONLOCAL_SOMETIMES_BOUND)) == [10]
    result = run_source(tmp_path, _NONLOCAL_SOMETIMES_BOUND, **BACKENDS[backend])
    assert result.returncode == 1
    assert "UnsupportedLoopError: a function defined in a ParaLoop body declares 'nonlocal count'" in (
        result.stderr
    )


def test_f6_the_refusal_the_always_bound_case_gets(tmp_path) -> None:
    source = _NONLOCAL_SOMETIMES_BOUND.replace("        if i < 0:\n            count = 0\n", "")
    assert source != _NONLOCAL_SOMETIMES_BOUND
    result = run_source(tmp_path, source, **FORK)
    assert result.returncode == 1
    assert "UnsupportedLoopError: a function defined in a ParaLoop body declares 'nonlocal count'" in (
        result.stderr
    )


# Finding 7. exec(src) at the top of a module: what it assigns is lost. ---------------------------------

_MODULE_EXEC = program(
    """
    y = -1
    for i in ParaLoop(range(3), chunksize=1):
        exec("y = i * 10")
    print(json.dumps(y))
    """
)


# Finding 7, fixed: exec() there stores in the module's globals (refused on worker processes, which have the module in part).
@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_f7_exec_at_the_top_of_a_module_assigns_the_module_s_name(tmp_path, backend) -> None:
    result = run_source(tmp_path, _MODULE_EXEC, **BACKENDS[backend])
    assert last_json(run_plain(tmp_path, _MODULE_EXEC)) == 20
    if result.returncode == 0:
        assert last_json(result) == 20
    else:
        assert "ParaLoopError" in result.stderr or "UnsupportedLoopError" in result.stderr


# Finding 8. eval(src, globals()) at the top of a module: the loop's own name. -----------------------------

_MODULE_EVAL_GLOBALS = program(
    """
    got = []
    for i in ParaLoop(range(3), chunksize=1):
        got.append(eval("i * 10", globals()))
    print(json.dumps(got))
    """
)


# Finding 8, fixed: eval(src, globals()) there sees the loop's own names.
@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_f8_eval_with_globals_at_the_top_of_a_module(tmp_path, backend) -> None:
    _same(tmp_path, _MODULE_EVAL_GLOBALS, BACKENDS[backend])


# Finding 9. An unrelated variable of the function, sent because the body calls locals(). -------------------

_UNRELATED_FILE = program(
    """
    def lines_with_locals(path):
        out = []
        with open(path) as fh:
            for line in ParaLoop(fh, chunksize=1):
                out.append("{line}".format(**locals()).strip())
        return out

    with open("data.txt", "w") as f:
        f.write("a\\nb\\nc\\n")
    """,
    "lambda: lines_with_locals('data.txt')",
)

_UNRELATED_GENERATOR = program(
    """
    def an_unused_generator():
        pending = (x for x in range(3))
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append("{i}".format(**locals()))
        return out, next(pending)
    """,
    "an_unused_generator",
)


# Finding 9, fixed: a variable the body reads only through its frame that cannot travel is a stand-in.
def test_f9_the_file_the_loop_iterates_is_refused_for_locals(tmp_path) -> None:
    _same(tmp_path, _UNRELATED_FILE, FORK)


def test_f9_the_threads_advice_works_for_the_file(tmp_path) -> None:
    source = _UNRELATED_FILE.replace("chunksize=1)", "chunksize=1, backend='threads')")
    plain = last_json(run_plain(tmp_path, _UNRELATED_FILE))
    assert plain == [["a", "b", "c"]]
    assert last_json(run_source(tmp_path, source, PARALOOP_CALLER_RUNS="0")) == plain


# Finding 9b, fixed as finding 9.
@pytest.mark.parametrize("backend", ["fork", "threads"])
def test_f9b_an_unused_generator_is_refused_for_locals(tmp_path, backend) -> None:
    _same(tmp_path, _UNRELATED_GENERATOR, BACKENDS[backend])


# Finding 10. Python 3.12+: locals()/vars()/dir() in a comprehension over ParaLoop in a function. ----------

_COMPREHENSION_LOCALS = program(
    """
    def names():
        k = 3
        return [sorted(locals()) for x in ParaLoop(range(3))]

    def variables():
        k = 3
        return {x: sorted(vars()) for x in ParaLoop(range(2))}

    def listed():
        k = 3
        return sorted({len(dir()) for x in ParaLoop(range(2))})
    """,
    "names, variables, listed",
)


# Finding 10, fixed: the comprehension's calls are rewritten once.
def test_f10_locals_in_a_comprehension_over_paraloop(tmp_path) -> None:
    _same(tmp_path, _COMPREHENSION_LOCALS, FORK)


# Finding 11. Python 3.12+: locals() in a generator expression over ParaLoop. -------------------------------

_GENERATOR_LOCALS = program(
    """
    def lazily():
        k = 3
        return list(sorted(locals()) for x in ParaLoop(range(2), chunksize=1))
    """,
    "lazily",
)


@pytest.mark.xfail(
    sys.version_info >= (3, 12),
    strict=True,
    reason="finding 11: Python 3.12+: locals() in a generator expression over ParaLoop shows "
    "'__paraloop_chunk__', '__paraloop_it__' where the plain one shows '.0' (its chunks are list "
    "comprehensions, inlined, not rewritten)",
)
def test_f11_locals_in_a_generator_expression_over_paraloop(tmp_path) -> None:
    _same(tmp_path, _GENERATOR_LOCALS, FORK)


# Finding 12. Python 3.12: locals() in a comprehension over ParaLoop at the top of a module. -----------------

_MODULE_COMPREHENSION = program(
    """
    SCALE = 3
    print(json.dumps(["SCALE" in locals() for x in ParaLoop(range(2), chunksize=1)]))
    """
)


# Finding 12, fixed: refused on 3.12 as a for loop's body is.
def test_f12_locals_in_a_module_s_comprehension_over_paraloop(tmp_path) -> None:
    plain = last_json(run_plain(tmp_path, _MODULE_COMPREHENSION))
    result = run_source(tmp_path, _MODULE_COMPREHENSION, **FORK)
    if sys.version_info[:2] == (3, 12):
        # The module's names there (PEP 709), which a worker has only in part: refused.
        assert plain == [True, True]
        assert result.returncode == 1
        assert "UnsupportedLoopError: locals() in a ParaLoop body at the top of a module" in result.stderr
    else:
        assert last_json(result) == plain


# Finding 13. eval(src, None) and exec(src, None): the current frame, as eval(src). ---------------------------

_EVAL_NONE = program(
    """
    def eval_none():
        k = 5
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(eval("k * i", None))
        return out

    def eval_none_none():
        k = 5
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(sorted(eval("locals()", None, None)))
        return out
    """,
    "eval_none, eval_none_none",
)


# Finding 13, fixed: eval(src, None) and eval(src, None, None) read the frame as eval(src).
def test_f13_eval_with_none_namespaces(tmp_path) -> None:
    _same(tmp_path, _EVAL_NONE, FORK)


# Finding 14. Threads: a global rebound by a function the body defines. -------------------------------------

_GLOBAL_BY_A_BODY_FUNCTION = program(
    """
    import time

    z = -1

    def run():
        for i in ParaLoop(range(4), chunksize=1, num_processes=4):
            def keep(v):
                global z
                z = v
            time.sleep(0.5 if i == 0 else 0)
            keep(i)
        return z

    print(json.dumps(run()))
    """
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 14: threads: 'def keep(v): global z; z = v' in the body: z is the value of the "
    "iteration that finished last (0), the plain loop's 3 (before this change -1: the declaration "
    "was moved out); refused on processes and Dask, silent on threads",
)
def test_f14_a_body_function_s_global_store_on_threads(tmp_path) -> None:
    _same(tmp_path, _GLOBAL_BY_A_BODY_FUNCTION, {**THREADS, "PARALOOP_WORKERS": "4"})


# Finding 15. globals() under another name: the import-time refusal of lookups bypassed. ---------------------

_GLOBALS_ALIAS = program(
    """
    SCALE = 7

    def by_alias():
        got = []
        for i in ParaLoop(range(3), chunksize=1):
            namespace = globals()
            got.append(namespace.get("SCALE", 1) * i)
        return got

    def by_listing():
        got = []
        for i in ParaLoop(range(2), chunksize=1):
            got.append("SCALE" in list(globals()))
        return got
    """,
    "by_alias, by_listing",
)


# Finding 15, fixed: globals() in a body is refused but as exec's or eval's namespace.
@pytest.mark.parametrize("env", [FORK, SPAWN], ids=["fork", "spawn"])
def test_f15_globals_under_another_name(tmp_path, env) -> None:
    assert last_json(run_plain(tmp_path, _GLOBALS_ALIAS)) == [[0, 7, 14], [True, True]]
    result = run_source(tmp_path, _GLOBALS_ALIAS, **env)
    assert result.returncode == 1
    assert "UnsupportedLoopError: globals() in a ParaLoop body" in result.stderr


# Finding 16. An assignment expression in a comprehension in the body, read after it. ------------------------

_WALRUS_IN_BODY = program(
    """
    def walrus():
        res = []
        for i in ParaLoop(range(3), chunksize=1):
            [m := i * 2 for _ in range(1)]
            res.append(m)
        return res
    """,
    "walrus",
)


@pytest.mark.xfail(
    strict=True,
    reason="finding 16: '[m := i * 2 for _ in range(1)]; res.append(m)' refused as carrying 'm' from "
    "an earlier iteration; the advice (assign it before reading it) is what the body does",
)
def test_f16_an_assignment_expression_in_a_comprehension_of_the_body(tmp_path) -> None:
    _same(tmp_path, _WALRUS_IN_BODY, SEQUENTIAL)


# Attacks that held. --------------------------------------------------------------------------------------

_HELD = program(
    """
    import asyncio

    def unbound_after_the_loop():
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append(sorted(locals()))
        later = 5
        return later

    def star_args(*args, **kwargs):
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(list(locals()))
        return len(out)

    async def a_coroutine():
        k = 1
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(eval("k + i"))
        return out

    def a_parameter_named_locals(locals=lambda: {"mine": 1}):
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(sorted(locals()))
        return out

    def eval_as_a_module_function():
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            out.append(vars())
        return out

    def vars(*args):
        return "mine"

    def at_a_break():
        k = 5
        for i in ParaLoop(range(6), chunksize=1):
            if i == 3:
                snap = sorted(locals())
                break
        return snap

    def in_an_exception():
        k = 5
        try:
            for i in ParaLoop(range(4), chunksize=1):
                if i == 2:
                    raise ValueError(sorted(locals()))
        except ValueError as error:
            return error.args[0]

    def in_a_lambda():
        k = 2
        out = []
        for i in ParaLoop(range(2), chunksize=1):
            f = lambda: sorted(locals())
            out.append(f())
        return out

    def after_a_del():
        k = 2
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            t = i
            del t
            out.append(dir())
        return out

    def a_closure():
        k = 3
        def inner():
            out = []
            for i in ParaLoop(range(2), chunksize=1):
                out.append(list(locals()))
            return out, k
        return inner()

    def a_free_variable_not_yet_bound():
        def inner():
            out = []
            for i in ParaLoop(range(2), chunksize=1):
                out.append(list(locals()))
            return out, late
        result = inner()
        late = 1
        return result

    def two_loops():
        a = []
        for i in ParaLoop(range(3)):
            a.append(i)
        out = []
        for j in ParaLoop(range(3), chunksize=1):
            out.append(sorted(locals()))
        return out, sorted(locals())

    def an_accumulated_name_returned():
        seen = []
        for i in ParaLoop(range(4), chunksize=1):
            seen.append(i)
            if i == 2:
                return len(locals()["seen"])

    def nonlocal_of_the_iteration_s_name():
        last = None
        for i in ParaLoop(range(6), chunksize=2):
            last = -1
            def g():
                nonlocal last
                last = i * 10
            g()
        return last

    def nonlocal_of_a_match_capture():
        res = []
        for i in ParaLoop(range(3), chunksize=1):
            match [i]:
                case [m]:
                    pass
            def g():
                nonlocal m
                m += 100
            g()
            res.append(m)
        return res

    def format_with_a_local_function():
        helper = lambda v: v * 2
        import math
        out = []
        for i in ParaLoop(range(3), chunksize=1):
            out.append("{i}".format(**locals()) + str(helper(i)))
        return out

    class Base:
        def f(self, x):
            return x + 1

    class Derived(Base):
        def with_super(self):
            out = []
            for i in ParaLoop(range(3), chunksize=1):
                out.append((super().f(i), sorted(locals())))
            return out

        def private(self):
            __scale = 3
            out = []
            for i in ParaLoop(range(3), chunksize=1):
                out.append(sorted(locals()))
            return out
    """,
    "unbound_after_the_loop, lambda: star_args(1, a=2), lambda: asyncio.run(a_coroutine()), "
    "a_parameter_named_locals, eval_as_a_module_function, at_a_break, in_an_exception, in_a_lambda, "
    "after_a_del, a_closure, a_free_variable_not_yet_bound, two_loops, an_accumulated_name_returned, "
    "nonlocal_of_the_iteration_s_name, nonlocal_of_a_match_capture, "
    "format_with_a_local_function, Derived().with_super, Derived().private",
)


@pytest.mark.parametrize("backend", ["fork", "threads", "sequential"])
def test_held_frame_readers_in_functions(tmp_path, backend) -> None:
    plain, got = plain_and_paraloop(tmp_path, _HELD, **BACKENDS[backend])
    # The accumulated name's use: the documented refusal, where the plain loop counts 3.
    assert plain[12] == 3
    assert got[12] == "ParaLoopError"
    assert got[:12] + got[13:] == plain[:12] + plain[13:]


_HELD_COMPREHENSIONS = program(
    """
    def evaluated():
        k = 3
        return [eval("k * x") for x in ParaLoop(range(3), chunksize=1)]

    def not_yet_bound():
        result = [eval("sorted(locals())") for x in ParaLoop(range(2), chunksize=1)]
        late = 1
        return result

    def in_a_plain_loop():
        acc = []
        for j in range(2):
            acc.append([eval("sorted(locals())") for x in ParaLoop(range(2), chunksize=1)])
        return acc

    def shadowing():
        x = "outer"
        result = [eval("sorted(locals())") for x in ParaLoop(range(2), chunksize=1)]
        return result, x

    class Base:
        def f(self, x):
            return x + 1

    class Derived(Base):
        def f(self, x):
            return [super().f(v) + len(eval("locals()")) for v in ParaLoop(range(3), chunksize=1)]
    """,
    "evaluated, not_yet_bound, in_a_plain_loop, shadowing, lambda: Derived().f(0)",
)


def test_held_comprehensions_reading_the_frame(tmp_path) -> None:
    _same(tmp_path, _HELD_COMPREHENSIONS, FORK)


@pytest.mark.parametrize(
    "body, message",
    [
        ("out.append(globals()['SCALE'] * i)", "globals() in a ParaLoop body"),
        ("out.append(globals().get('SCALE', 1) * i)", "globals() in a ParaLoop body"),
        ("out.append('SCALE' in globals())", "globals() in a ParaLoop body"),
        ("out.append((lambda: globals()['SCALE'])())", "globals() in a ParaLoop body"),
        ("out.append(sorted(vars()))", "vars() in a ParaLoop body at the top of a module"),
        ("out.append(dir())", "dir() in a ParaLoop body at the top of a module"),
    ],
    ids=["subscript", "get", "in", "in-a-lambda", "module-vars", "module-dir"],
)
def test_held_refusals_at_import(tmp_path, body, message) -> None:
    source = program(
        f"""
        SCALE = 3
        out = []
        for i in ParaLoop(range(3)):
            {body}
        print(json.dumps(out))
        """
    )
    result = run_source(tmp_path, source, **FORK)
    assert result.returncode == 1
    assert f"UnsupportedLoopError: {message}" in result.stderr


def test_held_exec_into_globals_is_refused_on_processes(tmp_path) -> None:
    source = program(
        """
        z = -1
        for i in ParaLoop(range(3), chunksize=1):
            exec("z = 5", globals())
        print(json.dumps(z))
        """
    )
    result = run_source(tmp_path, source, **FORK)
    assert result.returncode == 1
    assert "an iteration rebound the global 'z'" in result.stderr
    assert last_json(run_source(tmp_path, source, **THREADS)) == 5
