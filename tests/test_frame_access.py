"""What a loop body reaches through its frame: ``globals()``, ``locals()``, ``vars()``, ``dir()``,
``eval()`` and ``exec()``.

CONTRACT.md section 5 (no silent loss): a body that rebinds a global through ``globals()``
changes the program's module, as ``global z; z = i`` does; the loop gives the plain result or
raises ParaLoopError naming the global.  Section 1 (the plain loop's result): ``locals()`` and
one-argument ``eval()`` in a body see the names the plain loop's frame holds (docs/semantics.md,
"What a body's frame shows").
"""

from __future__ import annotations

import json

import pytest
from conftest import START_METHODS, last_json, run_plain, run_source

_WORKERS = {"PARALOOP_BACKEND": "processes", "PARALOOP_CALLER_RUNS": "0"}

_GLOBALS_WRITE = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop

    z = -1
    for i in ParaLoop(range(3)):
        globals()["z"] = i
    first = z

    def in_a_function():
        for i in ParaLoop(range(3)):
            globals()["z"] = i * 10
        return z

    print(json.dumps([first, in_a_function()]))
    """


def _elsewhere(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that runs a program's loops away from the caller on ``backend``: a
    process start method, or ``"dask"`` (the tests' cluster)."""
    if backend == "dask":
        cluster = request.getfixturevalue("dask_cluster")
        return {"PARALOOP_BACKEND": "dask", "PARALOOP_DASK_SCHEDULER": cluster.scheduler_address,
                "PARALOOP_CALLER_RUNS": "0"}  # fmt: skip
    return {**_WORKERS, "PARALOOP_START_METHOD": backend}


@pytest.mark.parametrize("backend", [*START_METHODS, "dask"])
def test_a_global_rebound_through_globals_is_refused_not_lost(tmp_path, backend, request) -> None:
    assert last_json(run_plain(tmp_path, _GLOBALS_WRITE)) == [2, 20]
    result = run_source(tmp_path, _GLOBALS_WRITE, **_elsewhere(backend, request))
    # Before: [-1, -1], the iterations' stores left in the workers' copies.
    assert result.returncode == 1, result.stdout
    assert "ParaLoopError" in result.stderr
    assert "program.py, line 7: an iteration rebound the global 'z'" in result.stderr
