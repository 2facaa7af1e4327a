"""Deciding, when a loop starts, how each outer name the body updates is combined.

The rewriter lists every use of every outer name in a loop body with its form
(a :class:`~paraloop.plan.Use`, see :mod:`paraloop.hook.uses`).  Here those
forms meet the values the names have when the loop starts:

- a :class:`~paraloop.Variable` is combined with its own strategy; reading it
  in the body (each worker sees only its part) is refused;
- a plain number, list, dict, set, Counter, defaultdict, deque or numpy array
  updated only in the forms docs/strategies.md lists ("Plain names") gets a
  strategy inferred from the forms and the type, in the table ``_RULES``
  (``total += x`` is a Sum, ``out.append(x)`` a Concatenate, ``out[i] = x`` on
  a preallocated list writes those indexes);
- anything else that the workers would silently get wrong (a value carried
  from one iteration to the next, a mutation like ``.sort()``, an attribute of
  an outer object, a reduction read in the body) raises ParaLoopError naming
  the file, the line, the name, and the fix.

Updates through methods of the user's own objects (``model.update(batch)``)
are untracked side effects: they happen in the workers.
"""

# No "from __future__ import annotations": typing.NamedTuple turns string annotations into
# ForwardRefs, compiling each, and the runtime's import took 1.1 ms longer for it (14.7 against
# 13.6 ms, medians of 21 fresh processes).  Every name the annotations use is defined above them.

import operator
import re
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any, NamedTuple

from . import aggregation_strategies as strategies
from .aggregation_strategies import AggregationStrategy
from .errors import ParaLoopError
from .execute import UNBOUND
from .guard import _user_code
from .number_types import is_number
from .plan import Form, Kind, Use
from .replay import StandIn
from .replay import inexact as _inexact
from .shared import SharedArray
from .variable import Variable

__all__ = ["infer_reductions"]

_CONTAINERS = (list, dict, set, frozenset, bytearray, deque, Counter, OrderedDict, defaultdict)


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _is_container(value: object) -> bool:
    return isinstance(value, _CONTAINERS) or _is_numpy_array(value)


def _forms(kind: Kind, *details: str) -> frozenset[Form]:
    return frozenset(Form(kind, detail) for detail in details)


_OPERATORS = ("Add", "Sub", "Mult", "Div")
# Forms a worker can record for the caller to replay (see paraloop.replay).
RECORDED = frozenset().union(
    *(
        _forms(kind, *_OPERATORS)
        for kind in (Kind.AUG, Kind.BINOP, Kind.COMMUTED, Kind.ITEM_AUG, Kind.OWN_AUG)
    )
)
_KEYED = frozenset({Kind.ITEM_AUG, Kind.OWN_AUG, Kind.ITEM_GET})
_OWN_FORMS = frozenset({Form(Kind.OWN_UPDATE), Form(Kind.OWN_READ), Form(Kind.OWN_ITEM)}) | _forms(
    Kind.OWN_AUG, *_OPERATORS
)
# Forms no strategy combines: a Variable's strategy is not checked against them.
_NOT_UPDATES = frozenset({Kind.READ, Kind.OWN_READ, Kind.ATTRIBUTE, Kind.ASSIGN, Kind.APPLY, Kind.MUTATE})

# The forms as strategies see them: ``x = x + e`` is ``x += e`` (and so is ``x = e + x``,
# taken for numbers only); ``x[i] = e`` at the iteration's own index is ``x[k] = e``;
# ``x[k] = x.get(k, 0) + e`` is ``x[k] += e``.
_NORMAL = {
    Kind.BINOP: Kind.AUG,
    Kind.COMMUTED: Kind.AUG,
    Kind.OWN_AUG: Kind.ITEM_AUG,
    Kind.OWN_ITEM: Kind.ITEM,
    Kind.ITEM_GET: Kind.ITEM_AUG,
}


def _normal(form: Form) -> Form:
    kind = _NORMAL.get(form.kind)
    return form if kind is None else Form(kind, form.detail)


_SCRATCH = frozenset({Form(Kind.SCRATCH)})
_LAST = (frozenset({Form(Kind.OR_LAST)}), frozenset({Form(Kind.AND_LAST)}))
_ITEM = Form(Kind.ITEM)
_ANY, _ALL = frozenset({Form(Kind.OR)}), frozenset({Form(Kind.AND)})
_OWN_ACCESS = frozenset({Kind.OWN_UPDATE, Kind.OWN_READ})
_MAX, _MIN = Form(Kind.MAX), Form(Kind.MIN)
_ADDITIVE = _forms(Kind.AUG, "Add", "Sub")
_MULTIPLICATIVE = _forms(Kind.AUG, "Mult", "Div")
_ITEM_ADDITIVE = _forms(Kind.ITEM_AUG, "Add", "Sub")
_ITEM_MULTIPLICATIVE = _forms(Kind.ITEM_AUG, "Mult", "Div")
# d[k] = e and d[k] += e (keyed by an expression or the loop's own item): a count whose new keys
# start at zero, refused with advice of their own.
_KEY_STORES = frozenset({Form(Kind.ITEM), Form(Kind.OWN_ITEM)})
_KEY_ADDS = frozenset({Form(Kind.ITEM_AUG, "Add"), Form(Kind.OWN_AUG, "Add")})
_BIT_OR, _BIT_XOR, _BIT_AND = (Form(Kind.AUG, op) for op in ("BitOr", "BitXor", "BitAnd"))
# d[k] += x and d[k].append(x): each entry of a dict its own sum.
_PER_KEY = _ITEM_ADDITIVE | _forms(Kind.ITEM_CALL, "append", "extend", "add", "update")
_CONCATENATED = frozenset({Form(Kind.AUG, "Add")}) | _forms(Kind.CALL, "append", "extend")
# Updates through methods or items: on an object that is no container, number or string
# (model.update(batch)), untracked side effects.
_IN_PLACE = frozenset({Kind.CALL, Kind.ITEM, Kind.ITEM_AUG, Kind.ITEM_GET, Kind.ITEM_CALL})
# Writes of elements, which a read of the name in the same body could see.
_ELEMENT_WRITES = frozenset(
    {_ITEM, Form(Kind.OWN_ITEM), Form(Kind.ITEM_AUG, "Add"), Form(Kind.OWN_AUG, "Add")}
)


class _Rule(NamedTuple):
    """A strategy for the values of one type whose updates are ``forms`` (with ``exactly``),
    or only some of ``forms``."""

    forms: frozenset[Form]
    make: Callable[[], AggregationStrategy]
    exactly: bool = False

    def fits(self, forms: frozenset[Form]) -> bool:
        return forms == self.forms if self.exactly else forms <= self.forms


def _exactly(make: Callable[[], AggregationStrategy], *forms: Form) -> _Rule:
    return _Rule(frozenset(forms), make, exactly=True)


_NUMBER_RULES = (
    _Rule(_ADDITIVE, strategies.Sum),
    _Rule(_MULTIPLICATIVE, strategies.Product),
    _exactly(strategies.Max, _MAX),
    _exactly(strategies.Min, _MIN),
)

# What combines the updates of a value, by its type: the first type that matches decides, its
# first rule that fits the forms gives the strategy; none fits, none combines them.
_RULES: tuple[tuple[Callable[[object], bool], tuple[_Rule, ...]], ...] = (
    (
        lambda value: isinstance(value, bool),
        (
            _exactly(strategies.Any, _BIT_OR, Form(Kind.OR)),
            _exactly(strategies.Any, _BIT_OR),
            _exactly(strategies.All, _BIT_AND, Form(Kind.AND)),
            _exactly(strategies.All, _BIT_AND),
            _exactly(strategies.Max, _MAX),
            _exactly(strategies.Min, _MIN),
        ),
    ),
    (
        lambda value: isinstance(value, int),
        (
            *_NUMBER_RULES,
            _exactly(lambda: strategies.Reduce(operator.or_, 0), _BIT_OR),
            _exactly(lambda: strategies.Reduce(operator.xor, 0), _BIT_XOR),
            _exactly(lambda: strategies.Reduce(operator.and_, -1), _BIT_AND),
        ),
    ),
    (
        lambda value: (
            # is_number tells the built-in numbers first: a first isinstance() against
            # numbers.Number walks the classes registered with it (numpy's among them).
            is_number(value) or (type(value).__module__ == "numpy" and not _is_numpy_array(value))
        ),
        _NUMBER_RULES,
    ),
    (
        _is_numpy_array,
        (
            _Rule(_ADDITIVE | _ITEM_ADDITIVE, strategies.Sum),
            _Rule(_MULTIPLICATIVE | _ITEM_MULTIPLICATIVE, strategies.Product),
            _exactly(strategies.IndexWrites, _ITEM),
        ),
    ),
    (
        lambda value: isinstance(value, (str, bytes, tuple)),
        (_exactly(strategies.Concatenate, Form(Kind.AUG, "Add")),),
    ),
    (
        lambda value: isinstance(value, (list, bytearray)),
        (
            _Rule(_CONCATENATED, strategies.Concatenate),
            _exactly(strategies.IndexWrites, _ITEM),
            _Rule(_ITEM_ADDITIVE, lambda: strategies.PerIndex("add")),
            _Rule(_ITEM_MULTIPLICATIVE, lambda: strategies.PerIndex("mul")),
        ),
    ),
    (lambda value: isinstance(value, deque), (_Rule(_CONCATENATED, strategies.Concatenate),)),
    (
        lambda value: isinstance(value, (set, frozenset)),
        (_Rule(_forms(Kind.CALL, "add", "update") | {_BIT_OR}, strategies.Union),),
    ),
    (
        lambda value: isinstance(value, Counter),
        (
            _Rule(_ITEM_ADDITIVE | {Form(Kind.CALL, "update")}, strategies.Sum),
            _exactly(strategies.Merge, _ITEM),
            # c += Counter(words): replayed in the caller (see replay_operation), as Counter's
            # += drops the counts that are not positive after each addition.
            _Rule(_ADDITIVE, strategies.Sum),
        ),
    ),
    (
        lambda value: isinstance(value, dict),
        (
            _Rule(_PER_KEY, strategies.Sum),
            _Rule(_ITEM_MULTIPLICATIVE, strategies.Product),
            _Rule(frozenset({_ITEM, Form(Kind.CALL, "update"), _BIT_OR}), strategies.Merge),
        ),
    ),
)


def _numeric(value: object) -> bool:
    """A number (not a bool), a numpy array or scalar: its ``+`` and ``*`` commute exactly."""
    if is_number(value) and not isinstance(value, bool):
        return True
    return _is_numpy_array(value) or type(value).__module__ == "numpy"


def _strategy_for(forms: Set[Form], value: object) -> AggregationStrategy | None:
    """The strategy that combines these update forms on this value, if there is one."""
    if forms == _SCRATCH:
        if isinstance(value, (list, bytearray, dict, set)) or _is_numpy_array(value):
            return strategies.Scratch()
        return None
    kinds = {form.kind for form in forms}
    if kinds & _OWN_ACCESS or (forms <= _OWN_FORMS and len(kinds) > 1):
        # x[i] = f(x[i]), x[i, :] = row then x[i, 0] += 1: each iteration reads and
        # writes its own element or row.
        if forms <= _OWN_FORMS and (isinstance(value, (list, bytearray)) or _is_numpy_array(value)):
            return strategies.ElementUpdates()
        return None
    if Kind.COMMUTED in kinds:
        # total = e + total: the same sum for numbers (their + and * commute exactly), a
        # prepend for lists and strings.
        if not _numeric(value):
            return None
    normal = frozenset(map(_normal, forms))
    if normal == _ANY:
        return strategies.Any()
    if normal == _ALL:
        return strategies.All()
    if normal in _LAST:
        # ok = test(x) and ok: the last value that decided, or the pre-loop value.
        return strategies.Last()
    for matches, rules in _RULES:
        if matches(value):
            return next((rule.make() for rule in rules if rule.fits(normal)), None)
    return None


def replay_operation(strategy: AggregationStrategy, value: object, forms: Set[Form]) -> str | None:
    """How the workers record this name's updates for the caller to replay, or None to combine
    per-chunk partial results (exact for whole numbers).

    ``"add"`` or ``"mul"``: each term is recorded (see :mod:`paraloop.replay`);
    ``"touch"``: a scratch buffer, whose content matters only if a chunk wrote it.
    """
    if isinstance(strategy, strategies.Scratch):
        return "touch"
    if not isinstance(strategy, (strategies.Sum, strategies.Product, strategies.PerIndex)):
        return None
    if not getattr(strategy, "exact", True):
        return None
    updates = forms - {Form(Kind.READ)}
    if not updates or not updates <= RECORDED:
        return None
    operation = strategy.operation
    if any(form.detail == "Div" for form in updates):
        return operation  # only a replay divides as the plain loop does
    if not any(form.kind in _KEYED for form in updates):
        if _is_numpy_array(value):
            return operation if _inexact(value) else None
        # Numbers, whole ones included: a later term may be a float.  (Told apart from a mapping
        # by type first: an isinstance() against the Mapping ABC after any ABC was registered
        # walks all its subclasses, 0.1 ms of a 10-iteration loop.)
        if isinstance(value, Counter):
            # c += d drops the counts that are not positive after each addition: the plain
            # loop's result only comes of the same additions, in order (a sum of the chunks'
            # partial Counters kept a count the plain loop had dropped).
            return operation
        return (
            None if type(value) not in strategies._PLAIN_NUMBERS and isinstance(value, Mapping) else operation
        )
    if _is_numpy_array(value):
        return operation if _inexact(value) else None
    if isinstance(value, Mapping):
        factory = getattr(value, "default_factory", None)
        inexact = factory in (float, complex) or any(map(_inexact, value.values()))
        return operation if inexact else None
    if isinstance(value, list):
        return operation if any(map(_inexact, value)) else None
    return None


def whole_partials(strategy: AggregationStrategy, value: object, forms: Set[Form]) -> bool:
    """Whether partial results of this name must stay whole numbers to combine exactly.

    A per-key (or per-index) sum of whole numbers is exact in any grouping; once
    an entry becomes a float it is not, and the loop is refused (see
    :func:`paraloop.replay.check_whole`).
    """
    if not isinstance(strategy, (strategies.Sum, strategies.Product, strategies.PerIndex)):
        return False
    if not getattr(strategy, "exact", True):
        return False
    return isinstance(value, (Mapping, list)) and any(form.kind in _KEYED for form in forms)


_SEQUENTIAL = "the loop is sequential by nature at {name!r}; run it as a plain loop (without ParaLoop)"

# What paraloop combines, per type, for refusals of other forms.
_COMBINED = {
    "list": "x.append(v), x.extend(vs), x += vs, x[i] = v on a preallocated list, x[i] += v",
    "deque": "x.append(v), x.extend(vs), x += vs",
    "dict": "x[k] = v, x.update(m), x[k] += v on numbers, x[k].append(v) on a defaultdict(list)",
    "set": "x.add(v), x.update(vs), x |= vs",
    "Counter": "x[k] += n, x.update(vs), x += c, x -= c",
    "ndarray": "x += a, x *= a, x[i] = v, x[i] += v, x[i] = f(x[i]) at the loop's own index",
    "str": "x += s",
    "bool": "x = x or v, x = x and v, x |= v, x &= v",
}


def _combined(value: object) -> str:
    kind = type(value).__name__
    if kind in ("defaultdict", "OrderedDict"):
        kind = "dict"
    forms = _COMBINED.get(kind, "x += v, x -= v, x *= v, x = max(x, v), x = min(x, v)")
    return f"for a {type(value).__name__}, paraloop combines {forms}"


def _running_extreme(name: str, value: Any, stores: list[Use], reads: list[Use]) -> str | None:
    """The refusal of a running maximum or minimum written with ``if`` (``if v > m: m = v``), which
    carries ``m`` from one iteration to the next as written, but is ``m = max(m, v)``, which
    paraloop combines (ties keep the earlier value, as the ``if`` does); None for other loops:
    ``m`` not a number (paraloop combines max() of numbers only), or read elsewhere in the body
    (the running value, which max() would not give either)."""
    if len(stores) != 1 or len(reads) != 1 or not is_number(value):
        return None
    import ast  # here: a refusal's wording, not worth its import for every program

    read = reads[0]
    line = read.source.partition("\n")[0]
    test = line.removeprefix("if ").removeprefix("elif ").removesuffix(":")
    if test == line or not line.endswith(":"):
        return None
    try:
        compare = ast.parse(test, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(compare, ast.Compare) and len(compare.ops) == 1):
        return None
    left, op, right = compare.left, compare.ops[0], compare.comparators[0]
    if not isinstance(op, (ast.Gt, ast.Lt)):
        return None
    if isinstance(right, ast.Name) and right.id == name:
        other, larger = left, isinstance(op, ast.Gt)  # v > m: m = v keeps the larger
    elif isinstance(left, ast.Name) and left.id == name:
        other, larger = right, isinstance(op, ast.Lt)  # m < v: m = v keeps the larger
    else:
        return None
    value = ast.unparse(other)
    # The if holds that one store and nothing else (an argmax's second name would still be
    # carried): its source, as the rewriter spells it, is whole.
    if stores[0].source != f"{name} = {value}" or read.source != f"{line}\n    {name} = {value}":
        return None
    function = "max" if larger else "min"
    return (
        f"{name!r} is a running {'maximum' if larger else 'minimum'} written with if, which "
        f"carries {name} from one iteration to the next as written; write it "
        f"{name} = {function}({name}, {value}) instead, which paraloop combines (the plain "
        "loop's result, ties included)"
    )


def _refuse(filename: str, use: Use, message: str) -> ParaLoopError:
    return ParaLoopError(f"{filename}, line {use.line}: {message} (in '{use.source}')")


# Built-in strategies, by the forms a body updates their Variable with (checked: a Sum
# updated with *= would otherwise be summed).
_CHECKED = (
    strategies.Sum, strategies.Product, strategies.Concatenate, strategies.Merge, strategies.Union,
    strategies.Min, strategies.Max, strategies.Any, strategies.All, strategies.IndexWrites,
)  # fmt: skip


def _check_variable_forms(name: str, variable: Variable[Any], group: list[Use], filename: str) -> None:
    strategy = variable.aggregation_strategy
    if type(strategy) not in _CHECKED:
        return
    updates = [use for use in group if use.form.kind not in _NOT_UPDATES]
    if not updates:
        return
    forms = {use.form for use in updates}
    found = _strategy_for(forms, variable.value)
    if found is not None and type(found) is type(strategy):
        return
    joins = (strategies.Concatenate, strategies.Merge)
    if isinstance(variable.value, Mapping) and isinstance(found, joins) and isinstance(strategy, joins):
        return  # on a dict, Concatenate merges as Merge does
    if isinstance(strategy, strategies.Sum) and found is None and isinstance(variable.value, Mapping):
        # d[k] += x and d[k].append(x) on one dict: each entry its own sum.
        if forms <= _PER_KEY | {Form(Kind.CALL, "update")}:
            return
    spelled = ", ".join(sorted({use.source for use in updates}))
    kind = type(strategy).__name__
    suggestion = f" ({spelled} is what {type(found).__name__} combines)" if found is not None else ""
    raise _refuse(
        filename,
        updates[0],
        f"the Variable {name!r} has the strategy {kind}, which does not combine {spelled}{suggestion}. "
        f"Give it the strategy of its updates, or update it only in the forms {kind} combines; "
        "updates that depend on each other's order are sequential by nature",
    )


def _check_variable(name: str, variable: Variable[Any], group: list[Use], filename: str) -> None:
    _check_variable_forms(name, variable, group, filename)
    readable = variable.aggregation_strategy.readable_in_body
    for use in group:
        kind = use.form.kind
        if kind is Kind.READ and not readable:
            raise _refuse(
                filename,
                use,
                f"the ParaLoop body reads the Variable {name!r} besides updating it; with "
                f"{type(variable.aggregation_strategy).__name__}, each worker sees only its own "
                "part of it until the loop ends. Read it after the loop; if the body needs the "
                f"running value, {_SEQUENTIAL.format(name=name)}",
            )
        if kind in (Kind.ATTRIBUTE, Kind.MUTATE):
            raise _refuse(
                filename,
                use,
                f"the ParaLoop body changes the Variable {name!r} in a way its strategy cannot "
                "combine. Update it with +=, append, extend, add, update, [key] = or min/max",
            )


def _infer(name: str, value: Any, group: list[Use], filename: str) -> AggregationStrategy | None:
    if isinstance(value, types.ModuleType):
        # sys.stdout = ..., os.environ[k] = v: process-wide state, which each worker has its
        # own of and an iteration sets for itself (paraloop.process_state keeps such loops out
        # of threads).  A module of the user's own is the program's object: a store into it
        # would land in a worker's copy of the module and be lost.
        stores = [
            use
            for use in group
            # name.value = x is recorded as an assignment (the form a Variable's value takes)
            if use.form.kind is Kind.ATTRIBUTE
            or (use.form.kind is Kind.ASSIGN and use.source.startswith(f"{name}.value"))
        ]
        if stores and _user_code(value.__name__, getattr(value, "__file__", None)):
            raise _refuse(
                filename,
                stores[0],
                f"the ParaLoop body changes {name!r}, a module of this program, in place. Worker "
                "processes change their own copies of the module, so the change would be lost. "
                f"Compute the value in a plain name in the body and set it after the loop: for "
                f"{name}.last = x, last = x in the body and {name}.last = last after it; for "
                f"{name}.total += x, total = 0 before, total += x in the body, "
                f"{name}.total += total after",
            )
        return None
    # The updates a strategy may combine, and each kind of use that is not one.
    by_kind: dict[Kind | None, list[Use]] = {}
    for use in group:
        kind = use.form.kind
        key = kind if kind in (Kind.READ, Kind.ASSIGN, Kind.ATTRIBUTE, Kind.MUTATE) else None
        by_kind.setdefault(key, []).append(use)
    kind_name = type(value).__name__
    if isinstance(value, SharedArray) and Kind.ASSIGN not in by_kind:
        return None  # workers write into the shared memory itself: nothing to combine
    if Kind.ATTRIBUTE in by_kind:
        use = by_kind[Kind.ATTRIBUTE][0]
        if isinstance(value, dict) and re.match(rf"{re.escape(name)}\[.*\]\[.*\] \+= ", use.source):
            raise _refuse(
                filename,
                use,
                f"the ParaLoop body adds to an element of an element of {name!r} in place; paraloop "
                "combines a dict's own entries (one level of keys), not the entries of what it "
                f"holds. Key each pair once: {name}[(key, inner_key)] += 1 on a "
                f"collections.defaultdict(int) (or a collections.Counter) made before the loop, "
                "and regroup it after the loop if you need the nesting",
            )
        raise _refuse(
            filename,
            by_kind[Kind.ATTRIBUTE][0],
            f"the ParaLoop body changes an attribute or element of {name!r} in place. Worker "
            "processes change their own copies, so the change would be lost. Update a plain name "
            "in the body and apply it after the loop: for self.hits += 1, hits = 0 before the loop, "
            "hits += 1 in the body, self.hits += hits after it; for self.items.append(x), items = [] "
            "before, items.append(x) in the body, self.items.extend(items) after",
        )
    mutations = by_kind.get(Kind.MUTATE, [])
    if mutations and _is_container(value):
        use = mutations[0]
        method = use.form.detail
        if isinstance(value, dict):
            collect = f"{name}[key] = v or {name}[key] += v"
        elif isinstance(value, (set, frozenset)):
            collect = f"{name}.add(v)"
        else:
            collect = f"{name}.append(v)"
        if method == "setdefault":
            advice = (
                f"For {name}.setdefault(key, default).append(v), make {name} a defaultdict whose factory "
                f"gives the default (defaultdict(list) for []) and write {name}[key].append(v), which "
                "paraloop combines"
            )
        else:
            advice = (
                f"Call it once after the loop instead (collect with {collect} in the body), or, "
                f"if every iteration needs the result, {_SEQUENTIAL.format(name=name)}"
            )
        raise _refuse(
            filename,
            use,
            f"the ParaLoop body changes {name!r}, a {kind_name} from outside the loop, in a way "
            f"that depends on what earlier iterations left in it. {advice}",
        )
    updates = by_kind.get(None, [])
    if Kind.ASSIGN in by_kind:
        extreme = _running_extreme(name, value, by_kind[Kind.ASSIGN], by_kind.get(Kind.READ, []))
        if extreme is not None:
            raise _refuse(filename, by_kind[Kind.ASSIGN][0], extreme)
        raise _refuse(
            filename,
            by_kind[Kind.ASSIGN][0],
            f"{name!r} carries a value from one iteration to the next (an iteration reads the "
            f"{name} an earlier one left), which iterations running in parallel cannot do: "
            f"{_SEQUENTIAL.format(name=name)}. If each iteration's {name} does not depend on the "
            f"previous one, assign it before reading it in every iteration",
        )
    if not updates:
        return None  # only read: a captured input
    forms = {use.form for use in updates}
    strategy = _strategy_for(forms, value)
    if strategy is None:
        in_place = all(form.kind in _IN_PLACE for form in forms)
        if (
            in_place
            and not _is_container(value)
            and not is_number(value)
            and not isinstance(value, (str, bytes, tuple))
        ):
            return None  # methods of the user's own object: untracked side effects
        spelled = ", ".join(sorted({use.source for use in updates}))
        supported = [form for form in forms if _strategy_for({form}, value) is not None]
        if (
            isinstance(value, dict)
            and forms & _KEY_STORES
            and forms & _KEY_ADDS
            and forms <= _KEY_STORES | _KEY_ADDS
        ):
            # ``if k not in d: d[k] = 0`` then ``d[k] += 1``: the store only starts a key.
            why = (
                "together they make the result depend on the order of the iterations, unless the "
                f"store only starts a new key at zero (if k not in {name}: {name}[k] = 0): then make "
                f"{name} a collections.defaultdict(int) (or a collections.Counter) before the loop "
                f"and drop that store; paraloop combines {name}[k] += v on it. Otherwise the "
                "result depends on the order: run it as a plain loop (without ParaLoop)"
            )
        elif len(supported) == len(forms) > 1:
            why = (
                "each of them alone paraloop combines, but together they make the result depend on "
                f"the order of the iterations: {_SEQUENTIAL.format(name=name)}"
            )
        else:
            why = f"{_combined(value)}; update it in one of those forms"
        raise _refuse(
            filename,
            updates[0],
            f"paraloop cannot combine these updates of {name!r} (a {kind_name}) across workers: "
            f"{spelled}. {why}",
        )
    if Kind.READ in by_kind:
        if _is_container(value) and forms & _ELEMENT_WRITES:
            raise _refuse(
                filename,
                by_kind[Kind.READ][0],
                f"the ParaLoop body writes elements of {name!r} (line {updates[0].line}) and reads it, "
                "so an iteration may read what an earlier iteration wrote, which iterations running "
                "in parallel cannot do. If every iteration writes all of it before reading it (a "
                f"scratch buffer), say so by overwriting it whole first ({name}[:] = 0, or "
                f"{name}.fill(0)): each worker then gets its own copy. Or create it inside the body",
            )
        raise _refuse(
            filename,
            by_kind[Kind.READ][0],
            f"the ParaLoop body reads {name!r} besides updating it (line {updates[0].line}); each "
            "worker sees only its own part of it until the loop ends. Read it after the loop; if "
            f"the body needs the running value, {_SEQUENTIAL.format(name=name)}",
        )
    return strategy


def infer_reductions(
    uses: Sequence[Use], values: Mapping[str, Any], filename: str
) -> dict[str, AggregationStrategy]:
    """Strategies for the plain names the body updates; refuse what cannot be combined."""
    groups: dict[str, list[Use]] = {}
    for use in uses:
        if use.form.kind is not Kind.INVOKE:
            groups.setdefault(use.name, []).append(use)
    inferred: dict[str, AggregationStrategy] = {}
    for name, group in groups.items():
        value = values.get(name, UNBOUND)
        if value is UNBOUND:
            kinds = {use.form.kind for use in group}
            if Kind.READ in kinds and Kind.ASSIGN in kinds:
                # Unbound before the loop, so every read sees an earlier iteration's value.
                raise _refuse(
                    filename,
                    next(use for use in group if use.form.kind is Kind.READ),
                    f"{name!r} is read in one iteration before that iteration assigns it, so it "
                    "carries a value from an earlier iteration, which iterations running in "
                    "parallel cannot do. Assign it before reading it in every iteration",
                )
            continue
        if isinstance(value, Variable):
            _check_variable(name, value, group, filename)
            continue
        if isinstance(value, StandIn):
            continue  # a loop nested in a worker updates its enclosing loop's record directly
        strategy = _infer(name, value, group, filename)
        if strategy is not None:
            inferred[name] = strategy
    return inferred
