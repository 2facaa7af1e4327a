"""A function of the script that rebinds one of the script's globals (docs/semantics.md, "No silent
loss"), run as a user runs it: ``python -m paraloop script.py``.

``def record(i): global last; last = i`` in the script, called by the body: the plain loop leaves
``last`` at the last item.  The script's own module was not compared (paraloop puts the script's
functions and classes that arrive by value there), nor the globals of the script's functions
that arrive by value (their own, not the module's), and a worker's store was lost, silently:
``last`` came back as the caller's chunks left it (0 or 1 of 400), or None.  Now both are
compared, but for the functions, classes and modules that arrive there.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import START_METHODS, run_program

RECORD = """
    # paraloop: enable
    import json, time
    from paraloop import ParaLoop, ParaLoopError

    last = None

    def record(i):
        global last
        time.sleep(0.001)
        last = i

    try:
        for i in ParaLoop(range(400), num_processes=2):
            record(i)
        print(json.dumps({"last": last}))
    except ParaLoopError as error:
        print(json.dumps({"refused": str(error)}))
"""


def _outcome(tmp_path: Path, source: str, **env: str) -> dict[str, object]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    result = run_program(script, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return seen


def _backend(method: str) -> dict[str, str]:
    return {"PARALOOP_BACKEND": "dask"} if method == "dask" else {"PARALOOP_START_METHOD": method}


@pytest.mark.parametrize(
    ("method", "caller_runs"),
    # (The caller runs no chunk of a Dask loop.)
    [*((method, runs) for method in START_METHODS for runs in ("1", "0")), ("dask", "0")],
)
def test_a_function_of_the_script_that_rebinds_its_global_is_refused_or_kept(
    tmp_path: Path, method: str, caller_runs: str
) -> None:
    """The plain loop leaves ``last`` 399; a worker's rebinding is refused, naming the global and
    the script's module, with the advice for it (the caller's own chunks may have run them all).
    On Dask (a cluster the program starts on 127.0.0.1), in the task's copy of the function."""
    seen = _outcome(tmp_path, RECORD, PARALOOP_CALLER_RUNS=caller_runs, **_backend(method))
    if "last" in seen:
        assert seen == {"last": 399}
    else:
        refusal = str(seen["refused"])
        assert "script.py, line 14: an iteration rebound the global 'last' of the module __main__" in refusal
        assert "Collect what the iterations produce in the loop's own names" in refusal


LAZY_MODEL = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop, ParaLoopError

    _model = None

    def model():
        global _model
        if _model is None:
            _model = {"scale": 3}
        return _model

    try:
        out = []
        for i in ParaLoop(range(200), num_processes=2, chunksize=20):
            out.append(model()["scale"] * i)
        print(json.dumps({"ok": out == [3 * i for i in range(200)]}))
    except ParaLoopError as error:
        print(json.dumps({"refused": str(error)}))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_model_the_script_makes_on_first_use_gets_the_advice(tmp_path: Path, method: str) -> None:
    """A function of the script that fills a global on first use: each worker would fill its own
    copy, and the program's stays None; refused as in any other module of the program, with the
    advice to make it before the loop or once per worker."""
    seen = _outcome(tmp_path, LAZY_MODEL, PARALOOP_START_METHOD=method, PARALOOP_CALLER_RUNS="0")
    refusal = str(seen["refused"])
    assert "rebound the global '_model' of the module __main__" in refusal
    assert "paraloop.per_worker(factory)" in refusal


ARRIVALS = """
    # paraloop: enable
    import json, time
    from dataclasses import dataclass
    from paraloop import ParaLoop

    SCALE = 2

    @dataclass
    class Point:
        x: int

        def scaled(self):
            return self.x * SCALE

    def make(i):
        return Point(i)

    points = [make(i) for i in range(300)]
    SCALE = 5  # rebound before the loop: the workers get the program's value
    out = []
    for p in ParaLoop(points):
        time.sleep(0.002)  # iterations that wait: a worker runs them in lanes (threads)
        out.append(make(p.scaled()).x)
    print(json.dumps({"ok": out == [5 * i for i in range(300)]}))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_the_scripts_functions_classes_and_globals_that_arrive_are_no_store(
    tmp_path: Path, method: str
) -> None:
    """Items of a class of the script, functions of the script the body calls, a global the script
    rebound before the loop, lanes loading them while other lanes run: no refusal, the plain
    loop's result."""
    assert _outcome(tmp_path, ARRIVALS, PARALOOP_START_METHOD=method) == {"ok": True}


IMPORTED_WITH_A_LOOP = """
    # paraloop: enable
    from paraloop import ParaLoop

    last = None

    def record(i):
        global last
        last = i

    for i in ParaLoop(range(100), num_processes=2, chunksize=50):
        record(i)
"""

IMPORTS_IT = """
    import json
    from paraloop import ParaLoopError
    try:
        import looping
        print(json.dumps({"last": looping.last}))
    except ParaLoopError as error:
        print(json.dumps({"refused": "'last'" in str(error) and "looping" in str(error)}))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_module_with_a_loop_at_its_top_level_keeps_or_refuses_a_store(tmp_path: Path, method: str) -> None:
    """A module with a loop at its top level, imported by the script: its functions travel to a
    worker by value, with globals of their own (not the worker's copy of the module): a global
    such a function rebinds there is compared too (it was lost, silently: last None; the plain
    loop leaves 99)."""
    (tmp_path / "looping.py").write_text(textwrap.dedent(IMPORTED_WITH_A_LOOP))
    seen = _outcome(tmp_path, IMPORTS_IT, PARALOOP_START_METHOD=method, PARALOOP_CALLER_RUNS="0")
    assert seen in ({"refused": True}, {"last": 99})


def test_dill_finds_a_functions_globals_without_replacing_sys_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """dill found the globals of a function it sends by value by printing its disassembly into a
    StringIO put in ``sys.stdout`` meanwhile (``dill.temp.capture``): in a worker, what another lane
    printed then went there, and a lane whose iterations began before saw ``sys.stdout`` changed and
    refused the loop (one run in three of the test above, under every start method).  paraloop's
    pickling never swaps ``sys.stdout`` now, and finds the same names."""
    import dill
    import dill.temp

    from paraloop import serialize

    source = (
        "def helper(x):\n    global seen\n    seen = x\n    return [math.pi for _ in range(len(x))], json\n"
    )
    namespace: dict[str, object] = {"__name__": "__main__", "math": __import__("math"), "json": json}
    exec(compile(source, "<script>", "exec"), namespace)
    helper = namespace["helper"]

    def no_capture(*args: object, **kwargs: object) -> object:
        raise AssertionError("sys.stdout replaced while pickling")

    monkeypatch.setattr(dill.temp, "capture", no_capture)
    data = serialize.dumps_by_value(helper)
    rebuilt = serialize.loads(data)
    assert rebuilt.__code__.co_code == helper.__code__.co_code  # type: ignore[attr-defined]
    assert set(dill.detect.nestedglobals(helper)) == {"seen", "math", "range", "len", "json"}
