"""Programs of several cases, for the adversarial tests of session 43 (what a body's frame shows).

A program is a marked module whose ``CASES`` each run on their own; it prints, as JSON, each
case's value or its exception's type, so that one case's error does not hide the others'.  The
environments run its loops away from the caller: worker processes for every iteration (fork,
spawn), threads, or sequentially.
"""

from __future__ import annotations

import textwrap

__all__ = ["BACKENDS", "FORK", "SEQUENTIAL", "SPAWN", "THREADS", "program"]

FORK = {"PARALOOP_BACKEND": "processes", "PARALOOP_START_METHOD": "fork", "PARALOOP_CALLER_RUNS": "0"}
SPAWN = {**FORK, "PARALOOP_START_METHOD": "spawn"}
THREADS = {"PARALOOP_BACKEND": "threads", "PARALOOP_WORKERS": "4"}
SEQUENTIAL = {"PARALOOP_BACKEND": "sequential"}
BACKENDS = {"fork": FORK, "threads": THREADS, "sequential": SEQUENTIAL}

_RUNNER = """
    out = []
    for case in CASES:
        try:
            out.append(case())
        except Exception as error:
            out.append(type(error).__name__)
    print(json.dumps(out))
    """


def program(body: str, cases: str = "") -> str:
    """``body`` as a marked module importing json and ParaLoop; with ``cases`` (the source of a
    list's items), one that runs each and prints what each gave."""
    text = "# paraloop: enable\nimport json\nfrom paraloop import ParaLoop\n" + textwrap.dedent(body)
    if cases:
        text += f"CASES = [{cases}]\n" + textwrap.dedent(_RUNNER)
    return text
