"""One worker process as the caller holds it: started, spoken to, stopped.

Starting one keeps the program's own state out of the way: a spawned or forkserver worker
does not re-run the user's ``__main__``, a Ctrl-C during a fork is delivered afterwards,
and a forked child inherits the caller's objects out of its garbage collector's reach.
"""

from __future__ import annotations

import gc
import mmap
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ... import log, serialize
from ...chunks import Chunk
from ...linux import linux_facilities
from ...signal_errors import ctrl_c_deferred, getsignal, python_handlers
from . import fork_server
from .protocol import CHUNK, HEADER, QUIT

__all__ = [
    "Worker",
    "ctrl_c_held",
    "freeze_for_fork",
    "frozen_for_fork",
    "main_hidden",
    "wait",
]


_starting = threading.local()

# Held from a new worker's pipes to the close of the worker's ends in the caller, whatever the
# start method: a fork meanwhile (another pool's worker, in another thread) would give its child
# copies of those ends, and of a spawn worker's sentinel, and the worker's death would show
# neither as the end of its pipe nor through its sentinel while that child lives.
_starts = threading.RLock()

_SIGPIPE: Any = getattr(signal, "SIGPIPE", None)
# sigtimedwait is Linux's (and other POSIX systems'), not macOS's.
_CAN_HOLD_SIGPIPE = _SIGPIPE is not None and hasattr(signal, "sigtimedwait")


@contextmanager
def sigpipe_held() -> Iterator[None]:
    """A write to a worker that died raises BrokenPipeError, which the pool reports or mends.

    Python ignores SIGPIPE at startup, but a program may reset it to the default (command-line
    tools do, to end quietly when piped into ``head``) or give it a handler: the same write
    would then kill the program (exit status 141, after its output, without a word) or call
    its handler, where the plain loop does neither.  So the signal is held in this thread for
    the write and the one the write raised is taken back; one the program was sent meanwhile
    is delivered when the write ends.  A program that keeps Python's SIG_IGN pays nothing.
    """
    if not _CAN_HOLD_SIGPIPE or getsignal(_SIGPIPE) == signal.SIG_IGN:
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {_SIGPIPE})
    try:
        yield
    except BrokenPipeError:
        # This write raised one SIGPIPE: that one is taken back, not one the program was sent
        # meanwhile (standard signals do not queue: one sent meanwhile is one more pending).
        if _SIGPIPE not in held:
            signal.sigtimedwait({_SIGPIPE}, 0)
        raise
    finally:
        if _SIGPIPE not in held:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextmanager
def main_hidden(method: str) -> Iterator[None]:
    """Start spawn and forkserver workers without re-running the user's ``__main__``.

    Those start methods make the child run the parent's main script first,
    which for a script without an ``if __name__ == "__main__":`` guard would
    run the whole program again in every worker.  paraloop's workers never
    need it (the loop's function travels by value), so the preparation data a
    worker (or the fork server) gets while this thread starts it names no main
    script.  Only this thread's starts: ``sys.modules["__main__"]`` stays as it
    is, so other threads meanwhile load results of the script's classes as those
    classes.
    """
    if method == "fork":
        yield
        return
    _filter_preparation()
    if method == "forkserver":
        fork_server.install(lambda: getattr(_starting, "active", False))
    _starting.active = True
    try:
        yield
    finally:
        _starting.active = False


def _filter_preparation() -> None:
    """Wrap ``multiprocess.spawn.get_preparation_data`` (once): while paraloop starts a worker
    in this thread, the data names no main script to run first."""
    from multiprocess import spawn

    original = spawn.get_preparation_data
    if getattr(original, "paraloop", False):
        return

    def get_preparation_data(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        if getattr(_starting, "active", False):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    get_preparation_data.paraloop = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = get_preparation_data


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C (and any signal the program handles in Python) while a worker starts;
    deliver it once the worker is the pool's.

    A SIGINT that arrives during ``os.fork()`` raises KeyboardInterrupt inside
    an at-fork hook (logging has one), where Python prints and drops it: the
    program would go on waiting for workers, which ignore Ctrl-C.  An alarm whose
    handler raises is dropped there the same way, and the loop went on as if it had
    not rung.  So each such signal is only noted meanwhile, and its handler called
    afterwards, as it would have been.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = python_handlers()
    if not previous:
        yield
        return
    held: list[tuple[Any, Any]] = []
    for number in previous:
        signal.signal(number, lambda signum, frame: held.append((signum, frame)))
    _holding.update(previous)
    try:
        yield
    finally:
        _holding.clear()
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number, frame in held:
            previous[number](number, frame)


# The program's handlers while ctrl_c_held notes their signals: a worker forked meanwhile gets
# them back at once (an alarm its iteration sets must reach the iteration's own except).
_holding: dict[Any, Any] = {}


def _handlers_back_in_child() -> None:
    for number, handler in _holding.items():
        # Not Ctrl-C: a worker ignores it (it is the caller's to act on), and till it says
        # so, a Ctrl-C is only noted there, as before.
        if number != signal.SIGINT:
            signal.signal(number, handler)
    _holding.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_handlers_back_in_child)


@contextmanager
def _frozen(method: str) -> Iterator[None]:
    """Around a fork: the objects the child inherits are out of its garbage collector's reach.

    A forked child shares the parent's memory until it writes to it; a collection
    that walks every inherited object writes to all of their pages, and the child
    then copies the parent's whole heap while its first chunk runs.  (Freezing and
    unfreezing only move list heads: microseconds.)
    """
    if method != "fork":
        yield
        return
    with frozen_for_fork():
        yield


@contextmanager
def frozen_for_fork() -> Iterator[None]:
    """The objects of the process out of the garbage collector's reach around a fork (see
    :func:`_frozen`); afterwards as they were, in the parent.  A program that froze objects
    of its own keeps them frozen: ``gc.unfreeze()`` takes back every frozen object, so then
    those frozen for the fork stay so too (the program's count grows; an unfreeze undid the
    program's own freeze, and its own forks copied its heap again)."""
    thaw = freeze_for_fork()
    try:
        yield
    finally:
        thaw()


def freeze_for_fork() -> Callable[[], None]:
    """Freeze the process's objects for a fork (see :func:`frozen_for_fork`); the function that
    puts them back as they were, for the parent to call (a child that stays frozen never does)."""
    own = gc.get_freeze_count()
    gc.freeze()
    return (lambda: None) if own else gc.unfreeze


def _clock(context: Any, method: str) -> Any:
    """Two doubles shared with one worker process."""
    if method == "fork":
        # A forked child inherits an anonymous shared mapping: it costs microseconds,
        # where a RawArray (a file in /dev/shm) costs about a millisecond per worker; seen
        # as doubles without ctypes, whose import cost the first fork 1.5 ms.
        return memoryview(mmap.mmap(-1, 16)).cast("d")
    return context.RawArray("d", 2)


def _pidfd(pid: int | None) -> int | None:
    """A descriptor readable once process ``pid`` ended, on Linux 5.3 and later; else None (the
    process's sentinel serves).

    Whoever else holds copies of the worker's pipe ends or of its sentinel's write end (a child
    the program forked in another thread while the worker started, with paraloop's lock not
    held: its own ``os.fork``, a multiprocessing pool), the worker's end still shows: a sentinel
    is a pipe, and one that such a child holds open never ends, which left a loop waiting for
    ever on a worker that died.
    """
    if pid is None or not linux_facilities():
        return None
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # an older kernel (ENOSYS), or a sandbox that refuses it


def wait(objects: list[Any], timeout: float | None) -> list[Any]:
    """Those of ``objects`` (pipes, sentinels) ready within ``timeout``: see forked.wait."""
    from .forked import wait as waited

    return waited(objects, timeout)


# How long a start waits for a fork server that refused it to be gone (it is, in milliseconds).
SERVER_GONE_SECONDS = 5.0


def _start(process: Any, method: str) -> None:
    """Start ``process``; under forkserver, again once if its fork server was ending.

    A fork server whose client went away in the middle of a request (a Ctrl-C in the program as
    it started a worker, which the program then caught) dies of it: multiprocess's server takes
    the half request for an error.  multiprocess starts a new one when it finds the old one gone,
    but a start just after may find it still ending, and be refused: the program's next loop
    would fail."""
    try:
        process.start()
    except (ConnectionRefusedError, FileNotFoundError, ConnectionResetError, BrokenPipeError, EOFError):
        if method != "forkserver" or not _fork_server_ended():
            raise
        log.debug("the fork server had ended: starting %s again", process.name)
        process.start()


def _fork_server_ended() -> bool:
    """Whether multiprocess's fork server has ended (waited for a while), its status left for
    multiprocess to collect, which then starts a new one."""
    from multiprocess import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid is None:
        return False
    deadline = time.monotonic() + SERVER_GONE_SECONDS
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return False  # collected by someone else: multiprocess would not know it ended
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _temporary_folder() -> str | None:
    """multiprocess's temporary folder of this process (made if need be: the fork server's
    socket goes there), if this process made it; else None.

    A process that multiprocess started, or that ``os.fork()`` made, inherits its parent's
    folder: its workers must not remove it when it ends (the parent's next fork server would
    find it gone).  The process that made it registered its removal at its own exit (a
    ``Finalize`` under its own pid), which a child inherits under the parent's pid, or not at all.
    """
    from multiprocess import util

    folder = str(util.get_temp_dir())
    try:
        made_here = any(
            getattr(entry, "_callback", None) is util._remove_temp_dir
            and getattr(entry, "_pid", None) == os.getpid()
            and folder in (getattr(entry, "_args", None) or ())
            for entry in list(util._finalizer_registry.values())
        )
    except Exception:  # noqa: BLE001 - multiprocess's own books, read as they are: then keep it
        made_here = False
    return folder if made_here else None


class Worker:
    """A worker process, its pipe, and what the caller knows of it (the chunks it holds)."""

    def __init__(self, context: Any, method: str, number: int) -> None:
        # The worker's side, imported with the first worker (a loop that ends in the caller
        # needs none of it): under fork the child has it from the parent.
        from .child import serve

        name = f"paraloop-worker-{number}"
        # The running iteration's start time and index, for loops with a timeout.
        self.clock = _clock(context, method)
        self.process: Any
        # The program's temporary folder for multiprocess, where a fork server listens: its
        # workers remove it should the program be killed (see child.serve).
        folder = _temporary_folder() if method == "forkserver" else None
        with _starts:
            if method == "fork":
                # Without multiprocess (see forked.py): the child has the worker's code already.
                from .forked import ForkedProcess, channel_pair

                parent_end, child_end = channel_pair()
                self.process = ForkedProcess(
                    serve, (child_end, self.clock, os.getpid()), name, (parent_end, child_end)
                )
            else:
                parent_end, child_end = context.Pipe(duplex=True)
                self.process = context.Process(
                    target=serve, args=(child_end, self.clock, os.getpid(), folder), name=name, daemon=True
                )
            with main_hidden(method), _frozen(method), ctrl_c_deferred():
                _start(self.process, method)
            child_end.close()
        log.debug("started %s (pid %s, %s)", self.process.name, self.process.pid, method)
        self.connection = parent_end
        # Readable once the process ended (see _pidfd and ended).
        self._pidfd = _pidfd(self.process.pid)
        self.job_id = -1
        # The loop that holds this worker while it runs (a generator expression
        # over ParaLoop can hold workers while other loops run).
        self.lease: int | None = None
        # The chunks it holds, by index: one, or with lanes two (the next one queues
        # in the worker while the current one's last iterations finish).
        self.chunks: dict[int, Chunk] = {}
        # Its one chunk is a lanes probe (see policy.Probe).
        self.probing = False
        # Its one chunk is watched (see watch.py) and no Early came yet.
        self.watched = False
        # The CPU time its watched chunk had used when it sent an Early.
        self.early_cpu: float | None = None
        # Iterations given to it since it started (see max_iterations_per_worker).
        self.assigned = 0
        # Its last outcome said its guard left objects unchecked (see ProcessPool._final_check).
        self.unchecked = False
        # Iterations of this loop still run in its lanes after their chunk was sent (see
        # lanes.finish_lanes): it is stopped at the loop's end, not given to another loop.
        self.leftovers = False
        # Its pipe holds bytes the next loop must not meet: a message to it cut short (Ctrl-C
        # during a send; it would read the next loop's messages as the rest of it), or an
        # answer to a CHECK not read (the next loop would take it for an outcome).  It is
        # stopped at the loop's end, not given to another loop.
        self.unclean = False
        self._killing = threading.Lock()

    def send(self, kind: int, loop_id: int, index: int, start: int, payload: bytes, lanes: int = 1) -> None:
        self.unclean = True
        with sigpipe_held():
            self.connection.send_bytes(HEADER.pack(kind, loop_id, index, start, lanes) + payload)
        self.unclean = False

    def give(self, loop_id: int, chunk: Chunk, lanes: int) -> int:
        """Send ``chunk``, to run in ``lanes`` lanes (or watched); it is held until its outcome.

        Returns the size of its items on the way, in bytes.
        """
        self.chunks[chunk.index] = chunk
        self.assigned += len(chunk.items)
        payload = chunk.payload if chunk.payload is not None else serialize.dumps(chunk.items)
        chunk.payload = None  # the items are held until the outcome; their bytes need not be
        self.send(CHUNK, loop_id, chunk.index, chunk.start, payload, lanes)
        return len(payload)

    def gone(self, ready: list[Any]) -> bool:
        """Whether the process ended, after a wait that found ``ready`` (see :func:`wait`):
        its pidfd or sentinel among them; without a pidfd, also as the system says, once
        nothing it wrote is left to read (a sentinel that a child the program forked holds
        open never shows the end)."""
        if self.ended in ready or self.connection.closed:
            return True
        if self._pidfd is not None or self.process.is_alive():
            return False
        return not wait([self.connection], 0)

    @property
    def ended(self) -> Any:
        """What a wait shows the process's end by: its pidfd, else its sentinel."""
        return self.process.sentinel if self._pidfd is None else self._pidfd

    @property
    def end_unwatched(self) -> bool:
        """Whether only :meth:`gone` sees this worker's end for certain (no pidfd here)."""
        return self._pidfd is None

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the process to end, and collect its status.

        Through the pidfd where there is one: a sentinel that a child the program forked holds
        open shows no end, and a join on it waited its whole timeout for a worker long dead."""
        if self._pidfd is None:
            self.process.join(timeout=timeout)
            return
        began = time.monotonic()
        # The status: a child's is collected at once (waitpid); a fork server's worker is the
        # server's child, whose status the server sends through the sentinel once it collected
        # it, a moment after the pidfd shows the end.
        if wait([self._pidfd], timeout) and self.process.is_alive():
            self.process.join(timeout=max(0.0, timeout - (time.monotonic() - began)))

    def describe_exit(self) -> str:
        self.join(1.0)
        code = self.process.exitcode
        if code is None and getattr(self.process, "status_lost", False):
            return (
                "ended (how is not known: the program collected its exit status itself, with "
                "SIGCHLD ignored or a wait() of its own)"
            )
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with code {code}"

    def quit(self) -> None:
        """Ask it to quit: it closes its per-worker objects and exits."""
        try:
            self.send(QUIT, 0, 0, 0, b"")
        except OSError:
            pass

    def stop(self, wait_seconds: float) -> None:
        self.quit()
        self.join(wait_seconds)
        self.kill()

    def kill(self) -> None:
        # The program's exit (pool.shutdown) and a daemon thread's loop may stop one worker at
        # once: closing its connection twice raised EBADF in the exit function.
        with self._killing:
            self._kill()

    def _kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.join(5.0)
        self.connection.close()
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            os.close(pidfd)
