"""Turns each ``for ... in ParaLoop(...)`` loop of a module into a worker function.

For a loop ::

    for i in ParaLoop(range(100)):
        counter += i

the rewriter emits, in the loop's place, a function that runs the loop body
over one chunk of items, and a call into :mod:`paraloop.runtime` that feeds it
the chunks, combines the results and rebinds the names the body bound::

    def __paraloop_body_1__(__paraloop_chunk__, counter):
        ...
        for i in __paraloop_it__:
            counter += i
        ...
    __paraloop_r1__ = __paraloop_rt__.run(ParaLoop(range(100)), __paraloop_body_1__, None,
                                          __paraloop_plan_1__)
    if 'i' in __paraloop_r1__.bound:
        i = __paraloop_r1__.bound['i']

What the rewriter found about the loop (the names it captures and binds, how the
body uses each name from outside it) is one :class:`~paraloop.plan.LoopPlan`, spelled
as a tuple of constants after the import of the runtime at the top of the module (the
compiler folds it into one constant, so importing the module builds nothing; the
runtime reads it into a ``LoopPlan`` when the loop first runs, see
:func:`paraloop.plan.read`)::

    import paraloop.runtime as __paraloop_rt__
    __paraloop_plan_1__ = (1, '<module>', 'for', (), ('counter', 'i'), (), (), (...))

The body's statements are moved, not copied, so every line keeps its place in
the user's file; generated statements carry the line of the ``for`` (the import
and the plans, the line of the module's first statement).  All
generated names start with ``__paraloop`` and end with ``__`` (so class bodies
do not mangle them); user code may not use such names.
"""

from __future__ import annotations

import ast
import copy
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .._version import REWRITER_VERSION
from ..errors import UnsupportedLoopError
from ..plan import Kind, Use
from .flow import read_before_assigned
from .names import block_names, function_locals, module_bound, own_stores
from .uses import Site, analyse

__all__ = ["RESERVED_PREFIX", "REWRITER_VERSION", "LoopFacts", "rewrite", "show"]

# REWRITER_VERSION (in paraloop/_version.py, so the cache need not import this module) is
# bumped on any change to the generated code.
RESERVED_PREFIX = "__paraloop"
RUNTIME = "__paraloop_rt__"
PLAN_PREFIX = "__paraloop_plan_"

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

_WORKER_TEMPLATE = """
def {worker}(__paraloop_chunk__{params}):
    __paraloop_it__ = iter(__paraloop_chunk__)
    try:
        for __paraloop_target__ in __paraloop_it__:
            pass
        else:
            return ({rt}.DONE, None, __paraloop_it__, locals())
    except BaseException as __paraloop_exc__:
        return ({rt}.RAISED, __paraloop_exc__, __paraloop_it__, locals())
    return ({rt}.BROKE, None, __paraloop_it__, locals())
"""


_COMPREHENSION_TEMPLATE = """
def {worker}(__paraloop_chunk__{params}):
    __paraloop_it__ = iter(__paraloop_chunk__)
    try:
        __paraloop_out__ = None
    except BaseException as __paraloop_exc__:
        return ({rt}.RAISED, __paraloop_exc__, __paraloop_it__, {{}})
    return ({rt}.DONE, __paraloop_out__, __paraloop_it__, {{}})
"""

_COMPREHENSION_KINDS = {
    ast.ListComp: "list",
    ast.SetComp: "set",
    ast.DictComp: "dict",
    ast.GeneratorExp: "generator",
}


def _own_fields(statement: ast.stmt) -> list[str]:
    """The fields of a statement evaluated where the statement stands (not its blocks)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return ["decorator_list", "args", "returns"]
    if isinstance(statement, ast.ClassDef):
        return ["decorator_list", "bases", "keywords"]
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return ["iter"]
    if isinstance(statement, (ast.While, ast.If)):
        return ["test"]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return ["items"]
    if isinstance(statement, ast.Match):
        return ["subject"]
    if isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
        return []
    return list(statement._fields)


class _Hoister(ast.NodeTransformer):
    """Replaces comprehensions over ParaLoop in one statement's own expressions."""

    def __init__(self, rewriter: _Rewriter, scopes: list[ast.AST]) -> None:
        self.rewriter = rewriter
        self.scopes = scopes
        self.definitions: list[ast.stmt] = []

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node  # a scope of its own: left to the leftover check

    def _comprehension(self, node: ast.expr) -> ast.AST:
        assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        first = node.generators[0]
        if self.rewriter.paraloop.matches(first.iter):
            return self.rewriter.comprehension(node, self.scopes, self.definitions)
        # Only the first iterable is evaluated in this scope.
        first.iter = self.visit(first.iter)
        return node

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension


@dataclass(frozen=True)
class LoopFacts:
    """What the rewriter decided about the names of one ParaLoop loop or comprehension.

    Collected only when :attr:`_Rewriter.decisions` is a list (:mod:`paraloop.explain`
    reports them); the rewrite itself never reads them.
    """

    node: ast.AST  # the for statement, or the comprehension
    kind: str  # "for", or the comprehension's kind: "list", "set", "dict", "generator"
    scope: str  # the function (or "<module>") the loop is written in
    targets: tuple[str, ...]  # names the loop target binds
    captured: tuple[str, ...]  # names from around the loop that the worker receives
    stored: tuple[str, ...] = ()  # names the body binds
    early: frozenset[str] = frozenset()  # names some iteration reads before assigning them
    after: tuple[str, ...] = ()  # of ``stored``, those code after the loop may read
    wrapped: tuple[str, ...] = ()  # names the body uses as Variables (``v.value``)
    uses: tuple[Use, ...] = ()  # each use of an outer name, with its form (hook.uses)


@dataclass
class _ParaLoopNames:
    """How this module can spell ``ParaLoop``."""

    functions: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)

    def matches(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in self.functions
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "ParaLoop"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.modules
        )


def _paraloop_names(tree: ast.Module) -> _ParaLoopNames:
    names = _ParaLoopNames()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "paraloop" and not node.level:
            for alias in node.names:
                if alias.name == "ParaLoop":
                    names.functions.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "paraloop":
                    names.modules.add(alias.asname or "paraloop")
                elif alias.name.startswith("paraloop.") and alias.asname is None:
                    names.modules.add("paraloop")
    return names


def _refuse(message: str, node: ast.AST, filename: str, lines: list[str]) -> UnsupportedLoopError:
    lineno = getattr(node, "lineno", 1)
    text = lines[lineno - 1] if 0 < lineno <= len(lines) else None
    offset = getattr(node, "col_offset", 0) + 1
    end_lineno = getattr(node, "end_lineno", None)
    end_offset = getattr(node, "end_col_offset", None)
    if end_lineno != lineno or end_offset is None:
        end_lineno = end_offset = None
    else:
        end_offset += 1
    details = (filename, lineno, offset, text, end_lineno, end_offset)
    return UnsupportedLoopError(message, details)


def _place(nodes: Iterable[ast.AST], where: ast.AST) -> None:
    """Give generated nodes the location of ``where`` (for a loop: its ``ParaLoop(...)`` call).

    A traceback through generated code then shows the user's loop line with
    the carets under ``ParaLoop(...)``.
    """
    lineno: int = where.lineno  # type: ignore[attr-defined]
    col: int = where.col_offset  # type: ignore[attr-defined]
    end_lineno = getattr(where, "end_lineno", None)
    end_col = getattr(where, "end_col_offset", None)
    if end_lineno != lineno or end_col is None:
        end_lineno, end_col = lineno, col
    for node in nodes:
        for child in ast.walk(node):
            if "lineno" in child._attributes:
                child.lineno = lineno  # type: ignore[attr-defined]
                child.col_offset = col  # type: ignore[attr-defined]
                child.end_lineno = end_lineno  # type: ignore[attr-defined]
                child.end_col_offset = end_col  # type: ignore[attr-defined]


def _parse_statements(source: str, where: ast.AST) -> list[ast.stmt]:
    statements = ast.parse(source).body
    _place(statements, where)
    return statements


def _with_unbound_prologue(source: str, params: list[str]) -> str:
    """Names unbound when the loop started are unbound in the worker too (not a sentinel)."""
    unbound = "".join(f"    if {p} is {RUNTIME}.UNBOUND:\n        del {p}\n" for p in params)
    return source.replace("    __paraloop_it__ =", unbound + "    __paraloop_it__ =", 1)


def _mangler(scopes: list[ast.AST]) -> Callable[[str], str]:
    """How the compiler spells a name inside the innermost enclosing class (``__x`` -> ``_C__x``)."""
    classes = [s for s in scopes if isinstance(s, ast.ClassDef)]
    stripped = classes[-1].name.lstrip("_") if classes else ""

    def mangle(name: str) -> str:
        if stripped and name.startswith("__") and not name.endswith("__"):
            return f"_{stripped}{name}"
        return name

    return mangle


def _method_self(scopes: list[ast.AST]) -> str | None:
    """The first parameter of a method the loop is directly in, for ``super()``."""
    if len(scopes) >= 2 and isinstance(scopes[-1], _FUNCTIONS) and isinstance(scopes[-2], ast.ClassDef):
        arguments = scopes[-1].args
        positional = [*arguments.posonlyargs, *arguments.args]
        if positional:
            return positional[0].arg
    return None


def _explicit_super(body: list[ast.stmt], first: str) -> None:
    """``super()`` in the body becomes ``super(__class__, self)``: the worker has no ``self`` first."""
    for node in _same_scope_nodes(body):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "super"
            and not node.args
            and not node.keywords
        ):
            node.args = [
                ast.copy_location(ast.Name("__class__", ast.Load()), node),
                ast.copy_location(ast.Name(first, ast.Load()), node),
            ]


# Forms of a use that leave a name's value in an iteration the plain loop's: read, called on, or
# overwritten whole before use.  Any other is an accumulation (paraloop.frame_names.Accumulated).
_NOT_ACCUMULATED = frozenset({Kind.READ, Kind.OWN_READ, Kind.INVOKE, Kind.SCRATCH})

# Calls that read the caller's frame: locals(), vars(), dir() with no argument, eval() and exec()
# with no namespace.  The number of arguments each takes then.
_FRAME_READERS = {"locals": 0, "vars": 0, "dir": 0, "eval": 1, "exec": 1}
# Comprehensions a function's frame holds on this Python (PEP 709: 3.12 inlines list, set and
# dict comprehensions; a generator expression keeps a frame of its own).
_INLINED = (ast.ListComp, ast.SetComp, ast.DictComp) if sys.version_info >= (3, 12) else ()


def _frame_reader_calls(body: list[ast.stmt], skip: Callable[[ast.expr], bool]) -> list[ast.Call]:
    """The calls in ``body`` that read the frame they run in (see :data:`_FRAME_READERS`): not
    inside a nested function, class, lambda or a comprehension with a frame of its own, nor
    inside a nested ParaLoop loop (its own worker's)."""
    found = []
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and _reads_the_frame(node):
            found.append(node)
        if isinstance(node, _NESTED_SCOPES) or (isinstance(node, ast.For) and skip(node.iter)):
            continue
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)) and not isinstance(
            node, _INLINED
        ):
            # Its first iterable is evaluated in the frame around it.
            stack.append(node.generators[0].iter)
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return found


def _reads_the_frame(call: ast.Call) -> bool:
    """``locals()``, ``vars()``, ``dir()``; ``eval(src)``, ``exec(src)`` and the same with None for
    the namespaces, by position or (3.13) by keyword (``eval(src, None)``: Python's own default)."""
    wanted = _FRAME_READERS.get(call.func.id)  # type: ignore[attr-defined]
    if wanted is None or any(isinstance(arg, ast.Starred) for arg in call.args):
        return False
    if not wanted:
        return not call.args and not call.keywords
    if any(keyword.arg not in ("globals", "locals") for keyword in call.keywords):
        return False
    namespaces = [*call.args[1:], *(keyword.value for keyword in call.keywords)]
    return (
        1 <= len(call.args)
        and len(namespaces) <= 2
        and all(isinstance(arg, ast.Constant) and arg.value is None for arg in namespaces)
    )


def _outer_nonlocals(
    target: ast.expr, body: list[ast.stmt], outside: set[str]
) -> tuple[ast.Nonlocal, str] | None:
    """A ``nonlocal`` of a function defined in ``body`` (a loop's) naming a variable that may hold,
    when the function runs, a value from outside the iteration: one the body does not bind (nor
    the functions between), or one bound outside the loop too (``outside``) that no assignment
    on the way to the function's statement binds (``n = 0`` earlier in its block or a block
    around it, in the body), as in the plain loop an earlier iteration's value would be."""

    def in_function(
        node: ast.FunctionDef | ast.AsyncFunctionDef, bound: set[str]
    ) -> tuple[ast.Nonlocal, str] | None:
        for inner in _same_scope_nodes(node.body):
            if isinstance(inner, ast.Nonlocal):
                escaping = [name for name in inner.names if name not in bound]
                if escaping:
                    return inner, escaping[0]
        return in_block(node.body, bound | function_locals(node, block_names(node.body)))

    def in_block(statements: list[ast.stmt], bound: set[str]) -> tuple[ast.Nonlocal, str] | None:
        bound = set(bound)
        for statement in statements:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found = in_function(statement, bound)
                if found is not None:
                    return found
                bound.add(statement.name)
                continue
            if isinstance(statement, ast.ClassDef):
                found = in_block(statement.body, bound)
                if found is not None:
                    return found
                bound.add(statement.name)
                continue
            blocks = [getattr(statement, name, None) for name in ("body", "orelse", "finalbody")]
            blocks += [handler.body for handler in getattr(statement, "handlers", ())]
            blocks += [case.body for case in getattr(statement, "cases", ())]
            for block in blocks:
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    found = in_block(block, bound)
                    if found is not None:
                        return found
            # A with-statement's block runs whole on the way past it (or the iteration ends).
            bound |= _assigned(
                statement.body if isinstance(statement, (ast.With, ast.AsyncWith)) else [statement]
            )
        return None

    targets = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return in_block(body, targets | (own_stores(body) - outside))


def _assigned(statements: list[ast.stmt]) -> set[str]:
    """Names plain assignments among ``statements`` (at their own level) bind."""
    names: set[str] = set()
    for statement in statements:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            for assigned in statement.targets if isinstance(statement, ast.Assign) else [statement.target]:
                names |= {n.id for n in ast.walk(assigned) if isinstance(n, ast.Name)}
    return names


def _accumulated(uses: Iterable[Use]) -> tuple[str, ...]:
    """The names the loop accumulates (paraloop.frame_names.Accumulated stands for them)."""
    return tuple(sorted({use.name for use in uses if use.form.kind not in _NOT_ACCUMULATED}))


def _bare_globals(node: ast.AST) -> bool:
    """Whether ``node`` is a call ``globals()`` (of whatever the name stands for)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "globals"
        and not node.args
    )


def _read_frame(call: ast.Call, arguments: str) -> None:
    """Make ``call`` (``locals()``, ``vars()``, ``dir()``, ``eval(src)``, ``exec(src)``) read
    ``frame_names(arguments)`` instead of the frame it runs in."""
    spelled = call.func.id  # type: ignore[attr-defined]
    names = ast.parse(f"{RUNTIME}.frame_names({arguments})", mode="eval").body
    _place([names], call)
    assert isinstance(names, ast.Call)
    if spelled in ("locals", "vars"):
        call.func, call.args = names.func, names.args
    elif spelled == "dir":
        # dir() lists a function's names sorted.
        call.func = ast.copy_location(
            ast.Attribute(ast.Name(RUNTIME, ast.Load()), "sorted_names", ast.Load()), call
        )
        call.args = [names]
    else:
        # eval(src) and exec(src): the worker's globals (None: the current ones), the plain
        # frame's names.
        call.args = [call.args[0], ast.copy_location(ast.Constant(None), call), names]
        call.keywords = []
    ast.fix_missing_locations(call)


def _frame_order(function: ast.FunctionDef | ast.AsyncFunctionDef, outer: Iterable[str]) -> tuple[str, ...]:
    """The function's variables in the order its frame's ``locals()`` lists them: compiled
    (inside a function binding the names of the functions around it, its free variables), its
    arguments and locals, then its cells and free variables.  Empty if it does not compile
    alone."""
    holder = "def __paraloop_order__():\n"
    holder += "".join(f"    {name} = None\n" for name in sorted(outer))
    plain = copy.copy(function)
    plain.decorator_list = []
    holder += textwrap.indent(ast.unparse(plain), "    ")
    try:
        module = compile(holder, "<paraloop frame order>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return ()
    codes = [c for c in module.co_consts if hasattr(c, "co_consts")]
    inner = [c for code in codes for c in code.co_consts if getattr(c, "co_name", None) == function.name]
    if not inner:
        return ()
    code = inner[0]
    cells = [name for name in code.co_cellvars if name not in code.co_varnames]
    return (*code.co_varnames, *cells, *code.co_freevars)


def _same_scope_nodes(
    body: list[ast.stmt], skip: Callable[[ast.expr], bool] | None = None
) -> Iterable[ast.AST]:
    """The nodes of ``body`` outside nested scopes (and, with ``skip``, outside loops whose
    iterable ``skip`` accepts: a nested ParaLoop loop's returns belong to its own worker)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _NESTED_SCOPES):
            continue
        if skip is not None and isinstance(node, ast.For) and skip(node.iter):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


_ITERABLE_WRAPPERS = {"enumerate", "zip", "reversed", "sorted", "list", "tuple", "iter", "filter", "map"}


def _wrapping_call(node: ast.AST, matches: Callable[[ast.expr], bool]) -> ast.Call | None:
    """``enumerate(ParaLoop(xs))`` and the like: a ParaLoop handed to a built-in iterable wrapper."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _ITERABLE_WRAPPERS
        and node.args
        and matches(node.args[0])
        and getattr(node.args[0], "args", None)
    ):
        return node
    return None


def _log_name(name: str) -> str:
    """The worker parameter through which a chunk records the updates of ``name``."""
    return f"{RESERVED_PREFIX}_log_{name}__"


def _plan_number(name: str) -> int:
    """N for the name of a loop's plan, ``__paraloop_plan_N__``; 0 for any other name."""
    digits = name[len(PLAN_PREFIX) : -2]
    if name.startswith(PLAN_PREFIX) and name.endswith("__") and digits.isdigit():
        return int(digits)
    return 0


def _use_source(use: Use) -> str:
    """Source of the constant that :func:`paraloop.plan.read` reads back into ``use``."""
    return f"({use.name!r}, {use.line}, {use.form.kind.value!r}, {use.form.detail!r}, {use.source!r})"


def _key_expression(key: ast.expr) -> ast.expr:
    """An index as a value: ``a[1:3]`` records ``slice(1, 3, None)``."""
    if isinstance(key, ast.Slice):
        parts = [
            copy.deepcopy(p) if p is not None else ast.Constant(None)
            for p in (key.lower, key.upper, key.step)
        ]
        call = ast.Call(func=ast.Name("slice", ast.Load()), args=parts, keywords=[])
        return ast.copy_location(call, key)
    if isinstance(key, ast.Tuple):
        return ast.copy_location(ast.Tuple([_key_expression(e) for e in key.elts], ast.Load()), key)
    return copy.deepcopy(key)


class _SiteRewriter(ast.NodeTransformer):
    """Replaces each update site ``S`` of a loop body by
    ``if LOG is None: S`` / ``else: LOG.put(x)``, in place, with S's location."""

    def __init__(self, sites: Mapping[int, Site], mangle: Callable[[str], str]) -> None:
        self.sites = sites
        self.mangle = mangle

    def visit_block(self, body: list[ast.stmt]) -> None:
        rewritten: list[ast.stmt] = []
        for statement in body:
            result = self.visit(statement)
            rewritten.extend(result if isinstance(result, list) else [result])
        body[:] = rewritten

    def visit(self, node: ast.AST) -> Any:
        site = self.sites.get(id(node))
        if site is not None:
            return self.recorded(site)
        if isinstance(node, _NESTED_SCOPES):
            return node
        return self.generic_visit(node)

    def recorded(self, site: Site) -> ast.stmt | list[ast.stmt]:
        statement = site.statement
        log = _log_name(self.mangle(site.name))
        if site.touch:
            # buffer[:] = row, then: this chunk wrote the buffer.
            (note,) = ast.parse(f"if {log} is not None:\n    {log}.append(None)\n").body
            for node in ast.walk(note):
                if "lineno" in node._attributes:
                    ast.copy_location(node, statement)
            return [statement, note]
        calls: list[ast.stmt] = []
        for operand, inverse in site.contributions:
            if site.key is None:
                method = "put_inverse" if inverse else "append"
            else:
                method = "put_at_inverse" if inverse else "put_at"
            arguments = [copy.deepcopy(operand)]
            if site.key is not None:
                arguments.insert(0, _key_expression(site.key))
            call = ast.Call(
                func=ast.Attribute(ast.Name(log, ast.Load()), method, ast.Load()),
                args=arguments,
                keywords=[],
            )
            calls.append(ast.Expr(call))
        test = ast.Compare(ast.Name(log, ast.Load()), [ast.Is()], [ast.Constant(None)])
        choice = ast.If(test=test, body=[statement], orelse=calls)
        for node in ast.walk(choice):
            if "lineno" in node._attributes and not hasattr(node, "lineno"):
                ast.copy_location(node, statement)
        return choice


class _Rewriter:
    def __init__(
        self,
        tree: ast.Module,
        filename: str,
        source_lines: list[str],
        namespace: Mapping[str, object] | None = None,
    ) -> None:
        self.tree = tree
        self.filename = filename
        self.lines = source_lines
        self.paraloop = _paraloop_names(tree)
        # An interactive namespace (IPython) holds what earlier cells bound.
        self.namespace_names: set[str] = set(namespace or ())
        for name, value in (namespace or {}).items():
            if (
                getattr(value, "__module__", None) == "paraloop.loop"
                and getattr(value, "__name__", "") == "ParaLoop"
            ):
                self.paraloop.functions.add(name)
            elif getattr(value, "__name__", None) == "paraloop" and isinstance(value, ModuleType):
                self.paraloop.modules.add(name)
        self.count = 0
        # An interactive namespace keeps the plans of earlier cells, which their functions
        # still read: this source's loops are numbered after them.
        self.first = max(map(_plan_number, self.namespace_names), default=0)
        # The statements that build each loop's plan, by loop number; they run once, when the
        # module is imported.
        self.plans: dict[int, str] = {}
        self.consumed: set[int] = set()
        self._module_bound: set[str] | None = None
        self._tree_bound: set[str] | None = None
        self.scope_names: dict[str, str] = {}
        # global/nonlocal statements lifted out of loop bodies, per enclosing scope.
        self.declarations: dict[int, list[ast.stmt]] = {}
        # What was decided per loop, when asked for (paraloop.explain).
        self.decisions: list[LoopFacts] | None = None

    def refuse(self, message: str, node: ast.AST) -> UnsupportedLoopError:
        return _refuse(message, node, self.filename, self.lines)

    @property
    def module_bound(self) -> set[str]:
        """Names bound at module level, in this source or (IPython) by earlier cells."""
        if self._module_bound is None:
            self._module_bound = self.tree_bound | self.namespace_names
        return self._module_bound

    @property
    def tree_bound(self) -> set[str]:
        """Names this source binds at module level; walked once per module, not per loop."""
        if self._tree_bound is None:
            self._tree_bound = module_bound(self.tree)
        return self._tree_bound

    # Walking the tree.
    def block(self, body: list[ast.stmt], scopes: list[ast.AST]) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for statement in body:
            if isinstance(statement, ast.For) and self.paraloop.matches(statement.iter):
                result.extend(self.loop(statement, scopes))
                continue
            if isinstance(statement, ast.AsyncFor) and self.paraloop.matches(statement.iter):
                raise self.refuse(
                    "'async for' over ParaLoop is not supported; use a plain 'for' loop "
                    "(the iterations run in worker processes, not on the event loop)",
                    statement,
                )
            definitions = self.hoist_comprehensions(statement, scopes)
            result.extend(definitions)
            self.inner_blocks(statement, scopes)
            result.append(statement)
            # No del after a bare expression at the top of a module: IPython shows a cell's last
            # expression.  In a function the workers go too: locals() (json.dumps(locals()),
            # render(**locals())) shows the plain function's names only.
            in_function = isinstance(scopes[-1] if scopes else None, _FUNCTIONS)
            keep_last = isinstance(statement, ast.Expr) and not in_function
            # After a return or a raise, a del would never run.
            if definitions and not keep_last and not isinstance(statement, (ast.Return, ast.Raise)):
                names = ", ".join(d.name for d in definitions if isinstance(d, ast.FunctionDef))
                result.extend(_parse_statements(f"del {names}\n", statement))
        return result

    def hoist_declarations(self, loop: ast.For, innermost: ast.AST | None) -> None:
        """Move ``global``/``nonlocal`` out of the body to the top of the enclosing scope.

        In Python such a declaration applies to the whole function (or class
        body) it stands in, so moving it changes nothing for the user's code;
        the worker then receives the name like any other, and the code after
        the loop assigns the global (or nonlocal) name.  At module level the
        declaration means nothing and is dropped.
        """
        for node in _same_scope_nodes(loop.body):
            if isinstance(node, _NESTED_SCOPES):
                continue  # a function defined in the body keeps its own declarations
            for block_name in ("body", "orelse", "finalbody"):
                block = getattr(node, block_name, None)
                if isinstance(block, list):
                    block[:] = [self.lift(s, innermost) for s in block]
            for handler in getattr(node, "handlers", ()):
                handler.body[:] = [self.lift(s, innermost) for s in handler.body]
        loop.body[:] = [self.lift(s, innermost) for s in loop.body]

    def lift(self, statement: ast.stmt, innermost: ast.AST | None) -> ast.stmt:
        if not isinstance(statement, (ast.Global, ast.Nonlocal)):
            return statement
        if innermost is not None:
            self.declarations.setdefault(id(innermost), []).append(statement)
        return ast.copy_location(ast.Pass(), statement)

    def hoist_comprehensions(self, statement: ast.stmt, scopes: list[ast.AST]) -> list[ast.stmt]:
        """Rewrite the ParaLoop comprehensions ``statement`` evaluates; return their workers."""
        hoister = _Hoister(self, scopes)
        for name in _own_fields(statement):
            value = getattr(statement, name, None)
            if isinstance(value, list):
                setattr(statement, name, [hoister.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(statement, name, hoister.visit(value))
        return hoister.definitions

    def comprehension(self, node: ast.expr, scopes: list[ast.AST], definitions: list[ast.stmt]) -> ast.expr:
        """A comprehension over ParaLoop: a worker builds it over one chunk; the runtime joins them."""
        assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Yield, ast.YieldFrom, ast.Await)) or (
                isinstance(inner, ast.comprehension) and inner.is_async
            ):
                raise self.refuse(
                    "a comprehension over ParaLoop cannot 'yield', 'await' or 'async for'", inner
                )
            if isinstance(inner, ast.NamedExpr):
                raise self.refuse(
                    "an assignment expression (:=) in a comprehension over ParaLoop is not "
                    "supported; write the loop as a for statement",
                    inner,
                )
        self.count += 1
        number = self.first + self.count
        worker = f"__paraloop_body_{number}__"
        first = node.generators[0]
        self.consumed.add(id(first.iter))
        chunk_iterator = ast.copy_location(ast.Name(id="__paraloop_it__", ctx=ast.Load()), first.iter)
        generators = [
            ast.comprehension(target=first.target, iter=chunk_iterator, ifs=first.ifs, is_async=0),
            *node.generators[1:],
        ]
        per_chunk: ast.expr
        if isinstance(node, ast.DictComp):
            per_chunk = ast.DictComp(key=node.key, value=node.value, generators=generators)
        elif isinstance(node, ast.SetComp):
            # A dict of the chunk's elements in the order they came: the caller adds them in that
            # order, as the plain comprehension did (a set's iteration order follows the order of
            # its additions; chunks' sets united gave another order).
            nothing = ast.copy_location(ast.Constant(value=None), node.elt)
            per_chunk = ast.DictComp(key=node.elt, value=nothing, generators=generators)
        else:
            # A generator expression's chunks are built as lists and yielded lazily.
            per_chunk = ast.ListComp(elt=node.elt, generators=generators)
        ast.copy_location(per_chunk, node)
        innermost = scopes[-1] if scopes else None
        frame_calls: list[ast.Call] = []
        seen: set[str] = set()
        self.refuse_globals([ast.Expr(per_chunk)], lambda: self.module_bound)
        if (
            isinstance(node, _INLINED)
            and not isinstance(innermost, _FUNCTIONS)
            and sys.version_info[:2] == (3, 12)
        ):
            # 3.12: at the top of a module or class body, locals() there is its whole namespace (3.13
            # shows the comprehension's own names there again, PEP 667).
            found = _frame_reader_calls([ast.Expr(per_chunk)], self.paraloop.matches)
            self.refuse_top_level_frame([c for c in found if c.func.id not in self.module_bound], innermost)  # type: ignore[attr-defined]
        if (
            isinstance(node, _INLINED)
            and isinstance(innermost, _FUNCTIONS)
            and not innermost.name.startswith(RESERVED_PREFIX)
        ):
            # Python 3.12+ runs a list, set or dict comprehension in its function's frame: super()
            # and what reads the frame (eval("k * x")) see the function's.
            method_self = _method_self(scopes)
            if method_self is not None:
                _explicit_super([ast.Expr(per_chunk)], method_self)
            shadowed = self.module_bound | self.function_names(innermost, scopes)
            frame_calls = [
                call
                for call in _frame_reader_calls([ast.Expr(per_chunk)], self.paraloop.matches)
                if call.func.id not in shadowed  # type: ignore[attr-defined]
            ]
        reads = {n for n in block_names([ast.Expr(per_chunk)]).loads if not n.startswith(RESERVED_PREFIX)}
        if frame_calls:
            assert isinstance(innermost, _FUNCTIONS)
            iteration_names = {
                n.id for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
            }
            seen = self.function_names(innermost, scopes) - iteration_names - reads
            reads |= seen
        params, local, free = self.captured(reads, set(), scopes, class_visible=False)
        if frame_calls:
            assert isinstance(innermost, _FUNCTIONS)
            hidden = set(params) - set(local) - set(free)
            self.read_frame_names(frame_calls, innermost, scopes, (), first.iter, hidden)
        name = self.scope_name(worker, scopes)
        if self.decisions is not None:
            targets = tuple(sorted(n.id for n in ast.walk(first.target) if isinstance(n, ast.Name)))
            kind = _COMPREHENSION_KINDS[type(node)]
            self.decisions.append(LoopFacts(node, kind, name, targets, tuple(params)))
        source = _COMPREHENSION_TEMPLATE.format(
            worker=worker, params="".join(f", {p}" for p in params), rt=RUNTIME
        )
        (definition,) = _parse_statements(_with_unbound_prologue(source, params), first.iter)
        assert isinstance(definition, ast.FunctionDef)
        assignment = next(
            n
            for n in ast.walk(definition)
            if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__paraloop_out__"
        )
        assignment.value = per_chunk
        definitions.append(definition)
        kind = _COMPREHENSION_KINDS[type(node)]
        in_class_body = bool(scopes) and isinstance(scopes[-1], ast.ClassDef)
        mangle = _mangler(scopes)
        # The functions' variables (the scope's readers cover them): unbound, NameError where read.
        plan = self.plan(
            number,
            line=first.iter.lineno,
            name=name,
            kind=kind,
            local=tuple(map(mangle, local + free)),
            seen=tuple(mangle(name) for name in sorted(seen) if name in params),
        )
        if in_class_body:
            # The variables of the functions around the class, if any (not the class's names).
            scope = self.live_names(free, mangle) if free else "None"
        elif kind == "generator" and isinstance(scopes[-1] if scopes else None, _FUNCTIONS):
            # A generator expression reads the function's names as each item is computed, not as
            # it is made: the runtime reads them through these (see paraloop.live_names).
            scope = self.live_names(local + free, mangle)
        else:
            scope = self.scope_argument(free, scopes, local)
        call = ast.parse(
            f"{RUNTIME}.comprehension(__paraloop_loop__, {worker}, {scope}, {plan})",
            mode="eval",
        ).body
        _place([call], first.iter)
        assert isinstance(call, ast.Call)
        call.args[0] = first.iter
        # The runtime hands back what builds the value here, in the program's frame, where an
        # error shows as the plain comprehension's does (see runtime.comprehension).
        built: ast.expr = ast.copy_location(ast.Call(func=call, args=[], keywords=[]), call)
        if kind == "generator":
            # A generator of the program's own, as the one it replaces: close(), send(), gi_frame.
            item = "__paraloop_item__"
            built = ast.copy_location(
                ast.GeneratorExp(
                    elt=ast.copy_location(ast.Name(id=item, ctx=ast.Load()), node),
                    generators=[
                        ast.comprehension(
                            target=ast.copy_location(ast.Name(id=item, ctx=ast.Store()), node),
                            iter=built,
                            ifs=[],
                            is_async=0,
                        )
                    ],
                ),
                node,
            )
        return built

    def inner_blocks(self, statement: ast.stmt, scopes: list[ast.AST]) -> None:
        inner_scopes = [*scopes, statement] if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)) else scopes
        count = self.count
        user_function = isinstance(statement, _FUNCTIONS) and not statement.name.startswith(RESERVED_PREFIX)
        # The function's own calls, found before the code made for its loops joins them.
        frame_calls = _frame_reader_calls(statement.body, self.paraloop.matches) if user_function else []  # type: ignore[attr-defined]
        for name in ("body", "orelse", "finalbody"):
            block = getattr(statement, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(statement, name, self.block(block, inner_scopes))
        if self.count != count and frame_calls:
            assert isinstance(statement, _FUNCTIONS)
            self.plain_frame(frame_calls, statement, inner_scopes)
        lifted = self.declarations.pop(id(statement), None)
        if lifted:
            statement.body[:0] = lifted  # type: ignore[attr-defined]
        for handler in getattr(statement, "handlers", ()):
            handler.body = self.block(handler.body, scopes)
        for case in getattr(statement, "cases", ()):
            case.body = self.block(case.body, scopes)

    # One loop.
    def check_body(self, loop: ast.For, in_function: bool, scopes: list[ast.AST]) -> None:
        for node in ast.walk(loop.target):
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                raise self.refuse(
                    "the target of a ParaLoop loop must be a name or a tuple of names: "
                    f"'{ast.unparse(node)}' would be assigned in the workers only. Loop over "
                    f"a name (for item in ParaLoop(...)) and assign {ast.unparse(node)} = item after "
                    "the loop, where item holds the last iteration's value",
                    node,
                )
        for node in _same_scope_nodes(loop.body):
            if isinstance(node, (ast.Yield, ast.YieldFrom)):
                raise self.refuse(
                    "a ParaLoop body cannot 'yield': its iterations run in other processes. "
                    "Collect the values in a list (or a Variable) and yield them after the loop",
                    node,
                )
            asynchronous = isinstance(node, (ast.Await, ast.AsyncWith, ast.AsyncFor)) or (
                isinstance(node, ast.comprehension) and node.is_async
            )
            if asynchronous:
                spelled = {ast.AsyncWith: "async with", ast.AsyncFor: "async for"}.get(type(node), "await")
                raise self.refuse(
                    f"a ParaLoop body cannot '{spelled}': its iterations run in worker processes, "
                    "not on the event loop. Call a plain function, or use asyncio.gather",
                    node,
                )
            if isinstance(node, ast.Return) and not in_function:
                raise self.refuse("'return' outside function", node)
        # (Most bodies define no function that declares nonlocal: the function is not walked for them.)
        declares = any(isinstance(n, ast.Nonlocal) for statement in loop.body for n in ast.walk(statement))
        escaping = (
            _outer_nonlocals(loop.target, loop.body, self.bound_outside(loop, scopes)) if declares else None
        )
        if escaping is not None:
            declaration, name = escaping
            raise self.refuse(
                f"a function defined in a ParaLoop body declares 'nonlocal {name}': it rebinds a "
                "variable of the function around the loop, of which iterations in worker processes "
                f"each have their own copy. Assign or update {name} in the body itself ({name} = "
                f"value, {name} += 1), which paraloop combines",
                declaration,
            )

    def captured(
        self, reads: set[str], binds: set[str], scopes: list[ast.AST], class_visible: bool = True
    ) -> tuple[list[str], list[str], list[str]]:
        """Which names read by generated code exist around it, and where.

        Returns the worker's parameters, those of them that are locals of the
        enclosing function, and those that are free variables from functions
        further out (the call passes them explicitly).
        """
        innermost = scopes[-1] if scopes else None
        local: list[str] = []
        free: list[str] = []
        params: list[str] = []
        if isinstance(innermost, (*_FUNCTIONS, ast.ClassDef)):
            mine: set[str] = set()  # the function's own variables
            direct: set[str] = set()  # names its own namespace holds
            if isinstance(innermost, ast.ClassDef):
                # A comprehension in a class body does not see the class's names; both see the
                # variables of the functions around the class (before the module's globals).
                direct = block_names(innermost.body).stores | binds if class_visible else set()
            else:
                enclosing = block_names(innermost.body)
                mine = (function_locals(innermost, enclosing) | binds) - enclosing.global_decls
                mine |= enclosing.nonlocal_decls
                direct = enclosing.global_decls & self.module_bound
            outer = self.outer_function_names(scopes[:-1])
            for name in sorted(reads):
                if name in mine:
                    local.append(name)
                    params.append(name)
                elif name in direct:
                    params.append(name)
                elif name in outer:
                    free.append(name)
                    params.append(name)
                elif name in self.module_bound:
                    params.append(name)
        else:
            params = [n for n in sorted(reads) if n in self.module_bound or n in binds]
        return params, local, free

    def scope_name(self, worker: str, scopes: list[ast.AST]) -> str:
        """The name tracebacks through ``worker`` show: the scope the code was written in."""
        innermost = scopes[-1] if scopes else None
        name: str = getattr(innermost, "name", "<module>")
        if name.startswith(RESERVED_PREFIX):
            name = self.scope_names.get(name, "<module>")
        self.scope_names[worker] = name
        return name

    @staticmethod
    def live_names(names: list[str], mangle: Callable[[str], str]) -> str:
        """Source of the readers of a function's ``names`` as they are when called: a tuple of
        (name, lambda) pairs, a lambda raising NameError while its name is unbound.  Each name as
        the compiler spells it in a class's method (``__x``: ``_C__x``), as the worker's
        parameters and locals() do."""
        pairs = "".join(f"({mangle(name)!r}, lambda: {name}), " for name in sorted(set(names)))
        return f"({pairs})"

    @staticmethod
    def scope_argument(free: list[str], scopes: list[ast.AST], local: Iterable[str] = ()) -> str:
        """Source of the mapping the runtime reads captured names from."""
        innermost = scopes[-1] if scopes else None
        if isinstance(innermost, _FUNCTIONS):
            if not local and not free:
                return "locals()"
            # The function's names as the loop begins, and the variables the body reads as they
            # are later: an iterator's code (a generator nested in the function, nonlocal) may
            # rebind one as it yields (see paraloop.iterable_watch).
            return f"{RUNTIME}.LiveScope(locals(), {_Rewriter.live_names([*local, *free], _mangler(scopes))})"
        if isinstance(innermost, ast.ClassDef):
            if free:
                # The class's names first, then the variables of the functions around it.
                return f"{RUNTIME}.LiveScope(locals(), {_Rewriter.live_names(free, _mangler(scopes))})"
            return "locals()"
        return "None"

    def loop(self, loop: ast.For, scopes: list[ast.AST]) -> list[ast.stmt]:
        self.count += 1
        number = self.first + self.count
        worker = f"__paraloop_body_{number}__"
        result = f"__paraloop_r{number}__"
        function = next((s for s in reversed(scopes) if isinstance(s, _FUNCTIONS)), None)
        innermost = scopes[-1] if scopes else None
        self.check_body(loop, function is not None, scopes)
        self.consumed.add(id(loop.iter))

        body = block_names([ast.Assign(targets=[loop.target], value=ast.Constant(None)), *loop.body])
        # The loop target is bound before anything in an iteration can read it.
        targets = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
        reads = {n for n in body.loads if not n.startswith(RESERVED_PREFIX)} - targets
        binds = sorted(n for n in body.stores if not n.startswith(RESERVED_PREFIX))
        # A name the body assigns before any read gets no pre-loop value: it
        # starts unbound in every chunk, so "bound in this chunk" is exact.
        early = read_before_assigned(loop.target, loop.body)
        reads -= {n for n in binds if n not in early}
        frame_calls = self.frame_readers(loop, scopes)
        seen: set[str] = set()
        if frame_calls:
            # locals(), eval("k * x")... read every variable of the function, not only those the
            # body spells out: the worker gets them all (paraloop.frame_names).
            assert isinstance(innermost, _FUNCTIONS)
            seen = self.function_names(innermost, scopes) - set(binds) - targets - reads
            reads |= seen

        params, local, free = self.captured(reads, set(binds), scopes)
        scope_name = self.scope_name(worker, scopes)
        self.hoist_declarations(loop, innermost)
        # Before the body is moved and its returns rewritten: errors quote the user's code.
        found, sites = analyse(loop.target, loop.body)
        uses = tuple(found)
        if frame_calls:
            assert isinstance(innermost, _FUNCTIONS)
            self.read_frame_names(
                frame_calls, innermost, scopes, uses, loop, set(params) - set(local) - set(free)
            )
        elif innermost is None:
            self.module_namespaces(loop, uses)
        # Inside a class, the compiler mangles __private names; the keys must match.
        mangle = _mangler(scopes)
        logs = self.update_sites(loop, sites, mangle)
        worker_def = self.worker(worker, params, loop, function is not None, _method_self(scopes), logs)

        scope = self.scope_argument(free, scopes, local)
        after = sorted(set(binds) & self.read_outside(loop, innermost))
        # Names the body treats as Variables (``v.value``) need the wrapper in the worker.
        wrapped = sorted(
            {
                node.value.id
                for node in _same_scope_nodes(loop.body)
                if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.attr in ("value", "aggregation_strategy")
            }
        )
        if self.decisions is not None:
            self.decisions.append(
                LoopFacts(
                    loop,
                    "for",
                    scope_name,
                    tuple(sorted(targets)),
                    tuple(params),
                    tuple(binds),
                    frozenset(early),
                    tuple(after),
                    tuple(wrapped),
                    uses,
                )
            )
        plan = self.plan(
            number,
            line=loop.lineno,
            name=scope_name,
            # The functions' variables (the scope's readers cover them): unbound, NameError where read.
            local=tuple(map(mangle, local + free)),
            stored=tuple(map(mangle, binds)),
            after=tuple(map(mangle, after)),
            wrapped=tuple(map(mangle, wrapped)),
            uses=tuple(Use(mangle(use.name), use.line, use.form, use.source) for use in uses),
            seen=tuple(mangle(name) for name in sorted(seen) if name in params),
        )
        call = f"{result} = {RUNTIME}.run(__paraloop_loop__, {worker}, {scope}, {plan})\n"
        for name in binds:
            key = mangle(name)
            call += f"if {key!r} in {result}.bound:\n    {name} = {result}.bound[{key!r}]\n"
        call += f"if {result}.error is not None:\n    raise {result}.error\n"
        if function is not None and any(isinstance(n, ast.Return) for n in _same_scope_nodes(loop.body)):
            value = f"{result}.value"
            if function.name.startswith(RESERVED_PREFIX):
                # Inside an outer loop's worker, a return is that worker's outcome.
                value = f"({RUNTIME}.RETURNED, {value}, __paraloop_it__, locals())"
            call += f"if {result}.returned:\n    return {value}\n"
        # Gone before the program's code after the loop runs, as a plain loop leaves no such names
        # (locals() in a function, json.dumps(locals()), shows them).
        if loop.orelse:
            call += f"if not {result}.broke:\n    del {worker}, {result}\nelse:\n    del {worker}, {result}\n"
        else:
            call += f"del {worker}, {result}\n"
        statements = _parse_statements(call, loop.iter)
        run_call = statements[0].value  # type: ignore[attr-defined]
        run_call.args[0] = loop.iter
        if loop.orelse:
            else_if = next(s for s in statements if isinstance(s, ast.If) and isinstance(s.test, ast.UnaryOp))
            else_if.body = [else_if.body[0], *self.block(loop.orelse, scopes)]
        return [worker_def, *statements]

    def plan(
        self,
        number: int,
        *,
        line: int,
        name: str,
        kind: str = "for",
        local: tuple[str, ...] = (),
        stored: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
        wrapped: tuple[str, ...] = (),
        uses: tuple[Use, ...] = (),
        seen: tuple[str, ...] = (),
    ) -> str:
        """The name of a new module-level plan of loop ``number`` (see :class:`paraloop.plan.LoopPlan`).

        It is a tuple of constants in the fields' order, which the compiler folds into one
        constant: the module's import builds nothing for it, and a plan in the loop's place would
        not be rebuilt each time a function runs its loop either.  (Built at import, with calls,
        a plan cost a cached module's import 8 us, a fifth of what paraloop added to it.)
        """
        spelled = "".join(_use_source(use) + ", " for use in uses)
        fields = (
            repr(line),
            repr(name),
            repr(kind),
            *(repr(tuple(names)) for names in (local, stored, after, wrapped)),
        )
        variable = f"{PLAN_PREFIX}{number}__"
        # The names seen only through the frame, after the uses, where a loop has some.
        extra = f", {tuple(seen)!r}" if seen else ""
        self.plans[number] = f"{variable} = ({', '.join(fields)}, ({spelled}){extra})\n"
        return variable

    def update_sites(self, loop: ast.For, sites: list[Site], mangle: Callable[[str], str]) -> list[str]:
        """Give each update site its recorded form (see :mod:`paraloop.replay`); return the log names."""
        nested = {
            id(node)
            for inner in _same_scope_nodes(loop.body)
            if isinstance(inner, ast.For) and self.paraloop.matches(inner.iter)
            for node in ast.walk(inner)
        }
        # A site inside a nested ParaLoop loop is that loop's: it updates the worker's
        # stand-in of the name (see paraloop.replay.StandIn), which records it.
        chosen = {id(site.statement): site for site in sites if id(site.statement) not in nested}
        if chosen:
            _SiteRewriter(chosen, mangle).visit_block(loop.body)
        return sorted({_log_name(mangle(site.name)) for site in sites})

    def worker(
        self,
        name: str,
        params: list[str],
        loop: ast.For,
        in_function: bool,
        method_self: str | None = None,
        logs: list[str] | None = None,
    ) -> ast.stmt:
        every = [*params, *(logs or ())]
        source = _WORKER_TEMPLATE.format(worker=name, params="".join(f", {p}" for p in every), rt=RUNTIME)
        (definition,) = _parse_statements(_with_unbound_prologue(source, params), loop.iter)
        assert isinstance(definition, ast.FunctionDef)
        inner_for = next(n for n in ast.walk(definition) if isinstance(n, ast.For))
        inner_for.target = loop.target
        inner_for.body = loop.body
        if in_function:
            self.returns_to_outcomes(inner_for.body, loop)
        if method_self is not None:
            _explicit_super(inner_for.body, method_self)
        # Nested ParaLoop loops inside the body run inside this worker.
        inner_for.body = self.block(inner_for.body, [definition])
        return definition

    def bound_outside(self, loop: ast.For, scopes: list[ast.AST]) -> set[str]:
        """The variables of the function around ``loop`` bound outside its body: parameters, the
        function's own stores elsewhere, and those of the functions around it."""
        innermost = scopes[-1] if scopes else None
        if not isinstance(innermost, _FUNCTIONS):
            return set()
        inside = {id(n) for statement in loop.body for n in ast.walk(statement)}
        elsewhere = [s for s in innermost.body if id(s) not in inside]
        stores = {
            n.id
            for n in _same_scope_nodes(elsewhere)
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load) and id(n) not in inside
        }
        names = block_names(innermost.body)
        parameters = function_locals(innermost, names) - names.stores
        return stores | parameters | self.outer_function_names(scopes[:-1])

    def frame_readers(self, loop: ast.For, scopes: list[ast.AST]) -> list[ast.Call]:
        """The body's calls of the built-ins that read its frame (locals(), eval(src)...), in a
        loop whose scope is a function of the program's; none where a name of the program's
        stands for the built-in."""
        innermost = scopes[-1] if scopes else None
        in_function = isinstance(innermost, _FUNCTIONS)

        def shadowed() -> set[str]:
            # Walked for a body that calls one of the built-ins only.
            if not in_function:
                return self.module_bound
            assert isinstance(innermost, _FUNCTIONS)
            return self.module_bound | self.function_names(innermost, scopes)

        self.refuse_globals(loop.body, shadowed)
        calls = _frame_reader_calls(loop.body, self.paraloop.matches)
        if calls:
            bound = shadowed()
            calls = [call for call in calls if call.func.id not in bound]  # type: ignore[attr-defined]
        if not calls or (in_function and innermost.name.startswith(RESERVED_PREFIX)):  # type: ignore[union-attr]
            return []
        if not in_function:
            self.refuse_top_level_frame(calls, innermost)
            return []
        return calls

    def module_namespaces(self, loop: ast.For, uses: tuple[Use, ...]) -> None:
        """eval() and exec() in a body at the top of a module, given no namespace or the module's
        (``exec(src)``, ``eval(src, globals())``): the plain loop runs them in the module's
        namespace, where the loop's own names are globals; the worker's are its function's.  They
        get those names, and what exec() stores goes to the module's globals, as in the plain loop
        (where a worker process has the module only in part: compared after each chunk, and
        refused, as any global an iteration rebinds).  A name the loop accumulates is a stand-in
        there, as in a function's frame (paraloop.frame_names)."""
        shadowed = self.module_bound
        accumulated = _accumulated(uses)
        where = f"{self.filename}, line {loop.lineno}"
        for node in list(ast.walk(ast.Module(body=loop.body, type_ignores=[]))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("eval", "exec")
                and node.func.id not in shadowed
                and not node.keywords
                and 1 <= len(node.args) <= 3
                and not any(isinstance(arg, ast.Starred) for arg in node.args)
            ):
                continue
            rest = node.args[1:]
            plain = all(isinstance(arg, ast.Constant) and arg.value is None for arg in rest)
            module = len(rest) == 1 and _bare_globals(rest[0]) and "globals" not in shadowed
            if not (plain or module):
                continue
            namespaces = ast.parse(
                f"(globals(), {RUNTIME}.module_frame(locals(), globals(), {accumulated!r}, {where!r}))",
                mode="eval",
            ).body
            _place([namespaces], node)
            node.args = [node.args[0], *namespaces.elts]  # type: ignore[attr-defined]
            ast.fix_missing_locations(node)

    def refuse_top_level_frame(self, calls: list[ast.Call], innermost: ast.AST | None) -> None:
        """locals(), vars() or dir() among ``calls``, at the top of a module or class body: its
        whole namespace, which a worker has only in part."""
        call = next((c for c in calls if c.func.id in ("locals", "vars", "dir")), None)  # type: ignore[attr-defined]
        if call is None:
            return
        spelled = call.func.id  # type: ignore[attr-defined]
        where = "a class body" if isinstance(innermost, ast.ClassDef) else "a module"
        raise self.refuse(
            f"{spelled}() in a ParaLoop body at the top of {where} shows all of its names, and an "
            "iteration in a worker process has only those the body names. Name what it needs "
            '("{name}-{i}".format(name=name, i=i)), or put the loop in a function, where '
            f"{spelled}() shows the function's variables",
            call,
        )

    def refuse_globals(self, nodes: list[ast.stmt], shadowed: Callable[[], set[str]]) -> None:
        """globals() in a body, but as the namespace of exec() or eval(): a worker has the module's
        globals the body names, not all (globals()[name], namespace = globals(); namespace.get(k))."""
        calls: list[ast.AST] = []
        # Handed to exec(code, globals()), eval or __import__: the namespace the code runs in (or
        # the package is found from), which needs none of the module's other globals.
        namespaces: set[int] = set()
        for node in ast.walk(ast.Module(body=nodes, type_ignores=[])):
            if _bare_globals(node):
                calls.append(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "exec", "eval", "__import__"
            ):  # fmt: skip
                namespaces |= {
                    id(a) for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "globals")]
                }
        if not calls or "globals" in shadowed():
            return
        for call in calls:
            if id(call) not in namespaces:
                raise self.refuse(
                    "globals() in a ParaLoop body: an iteration in a worker process has the "
                    "module's globals the body names, not all of them, and what it stores there "
                    "stays in the worker. Name the global itself (SCALE, or 'global total' to "
                    "assign it), or look values up in a dict made before the loop "
                    "(handlers = {'fit': fit, 'plot': plot})",
                    call,
                )

    def function_names(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, scopes: list[ast.AST]
    ) -> set[str]:
        """What the plain frame of ``function`` holds: its variables, and those of the functions
        around it that it reads (its free variables)."""
        names = block_names(function.body)
        own = (function_locals(function, names) - names.global_decls) | names.nonlocal_decls
        return own | (names.loads & self.outer_function_names(scopes[:-1]))

    def read_frame_names(
        self,
        calls: list[ast.Call],
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        scopes: list[ast.AST],
        uses: tuple[Use, ...],
        loop: ast.AST,
        hidden: Iterable[str] = (),
    ) -> None:
        """Each call of ``calls`` reads :func:`paraloop.frame_names.frame_names` instead of the
        worker's frame: the function's names in their order, a name the loop accumulates as a
        stand-in that refuses to be used."""
        order = _frame_order(function, self.outer_function_names(scopes[:-1]))
        where = f"{self.filename}, line {loop.lineno}"  # type: ignore[attr-defined]
        arguments = f"locals(), {order!r}, {_accumulated(uses)!r}, {where!r}, {tuple(sorted(hidden))!r}"
        for call in calls:
            _read_frame(call, arguments)

    def plain_frame(
        self, calls: list[ast.Call], function: ast.FunctionDef | ast.AsyncFunctionDef, scopes: list[ast.AST]
    ) -> None:
        """``locals()``, ``vars()`` and ``dir()`` (``calls``) in a function with loops over ParaLoop
        leave out the names of the code made for them: its ``del`` after a loop does not run when
        the loop raised (caught in the function), nor after a ``return`` (a ``finally`` then sees
        them)."""
        shadowed = self.module_bound | self.function_names(function, scopes)
        for call in calls:
            if not isinstance(call.func, ast.Name):
                continue  # in a comprehension over ParaLoop, rewritten with its worker (3.12+)
            spelled = call.func.id
            if spelled not in ("locals", "vars", "dir") or spelled in shadowed:
                continue
            _read_frame(call, "locals(), (), (), ''")

    def returns_to_outcomes(self, body: list[ast.stmt], loop: ast.For) -> None:
        for node in _same_scope_nodes(body, skip=self.paraloop.matches):
            if isinstance(node, ast.Return):
                value = node.value
                if value is None:
                    value = ast.copy_location(ast.Constant(None), node)
                outcome = ast.parse(
                    f"({RUNTIME}.RETURNED, None, __paraloop_it__, locals())", mode="eval"
                ).body
                _place([outcome], node)
                assert isinstance(outcome, ast.Tuple)
                outcome.elts[1] = value
                node.value = outcome

    def outer_function_names(self, scopes: list[ast.AST]) -> set[str]:
        names: set[str] = set()
        for scope in scopes:
            if isinstance(scope, _FUNCTIONS):
                names |= function_locals(scope)
        return names

    def read_outside(self, loop: ast.For, innermost: ast.AST | None) -> set[str]:
        """Names read anywhere in the loop's scope (or module) outside the loop body."""
        container: ast.AST = innermost if isinstance(innermost, _FUNCTIONS) else self.tree
        inside = {id(n) for statement in loop.body for n in ast.walk(statement)}
        inside |= {id(n) for n in ast.walk(loop.target)}
        reads: set[str] = set()
        for node in ast.walk(container):
            if id(node) in inside:
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                reads.add(node.id)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                reads.add(node.target.id)
        if not isinstance(innermost, _FUNCTIONS):
            # Other modules can read a module's (or class's) public names.
            reads |= {n for n in self.tree_bound if not n.startswith("_")}
        return reads

    def check_leftovers(self) -> None:
        for error in self.leftovers():
            raise error

    def leftovers(self) -> Iterable[UnsupportedLoopError]:
        """A refusal for each ParaLoop(...) that is not the iterable of a rewritten loop."""
        refused: set[int] = set()
        for node in ast.walk(self.tree):
            wrapped = _wrapping_call(node, self.paraloop.matches)
            if wrapped is not None and id(wrapped.args[0]) not in self.consumed:
                inner = wrapped.args[0]
                assert isinstance(inner, ast.Call) and inner.args
                refused.add(id(inner))
                function = ast.unparse(wrapped.func)
                yield self.refuse(
                    f"{function}(ParaLoop(...)) is not parallel: ParaLoop must be the loop's iterable "
                    f"itself. Wrap the whole iterable instead: ParaLoop({function}("
                    f"{ast.unparse(inner.args[0])}))",
                    inner,
                )
            if (
                isinstance(node, ast.Call)
                and self.paraloop.matches(node)
                and id(node) not in self.consumed | refused
            ):
                yield self.refuse(
                    "ParaLoop(...) is only parallel as the iterable of a 'for' statement "
                    "('for item in ParaLoop(items):') or of the first 'for' of a comprehension "
                    "evaluated where it stands (not inside a lambda or another comprehension). "
                    "Write the loop as a for statement",
                    node,
                )

    def check_reserved(self) -> None:
        for node in ast.walk(self.tree):
            name = node.id if isinstance(node, ast.Name) else getattr(node, "name", None)
            if isinstance(name, str) and name.startswith(RESERVED_PREFIX):
                raise self.refuse(
                    f"the name {name!r} is reserved for code paraloop generates; rename it",
                    node,
                )


def _insert_import(tree: ast.Module, plans: list[str]) -> None:
    position = 0
    body = tree.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        position = 1
    while (
        position < len(body)
        and isinstance(body[position], ast.ImportFrom)
        and (
            body[position].module == "__future__"  # type: ignore[attr-defined]
        )
    ):
        position += 1
    statements = ast.parse(f"import paraloop.runtime as {RUNTIME}\n" + "".join(plans)).body
    where = body[position] if position < len(body) else body[-1]
    _place(statements, where)
    body[position:position] = statements


def rewrite(
    tree: ast.Module,
    filename: str,
    source_lines: list[str],
    namespace: Mapping[str, object] | None = None,
) -> int:
    """Rewrite the ParaLoop loops of ``tree`` in place; return how many there were.

    ``namespace`` is the namespace the code will run in when it already holds
    names (an IPython cell runs where earlier cells ran).  Raises
    :class:`~paraloop.UnsupportedLoopError` for loops it cannot rewrite.  A
    tree without ``ParaLoop`` is left exactly as it was.
    """
    rewriter = _Rewriter(tree, filename, source_lines, namespace)
    if not rewriter.paraloop.functions and not rewriter.paraloop.modules:
        return 0
    rewriter.check_reserved()
    tree.body = rewriter.block(tree.body, [])
    rewriter.check_leftovers()
    if rewriter.count:
        _insert_import(tree, [rewriter.plans[number] for number in sorted(rewriter.plans)])
    return rewriter.count


def show(source: str | bytes, filename: str = "<source>") -> str:
    """Return the source of ``source`` as paraloop rewrites it.

    Example::

        >>> print(paraloop.show("from paraloop import ParaLoop\\nfor i in ParaLoop([1]):\\n    pass\\n"))
    """
    tree = ast.parse(source, filename)
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    rewrite(tree, filename, text.splitlines())
    return ast.unparse(tree) + "\n"
