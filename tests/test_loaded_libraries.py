"""The C library's counts of the shared libraries loaded, which tell paraloop that a native pool
may have been loaded since its last look (paraloop/loaded_libraries.py)."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest

LIBRARY = (
    ctypes.util.find_library("gomp") or ctypes.util.find_library("uuid") or ctypes.util.find_library("z")
)


@pytest.mark.skipif(LIBRARY is None, reason="needs a shared library the interpreter has not loaded")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's and musl's counters")
def test_a_library_loaded_with_ctypes_changes_the_counts_and_one_already_loaded_does_not() -> None:
    script = f"""
import ctypes, json
from paraloop.loaded_libraries import counts
first = counts()
ctypes.CDLL({LIBRARY!r})
second = counts()
ctypes.CDLL({LIBRARY!r})  # already loaded: the same object
print(json.dumps([first, second, counts()]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second, third = json.loads(done.stdout)
    assert second[0] > first[0] and second[1] == first[1]
    assert third == second
