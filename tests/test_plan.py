"""The plan the generated code hands the runtime: rebuilt from its source as the rewriter
found it, and able to travel with a worker function sent by value."""

from __future__ import annotations

import pickle

import paraloop.runtime
from paraloop.hook.rewriter import RUNTIME, _plan_number, _Rewriter, _use_source
from paraloop.plan import Form, Kind, LoopPlan, Use, read


def test_each_use_is_rebuilt_from_its_generated_source() -> None:
    """Every kind of use, with a detail and without, survives the trip through generated code."""
    for kind in Kind:
        for detail in ("", "Add", "np.random.normal"):
            use = Use("x", 7, Form(kind, detail), "x = 'quoted' + \"text\"")
            spelled = ("x", 1, "for", (), (), (), (), (eval(_use_source(use), {}),))
            assert read(spelled).uses == (use,)


def test_a_plan_is_read_back_from_its_generated_constant() -> None:
    """The statement the rewriter makes is one constant, and reads back into the plan it found,
    every field set or not."""
    use = Use("total", 4, Form(Kind.ITEM_CALL, "append"), "groups[k].append(x)")
    plans = [
        LoopPlan(line=3, name="f"),
        LoopPlan(line=9, name="<module>", kind="list", local=("a",), stored=("b", "c"), after=("c",),
                 wrapped=("v",), uses=(use, use._replace(line=5))),
    ]  # fmt: skip
    for plan in plans:
        rewriter = _Rewriter.__new__(_Rewriter)
        rewriter.plans = {}
        variable = rewriter.plan(1, **plan._asdict())
        statement = rewriter.plans[1]
        code = compile(statement, "<plan>", "exec")
        assert code.co_names == (variable,), "the plan is built by calls when the module imports"
        spelled = eval(statement.partition(" = ")[2], {RUNTIME: paraloop.runtime})
        assert read(spelled) == plan
        assert read(spelled) is read(spelled), "a plan is read once"
        assert read(plan) is plan


def test_a_plan_pickles() -> None:
    """A worker sent by value carries the plans of the loops nested in it among its globals."""
    use = Use("total", 3, Form(Kind.AUG, "Add"), "total += i")
    plan = LoopPlan(line=2, name="f", local=("total",), stored=("i", "total"), uses=(use,))
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_plan_numbers_are_read_only_from_plan_names() -> None:
    """An interactive namespace's other names do not move the numbering of a cell's loops."""
    assert _plan_number("__paraloop_plan_12__") == 12
    for other in ("__paraloop_plan___", "__paraloop_plan_x__", "plan_3", "__paraloop_r1__"):
        assert _plan_number(other) == 0
