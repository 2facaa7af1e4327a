"""An object inside the items (a tuple's element) that several items hold, changed in place.

joblib's test_pool_with_memmap (``inplace_double``), translated: items ``(a, (i, j))`` that all
hold one array ``a``, each iteration doubling ``a[i, j]``. Each chunk's copy of ``a`` came back
whole and was written into ``a`` over the others': only the last chunk's writes were left,
silently. CONTRACT section 5, no silent loss: the plain result or a refusal whose advice works.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

import paraloop

Loader = Callable[..., ModuleType]


@pytest.mark.parametrize("where", ["body", "helper"])
def test_one_array_inside_every_item_changed_in_place_is_refused(load_module: Loader, where: str) -> None:
    module = load_module("""
        import numpy as np
        from paraloop import ParaLoop
        def double(data, position):
            data[position] *= 2
        def run(backend, where):
            a = np.ones((3, 5), dtype=np.float32)
            tasks = [(a, (i, j)) for i in range(3) for j in range(5)]
            for data, position in ParaLoop(tasks, num_processes=2, chunksize=7, backend=backend):
                if where == "body":
                    data[position] *= 2
                else:
                    double(data, position)
            return a
    """)
    with pytest.raises(
        paraloop.ParaLoopError,
        match=r"line 10: iteration \d+ changed its item in place, and an object inside it",
    ) as caught:
        module.run("processes", where)
    assert "backend='sequential'" in str(caught.value)
    # The advice works.
    assert (module.run("sequential", where) == 2).all()


def test_a_shared_object_no_iteration_changes_is_no_reason_to_refuse(load_module: Loader) -> None:
    """Items ``(settings, row)``: every item holds one settings dict, which no iteration changes,
    and each iteration changes its own row: the plain result, not a refusal."""
    module = load_module("""
        from paraloop import ParaLoop
        def run():
            settings = {"scale": 3}
            rows = [[i, i + 1] for i in range(10)]
            for options, row in ParaLoop([(settings, row) for row in rows], num_processes=2, chunksize=3):
                row.append(row[0] * options["scale"])
            return rows, settings
    """)
    rows, settings = module.run()
    assert rows == [[i, i + 1, i * 3] for i in range(10)]
    assert settings == {"scale": 3}
