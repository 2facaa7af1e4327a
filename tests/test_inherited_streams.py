"""The program's sockets and pipes that fork workers inherit (paraloop/backends/processes/inherited.py).

A fork worker holds every descriptor the program had open when it was forked, and the pool
keeps it for later loops: a stream the program closes after a loop must end for its peer all
the same (tests/test_adversarial_session41.py, finding 5: a child that reads its input to the
end, a socket's peer), and a stream the program keeps open must stay usable by the bodies that
write to it in the workers.  Each program runs under every start method and as the plain
program, and must print what the plain program prints.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import last_json, run_plain, run_source

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork workers")

METHODS = ["fork", "forkserver", "spawn"]

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


# The program closes a child's input after a loop and opens another pipe, which is likely to get
# the same number: the workers' copy is the old stream, which they let go of all the same.
REPLACED = """
import json, os, subprocess, sys, time
from paraloop import ParaLoop

child = subprocess.Popen(
    [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)
child.stdin.write("hello")
child.stdin.flush()
number = child.stdin.fileno()

total = 0
for i in ParaLoop(range(40), num_processes=2, caller_runs=False):
    time.sleep(0.005)
    total += i

child.stdin.close()
read_end, write_end = os.pipe()
taken = number in (read_end, write_end)
try:
    child.wait(timeout=10)
    end = child.stdout.read().strip()
except subprocess.TimeoutExpired:
    child.kill()
    child.wait()
    end = "the child still waits for the end of its input"
print(json.dumps([total, end]))
"""


@pytest.mark.parametrize("method", METHODS)
def test_a_childs_input_closed_and_its_number_taken_again_ends_for_the_child(
    tmp_path: Path, method: str
) -> None:
    plain = last_json(run_plain(tmp_path, REPLACED))
    assert plain == [780, "5"]
    assert last_json(run_source(tmp_path, REPLACED, PARALOOP_START_METHOD=method)) == plain
