"""paraloop's shared-memory cleaner: the process that removes a program's segments once the
program is gone, however it ended (see paraloop/shm.py, which starts it).

Run as ``python -I -S shm_cleaner.py PID`` (the program's pid) in a session of its own, its
standard input a socket the program writes to: ``+NAME`` for each segment made, ``-NAME`` for
each one removed (``+@PATH`` and ``-@PATH``: the folder of paraloop's own Dask cluster).  When
the socket closes it waits for the program (its parent) to be gone, which it mostly is by then
(a program that closes its descriptors, ``os.closerange``, closes it too, and its segments are
still in use), then removes the names still registered; a folder once the cluster's programs
(which carry ``PARALOOP_OWNER=PID`` and leave on their lifeline) have ended too; and exits.
It imports nothing of paraloop's: it may run where paraloop cannot be imported (``-I -S``),
and it must start fast.
"""

import os
import signal
import sys


def main() -> None:
    # Signals meant for the program (a Ctrl-C, a SIGTERM to everything a user runs) would end
    # this before its work; it ends on its own as soon as the program is gone.
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    os.chdir("/")
    # Named by the program, not read as this process's parent: a program killed as this one
    # starts is gone by then (its parent would be another's).
    program = int(sys.argv[1])
    names = set()
    pending = b""
    while True:
        try:
            data = os.read(0, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        for line in lines:
            name = line[1:].decode()
            if line[:1] == b"+":
                names.add(name)
            elif line[:1] == b"-":
                names.discard(name)
    wait_for_the_end_of(program)
    folders = [name[1:] for name in names if name[:1] == "@"]
    for name in names:
        if name[:1] != "@":
            remove(name)
    if folders and cluster_gone(program):
        for folder in folders:
            remove_folder(folder)


def wait_for_the_end_of(program: int) -> None:
    """Return once ``program``, this process's parent, has ended (this process is then another's
    child)."""
    if os.getppid() != program:
        return
    try:
        handle = os.pidfd_open(program)  # Linux 5.3: readable once the process has ended
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        import select

        select.select([handle], [], [])
        os.close(handle)
        return
    import time

    while os.getppid() == program:
        time.sleep(0.1)


# How long the cluster's programs may take to leave (each leaves within seconds of its program's
# end, see paraloop/lifeline.py): past it, their folder stays, as something may still use it.
CLUSTER_SECONDS = 60.0


def cluster_gone(program: int) -> bool:
    """Whether every process started with ``PARALOOP_OWNER=program`` in its environment (the Dask
    cluster's programs) has ended, waited for up to CLUSTER_SECONDS.  Without /proc: False."""
    import time

    if not os.path.isdir("/proc/self"):
        return False
    marker = b"\0PARALOOP_OWNER=" + str(program).encode() + b"\0"
    deadline = time.monotonic() + CLUSTER_SECONDS
    while time.monotonic() < deadline:
        if not any(carries(entry, marker) for entry in os.listdir("/proc") if entry.isdigit()):
            return True
        time.sleep(0.2)
    return False


def carries(pid: str, marker: bytes) -> bool:
    if int(pid) == os.getpid():
        return False
    try:
        with open("/proc/" + pid + "/environ", "rb") as handle:
            return marker in b"\0" + handle.read()
    except OSError:
        return False  # ended, or another user's (which the cluster's programs are not)


def remove_folder(path: str) -> None:
    """The cluster's folder, with what is in it: only a folder of this user's that is no link,
    at an absolute path, named as paraloop names it (``tempfile.mkdtemp(prefix="paraloop-dask-")``)."""
    import stat

    if not os.path.isabs(path) or not os.path.basename(path).startswith("paraloop-dask-"):
        return
    try:
        status = os.lstat(path)
    except OSError:
        return  # removed already (the program did, as the cluster closed)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        return
    import shutil

    # Without following links, where the platform allows it (shutil.rmtree.avoids_symlink_attacks).
    shutil.rmtree(path, ignore_errors=True)


def remove(name: str) -> None:
    if "/" in name or not name:
        return  # not a name the program could have made: nothing outside the segments' folder
    try:
        if os.path.isdir("/dev/shm"):
            os.unlink("/dev/shm/" + name)
        else:
            import _posixshmem  # type: ignore[import-not-found]

            _posixshmem.shm_unlink("/" + name)
    except OSError:
        pass  # removed already (the program did, just before it ended)


if __name__ == "__main__":
    main()
    sys.exit(0)
