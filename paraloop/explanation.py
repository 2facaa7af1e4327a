"""What paraloop does with each ParaLoop loop of a source, and why: ``paraloop.explain``.

(This module is not called ``paraloop.explain``: importing a submodule of that name would
replace the function ``paraloop.explain`` with the module.)

For every ``ParaLoop`` loop (and comprehension over ``ParaLoop``) the report gives its
line and, for each name from outside the loop that the body touches, what paraloop
does with it:

- ``reduction``: the body updates it in a form paraloop combines; the report names the
  strategy (``Sum`` for ``total += x`` on a number, ``Concatenate`` for
  ``out.append(x)`` on a list, ...);
- ``variable``: a :class:`~paraloop.Variable` the user declared, combined with its own
  strategy;
- ``lastprivate``: the body assigns it (or it is the loop target); after the loop it
  holds the value of the last iteration that assigned it;
- ``read-only``: the body only reads it (each worker gets it as it was when the loop
  started);
- ``refused``: the loop raises :class:`~paraloop.ParaLoopError` when it starts, with the
  message and its fix;
- ``depends``: the strategy depends on the value the name has when the loop starts,
  which the source does not show (a function's parameter): the report lists the
  strategy for each type;
- ``unbound`` and ``untracked``: not bound when the loop starts (the body raises
  ``NameError`` as the plain loop would), or a value paraloop does not combine (a
  module).

A loop paraloop refuses to rewrite carries the message of the
:class:`~paraloop.UnsupportedLoopError` that importing the module raises.

The report comes from the rewriter's own analysis (:class:`paraloop.hook.rewriter.LoopFacts`,
recorded while it rewrites a copy of the source) and from the function that chooses the
strategies when a loop starts (:func:`paraloop.reductions.infer_reductions`), called with
the value the source gives the name before the loop (``total = 0``: an int).  Where the
source does not show that value, each type is tried.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import aggregation_strategies as strategies
from .errors import ParaLoopError, UnsupportedLoopError
from .execute import UNBOUND
from .hook.marker import HEAD_BYTES, marker_in_head
from .hook.names import block_names, function_locals
from .hook.rewriter import LoopFacts, _Rewriter
from .hook.uses import RANDOM_FUNCTIONS
from .plan import Kind, Use
from .reductions import infer_reductions
from .variable import Variable

__all__ = ["DECISIONS", "Explanation", "LoopExplanation", "NameDecision", "explain"]

# What paraloop does with a name, as NameDecision.decision spells it.
DECISIONS = (
    "reduction",
    "variable",
    "lastprivate",
    "read-only",
    "refused",
    "depends",
    "unbound",
    "untracked",
)

_KINDS = {
    "for": "for loop",
    "list": "list comprehension",
    "set": "set comprehension",
    "dict": "dict comprehension",
    "generator": "generator expression",
    "call": "ParaLoop(...)",
}

_MEANING = {
    "Sum": "the workers' parts are added in iteration order",
    "Product": "the workers' parts are multiplied in iteration order",
    "Concatenate": "the workers' parts are joined in iteration order",
    "Merge": "the workers' entries are merged in iteration order, later iterations win",
    "Union": "the workers' sets are united",
    "Min": "the smallest value wins",
    "Max": "the largest value wins",
    "Any": "true if any iteration made it true",
    "All": "true if every iteration kept it true",
    "Last": "the last value that decided, else the value before the loop",
    "Reduce": "the workers' parts are combined with the operator in iteration order",
    "IndexWrites": "only the indexes the iterations wrote change",
    "PerIndex": "each index is combined on its own",
    "ElementUpdates": "each iteration reads and writes its own element",
    "Scratch": "each worker overwrites a copy of its own; afterwards it holds the last write",
}

_TYPE_ORDER = (
    "int", "float", "complex", "bool", "str", "bytes", "tuple", "list", "bytearray", "deque",
    "set", "frozenset", "dict", "Counter", "defaultdict", "ndarray",
)  # fmt: skip

_NUMPY_FUNCTIONS = frozenset(
    {"zeros", "ones", "empty", "full", "array", "asarray", "arange", "linspace", "zeros_like",
     "ones_like", "empty_like", "full_like", "copy"}
)  # fmt: skip
_COLLECTIONS = {"Counter": Counter, "OrderedDict": OrderedDict, "deque": deque}
_BUILTIN_TYPES = frozenset(
    {
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "str",
        "bytes",
        "bytearray",
        "int",
        "float",
        "complex",
        "bool",
    }
)


@dataclass(frozen=True)
class NameDecision:
    """What paraloop does with one name a loop body touches.

    ``decision`` is one of :data:`DECISIONS`; ``strategy`` names the strategy of a
    ``reduction`` or ``variable`` (``"Sum"``, ``"Concatenate"``, ...); ``line`` is the
    first line of the loop that mentions the name; ``detail`` says why, and for
    ``refused`` holds the error's message with its fix.  ``by_type`` (for ``depends``)
    maps each type the name might have to its strategy, or ``"refused"``.
    """

    name: str
    decision: str
    strategy: str | None
    line: int | None
    detail: str
    by_type: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True)
class LoopExplanation:
    """One ParaLoop loop: its line, what is done with each name, or why it is refused.

    ``status`` is ``"parallel"``, ``"refused at import"`` (``refusal`` holds the
    UnsupportedLoopError's message, ``refusal_line`` its line) or ``"refused at loop
    start"`` (a name's decision is ``refused``).
    """

    line: int
    kind: str
    scope: str
    status: str
    names: tuple[NameDecision, ...] = ()
    refusal: str | None = None
    refusal_line: int | None = None
    notes: tuple[str, ...] = ()

    def name(self, name: str) -> NameDecision:
        """The decision about ``name``; KeyError if the loop does not touch it."""
        for decision in self.names:
            if decision.name == name:
                return decision
        raise KeyError(f"the loop at line {self.line} does not touch {name!r}")

    def __str__(self) -> str:
        where = "" if self.scope == "<module>" else f" in {self.scope}()"
        head = f"line {self.line}: {_KINDS.get(self.kind, self.kind)}{where}: {self.status}"
        lines = [head]
        if self.refusal is not None:
            at = f"line {self.refusal_line}: " if self.refusal_line not in (None, self.line) else ""
            lines.append(f"    UnsupportedLoopError: {at}{self.refusal}")
        lines.extend(f"    {decision}" for decision in self.names)
        lines.extend(f"    note: {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class Explanation:
    """The report of :func:`explain`: ``str()`` of it is what ``python -m paraloop --explain`` prints."""

    filename: str
    marked: bool
    loops: tuple[LoopExplanation, ...]
    # Refusals of the whole module (a reserved name), as (line, message).
    refusals: tuple[tuple[int, str], ...] = ()

    def loop(self, line: int) -> LoopExplanation:
        """The loop at ``line``; KeyError if there is none."""
        for loop in self.loops:
            if loop.line == line:
                return loop
        raise KeyError(f"no ParaLoop loop at line {line} of {self.filename}")

    @property
    def refused(self) -> bool:
        """Whether importing (or running) the source meets a refusal the report is sure of."""
        return bool(self.refusals) or any(loop.status != "parallel" for loop in self.loops)

    def __str__(self) -> str:
        if self.marked:
            lines = [f"{self.filename}: marked with '# paraloop: enable'"]
        elif self.loops:
            lines = [
                f"{self.filename}: not marked with '# paraloop: enable': imported, its loops run "
                "sequentially (with a ParaLoopWarning); marked, or run as a script with "
                f"'python -m paraloop {self.filename}', they run as reported below"
            ]
        else:
            lines = [f"{self.filename}: not marked with '# paraloop: enable'"]
        for line, message in self.refusals:
            lines.append(f"line {line}: the module is refused: UnsupportedLoopError: {message}")
        if not self.loops:
            lines.append(f"no ParaLoop loops in {self.filename}")
        lines.extend(str(loop) for loop in self.loops)
        return "\n".join(lines) + "\n"


def explain(source: str | bytes, filename: str = "<string>") -> Explanation:
    """Report what paraloop does with every ParaLoop loop of ``source``, from the rewriter's analysis.

    Raises SyntaxError if ``source`` does not parse.  ``str()`` of the result is the
    report ``python -m paraloop --explain FILE`` prints::

        >>> import paraloop
        >>> report = paraloop.explain(
        ...     "from paraloop import ParaLoop\\n"
        ...     "total = 0\\n"
        ...     "for i in ParaLoop(range(10)):\\n"
        ...     "    total += i\\n"
        ... )
        >>> report.loop(3).name("total").strategy
        'Sum'
    """
    tree = ast.parse(source, filename)
    pristine = ast.parse(source, filename)
    text = importlib.util.decode_source(source) if isinstance(source, bytes) else source
    head = source[:HEAD_BYTES] if isinstance(source, bytes) else text[:HEAD_BYTES].encode("utf-8", "replace")
    recorder = _Recorder(tree, filename, text.splitlines())
    refusals: list[tuple[int, str]] = []
    if recorder.paraloop.functions or recorder.paraloop.modules:
        try:
            recorder.check_reserved()
        except UnsupportedLoopError as error:
            refusals.append((error.lineno or 1, str(error.msg)))
        tree.body = recorder.block(tree.body, [])
        for leftover in recorder.leftovers():
            recorder.refused.append((None, "call", leftover))
    context = _Context(pristine, filename, recorder.paraloop.matches)
    loops = [context.loop(facts) for facts in recorder.decisions or ()]
    for node, kind, refusal in recorder.refused:
        line = getattr(node, "lineno", None) or refusal.lineno or 1
        if isinstance(node, ast.For):
            scope = context.scope_name(node)
        else:
            scope = context.scope_name_at(refusal.lineno or 1)
        loops.append(
            LoopExplanation(
                line, kind, scope, "refused at import", refusal=str(refusal.msg), refusal_line=refusal.lineno
            )
        )
    loops.sort(key=lambda loop: loop.line)
    return Explanation(filename, marker_in_head(head), tuple(loops), tuple(refusals))


class _Recorder(_Rewriter):
    """The rewriter, recording its decisions and going on past a refused loop."""

    def __init__(self, tree: ast.Module, filename: str, lines: list[str]) -> None:
        super().__init__(tree, filename, lines)
        self.decisions = []
        self.refused: list[tuple[ast.AST | None, str, UnsupportedLoopError]] = []

    def consume(self, node: ast.AST) -> None:
        """The ParaLoop calls in a refused loop belong to that refusal."""
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and self.paraloop.matches(inner):
                self.consumed.add(id(inner))

    def block(self, body: list[ast.stmt], scopes: list[ast.AST]) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for statement in body:
            try:
                result.extend(super().block([statement], scopes))
            except UnsupportedLoopError as error:  # 'async for' over ParaLoop
                self.refused.append((statement, "for", error))
                self.consume(statement)
                result.append(statement)
        return result

    def loop(self, loop: ast.For, scopes: list[ast.AST]) -> list[ast.stmt]:
        try:
            return super().loop(loop, scopes)
        except UnsupportedLoopError as error:
            self.refused.append((loop, "for", error))
            self.consume(loop)
            return [loop]

    def comprehension(self, node: ast.expr, scopes: list[ast.AST], definitions: list[ast.stmt]) -> ast.expr:
        try:
            return super().comprehension(node, scopes, definitions)
        except UnsupportedLoopError as error:
            kind = {ast.ListComp: "list", ast.SetComp: "set", ast.DictComp: "dict"}.get(
                type(node), "generator"
            )
            where = getattr(node, "generators", [None])[0]
            self.refused.append((getattr(where, "iter", node), kind, error))
            self.consume(node)
            return node


# --------------------------------------------------------------------------------------
# The value a name has when the loop starts, as far as the source shows it
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """A value of the type the name has before the loop, and the statement that says so."""

    value: Any
    line: int
    source: str


@dataclass(frozen=True)
class _Unknown:
    """The source does not show the name's type (``where`` says what binds it, if anything)."""

    where: str = ""


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)

# (the statement holding the block, the block, the index in it on the way to the loop)
_Step = tuple[ast.AST, list[ast.stmt], int]


def _short(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _path(node: ast.AST, target: ast.AST) -> list[_Step] | None:
    """The blocks from ``node`` down to the statement ``target``."""
    for _field, value in ast.iter_fields(node):
        if not isinstance(value, list):
            continue
        for index, child in enumerate(value):
            if isinstance(child, ast.stmt):
                if child is target:
                    return [(node, value, index)]
                found = _path(child, target)
                if found is not None:
                    return [(node, value, index), *found]
            elif isinstance(child, (ast.excepthandler, ast.match_case)):
                found = _path(child, target)
                if found is not None:
                    return found
    return None


class _Context:
    """The unchanged source: where each loop stands, and what its names hold before it."""

    def __init__(self, tree: ast.Module, filename: str, matches: Callable[[ast.expr], bool]) -> None:
        self.tree = tree
        self.filename = filename
        self.matches = matches
        self.paths: dict[int, list[_Step] | None] = {}
        self.fors: dict[tuple[int, int], ast.For] = {}
        self.numpy: set[str] = set()
        self.collections: dict[str, str] = {}
        self.variables: set[str] = set()
        self.paraloop_modules: set[str] = set()
        self.random_modules: set[str] = set()
        self.random_functions: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.For):
                self.fors[(node.lineno, node.col_offset)] = node
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.partition(".")[0]
                    if alias.name == "numpy" or (alias.name.startswith("numpy.") and not alias.asname):
                        self.numpy.add(bound)
                    elif alias.name == "paraloop":
                        self.paraloop_modules.add(bound)
                    if alias.name in ("random", "numpy"):
                        self.random_modules.add(bound)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if node.module == "collections":
                        self.collections[bound] = alias.name
                    elif node.module == "paraloop" and alias.name == "Variable":
                        self.variables.add(bound)
                    elif node.module in ("random", "numpy.random") and alias.name in RANDOM_FUNCTIONS:
                        self.random_functions.add(bound)

    # Where a loop stands.
    def scope_of(self, path: Sequence[_Step]) -> int:
        """The index in ``path`` of the innermost function or class holding the loop, or -1."""
        for index in range(len(path) - 1, -1, -1):
            if isinstance(path[index][0], _SCOPES):
                return index
        return -1

    def path(self, loop: ast.AST) -> list[_Step] | None:
        if id(loop) not in self.paths:
            self.paths[id(loop)] = _path(self.tree, loop)
        return self.paths[id(loop)]

    def scope_name(self, loop: ast.AST) -> str:
        path = self.path(loop) or []
        index = self.scope_of(path)
        return "<module>" if index < 0 else str(getattr(path[index][0], "name", "<module>"))

    def scope_name_at(self, line: int) -> str:
        """The function whose lines hold ``line``, for a refusal without a loop statement."""
        name = "<module>"
        for node in ast.walk(self.tree):
            if isinstance(node, _SCOPES) and node.lineno <= line <= (node.end_lineno or node.lineno):
                inner = [n for n in ast.walk(node) if isinstance(n, _SCOPES) and n is not node]
                if not any(n.lineno <= line <= (n.end_lineno or n.lineno) for n in inner):
                    name = node.name
        return name

    # The value before the loop.
    def value_before(self, name: str, loop: ast.For) -> _Value | _Unknown:
        path = self.path(loop)
        if path is None:
            return _Unknown()
        scope = self.scope_of(path)
        if scope >= 0:
            holder = path[scope][0]
            if not isinstance(holder, _FUNCTIONS) or name not in function_locals(holder):
                return self.module_value(name, holder)
        # From the function's own body (or the module's) down to the loop's block.
        steps = path[max(scope, 0) :]
        in_loop = False
        checks: list[tuple[ast.AST, list[ast.stmt], int, bool]] = []
        for holder, block, index in steps:
            if isinstance(holder, _LOOPS):
                in_loop = True
            checks.append((holder, block, index, in_loop))
        for holder, block, index, looping in reversed(checks):
            if looping and name in block_names(block[index + 1 :]).stores:
                return _Unknown()  # rebound later in an enclosing loop: the next pass sees that
            for statement in reversed(block[:index]):
                found = self.binding(statement, name)
                if found is not None:
                    return found
            if isinstance(holder, ast.For) and self.matches(holder.iter):
                return _Unknown()  # a loop inside another ParaLoop loop's body
            if isinstance(holder, (ast.For, ast.AsyncFor)) and name in _target_names(holder.target):
                return _Unknown()
            if isinstance(holder, (ast.With, ast.AsyncWith)) and any(
                item.optional_vars is not None and name in _target_names(item.optional_vars)
                for item in holder.items
            ):
                return _Unknown()
            if isinstance(holder, ast.ExceptHandler) and holder.name == name:
                return _Unknown()
        # Nothing before the loop binds it: unbound when the loop starts, unless an enclosing
        # loop's earlier pass, the caller (a parameter) or another function (global) bound it.
        if in_loop or (scope >= 0 and name in _parameters(path[scope][0])):
            return _Unknown()
        if scope < 0 and any(
            isinstance(node, ast.Global) and name in node.names for node in ast.walk(self.tree)
        ):
            return _Unknown()
        return _Value(UNBOUND, 0, "")

    def module_value(self, name: str, holder: ast.AST) -> _Value | _Unknown:
        """A name a function reads from its module: known if the module assigns it once, plainly."""
        if isinstance(holder, ast.ClassDef):
            return _Unknown()
        binders = [s for s in self.tree.body if name in block_names([s]).stores]
        # Another function that declares it global may rebind it before the loop runs.
        own = {id(node) for node in ast.walk(holder)}
        rebinds = any(
            isinstance(node, ast.Global) and name in node.names and id(node) not in own
            for node in ast.walk(self.tree)
        )
        if len(binders) != 1 or rebinds:
            return _Unknown()
        return self.binding(binders[0], name) or _Unknown()

    def binding(self, statement: ast.stmt, name: str) -> _Value | _Unknown | None:
        """What ``statement`` binds ``name`` to, or None if it does not bind it."""
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name) and target.id == name:
                value = statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            if statement.target.id == name:
                if statement.value is None:
                    return None  # an annotation alone binds nothing
                value = statement.value
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if (alias.asname or alias.name.partition(".")[0]) == name:
                    return _Value(types.ModuleType(alias.name), statement.lineno, _short(statement))
        if value is not None:
            sample = self.sample(value)
            if sample is _NOTHING:
                return _Unknown(f"line {statement.lineno}: {_short(statement)}")
            return _Value(sample, statement.lineno, _short(statement))
        if name in block_names([statement]).stores:
            return _Unknown(f"line {statement.lineno}: {_short(statement)}")
        return None

    def sample(self, node: ast.expr) -> Any:
        """A value of the type ``node`` makes (the value itself for a literal), or _NOTHING."""
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        if isinstance(node, (ast.List, ast.ListComp)):
            return []
        if isinstance(node, (ast.Dict, ast.DictComp)):
            return {}
        if isinstance(node, (ast.Set, ast.SetComp)):
            return set()
        if isinstance(node, ast.Tuple):
            return ()
        if isinstance(node, ast.JoinedStr):
            return ""
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            # A slice of a sequence or an array has the sequence's type: np.zeros(32)[::2].
            base = self.sample(node.value)
            if isinstance(base, (list, tuple, str, bytes, bytearray)) or type(base).__name__ == "ndarray":
                return base
            return _NOTHING
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for side in (node.left, node.right):
                if isinstance(side, (ast.List, ast.Tuple)):
                    return self.sample(side)
            return _NOTHING
        if not isinstance(node, ast.Call):
            return _NOTHING
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        root_name = root.id if isinstance(root, ast.Name) else ""
        if isinstance(func, ast.Name) and called in _BUILTIN_TYPES:
            return getattr(builtins, called)()
        if isinstance(func, ast.Name) and self.collections.get(called) in _COLLECTIONS:
            return _COLLECTIONS[self.collections[called]]()
        if (isinstance(func, ast.Name) and self.collections.get(called) == "defaultdict") or (
            isinstance(func, ast.Attribute) and called == "defaultdict" and root_name == "collections"
        ):
            factory = node.args[0] if node.args else None
            known = isinstance(factory, ast.Name) and factory.id in _BUILTIN_TYPES
            return defaultdict(getattr(builtins, factory.id) if known else None)  # type: ignore[union-attr]
        if isinstance(func, ast.Attribute) and root_name == "collections" and called in _COLLECTIONS:
            return _COLLECTIONS[called]()
        if isinstance(func, ast.Attribute) and root_name in self.numpy and called in _NUMPY_FUNCTIONS:
            return _numpy_array()
        if (isinstance(func, ast.Name) and called in self.variables) or (
            isinstance(func, ast.Attribute) and called == "Variable" and root_name in self.paraloop_modules
        ):
            return self.variable(node)
        return _NOTHING

    def variable(self, node: ast.Call) -> Any:
        """A Variable like the one ``Variable(value, aggregation_strategy=S)`` makes."""
        strategy_node: ast.expr | None = node.args[1] if len(node.args) > 1 else None
        for keyword in node.keywords:
            if keyword.arg == "aggregation_strategy":
                strategy_node = keyword.value
        strategy = _strategy_of(strategy_node)
        value = self.sample(node.args[0]) if node.args else _NOTHING
        if strategy is None or value is _NOTHING:
            return _DeclaredVariable(_short(strategy_node) if strategy_node is not None else "Last", strategy)
        try:
            return Variable(value, aggregation_strategy=strategy)
        except (ParaLoopError, TypeError, ValueError):
            return _DeclaredVariable(_short(strategy_node) if strategy_node is not None else "Last", strategy)

    # One loop's report.
    def loop(self, facts: LoopFacts) -> LoopExplanation:
        node = facts.node
        if facts.kind != "for":
            where = node.generators[0].iter  # type: ignore[attr-defined]
            captured = tuple(
                NameDecision(n, "read-only", None, where.lineno, "captured read-only") for n in facts.captured
            )
            return LoopExplanation(where.lineno, facts.kind, facts.scope, "parallel", captured)
        assert isinstance(node, ast.For)
        pristine = self.fors.get((node.lineno, node.col_offset), node)
        first = _first_lines(pristine)
        groups: dict[str, list[Use]] = {}
        for use in facts.uses:
            if use.form.kind is not Kind.INVOKE:
                groups.setdefault(use.name, []).append(use)
        names = sorted(
            {*facts.targets, *facts.captured, *facts.stored, *groups},
            key=lambda n: (n not in facts.targets, first.get(n, node.lineno), n),
        )
        decisions = [self.decide(n, facts, groups.get(n), pristine, first.get(n)) for n in names]
        status = "refused at loop start" if any(d.decision == "refused" for d in decisions) else "parallel"
        return LoopExplanation(
            node.lineno, "for", facts.scope, status, tuple(decisions), notes=tuple(self.notes(facts))
        )

    def decide(
        self, name: str, facts: LoopFacts, group: list[Use] | None, loop: ast.For, line: int | None
    ) -> NameDecision:
        if name in facts.targets:
            return NameDecision(
                name, "lastprivate", None, line,
                "loop target, lastprivate: after the loop it holds the last iteration's item",
            )  # fmt: skip
        if group is None:
            if name in facts.stored:
                travel = (
                    ""
                    if name in facts.after
                    else " (nothing after the loop reads it, so it stays in the workers)"
                )
                return NameDecision(
                    name, "lastprivate", None, line,
                    "lastprivate: each iteration assigns it before reading it; after the loop it "
                    f"holds the value of the last iteration that assigned it{travel}",
                )  # fmt: skip
            known = self.value_before(name, loop)
            if isinstance(known, _Value) and isinstance(known.value, (Variable, _DeclaredVariable)):
                return self.variable_decision(name, known.value, line, read_only=True)
            if name in facts.wrapped:
                return NameDecision(
                    name,
                    "variable",
                    None,
                    line,
                    "a Variable (the body uses its .value): combined with its own strategy",
                )
            return NameDecision(name, "read-only", None, line, "captured read-only")
        spelled = "; ".join(
            f"line {use.line}: {use.source}" for use in _distinct(group) if use.form.kind is not Kind.READ
        )
        value = _Value(UNBOUND, 0, "") if name not in facts.captured else self.value_before(name, loop)
        if isinstance(value, _Unknown):
            return self.by_type(name, group, line, spelled, value)
        if isinstance(value.value, (Variable, _DeclaredVariable)):
            return self.variable_decision(name, value.value, line, group=group)
        if value.value is UNBOUND:
            try:
                infer_reductions(group, {name: UNBOUND}, self.filename)
            except ParaLoopError as error:
                return NameDecision(name, "refused", None, line, f"refused when the loop starts: {error}")
            return NameDecision(
                name, "unbound", None, line,
                f"not bound when the loop starts ({spelled}): the body raises NameError, "
                "as the plain loop would",
            )  # fmt: skip
        return self.outcome(name, group, value, line, spelled)

    def outcome(
        self, name: str, group: list[Use], value: _Value, line: int | None, spelled: str
    ) -> NameDecision:
        kind = type(value.value).__name__
        article = "an" if kind[:1] in "aeiou" else "a"
        assumed = f"{name} is {article} {kind} (line {value.line}: {value.source})"
        try:
            inferred = infer_reductions(group, {name: value.value}, self.filename)
        except ParaLoopError as error:
            return NameDecision(
                name, "refused", None, line, f"refused when the loop starts, as {assumed}: {error}"
            )
        strategy = inferred.get(name)
        if strategy is None:
            return NameDecision(
                name, "untracked", None, line,
                f"not combined ({spelled}): {assumed}; paraloop does not combine changes to it: "
                "they happen in the worker processes, not in this one",
            )  # fmt: skip
        title = _strategy_name(strategy)
        meaning = _MEANING.get(type(strategy).__name__, "combined with its strategy")
        return NameDecision(
            name, "reduction", title, line, f"reduction {title} ({spelled}), as {assumed}: {meaning}"
        )

    def by_type(
        self, name: str, group: list[Use], line: int | None, spelled: str, value: _Unknown
    ) -> NameDecision:
        """The source does not show the type: the strategy for each type it might have."""
        results: dict[str, str] = {}
        messages: dict[str, str] = {}
        for kind, sample in _samples():
            try:
                inferred = infer_reductions(group, {name: sample}, self.filename)
            except ParaLoopError as error:
                results[kind] = "refused"
                messages[kind] = str(error)
                continue
            strategy = inferred.get(name)
            results[kind] = _strategy_name(strategy) if strategy is not None else "not combined"
        bound = f", bound at {value.where}" if value.where else ""
        outcomes = set(results.values())
        if len(outcomes) == 1 and outcomes - {"refused", "not combined"}:
            title = outcomes.pop()
            meaning = _MEANING.get(title.partition("(")[0], "combined with its strategy")
            return NameDecision(
                name,
                "reduction",
                title,
                line,
                f"reduction {title} ({spelled}), whatever its value: {meaning}",
            )
        if all(result == "refused" for result in results.values()):
            distinct = set(messages.values())
            message = distinct.pop() if len(distinct) == 1 else f"for {_samples()[0][0]}: {messages['int']}"
            return NameDecision(
                name,
                "refused",
                None,
                line,
                f"refused when the loop starts, whatever its value: {message}",
                results,
            )
        grouped: dict[str, list[str]] = {}
        for kind, result in results.items():
            grouped.setdefault(result, []).append(kind)
        parts = [
            f"{result} for {', '.join(kinds)}" for result, kinds in grouped.items() if result != "refused"
        ]
        if "refused" in grouped:
            parts.append("refused for other types")
        return NameDecision(
            name, "depends", None, line,
            f"decided when the loop starts, from its value, which the source does not show{bound} "
            f"({spelled}): {'; '.join(parts)}",
            results,
        )  # fmt: skip

    def variable_decision(
        self,
        name: str,
        variable: Any,
        line: int | None,
        group: list[Use] | None = None,
        read_only: bool = False,
    ) -> NameDecision:
        if isinstance(variable, _DeclaredVariable):
            title = type(variable.strategy).__name__ if variable.strategy is not None else variable.spelled
            return NameDecision(
                name,
                "variable",
                title,
                line,
                f"Variable declared by the user: combined with its strategy {title}",
            )
        title = _strategy_name(variable.aggregation_strategy)
        if group is not None:
            try:
                infer_reductions(group, {name: variable}, self.filename)
            except ParaLoopError as error:
                return NameDecision(name, "refused", None, line, f"refused when the loop starts: {error}")
        how = "read in the body" if read_only else "combined"
        return NameDecision(
            name, "variable", title, line, f"Variable declared by the user: {how}, with its strategy {title}"
        )

    def notes(self, facts: LoopFacts) -> Iterable[str]:
        calls = [use for use in facts.uses if use.form.kind is Kind.INVOKE]
        seeds = any(use.form.detail.endswith("seed") for use in calls)
        for use in calls:
            name, line, text = use.name, use.line, use.source
            parts = use.form.detail.split(".")
            global_draw = (name in self.random_modules and (len(parts) == 2 or parts[1:2] == ["random"])) or (
                name in self.random_functions and len(parts) == 1
            )
            if global_draw and not seeds and parts[-1] in RANDOM_FUNCTIONS:
                yield (
                    f"line {line}: {text} draws from the global random generator: the loop runs "
                    "sequentially (with a ParaLoopWarning), or is refused when a parallel backend is "
                    "asked for; give each iteration a generator of its own (see troubleshooting)"
                )
                return


_NOTHING: Any = object()


@dataclass(frozen=True)
class _DeclaredVariable:
    """A Variable whose value or strategy the source does not let us build."""

    spelled: str
    strategy: strategies.AggregationStrategy | None


def _strategy_of(node: ast.expr | None) -> strategies.AggregationStrategy | None:
    """The built-in strategy ``node`` names (``Sum``, ``s.Sum``, ``Sum(exact=False)``), or None."""
    if node is None:
        return strategies.Last()
    call = node if isinstance(node, ast.Call) else None
    named = call.func if call is not None else node
    spelled = (
        named.id if isinstance(named, ast.Name) else named.attr if isinstance(named, ast.Attribute) else ""
    )
    kind = getattr(strategies, spelled, None)
    if not (
        isinstance(kind, type) and issubclass(kind, strategies.AggregationStrategy)
    ) or spelled.startswith("_"):
        return None
    try:
        args = [ast.literal_eval(a) for a in call.args] if call is not None else []
        kwargs = (
            {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg} if call is not None else {}
        )
        return kind(*args, **kwargs)
    except (ValueError, TypeError, SyntaxError):
        return None


def _strategy_name(strategy: strategies.AggregationStrategy) -> str:
    name = type(strategy).__name__
    if isinstance(strategy, strategies.Reduce):
        return f"Reduce({getattr(strategy.function, '__name__', '?')})"
    if isinstance(strategy, strategies.PerIndex):
        return f"PerIndex({strategy.operation})"
    return name


def _numpy_array() -> Any:
    if importlib.util.find_spec("numpy") is None:
        return _NOTHING
    import numpy

    return numpy.zeros(1)


def _samples() -> list[tuple[str, Any]]:
    """A value of each type whose strategies are built in."""
    values: dict[str, Any] = {
        "int": 0, "float": 0.0, "complex": 0j, "bool": False, "str": "", "bytes": b"", "tuple": (),
        "list": [], "bytearray": bytearray(), "deque": deque(), "set": set(), "frozenset": frozenset(),
        "dict": {}, "Counter": Counter(), "defaultdict": defaultdict(list),
    }  # fmt: skip
    array = _numpy_array()
    if array is not _NOTHING:
        values["ndarray"] = array
    return [(kind, values[kind]) for kind in _TYPE_ORDER if kind in values]


def _parameters(function: ast.AST) -> set[str]:
    arguments = getattr(function, "args", None)
    if not isinstance(arguments, ast.arguments):
        return set()
    every = [
        *arguments.posonlyargs,
        *arguments.args,
        *arguments.kwonlyargs,
        arguments.vararg,
        arguments.kwarg,
    ]
    return {argument.arg for argument in every if argument is not None}


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _first_lines(loop: ast.For) -> dict[str, int]:
    """The first line of the loop (its target, then its body) that mentions each name."""
    first: dict[str, int] = {}
    for node in [loop.target, *loop.body]:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                first[inner.id] = min(first.get(inner.id, inner.lineno), inner.lineno)
    return first


def _distinct(uses: list[Use]) -> list[Use]:
    seen: set[tuple[int, str]] = set()
    found = []
    for use in uses:
        if (use.line, use.source) not in seen:
            seen.add((use.line, use.source))
            found.append(use)
    return found
