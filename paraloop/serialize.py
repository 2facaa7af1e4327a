"""Bytes on the wire: the standard pickle where it can, dill where it must.

The standard pickle is several times faster than dill on plain data (large
dicts of strings and numbers), so items and results go through it first.
Anything it cannot carry, and anything that refers to ``__main__`` (which a
spawned worker does not have: it never runs the user's script), goes through
dill, which sends functions and classes of ``__main__`` by value.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any

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
    import dill  # imported when first needed: importing a rewritten module stays cheap

    data: bytes = dill.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL, recurse=True)
    return _DILL + data


def _main_type(kind: type, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """Rebuild a class of ``__main__`` sent by value, or reuse the one this process has.

    Without this, a dataclass defined in the user's script would come back
    from a worker as a new class of the same name: ``isinstance`` and ``==``
    with the script's own objects would fail.  A worker keeps the classes it
    rebuilds in its ``__main__``, so later items and results refer to one class.
    """
    main = sys.modules.get("__main__")
    if namespace.get("__module__") == "__main__" and main is not None:
        existing = getattr(main, name, None)
        if isinstance(existing, type) and existing.__qualname__ == namespace.get("__qualname__", name):
            return existing
        created: type = _create_type(kind, name, bases, namespace)
        if existing is None:
            setattr(main, name, created)
        return created
    rebuilt: type = _create_type(kind, name, bases, namespace)
    return rebuilt


def _create_type(kind: type, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    import dill

    created: type = dill._dill._create_type(kind, name, bases, namespace)
    return created


def _unpickler(payload: memoryview) -> Any:
    import dill

    class _Unpickler(dill.Unpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if module == "dill._dill" and name == "_create_type":
                return _main_type
            return super().find_class(module, name)

    return _Unpickler(io.BytesIO(payload))


def loads(data: bytes | memoryview) -> Any:
    view = memoryview(data)
    tag, payload = bytes(view[:1]), view[1:]
    if tag == _PICKLE:
        return pickle.loads(payload)
    if tag == _DILL:
        return _unpickler(payload).load()
    raise ValueError(f"unknown paraloop payload tag {tag!r}")
