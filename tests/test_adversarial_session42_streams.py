"""Adversarial session 42 (streams): fork workers let go of the program's sockets and pipes once
the program closed them (fb5bc6c, paraloop/backends/processes/inherited.py).

Each finding was a strict xfail that failed 3 of 3; the other tests are attacks that held.  Fixed
the same day (an ordinary test since): 1 for datagram sockets (a DatagramHandler's, which carry no
stream to end: let alone), 2 and 3 (a worker also looks as a loop's job arrives), 5 (a stream is
told by its file's device and inode, not by what /proc names).  Open, strict xfails, documented
in docs/semantics.md: 1 for a SocketHandler (its first record after the program replaced it),
4 (descriptors 0-2 are the workers' own streams), 6 (the workers let go of a listening socket at
their next look, not at once).

1. A logging handler the program configured again (``logging.config.dictConfig`` called a
   second time, or the handler replaced by a new one to the same server): the fork workers go
   on logging through their copy of the old handler (they never see the program's logging
   changes), whose socket the program closed.  Before fb5bc6c the old socket still reached the
   server; now the worker points its number at ``/dev/null``, every ``DatagramHandler.send``
   raises ``OSError: [Errno 88] Socket operation on non-socket``: the bodies' log records of
   every later loop are lost, and stderr fills with ``--- Logging error ---`` tracebacks.  (A
   ``SocketHandler`` loses the first record of each worker, without a word.)  Plain: every record
   reaches the server.
2. A program that closes a child's input and starts a loop at once, whose iterations wait for
   the child's answer: the workers never waited 0.1 s for work between the close and the
   loop's chunks (inherited.let_go_closed runs only when ``connection.poll`` timed out, not as
   a job or a chunk arrives), so they hold the pipe while the iterations wait: each iteration
   waits for ever (here up to its 5 s deadline).  Plain: the child answers at once.  (The
   loop has ``caller_runs=False``; by default the caller runs its first iterations and the
   workers, idle meanwhile, let go.)
3. The same gap, with loops back to back: a thread of the program gives a child its input and
   waits for its answer (``communicate``) while the main thread runs short loops until the
   answer is there.  Each loop's job reaches the workers within 0.1 s of the last, so they
   never let go: the child answers only once the program stops running loops (here after the
   8 s deadline; a program that loops ``while not answered`` loops for ever).
4. A pipe the program put on its own standard output (``os.dup2(child.stdin.fileno(), 1)``: a
   pager, a filter, capturing a C library's output) and replaced by its old stdout after a
   loop: the workers keep their descriptor 1, which is that pipe, and the child never reads
   the end of its input.  inherited.note skips descriptors 0-2; under forkserver and spawn the
   workers (and the fork server) inherit the program's 0-2 too, although docs/semantics.md
   says they inherit none.
5. A named pipe (``os.mkfifo``) whose path is removed after the workers started (the
   ``TemporaryDirectory`` it lives in ends): a fork worker tells a stream by what
   ``/proc/self/fd/N`` names, and a FIFO's link is its path, which becomes ``PATH (deleted)``:
   inherited.let_go_closed takes that for the worker's own code having replaced the descriptor
   and stops watching it, so the workers hold the pipe's write end for ever and the child that
   reads it to its end never ends.
6. A server the program restarts on its port between loops (``server.close()``, then
   ``socket.create_server`` on the same port at once, as a restart does): the fork workers still
   hold the listening socket (they let go of it only at their next look, up to 0.1 s later, and
   only while they wait for work), so the new ``bind`` fails with ``OSError: [Errno 98] Address
   already in use``.  Plain: the server listens again.  (Before fb5bc6c the same, for good.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import last_json, lasting_new_segments, run_plain, run_source

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork workers")


# Program text the programs below share: a child that prints how long its input was, once it read
# it to its end; and its end, waited for (up to 10 s: a child that never reads the end of its input
# says so).
def _open_finding(reason: str) -> pytest.MarkDecorator:
    """A finding left open (documented in docs/semantics.md): a strict xfail."""
    return pytest.mark.xfail(strict=True, reason=reason)


# The messages of the log records a DatagramHandler sent to ``receiver`` (until none came for 2 s).
RECEIVED = """receiver.settimeout(2)
messages = []
try:
    while True:
        record = pickle.loads(receiver.recv(65536)[4:])
        messages.append(record["msg"] % tuple(record["args"] or ()))
except TimeoutError:
    pass
"""
COUNTING_CHILD = """child = subprocess.Popen(
    [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)
"""
CHILDS_END = """try:
    child.wait(timeout=10)
    end = child.stdout.read().strip()
except subprocess.TimeoutExpired:
    child.kill()
    child.wait()
    end = "the child still waits for the end of its input"
"""

METHODS = ["fork", "forkserver", "spawn"]


# ---------------------------------------------------------------------------------------------
# Finding 1: a logging handler the program configured again.

RECONFIGURED_LOGGING = (
    """
import json, logging, logging.config, pickle, socket, sys, time
from paraloop import ParaLoop

receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
host, port = receiver.getsockname()
CONFIG = {
    "version": 1,
    "handlers": {"server": {"class": "logging.handlers.DatagramHandler", "host": host, "port": port}},
    "loggers": {"work": {"handlers": ["server"], "level": "INFO", "propagate": False}},
}
logging.config.dictConfig(CONFIG)
log = logging.getLogger("work")
log.info("start")  # the handler makes its socket


def run(first):
    total = 0
    for i in ParaLoop(range(first, first + 10), num_processes=2):
        time.sleep(0.01)
        log.info("item %d", i)
        total += i
    return total


totals = [run(0)]
if sys.argv[1] == "dictConfig":
    logging.config.dictConfig(CONFIG)  # configured again: the old handler closed, a new one made
else:
    old = log.handlers[0]
    log.removeHandler(old)
    old.close()
    log.addHandler(logging.handlers.DatagramHandler(host, port))
log.info("again")
time.sleep(0.5)  # the workers wait for work meanwhile
totals.append(run(10))
"""
    + RECEIVED
    + """print(json.dumps([totals, sorted(messages, key=lambda m: (len(m), m))]))
"""
)


@pytest.mark.parametrize("how", ["dictConfig", "replaced"])
def test_log_records_reach_the_server_after_the_program_configured_logging_again(
    tmp_path: Path, how: str
) -> None:
    plain = last_json(run_plain(tmp_path, RECONFIGURED_LOGGING, how))
    expected = ["start", "again"] + [f"item {i}" for i in range(20)]
    assert plain == [[45, 145], sorted(expected, key=lambda m: (len(m), m))]
    assert last_json(run_source(tmp_path, RECONFIGURED_LOGGING, how, PARALOOP_START_METHOD="fork")) == plain


# The same with a SocketHandler (TCP): the first record each worker logs after the program
# replaced its handler is lost, silently (send() takes the OSError for a broken connection).
RECONFIGURED_TCP_LOGGING = """
import json, logging, logging.handlers, pickle, socket, struct, threading, time
from paraloop import ParaLoop

server = socket.create_server(("127.0.0.1", 0))
host, port = server.getsockname()
messages = []


def serve_one(conn):
    with conn:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            while len(data) >= 4 and len(data) >= 4 + struct.unpack(">L", data[:4])[0]:
                size = struct.unpack(">L", data[:4])[0]
                record = pickle.loads(data[4 : 4 + size])
                data = data[4 + size :]
                messages.append(record["msg"] % tuple(record["args"] or ()))


def accept():
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


threading.Thread(target=accept, daemon=True).start()
log = logging.getLogger("work")
log.setLevel(logging.INFO)
log.propagate = False
handler = logging.handlers.SocketHandler(host, port)
log.addHandler(handler)
log.info("start")


def run(first):
    total = 0
    for i in ParaLoop(range(first, first + 10), num_processes=2, caller_runs=False):
        time.sleep(0.01)
        log.info("item %d", i)
        total += i
    return total


totals = [run(0)]
log.removeHandler(handler)  # a new handler to the same server
handler.close()
log.addHandler(logging.handlers.SocketHandler(host, port))
time.sleep(0.5)
totals.append(run(10))
deadline = time.monotonic() + 5
while len(messages) < 21 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
items = {int(m.split()[1]) for m in messages if m.startswith("item ")}
print(json.dumps([totals, sorted(set(range(20)) - items)]))
"""


@_open_finding(
    "finding 1 (open, documented): after the program replaced its SocketHandler, the first "
    "record each fork worker logs through its old copy is lost without a word (the stream it "
    "names is over; the handler reconnects for the next)"
)
def test_tcp_log_records_reach_the_server_after_the_program_replaced_its_handler(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, RECONFIGURED_TCP_LOGGING))
    assert plain == [[45, 145], []]
    assert last_json(run_source(tmp_path, RECONFIGURED_TCP_LOGGING, PARALOOP_START_METHOD="fork")) == plain


# The attack that held: a handler the program keeps, across loops with the workers waiting
# between them (they look at the program's streams meanwhile and leave this one alone).
KEPT_LOGGING = (
    """
import json, logging, logging.handlers, pickle, socket, time
from paraloop import ParaLoop

receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
log = logging.getLogger("work")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(logging.handlers.DatagramHandler(*receiver.getsockname()))
log.info("start")

totals = []
for first in (0, 10, 20):
    total = 0
    for i in ParaLoop(range(first, first + 10), num_processes=2):
        time.sleep(0.01)
        log.info("item %d", i)
        total += i
    totals.append(total)
    time.sleep(0.4)
"""
    + RECEIVED
    + """print(json.dumps([totals, len(messages), len(set(messages))]))
"""
)


def test_held_a_logging_handler_the_program_keeps_serves_the_bodies_of_every_loop(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, KEPT_LOGGING))
    assert plain == [[45, 145, 245], 31, 31]
    assert last_json(run_source(tmp_path, KEPT_LOGGING, PARALOOP_START_METHOD="fork")) == plain


# ---------------------------------------------------------------------------------------------
# Finding 2: a child's input closed just before a loop whose iterations wait for the child.

CLOSED_THEN_LOOP = """
import json, os, subprocess, sys, time
from paraloop import ParaLoop

child = subprocess.Popen(
    [
        sys.executable,
        "-c",
        "import os, sys; n = len(sys.stdin.read()); open('part', 'w').write(str(n)); os.rename('part', 'done')",
    ],
    stdin=subprocess.PIPE,
    text=True,
)

total = 0
for i in ParaLoop(range(20), num_processes=2):  # the pool's workers start here
    time.sleep(0.01)
    total += i

child.stdin.write("hello")
child.stdin.close()  # the child reads to the end of its input, then writes "done"
deadline = time.time() + 5
seen = []
for i in ParaLoop(range(4), num_processes=2, caller_runs=False):
    while not os.path.exists("done") and time.time() < deadline:
        time.sleep(0.02)
    seen.append(open("done").read() if os.path.exists("done") else "no end of input")
try:
    child.wait(timeout=10)
except subprocess.TimeoutExpired:
    child.kill()
    child.wait()
if os.path.exists("done"):
    os.remove("done")
print(json.dumps([total, seen]))
"""


def test_a_loop_right_after_the_program_closed_a_childs_input_sees_the_child_answer(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, CLOSED_THEN_LOOP))
    assert plain == [190, ["5", "5", "5", "5"]]
    assert last_json(run_source(tmp_path, CLOSED_THEN_LOOP, PARALOOP_START_METHOD="fork")) == plain


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_held_a_loop_right_after_the_program_closed_a_childs_input_elsewhere(
    tmp_path: Path, method: str
) -> None:
    plain = last_json(run_plain(tmp_path, CLOSED_THEN_LOOP))
    assert last_json(run_source(tmp_path, CLOSED_THEN_LOOP, PARALOOP_START_METHOD=method)) == plain


# ---------------------------------------------------------------------------------------------
# Finding 3: loops back to back while a thread of the program waits for a child's answer.

BACK_TO_BACK = (
    """
import json, subprocess, sys, threading, time
from paraloop import ParaLoop

"""
    + COUNTING_CHILD
    + """total = 0
for i in ParaLoop(range(20), num_processes=2):  # the pool's workers start here
    time.sleep(0.01)
    total += i

answer = []
done = threading.Event()


def feed():  # the child's input, then its answer
    answer.append(child.communicate("hello", timeout=30)[0].strip())
    done.set()


threading.Thread(target=feed, daemon=True).start()
deadline = time.monotonic() + 8
while not done.is_set() and time.monotonic() < deadline:  # batches of work until the child answered
    part = 0
    for i in ParaLoop(range(16), num_processes=2):
        time.sleep(0.005)
        part += i
    total += part
answered = done.is_set()
if not done.wait(10):
    child.kill()
    done.wait(10)
print(json.dumps([answer, answered]))
"""
)


def test_loops_back_to_back_do_not_keep_a_closed_childs_input_open(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, BACK_TO_BACK))
    assert plain == [["5"], True]
    assert last_json(run_source(tmp_path, BACK_TO_BACK, PARALOOP_START_METHOD="fork")) == plain


# ---------------------------------------------------------------------------------------------
# Finding 4: a pipe the program put on its standard output for a while.

ON_STDOUT = (
    """
import json, os, subprocess, sys, time
from paraloop import ParaLoop

# The program's own output goes through a child (a pager, a filter) for a while.
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; data = sys.stdin.read(); sys.stderr.write('%d lines' % data.count(chr(10)))"],
    stdin=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
)
sys.stdout.flush()
saved = os.dup(1)
os.dup2(child.stdin.fileno(), 1)
child.stdin.close()

total = 0
for i in ParaLoop(range(20), num_processes=2, caller_runs=False):
    time.sleep(0.01)
    total += i
print("total", total)

sys.stdout.flush()
os.dup2(saved, 1)  # the program's output is its own again: the child reads the end of its input
os.close(saved)
"""
    + CHILDS_END.replace("child.stdout", "child.stderr")
    + """print(json.dumps([total, end]))
"""
)


@_open_finding(
    "finding 4 (open, documented): a pipe the program put on its descriptor 1 and replaced after "
    "a loop stays open in the workers (and the fork server) under every start method: the child "
    "reading it waits for ever"
)
@pytest.mark.parametrize("method", METHODS)
def test_a_pipe_the_program_put_on_its_stdout_ends_once_it_took_its_stdout_back(
    tmp_path: Path, method: str
) -> None:
    plain = last_json(run_plain(tmp_path, ON_STDOUT))
    assert plain == [190, "1 lines"]
    assert last_json(run_source(tmp_path, ON_STDOUT, PARALOOP_START_METHOD=method)) == plain


# ---------------------------------------------------------------------------------------------
# Finding 5: a named pipe whose path is gone.

NAMED_PIPE = (
    """
import json, os, subprocess, sys, tempfile, time
from paraloop import ParaLoop

with tempfile.TemporaryDirectory() as folder:
    fifo = os.path.join(folder, "input")
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(len(open(sys.argv[1]).read()))", fifo],
        stdout=subprocess.PIPE,
        text=True,
    )
    with open(fifo, "w") as feed:  # a named pipe the child reads to its end
        total = 0
        for i in ParaLoop(range(20), num_processes=2):
            time.sleep(0.01)
            total += i
        feed.write("hello")
    if sys.argv[1] == "kept":
        time.sleep(0.5)
# the folder is gone, and the program's end of the pipe closed: the child reads the end
"""
    + CHILDS_END
    + """print(json.dumps([total, end]))
"""
)


def test_a_named_pipe_whose_path_is_gone_ends_for_its_reader(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, NAMED_PIPE, "removed"))
    assert plain == [190, "5"]
    assert last_json(run_source(tmp_path, NAMED_PIPE, "removed", PARALOOP_START_METHOD="fork")) == plain


def test_held_a_named_pipe_closed_while_its_path_is_there_ends_for_its_reader(tmp_path: Path) -> None:
    """The workers look while the path is still there (0.5 s): they let go."""
    plain = last_json(run_plain(tmp_path, NAMED_PIPE, "kept"))
    assert plain == [190, "5"]
    assert last_json(run_source(tmp_path, NAMED_PIPE, "kept", PARALOOP_START_METHOD="fork")) == plain


# ---------------------------------------------------------------------------------------------
# Finding 6: a server restarted on its port.

RESTARTED_SERVER = """
import json, socket, time
from paraloop import ParaLoop

server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
total = 0
for i in ParaLoop(range(20), num_processes=2):
    time.sleep(0.01)
    total += i
time.sleep(0.3)  # the workers wait for work meanwhile
server.close()  # the server restarts on the same port
try:
    server = socket.create_server(("127.0.0.1", port))
    state = "listening again"
except OSError as error:
    state = error.strerror
server.close()
print(json.dumps([total, state]))
"""


@_open_finding(
    "finding 6 (open, documented): a server the program closes and opens again on its port "
    "between loops: 'OSError: [Errno 98] Address already in use', the fork workers still hold "
    "the listening socket (they let go of it at their next look, up to 0.1 s later)"
)
def test_a_server_restarted_on_its_port_between_loops_listens_again(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, RESTARTED_SERVER))
    assert plain == [190, "listening again"]
    assert last_json(run_source(tmp_path, RESTARTED_SERVER, PARALOOP_START_METHOD="fork")) == plain


# ---------------------------------------------------------------------------------------------
# Attacks that held.

# A child's input "closed" by putting /dev/null on its number (os.dup2 onto the same number).
DUP2_ONTO = (
    """
import json, os, subprocess, sys, time
from paraloop import ParaLoop

"""
    + COUNTING_CHILD
    + """child.stdin.write("hello")
child.stdin.flush()
total = 0
for i in ParaLoop(range(20), num_processes=2):
    time.sleep(0.01)
    total += i
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, child.stdin.fileno())  # the same number, another file
os.close(null)
"""
    + CHILDS_END
    + """child.stdin.close()
print(json.dumps([total, end]))
"""
)


def test_held_a_childs_input_replaced_by_dup2_onto_its_number_ends(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, DUP2_ONTO))
    assert plain == [190, "5"]
    assert last_json(run_source(tmp_path, DUP2_ONTO, PARALOOP_START_METHOD="fork")) == plain


# A worker that crashed, replaced by another (whose channel may take the dead one's numbers, which
# the surviving worker held as the program's): the next loops run, and a stream the program closes
# after them still ends.
AFTER_A_CRASH = """
import json, os, socket, time
import paraloop
from paraloop import ParaLoop

a, b = socket.socketpair()
a.sendall(b"hello")
totals = []
for round in range(3):
    total = 0
    try:
        for i in ParaLoop(range(12), num_processes=2, chunksize=1):
            time.sleep(0.01)
            if round == 1 and i == 5:
                os._exit(3)
            total += i
    except paraloop.WorkerCrashedError:
        total = "crashed"
    totals.append(total)
    time.sleep(0.4)  # the workers look at the program's streams meanwhile
a.close()
b.settimeout(10)
got = b""
try:
    while chunk := b.recv(100):
        got += chunk
    end = got.decode()
except TimeoutError:
    end = "the connection stayed open after a.close()"
print(json.dumps([totals, end]))
"""


def test_held_loops_after_a_worker_crashed_and_a_socket_closed_after_them(tmp_path: Path) -> None:
    result = last_json(run_source(tmp_path, AFTER_A_CRASH, PARALOOP_START_METHOD="fork"))
    assert result == [[66, "crashed", 66], "hello"]


# Both start methods in one program: a fork pool beside the fork server (whose pipe the fork
# workers inherit and the program keeps), a child's input closed after them.
BOTH_METHODS = (
    """
import json, subprocess, sys, time
from paraloop import ParaLoop

"""
    + COUNTING_CHILD
    + """child.stdin.write("hello")
child.stdin.flush()
totals = []
for method in ("forkserver", "fork", "forkserver", "fork"):
    total = 0
    for i in ParaLoop(range(20), num_processes=2, start_method=method):
        time.sleep(0.01)
        total += i
    totals.append(total)
    time.sleep(0.3)
child.stdin.close()
"""
    + CHILDS_END
    + """print(json.dumps([totals, end]))
"""
)


def test_held_fork_and_forkserver_loops_in_one_program(tmp_path: Path) -> None:
    assert last_json(run_source(tmp_path, BOTH_METHODS)) == [[190, 190, 190, 190], "5"]


# A thread of the program closes a child's input and waits for it while the main thread runs a
# loop whose iterations wait (lanes: threads inside the workers): the child ends by the loop's end
# at the latest (docs/semantics.md); a socket shut down (not closed) ends at once.
THREAD_CLOSES = (
    """
import json, socket, subprocess, sys, threading, time
from paraloop import ParaLoop

"""
    + COUNTING_CHILD
    + """a, b = socket.socketpair()
total = 0
for i in ParaLoop(range(20), num_processes=2):  # the pool's workers start here
    time.sleep(0.01)
    total += i

answer = []


def feed():
    time.sleep(0.2)
    a.sendall(b"hi")
    a.shutdown(socket.SHUT_WR)
    answer.append(child.communicate("hello", timeout=30)[0].strip())


thread = threading.Thread(target=feed)
thread.start()
waited = 0
for i in ParaLoop(range(60), num_processes=2):
    time.sleep(0.03)
    waited += i
thread.join(10)
b.settimeout(5)
got = b""
try:
    while chunk := b.recv(100):
        got += chunk
except TimeoutError:
    got += b" and no end"
print(json.dumps([total, waited, answer, got.decode()]))
"""
)


def test_held_a_thread_closes_a_childs_input_while_a_waiting_loop_runs(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, THREAD_CLOSES))
    assert plain == [190, 1770, ["5"], "hi"]
    assert last_json(run_source(tmp_path, THREAD_CLOSES, PARALOOP_START_METHOD="fork")) == plain


# Shared memory across loops with the workers waiting between them (the program's cleaner socket,
# which a fork child closes as it starts, and each loop's segments): results and /dev/shm as
# without paraloop.
SHARED_ARRAYS = """
import json, time
import numpy as np
from paraloop import ParaLoop

big = np.arange(2_000_000, dtype=np.float64)
sums = []
for round in range(3):
    out = np.zeros(8)
    for i in ParaLoop(range(8), num_processes=2):
        time.sleep(0.01)
        out[i] = big[i::8].sum() + round
    sums.append(out.tolist())
    big = big + 1  # a new array for the next loop
    time.sleep(0.4)
print(json.dumps(sums))
"""


def test_held_shared_arrays_across_loops_with_idle_workers(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    before = set(os.listdir("/dev/shm"))
    plain = last_json(run_plain(tmp_path, SHARED_ARRAYS))
    assert last_json(run_source(tmp_path, SHARED_ARRAYS, PARALOOP_START_METHOD="fork")) == plain
    assert lasting_new_segments(before) == []


# asyncio: a child's input closed by its transport after a loop run inside a coroutine.
ASYNCIO_CHILD = """
import asyncio, json, sys, time
from paraloop import ParaLoop


async def main():
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; print(len(sys.stdin.read()))",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    child.stdin.write(b"hello")
    await child.stdin.drain()
    total = 0
    for i in ParaLoop(range(20), num_processes=2):
        time.sleep(0.01)
        total += i
    child.stdin.close()
    try:
        out = await asyncio.wait_for(child.stdout.read(), 10)
        await asyncio.wait_for(child.wait(), 10)
        end = out.decode().strip()
    except asyncio.TimeoutError:
        child.kill()
        await child.wait()
        end = "the child still waits for the end of its input"
    return [total, end]


print(json.dumps(asyncio.run(main())))
"""


def test_held_an_asyncio_childs_input_closed_after_a_loop_ends(tmp_path: Path) -> None:
    plain = last_json(run_plain(tmp_path, ASYNCIO_CHILD))
    assert plain == [190, "5"]
    assert last_json(run_source(tmp_path, ASYNCIO_CHILD, PARALOOP_START_METHOD="fork")) == plain
