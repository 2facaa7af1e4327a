"""How a loop body uses the names it reads from outside the loop.

For every *outer* name (one the body reads before it assigns it) the rewriter
records each use with its form: an update paraloop knows how to combine
(``x += e``, ``x = max(x, e)``, ``x.append(e)``, ``x[k] = e``, ``x[k] += e``,
...), a plain read, an assignment, a mutation it cannot combine
(``x.sort()``), or a change to an attribute (``self.hits += 1``).  Whether a
use is fine depends on the value when the loop starts (a Variable, a plain
int, a list, an object of the user's own class), so :mod:`paraloop.reductions`
decides at run time, and names the line of any use it refuses.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

from ..plan import Form, Kind, Use
from .flow import read_before_assigned
from .names import block_names

__all__ = ["MUTATING_METHODS", "RANDOM_FUNCTIONS", "UPDATE_METHODS", "Site", "analyse", "outer_uses"]

# Methods whose effect paraloop can combine, as the statement ``x.method(e)``.
UPDATE_METHODS = frozenset({"append", "extend", "add", "update", "appendleft"})
# Methods that change a container in a way that depends on its current state.
MUTATING_METHODS = frozenset(
    {
        "insert", "pop", "remove", "clear", "discard", "setdefault", "sort", "reverse",
        "popitem", "extendleft", "popleft", "rotate", "difference_update",
        "intersection_update", "symmetric_difference_update", "subtract",
        "__setitem__", "__delitem__", "__iadd__", "fill", "resize", "put", "itemset",
        *UPDATE_METHODS,
    }
)  # fmt: skip

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

# Operators whose updates a worker can record instead of applying (see paraloop.replay):
# the first of each pair is applied as is, the second as its inverse.
_REPLAYABLE = {"Add": False, "Sub": True, "Mult": False, "Div": True}
_FAMILIES = ({"Add", "Sub"}, {"Mult", "Div"})
_BITWISE = {"BitAnd", "BitOr", "BitXor"}


@dataclass
class Site:
    """A statement that updates an outer name in a form a worker may record instead of apply.

    ``contributions`` are, in evaluation order, the expressions the statement
    combines into the name, each with whether it is applied inverted
    (``-=``, ``/=``); with ``key`` (``x[k] += e``) they apply to one entry.
    """

    statement: ast.stmt
    name: str
    contributions: list[tuple[ast.expr, bool]]
    key: ast.expr | None = None
    # A whole overwrite of a scratch buffer: the statement runs as written, then notes
    # that this chunk wrote the buffer.
    touch: bool = False


@dataclass
class _Found:
    uses: list[Use] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


# Functions of random and numpy.random that draw from (or seed) their module's global generator.
RANDOM_FUNCTIONS = frozenset(
    {
        "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
        "normalvariate", "lognormvariate", "expovariate", "betavariate", "gammavariate", "triangular",
        "vonmisesvariate", "paretovariate", "weibullvariate", "getrandbits", "randbytes",
        "binomialvariate", "seed", "rand", "randn", "random_sample", "random_integers", "normal",
        "permutation", "poisson", "exponential", "standard_normal", "beta", "gamma", "binomial",
        "multinomial", "dirichlet", "lognormal", "laplace", "logistic", "geometric", "bytes",
    }
)  # fmt: skip


# Functions that may change what every thread of the process sees (see paraloop.process_state),
# and names of matplotlib.pyplot's, which draw on its one current figure.
STATE_FUNCTIONS = frozenset(
    {
        "chdir", "fchdir", "putenv", "unsetenv", "umask", "setlocale", "signal", "filterwarnings",
        "simplefilter", "resetwarnings", "catch_warnings", "setrecursionlimit", "tzset",
        "setdefaulttimeout", "redirect_stdout", "redirect_stderr", "figure", "plot", "subplot",
        "subplots", "savefig", "close", "clf", "cla", "gca", "gcf", "title", "xlabel", "ylabel",
        "legend", "scatter", "imshow", "hist", "bar", "show", "axis", "grid", "text", "colorbar",
    }
)  # fmt: skip
WATCHED_CALLS = RANDOM_FUNCTIONS | STATE_FUNCTIONS


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a name or a chain of attributes of a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _empty(node: ast.expr) -> bool:
    """``[]``, ``{}``, ``set()``, ``list()``, ``dict()``: an empty container."""
    if isinstance(node, (ast.List, ast.Dict, ast.Set, ast.Tuple)):
        return not getattr(node, "elts", None) and not getattr(node, "keys", None)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("list", "set", "dict")
        and not node.args
        and not node.keywords
    )


def _full_slice(node: ast.expr) -> bool:
    """``[:]``, ``[...]``, ``[:, :]``: an index that covers every element."""
    if isinstance(node, ast.Slice):
        return node.lower is None and node.upper is None and node.step is None
    if isinstance(node, ast.Constant):
        return node.value is Ellipsis
    if isinstance(node, ast.Tuple):
        return bool(node.elts) and all(_full_slice(element) for element in node.elts)
    return False


class _Classifier(ast.NodeVisitor):
    def __init__(self, outer: set[str], own: set[str]) -> None:
        self.outer = outer
        # Names the loop target binds (and the body never rebinds): an index
        # made of them is the iteration's own element of an outer list or array.
        self.own = own
        self.found = _Found()
        self.statement: ast.AST | None = None

    def name_of(self, node: ast.AST) -> str | None:
        """``x`` or ``x.value`` (a Variable's value) for an outer name ``x``."""
        if isinstance(node, ast.Attribute) and node.attr == "value":
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.outer:
            return node.id
        return None

    def root_of(self, node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) and node.id in self.outer else None

    def own_index(self, index: ast.expr) -> bool:
        """``x[i]`` or ``x[i, ...]``: the iteration's own element, or own row."""
        if isinstance(index, ast.Tuple) and index.elts:
            index = index.elts[0]
        return isinstance(index, ast.Name) and index.id in self.own

    def only_own_reads(self, node: ast.AST, name: str) -> bool:
        """Every mention of ``name`` in ``node`` is of the iteration's own element or row."""
        allowed: set[int] = set()
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Subscript)
                and self.name_of(inner.value) == name
                and self.own_index(inner.slice)
                and not _mentions(inner.slice, name)
            ):
                allowed |= {id(n) for n in ast.walk(inner.value)}
        names = [inner for inner in ast.walk(node) if isinstance(inner, ast.Name) and inner.id == name]
        return all(id(inner) in allowed for inner in names)

    def add(self, name: str, node: ast.AST, kind: Kind, detail: str = "") -> None:
        where = self.statement if self.statement is not None else node
        self.found.uses.append(Use(name, getattr(node, "lineno", 0), Form(kind, detail), _source(where)))

    def site(
        self, node: ast.stmt, name: str, parts: list[tuple[ast.expr, bool]], key: ast.expr | None = None
    ) -> None:
        self.found.sites.append(Site(node, name, parts, key))

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            outer_statement, self.statement = self.statement, node
            super().visit(node)
            self.statement = outer_statement
        else:
            super().visit(node)

    # Updates paraloop can combine.
    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        op = type(node.op).__name__
        name = self.name_of(node.target)
        if name is not None and not _mentions(node.value, name):
            self.add(name, node, Kind.AUG, op)
            if op in _REPLAYABLE:
                self.site(node, name, [(node.value, _REPLAYABLE[op])])
            self.visit(node.value)
            return
        target = node.target
        if isinstance(target, ast.Subscript) and (name := self.name_of(target.value)) is not None:
            own = self.own_index(target.slice)
            if not _mentions(node.value, name) and not _mentions(target.slice, name):
                self.add(name, node, Kind.OWN_AUG if own else Kind.ITEM_AUG, op)
                if op in _REPLAYABLE:
                    self.site(node, name, [(node.value, _REPLAYABLE[op])], target.slice)
                self.visit(target.slice)
                self.visit(node.value)
                return
            if own and self.only_own_reads(node.value, name):
                # x[i] += x[i] * 2: an update of the iteration's own element.
                self.add(name, node, Kind.OWN_UPDATE)
                self.visit(node.value)
                return
        self.changed(target, node)
        self.visit(node.value)

    def written_out(self, node: ast.Assign, name: str) -> bool:
        """``x = x + a - b``, ``x = x * e``, ``x = x | e``: an augmented update written out.

        ``x = e + x`` and ``x = a + x + b`` are the same sums for numbers, whose ``+``
        (and ``*``) commute exactly: forms of kind ``COMMUTED``, which the runtime takes
        for numbers only.
        """
        parts: list[tuple[str, ast.expr]] = []
        value: ast.expr = node.value
        commuted = False
        while isinstance(value, ast.BinOp):
            if self.name_of(value.right) == name and type(value.op).__name__ in ("Add", "Mult"):
                # a + x: x + a for numbers.
                if _mentions(value.left, name):
                    return False
                parts.append((type(value.op).__name__, value.left))
                value, commuted = value.right, True
                break
            parts.append((type(value.op).__name__, value.right))
            value = value.left
        if not parts or self.name_of(value) != name or any(_mentions(e, name) for _, e in parts):
            return False
        ops = {op for op, _ in parts}
        if not any(ops <= family for family in _FAMILIES) and not (len(parts) == 1 and ops <= _BITWISE):
            return False
        # In evaluation order: (a + x) + b is (x + a) + b.
        parts.reverse()
        for op, _operand in parts:
            self.add(name, node, Kind.COMMUTED if commuted else Kind.BINOP, op)
        if ops <= set(_REPLAYABLE):
            self.site(node, name, [(operand, _REPLAYABLE[op]) for op, operand in parts])
        for _, operand in parts:
            self.visit(operand)
        return True

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if len(node.targets) == 1 and (name := self.name_of(node.targets[0])) is not None:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in ("max", "min")
                and len(value.args) == 2
                and not value.keywords
            ):
                others: list[ast.AST] = [a for a in value.args if self.name_of(a) != name]
                if len(others) == 1 and not _mentions(others[0], name):
                    self.add(name, node, Kind.MAX if value.func.id == "max" else Kind.MIN)
                    self.visit(others[0])
                    return
            if (
                isinstance(value, ast.BoolOp)
                and len(value.values) == 2
                and sum(self.name_of(v) == name for v in value.values) == 1
            ):
                first, second = value.values
                other = second if self.name_of(first) == name else first
                if not _mentions(other, name):
                    # found = found or test(x); ok = ok and test(x).  With the name
                    # last (ok = test(x) and ok) it keeps the last value that decided.
                    if isinstance(value.op, ast.Or):
                        kind = Kind.OR if other is second else Kind.OR_LAST
                    else:
                        kind = Kind.AND if other is second else Kind.AND_LAST
                    self.add(name, node, kind)
                    self.visit(other)
                    return
            if self.written_out(node, name):
                return
            if isinstance(value, ast.Call) and not _mentions(value.func, name):
                # g = gcd(g, x), a = np.concatenate([a, row]): the user's own combining function.
                spots: list[ast.AST] = []
                for argument in value.args:
                    inner = argument.elts if isinstance(argument, (ast.List, ast.Tuple)) else [argument]
                    spots.extend(inner)
                spots.extend(value.keywords)
                others = [spot for spot in spots if self.name_of(spot) != name]
                if len(spots) - len(others) == 1 and not any(_mentions(o, name) for o in others):
                    self.add(name, node, Kind.APPLY)
                    self.visit(value.func)
                    for spot in others:
                        self.visit(spot)
                    return
            self.add(name, node, Kind.ASSIGN)
            self.visit(value)
            return
        for target in node.targets:
            if isinstance(target, ast.Subscript) and (name := self.name_of(target.value)) is not None:
                own = self.own_index(target.slice)
                if not _mentions(value, name) and not _mentions(target.slice, name):
                    self.add(name, node, Kind.OWN_ITEM if own else Kind.ITEM)
                    self.visit(target.slice)
                    continue
                if len(node.targets) == 1 and self.get_and_add(value, name, target.slice):
                    # counts[w] = counts.get(w, 0) + 1: counts[w] += 1 that starts a new key at 0.
                    self.add(name, node, Kind.ITEM_GET, "Add")
                    self.visit(target.slice)
                    return
                if own and len(node.targets) == 1 and self.only_own_reads(value, name):
                    # x[i] = f(x[i]): an update of the iteration's own element.
                    self.add(name, node, Kind.OWN_UPDATE)
                    self.visit(value)
                    return
            self.changed(target, node)
        self.visit(value)

    def get_and_add(self, value: ast.expr, name: str, key: ast.expr) -> bool:
        """``name.get(key, 0) + e`` (or ``e + name.get(key, 0)``), with ``e`` free of ``name``."""
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add)):
            return False
        for lookup, other in ((value.left, value.right), (value.right, value.left)):
            if (
                isinstance(lookup, ast.Call)
                and isinstance(lookup.func, ast.Attribute)
                and lookup.func.attr == "get"
                and self.name_of(lookup.func.value) == name
                and len(lookup.args) == 2
                and not lookup.keywords
                and ast.dump(lookup.args[0]) == ast.dump(key)
                and isinstance(lookup.args[1], ast.Constant)
                and lookup.args[1].value == 0
                and type(lookup.args[1].value) is int
                and not _mentions(other, name)
                and not _mentions(key, name)
            ):
                self.visit(other)
                return True
        return False

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and (name := self.name_of(call.func.value)) is not None
            and call.func.attr in UPDATE_METHODS
            and not any(_mentions(a, name) for a in [*call.args, *call.keywords])
        ):
            self.add(name, node, Kind.CALL, call.func.attr)
            for argument in [*call.args, *call.keywords]:
                self.visit(argument)
            return
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in UPDATE_METHODS
            and isinstance(entry := call.func.value, ast.Call)
            and isinstance(entry.func, ast.Attribute)
            and entry.func.attr == "setdefault"
            and (name := self.name_of(entry.func.value)) is not None
            and len(entry.args) == 2
            and not entry.keywords
            and _empty(entry.args[1])
            and not any(_mentions(a, name) for a in [entry.args[0], *call.args, *call.keywords])
        ):
            # groups.setdefault(key, []).append(item): grows one entry, made empty if new.
            self.add(name, node, Kind.ITEM_CALL, call.func.attr)
            for argument in [entry.args[0], *call.args, *call.keywords]:
                self.visit(argument)
            return
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in UPDATE_METHODS
            and isinstance(call.func.value, ast.Subscript)
            and (name := self.name_of(call.func.value.value)) is not None
            and not any(_mentions(a, name) for a in [call.func.value.slice, *call.args, *call.keywords])
        ):
            # groups[key].append(item): grows one entry of a mapping.
            self.add(name, node, Kind.ITEM_CALL, call.func.attr)
            for argument in [call.func.value.slice, *call.args, *call.keywords]:
                self.visit(argument)
            return
        self.generic_visit(node)

    # Everything else.
    def changed(self, target: ast.AST, statement: ast.AST) -> None:
        """A store into ``target`` that is not a recognised update."""
        if isinstance(target, ast.Name):
            if target.id in self.outer:
                self.add(target.id, statement, Kind.ASSIGN)
            return
        if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            for element in ast.iter_child_nodes(target):
                self.changed(element, statement)
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            root = self.root_of(target)
            if root is not None:
                direct = isinstance(target, ast.Subscript) and self.name_of(target.value) == root
                if direct:
                    self.add(root, statement, Kind.MUTATE, "item")
                else:
                    self.add(root, statement, Kind.ATTRIBUTE)
            for child in ast.iter_child_nodes(target):
                if not isinstance(child, ast.expr_context):
                    self.visit(child)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        dotted = _dotted(func)
        if dotted is not None and dotted.rpartition(".")[2] in WATCHED_CALLS:
            # random.random(), np.random.normal(), os.chdir(...): the runtime tells what the
            # call resolves to (a global generator, process-wide state).
            invoked = Form(Kind.INVOKE, dotted)
            self.found.uses.append(Use(dotted.partition(".")[0], node.lineno, invoked, _source(node)))
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            root = self.root_of(func.value)
            if root is not None:
                direct = self.name_of(func.value) == root
                if direct:
                    self.add(root, node, Kind.MUTATE, func.attr)
                else:
                    self.add(root, node, Kind.ATTRIBUTE)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        name = self.name_of(node.value)
        if name is not None and isinstance(node.ctx, ast.Load) and self.own_index(node.slice):
            self.add(name, node, Kind.OWN_READ)
            self.visit(node.slice)
            return
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.changed(target, node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.outer:
            self.add(node.id, node, Kind.READ if isinstance(node.ctx, ast.Load) else Kind.ASSIGN)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.changed(node.target, node)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.changed(node.target, node)


def _overwrites(statement: ast.stmt, name: str) -> bool:
    """Whether ``statement`` overwrites all of ``name``: ``name[:] = e``, ``name.fill(e)``,
    ``name.clear()``."""
    if isinstance(statement, ast.Assign):
        target = statement.targets[0]
        return (
            len(statement.targets) == 1
            and isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and target.value.id == name
            and _full_slice(target.slice)
            and not _mentions(statement.value, name)
        )
    if isinstance(statement, ast.Expr):
        call = statement.value
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == name
            and call.func.attr in ("fill", "clear")
            and not any(_mentions(a, name) for a in [*call.args, *call.keywords])
        )
    return False


class _AsAssignments(ast.NodeTransformer):
    """Turns whole overwrites of ``name`` into plain assignments of it, so that the flow
    analysis tells whether every path overwrites the buffer before it uses it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.stmt) and _overwrites(node, self.name):
            assigned = ast.Assign(targets=[ast.Name(self.name, ast.Store())], value=ast.Constant(None))
            return ast.copy_location(assigned, node)
        if isinstance(node, _SCOPES):
            return node
        return self.generic_visit(node)


def _scratch_sites(target: ast.expr, body: list[ast.stmt], name: str) -> list[Site]:
    """The whole overwrites of ``name`` if every path through an iteration overwrites the outer
    object before any other use of it (a scratch buffer), else none."""
    if name in block_names(body).stores:
        return []  # also rebound: not one buffer
    sites = [
        Site(node, name, [], touch=True)
        for statement in body
        for node in _statements(statement)
        if _overwrites(node, name)
    ]
    if not sites:
        return []
    rewritten = [_AsAssignments(name).visit(statement) for statement in copy.deepcopy(body)]
    if name in read_before_assigned(target, rewritten):  # type: ignore[arg-type]
        return []
    return sites


def _statements(node: ast.AST) -> list[ast.stmt]:
    """The statements in ``node``, nested blocks included, nested scopes not."""
    found: list[ast.stmt] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.stmt):
            found.append(current)
        if current is not node and isinstance(current, _SCOPES):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return found


def analyse(target: ast.expr, body: list[ast.stmt]) -> tuple[list[Use], list[Site]]:
    """Every use of every outer name in a loop body, with its form, and the update sites.

    A name is *outer* when some path through one iteration reads it before
    assigning it (see :mod:`paraloop.hook.flow`): it then refers to the value
    from before the loop, or, in a plain loop, from the previous iteration.
    An outer object that every iteration overwrites whole before using it
    (``buffer[:] = row``) is a scratch buffer: one use, of kind ``SCRATCH``.
    """
    outer = read_before_assigned(target, body)
    own = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} - block_names(body).stores
    classifier = _Classifier(outer, own)
    for statement in body:
        classifier.visit(statement)
    uses = classifier.found.uses
    sites = classifier.found.sites
    # Names the body only reads are inputs: nothing to decide about them.
    calls = [use for use in uses if use.form.kind is Kind.INVOKE]
    uses = [use for use in uses if use.form.kind is not Kind.INVOKE]
    changed = {use.name for use in uses if use.form.kind not in (Kind.READ, Kind.OWN_READ)}
    for name in sorted(changed):
        overwrites = _scratch_sites(target, body, name)
        if overwrites:
            first = min(overwrites, key=lambda site: (site.statement.lineno, site.statement.col_offset))
            uses = [u for u in uses if u.name != name]
            uses.append(Use(name, first.statement.lineno, Form(Kind.SCRATCH), _source(first.statement)))
            sites = [site for site in sites if site.name != name] + overwrites
    return [use for use in uses if use.name in changed] + calls, sites


def outer_uses(target: ast.expr, body: list[ast.stmt]) -> list[Use]:
    """Every use of every outer name in a loop body, with its form (see :func:`analyse`)."""
    return analyse(target, body)[0]
