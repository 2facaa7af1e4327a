"""The Dask backend against real clusters on 127.0.0.1.

The suite of the plain loop's semantics (test_semantics.py, test_reductions.py) runs on Dask too,
through the ``every_backend`` fixture; these tests cover what is particular
to Dask: which cluster a loop uses, that the cluster's workers ran the
iterations, a worker killed mid-loop, and the cluster paraloop starts itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import distributed
import pytest
from conftest import (
    cluster_processes,
    interrupt_like_a_terminal,
    lasting_new_segments,
    left_in,
    run_program,
    run_script,
)

import paraloop
from paraloop.backends import dask as dask_backend

# Once (tests/conftest.py): the Dask integration is the same Dask release on every Python.
pytestmark = pytest.mark.once

Loader = Callable[..., ModuleType]


@pytest.fixture
def on_cluster(dask_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The test cluster, with no environment override and every worker up."""
    monkeypatch.delenv("PARALOOP_DASK_SCHEDULER", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    yield dask_cluster


@pytest.fixture
def on_a_cluster_to_break(dask_cluster_to_break: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A cluster of the test's own, with no environment override."""
    monkeypatch.delenv("PARALOOP_DASK_SCHEDULER", raising=False)
    monkeypatch.delenv("PARALOOP_BACKEND", raising=False)
    return dask_cluster_to_break


def _worker_addresses(cluster: Any) -> set[str]:
    with distributed.Client(cluster, set_as_default=False) as client:
        return set(client.scheduler_info()["workers"])


def test_the_cluster_workers_ran_the_iterations(load_module: Loader, on_cluster: Any) -> None:
    """Every iteration ran on a worker of the named cluster, both workers took part."""
    module = load_module(f"""
        import os, time
        from distributed import get_worker
        from paraloop import ParaLoop
        addresses = set()
        pids = set()
        squares = []
        for i in ParaLoop(range(24), chunksize=1, backend="dask", scheduler={on_cluster.scheduler_address!r}):
            time.sleep(0.05)
            addresses.add(get_worker().address)
            pids.add(os.getpid())
            squares.append(i * i)
    """)
    assert module.squares == [i * i for i in range(24)]
    assert module.addresses == _worker_addresses(on_cluster)
    assert all(address.startswith("tcp://127.0.0.1:") for address in module.addresses)
    assert os.getpid() not in module.pids


def test_the_client_the_program_made_is_used(load_module: Loader, on_cluster: Any) -> None:
    """With no address, a loop runs on the program's current Dask client."""
    module = load_module("""
        from distributed import get_worker
        from paraloop import ParaLoop
        def run():
            addresses = set()
            total = 0
            for i in ParaLoop(range(100), backend="dask"):
                total += i
                addresses.add(get_worker().address)
            return total, addresses
    """)
    with distributed.Client(on_cluster):
        total, addresses = module.run()
    assert total == sum(range(100))
    assert addresses and addresses <= _worker_addresses(on_cluster)


def test_a_client_object_can_be_passed(load_module: Loader, on_cluster: Any) -> None:
    module = load_module("""
        from paraloop import ParaLoop
        def run(client):
            found = {}
            for word in ParaLoop(["a", "bb", "ccc"], backend="dask", scheduler=client):
                found[word] = len(word)
            return found
    """)
    with distributed.Client(on_cluster, set_as_default=False) as client:
        assert module.run(client) == {"a": 1, "bb": 2, "ccc": 3}


def test_a_worker_killed_mid_loop_is_an_error_not_a_hang(
    load_module: Loader, on_a_cluster_to_break: Any
) -> None:
    """SIGKILL of the worker running iteration 7: WorkerCrashedError naming it, within seconds."""
    module = load_module(f"""
        import os, signal, time
        from paraloop import ParaLoop
        done = []
        def run():
            for i in ParaLoop(range(40), chunksize=1, backend="dask", scheduler={on_a_cluster_to_break.scheduler_address!r}):
                time.sleep(0.02)
                if i == 7:
                    os.kill(os.getpid(), signal.SIGKILL)
                done.append(i)
    """)
    began = time.monotonic()
    with pytest.raises(
        paraloop.WorkerCrashedError, match=r"line 7: a Dask worker .* iteration 7 of the loop"
    ):
        module.run()
    assert time.monotonic() - began < 30
    # Tracked state holds exactly the iterations before the lost one.
    assert module.done == list(range(7))
    # The nanny restarts the worker; the next loop works.
    with distributed.Client(on_a_cluster_to_break, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    again = load_module(f"""
        from paraloop import ParaLoop
        total = 0
        for i in ParaLoop(range(50), backend="dask", scheduler={on_a_cluster_to_break.scheduler_address!r}):
            total += i
    """)
    assert again.total == sum(range(50))


def test_an_exception_keeps_its_type_and_the_workers_traceback(load_module: Loader, on_cluster: Any) -> None:
    module = load_module(f"""
        from paraloop import ParaLoop
        seen = []
        def run():
            for i in ParaLoop(range(20), chunksize=3, backend="dask", scheduler={on_cluster.scheduler_address!r}):
                if i == 11:
                    raise KeyError(f"bad {{i}}")
                seen.append(i)
    """)
    with pytest.raises(KeyError, match="bad 11") as caught:
        module.run()
    assert module.seen == list(range(11))
    notes = getattr(caught.value, "__notes__", [])
    assert any("iteration 11 (item 11)" in note for note in notes)
    cause = caught.value.__cause__
    assert isinstance(cause, paraloop.errors.RemoteTraceback)
    assert f'{module.__file__}", line 8, in run' in cause.text


def test_shared_arrays_are_refused(load_module: Loader, on_cluster: Any) -> None:
    module = load_module(f"""
        from paraloop import ParaLoop, SharedArray
        out = SharedArray(4)
        def shared():
            for i in ParaLoop(range(4), backend="dask", scheduler={on_cluster.scheduler_address!r}):
                out[i] = i
    """)
    with pytest.raises(paraloop.ParaLoopError, match=r"line 6: .*'out', a SharedArray.*Dask workers"):
        module.shared()


def test_an_unreachable_scheduler_is_named(load_module: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_backend, "CONNECT_SECONDS", 1.0)
    monkeypatch.setenv("PARALOOP_DASK_SCHEDULER", "tcp://127.0.0.1:9")
    module = load_module("""
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(4), backend="dask"):
                pass
    """)
    with pytest.raises(
        paraloop.ParaLoopError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"
    ):
        module.run()


_OWN_CLUSTER_SCRIPT = """\
# paraloop: enable
import os, re, signal, sys, time
from distributed import get_worker
from paraloop import ParaLoop, WorkerCrashedError
from paraloop.backends import dask as dask_backend

print("script started", flush=True)


def square(x):  # defined in the script: it travels to the workers by value
    return x * x


addresses = set()
total = 0
for i in ParaLoop(range(200), backend="dask", chunksize=10):
    total += square(i)
    addresses.add(get_worker().address)
print("total", total)
print("hosts", sorted({a.split(":")[1] for a in addresses}))
try:
    for i in ParaLoop(range(40), backend="dask", chunksize=1):
        time.sleep(0.02)
        if i == 5:
            os.kill(os.getpid(), signal.SIGKILL)
except WorkerCrashedError as error:
    # The first iteration lost, in order: 5, the killed worker's, or (on a loaded machine) an
    # earlier one whose chunk had not fetched the loop's data from that worker yet.
    named = [int(n) for n in re.findall(r"iterations? (\\d+)", str(error))]
    print("crashed", bool(named) and min(named) <= 5)
    print(error, file=sys.stderr)
client = dask_backend._own[1]
client.wait_for_workers(2, timeout=60)
workers = list(client.run(os.getpid).values())
nannies = list(client.run(os.getppid).values())
pids = workers + nannies + [client.run_on_scheduler(os.getpid)]
print("pids", *pids, flush=True)
"""


def test_paraloop_starts_and_stops_its_own_cluster(tmp_path: Path) -> None:
    """No client and no address: a local cluster on 127.0.0.1, gone when the script ends.

    The script has no main guard; it must run once, also after a worker was
    killed and restarted.
    """
    script = tmp_path / "own_cluster.py"
    script.write_text(_OWN_CLUSTER_SCRIPT)
    result = run_script(script, timeout=240, env={"PARALOOP_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("script started") == 1, result.stdout
    assert f"total {sum(i * i for i in range(200))}" in lines
    assert "hosts ['//127.0.0.1']" in lines
    assert "crashed True" in lines
    pids = [int(p) for p in next(line for line in lines if line.startswith("pids")).split()[1:]]
    assert len(set(pids)) == 5
    for pid in pids:
        assert not _alive(pid), f"process {pid} of paraloop's cluster outlived the script"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_missing_distributed_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the extra installed, the error says what to install."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(paraloop.ParaLoopError, match=r"pip install 'paraloop\[dask\]'"):
        dask_backend._import_distributed()


@pytest.mark.alone
def test_ctrl_c_stops_paraloops_own_cluster(tmp_path: Path) -> None:
    """SIGINT to the script's process group: KeyboardInterrupt, no process and no semaphore left."""
    from test_failures import wait_for_no_members

    script = tmp_path / "busy_dask.py"
    script.write_text(
        "# paraloop: enable\n"
        "import time\n"
        "from paraloop import ParaLoop\n"
        "for i in ParaLoop(range(8), backend='dask', num_processes=2, chunksize=1):\n"
        "    if i == 0:\n"
        "        print('running', flush=True)\n"
        "    end = time.monotonic() + 600\n"
        "    while time.monotonic() < end:\n"
        "        pass\n"
    )
    before = set(os.listdir("/dev/shm"))
    group, _, stderr, elapsed = interrupt_like_a_terminal(script)
    assert "KeyboardInterrupt" in stderr
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert wait_for_no_members(group, 5) == []
    # The cluster's programs are in sessions of their own (see paraloop.lifeline).
    assert cluster_processes(group, 5) == []
    assert lasting_new_segments(before) == []


class _Peer:
    """A TCP server on 127.0.0.1 that is not a Dask scheduler: it accepts and then says
    nothing, answers like a web server, or sends bytes that look like a huge message."""

    def __init__(self, behaviour: str) -> None:
        import socket
        import threading

        self.behaviour = behaviour
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[Any] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            if self.behaviour == "http":
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<html>")
            elif self.behaviour == "garbage":
                connection.sendall(b"\xff" * 64)

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("behaviour", ["silent", "http", "garbage"])
def test_a_scheduler_address_that_is_not_a_scheduler_is_named_in_bounded_time(
    load_module: Loader, monkeypatch: pytest.MonkeyPatch, behaviour: str
) -> None:
    """A server that accepts and never speaks, a web server, or a peer sending anything else:
    a ParaLoopError naming the address within CONNECT_SECONDS (and a bit), not a hang."""
    peer = _Peer(behaviour)
    monkeypatch.setattr(dask_backend, "CONNECT_SECONDS", 3.0)
    address = f"tcp://127.0.0.1:{peer.port}"
    module = load_module(f"""
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(4), backend="dask", scheduler={address!r}):
                pass
    """)
    began = time.monotonic()
    try:
        with pytest.raises(paraloop.ParaLoopError, match=f"Dask scheduler at '{address}'"):
            module.run()
    finally:
        peer.close()
    assert time.monotonic() - began < 3.0 + 5.0


def test_paraloops_own_cluster_admits_only_its_program(tmp_path: Path) -> None:
    """Another local user connecting to the cluster paraloop started (in plain TCP, in TLS
    with no certificate, or with a certificate of their own) is refused; the program's own
    loop runs (TLS).

    The intruder speaks TLS through the ssl module, with server checks off: only the
    scheduler can refuse it.  (distributed's Client hung past 180 s on Python 3.12 in CI
    when refused, so it is not the intruder here.)  A scheduler that admits a connection
    sends its handshake first.
    """
    script = tmp_path / "admits.py"
    script.write_text(
        "# paraloop: enable\n"
        "import socket, ssl\n"
        "from distributed.security import Security\n"
        "from paraloop import ParaLoop\n"
        "from paraloop.backends import dask as dask_backend\n"
        "total = 0\n"
        "for i in ParaLoop(range(50), backend='dask', num_processes=1):\n"
        "    total += i\n"
        "print('total', total)\n"
        "cluster, client = dask_backend._own\n"
        "address = cluster.scheduler_address\n"
        "print('scheme', address.split(':')[0])\n"
        "host, port = address.split('://')[1].rsplit(':', 1)\n"
        "def context(security=None):\n"
        "    if security is None:\n"
        "        made = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
        "    else:\n"
        "        made = security.get_connection_args('client')['ssl_context']\n"
        "    made.check_hostname = False\n"
        "    made.verify_mode = ssl.CERT_NONE\n"
        "    return made\n"
        "for name, made in [('tcp', None), ('none', context()), ('own certificate', context(Security.temporary()))]:\n"
        "    try:\n"
        "        with socket.create_connection((host, int(port)), timeout=10) as raw:\n"
        "            connection = made.wrap_socket(raw) if made is not None else raw\n"
        "            if made is None:\n"
        "                connection.sendall(bytes(64))\n"
        "            print('admitted' if connection.recv(1) else 'refused', name)\n"
        "    except TimeoutError:\n"
        "        print('silent', name)\n"
        "    except (OSError, ssl.SSLError):\n"
        "        print('refused', name)\n"
    )
    result = run_script(script, timeout=180, env={"PARALOOP_WORKERS": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "total 1225" in lines
    assert "scheme tls" in lines
    assert [line for line in lines if line.startswith(("refused", "admitted"))] == [
        "refused tcp",
        "refused none",
        "refused own certificate",
    ]


@pytest.mark.alone
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_paraloops_own_cluster_goes_with_a_killed_program(tmp_path: Path, how: str) -> None:
    """The program killed while the cluster it started runs a long task: the scheduler, the
    nannies and their workers (in sessions of their own, see paraloop.lifeline) are gone
    within seconds, and so are their semaphores and the cluster's folder in the temporary
    folder (before: left, with Dask's lock files in it)."""
    import signal
    import subprocess

    from test_failures import wait_for_no_members

    script = tmp_path / "killed.py"
    script.write_text(
        "# paraloop: enable\n"
        "import time\n"
        "from paraloop import ParaLoop\n"
        "for i in ParaLoop(range(4), backend='dask', num_processes=2, chunksize=1):\n"
        "    if i == 0:\n"
        "        print('running', flush=True)\n"
        "    time.sleep(600)\n"
    )
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment["TMPDIR"] = str(temporary)
    before = set(os.listdir("/dev/shm"))
    process = subprocess.Popen(
        [sys.executable, "-m", "paraloop", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
        start_new_session=True,
        cwd=tmp_path,
    )
    group = os.getpgid(process.pid)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "running"
        cluster = cluster_processes(process.pid)
        assert len(cluster) >= 5, cluster  # the scheduler, two nannies, two workers
        os.kill(process.pid, getattr(signal, how))
        process.wait(timeout=10)
        assert wait_for_no_members(group, 15) == []
        assert cluster_processes(process.pid, 15) == []
        assert lasting_new_segments(before) == []
        assert left_in(temporary, 30) == []
    finally:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in cluster_processes(process.pid):
            os.kill(pid, signal.SIGKILL)


def _added_to_the_workers_path(
    cluster: Any, before: dict[str, list[str]], seconds: float = 10
) -> dict[str, Any]:
    """What each worker's sys.path holds beyond ``before``, once that is nothing or after
    ``seconds``.  (An entry of an earlier test of this process may leave meanwhile: its
    release does not wait for the workers.)"""
    with distributed.Client(cluster, set_as_default=False) as client:
        deadline = time.monotonic() + seconds
        while True:
            now = client.run(lambda: list(sys.path))
            added = {
                worker: extra
                for worker, path in now.items()
                if (extra := [entry for entry in path if entry not in before.get(worker, [])])
            }
            if not added or time.monotonic() > deadline:
                return added
            time.sleep(0.1)


def test_a_users_cluster_keeps_its_import_path(
    load_module: Loader, on_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paraloop puts the caller's directories on the workers' sys.path while a loop needs them
    and takes them away at its end: a cluster the user brought is left as it was."""
    extra = tmp_path / "extra"
    extra.mkdir()
    with distributed.Client(on_cluster, set_as_default=False) as client:
        before = client.run(lambda: list(sys.path))
    assert not any(str(extra) in path for path in before.values())
    monkeypatch.syspath_prepend(str(extra))  # a directory the caller added after the cluster started
    module = load_module(f"""
        import sys
        from paraloop import ParaLoop
        seen = []
        for i in ParaLoop(range(4), backend="dask", scheduler={on_cluster.scheduler_address!r}, chunksize=1):
            seen.append({str(extra)!r} in sys.path)
    """)
    assert module.seen == [True] * 4  # the loop had the caller's directory
    assert _added_to_the_workers_path(on_cluster, before) == {}


def test_a_loop_finalized_in_dasks_event_loop_thread_cleans_up(
    load_module: Loader, on_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator expression over ParaLoop left half read ends when the garbage collector
    finalizes it, in whatever thread runs then.  In Dask's event loop thread its cleanup
    once waited for that very loop (every later Dask call hung with it, seen in CI on 3.13),
    or was a coroutine nobody ran (the workers kept the caller's directories, 3.11)."""
    import gc
    import threading

    extra = tmp_path / "extra"
    extra.mkdir()
    with distributed.Client(on_cluster, set_as_default=False) as client:
        before = client.run(lambda: list(sys.path))
    monkeypatch.syspath_prepend(str(extra))
    module = load_module(f"""
        from paraloop import ParaLoop
        def start():
            squares = (i * i for i in ParaLoop(range(1000), backend="dask", chunksize=1,
                                                scheduler={on_cluster.scheduler_address!r}))
            assert next(squares) == 0
            return squares
    """)
    # The only reference: dropped in the event loop thread, the loop is finalized there.
    held = [module.start()]
    paraloops = dask_backend._clients[on_cluster.scheduler_address]
    closed = threading.Event()

    def finalize() -> None:
        held.clear()
        gc.collect()
        closed.set()

    paraloops.loop.add_callback(finalize)
    assert closed.wait(30), "finalizing the loop in Dask's event loop thread hung"
    assert _added_to_the_workers_path(on_cluster, before) == {}


def test_a_chunk_that_starts_after_its_loops_end_leaves_the_path_alone(tmp_path: Path) -> None:
    """On a worker: the loop's end (sent without waiting) may arrive before a chunk that was
    already on its way starts; that chunk must not put the caller's directories back for good
    (seen in CI: a half-read loop's directory stayed on one worker)."""
    from paraloop.errors import ParaLoopError

    key = f"ended-{tmp_path.name}"
    directory = str(tmp_path)
    before = list(sys.path)
    dask_backend.release(key)
    loaded = dask_backend._job(key, b"not a job", [directory], ())
    assert isinstance(loaded, ParaLoopError)
    assert sys.path == before


_DASHBOARD_SCRIPT = """
import socket, sys, urllib.request
import paraloop
from paraloop import ParaLoop
from paraloop.backends import dask as dask_backend

def run():
    total = 0
    for i in ParaLoop(range(50), backend="dask", num_processes=1):
        total += i
    return total

if sys.argv[1] == "config":
    with paraloop.config(dask_dashboard=int(sys.argv[2])):
        total = run()
else:
    total = run()
client = dask_backend._own[1]
print("total", total)
print("link", client.dashboard_link)
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/health", timeout=30) as answer:
    print("health", answer.read().decode())
# Only on 127.0.0.1: another address of this machine does not answer.
outside = socket.gethostbyname(socket.gethostname())
if outside.startswith("127."):
    print("outside refused")
else:
    try:
        socket.create_connection((outside, int(sys.argv[2])), timeout=5).close()
        print("outside answered")
    except OSError:
        print("outside refused")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("how", ["environment", "config"])
def test_the_dashboard_of_paraloops_own_cluster_on_request(tmp_path: Path, how: str) -> None:
    """PARALOOP_DASK_DASHBOARD=port or paraloop.config(dask_dashboard=port): Dask's dashboard
    on 127.0.0.1 at that port (off by default), its link where Dask users look for it."""
    script = tmp_path / "dashboard.py"
    script.write_text(_DASHBOARD_SCRIPT)
    port = _free_port()
    env = {"PARALOOP_DASK_DASHBOARD": str(port)} if how == "environment" else {}
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    environment.update(env)
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "paraloop", str(script), how, str(port)],
        capture_output=True,
        text=True,
        timeout=240,
        env=environment,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"total {sum(range(50))}",
        f"link http://127.0.0.1:{port}/status",
        "health ok",
        "outside refused",
    ]
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        assert "needs bokeh, which is not installed: pip install 'bokeh>=3.1'" in result.stderr


_PAGES_SCRIPT = """
import json, os, urllib.request
from paraloop import ParaLoop

total = 0
for i in ParaLoop(range(20), backend="dask", num_processes=2):
    total += i


def tree(root):
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    parents[int(name)] = int(stat.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError):
                pass
    found = {root}
    for pid in parents:
        parent = pid
        while parent in parents and parent not in found and parent > 1:
            parent = parents[parent]
        if parent in found:
            found.add(pid)
    return found


# The TCP ports this program and its children (the cluster's) listen on.
sockets = set()
for pid in tree(os.getpid()):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    except OSError:
        pass
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as lines:
        for line in list(lines)[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in sockets:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
answered = []
for port in sorted(ports):
    for path in ("/info/main/workers.html", "/json/identity.json", "/metrics", "/statics/css/base.css"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                answered.append([port, path, answer.status])
        except Exception:
            pass
print(json.dumps({"total": total, "ports": len(ports), "answered": answered}))
"""


def test_paraloops_own_cluster_shows_no_pages_without_its_dashboard(tmp_path: Path) -> None:
    """Without the dashboard (the default), no process of paraloop's own cluster answers an HTTP
    request for a page (Dask serves its scheduler's pages without the dashboard too: the list
    of workers, their call stacks and logs, to every local user at 127.0.0.1:8787; and the
    workers' metrics and static files), only the health check."""
    script = tmp_path / "pages.py"
    script.write_text(_PAGES_SCRIPT)
    result = run_program(script, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["total"] == sum(range(20)) and report["ports"] >= 3, report
    assert report["answered"] == [], report


def test_the_dashboard_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard that is not a port is refused saying what to write; off is the default."""
    monkeypatch.delenv("PARALOOP_DASK_DASHBOARD", raising=False)
    assert dask_backend._dashboard_address() is None
    monkeypatch.setenv("PARALOOP_DASK_DASHBOARD", "0.0.0.0:8787")
    with pytest.raises(
        paraloop.ParaLoopError, match=r"PARALOOP_DASK_DASHBOARD='0.0.0.0:8787': give the port"
    ):
        dask_backend._dashboard_address()
    monkeypatch.setenv("PARALOOP_DASK_DASHBOARD", "off")
    with paraloop.config(dask_dashboard=8787):
        assert dask_backend._dashboard_address() is None  # the environment overrides the code
