"""The watcher thread of a worker's first chunk: an early word that its iterations wait.

Lanes (see policy.py and lanes.py) are switched on from measurements, and a
chunk's measurements normally arrive with its outcome.  A loop of slow
requests would then run its first iterations one per worker for a whole
request (half a second, say) before anything else starts.  So a worker's
first chunk of a loop is watched from a thread of the worker: as soon as its
iterations have run long enough to tell (``EVIDENCE_SECONDS`` from the first
iteration's start) and mostly waited, the watcher tells the parent (an
:class:`Early` message) and reads the one reply, a chunk to run in lanes or
nothing, while the main thread's iteration still waits.  The parent treats
the word as provisional: the chunk's outcome, with all its time, can still
switch lanes off.
"""

from __future__ import annotations

import _thread
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ...cpus import queued_seconds, queued_seconds_of
from ...execute import Outcome
from ...process_state import changed, snapshot
from .policy import EVIDENCE_SECONDS, mostly_waiting
from .protocol import Early

__all__ = ["Watch"]

# After the first look, the watcher looks again after at least this long.
LOOK_AGAIN_SECONDS = 0.005


class Watch:
    """Watches the chunk the worker's main thread runs; says so early if its iterations wait.

    ``reply`` is called in the watcher thread with the parent's answer (a raw
    message), once the parent has answered.  The main thread calls
    :meth:`finished` when the chunk is done, before it sends the outcome, and
    :meth:`join` before it reads the pipe again.
    """

    def __init__(
        self,
        connection: Any,
        sending: threading.Lock,
        reply: Callable[[bytes], None],
        gone: Callable[[], None],
    ) -> None:
        """``gone``: how the worker leaves once its program is gone (see child._leave)."""
        from ... import serialize

        self._dumps = serialize.dumps
        self._connection = connection
        self._sending = sending
        self._reply = reply
        self._gone = gone
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._answered = threading.Event()
        self._finished = False
        self.said = False
        self._parent = os.getppid()
        self._thread_id = threading.get_native_id()
        # Set by started(), _began last: until then no iteration ran, and nothing is evidence.
        self._began: float | None = None
        self._began_cpu = self._began_thread_cpu = self._began_queued = 0.0
        self._state = snapshot()
        # A bare thread: threading.Thread.start() waits until the new thread runs, which
        # on busy CPUs took milliseconds, and most watched chunks are over long before 15 ms.
        _thread.start_new_thread(self._run, ())

    def started(self) -> None:
        """Called by the main thread just before the chunk's first iteration starts.

        The evidence is the iterations' own time: the worker's time before them (the
        chunk's setup, or a wait for a CPU that no /proc shows) said nothing about them, and
        an early word then (lanes from an iteration that had not reached its first line)
        missed a change of process-wide state the first iteration makes at once.
        """
        self._began_cpu = time.process_time()
        self._began_thread_cpu = time.thread_time()
        self._began_queued = queued_seconds()
        self._began = time.perf_counter()

    def _run(self) -> None:
        delay = EVIDENCE_SECONDS
        while not self._done.wait(delay):
            began = self._began
            if began is None:
                delay = LOOK_AGAIN_SECONDS
                continue
            wall = time.perf_counter() - began
            if wall <= EVIDENCE_SECONDS:
                delay = EVIDENCE_SECONDS - wall + 0.001
                continue
            # Less often as the chunk goes on: each look takes the GIL from an iteration
            # that may be computing (a 10 s chunk is looked at about 30 times, not 2,000).
            delay = max(LOOK_AGAIN_SECONDS, wall / 4)
            cpu = time.process_time() - self._began_cpu
            queued = queued_seconds_of(self._thread_id) - self._began_queued
            if not mostly_waiting(wall, cpu, queued):
                continue
            with self._lock:
                if self._finished:
                    return
                self.said = True
                state = changed(self._state, snapshot()) is not None
                try:
                    with self._sending:
                        self._connection.send_bytes(self._dumps(Early(wall, cpu, queued, state)))
                except (BrokenPipeError, ConnectionResetError):
                    self._gone()  # the program is gone (killed): nobody to tell, see below
            try:
                # The parent answers every Early; poll so that an orphaned worker does not wait forever.
                while not self._connection.poll(1.0):
                    if os.getppid() != self._parent:
                        self._gone()
                self._reply(self._connection.recv_bytes())
                self._answered.set()
            except (BrokenPipeError, ConnectionResetError, EOFError):
                # The program is gone (killed): nobody to tell, as child.serve leaves quietly.
                self._gone()
            except BaseException:  # noqa: BLE001 - the parent must not wait for a chunk nobody runs
                import traceback  # on this error only

                traceback.print_exc()
                # The parent sees a crashed worker, and names the chunks it held.
                os._exit(70)
            return

    def finished(self, outcome: Outcome) -> None:
        """Called by the main thread when the chunk is done: from now on the watcher says nothing.

        If it spoke, lanes ran beside the chunk: its CPU time is its own thread's.
        """
        with self._lock:
            self._finished = True
        self._done.set()
        if self.said:
            outcome.cpu = time.thread_time() - self._began_thread_cpu

    def join(self) -> None:
        """Wait until the watcher has read the parent's answer, if it spoke."""
        if self.said:
            self._answered.wait()
