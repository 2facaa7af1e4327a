"""SharedArray: workers write in place; the memory is freed at exit, after crashes too.

Also the promise (docs/semantics.md) that no shared-memory segment is left
behind after a crash or a timeout.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import START_METHODS, run_script, use_backend

from paraloop import SharedArray

Loader = Callable[..., ModuleType]

SHM = Path("/dev/shm")


@pytest.fixture(params=[*START_METHODS, "threads", "sequential"])
def local_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every backend that can reach this machine's memory (Dask refuses SharedArray)."""
    return use_backend(request.param, request, monkeypatch)


def test_workers_write_in_place(load_module: Loader, local_backend: str) -> None:
    module = load_module("""
        import os
        from paraloop import ParaLoop, SharedArray
        out = SharedArray(300, dtype="int64", fill=-1)
        pids = set()
        for i in ParaLoop(range(300), num_processes=2, chunksize=7):
            out[i] = i * i
            pids.add(os.getpid())
    """)
    assert np.array_equal(module.out.array, np.arange(300) ** 2)
    if local_backend in START_METHODS:
        assert os.getpid() not in module.pids  # written by other processes


def test_rows_and_in_place_updates(load_module: Loader, local_backend: str) -> None:
    module = load_module("""
        import numpy as np
        from paraloop import ParaLoop, SharedArray
        out = SharedArray.from_array(np.ones((50, 3)))
        def fill():
            for i in ParaLoop(range(50), num_processes=2):
                out[i] += [i, 2 * i, 3 * i]
                out[i, 0] *= 2
    """)
    module.fill()
    expected = np.ones((50, 3)) + np.arange(50)[:, None] * np.array([1, 2, 3])
    expected[:, 0] *= 2
    assert np.array_equal(np.asarray(module.out), expected)
    assert module.out.dtype == np.float64 and len(module.out) == 50


def test_unpickled_in_its_own_process_it_is_the_same_array() -> None:
    out = SharedArray((2, 2))
    assert pickle.loads(pickle.dumps(out)) is out
    out.free()


def test_free_and_garbage_collection_release_the_memory() -> None:
    first = SharedArray(10)
    second = SharedArray(10)
    names = first.name, second.name
    assert all((SHM / name).exists() for name in names)
    first.free()
    assert not (SHM / names[0]).exists()
    del second
    gc.collect()
    assert not (SHM / names[1]).exists()


def _script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    return _script_with(tmp_path, body)


def _script_with(tmp_path: Path, body: str, **environment: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "shared_script.py"
    script.write_text("# paraloop: enable\n" + body)
    return run_script(script, env=environment)


def _shared_segments() -> set[str]:
    return {entry.name for entry in SHM.iterdir()}


@pytest.mark.alone
def test_freed_when_the_program_ends_after_a_worker_crashed(tmp_path: Path) -> None:
    before = _shared_segments()
    result = _script(
        tmp_path,
        """
import os
from paraloop import ParaLoop, SharedArray, WorkerCrashedError
out = SharedArray(100)
for i in ParaLoop(range(100), num_processes=2, chunksize=5, start_method="spawn"):
    out[i] = i
try:
    for i in ParaLoop(range(100), num_processes=2, chunksize=5, start_method="spawn"):
        if i == 42:
            os._exit(9)
except WorkerCrashedError:
    print("crashed")
print(out.name, os.path.exists("/dev/shm/" + out.name), out.array.sum())
""",
    )
    assert result.returncode == 0, result.stderr
    crashed, line = result.stdout.splitlines()
    name, existed, value = line.split()
    assert crashed == "crashed" and existed == "True" and value == "4950.0"
    assert not (SHM / name).exists()
    assert _shared_segments() <= before
    assert "leaked" not in result.stderr


def _gone_within(path: Path, seconds: float) -> bool:
    """Whether ``path`` is gone, or goes within ``seconds``."""
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def test_freed_when_the_program_itself_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: paraloop's cleaner frees the segment."""
    result = _script(
        tmp_path,
        """
import os, signal
from paraloop import ParaLoop, SharedArray
out = SharedArray(1000)
for i in ParaLoop(range(1000), num_processes=2):
    out[i] = i
print(out.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""",
    )
    assert result.returncode == -9, result.stderr
    name = result.stdout.strip()
    assert name.startswith("paraloop_")
    # The cleaner notices its creator is gone and unlinks what it left.
    assert _gone_within(SHM / name, 20)


@pytest.mark.alone
def test_no_segment_is_left_after_crash_timeout_and_interrupt(tmp_path: Path) -> None:
    """After a crash, a timeout or Ctrl-C, no shared memory remains."""
    before = _shared_segments()
    result = _script(
        tmp_path,
        """
import os, signal, time
from paraloop import ParaLoop, WorkerCrashedError, IterationTimeoutError
main = os.getpid()
for method in ("fork", "forkserver", "spawn"):
    try:
        for i in ParaLoop(range(20), num_processes=2, chunksize=1, start_method=method):
            if i == 5:
                os._exit(1)
    except WorkerCrashedError:
        print("crash", method)
    try:
        for i in ParaLoop(range(4), num_processes=2, timeout=0.5, start_method=method):
            time.sleep(10 if i == 2 else 0)
    except IterationTimeoutError:
        print("timeout", method)
    try:
        for i in ParaLoop(range(20), num_processes=2, chunksize=1, start_method=method):
            if i == 3:
                os.kill(main, signal.SIGINT)
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("interrupt", method)
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{kind} {method}" for method in START_METHODS for kind in ("crash", "timeout", "interrupt")
    ]
    assert _shared_segments() <= before


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_freed_when_the_program_is_killed_while_workers_hold_it(tmp_path: Path, method: str) -> None:
    """SIGKILL while the workers run a long iteration writing into the segment: the workers
    go with the program, and the segment goes with them (paraloop's cleaner)."""
    result = _script(
        tmp_path,
        f"""
import os, signal, threading, time
from paraloop import ParaLoop, SharedArray
out = SharedArray(1000)
print(out.name, flush=True)
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
for i in ParaLoop(range(4), num_processes=2, chunksize=1, start_method={method!r}):
    out[i] = i
    time.sleep(600)
""",
    )
    assert result.returncode == -9, result.stderr
    name = result.stdout.strip()
    assert name.startswith("paraloop_")
    assert _gone_within(SHM / name, 20)


def _cleaners() -> list[int]:
    """The pids of running shared-memory cleaners (paraloop/shm_cleaner.py)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"shm_cleaner.py" in command:
            found.append(int(pid))
    return found


def _ended_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # ended, not yet reaped by whoever adopted it
        except OSError:
            break
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def test_the_cleaner_frees_what_a_killed_program_left_though_a_forked_child_lives_on(
    tmp_path: Path,
) -> None:
    """A child the program forked (a process of its own, which outlives it) does not hold the
    cleaner back: the segment goes as the program goes, not when the child ends."""
    result = _script(
        tmp_path,
        """
import os, signal, sys, time
from paraloop import SharedArray
out = SharedArray(1000)
child = os.fork()
if child == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # the test reads the program's output to its end: not this child's
    os.dup2(quiet, 2)
    time.sleep(60)
    os._exit(0)
print(out.name, child, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""",
    )
    name, child = result.stdout.split()
    try:
        assert result.returncode == -9, result.stderr
        assert _gone_within(SHM / name, 20)
        assert Path(f"/proc/{child}").exists()  # the child still runs
    finally:
        os.kill(int(child), 9)


# In a test program: its cleaners (children running shm_cleaner.py), once there are some.  A
# process's command line shows a moment after posix_spawn returns (an empty one before).
_CLEANERS = """
import os, time
from pathlib import Path

def cleaners():
    deadline = time.monotonic() + 10
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if int(parent) == os.getpid() and b"shm_cleaner.py" in command:
                found.append(int(pid))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)
"""


def test_a_killed_cleaner_is_replaced_and_told_every_segment_still_there(tmp_path: Path) -> None:
    """Another process killed the cleaner while the program ran: the program's next segment
    starts a new one, which frees the earlier segments too when the program is killed."""
    result = _script(
        tmp_path,
        """
import os, signal, time
from paraloop import SharedArray
"""
        + _CLEANERS
        + """
first = SharedArray(10)
[cleaner] = cleaners()
os.kill(cleaner, signal.SIGKILL)
os.waitpid(cleaner, 0)
second = SharedArray(10)
print(first.name, second.name, len(cleaners()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""",
    )
    assert result.returncode == -9, result.stderr
    first, second, cleaners = result.stdout.split()
    assert cleaners == "1"
    assert _gone_within(SHM / first, 20) and _gone_within(SHM / second, 20)


def test_the_cleaner_ends_with_the_program_and_ignores_the_program_s_signals(tmp_path: Path) -> None:
    """It is in a session of its own (a signal to the program's group misses it, as it must),
    and it ends as soon as the program ends, having nothing left to free."""
    result = _script(
        tmp_path,
        """
import os
from pathlib import Path
from paraloop import SharedArray
"""
        + _CLEANERS
        + """
out = SharedArray(10)
for pid in cleaners():
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    print(pid, fields[2], fields[3], os.getpgid(0), os.getsid(0), out.name, flush=True)
""",
    )
    assert result.returncode == 0, result.stderr
    pid, group, session, program_group, program_session, name = result.stdout.split()
    assert (group, session) == (pid, pid)
    assert group != program_group and session != program_session
    assert _ended_within(int(pid), 20)
    assert not (SHM / name).exists()


def test_a_program_in_development_mode_is_warned_of_nothing_left_open(tmp_path: Path) -> None:
    """``python -X dev`` (PYTHONDEVMODE) shows a ResourceWarning for each file or socket a program
    leaves open to its exit: paraloop's own connection to the cleaner, open for the program's
    life by design, is none of the program's to be warned of."""
    result = _script_with(
        tmp_path,
        """
import numpy as np
from paraloop import ParaLoop, SharedArray
out = SharedArray(8)
big = np.arange(2_000_000, dtype=float)
for i in ParaLoop(range(8)):
    out[i] = big[i] * 2
print(float(out.array.sum()))
""",
        PYTHONDEVMODE="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["56.0"]
    assert "Warning" not in result.stderr, result.stderr


def _cleaner_for(program: int, lines: list[str]) -> subprocess.Popen[bytes]:
    """The cleaner started as paraloop starts it, for ``program`` (not its parent: it does not
    wait for it), told ``lines``; its socket closed, as when the program is gone."""
    import sys

    import paraloop.shm_cleaner

    cleaner = subprocess.Popen(
        [sys.executable, "-I", "-S", paraloop.shm_cleaner.__file__, str(program)],
        stdin=subprocess.PIPE,
    )
    assert cleaner.stdin is not None
    cleaner.stdin.write("".join(line + "\n" for line in lines).encode())
    cleaner.stdin.close()
    return cleaner


def test_the_cleaner_removes_only_the_cluster_folders_it_was_told_of(tmp_path: Path) -> None:
    """A killed program's Dask cluster folder (``+@PATH``) goes, what is in it too; nothing that
    is not a folder of paraloop's own naming, at an absolute path: no link (nor what it leads
    to), no other name, no relative path."""
    (tmp_path / "paraloop-dask-real" / "scratch").mkdir(parents=True)
    (tmp_path / "paraloop-dask-real" / "scratch" / "worker.dirlock").write_text("")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "data").write_text("kept")
    (tmp_path / "paraloop-dask-link").symlink_to(tmp_path / "victim")
    (tmp_path / "other-name").mkdir()
    cleaner = _cleaner_for(
        2**22 + 12345,  # no process: the program is gone, and no process carries its pid
        [
            f"+@{tmp_path / 'paraloop-dask-real'}",
            f"+@{tmp_path / 'paraloop-dask-link'}",
            f"+@{tmp_path / 'other-name'}",
            "+@paraloop-dask-relative",
        ],
    )
    assert cleaner.wait(timeout=30) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other-name", "paraloop-dask-link", "victim"]
    assert (tmp_path / "victim" / "data").read_text() == "kept"


def test_the_cleaner_removes_a_cluster_folder_once_the_cluster_s_programs_are_gone(tmp_path: Path) -> None:
    """The cluster's programs leave a moment after their program (on their lifeline), still
    writing in the folder: it goes once none of them (``PARALOOP_OWNER`` = the program's pid in
    their environment) runs."""
    import signal
    import sys

    program = 2**22 + 54321
    folder = tmp_path / "paraloop-dask-slow"
    folder.mkdir()
    leaving = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PARALOOP_OWNER": str(program)},
    )
    try:
        assert leaving.stdout is not None and leaving.stdout.readline() == b"up\n"
        cleaner = _cleaner_for(program, [f"+@{folder}"])
        with pytest.raises(subprocess.TimeoutExpired):
            cleaner.wait(timeout=2)  # waiting for the cluster's program
        assert folder.is_dir()
    finally:
        leaving.send_signal(signal.SIGKILL)
        leaving.wait()
    assert cleaner.wait(timeout=30) == 0
    assert not folder.exists()
