"""``paraloop.explain`` and ``python -m paraloop --explain FILE``: what paraloop does with each loop.

Each decision the report gives is checked against what paraloop really does with the
same module: an inferred strategy is the one the runtime picks when the loop runs (the
module is imported through the hook on the sequential backend, and its result compared
with the plain loop's), a refusal's text is the error importing or running it raises,
and every line number is exact.
"""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import paraloop
from paraloop import ParaLoopError, ParaLoopWarning, UnsupportedLoopError
from paraloop.explanation import DECISIONS, Explanation, explain

_numbers = itertools.count()
TIMEOUT = 120


class Module:
    """A module written into a temporary directory: its path, its text, its report."""

    def __init__(self, path: Path, name: str, text: str) -> None:
        self.path = path
        self.name = name
        self.text = text

    def explain(self) -> Explanation:
        return explain(self.path.read_bytes(), str(self.path))

    def plain(self) -> dict[str, Any]:
        """The module's names after its loops ran as plain loops."""
        namespace: dict[str, Any] = {"__name__": "plain"}
        exec(compile(self.text.replace("in ParaLoop(", "in list("), str(self.path), "exec"), namespace)
        return namespace


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Module]]:
    """Write a module (its text as given: line 1 is its first line) importable from tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PARALOOP_BACKEND", "sequential")
    names: list[str] = []

    def make(source: str) -> Module:
        name = f"paraloop_explain_{next(_numbers)}"
        text = textwrap.dedent(source).lstrip("\n")
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        names.append(name)
        return Module(path, name, text)

    yield make
    for name in names:
        sys.modules.pop(name, None)


def load(module: Module) -> ModuleType:
    """Import the module through paraloop's hook."""
    importlib.invalidate_caches()
    return importlib.import_module(module.name)


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The strategy the runtime picks for each name when a loop starts, by class name."""
    import paraloop.runtime as runtime
    from paraloop.reductions import infer_reductions as original

    seen: dict[str, str] = {}

    def spy(uses: Any, values: Any, filename: str) -> Any:
        result = original(uses, values, filename)
        seen.update({name: type(strategy).__name__ for name, strategy in result.items()})
        return result

    monkeypatch.setattr(runtime, "infer_reductions", spy)
    return seen


# --------------------------------------------------------------------------------------
# Reductions: the strategy reported is the one the runtime picks, and it combines exactly
# --------------------------------------------------------------------------------------

REDUCTION = """\
# paraloop: enable
from collections import Counter, defaultdict, deque
import numpy as np
from paraloop import ParaLoop
{init}
for i in ParaLoop(range(12)):
    {update}
"""

REDUCTIONS = [
    ("x = 0", "x += i", "Sum"),
    ("x = 0.5", "x = x + i * 0.1", "Sum"),
    ("x = np.zeros(3)", "x += i", "Sum"),
    ("x = 1.5", "x *= 1.25", "Product"),
    ("x = []", "x.append(i)", "Concatenate"),
    ("x = deque()", "x.extend([i, -i])", "Concatenate"),
    ("x = ''", "x += str(i)", "Concatenate"),
    ("x = set()", "x.add(i % 4)", "Union"),
    ("x = {}", "x[i % 5] = i", "Merge"),
    ("x = Counter()", "x[i % 3] += 1", "Sum"),
    ("x = defaultdict(list)", "x[i % 3].append(i)", "Sum"),
    ("x = 0", "x = max(x, i * 7 % 5)", "Max"),
    ("x = 100", "x = min(x, i * 7 % 5)", "Min"),
    ("x = False", "x = x or i > 9", "Any"),
    ("x = True", "x = x and i < 20", "All"),
    ("x = None", "x = i or x", "Last"),
    ("x = 0", "x |= 1 << i", "Reduce"),
    ("x = [0] * 4", "x[i % 4] += 1", "PerIndex"),
    ("x = [None] * 12", "x[i] = i * i", "IndexWrites"),
    ("x = [1] * 12", "x[i] = x[i] * 3 + i", "ElementUpdates"),
    ("x = [0, 0]", "x[:] = [i, -i]", "Scratch"),
]


@pytest.mark.parametrize("init,update,strategy", REDUCTIONS, ids=[f"{s}:{u}" for _, u, s in REDUCTIONS])
def test_reported_strategy_is_the_one_the_loop_runs_with(
    write: Callable[[str], Module], chosen: dict[str, str], init: str, update: str, strategy: str
) -> None:
    """The report names the strategy the runtime picks, at the update's line; the loop gives the plain result."""
    module = write(REDUCTION.format(init=init, update=update))
    loop = module.explain().loop(6)
    assert (loop.kind, loop.scope, loop.status) == ("for", "<module>", "parallel")
    decision = loop.name("x")
    assert (decision.decision, decision.strategy and decision.strategy.partition("(")[0], decision.line) == (
        "reduction",
        strategy,
        7,
    )
    assert "(line 7: " in decision.detail  # the update
    assert f"(line 5: {init})" in decision.detail  # the value it went by
    result = load(module)
    assert chosen["x"] == strategy
    expected = module.plain()["x"]
    assert type(result.x) is type(expected)
    assert repr(result.x) == repr(expected)


def test_value_found_in_a_function_and_in_its_module(
    write: Callable[[str], Module], chosen: dict[str, str]
) -> None:
    """A loop in a function: the value before it is the function's own assignment, or the module's
    for a global; the strategy is the one the runtime picks there."""
    module = write(
        """
        # paraloop: enable
        import numpy as np
        from collections import Counter
        from paraloop import ParaLoop
        grand = 0

        def count(words):
            global grand
            counts = Counter()
            parts = np.zeros(8)[::2]
            for word in ParaLoop(words):
                counts[word] += 1
                grand += len(word)
                parts += len(word)
            return counts, parts
        """
    )
    loop = module.explain().loop(11)
    assert loop.scope == "count"
    got = {d.name: (d.decision, d.strategy, d.line) for d in loop.names if d.name != "word"}
    assert got == {
        "counts": ("reduction", "Sum", 12),
        "grand": ("reduction", "Sum", 13),
        "parts": ("reduction", "Sum", 14),
    }
    assert "as counts is a Counter (line 9: counts = Counter())" in loop.name("counts").detail
    assert "as grand is an int (line 5: grand = 0)" in loop.name("grand").detail
    assert "as parts is a ndarray (line 10: parts = np.zeros(8)[::2])" in loop.name("parts").detail
    result = load(module)
    counts, parts = result.count(["a", "bb", "a"])
    assert (counts, list(parts), result.grand) == ({"a": 2, "bb": 1}, [4.0] * 4, 4)
    assert (chosen["counts"], chosen["grand"], chosen["parts"]) == ("Sum", "Sum", "Sum")


def test_strategy_that_holds_for_every_type_is_reported_without_the_value(
    write: Callable[[str], Module], chosen: dict[str, str]
) -> None:
    """found = found or test: Any whatever found holds (a parameter, which the source does not show)."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop

        def any_big(found, items):
            for item in ParaLoop(items):
                found = found or item > 9
            return found
        """
    )
    decision = module.explain().loop(5).name("found")
    assert (decision.decision, decision.strategy, decision.line) == ("reduction", "Any", 6)
    assert "whatever its value" in decision.detail
    assert load(module).any_big(False, [3, 12, 4]) is True
    assert chosen["found"] == "Any"


# --------------------------------------------------------------------------------------
# Variables, lastprivate, read-only, and names whose type the source does not show
# --------------------------------------------------------------------------------------


def test_variables_lastprivate_and_read_only_names(write: Callable[[str], Module]) -> None:
    """A user's Variables keep their strategy; assigned names and the target keep the last value;
    names only read are captured."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        best = Variable(0, aggregation_strategy=s.Max)
        words = Variable([], s.Concatenate)
        scale = 3
        for i in ParaLoop(range(12)):
            best = max(best, i * scale % 7)
            words.append(str(i))
            square = i * i
        after = square
        """
    )
    loop = module.explain().loop(6)
    assert loop.status == "parallel"
    got = {d.name: (d.decision, d.strategy, d.line) for d in loop.names}
    assert got == {
        "i": ("lastprivate", None, 6),
        "best": ("variable", "Max", 7),
        "scale": ("read-only", None, 7),
        "words": ("variable", "Concatenate", 8),
        "square": ("lastprivate", None, 9),
    }
    assert [d.name for d in loop.names] == ["i", "best", "scale", "words", "square"]
    result, plain = load(module), module.plain()
    assert result.best == plain["best"] == 6  # the plain loop's max() leaves an int
    assert result.words.value == plain["words"].value
    assert (
        (result.i, result.square, result.after)
        == (plain["i"], plain["square"], plain["after"])
        == (11, 121, 121)
    )


def test_strategy_decided_by_the_value_lists_each_type(
    write: Callable[[str], Module], chosen: dict[str, str]
) -> None:
    """acc += item on a parameter: Sum for numbers, Concatenate for lists, refused for sets, as running it does."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop

        def accumulate(acc, items):
            for item in ParaLoop(items):
                acc += item
                tmp = item
            return acc
        """
    )
    loop = module.explain().loop(5)
    assert (loop.scope, loop.status) == ("accumulate", "parallel")
    acc = loop.name("acc")
    assert (acc.decision, acc.strategy, acc.line) == ("depends", None, 6)
    assert (acc.by_type["int"], acc.by_type["float"], acc.by_type["list"], acc.by_type["set"]) == (
        "Sum",
        "Sum",
        "Concatenate",
        "refused",
    )
    tmp = loop.name("tmp")
    assert (tmp.decision, tmp.line) == ("lastprivate", 7)
    assert "nothing after the loop reads it" in tmp.detail
    result = load(module)
    assert result.accumulate(0, range(5)) == 10 and chosen["acc"] == "Sum"
    assert result.accumulate([], [[1], [2]]) == [1, 2] and chosen["acc"] == "Concatenate"
    with pytest.raises(ParaLoopError, match="cannot combine these updates of 'acc'"):
        result.accumulate(set(), [{1}])


def test_name_unbound_when_the_loop_starts(write: Callable[[str], Module]) -> None:
    """total += i with no total before the loop: reported unbound; running it raises NameError."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop
        for i in ParaLoop(range(3)):
            total += i
        """
    )
    decision = module.explain().loop(3).name("total")
    assert (decision.decision, decision.line) == ("unbound", 4)
    with pytest.raises(NameError):
        load(module)


def test_a_store_into_a_module_of_the_program_is_reported_refused(write: Callable[[str], Module]) -> None:
    """helper.seen = i on a module of the program: refused when the loop starts (the change would be
    lost in the workers), and the report says so; os.environ[...] = v stays each iteration's own."""
    module = write(
        """
        # paraloop: enable
        import os
        import explain_helper_module
        from paraloop import ParaLoop
        for i in ParaLoop(range(3)):
            explain_helper_module.seen = i
        for i in ParaLoop(range(3)):
            os.environ["EXPLAIN_ROW"] = str(i)
        """
    )
    (module.path.parent / "explain_helper_module.py").write_text("seen = None\n")
    report = module.explain()
    decision = report.loop(5).name("explain_helper_module")
    assert (decision.decision, decision.line) == ("refused", 6)
    assert "a module of this program" in decision.detail
    environ = report.loop(7).name("os")
    assert (environ.decision, environ.strategy) == ("untracked", None)
    assert "is a module (line 2: import os)" in environ.detail
    assert {d.decision for d in report.loop(5).names} | {d.decision for d in report.loop(7).names} <= set(
        DECISIONS
    )


def test_comprehension_and_global_random_note(
    write: Callable[[str], Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comprehension's captured names; a draw from the global generator is noted, and the loop
    then runs sequentially with a warning, as the note says."""
    monkeypatch.delenv("PARALOOP_BACKEND")
    module = write(
        """
        # paraloop: enable
        import random
        from paraloop import ParaLoop
        scale = 2
        squares = [v * scale for v in ParaLoop(range(5))]
        for i in ParaLoop(range(3)):
            r = random.random()
        """
    )
    report = module.explain()
    comprehension = report.loop(5)
    assert (comprehension.kind, [(d.name, d.decision) for d in comprehension.names]) == (
        "list",
        [("scale", "read-only")],
    )
    (note,) = report.loop(6).notes
    assert note.startswith("line 7: random.random() draws from the global random generator")
    with pytest.warns(ParaLoopWarning, match="global random generator"):
        assert load(module).squares == [0, 2, 4, 6, 8]


# --------------------------------------------------------------------------------------
# Refusals when the loop starts: the report carries the error running it raises
# --------------------------------------------------------------------------------------

AT_START = """\
# paraloop: enable
from types import SimpleNamespace
from paraloop import ParaLoop, Variable, aggregation_strategies as s
{init}
for i in ParaLoop(range(6)):
    {first}
    {second}
"""

START_REFUSALS = [
    ("carried", "x = 1", "x = x * 2 + i", "pass", "carries a value from one iteration to the next"),
    ("read-and-updated", "x = 0", "x += i", "y = x > 3", "reads 'x' besides updating it"),
    ("forms-do-not-combine", "x = 1", "x += i", "x *= 2", "cannot combine these updates of 'x'"),
    ("order-dependent", "x = []", "x.append(i)", "x.sort()", "depends on what earlier iterations left"),
    ("attribute", "x = SimpleNamespace(hits=0)", "x.hits += 1", "pass", "changes an attribute or element"),
    (
        "variable-strategy",
        "x = Variable(1, aggregation_strategy=s.Sum)",
        "x *= 2",
        "pass",
        "has the strategy Sum",
    ),
    ("writes-and-reads", "x = [0] * 6", "x[i] = i", "y = x[0]", "writes elements of 'x'"),
    (
        "unbound-read",
        "pass",
        "if i % 2: x = i",
        "y = x",
        "read in one iteration before that iteration assigns",
    ),
]


@pytest.mark.parametrize(
    "init,first,second,message", [c[1:] for c in START_REFUSALS], ids=[c[0] for c in START_REFUSALS]
)
def test_refusal_at_loop_start_is_the_error_running_it_raises(
    write: Callable[[str], Module], init: str, first: str, second: str, message: str
) -> None:
    """Each family of loop-start refusal: the report holds the very ParaLoopError the loop raises."""
    module = write(AT_START.format(init=init, first=first, second=second))
    loop = module.explain().loop(5)
    assert loop.status == "refused at loop start"
    decision = loop.name("x")
    assert (decision.decision, decision.line) == ("refused", 6)
    with pytest.raises(ParaLoopError) as raised:
        load(module)
    assert message in str(raised.value)
    assert str(raised.value) in decision.detail
    assert Path(str(raised.value).partition(",")[0]) == module.path  # it names the file
    assert module.explain().refused


# --------------------------------------------------------------------------------------
# Refusals when the module is imported: the UnsupportedLoopError's text and line
# --------------------------------------------------------------------------------------

AT_IMPORT = [
    (
        "yield",
        """
        def gen():
            for i in ParaLoop(range(3)):
                yield i
        """,
        4,
        5,
        "a ParaLoop body cannot 'yield'",
    ),
    (
        "await",
        """
        async def main(thing):
            for i in ParaLoop(range(3)):
                await thing(i)
        """,
        4,
        5,
        "a ParaLoop body cannot 'await'",
    ),
    (
        "async-for",
        """
        async def main():
            async for i in ParaLoop(range(3)):
                pass
        """,
        4,
        4,
        "'async for' over ParaLoop is not supported",
    ),
    (
        "attribute-target",
        """
        box = type("Box", (), {})()
        for box.item in ParaLoop(range(3)):
            pass
        """,
        4,
        4,
        "the target of a ParaLoop loop must be a name",
    ),
    (
        "return-outside-function",
        """
        for i in ParaLoop(range(3)):
            return i
        """,
        3,
        4,
        "'return' outside function",
    ),
    (
        "wrapped",
        """
        for i, x in enumerate(ParaLoop(range(3))):
            pass
        """,
        3,
        3,
        "enumerate(ParaLoop(...)) is not parallel",
    ),
    (
        "not-a-loop",
        """
        items = ParaLoop(range(3))
        """,
        3,
        3,
        "ParaLoop(...) is only parallel as the iterable of a 'for' statement",
    ),
    (
        "walrus-comprehension",
        """
        squares = [(y := i * i) for i in ParaLoop(range(3))]
        """,
        3,
        3,
        "an assignment expression (:=) in a comprehension over ParaLoop",
    ),
]


@pytest.mark.parametrize(
    "body,line,refusal_line,message", [c[1:] for c in AT_IMPORT], ids=[c[0] for c in AT_IMPORT]
)
def test_refusal_at_import_is_the_error_importing_raises(
    write: Callable[[str], Module], body: str, line: int, refusal_line: int, message: str
) -> None:
    """Each family of rewrite-time refusal: the report's text and line are the UnsupportedLoopError's."""
    module = write("# paraloop: enable\nfrom paraloop import ParaLoop\n" + textwrap.dedent(body).lstrip("\n"))
    report = module.explain()
    (loop,) = report.loops
    assert (loop.line, loop.status, loop.refusal_line) == (line, "refused at import", refusal_line)
    assert loop.refusal is not None and loop.refusal.startswith(message)
    with pytest.raises(UnsupportedLoopError) as raised:
        load(module)
    assert (raised.value.msg, raised.value.lineno) == (loop.refusal, loop.refusal_line)
    assert report.refused


def test_reserved_name_refuses_the_module(write: Callable[[str], Module]) -> None:
    """A name paraloop reserves: the module is refused, as importing it is."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop
        __paraloop_mine__ = 1
        for i in ParaLoop(range(3)):
            pass
        """
    )
    report = module.explain()
    with pytest.raises(UnsupportedLoopError) as raised:
        load(module)
    assert report.refusals == ((3, raised.value.msg),)
    assert raised.value.lineno == 3 and report.refused


def test_every_loop_is_reported_and_the_import_raises_the_first_refusal(
    write: Callable[[str], Module],
) -> None:
    """A refused loop does not hide the others: the report goes on; importing stops at the first."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop
        total = 0
        def gen():
            for i in ParaLoop(range(3)):
                yield i
        for i in ParaLoop(range(3)):
            total += i
        pairs = list(zip(ParaLoop(range(3)), "abc"))
        """
    )
    report = module.explain()
    assert [(loop.line, loop.status) for loop in report.loops] == [
        (5, "refused at import"),
        (7, "parallel"),
        (9, "refused at import"),
    ]
    assert report.loop(7).name("total").strategy == "Sum"
    with pytest.raises(UnsupportedLoopError) as raised:
        load(module)
    assert (raised.value.lineno, raised.value.msg) == (report.loops[0].refusal_line, report.loops[0].refusal)


def test_report_text(write: Callable[[str], Module]) -> None:
    """str() of the report: the file, each loop's line and status, one line per name."""
    module = write(
        """
        # paraloop: enable
        from paraloop import ParaLoop
        total = 0
        for i in ParaLoop(range(10)):
            total += i
        """
    )
    assert str(module.explain()) == (
        f"{module.path}: marked with '# paraloop: enable'\n"
        "line 4: for loop: parallel\n"
        "    i: loop target, lastprivate: after the loop it holds the last iteration's item\n"
        "    total: reduction Sum (line 5: total += i), as total is an int (line 3: total = 0): "
        "the workers' parts are added in iteration order\n"
    )


def test_public_function_and_cheap_import() -> None:
    """paraloop.explain stays a function (the report's module has another name), and
    'import paraloop' does not import the report's module."""
    source = "from paraloop import ParaLoop\ntotal = 0\nfor i in ParaLoop(range(9)):\n    total += i\n"
    for _ in range(2):
        report = paraloop.explain(source)
        assert report.loop(3).name("total").strategy == "Sum"
        assert report.filename == "<string>" and not report.marked
    with pytest.raises(SyntaxError):
        paraloop.explain("for i in (:\n")
    check = "import paraloop, sys; print(any(m.startswith('paraloop.explanation') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=TIMEOUT)
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr


# --------------------------------------------------------------------------------------
# python -m paraloop --explain FILE
# --------------------------------------------------------------------------------------


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    command = [sys.executable, "-m", "paraloop", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT)


def test_cli_prints_the_report(tmp_path: Path) -> None:
    """--explain FILE prints str(paraloop.explain(FILE's source, FILE)), exit status 0."""
    source = "# paraloop: enable\nfrom paraloop import ParaLoop\nout = []\nfor i in ParaLoop(range(3)):\n    out.append(i)\n"
    (tmp_path / "good.py").write_text(source)
    result = cli(tmp_path, "--explain", "good.py")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == str(explain(source, "good.py"))
    assert "line 4: for loop: parallel" in result.stdout
    assert "    out: reduction Concatenate (line 5: out.append(i))" in result.stdout


def test_cli_refused_loop_exits_1(tmp_path: Path) -> None:
    """A loop paraloop refuses: the report with the refusal and its fix, exit status 1."""
    (tmp_path / "bad.py").write_text(
        "# paraloop: enable\nfrom paraloop import ParaLoop\nfor i in enumerate(ParaLoop(range(3))):\n    pass\n"
    )
    result = cli(tmp_path, "--explain", "bad.py")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines()[1:] == [
        "line 3: ParaLoop(...): refused at import",
        "    UnsupportedLoopError: enumerate(ParaLoop(...)) is not parallel: ParaLoop must be the loop's "
        "iterable itself. Wrap the whole iterable instead: ParaLoop(enumerate(range(3)))",
    ]


def test_cli_unmarked_file_and_file_without_loops(tmp_path: Path) -> None:
    """An unmarked file says so (its loops still explained); a file without loops says it has none."""
    (tmp_path / "unmarked.py").write_text(
        "from paraloop import ParaLoop\nfor i in ParaLoop(range(3)):\n    pass\n"
    )
    (tmp_path / "none.py").write_text("# paraloop: enable\nprint('hello')\n")
    unmarked = cli(tmp_path, "--explain", "unmarked.py")
    assert unmarked.returncode == 0, unmarked.stderr
    assert unmarked.stdout.startswith(
        "unmarked.py: not marked with '# paraloop: enable': imported, its loops run sequentially"
    )
    assert "line 2: for loop: parallel" in unmarked.stdout
    none = cli(tmp_path, "--explain", "none.py")
    assert (none.returncode, none.stderr, none.stdout) == (
        0,
        "",
        "none.py: marked with '# paraloop: enable'\nno ParaLoop loops in none.py\n",
    )


@pytest.mark.parametrize(
    "args,message,status",
    [
        (["--explain", "missing.py"], "paraloop: cannot open 'missing.py': No such file or directory", 2),
        (["--explain", "folder"], "paraloop: cannot open 'folder': Is a directory", 2),
        (["--explain"], "paraloop: --explain takes one FILE", 2),
        (["--explain", "a.py", "b.py"], "paraloop: --explain takes one FILE", 2),
    ],
    ids=["missing", "directory", "alone", "two-files"],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str, status: int) -> None:
    """A file it cannot read, or a wrong command line: one line on stderr, nothing on stdout."""
    (tmp_path / "folder").mkdir()
    result = cli(tmp_path, *args)
    assert (result.returncode, result.stdout, result.stderr) == (status, "", message + "\n")


def test_cli_syntax_error_is_reported_as_python_reports_it(tmp_path: Path) -> None:
    """A file that does not parse: python's own report of the syntax error, exit status 1."""
    (tmp_path / "broken.py").write_text("x = 1\ny = (\n")
    plain = subprocess.run(
        [sys.executable, "broken.py"], capture_output=True, text=True, cwd=tmp_path, timeout=TIMEOUT
    )
    result = cli(tmp_path, "--explain", "broken.py")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", plain.stderr)
    assert "SyntaxError: '(' was never closed" in result.stderr


def test_cli_help_documents_explain(tmp_path: Path) -> None:
    result = cli(tmp_path, "--help")
    assert result.returncode == 0
    assert "--explain FILE" in result.stdout and "paraloop.explain(source)" in result.stdout
