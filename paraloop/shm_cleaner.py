"""paraloop's shared-memory cleaner: the process that removes a program's segments once the
program is gone, however it ended (see paraloop/shm.py, which starts it).

Run as ``python -I -S shm_cleaner.py PID`` (the program's pid) in a session of its own, its
standard input a socket the program writes to: ``+NAME`` for each segment made, ``-NAME`` for
each one removed.  When the socket closes it waits for the program (its parent) to be gone,
which it mostly is by then (a program that closes its descriptors, ``os.closerange``, closes
it too, and its segments are still in use), then removes the names still registered, and
exits.  It imports nothing of paraloop's: it may run where paraloop cannot be imported (``-I
-S``), and it must start fast.
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
    for name in names:
        remove(name)


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
