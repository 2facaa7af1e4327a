"""Adversarial cases against four changes of one day: the import hook that searches once, large
captured arrays through shared memory, a script's functions by the standard pickle, and the
refusal of stores into modules of the program.

Each test runs what a user could write and asserts what the docs promise for it (docs/semantics.md): the plain
loop's result, or a ``ParaLoopError`` naming what is wrong. Tests marked ``xfail(strict=True)``
fail today; their reason says what goes wrong (the fix lies in code this file's author did not
change).
"""

from __future__ import annotations

import errno
import importlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import START_METHODS, run_script, use_backend
from plain_loop import run_plain

import paraloop

Loader = Callable[..., ModuleType]

PRELUDE = "from paraloop import ParaLoop\n"


@pytest.fixture(params=START_METHODS)
def processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test's loops in worker processes, under each start method."""
    return use_backend(request.param, request, monkeypatch)


@pytest.fixture
def fork(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    return use_backend("fork", request, monkeypatch)


def plain_result(source: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_plain(PRELUDE + textwrap.dedent(source))["result"]


def _ours() -> set[str]:
    """Segments of large inputs this test process made."""
    return {p.name for p in Path("/dev/shm").glob(f"paraloop_in_{os.getpid()}_*")}


# 2. Large captured arrays through shared memory. -------------------------------------------------

# 300,000 items of 8 bytes or more: above the sharing threshold (1 MiB).
LARGE_ARRAYS = {
    # memoryview refuses datetime64/timedelta64: the loop was refused as "cannot be sent".
    "datetime64": "np.arange(300_000).astype('datetime64[s]')",
    "timedelta64": "np.arange(300_000).astype('timedelta64[ms]')",
    # The dtype travelled as its .str ('|V12'): the fields were lost in the workers.
    "structured": "np.zeros(300_000, dtype=[('x', '<f8'), ('y', '<i4')])",
    "aligned structured": "np.zeros(300_000, dtype=np.dtype([('x', 'u1'), ('y', '<f8')], align=True))",
    # ... and so was a dtype's metadata, which pickle keeps.
    "dtype metadata": "np.zeros(300_000, dtype=np.dtype('f8', metadata={'unit': 'm'}))",
}


@pytest.mark.parametrize("kind", list(LARGE_ARRAYS), ids=list(LARGE_ARRAYS))
def test_a_large_array_of_any_plain_dtype_reaches_the_workers_whole(
    kind: str, load_module: Loader, processes: str
) -> None:
    pytest.importorskip("numpy")
    source = f"""
        import numpy as np
        big = {LARGE_ARRAYS[kind]}
        if big.dtype.names:
            big[big.dtype.names[-1]] = np.arange(big.size) % 7
        result = []
        for i in ParaLoop([0, 1, big.size - 1], num_processes=2):
            # numpy before 2.3 gives an unpickled datetime64 dtype an empty metadata mapping
            result.append((str(big[i]), str(big.dtype), repr(dict(big.dtype.metadata or {{}})), big.shape))
    """
    before = _ours()
    module = load_module(PRELUDE + textwrap.dedent(source))
    assert module.result == plain_result(source)
    assert _ours() == before


def test_a_full_dev_shm_falls_back_to_pickling_the_array(
    load_module: Loader, processes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container's /dev/shm is 64 MB: writing a larger array there fails with ENOSPC (tmpfs
    allocates on write). The loop refused the array as 'cannot be sent to a worker process'
    (advising threads); it must run as before the segments existed, and leave no segment."""
    pytest.importorskip("numpy")

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    source = """
        import numpy as np
        big = np.arange(300_000, dtype=np.float64)
        result = 0.0
        for i in ParaLoop(range(8), num_processes=2):
            result += big[i]
    """
    before = _ours()
    module = load_module(PRELUDE + textwrap.dedent(source))
    assert module.result == plain_result(source)
    assert _ours() == before


# 3. A script's own functions by the standard pickle. ---------------------------------------------


def _script_results(tmp_path: Path, body: str, method: str) -> tuple[str, str]:
    """The script's last printed line run plainly (``python script.py``) and by paraloop."""
    script = tmp_path / "script.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    plain = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
    )
    assert plain.returncode == 0, plain.stderr
    ran = run_script(script, env={"PARALOOP_START_METHOD": method})
    assert ran.returncode == 0, ran.stderr
    return plain.stdout.splitlines()[-1], ran.stdout.splitlines()[-1]


SCRIPT_FUNCTIONS = {
    # 05f305b: the function's __dict__ did not travel (dill's did): AttributeError in the worker.
    "an attribute set on a helper": """
        def helper(x):
            return x * 2
        helper.factor = 3
        def scaled(x):
            return helper(x) * helper.factor
        out = []
        for i in ParaLoop(range(4), num_processes=2):
            out.append(scaled(i))
        print(out)
    """,
    # 05f305b: __annotations__ did not travel: typing.get_type_hints(helper) was {} in workers.
    "a helper's annotations": """
        import typing
        def helper(x: int) -> str:
            return str(x)
        def hints(i):
            return sorted(str(v) for v in typing.get_type_hints(helper).values())
        out = []
        for i in ParaLoop(range(2), num_processes=2):
            out.append(hints(i))
        print(out)
    """,
    # Before and after 05f305b: 'even' was refused as 'cannot be sent to a worker process'
    # (RecursionError in the standard pickle, then in dill).
    "mutually recursive helpers": """
        def even(n):
            return True if n == 0 else odd(n - 1)
        def odd(n):
            return False if n == 0 else even(n - 1)
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        out = []
        for i in ParaLoop(range(6), num_processes=2):
            out.append((even(i), fact(i)))
        print(out)
    """,
}


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("case", list(SCRIPT_FUNCTIONS), ids=list(SCRIPT_FUNCTIONS))
def test_a_scripts_helpers_behave_as_in_the_plain_loop(tmp_path: Path, case: str, method: str) -> None:
    plain, parallel = _script_results(tmp_path, SCRIPT_FUNCTIONS[case], method)
    assert parallel == plain


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_an_enum_of_the_script_used_by_a_helper(tmp_path: Path, method: str) -> None:
    """An Enum class of the script travels by value (serialize._reduce_enum): dill sent it by
    reference, which a spawned or fork server's worker cannot find ('Can't get attribute
    Color on __main__'), and the loop failed."""
    plain, parallel = _script_results(
        tmp_path,
        """
        import enum
        class Color(enum.Enum):
            RED = 1
        def value(i):
            return Color.RED.value + i
        out = []
        for i in ParaLoop(range(3), num_processes=2):
            out.append(value(i))
        print(out)
        """,
        method,
    )
    assert parallel == plain


ENUMS = """
    import enum

    class Color(enum.Enum):
        \"\"\"The colours.\"\"\"
        RED = 1
        GREEN = 2
        CRIMSON = 1  # an alias

        def shout(self):
            return self.name + "!"

        @property
        def double(self):
            return self.value * 2

        @classmethod
        def first(cls):
            return next(iter(cls))

    class Planet(enum.Enum):
        MERCURY = (3.303e23, 2.4397e6)
        EARTH = (5.976e24, 6.37814e6)

        def __init__(self, mass, radius):
            self.mass = mass
            self.radius = radius

    class Perm(enum.IntFlag):
        R = 4
        W = 2

    class Auto(enum.Enum):
        A = enum.auto()
        B = enum.auto()

    def facts(color):
        return (color.shout(), color.double, Color.CRIMSON is Color.RED, Color.first().name,
                Planet.EARTH.mass, int(Perm.R | Perm.W), Auto.B.value, Color.__doc__,
                Color(color.value) is color, color in (Color.RED, Color.GREEN))

    out = []
    for color in ParaLoop([Color.RED, Color.GREEN, Color.CRIMSON, Color.GREEN], num_processes=2):
        out.append((color, facts(color)))
    # What came back are the script's own members.
    print([(c is Color.RED, c is Color.GREEN, f) for c, f in out])
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_enums_of_the_script_as_items_globals_and_results(tmp_path: Path, method: str) -> None:
    """Members as items and in results, aliases, methods, properties, classmethods, an
    __init__ (Planet), a Flag's combinations and auto(): as in the plain loop, and the members
    that come back are the script's own (by value whole, they came back as members of a new
    class, neither ``is`` nor ``==`` to the script's).  A Flag's combination, cached by the
    class as the program makes it, is not a change of the class that paraloop refuses."""
    plain, parallel = _script_results(tmp_path, ENUMS, method)
    assert "True" in plain
    assert parallel == plain


GENERICS = """
    import dataclasses
    import typing

    T = typing.TypeVar("T")
    N = typing.TypeVar("N", bound=float)

    @dataclasses.dataclass(frozen=True)
    class Box(typing.Generic[T]):
        value: T

        def twice(self) -> "Box[T]":
            return type(self)(self.value)

        @classmethod
        def empty(cls) -> "Box[None]":
            return cls(None)

    class Pair(Box[N]):
        pass

    out = []
    for i in ParaLoop([Box(1), Pair(2.0), Box("x")], num_processes=2):
        out.append((i, i.twice(), type(i) is Box or type(i) is Pair, Box.empty(), typing.get_args(Pair.__orig_bases__[0])))
    # What came back are instances of the script's own classes: equal to objects made here.
    print([(a == b, type(a).__name__, c, d == Box(None), type(b) in (Box, Pair), e == (N,)) for a, b, c, d, e in out])
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_generic_classes_of_the_script_as_items_globals_and_results(tmp_path: Path, method: str) -> None:
    """A frozen generic dataclass of the script, a subclass generic in a bound TypeVar, methods
    and a classmethod: items, globals and results are the script's own classes (by dill, a
    copy: '==' and 'type(x) is Box' false under fork; under spawn and forkserver the TypeVar
    could not be found and the loop failed)."""
    plain, parallel = _script_results(tmp_path, GENERICS, method)
    assert "False" not in plain
    assert parallel == plain


# 4. Stores into a module of the program. ---------------------------------------------------------

# Each store lands in a worker's copy of the module and was lost on the process backends: the
# module's attribute stayed None where the plain loop leaves 5. The spelled-out forms (mod.x = v,
# mod.x += v, mod.items.append(v), mod.table[k] = v) are refused when the module is rewritten;
# these, when a chunk rebinds the global (paraloop.module_stores).
MISSED_MODULE_STORES = {
    "through an alias": "m = helpers\nm.last = i",
    "by setattr": "setattr(helpers, 'last', i)",
    "through vars()": "vars(helpers)['last'] = i",
    "by a function of the module that sets its global": "helpers.record(i)",
    "through sys.modules": "sys.modules[helpers.__name__].last = i",
    "through an import in the body": "import {name} as again\nagain.last = i",
}


@pytest.mark.parametrize("store", list(MISSED_MODULE_STORES), ids=list(MISSED_MODULE_STORES))
def test_a_store_into_a_module_of_the_program_is_refused_in_every_spelling(
    store: str, load_module: Loader, fork: str
) -> None:
    helpers = load_module("last = None\ndef record(x):\n    global last\n    last = x\n", marked=False)
    # Each line of the body at the loop body's indentation in the source below.
    body = textwrap.indent(MISSED_MODULE_STORES[store].format(name=helpers.__name__), " " * 12).lstrip()
    source = f"""
        import sys
        import {helpers.__name__} as helpers
        for i in ParaLoop(range(6), num_processes=2):
            {body}
        result = helpers.last
    """
    try:
        load_module(PRELUDE + textwrap.dedent(source))
    except paraloop.ParaLoopError as refused:
        assert helpers.__name__ in str(refused) or "'helpers'" in str(refused)
        return
    assert helpers.last == 5  # the plain loop's


def test_module_bindings_that_are_no_loss_are_not_refused(load_module: Loader, every_backend: str) -> None:
    """Importing a submodule in the body binds it in its package; a function that rebinds a
    global to an equal value changes nothing: neither is refused, on any backend."""
    helpers = load_module(
        "flag = 'on'\ndef again():\n    global flag\n    flag = ''.join(['o', 'n'])\n", marked=False
    )
    module = load_module(
        PRELUDE
        + textwrap.dedent(f"""
        import {helpers.__name__} as helpers
        out = []
        for i in ParaLoop(range(6), num_processes=2):
            import email.mime.text
            helpers.again()
            out.append(i)
    """)
    )
    assert module.out == list(range(6))


def test_a_cache_a_function_fills_in_its_module_is_refused_with_advice_that_works(
    load_module: Loader, every_backend: str
) -> None:
    """A helper that keeps what it makes on first use in its module's global: the workers would
    each fill their own copy, the caller's stays empty.  Refused (but where the loop runs in
    the caller alone: threads, sequential); made with paraloop.per_worker, as the refusal says,
    the loop runs."""
    helpers = load_module(
        "_table = None\n"
        "def table():\n"
        "    global _table\n"
        "    if _table is None:\n"
        "        _table = {n: n * n for n in range(10)}\n"
        "    return _table\n",
        marked=False,
    )
    source = f"""
        import paraloop
        import {helpers.__name__} as helpers
        squares = paraloop.per_worker(helpers.table)
        out = []
        for i in ParaLoop(range(6), num_processes=2):
            out.append(USE[i])
    """
    if every_backend in ("threads", "sequential"):
        assert load_module(PRELUDE + textwrap.dedent(source.replace("USE", "helpers.table()"))).out == [
            n * n for n in range(6)
        ]
    else:
        with pytest.raises(
            paraloop.ParaLoopError, match=r"rebound the global '_table' of the module"
        ) as refused:
            load_module(PRELUDE + textwrap.dedent(source.replace("USE", "helpers.table()")))
        assert "paraloop.per_worker" in str(refused.value)
    assert load_module(PRELUDE + textwrap.dedent(source.replace("USE", "squares"))).out == [
        n * n for n in range(6)
    ]


# 1. The import hook. -----------------------------------------------------------------------------


def test_a_module_loaded_by_hand_looks_as_when_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """importlib.util.find_spec + module_from_spec + exec_module: a plain module got paraloop's
    loader on __loader__ and __spec__.loader (the import gives CPython's back), and a marked one's
    __cached__ named the ordinary pyc, which is never written, instead of paraloop's cache."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "by_hand_plain.py").write_text("X = 1\n")
    (tmp_path / "by_hand_marked.py").write_text(
        "# paraloop: enable\nfrom paraloop import ParaLoop\nout = []\n"
        "for i in ParaLoop(range(4), backend='threads'):\n    out.append(i)\n"
    )
    importlib.invalidate_caches()
    loaded = {}
    for name in ("by_hand_plain", "by_hand_marked"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[name] = module
    plain, marked = loaded["by_hand_plain"], loaded["by_hand_marked"]
    assert type(plain.__loader__) is importlib.machinery.SourceFileLoader
    assert plain.__spec__.loader is plain.__loader__
    assert marked.out == [0, 1, 2, 3]
    assert "__paraloop_rt__" in vars(marked)  # rewritten
    assert marked.__cached__ is not None and ".paraloop-" in marked.__cached__
