"""paraloop.module_stores: which bindings of the program's modules count as a store."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from paraloop import module_stores


@pytest.fixture
def program_module(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A module of the program (a file outside the installation), in sys.modules."""
    module = types.ModuleType("paraloop_stores_probe")
    module.__file__ = str(tmp_path / "paraloop_stores_probe.py")
    module.x = 0.0  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    sys.modules.pop(module.__name__, None)


def test_a_module_put_in_place_of_another_is_seen(program_module: types.ModuleType, tmp_path: Path) -> None:
    """The list of the program's modules is found again when sys.modules changes, not only when
    it grows: a test (or a reload) that takes a module out and puts another in keeps its size."""
    assert program_module in module_stores._programs_modules()
    sys.modules.pop(program_module.__name__)
    other = types.ModuleType("paraloop_stores_other")
    other.__file__ = str(tmp_path / "paraloop_stores_other.py")
    sys.modules[other.__name__] = other
    try:
        found = module_stores._programs_modules()
        assert other in found and program_module not in found
    finally:
        sys.modules.pop(other.__name__)


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (lambda m: setattr(m, "x", 1.0), True),
        (lambda m: setattr(m, "x", -0.0), True),  # -0.0 == 0.0, but it is another value
        (lambda m: setattr(m, "x", float("0.0")), False),  # an equal float
        (lambda m: delattr(m, "x"), True),
        (lambda m: setattr(m, "__n", 1), True),  # a name of the program's, not a dunder
        (lambda m: setattr(m, "__cached__", "elsewhere"), False),  # the import system's
        (lambda m: setattr(m, "backend", sys), True),  # another module bound to a name
    ],
    ids=["rebound", "negative zero", "equal float", "deleted", "__n", "dunder", "a module"],
)
def test_what_counts_as_a_store(program_module: types.ModuleType, change: object, seen: bool) -> None:
    before = module_stores.snapshot()
    change(program_module)  # type: ignore[operator]
    found = module_stores.changed(before)
    assert (found is not None) is seen, found
    if seen:
        assert found is not None and found[0] == program_module.__name__


def test_a_submodule_bound_by_its_import_is_not_a_store(program_module: types.ModuleType) -> None:
    before = module_stores.snapshot()
    sub = types.ModuleType(f"{program_module.__name__}.sub")
    program_module.sub = sub  # type: ignore[attr-defined]
    assert module_stores.changed(before) is None


@pytest.mark.parametrize("name", ["sched", "calendar", "profile"])
def test_a_module_of_the_program_named_like_a_standard_one_is_the_programs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The walk of sys.modules skips the standard library by name, but a module of the
    program's named like one of its modules (its file outside the standard library's
    directory) is the program's: its globals are watched like any other's."""
    from paraloop import loaded_modules

    module = types.ModuleType(name)
    module.__file__ = str(tmp_path / f"{name}.py")
    # Imported as a program imports it: added to sys.modules (a value replaced in place would
    # keep sys.modules' size and last entry, which say when to walk it again).
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, name, module)
    # Judged afresh: another test of the process may have met the standard library's module.
    monkeypatch.setattr(loaded_modules, "_standard", set(sys.builtin_module_names))
    monkeypatch.setattr(loaded_modules, "_shadowed", set())
    assert module in module_stores._programs_modules()
    standard = sys.modules["json"]  # imported by pytest: a file of the standard library
    assert standard not in module_stores._programs_modules()


class _Holder:
    """A wrapper that is no module at all, holding the module (a lazy-module object); reading any
    attribute it does not have fails loudly."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"__getattr__({name!r}) was called")


def test_a_module_that_put_a_wrapper_in_its_place_is_compared_by_its_own_namespace(
    program_module: types.ModuleType,
) -> None:
    """Its functions store in the module's namespace, which sys.modules no longer holds: a store
    there is found, and finding it reads the wrapper's namespace, never its __getattr__."""
    sys.modules[program_module.__name__] = _Holder(program_module)  # type: ignore[assignment]
    before = module_stores.snapshot()
    program_module.x = 1.0  # type: ignore[attr-defined]
    assert module_stores.changed(before) == (program_module.__name__, "x")


def test_an_installed_modules_wrapper_is_not_the_programs(program_module: types.ModuleType) -> None:
    """A wrapper whose module is a file of the installation (as a library's deprecation shim) is
    not compared."""
    program_module.__file__ = str(Path(sys.prefix, "lib", "shimmed_by_a_library.py"))
    sys.modules[program_module.__name__] = _Holder(program_module)  # type: ignore[assignment]
    before = module_stores.snapshot()
    program_module.x = 1.0  # type: ignore[attr-defined]
    assert module_stores.changed(before) is None
