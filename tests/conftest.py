"""Shared fixtures: write real modules into a temporary directory and import them."""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import paraloop  # noqa: F401 - installs the import hook before any test module is written
from paraloop.linux import linux_facilities

_numbers = itertools.count()

START_METHODS = ["fork", "forkserver", "spawn"]

# What tox runs on one Python only (py313, whose default start method is forkserver, as on
# Python 3.14): a test's runs on the backends whose code no Python version changes beyond
# what fork and spawn already show (forkserver is a fork that receives its job as spawn
# does; the caller, threads and sequential backends are the same Python code on every
# version; Dask is the same release), marked ``once`` at collection; and the files marked
# ``once`` (the docs' examples, the package built from the sdist, the integrations with
# Dask, pytest plugins, notebooks).  The other versions run fork, the rewriter's tests and
# every other test; spawn's runs (marked ``spawn`` at collection) under py310 and py313, the
# oldest and newest (and the portable run's py312), not py311 and py312: a spawned worker's
# start is multiprocess's code for each version, whose changes those two show.  The whole
# suite under each Python took CI 43 minutes of its 30; with spawn's runs under each, 30.2.
ONCE_BACKENDS = {"forkserver", "caller", "threads", "sequential", "dask"}
BACKEND_PARAMETERS = {
    "every_backend",
    "method",
    "backend",
    "start_method",
    "processes",
    "local_backend",
    "choice",
}


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as in a terminal's foreground job, where users run their programs: a test run started
    in the background by a non-interactive shell inherits SIGINT ignored, which every program a
    test starts would inherit too (Python then keeps ignoring it): the tests that send a program
    Ctrl-C saw "no interrupt".  A handled signal is back at its default in a child after exec."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        backends = {
            value
            for name, value in callspec.params.items()
            if name in BACKEND_PARAMETERS and isinstance(value, str)
        }
        if backends & ONCE_BACKENDS:
            item.add_marker(pytest.mark.once)
        if "spawn" in backends:
            item.add_marker(pytest.mark.spawn)


# The suite's loops run every iteration in worker processes, as they did before the caller
# took part (paraloop.caller): most test loops are shorter than the caller's budget and would
# never reach a worker.  The caller's part is tested where a test asks for it: the "caller"
# backend of every_backend (the semantic suites) and tests/test_caller.py.  Inherited by the
# programs the tests start (they strip the other PARALOOP_* settings, not this one).
os.environ["PARALOOP_CALLER_RUNS"] = "0"

# The caller's budget on the "caller" backend: short enough that a loop of slow iterations
# goes on in the workers after its first ones, long enough that a loop of quick ones runs
# in the caller from start to end.
CALLER_TEST_SECONDS = 0.0005


def lasting_new_segments(before: set[str], seconds: float = 5.0) -> list[str]:
    """The shared-memory segments (and named semaphores) in /dev/shm not in ``before`` that stay:
    present at every look for ``seconds``, or none as soon as a look finds nothing new.

    The tests beside this one (four test processes) make segments and semaphores of their own,
    for moments (a semaphore between its making and its unlinking, a loop's shared array) or
    for the run (a Dask cluster's): under load such one was taken for a program's leftover.
    A name that a live process maps is that process's and not counted.
    """
    lasting = set(os.listdir("/dev/shm")) - before
    end = time.monotonic() + seconds
    while lasting and time.monotonic() < end:
        time.sleep(0.1)
        lasting &= set(os.listdir("/dev/shm")) - before
    # What a live process still maps is that process's (another test's Dask cluster's nannies
    # hold 12 semaphores for the whole run), not a leftover of a program that ended.
    return sorted(lasting - _mapped_in_dev_shm() if lasting else lasting)


def left_in(folder: Path, seconds: float) -> list[str]:
    """What is still in ``folder`` (its paths, relative) once it is empty, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        left = sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def cluster_processes(owner: int, seconds: float = 0.0) -> list[int]:
    """The live (non-zombie) processes of the Dask cluster paraloop's program ``owner`` started,
    found by the ``PARALOOP_OWNER`` their environment holds (they leave the program's process
    group, and a killed program's children are re-parented); after up to ``seconds`` if some
    are there."""
    deadline = time.monotonic() + seconds
    while True:
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                environment = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"PARALOOP_OWNER={owner}".encode() in environment and state != "Z":
                found.append(int(entry))
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def _mapped_in_dev_shm() -> set[str]:
    """The names in /dev/shm that a live process maps."""
    mapped = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps") as maps:
                for line in maps:
                    at = line.find("/dev/shm/")
                    if at >= 0:
                        mapped.add(line[at + 9 :].split(" (deleted)")[0].strip())
        except OSError:
            continue
    return mapped


def sweep(request: pytest.FixtureRequest, step: int = 1) -> tuple[int, int]:
    """The first call a sweep of injected faults tries (a Ctrl-C, a collection at each Python
    call in turn, ``step`` apart) and how far apart its tries are.

    tox's test environments set ``SWEEP_SHARES=3``: each tries a third of the calls, the third
    its minor version chooses, so that py310 to py312 together try every one (the sweeps took a
    fifth of each version's time; py313's third is py310's, under a newer Python).  A test that
    not every version runs tries every call where it runs last: marked ``once`` (py313 only), or
    ``spawn`` under py313 (py310 and py313 only).  A run without tox tries every one.
    """
    shares = int(os.environ.get("SWEEP_SHARES", "1"))
    marked = {mark.name for mark in request.node.iter_markers()}
    if "once" in marked or ("spawn" in marked and sys.version_info >= (3, 13)):
        shares = 1
    return step * (1 + sys.version_info.minor % shares), step * shares


# For a program's source (with os and sys imported): a second Ctrl-C at each Python call, in
# turn, of what follows the first.  The handler ``first`` (the program gives it to SIGINT) sets a
# profile function that raises KeyboardInterrupt at call number state["at"] of the main thread and
# notes in state["hit"] that it came: a sweep raises state["at"] by one per try, and ends when the
# second Ctrl-C no longer comes (the cleanup's calls were all tried).
SECOND_CTRL_C = """
caller = os.getpid()
state = {"at": 0, "calls": 0, "hit": True}


def second(frame, event, arg):
    if event == "call":
        state["calls"] += 1
        if state["calls"] == state["at"]:
            sys.setprofile(None)
            state["hit"] = True
            raise KeyboardInterrupt


def first(signum, frame):
    state["calls"] = 0
    sys.setprofile(second)
    raise KeyboardInterrupt

"""

# False under PARALOOP_PORTABLE=1 (tox's portable environment): paraloop does without
# /proc, cgroup files and /dev/shm, as on macOS (see paraloop.linux).
LINUX_FACILITIES = linux_facilities()


@pytest.fixture
def load_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Write ``source`` as a fresh module (marked unless ``marked=False``) and import it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def load(source: str, *, marked: bool = True) -> ModuleType:
        name = f"paraloop_testmod_{next(_numbers)}"
        text = textwrap.dedent(source)
        if marked:
            text = "# paraloop: enable\n" + text
        (tmp_path / f"{name}.py").write_text(text)
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name)

    yield load
    for name in names:
        sys.modules.pop(name, None)


def _start_dask_cluster() -> Any:
    import dask
    import distributed

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        return distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A real Dask LocalCluster on 127.0.0.1: two worker processes, started and stopped here.

    Its scheduler does not retry a chunk whose worker died (``allowed-failures``
    0), as on the cluster paraloop starts itself.  Shared by every test of a test
    process, so no test may kill or restart its workers: those use
    ``dask_cluster_to_break``.
    """
    cluster = _start_dask_cluster()
    yield cluster
    from paraloop.backends.dask import shutdown

    shutdown()  # paraloop's own client on this cluster first, so it does not try to reconnect
    cluster.close()


@pytest.fixture
def dask_cluster_to_break() -> Iterator[Any]:
    """A cluster like ``dask_cluster`` for one test that kills or restarts a worker.

    A nanny-restarted worker of the shared cluster once died in the next test's chunk
    (an AssertionError in distributed's ``handle_scheduler``, CI py313): a test that
    breaks workers breaks its own.
    """
    cluster = _start_dask_cluster()
    yield cluster
    from paraloop.backends import dask as dask_backend

    client = dask_backend._clients.pop(cluster.scheduler_address, None)
    if client is not None:
        client.close()
    cluster.close()


@pytest.fixture
def caller_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's default (the suite runs with PARALOOP_CALLER_RUNS=0), a budget of 3 ms,
    in a program that holds no per-worker handle (other tests' handles may outlive them)."""
    from paraloop import resources
    from paraloop.backends.processes import caller

    monkeypatch.delenv("PARALOOP_CALLER_RUNS", raising=False)
    monkeypatch.setattr(caller, "CALLER_SECONDS", 0.003)
    monkeypatch.setattr(resources, "_handles", weakref.WeakSet())


def product_environment(**extra: str) -> dict[str, str]:
    """The test's environment without any PARALOOP_* setting (the suite's PARALOOP_CALLER_RUNS=0
    included: a program started with it runs with paraloop's defaults), plus ``extra``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARALOOP_")}
    environment.update(extra)
    return environment


def run_program(
    script: Path, *args: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m paraloop script args...`` in the script's directory with paraloop's own defaults
    (:func:`product_environment`, plus ``extra``), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "paraloop", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=product_environment(**extra),
        cwd=script.parent,
    )


def start_program(
    script: Path, *args: str, preexec_fn: Callable[[], Any] | None = None, **extra: str
) -> subprocess.Popen[str]:
    """:func:`run_program`'s process, started and not waited for (several at once, or one sent
    a signal), its stdout and stderr piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "paraloop", str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=product_environment(**extra),
        cwd=script.parent,
        preexec_fn=preexec_fn,
    )


def start_in_session(script: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    """``python -m paraloop script`` in a session (and process group) of its own: a signal to
    the group reaches it and what it starts, not the tests."""
    return start_program(script, *args, preexec_fn=os.setsid, **extra)


def wait_for_line(process: subprocess.Popen[str], line: str, seconds: float = 120) -> None:
    """Read ``process``'s output up to ``line`` (the test fails, the process killed, if it never
    comes)."""
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = process.stdout.readline()
        if got.strip() == line:
            return
        if not got and process.poll() is not None:
            break
    process.kill()
    _, stderr = process.communicate(timeout=30)
    pytest.fail(f"the program never printed {line!r}: {stderr[-3000:]}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, now (none if it is gone)."""
    import psutil

    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def shm_mapped_by(pids: list[int]) -> set[str]:
    """The /dev/shm files (segments, named semaphores) the processes ``pids`` map."""
    found = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as maps:
                for line in maps:
                    if "/dev/shm/" in line:
                        found.add(line.split("/dev/shm/", 1)[1].split()[0])
        except OSError:
            pass
    return found


def run_source(
    tmp_path: Path,
    source: str,
    *args: str,
    files: dict[str, str] | None = None,
    timeout: float = 60,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Write ``files`` (name: source, dedented) and ``source`` as ``program.py`` in ``tmp_path``,
    and run the program as :func:`run_program` does."""
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    return run_program(script, *args, timeout=timeout, **extra)


# Every iteration in a forkserver worker (the tests of paraloop's fork server, forked from the program).
FORKSERVER = {
    "PARALOOP_BACKEND": "processes",
    "PARALOOP_CALLER_RUNS": "0",
    "PARALOOP_START_METHOD": "forkserver",
}

# The marks of the fork server's test files: on Linux, where it is forked from the program, with the
# programs' own hash secrets (see random_hashes).
FORK_SERVER_MARKS = [
    pytest.mark.skipif(not LINUX_FACILITIES, reason="the fork server is forked only on Linux"),
    pytest.mark.usefixtures("random_hashes"),
]


@pytest.fixture
def random_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The programs a test starts draw a hash secret of their own, as a user's do (tox sets
    PYTHONHASHSEED, which would hide what differs between interpreters)."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)


def run_plain(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``source`` (which imports ``ParaLoop`` with ``from paraloop import ParaLoop``) run by plain
    Python as ``plain_program.py``, ``ParaLoop`` the identity: what the plain loop does."""
    text = textwrap.dedent(source)
    assert PARALOOP_IMPORT in text
    text = text.replace(PARALOOP_IMPORT, "ParaLoop = lambda items, *args, **options: items\n")
    path = tmp_path / "plain_program.py"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=product_environment(),
        cwd=tmp_path,
    )


PARALOOP_IMPORT = "from paraloop import ParaLoop\n"


def plain_and_paraloop(tmp_path: Path, source: str, **extra: str) -> tuple[Any, Any]:
    """The last JSON line of ``source`` run by plain Python (:func:`run_plain`), then by paraloop
    (:func:`run_source`, with the environment ``extra``)."""
    plain = last_json(run_plain(tmp_path, source))
    return plain, last_json(run_source(tmp_path, source, **extra))


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a program printed last, once it exited with 0 (else its stderr's end, failing)."""
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def use_backend(choice: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make every loop of the test run on ``choice``: the environment overrides the code.

    ``"caller"`` is the processes backend with the caller taking part (paraloop.caller),
    under the platform's start method.
    """
    if choice == "caller":
        from paraloop.backends.processes import caller

        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_CALLER_RUNS", "1")
        monkeypatch.setattr(caller, "CALLER_SECONDS", CALLER_TEST_SECONDS)
    elif choice in START_METHODS:
        monkeypatch.setenv("PARALOOP_BACKEND", "processes")
        monkeypatch.setenv("PARALOOP_START_METHOD", choice)
    else:
        monkeypatch.setenv("PARALOOP_BACKEND", choice)
    if choice == "dask":
        cluster = request.getfixturevalue("dask_cluster")
        monkeypatch.setenv("PARALOOP_DASK_SCHEDULER", cluster.scheduler_address)
    return choice


@pytest.fixture(params=[*START_METHODS, "caller", "threads", "sequential", "dask"])
def every_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on processes under each start method (and with the caller taking part),
    on threads, sequentially and on Dask.

    The same loop gives the same tracked result on every backend (docs/semantics.md). The environment variables override what the code asks for.
    """
    return use_backend(request.param, request, monkeypatch)


def settings_for(backend: str, settings: list[Any]) -> list[Any]:
    """The worker counts and chunk sizes a differential test runs on ``backend``.

    How iterations are cut and combined is the same code on every backend: fork, threads
    and the sequential backend run every setting; spawn, forkserver and Dask, which differ
    in how a loop travels (and cost more per chunk), run the last one.  With the caller taking
    part, every setting: where chunks begin and which process runs them changes with them.
    """
    return settings if backend in ("fork", "caller", "threads", "sequential") else settings[-1:]


def run_script(
    script: Path, *, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m paraloop script`` in the script's directory, free of the tests' PARALOOP_* settings."""
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "paraloop", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=script.parent,
    )


# Source for a test program (dedented with it): an import hook, slow_import(name, delay), that
# slows down loading a module in paraloop's "paraloop-import" thread only (a slow disk, a network
# file system, a coverage hook), so the window that thread opens is wide enough to hit every time.
SLOW_FINDER = """
    import sys, threading, time

    class _SlowLoader:
        def __init__(self, loader, delay):
            self.loader, self.delay = loader, delay
        def create_module(self, spec):
            return self.loader.create_module(spec)
        def exec_module(self, module):
            time.sleep(self.delay)
            return self.loader.exec_module(module)

    class _Slow:
        def __init__(self, name, delay):
            self.name, self.delay = name, delay
        def find_spec(self, name, path=None, target=None):
            if name != self.name or threading.current_thread().name != "paraloop-import":
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    spec.loader = _SlowLoader(spec.loader, self.delay)
                    return spec
            return None

    def slow_import(name, delay):
        sys.meta_path.insert(0, _Slow(name, delay))
"""


def interrupt_like_a_terminal(
    script: Path, *, env: dict[str, str] | None = None
) -> tuple[int, int, str, float]:
    """Run the script in its own process group; once it prints ``running``, SIGINT the group.

    Returns the process group, the exit status, the script's stderr and the
    seconds it took to exit after the signal.
    """
    environment = {
        k: v for k, v in os.environ.items() if not (k.startswith("PARALOOP_") and k != "PARALOOP_CALLER_RUNS")
    }
    environment.update(env or {})
    # A program that does not end after the signal is sent SIGABRT, whose tracebacks (of every
    # thread of each of its processes) the failure then shows: CI met such a hang once.
    environment.setdefault("PYTHONFAULTHANDLER", "1")
    # A terminal's foreground job starts with Ctrl-C at its default.  An ignored SIGINT
    # is inherited across exec (and Python then keeps ignoring it): a test run started
    # in the background by a non-interactive shell has it ignored.  A handled one is
    # reset to the default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "paraloop", str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=environment,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "running"
        sent = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        try:
            # Reading both pipes while waiting: a program that writes more than a pipe holds
            # would otherwise wait on the test.
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGABRT)
            try:
                _, stderr = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                stderr = "(no tracebacks: it did not end on SIGABRT either)"
            pytest.fail(f"the program did not end within 60 s of Ctrl-C; its tracebacks:\n{stderr}")
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.pid, process.returncode, stderr, elapsed
