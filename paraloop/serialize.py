"""Bytes on the wire: the standard pickle where it can, dill where it must.

The standard pickle is several times faster than dill on plain data (large
dicts of strings and numbers), so items and results go through it first.
Anything it cannot carry, and anything that refers to ``__main__`` (which a
spawned worker does not have: it never runs the user's script), goes through
dill, which sends functions and classes of ``__main__`` by value.
"""

from __future__ import annotations

import pickle
from typing import Any

import dill

__all__ = ["dumps", "dumps_by_value", "loads"]

_PICKLE = b"P"
_DILL = b"D"


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` with the fastest serializer that can carry it."""
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - any failure means: let dill try
        pass
    else:
        if b"__main__" not in data:
            return _PICKLE + data
    return dumps_by_value(obj)


def dumps_by_value(obj: Any) -> bytes:
    """Serialize with dill, functions and classes of ``__main__`` by value."""
    data: bytes = dill.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL, recurse=True)
    return _DILL + data


def loads(data: bytes | memoryview) -> Any:
    view = memoryview(data)
    tag, payload = bytes(view[:1]), view[1:]
    if tag == _PICKLE:
        return pickle.loads(payload)
    if tag == _DILL:
        return dill.loads(bytes(payload))
    raise ValueError(f"unknown paraloop payload tag {tag!r}")
