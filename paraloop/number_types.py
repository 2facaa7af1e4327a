"""Whether a value is a number, as :mod:`numbers`' ABCs tell it.

``numbers`` is imported with the runtime, not when a loop first asks: a program may take it out of
``sys.modules`` again (a snapshot of it restored after an import, ``mock.patch.dict`` around one)
while its classes live on (a ``Fraction`` registered with the module taken out), or another of
its threads may be importing it when a loop starts (``Number`` defined, ``float`` not yet
registered); either made a number no number to a check that looked it up then (session 41's
adversarial findings 1, 2, 6 and 8).  The built-in numbers are told by type first: the same
answer, quicker, and the answer a program's own module named ``numbers`` (first on its path, as
the script's folder is) cannot change.
"""

from __future__ import annotations

import numbers

__all__ = ["is_integral", "is_number"]

_BUILT_IN = (int, float, complex)
# A program's own module named numbers may lack them: then only the built-in numbers count.
_NUMBER = getattr(numbers, "Number", None)
_INTEGRAL = getattr(numbers, "Integral", None)
if not isinstance(_NUMBER, type) or not isinstance(_INTEGRAL, type):
    _NUMBER = _INTEGRAL = None


def is_number(value: object) -> bool:
    """``isinstance(value, numbers.Number)`` (bools included, as that says)."""
    return isinstance(value, _BUILT_IN) or (_NUMBER is not None and isinstance(value, _NUMBER))


def is_integral(value: object) -> bool:
    """``isinstance(value, numbers.Integral)``."""
    return isinstance(value, int) or (_INTEGRAL is not None and isinstance(value, _INTEGRAL))
