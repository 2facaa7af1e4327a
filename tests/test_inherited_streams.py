"""The program's sockets and pipes that fork workers inherit (paraloop/backends/processes/inherited.py).

A fork worker holds every descriptor the program had open when it was forked, and the pool
keeps it for later loops: a stream the program closes after a loop must end for its peer all
the same (tests/test_adversarial_session41.py, finding 5: a child that reads its input to the
end, a socket's peer, a pipe closed and its number taken by another), and a stream the program
keeps open must stay usable by the bodies that write to it in the workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import last_json, run_plain, run_source

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork workers")

# A pipe the program keeps open while two loops' bodies write into it from the workers; between
# the loops the workers wait (and look at the program's streams) for a few of their intervals.
KEPT = """
import json, os, time
from paraloop import ParaLoop

read_end, write_end = os.pipe()


def loop(first):
    total = 0
    for i in ParaLoop(range(first, first + 20), num_processes=2, caller_runs=False):
        os.write(write_end, b"%d;" % i)
        total += i
    return total


totals = [loop(0)]
time.sleep(0.5)  # the idle workers look at the program's streams meanwhile (every 0.1 s)
totals.append(loop(20))
os.close(write_end)
written = b""
while chunk := os.read(read_end, 4096):
    written += chunk
print(json.dumps([totals, sorted(int(n) for n in written.decode().split(";") if n)]))
"""


def test_a_pipe_the_program_keeps_open_stays_the_bodies_across_loops(tmp_path: Path) -> None:
    """Under fork: the bodies' writes reach the program from the workers in both loops, and the
    program reads the pipe to its end once it closed its own write end: the workers let go of
    theirs then, although they wrote into it.  (A descriptor's number means nothing in a spawn
    or fork server worker, which inherits none.)"""
    plain = last_json(run_plain(tmp_path, KEPT))
    assert plain == [[190, 590], list(range(40))]
    assert last_json(run_source(tmp_path, KEPT, PARALOOP_START_METHOD="fork")) == plain
