"""The fork server of paraloop's workers is forked from the program (backends/processes/fork_server.py).

So its workers share the program's hash secret: ``hash()`` of a string, and the order of a set
of strings, are the program's there (they were not: session 43's finding, and a dict built
from a set's order had its keys in another order than the plain loop's).  And the server is
what a new interpreter would have been: it holds none of the program's pipes (a child process
reading the program's pipe sees its end when the program closes it), its workers' own
standard streams are the interpreter's (not an object the program had put in their place when
the server was forked), and it ends with the program, however that ends.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from conftest import (
    FORK_SERVER_MARKS,
    FORKSERVER,
    last_json,
    process_tree,
    run_source,
    start_program,
    wait_for_line,
)

pytestmark = FORK_SERVER_MARKS


_SET_ORDER = """
    # paraloop: enable
    import json
    from collections import defaultdict
    from paraloop import ParaLoop

    documents = [f"the cat {n} sat on the mat {n % 3} and the dog {n % 5} ran" for n in range(40)]

    def plain():
        frequency = defaultdict(int)
        firsts = []
        for document in documents:
            for word in set(document.split()):
                frequency[word] += 1
            firsts.append(next(iter(set(document.split()))))
        return list(frequency.items()), firsts, [hash(d) % 7 for d in documents]

    frequency = defaultdict(int)
    firsts = []
    shards = []
    for document in ParaLoop(documents):
        for word in set(document.split()):
            frequency[word] += 1
        firsts.append(next(iter(set(document.split()))))
        shards.append(hash(document) % 7)
    print(json.dumps([list(frequency.items()), firsts, shards] == list(map(list, plain()))))
    """


def test_a_set_of_strings_is_in_the_programs_order_in_forkserver_workers(tmp_path) -> None:
    """Document frequencies counted over each document's set of words: the dict's key order is
    the sets' order, which was the worker's own (the keys came in another order, silently)."""
    assert last_json(run_source(tmp_path, _SET_ORDER, **FORKSERVER)) is True


def test_the_programs_pipes_end_when_it_closes_them(tmp_path) -> None:
    """A child process reads the program's pipe to its end: the fork server, forked from the
    program while the pipe was open, must not hold it (the child waited for ever)."""
    source = """
        # paraloop: enable
        import json, subprocess, sys
        from paraloop import ParaLoop

        reader = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read(); print('ended')"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        total = 0
        for i in ParaLoop(range(8)):
            total += i
        reader.stdin.close()
        said = reader.stdout.read().strip()
        print(json.dumps([total, said, reader.wait(timeout=20)]))
        """
    assert last_json(run_source(tmp_path, source, **FORKSERVER)) == [28, "ended", 0]


def test_a_stream_replaced_when_the_server_was_forked_is_not_the_workers_own(tmp_path) -> None:
    """The first loop runs with standard output sent to a StringIO (the server is forked then):
    a later loop's prints, with the stream back, reach the program's standard output."""
    source = """
        # paraloop: enable
        import contextlib, io, json
        from paraloop import ParaLoop

        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            for i in ParaLoop(range(4)):
                print("inside", i)
        for i in ParaLoop(range(4)):
            print("after", i)
        print(json.dumps(sorted(captured.getvalue().splitlines())))
        """
    result = run_source(tmp_path, source, **FORKSERVER)
    assert last_json(result) == [f"inside {i}" for i in range(4)]
    assert sorted(line for line in result.stdout.splitlines() if line.startswith("after")) == [
        f"after {i}" for i in range(4)
    ]


@pytest.mark.parametrize("thread", [False, True])
def test_with_another_thread_running_the_server_is_a_new_interpreter(tmp_path, thread) -> None:
    """A fork with another thread running could copy a lock that thread held: the server is then
    multiprocess's new interpreter (the loop's result, strings not hashed, is the plain one)."""
    source = f"""
        # paraloop: enable
        import json, os, threading
        from paraloop import ParaLoop

        stop = threading.Event()
        if {thread}:
            threading.Thread(target=stop.wait, daemon=True).start()
        squares = []
        servers = set()
        for i in ParaLoop(range(6)):
            squares.append(i * i)
            with open(f"/proc/{{os.getppid()}}/cmdline", "rb") as command:
                servers.add(b"multiprocess.forkserver" in command.read())
        stop.set()
        print(json.dumps([squares, sorted(servers)]))
        """
    assert last_json(run_source(tmp_path, source, **FORKSERVER)) == [[i * i for i in range(6)], [thread]]


@pytest.mark.xfail(
    strict=True,
    reason="open: with another thread running as its first loop starts, the program's fork server is "
    "a new interpreter, whose hash secret is its own (docs/semantics.md, Known differences)",
)
def test_a_program_running_another_thread_hashes_as_the_program(tmp_path) -> None:
    source = """
        # paraloop: enable
        import json, threading
        from paraloop import ParaLoop

        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        keys = [f"user-{n}" for n in range(40)]
        shards = []
        for key in ParaLoop(keys):
            shards.append(hash(key) % 7)
        stop.set()
        print(json.dumps(shards == [hash(key) % 7 for key in keys]))
        """
    assert last_json(run_source(tmp_path, source, **FORKSERVER)) is True


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_server_and_its_workers_end_with_the_program(tmp_path, how) -> None:
    """Killed in the middle of a loop, the program leaves no process behind: the fork server
    forked from it sees its end (its "alive" pipe) as multiprocess's own does."""
    script = tmp_path / "program.py"
    script.write_text(
        "# paraloop: enable\n"
        "import time\n"
        "from paraloop import ParaLoop\n"
        "for i in ParaLoop(range(1000), chunksize=1):\n"
        "    if i == 0:\n"
        "        print('running', flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    program = start_program(script, **FORKSERVER)
    try:
        wait_for_line(program, "running")
        deadline = time.monotonic() + 30
        while len(process_tree(program.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        below = process_tree(program.pid)[1:]
        assert len(below) >= 2, below  # the server and at least one worker
        os.kill(program.pid, how)
        program.communicate(timeout=30)
        processes = []
        for pid in below:
            try:
                processes.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        left = psutil.wait_procs(processes, timeout=10)[1]
        assert not left, [process.pid for process in left]
    finally:
        if program.poll() is None:
            program.kill()
            program.communicate()
