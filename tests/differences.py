"""Where a loop's result differs from the plain loop's, for differential tests: type, value, float
bits, numpy dtype, shape and bytes, key order, and the repr of what compares equal (a set's order)."""

from __future__ import annotations

import struct
from collections import defaultdict, deque
from typing import Any

import numpy as np


def short(value: Any, limit: int = 300) -> str:
    if isinstance(value, np.ndarray):
        text = f"array({np.array2string(value, threshold=40, precision=17)}, dtype={value.dtype})"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def float_bits(value: float) -> bytes:
    return struct.pack("<d", value)


def difference(plain: Any, got: Any, where: str = "result") -> str | None:
    """Where ``got`` differs from ``plain`` (type, value, float bits, dtype, key order, the repr of
    equal values), or None."""
    if type(plain) is not type(got):
        return f"{where}: {type(got).__name__} {short(got)} instead of {type(plain).__name__} {short(plain)}"
    if isinstance(plain, float):
        if float_bits(plain) != float_bits(got):
            return f"{where}: {got!r} instead of {plain!r}"
        return None
    if isinstance(plain, complex):
        if (float_bits(plain.real), float_bits(plain.imag)) != (float_bits(got.real), float_bits(got.imag)):
            return f"{where}: {got!r} instead of {plain!r}"
        return None
    if isinstance(plain, np.ndarray):
        if plain.dtype != got.dtype or plain.shape != got.shape:
            return f"{where}: dtype {got.dtype} shape {got.shape} instead of {plain.dtype} {plain.shape}"
        if plain.dtype.hasobject:
            return difference(plain.tolist(), got.tolist(), where)
        if np.ascontiguousarray(plain).tobytes() != np.ascontiguousarray(got).tobytes():
            return f"{where}: {short(got)} instead of {short(plain)}"
        return None
    if isinstance(plain, np.generic):
        if plain.dtype != got.dtype or plain.tobytes() != got.tobytes():
            return f"{where}: {got!r} instead of {plain!r}"
        return None
    if isinstance(plain, (list, tuple, deque)):
        if len(plain) != len(got):
            return f"{where}: {len(got)} items {short(got)} instead of {len(plain)} {short(plain)}"
        if isinstance(plain, deque) and plain.maxlen != got.maxlen:
            return f"{where}: maxlen {got.maxlen} instead of {plain.maxlen}"
        for index, (a, b) in enumerate(zip(plain, got)):
            found = difference(a, b, f"{where}[{index}]")
            if found:
                return found
        return None
    if isinstance(plain, dict):
        if list(plain) != list(got):
            return f"{where}: keys {short(list(got), 400)} instead of {short(list(plain), 400)}"
        if isinstance(plain, defaultdict) and plain.default_factory is not got.default_factory:
            return f"{where}: default_factory {got.default_factory!r} instead of {plain.default_factory!r}"
        for key in plain:
            found = difference(plain[key], got[key], f"{where}[{key!r}]")
            if found:
                return found
        return None
    if plain != got or repr(plain) != repr(got):
        return f"{where}: {short(got, 400)} instead of {short(plain, 400)}"
    return None
