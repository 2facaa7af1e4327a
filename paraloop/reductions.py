"""Deciding, when a loop starts, how each outer name the body updates is combined.

The rewriter lists every use of every outer name in a loop body with its form
(see :mod:`paraloop.hook.uses`).  Here those forms meet the values the names
have when the loop starts:

- a :class:`~paraloop.Variable` is combined with its own strategy; reading it
  in the body (each worker sees only its part) is refused;
- a plain number, list, dict, set, Counter, defaultdict, deque or numpy array
  updated only in the forms of CONTRACT.md section 4 gets a strategy inferred
  from the forms and the type (``total += x`` is a Sum, ``out.append(x)`` a
  Concatenate, ``out[i] = x`` on a preallocated list writes those indexes);
- anything else that the workers would silently get wrong (a value carried
  from one iteration to the next, a mutation like ``.sort()``, an attribute of
  an outer object, a reduction read in the body) raises ParaLoopError naming
  the file, the line, the name, and the fix.

Updates through methods of the user's own objects (``model.update(batch)``)
are untracked side effects: they happen in the workers.
"""

from __future__ import annotations

import numbers
import operator
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from . import aggregation_strategies as strategies
from .aggregation_strategies import AggregationStrategy
from .errors import ParaLoopError
from .execute import UNBOUND
from .guard import _user_code
from .replay import StandIn
from .replay import inexact as _inexact
from .shared import SharedArray
from .variable import Variable

__all__ = ["infer_reductions"]

Use = tuple[str, int, str, str]

_CONTAINERS = (list, dict, set, frozenset, bytearray, deque, Counter, OrderedDict, defaultdict)


def _is_numpy_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _is_container(value: object) -> bool:
    return isinstance(value, _CONTAINERS) or _is_numpy_array(value)


# Forms a worker can record for the caller to replay (see paraloop.replay).
_OPERATORS = ("Add", "Sub", "Mult", "Div")
RECORDED = frozenset(
    f"{prefix}:{op}" for prefix in ("aug", "binop", "commuted", "item-aug", "own-aug") for op in _OPERATORS
)
_KEYED = ("item-aug:", "own-aug:", "item-get:")
_OWN_FORMS = frozenset({"own-update", "own-read", "own-item", *(f"own-aug:{op}" for op in _OPERATORS)})


def _normal(forms: set[str]) -> set[str]:
    """The forms as strategies see them: ``x = x + e`` is ``x += e``; ``x[i] = e`` at the
    iteration's own index is ``x[k] = e``."""
    return {
        form.replace("binop:", "aug:")
        .replace("own-aug:", "item-aug:")
        .replace("own-item", "item")
        .replace("item-get:", "item-aug:")
        for form in forms
    }


def _strategy_for(forms: set[str], value: object) -> AggregationStrategy | None:
    """The strategy that combines these update forms on this value, if there is one."""
    if forms == {"scratch"}:
        if isinstance(value, (list, bytearray, dict, set)) or _is_numpy_array(value):
            return strategies.Scratch()
        return None
    kinds = {form.partition(":")[0] for form in forms}
    if forms & {"own-update", "own-read"} or (forms <= _OWN_FORMS and len(kinds) > 1):
        # x[i] = f(x[i]), x[i, :] = row then x[i, 0] += 1: each iteration reads and
        # writes its own element or row.
        if forms <= _OWN_FORMS and (isinstance(value, (list, bytearray)) or _is_numpy_array(value)):
            return strategies.ElementUpdates()
        return None
    if any(form.startswith("commuted:") for form in forms):
        # total = e + total: the same sum for numbers (their + and * commute exactly), a
        # prepend for lists and strings.
        numeric = isinstance(value, numbers.Number) and not isinstance(value, bool)
        if not (numeric or _is_numpy_array(value) or type(value).__module__ == "numpy"):
            return None
        forms = {form.replace("commuted:", "binop:") for form in forms}
    forms = _normal(forms)
    additive = {"aug:Add", "aug:Sub"}
    multiplicative = {"aug:Mult", "aug:Div"}
    if forms == {"or"}:
        return strategies.Any()
    if forms == {"and"}:
        return strategies.All()
    if forms in ({"or-last"}, {"and-last"}):
        # ok = test(x) and ok: the last value that decided, or the pre-loop value.
        return strategies.Last()
    if isinstance(value, bool):
        if forms in ({"aug:BitOr", "or"}, {"aug:BitAnd", "and"}):
            return strategies.Any() if "or" in forms else strategies.All()
        table: dict[str, AggregationStrategy] = {
            "aug:BitOr": strategies.Any(),
            "or": strategies.Any(),
            "aug:BitAnd": strategies.All(),
            "and": strategies.All(),
            "max": strategies.Max(),
            "min": strategies.Min(),
        }
        return table[next(iter(forms))] if len(forms) == 1 and forms <= set(table) else None
    if isinstance(value, numbers.Number) or (
        type(value).__module__ == "numpy" and not _is_numpy_array(value)
    ):
        if forms <= additive:
            return strategies.Sum()
        if forms <= multiplicative:
            return strategies.Product()
        if forms == {"max"}:
            return strategies.Max()
        if forms == {"min"}:
            return strategies.Min()
        if isinstance(value, int):
            bitwise = {
                "aug:BitOr": (operator.or_, 0),
                "aug:BitXor": (operator.xor, 0),
                "aug:BitAnd": (operator.and_, -1),
            }
            if len(forms) == 1 and forms <= set(bitwise):
                function, identity = bitwise[next(iter(forms))]
                return strategies.Reduce(function, identity)
        return None
    item_additive = {"item-aug:Add", "item-aug:Sub"}
    item_multiplicative = {"item-aug:Mult", "item-aug:Div"}
    if _is_numpy_array(value):
        if forms <= additive | item_additive:
            return strategies.Sum()
        if forms <= multiplicative | item_multiplicative:
            return strategies.Product()
        if forms == {"item"}:
            return strategies.IndexWrites()
        return None
    if isinstance(value, (str, bytes, tuple)):
        return strategies.Concatenate() if forms == {"aug:Add"} else None
    if isinstance(value, (list, deque, bytearray)):
        if forms <= {"aug:Add", "call:append", "call:extend"}:
            return strategies.Concatenate()
        if isinstance(value, (list, bytearray)):
            if forms == {"item"}:
                return strategies.IndexWrites()
            if forms <= item_additive:
                return strategies.PerIndex("add")
            if forms <= item_multiplicative:
                return strategies.PerIndex("mul")
        return None
    if isinstance(value, (set, frozenset)):
        if forms <= {"call:add", "call:update", "aug:BitOr"}:
            return strategies.Union()
        return None
    if isinstance(value, Counter):
        if forms <= {"item-aug:Add", "item-aug:Sub", "call:update"}:
            return strategies.Sum()
        return strategies.Merge() if forms == {"item"} else None
    if isinstance(value, dict):
        per_key = {"item-aug:Add", "item-aug:Sub", "item-call:append", "item-call:extend",
                   "item-call:add", "item-call:update"}  # fmt: skip
        if forms <= per_key:
            return strategies.Sum()
        if forms <= item_multiplicative:
            return strategies.Product()
        if forms <= {"item", "call:update", "aug:BitOr"}:
            return strategies.Merge()
        return None
    return None


def replay_operation(strategy: AggregationStrategy, value: object, forms: set[str]) -> str | None:
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
    updates = forms - {"read"}
    if not updates or not updates <= RECORDED:
        return None
    operation = strategy.operation
    if any(form.endswith(":Div") for form in updates):
        return operation  # only a replay divides as the plain loop does
    if not any(form.startswith(_KEYED) for form in updates):
        if _is_numpy_array(value):
            return operation if _inexact(value) else None
        # Numbers, whole ones included: a later term may be a float.
        return None if isinstance(value, Mapping) else operation
    if _is_numpy_array(value):
        return operation if _inexact(value) else None
    if isinstance(value, Mapping):
        factory = getattr(value, "default_factory", None)
        inexact = factory in (float, complex) or any(map(_inexact, value.values()))
        return operation if inexact else None
    if isinstance(value, list):
        return operation if any(map(_inexact, value)) else None
    return None


def whole_partials(strategy: AggregationStrategy, value: object, forms: set[str]) -> bool:
    """Whether partial results of this name must stay whole numbers to combine exactly.

    A per-key (or per-index) sum of whole numbers is exact in any grouping; once
    an entry becomes a float it is not, and the loop is refused (see
    :func:`paraloop.replay.check_whole`).
    """
    if not isinstance(strategy, (strategies.Sum, strategies.Product, strategies.PerIndex)):
        return False
    if not getattr(strategy, "exact", True):
        return False
    return isinstance(value, (Mapping, list)) and any(form.startswith(_KEYED) for form in forms)


_SEQUENTIAL = "the loop is sequential by nature at {name!r}; run it as a plain loop (without ParaLoop)"

# What paraloop combines, per type, for refusals of other forms.
_COMBINED = {
    "list": "x.append(v), x.extend(vs), x += vs, x[i] = v on a preallocated list, x[i] += v",
    "deque": "x.append(v), x.extend(vs), x += vs",
    "dict": "x[k] = v, x.update(m), x[k] += v on numbers, x[k].append(v) on a defaultdict(list)",
    "set": "x.add(v), x.update(vs), x |= vs",
    "Counter": "x[k] += n, x.update(vs)",
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


def _refuse(filename: str, use: Use, message: str) -> ParaLoopError:
    _name, line, _form, source = use
    return ParaLoopError(f"{filename}, line {line}: {message} (in '{source}')")


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
    updates = [use for use in group if use[2] not in ("read", "own-read", "attribute", "assign", "apply")]
    updates = [use for use in updates if not use[2].startswith("mutate:")]
    if not updates:
        return
    forms = {use[2] for use in updates}
    found = _strategy_for(forms, variable.value)
    if found is not None and type(found) is type(strategy):
        return
    joins = (strategies.Concatenate, strategies.Merge)
    if isinstance(variable.value, Mapping) and isinstance(found, joins) and isinstance(strategy, joins):
        return  # on a dict, Concatenate merges as Merge does
    if isinstance(strategy, strategies.Sum) and found is None and isinstance(variable.value, Mapping):
        # d[k] += x and d[k].append(x) on one dict: each entry its own sum.
        if forms <= {"item-aug:Add", "item-aug:Sub", "item-call:append", "item-call:extend",
                     "item-call:add", "item-call:update", "call:update"}:  # fmt: skip
            return
    spelled = ", ".join(sorted({use[3] for use in updates}))
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
        form = use[2]
        if form == "read" and not readable:
            raise _refuse(
                filename,
                use,
                f"the ParaLoop body reads the Variable {name!r} besides updating it; with "
                f"{type(variable.aggregation_strategy).__name__}, each worker sees only its own "
                "part of it until the loop ends. Read it after the loop; if the body needs the "
                f"running value, {_SEQUENTIAL.format(name=name)}",
            )
        if form == "attribute" or form.startswith("mutate:"):
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
            if use[2] == "attribute" or (use[2] == "assign" and use[3].startswith(f"{name}.value"))
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
    by_form: dict[str, list[Use]] = {}
    for use in group:
        kind = use[2]
        key = kind if kind in ("read", "assign", "attribute") or kind.startswith("mutate:") else "update"
        by_form.setdefault(key, []).append(use)
    kind_name = type(value).__name__
    if isinstance(value, SharedArray) and "assign" not in by_form:
        return None  # workers write into the shared memory itself: nothing to combine
    if "attribute" in by_form:
        raise _refuse(
            filename,
            by_form["attribute"][0],
            f"the ParaLoop body changes an attribute or element of {name!r} in place. Worker "
            "processes change their own copies, so the change would be lost. Update a plain name "
            "in the body and apply it after the loop: for self.hits += 1, hits = 0 before the loop, "
            "hits += 1 in the body, self.hits += hits after it; for self.items.append(x), items = [] "
            "before, items.append(x) in the body, self.items.extend(items) after",
        )
    mutations = by_form.get("mutate", []) + [
        u for k, v in by_form.items() if k.startswith("mutate:") for u in v
    ]
    if mutations and _is_container(value):
        use = mutations[0]
        method = use[2].partition(":")[2]
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
    updates = by_form.get("update", [])
    if "assign" in by_form:
        raise _refuse(
            filename,
            by_form["assign"][0],
            f"{name!r} carries a value from one iteration to the next (an iteration reads the "
            f"{name} an earlier one left), which iterations running in parallel cannot do: "
            f"{_SEQUENTIAL.format(name=name)}. If each iteration's {name} does not depend on the "
            f"previous one, assign it before reading it in every iteration",
        )
    if not updates:
        return None  # only read: a captured input
    forms = {use[2] for use in updates}
    strategy = _strategy_for(forms, value)
    if strategy is None:
        in_place = all(form.startswith(("call:", "item")) for form in forms)
        if (
            in_place
            and not _is_container(value)
            and not isinstance(value, (numbers.Number, str, bytes, tuple))
        ):
            return None  # methods of the user's own object: untracked side effects
        spelled = ", ".join(sorted({use[3] for use in updates}))
        supported = [form for form in forms if _strategy_for({form}, value) is not None]
        if len(supported) == len(forms) > 1:
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
    if "read" in by_form:
        if _is_container(value) and forms & {"item", "own-item", "item-aug:Add", "own-aug:Add"}:
            raise _refuse(
                filename,
                by_form["read"][0],
                f"the ParaLoop body writes elements of {name!r} (line {updates[0][1]}) and reads it, "
                "so an iteration may read what an earlier iteration wrote, which iterations running "
                "in parallel cannot do. If every iteration writes all of it before reading it (a "
                f"scratch buffer), say so by overwriting it whole first ({name}[:] = 0, or "
                f"{name}.fill(0)): each worker then gets its own copy. Or create it inside the body",
            )
        raise _refuse(
            filename,
            by_form["read"][0],
            f"the ParaLoop body reads {name!r} besides updating it (line {updates[0][1]}); each "
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
        if not use[2].startswith("invoke:"):
            groups.setdefault(use[0], []).append(use)
    inferred: dict[str, AggregationStrategy] = {}
    for name, group in groups.items():
        value = values.get(name, UNBOUND)
        if value is UNBOUND:
            forms = {use[2] for use in group}
            if "read" in forms and "assign" in forms:
                # Unbound before the loop, so every read sees an earlier iteration's value.
                raise _refuse(
                    filename,
                    next(use for use in group if use[2] == "read"),
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
