"""Make forkserver the default start method of this environment's interpreters, as Python
3.14 makes it on Linux (tox's py313 environment runs the suite so).

A .pth file in site-packages runs at every interpreter start, so the tests' programs and
paraloop's worker processes get the same default as the test process.  Run it with the
environment's python; it checks the result in a new interpreter.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import sysconfig

LINE = "import multiprocess; multiprocess.set_start_method('forkserver', force=True)\n"


def main() -> int:
    path = pathlib.Path(sysconfig.get_path("purelib"), "zz_paraloop_forkserver_default.pth")
    path.write_text(LINE)
    seen = subprocess.run(
        [sys.executable, "-c", "import multiprocess; print(multiprocess.get_start_method())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"default start method of {sys.executable}: {seen}")
    return 0 if seen == "forkserver" else 1


if __name__ == "__main__":
    sys.exit(main())
