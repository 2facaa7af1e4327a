"""The Dask backend: a loop's chunks run as tasks on a Dask distributed cluster.

For users who outgrow one machine.  The cluster is, in this order: the one at
``PARALOOP_DASK_SCHEDULER``, the ``scheduler=`` the loop names (an address or
a ``distributed.Client``), the client the program already made (Dask's
current client), or else a local cluster that paraloop starts on
127.0.0.1 once (scheduler and workers as separate programs) and stops at exit.

The worker function travels by value (dill), like the process pool's, so
Dask workers never import the user's script; the job is scattered to the
cluster once per loop and cached by each worker.  Every task returns the
same serialized :class:`~paraloop.execute.Outcome` a process worker sends, so
combining, ``break``, ``return`` and exceptions behave exactly as on the
other backends.

A worker that dies while it holds a chunk: on the cluster paraloop starts,
Dask is told not to retry the chunk elsewhere (``allowed-failures`` 0), and
the loop raises :class:`~paraloop.WorkerCrashedError` naming the chunk's
iterations.  On a cluster the user brings, Dask's own setting decides: by
default it retries a lost chunk on another worker up to three times (the
result stays correct, since a chunk's outcome is taken once; untracked side
effects may happen twice), then the loop raises ``WorkerCrashedError``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import logging
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .. import module_globals, output, serialize, shm, warnings_relay
from ..chunks import Chunk, Chunker
from ..cpus import default_workers
from ..errors import ParaLoopError, ParaLoopWarning, WorkerCrashedError
from ..execute import RAISED, Job, Outcome, execute_chunk, timeout_error
from ..lifeline import alive
from ..wire import arrived, encode_outcome, job_bytes, job_failure
from .running import running_chunk

__all__ = ["run_dask", "shutdown"]

logger = logging.getLogger("paraloop")

# Seconds the cluster may have no worker at all while chunks wait, before the
# loop gives up (rather than hang on a cluster that lost every worker).
NO_WORKERS_GRACE = 30.0

# How long to try to reach a scheduler named by address, handshake included: a server
# there that accepts and never answers (or is not a Dask scheduler) is an error after this.
CONNECT_SECONDS = 10.0

# The dashboard's port when the user asks for it with True (Dask's own default).
DASHBOARD_PORT = 8787
# The HTTP routes of the scheduler of paraloop's own cluster: Dask's defaults without its
# proxy (which forwards requests to other addresses on behalf of whoever asks).
DASHBOARD_ROUTES = [
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.statics",
]
# Without the dashboard (the default), and for the workers always: Dask serves HTTP pages
# even then (the scheduler's list the workers, their call stacks and logs, to every local
# user, at 127.0.0.1:8787), so only the health check is left.
HEALTH_ROUTES = ["distributed.http.health"]

_lock = threading.Lock()
# The LocalCluster paraloop started, and the client on it.
_own: tuple[Any, Any] | None = None
# The environment its programs start with (see _cluster_environment), for workers it adds later,
# and its private folder (see _start_cluster).
_own_settings: dict[str, str] = {}
_own_folder: str | None = None
_registered = False
# Clients paraloop opened on scheduler addresses, reused by later loops.
_clients: dict[str, Any] = {}


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ParaLoopError(
            "backend='dask' needs Dask's distributed scheduler, which is not installed: "
            "pip install 'paraloop[dask]' (or pip install 'dask[distributed]')"
        ) from None
    return distributed


def _client(scheduler: Any, workers: int | None) -> Any:
    """The Dask client the loop runs on (see the module's docstring for the order)."""
    distributed = _import_distributed()
    address = os.environ.get("PARALOOP_DASK_SCHEDULER", "").strip() or None
    if address is None and scheduler is not None:
        if isinstance(scheduler, distributed.Client):
            return scheduler
        address = str(scheduler)
    if address is not None:
        return _client_at(distributed, address)
    try:
        return distributed.Client.current()
    except ValueError:
        pass
    return _own_client(distributed, workers or default_workers())


def _client_at(distributed: Any, address: str) -> Any:
    with _lock:
        client = _clients.get(address)
        if client is not None and client.status == "running":
            return client
        client = _connect(distributed, address)
        _register_shutdown()
        _clients[address] = client
        return client


def _connect(distributed: Any, address: str) -> Any:
    """A client on the scheduler at ``address``, or a ParaLoopError naming it within about
    :data:`CONNECT_SECONDS`.

    Dask's own ``timeout=`` bounds the TCP connection, not what follows: a server that
    accepts and never speaks held a client for minutes, a web server until it closed, and a
    peer that is not a Dask scheduler made one try to allocate exabytes (and its clean-up
    then held the program's exit for 20 s).  So paraloop first asks the address who it is,
    on a connection of its own with a deadline for the whole exchange, and makes the client
    only once a scheduler answered.
    """
    try:
        kind = _identify(address)
    except BaseException as error:  # any failure: no scheduler there (Ctrl-C goes on)
        if isinstance(error, KeyboardInterrupt):
            raise
        why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
            why = f"no answer within {CONNECT_SECONDS:g} s"
        raise ParaLoopError(
            f"cannot reach the Dask scheduler at {address!r} ({why[:300]}); check the address "
            "(PARALOOP_DASK_SCHEDULER or scheduler=), that a Dask scheduler (not another program) "
            "listens there, and that it runs"
        ) from None
    if kind != "Scheduler":
        raise ParaLoopError(
            f"the program at {address!r} is a Dask {kind}, not a scheduler; give the scheduler's "
            "address (PARALOOP_DASK_SCHEDULER or scheduler=)"
        )
    return distributed.Client(address, set_as_default=False, timeout=CONNECT_SECONDS)


def _identify(address: str) -> str:
    """The kind of Dask program at ``address`` ("Scheduler"), asked with a deadline."""
    distributed = _import_distributed()
    connect = distributed.comm.connect
    # The credentials a Client would use (Dask's configuration), for a tls:// scheduler.
    credentials = distributed.security.Security().get_connection_args("client")

    async def ask() -> str:
        comm = await connect(address, timeout=CONNECT_SECONDS, **credentials)
        try:
            await comm.write({"op": "identity"})
            reply = await comm.read()
        finally:
            comm.abort()
        if not isinstance(reply, dict) or "type" not in reply:
            raise ValueError("not a Dask program")
        return str(reply["type"])

    answer: list[Any] = []

    def run() -> None:
        # A thread of its own: the caller may be inside a running event loop (Jupyter).
        try:
            answer.append(asyncio.run(asyncio.wait_for(ask(), CONNECT_SECONDS)))
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            answer.append(error)

    thread = threading.Thread(target=run, name="paraloop-dask-identify", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 2.0)
    if not answer:
        raise TimeoutError
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return str(answer[0])


def _register_shutdown() -> None:
    global _registered
    if not _registered:
        atexit.register(shutdown)
        _registered = True


def _own_client(distributed: Any, workers: int) -> Any:
    """A local cluster on 127.0.0.1, started once per process and stopped at exit."""
    global _own
    with _lock:
        if _own is not None:
            cluster, client = _own
            if client.status == "running":
                # Grown, never shrunk: a loop asking for fewer keeps fewer chunks in flight.
                if len(cluster.workers) < workers:
                    # Its new workers start as the first did: with the credentials (they failed,
                    # "TLS expects a ssl_context", and the loop after 60 s).
                    with _environment(_own_settings):
                        cluster.scale(workers)
                        client.wait_for_workers(workers, timeout=60)
                return client
            _stop(cluster, client)
            _own = None
        client, cluster = _start_cluster(distributed, workers)
        _register_shutdown()
        _own = (cluster, client)
        return client


def _start_cluster(distributed: Any, workers: int) -> tuple[Any, Any]:
    """Start paraloop's own cluster of ``workers`` processes; its client and the cluster."""
    from distributed.deploy.subprocess import SubprocessCluster

    logger.debug("starting a Dask cluster with %d worker process(es) on 127.0.0.1", workers)
    # Why SubprocessCluster (which distributed calls experimental) and not the public
    # LocalCluster: scheduler and workers must run as separate programs (``python -m
    # distributed.cli.dask_spec``), not as multiprocessing children of this one.
    # - LocalCluster's nannies start their workers with multiprocessing's spawn
    #   method (distributed.worker.multiprocessing-method), which runs the parent's
    #   main script again in each worker, at start and whenever Dask restarts a worker
    #   after a crash: a script without an ``if __name__ == "__main__":`` guard (the
    #   common case) would run whole in every worker.  paraloop's own pool hides the
    #   main script from the workers it starts (processes/handle.py, main_hidden), but LocalCluster
    #   starts its processes from threads of its own, where that cannot be done
    #   without changing multiprocessing for the whole program.  fork instead is
    #   unsafe in a program with threads (Dask's event loop is one).
    # - LocalCluster's scheduler also runs inside this program, sharing its interpreter
    #   with the caller that combines the outcomes (not measured here; the first
    #   reason decides).  Killed programs are no reason either way: here each of the
    #   cluster's programs leaves once this one is gone, SIGKILL included
    #   (paraloop.lifeline, tested in tests/test_dask.py).
    # It is otherwise the cluster a LocalCluster user knows (the same Scheduler and
    # Nanny classes, SpecCluster's API: scale, close, dashboard_link), and its
    # dashboard is there on request (PARALOOP_DASK_DASHBOARD or
    # paraloop.config(dask_dashboard=...)).  A chunk lost with its worker is an
    # error, not retried elsewhere.
    # Only this program may use it: TLS with a certificate made for this run, which
    # every connection must present (another local user could otherwise connect to
    # 127.0.0.1 and run code as this one).
    global _own_settings, _own_folder
    security = _credentials()
    dashboard = _dashboard_address()
    # A folder of its own (0700) for what Dask writes by default under the temporary folder at
    # names anyone can guess: the scheduler's address file (written through a link another
    # user planted there) and the workers' scratch space (which goes first on their sys.path,
    # and which Dask uses whoever made it: another user's modules ran as this one).
    folder = _own_folder = tempfile.mkdtemp(prefix="paraloop-dask-")
    # Removed by the cleaner of shared-memory segments if this program is killed (see shm.py).
    shm.folder_made(folder)
    scheduler: dict[str, Any] = {
        "allowed_failures": 0,
        "protocol": "tls",
        "scheduler_file": os.path.join(folder, "scheduler.json"),
    }
    if dashboard is None:
        # The scheduler's HTTP server starts without the dashboard too, at Dask's 8787 (taken
        # from a dashboard the user starts later): its health check only, at a free port.
        scheduler.update(dashboard=False, dashboard_address="127.0.0.1:0")
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "n_workers": workers,
        "threads_per_worker": 1,
        "dashboard_address": dashboard,
        "scheduler_kwargs": scheduler,
        "worker_kwargs": {"local_directory": folder},
        "silence_logs": logging.CRITICAL,
        "security": security,
    }
    settings = _own_settings = _cluster_environment(security, dashboard is not None, folder)
    with _environment(settings):
        cluster = SubprocessCluster(**options)
    client = distributed.Client(cluster, set_as_default=False, security=security)
    client.wait_for_workers(workers, timeout=60)
    if dashboard is not None:
        logger.info("the Dask cluster's dashboard: %s", client.dashboard_link)
    return client, cluster


@contextlib.contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """The cluster's programs start with ``settings`` in their environment: this program's,
    for as long as it starts them (Dask starts them with the environment of the moment)."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cluster_environment(security: Any, dashboard: bool, folder: str) -> dict[str, str]:
    """The environment variables the cluster's programs start with (``dashboard``: on request;
    ``folder``: the cluster's own, for their temporary files)."""
    # The Dask programs read their configuration (log level, credentials) from the
    # environment they inherit, which only this user can read.
    settings = {"DASK_LOGGING__DISTRIBUTED": "error", **_credential_settings(security)}
    # Dask's own temporary files (not TMPDIR: a loop body's own go where the plain loop's do).
    settings["DASK_TEMPORARY_DIRECTORY"] = folder
    # Dask's HTTP pages for the dashboard, without the proxy to other addresses; or none.
    routes = DASHBOARD_ROUTES if dashboard else HEALTH_ROUTES
    settings["DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"] = json.dumps(routes)
    settings["DASK_DISTRIBUTED__WORKER__HTTP__ROUTES"] = json.dumps(HEALTH_ROUTES)
    seed = os.environ.get("PYTHONHASHSEED")
    if seed not in (None, "0"):
        # Dask's nannies start their workers with PYTHONHASHSEED=6640 (for hashes that agree
        # between workers) unless their configuration gives one: a program run with a seed of
        # its own has its workers hash strings as it does.  Not 0 (no randomization), which
        # Dask replaces with its own (docs/semantics.md, Known differences).
        import dask

        environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), "PYTHONHASHSEED": seed}
        settings["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"] = repr(environ)
    # Each of them leaves once this program is gone, however it ended (SIGKILL too).
    settings["PARALOOP_OWNER"] = str(os.getpid())
    for kind in ("SCHEDULER", "NANNY", "WORKER"):
        settings[f"DASK_DISTRIBUTED__{kind}__PRELOAD"] = '["paraloop.lifeline"]'
    return settings


def _dashboard_address() -> str | None:
    """Where the dashboard of paraloop's own cluster listens, if the user asked for it.

    ``PARALOOP_DASK_DASHBOARD`` (a port, or ``off``) overrides the code's
    ``paraloop.config(dask_dashboard=...)`` (a port, True for Dask's usual 8787, False).
    Always on 127.0.0.1, and off by default: its pages show every local user what the
    program computes (they carry no credentials, unlike the cluster itself).
    """
    given = os.environ.get("PARALOOP_DASK_DASHBOARD", "").strip()
    if given:
        if given.lower() in ("off", "0"):
            return None
        if not given.isdigit() or not 1 <= int(given) <= 65535:
            raise ParaLoopError(
                f"PARALOOP_DASK_DASHBOARD={given!r}: give the port of the dashboard on 127.0.0.1 "
                "(PARALOOP_DASK_DASHBOARD=8787), or off"
            )
        port = int(given)
    else:
        from ..settings import current

        asked = current().get("dask_dashboard")
        if asked is None or asked is False:
            return None
        port = DASHBOARD_PORT if asked is True else int(asked)
    if importlib.util.find_spec("bokeh") is None:
        warnings.warn(
            f"the Dask dashboard on 127.0.0.1:{port} needs bokeh, which is not installed: pip install "
            "'bokeh>=3.1' (without it the dashboard's address answers only Dask's health and "
            "metrics pages)",
            ParaLoopWarning,
            stacklevel=2,
        )
    return f"127.0.0.1:{port}"


def _credentials() -> Any:
    """TLS credentials made for this run (``cryptography``, in the dask extra)."""
    distributed = _import_distributed()
    try:
        return distributed.security.Security.temporary()
    except ImportError:
        raise ParaLoopError(
            "the local Dask cluster paraloop starts is open to this user only, through TLS, "
            "which needs the cryptography package: pip install 'paraloop[dask]' (or pip install "
            "cryptography); or start a cluster yourself and pass scheduler="
        ) from None


def _credential_settings(security: Any) -> dict[str, str]:
    """Dask's configuration, as environment variables, for programs that use ``security``."""
    prefix = "DASK_DISTRIBUTED__COMM__"
    settings = {f"{prefix}REQUIRE_ENCRYPTION": "True", f"{prefix}DEFAULT_SCHEME": "tls"}
    settings[f"{prefix}TLS__CA_FILE"] = security.tls_ca_file
    for role in ("scheduler", "worker", "client"):
        settings[f"{prefix}TLS__{role.upper()}__CERT"] = getattr(security, f"tls_{role}_cert")
        settings[f"{prefix}TLS__{role.upper()}__KEY"] = getattr(security, f"tls_{role}_key")
    return settings


def _stop(cluster: Any, client: Any) -> None:
    """Close the cluster paraloop started, letting its processes clean up after themselves.

    Dask's own ``close()`` kills the worker programs at once, with the
    semaphores their nannies made still on ``/dev/shm``; so they are asked to
    stop first, and what is still running after a few seconds is killed.
    After Ctrl-C in a terminal the cluster's processes got the signal too and
    are already shutting down.
    """
    import psutil  # a dependency of distributed

    scheduler = getattr(cluster.scheduler, "process", None)
    nannies = [getattr(worker, "process", None) for worker in cluster.workers.values()]
    if client.status == "running":
        try:
            client.close(timeout=3)  # first, so that it does not try to reconnect
        except Exception:  # the processes are stopped below either way
            logger.debug("closing the Dask client failed", exc_info=True)
    # SIGTERM, which the Dask programs handle by closing in order (closed by
    # the scheduler instead, the nannies leave their semaphores behind):
    # the nannies first, while the scheduler they report to still runs.
    for group in ([n.pid for n in nannies if n is not None], [scheduler.pid] if scheduler else []):
        for pid in group:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):  # it may exit meanwhile
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while any(alive(pid) for pid in group) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in group:
            if alive(pid):
                try:
                    process = psutil.Process(pid)
                    for child in process.children(recursive=True):
                        child.kill()
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
    # Everything is gone: Dask closing it again (now or at exit) would only wait for it.
    cluster.shutdown_on_close = False
    global _own_folder
    folder, _own_folder = _own_folder, None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        shm.folder_removed(folder)
    try:
        client.close(timeout=1)
    except Exception:  # noqa: BLE001 - nothing is left to close
        pass


def shutdown() -> None:
    """Close paraloop's clients and stop the cluster it started, if any; called at exit."""
    global _own
    began = time.monotonic()
    with _lock:
        own, _own = _own, None
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
    if own is not None:
        _stop(*own)
        logger.debug("stopped the Dask cluster in %.2f s", time.monotonic() - began)


# Jobs a Dask worker has loaded, by loop key: a loop's chunks reuse its job.
_jobs: OrderedDict[str, Job | ParaLoopError] = OrderedDict()
_jobs_lock = threading.Lock()
# Entries paraloop put on a Dask worker's sys.path, with the loops that use them: the last
# loop's end takes each away (see release), so a cluster the user brought is left as found.
_added_paths: dict[str, set[str]] = {}
# Stand-ins paraloop put in a Dask worker's sys.modules for modules the caller is importing,
# with the loops that use them: as for the path, the last loop's end takes each away.
_added_stand_ins: dict[str, set[str]] = {}
# Loops whose end this worker has seen (the most recent ones): a chunk of such a loop that
# starts after the release (sent without waiting, while the chunk was already on its way)
# must not put the caller's directories back for good.
_ended: OrderedDict[str, None] = OrderedDict()


def _job(
    key: str, data: bytes, path: list[str], importing: tuple[serialize.Importing, ...]
) -> Job | ParaLoopError:
    with _jobs_lock:
        found = _jobs.get(key)
        if found is not None:
            return found
        if key in _ended:
            return ParaLoopError("this chunk's loop has ended; nobody waits for its outcome")
        # The caller's import path, for modules the function refers to by name;
        # only directories this machine has (the cluster may be elsewhere).
        for entry in reversed(path):
            if entry in _added_paths:
                _added_paths[entry].add(key)
            elif entry not in sys.path and os.path.isdir(entry):
                sys.path.insert(0, entry)
                _added_paths[entry] = {key}
        # A module whose top level runs this loop is not imported here, which would run its
        # top level (loop included) again: a stand-in takes its place, as in a worker process
        # (pickle looks up each function it sends back, a lambda's too, by its module's name).
        for name in serialize.add_stand_ins(importing):
            _added_stand_ins[name] = set()
        for name, _, _, _ in importing:
            if name in _added_stand_ins:
                _added_stand_ins[name].add(key)
        job_data, globals_ = pickle.loads(data)
        loaded: Job | ParaLoopError
        try:
            job: Job = serialize.loads(job_data)
            # The user's modules' globals as the loop started (see paraloop.module_globals).
            module_globals.apply(globals_, f"{job.filename}, line {job.line}")
            loaded = job
        except Exception as error:  # noqa: BLE001 - reported for every chunk of the loop
            loaded = job_failure(error)
        _jobs[key] = loaded
        while len(_jobs) > 8:
            _jobs.popitem(last=False)
        return loaded


def release(key: str) -> None:
    """On a Dask worker, at a loop's end: forget its job, and take away the ``sys.path``
    entries no other running loop uses."""
    with _jobs_lock:
        _jobs.pop(key, None)
        _ended[key] = None
        while len(_ended) > 256:
            _ended.popitem(last=False)
        for entry, keys in list(_added_paths.items()):
            keys.discard(key)
            if not keys:
                del _added_paths[entry]
                with contextlib.suppress(ValueError):
                    sys.path.remove(entry)
        for name, keys in list(_added_stand_ins.items()):
            keys.discard(key)
            if not keys:
                del _added_stand_ins[name]
                serialize.drop_stand_in(name)


async def _release_on_worker(key: str) -> None:
    # A coroutine: Dask runs only those without waiting for their answers (wait=False).
    release(key)


def run_chunk(
    key: str,
    data: bytes,
    path: list[str],
    importing: tuple[serialize.Importing, ...],
    index: int,
    start: int,
    items: bytes,
) -> bytes:
    """The Dask task: run one chunk, return its serialized outcome."""
    # Also while loading: a module the job imports may hold ParaLoop loops at
    # its top level, and those must run here, not send tasks to the cluster.
    with running_chunk():
        job = _job(key, data, path, importing)
        if isinstance(job, ParaLoopError):
            return serialize.dumps(Outcome(index, start, 0, RAISED, start, job))
        chunk = Chunk(index, start, serialize.loads(items))
        output.install(job.streams, owned=False)
        warnings_relay.install(owned=False)
        warnings_relay.forget_shown()
        if job.timeout is None:
            outcome = output.run_captured(job.streams, lambda: execute_chunk(job, chunk))
        else:
            outcome = _with_deadline(job, chunk)
    return encode_outcome(outcome, job)


def _with_deadline(job: Job, chunk: Chunk) -> Outcome:
    """Run the chunk in a thread of this task, watched: an iteration past the timeout ends the
    task with IterationTimeoutError, naming this worker, which the caller then restarts (the
    thread cannot be stopped otherwise)."""
    assert job.timeout is not None
    clock: list[Any] = [0.0, -1]
    done: list[Outcome] = []

    def work() -> None:
        with running_chunk():
            done.append(output.run_captured(job.streams, lambda: execute_chunk(job, chunk, clock)))

    thread = threading.Thread(target=work, name="paraloop-dask-chunk", daemon=True)
    thread.start()
    while thread.is_alive():
        started = clock[0]
        wait = job.timeout if not started else max(0.0, started + job.timeout - time.monotonic())
        thread.join(min(wait, 0.5) + 0.01)
        started = clock[0]
        if thread.is_alive() and started and time.monotonic() - started > job.timeout:
            index = int(clock[1])
            worker = _distributed_worker()
            error = timeout_error(job, index, [chunk], "its Dask worker is restarted")
            error.worker = worker  # type: ignore[attr-defined]
            # A per-worker object being made (a negative index) stops the chunk before its first.
            stop = max(index, chunk.start)
            return Outcome(chunk.index, chunk.start, len(chunk.items), RAISED, stop, error)
    return done[0]


def _distributed_worker() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def _held(job: Job, chunk: Chunk) -> str:
    last = chunk.start + len(chunk.items) - 1
    return f"iterations {chunk.start} to {last}" if last != chunk.start else f"iteration {last}"


def _submit(
    client: Any,
    chunker: Chunker,
    running: dict[Any, Chunk],
    in_flight: int,
    loop: tuple[str, Any, list[str], tuple[serialize.Importing, ...]],
) -> None:
    """Submit chunks until ``in_flight`` run; ``loop``: the loop's key, its job's future, the
    caller's ``sys.path`` and the modules it is importing, as every task gets them."""
    key, job_future, path, importing = loop
    while len(running) < in_flight:
        chunk = chunker.next()
        if chunk is None:
            return
        payload = chunk.payload if chunk.payload is not None else serialize.dumps(chunk.items)
        chunker.sent(len(chunk.items), len(payload))
        future = client.submit(
            run_chunk,
            key,
            job_future,
            path,
            importing,
            chunk.index,
            chunk.start,
            payload,
            key=f"paraloop-{key}-{chunk.index}",
            pure=False,
            retries=0,
        )
        running[future] = chunk


def _finished(
    distributed: Any, client: Any, running: dict[Any, Chunk], finished: list[Any], job: Job
) -> Iterator[Outcome]:
    """The outcomes of the ``finished`` tasks, in chunk order, each taken off ``running``."""
    for future in sorted(finished, key=lambda f: running[f].index):
        chunk = running.pop(future)
        outcome = _outcome(distributed, future, chunk, job)
        worker = getattr(outcome.value, "worker", None) if outcome.kind == RAISED else None
        if worker is not None:
            # An iteration ran past the timeout and still runs there: restart that worker.
            with contextlib.suppress(Exception):
                client.restart_workers([worker], raise_for_error=False)
        yield outcome


def run_dask(job: Job, chunker: Chunker, scheduler: Any, workers: int | None) -> Iterator[Outcome]:
    """Run the chunks as tasks on a Dask cluster; yield outcomes as they arrive."""
    distributed = _import_distributed()

    refuse_shared_arrays(job)
    client = _client(scheduler, workers)
    # Functions and classes of a module whose top level runs this loop travel by value, so
    # that the workers do not import it (see serialize.importing_now).
    importing = serialize.importing_now()
    # The job, and the globals of the user's modules it reaches (see paraloop.module_globals).
    data = pickle.dumps(
        (job_bytes(job), module_globals.snapshot(job.function, job.values)), protocol=pickle.HIGHEST_PROTOCOL
    )
    key = uuid.uuid4().hex
    # Every worker gets a copy: the loss of one worker does not lose the job.
    job_future = client.scatter(data, hash=False, broadcast=True)
    # Absolute: '' (python -c, a REPL, Jupyter) and '.' name the caller's current directory,
    # not the worker's.
    path = [os.path.abspath(entry) for entry in sys.path]
    # Enough chunks in flight that no worker waits for the next one.
    threads = sum(client.nthreads().values()) or 1
    in_flight = 2 * (workers if workers is not None else threads)
    running: dict[Any, Chunk] = {}
    no_workers_since: float | None = None
    try:
        while True:
            _submit(client, chunker, running, in_flight, (key, job_future, path, importing))
            if not running:
                return
            finished = [future for future in running if future.done()]
            if not finished:
                try:
                    with client.as_current():
                        distributed.wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")
                except distributed.client.FuturesCancelledError:
                    pass  # the cancelled ones are done: reported below
                except (TimeoutError, asyncio.TimeoutError):  # two classes before Python 3.11
                    # Watch the cluster: one that lost every worker would never answer.
                    no_workers_since = _check_workers(client, job, no_workers_since)
                continue
            no_workers_since = None
            yield from _finished(distributed, client, running, finished, job)
    finally:
        # Released, not cancelled: releasing never waits for the scheduler (which
        # after Ctrl-C in a terminal may be gone), and chunks nobody wants are
        # dropped by the scheduler before they start.
        for future in [*running, job_future]:
            future.release()
        if client.status == "running" and (importing or _own is None or client is not _own[1]):
            # A cluster the user brought: leave its workers as they were (not waiting, as
            # above; a chunk still running after a break finishes with the entries gone).
            # Stand-ins this loop put there go before the loop returns, on every cluster: a
            # later loop, the module imported by then, must find the module itself there, not
            # the copies of its functions as they were during this loop.
            _release(client, key, wait=bool(importing))


# How long a loop's end waits for the workers to take its stand-ins away.
RELEASE_WAIT_SECONDS = 10.0


def _release(client: Any, key: str, wait: bool = False) -> None:
    """Take the loop's entries off the workers' ``sys.path``, from any thread; with ``wait``,
    for up to RELEASE_WAIT_SECONDS until the workers have.

    A loop left half read (a generator expression) ends when the garbage collector
    finalizes it, in whatever thread runs then: in Dask's own event loop thread, a
    synchronous client call would wait for that very loop, forever.  There it is made
    from a thread of its own, without waiting.
    """

    def release() -> None:
        with contextlib.suppress(Exception):
            client.run(_release_on_worker, key, wait=wait)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        wait = False
    thread = threading.Thread(target=release, name="paraloop-dask-release", daemon=True)
    thread.start()
    if wait:
        thread.join(RELEASE_WAIT_SECONDS)


def _check_workers(client: Any, job: Job, since: float | None) -> float | None:
    if client.nthreads():
        return None
    now = time.monotonic()
    if since is None:
        return now
    if now - since > NO_WORKERS_GRACE:
        raise WorkerCrashedError(
            f"{job.filename}, line {job.line}: the Dask cluster at {client.scheduler.address} has had "
            f"no workers for {NO_WORKERS_GRACE:g} s, so the loop's chunks cannot run; start workers "
            "or use another backend"
        )
    return since


def _outcome(distributed: Any, future: Any, chunk: Chunk, job: Job) -> Outcome:
    began = time.perf_counter()
    try:
        data = future.result()
    except distributed.KilledWorker as error:
        return _lost(
            chunk,
            f"{job.filename}, line {job.line}: a Dask worker ({error.last_worker.address}) died "
            f"while running {_held(job, chunk)} of the loop. The iterations it held were lost; "
            "if it ran out of memory, give the workers more memory or use smaller items",
        )
    except distributed.client.FutureCancelledError as error:
        return _lost(
            chunk,
            f"{job.filename}, line {job.line}: Dask lost {_held(job, chunk)} of the loop ({error}): "
            "the workers that held it or the loop's data died, or the cluster was closed or restarted. "
            "The iterations were lost",
        )
    outcome: Outcome = serialize.loads(data)
    return arrived(outcome, began)


def _lost(chunk: Chunk, message: str) -> Outcome:
    """A lost chunk's outcome: the loop's WorkerCrashedError at the chunk's first iteration,
    raised once the chunks before it are combined.  The worker's death also lost the results
    of earlier chunks it had finished and the caller had not fetched yet; Dask computes those
    again, and the tracked state still holds every iteration before the lost ones (raised at
    once, the error left them out: the state held iterations 0 to 2 of 0 to 6 on a loaded CI)."""
    error = WorkerCrashedError(message)
    return Outcome(chunk.index, chunk.start, len(chunk.items), RAISED, chunk.start, error)


def refuse_shared_arrays(job: Job) -> None:
    """A SharedArray lives in this machine's memory: Dask workers cannot write into it."""
    from ..shared import SharedArray

    for name, value in zip(job.params, job.values):
        if isinstance(value, SharedArray):
            raise ParaLoopError(
                f"{job.filename}, line {job.line}: the loop body writes into {name!r}, a "
                "SharedArray, which lives in this machine's shared memory and cannot be reached "
                "by Dask workers. Use backend='processes' or 'threads' for it, or collect the "
                "values with a Variable (aggregation_strategies.IndexWrites) instead"
            )
