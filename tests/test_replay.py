"""The caller's replay of recorded terms (paraloop.replay): the plain loop's bits, by every path.

A float or complex ``Sum``/``Product`` is replayed term by term onto the pre-loop value
(docs/strategies.md).  An array of terms onto an int, float or complex is folded by a C
function when a self-check at first use showed it folds plainly on this Python (``sum``
before 3.12, ``math.prod``), else 16 terms per Python step.  These tests compare every path
with the plain ``for`` loop, bit for bit, on terms chosen to expose any other order of
roundings; they need no worker processes, so every Python version runs them alike.
"""

from __future__ import annotations

import array
import math
import struct
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from paraloop import replay as r
from paraloop.replay import Recorder, Replay, replay

TINY = 5e-324
# Huge and tiny mixes, cancellations, subnormals, signed zeros, rounding ties.
ADVERSARIAL = [
    1e16, 1.0, -1e16, 1.0, 0.1, 0.2, 0.3, -0.0, 0.0, 1e-300, TINY, -TINY, 2.0**-53, 1.0,
    2.0**-53, 2.0**-53, 1e308, -1e308, 3.3, 0.7, 1.0 / 3, -2.5e-17, 123456789.123, 1e-8,
    -1e16, 1e16 + 2, 2.0**52, 0.5, -0.5, 1.5, 2.0**-1074, 9007199254740993.0, 1e22, -1e22,
]  # fmt: skip
# Near one, so that long products neither overflow nor underflow yet round at every step.
NEAR_ONE = [1.0 + (k % 13 - 6) * 1.1e-7 + k * 1e-12 for k in range(257)]
SPECIAL = [float("inf"), float("-inf"), float("nan"), -0.0]
STARTS: list[Any] = [0.0, -0.0, 1.0, 1e16, 0, 1, 7, 2**70, 0j, complex(-0.0, -0.0), complex(1e16, -3.0)]
# Around the 16 terms per Python step, and long enough for every remainder.
LENGTHS = [0, 1, 2, 15, 16, 17, 31, 32, 33, 100, 257]


def plain(start: Any, terms: Any, operation: str) -> Any:
    """The plain loop."""
    total = start
    if operation == "add":
        for term in terms:
            total += term
    else:
        for term in terms:
            total *= term
    return total


def bits(value: Any) -> Any:
    """What must be equal: the type and every bit (a float's sign of zero and NaN included)."""
    if type(value) is float:
        return (float, struct.pack("<d", value))
    if type(value) is complex:
        return (complex, struct.pack("<dd", value.real, value.imag))
    return (type(value), repr(value))


def outcome(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The bits of ``function(*args, **kwargs)``, or the type and message of its exception instead."""
    try:
        return bits(function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - the plain loop's error is what must match
        return (type(error), str(error))


def sequences(pool: list[float], seed: int) -> Iterator[list[float]]:
    """Terms of every length in LENGTHS drawn from ``pool`` in a scrambled order."""
    for length in LENGTHS:
        yield [pool[(seed + k * 7 + k * k) % len(pool)] for k in range(length)]


def chunks(terms: list[Any], sizes: list[int]) -> Iterator[list[Any]]:
    start = 0
    for size in sizes:
        yield terms[start : start + size]
        start += size
    yield terms[start:]


@pytest.mark.parametrize("operation", ["add", "mul"])
@pytest.mark.parametrize("start", STARTS, ids=repr)
def test_an_array_of_floats_is_replayed_with_the_plain_loops_bits(start: Any, operation: str) -> None:
    pool = ADVERSARIAL if operation == "add" else [*NEAR_ONE, 0.5, 2.0, -1.0, 1e-3]
    for seed in range(3):
        for terms in sequences(pool, seed):
            expected = outcome(plain, start, terms, operation)
            replayed = outcome(replay, start, Replay(array.array("d", terms)), operation)
            assert replayed == expected, (start, operation, terms)


@pytest.mark.parametrize("operation", ["add", "mul"])
@pytest.mark.parametrize("start", STARTS, ids=repr)
def test_both_folds_give_the_plain_loops_bits_on_this_python(start: Any, operation: str) -> None:
    """The C fold (where its self-check passes) and the 16-terms-per-step loop, each on its own."""
    pool = ADVERSARIAL + SPECIAL if operation == "add" else NEAR_ONE + SPECIAL
    python_fold = r._add_in_order if operation == "add" else r._multiply_in_order
    for seed in range(3):
        for terms in sequences(pool, seed):
            entries = array.array("d", terms)
            expected = outcome(plain, start, terms, operation)
            assert outcome(python_fold, start, entries) == expected, (start, operation, terms)
            if r._c_fold_in_order(operation, type(start), "d"):
                if operation == "add":
                    folded = outcome(sum, entries, start)
                else:
                    folded = outcome(math.prod, entries, start=start)
                assert folded == expected, (start, operation, terms)


@pytest.mark.parametrize("start", [0.0, -0.0, 0, 1, 0j, 1e300, -1e300])
def test_infinities_nans_and_overflow_replay_as_in_the_plain_loop(start: Any) -> None:
    cases = [
        [float("inf"), 1.0, float("-inf"), 2.0],  # inf - inf: nan
        [float("nan"), 1e308],
        [1e308, 1e308, -1e308],  # overflows to inf and stays there
        [-0.0, -0.0],
        [float("-inf")] * 17,
        [1e308] * 20,
    ]
    for terms in cases:
        for operation in ("add", "mul"):
            expected = outcome(plain, start, terms, operation)
            replayed = outcome(replay, start, Replay(array.array("d", terms)), operation)
            assert replayed == expected, (start, operation, terms)


def test_an_int_too_large_for_a_float_fails_as_in_the_plain_loop() -> None:
    start = 10**400
    for operation in ("add", "mul"):
        expected = outcome(plain, start, [0.5, 1.0], operation)
        assert expected[0] is OverflowError
        assert outcome(replay, start, Replay(array.array("d", [0.5, 1.0])), operation) == expected


@pytest.mark.parametrize("operation", ["add", "mul"])
def test_int_terms_onto_a_float_or_complex_replay_as_in_the_plain_loop(operation: str) -> None:
    """A name that started as a float can get a chunk of whole-number terms: an array('q')."""
    terms = [2**53, 1, 1, -(2**53), 2**62, 513, 513, -(2**62), 3, 2**53 + 1, 5, -7] * 3
    if operation == "mul":
        terms = [3, 2**20 + 1, 5, -7, 1, 2] * 6
    for start in (0.0, -0.0, 0.5, 1.0, 0j, complex(0.5, -0.0)):
        for length in LENGTHS:
            chunk = terms[:length]
            expected = outcome(plain, start, chunk, operation)
            replayed = outcome(replay, start, Replay(array.array("q", chunk)), operation)
            assert replayed == expected, (start, operation, chunk)


@pytest.mark.parametrize("operation", ["add", "mul"])
def test_recorded_chunks_replayed_in_turn_give_the_plain_loops_bits(operation: str) -> None:
    """Terms recorded by Recorders, cut into chunks as the workers would, replayed in order."""
    pool = ADVERSARIAL if operation == "add" else NEAR_ONE
    terms = [pool[(k * 11) % len(pool)] * (1 + k % 3) for k in range(1000)]
    start = 0.0 if operation == "add" else 1.0
    expected = bits(plain(start, terms, operation))
    for sizes in ([1000], [1, 15, 16, 17, 400], [7] * 100, [333, 1, 333]):
        total = start
        for chunk in chunks(terms, sizes):
            recorder = Recorder(start, operation)
            for term in chunk:
                recorder.append(term)
            partial = recorder.finish()
            assert isinstance(partial.entries, array.array) or not chunk
            total = replay(total, partial, operation)
        assert bits(total) == expected, sizes


def test_inverse_terms_are_replayed_as_in_the_plain_loop() -> None:
    """``total -= x`` travels negated in the float array; ``total /= x`` as an inverse entry."""
    recorder = Recorder(0.0, "add")
    plain_total = 0.1
    for k in range(40):
        if k % 3:
            recorder.append(k * 0.1)
            plain_total += k * 0.1
        else:
            recorder.put_inverse(k * 1e15 + 0.3)
            plain_total -= k * 1e15 + 0.3
    partial = recorder.finish()
    assert isinstance(partial.entries, array.array)
    assert bits(replay(0.1, partial, "add")) == bits(plain_total)

    recorder = Recorder(1.0, "mul")
    plain_total = 1.0
    for k in range(1, 40):
        if k % 4:
            recorder.append(1.0 + k * 1e-3)
            plain_total *= 1.0 + k * 1e-3
        else:
            recorder.put_inverse(1.0 + k * 1.7e-3)
            plain_total /= 1.0 + k * 1.7e-3
    assert bits(replay(1.0, recorder.finish(), "mul")) == bits(plain_total)


class Counting(float):
    """A float whose ``+=`` the plain loop calls: a replay must call it too, term by term."""

    def __iadd__(self, other: float) -> Counting:  # type: ignore[misc]
        return Counting(float(self) + other + 1.0)

    def __imul__(self, other: float) -> Counting:  # type: ignore[misc]
        return Counting(float(self) * other * 2.0)


@pytest.mark.parametrize("operation", ["add", "mul"])
def test_a_value_of_another_type_is_replayed_by_the_plain_loop(
    operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an exact int, float or complex takes the fast fold; a float subclass with its own ``+=``
    and a Decimal (which refuses a float term, as in the plain loop) do not."""

    def no_fold(*args: Any) -> Any:
        raise AssertionError("folded")

    monkeypatch.setattr(r, "_fold", no_fold)
    terms = [0.5, 1e16, -1e16, 0.25]
    start = Counting(1.0)
    expected = plain(start, terms, operation)
    replayed = replay(start, Replay(array.array("d", terms)), operation)
    assert type(replayed) is Counting and bits(float(replayed)) == bits(float(expected))
    expected_error = outcome(plain, Decimal("1.5"), terms, operation)
    assert expected_error[0] is TypeError
    assert outcome(replay, Decimal("1.5"), Replay(array.array("d", terms)), operation) == expected_error


def test_decimal_and_fraction_terms_are_replayed_one_by_one() -> None:
    """Terms that are not all floats (or all ints) travel as a list, applied by the generic loop."""
    for start, terms in [
        (Decimal("0"), [Decimal(1) / Decimal(7)] * 20),
        (Fraction(0), [Fraction(1, k) for k in range(1, 20)]),
        (0.0, [1.5, 2, 0.25, True, 1e16]),
    ]:
        for operation in ("add", "mul"):
            recorder = Recorder(start, operation)
            for term in terms:
                recorder.append(term)
            partial = recorder.finish()
            assert type(partial.entries) is list
            assert bits(replay(start, partial, operation)) == bits(plain(start, terms, operation))


class Half(float):
    pass


@pytest.mark.parametrize(
    ("terms", "kind", "total"),
    [
        ([0.5, 1.5, -0.0], "d", None),
        ([1, 2, -3], "q", 0),
        ([2**70, 1], list, 2**70 + 1),  # too large for an array('q')
        ([1, 2.0], list, None),
        ([2.0, 1], list, None),
        ([1, True], list, None),  # a bool is not an int here
        ([True, 1], list, None),
        ([0.5, Half(1.5)], list, None),  # nor a float subclass a float
        ([Half(1.5), 0.5], list, None),
        ([], list, None),
    ],
)
def test_finish_makes_an_array_only_of_exact_floats_or_exact_ints(
    terms: list[Any], kind: Any, total: Any
) -> None:
    recorder = Recorder(0.0, "add")
    for term in terms:
        recorder.append(term)
    partial = recorder.finish()
    if kind is list:
        assert type(partial.entries) is list and partial.entries == terms
        assert [type(term) for term in partial.entries] == [type(term) for term in terms]
    else:
        assert type(partial.entries) is array.array and partial.entries.typecode == kind
        assert partial.entries.tolist() == terms
    assert partial.total == total


def compensated_sum(entries: Any, start: Any = 0) -> Any:
    """What 3.12's sum() does to floats, exactly rounded here: not the plain loop's order."""
    return math.fsum([start, *entries])


def reversed_product(entries: Any, start: Any = 1) -> Any:
    total = start
    for term in reversed(entries):
        total *= term
    return total


def failing(entries: Any, start: Any = 0) -> Any:
    raise RuntimeError("no fold here")


@pytest.mark.parametrize(
    ("name", "fold", "operation"),
    [
        ("_c_sum", compensated_sum, "add"),
        ("_c_sum", failing, "add"),
        ("_c_prod", reversed_product, "mul"),
        ("_c_prod", failing, "mul"),
    ],
)
def test_a_c_fold_that_is_not_plain_fails_its_self_check_and_is_not_used(
    name: str, fold: Callable[..., Any], operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(r, name, fold)
    monkeypatch.setattr(r, "_C_FOLD_IN_ORDER", {})
    terms = [1e16, 1.0, -1e16, 1.0] * 5 + [0.1, 0.1, 0.7, 3.3] * 5
    for start in (0.0, 1.0, 0, 1, 0j):
        expected = bits(plain(start, terms, operation))
        assert bits(replay(start, Replay(array.array("d", terms)), operation)) == expected
        assert r._C_FOLD_IN_ORDER[(operation, type(start), "d")] is False


def test_the_self_checks_verdicts_on_this_python() -> None:
    """Before 3.12 sum() adds floats plainly; from 3.12 it compensates.  math.prod multiplies
    plainly (3.10 to 3.13; a later Python is left to the self-check)."""
    assert r._c_fold_in_order("add", float, "d") is (sys.version_info < (3, 12))
    assert r._c_fold_in_order("add", int, "d") is (sys.version_info < (3, 12))
    if sys.version_info < (3, 14):
        assert r._c_fold_in_order("add", complex, "d")  # sum()'s generic loop: PyNumber_Add
        for kind in (int, float, complex):
            assert r._c_fold_in_order("mul", kind, "d")
    assert not r._c_fold_in_order("add", float, "f")  # no check for other typecodes: never used


def test_the_self_check_terms_tell_the_plain_order_from_the_others() -> None:
    """Each check has terms whose plain fold differs from the exact, the reversed and a compensated one."""
    for (operation, typecode), checks in r._CHECKS.items():
        start = 0.0 if operation == "add" else 1.0
        told = set()
        for terms in checks:
            folded = plain(start, terms, operation)
            exact = float(
                sum(map(Fraction, terms)) if operation == "add" else math.prod(map(Fraction, terms))
            )
            if folded != exact:
                told.add("exact")
            if folded != plain(start, list(reversed(terms)), operation):
                told.add("reversed")
            if operation == "add" and folded != math.fsum(terms):
                told.add("compensated")
        assert "exact" in told and (operation == "mul" or {"reversed", "compensated"} <= told), (
            operation,
            typecode,
        )
