"""Whether a value is a number as :mod:`numbers`' ABCs tell it, without importing ``numbers``.

Importing ``numbers`` (its ABCs) cost the runtime's import a quarter of a millisecond, in every
program.  Until a program imports it, no class can be registered with it or derive from its
classes (numpy, ``fractions`` and ``decimal`` import it to register theirs), and it counts
exactly ``int``, ``float`` and ``complex`` and their subclasses.  Once it is imported, its own
``isinstance`` answers, registrations included (a module of the program's own named
``numbers``, without those classes, counts as none imported).
"""

from __future__ import annotations

import sys

__all__ = ["is_integral", "is_number"]


def is_number(value: object) -> bool:
    """``isinstance(value, numbers.Number)``, bools included, as that says."""
    kind = getattr(sys.modules.get("numbers"), "Number", None)
    if kind is None:
        return isinstance(value, (int, float, complex))
    return isinstance(value, kind)


def is_integral(value: object) -> bool:
    """``isinstance(value, numbers.Integral)``."""
    kind = getattr(sys.modules.get("numbers"), "Integral", None)
    if kind is None:
        return isinstance(value, int)
    return isinstance(value, kind)
