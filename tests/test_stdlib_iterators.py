"""Differential tests over iterators nobody here wrote: the standard library's own, written in Python.

Research scripts loop over ``csv.DictReader`` rows, ``fileinput`` lines, ``shlex`` tokens, a
``UserList`` or a ``ConfigParser``'s sections.  Each of these is a class whose ``__iter__`` and
``__next__`` are Python code (``Sequence.__iter__`` a generator over ``__getitem__``), which
paraloop reads as the plain loop does: ``iter()`` once, then ``__next__`` (session 36 found an
iterator whose ``__iter__`` starts it over read from the start at each piece).  Each source runs as
a for loop, a list comprehension and a generator expression, unrewritten (the plain loop) and
through paraloop, on every backend: the same values, and the same state of the iterator after.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from plain_loop import run_plain

Loader = Callable[..., ModuleType]

# name: (the code that makes ``source()``, a fresh iterable each call, from files under ``folder``)
SOURCES: dict[str, str] = {
    "csv.DictReader": """
        import csv

        def source():
            handle = open(os.path.join(folder, "table.csv"), newline="")
            handles.append(handle)
            return csv.DictReader(handle)
    """,
    "fileinput.FileInput": """
        import fileinput

        def source():
            return fileinput.FileInput([os.path.join(folder, f"part{i}.txt") for i in range(3)])
    """,
    "shlex.shlex": """
        import shlex

        def source():
            return shlex.shlex("cp 'a file' b\\\\ c --flag=\\"x y\\" " * 20, posix=True)
    """,
    "collections.UserList": """
        from collections import UserList

        def source():
            return UserList([{"n": i} for i in range(50)])
    """,
    "configparser sections": """
        import configparser

        def source():
            parser = configparser.ConfigParser()
            parser.read_string("".join(f"[s{i}]\\nkey = {i}\\n" for i in range(30)))
            return parser
    """,
}

LOOPS = """
import os

folder = FOLDER
handles = []

SOURCE

def shown(item):
    return repr(sorted(item.items())) if isinstance(item, dict) else repr(item)

looped = []
for item in ParaLoop(source(), num_processes=2):
    looped.append(shown(item))
listed = [shown(item) for item in ParaLoop(source(), num_processes=2)]
generated = list(shown(item) for item in ParaLoop(source(), num_processes=2))
for handle in handles:
    handle.close()
result = [looped, listed, generated]
"""


def _files(folder: Path) -> None:
    rows = "".join(f"{i},name {i},{i * 0.5}\n" for i in range(60))
    (folder / "table.csv").write_text("id,name,weight\n" + rows)
    for part in range(3):
        (folder / f"part{part}.txt").write_text("".join(f"line {part}.{n}\n" for n in range(25)))


@pytest.mark.usefixtures("every_backend")
@pytest.mark.parametrize("name", list(SOURCES))
def test_a_standard_library_iterator_gives_the_plain_loops_items(
    name: str, load_module: Loader, tmp_path: Path
) -> None:
    _files(tmp_path)
    source = "from paraloop import ParaLoop\n" + LOOPS.replace("FOLDER", repr(str(tmp_path))).replace(
        "SOURCE", textwrap.dedent(SOURCES[name])
    )
    expected = run_plain(source)["result"]
    assert len(expected[0]) >= 30 and expected[0] == expected[1] == expected[2]
    assert load_module(source).result == expected
