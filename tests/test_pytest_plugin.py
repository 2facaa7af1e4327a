"""paraloop's pytest plugin: a marked test module gets both rewrites.

paraloop's, so its loops run in worker processes, and then pytest's, so a failing assert
reports its values, in a loop body too (in the remote traceback).  Each test runs a real
pytest in a new process, which loads the plugin through its ``pytest11`` entry point.
"""

from __future__ import annotations

import pytest
from conftest import START_METHODS

# Once (tests/conftest.py): the plugin is the same hook on every Python (test_hook.py runs everywhere).
pytestmark = pytest.mark.once

pytest_plugins = ["pytester"]

MODULE = """\
# paraloop: enable
import os
from paraloop import ParaLoop


def test_plain_assert_explains_itself():
    x = 3
    assert x == 4


def test_loop_runs_in_workers():
    pids = []
    for i in ParaLoop(range(12), num_processes=2, chunksize=1, start_method={method!r}):
        pids.append(os.getpid())
    assert os.getpid() not in pids


def test_assert_in_the_body_explains_itself():
    total = 0
    for i in ParaLoop(range(6), num_processes=2, chunksize=1, start_method={method!r}):
        doubled = i * 2
        assert doubled < 8
        total += doubled
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_marked_test_module_gets_both_rewrites(pytester: pytest.Pytester, method: str) -> None:
    """No conftest imports paraloop: the plugin puts its hook in place."""
    pytester.makepyfile(test_marked=MODULE.format(method=method))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::paraloop.ParaLoopWarning", timeout=120
    )
    result.assert_outcomes(passed=1, failed=2)
    output = result.stdout.str()
    assert "E       assert 3 == 4" in output
    # The body's assert, with its values, raised in a worker and named by its iteration.
    assert "AssertionError: assert 8 < 8" in output
    assert "raised in iteration 4 (item 4) of the loop" in output


def test_without_the_plugin_the_loop_is_not_rewritten(pytester: pytest.Pytester) -> None:
    """``-p no:paraloop`` turns it off: the loop runs in the caller, with paraloop's warning."""
    pytester.makepyfile(test_marked=MODULE.format(method="fork"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:paraloop", "-k", "workers", timeout=120
    )
    result.assert_outcomes(failed=1)
    assert "ParaLoopWarning" in result.stdout.str()
