"""Session 46: loops from real public scripts (teaching code, homework, research scripts), run
through paraloop and compared with the plain loop.

Nobody on the team wrote these loops.  Each script below is a public script translated with its
shape kept: the same statements, accumulators, control flow and helper functions; its file input
replaced by deterministic generated files in a temporary directory (the script runs with that
directory as its current directory, as the original runs in its own folder); ``input()``,
``sys.argv``, ``if __name__ == "__main__":`` and Windows paths replaced by fixed names and plain
module code.  The loop's iterable is wrapped in ``ParaLoop(..., **OPTIONS)``.  The plain run is the
same source with ``ParaLoop`` bound to the identity function, executed unrewritten; the paraloop
run imports the source as a marked module.  Each test then compares every name the script leaves
(``==`` plus equal ``repr``: float bits, dict key order and set order count; numpy arrays by
dtype, shape and bytes), the files it wrote after the loop, and what it printed (in order; on
threads, whose iterations print as they run, as the same lines in any order), on every backend of
``every_backend`` with the worker counts and chunk sizes of ``settings_for``.

A loop paraloop refuses must be refused with a ``paraloop.ParaLoopError`` naming the script's file
and line (in its message, or for an item that cannot travel, in the traceback's last frame), and a
second case follows the advice of the message and must then give the plain result of the loop so
written.

On Dask the workers are processes of a cluster that keep their own current directory
(docs/semantics.md): for these scripts, which open files by relative paths, each test moves the
cluster's workers into the script's directory for its duration, as a cluster started in the
project's folder would be (and back afterwards).

The sources (repository, file; each test's docstring says more): koolskateguy89/21coa122cw
``__line_counter.py``; zndxall/python_study ``reptile/total_line.py``; jatuljain/LearningPython
``FileAndDirectory/parsedirectory.py`` (two loops); yangsan/Papers
``predator_prey/script/average.py``; draialexis/py4e ``dict_words.py``; bhaumikbcg/count1
``count1.py``; szabgab/slides ``python/examples/csv/read_csv.py``;
CarlosFabrishioVenegas/curso-python-pip ``app/prueba.py``; shupra1313/PythonChallenge
``PyPoll/main1.py``; coconutpep/python-challenge ``PyPoll/main.py``; Harsh27090/python
``PracticeSet/_08_FileIO/_07_.py``; tanisha200411/python ``learning-python/chapter8/05_prob_5.py``;
sphinxteam/mlcourse_2019 ``lec1/knn1.py``; jaroslavhradsky/python-sandbox
``algorithms/nearest_neighbor.py``; elliele/data-structures_and_algorithms ``ch_03/find_max.py``;
asyrofist/HMMs-and-PCFG ``HMMs/bigram_hmms.py``; mmustafaicer/StartingOutWithPython
``StartingOutWithPython/chapter_09/q04.py``; asantentata/Microscopy_Project ``ao.py``;
detectivemenon/gt-omscs-prep ``logic_numeric/day7_dicts.py`` (two loops); FerEsp/chem160module2
``Module2/pi.py``; Badim41/ds_ai ``test.py`` (commit 376bbb5); cbohara/automate_the_boring_stuff
``write_csv.py``; SHUHAIB-AREEKKAN/anand_python_solutions ``iter_and_gen_ch5/problem6.py``;
elinbjorck/1DV501 ``eb222wb_assign3/count_lines.py``.

Findings, each kept open as a strict xfail with a reproducer in its test's docstring:

1. ``if val > biggest: biggest = val`` (a running maximum) is refused as "sequential by nature";
   it is a max, which paraloop runs as ``biggest = max(biggest, val)``; the message does not say so.
2. ``os.walk`` pruned in the body (``subfolders.remove('venv')``) is not pruned: the walk is read
   ahead, silently (every backend but sequential).
3. A body that combines into a global (``cnt += 1``) and calls a function that adds to the same
   global loses the function's additions on threads and sequential, silently.
4. With a generator as the iterable, the same loop is refused on threads and sequential with a
   message blaming the iterable for changing the global.
"""

from __future__ import annotations

import os
import random
import re
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import settings_for
from differences import difference

import paraloop

Loader = Callable[..., ModuleType]

#: (num_processes, chunksize): fork, the caller, threads and sequential run each; spawn,
#: forkserver and Dask the last.
SETTINGS = [(2, None), (3, 1), (2, 7)]

PARALOOP_IMPORT = "from paraloop import ParaLoop\n"
PLAIN_PARALOOP = "def ParaLoop(iterable, **options):\n    return iterable\n"

#: A hang is a failure too.
pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------------
# Running a script plainly and through paraloop, and comparing what it leaves
# ---------------------------------------------------------------------------


def plain_run(source: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    """The script's namespace and output with ``ParaLoop`` the identity, unrewritten."""
    assert source.count(PARALOOP_IMPORT) == 1
    text = source.replace(PARALOOP_IMPORT, PLAIN_PARALOOP)
    namespace: dict[str, Any] = {"__name__": "plain_script"}
    capsys.readouterr()
    exec(compile(text, "<plain>", "exec"), namespace)
    return namespace, capsys.readouterr().out


def header(workers: int, chunksize: int | None) -> str:
    return f"OPTIONS = {{'num_processes': {workers}, 'chunksize': {chunksize}}}\n"


def same_output(plain: str, got: str, backend: str) -> str | None:
    if backend == "threads":  # iterations print as they run (docs/semantics.md)
        plain, got = "\n".join(sorted(plain.splitlines())), "\n".join(sorted(got.splitlines()))
    if plain != got:
        return f"printed {got[:600]!r} instead of {plain[:600]!r}"
    return None


def check_same_as_plain(
    source: str,
    names: list[str],
    backend: str,
    load_module: Loader,
    capsys: pytest.CaptureFixture[str],
    *,
    files: tuple[str, ...] = (),
    observe: dict[str, Callable[[Any], Any]] | None = None,
    settings: list[tuple[int, int | None]] | None = None,
) -> None:
    """Run ``source`` plainly and through paraloop with each setting; every name in ``names`` (as
    ``observe`` maps it, if it does), each file in ``files`` and the printed output must be the
    same."""
    observe = observe or {}
    source = textwrap.dedent(source)
    problems: dict[str, list[str]] = {}
    for workers, chunksize in settings or settings_for(backend, SETTINGS):
        text = header(workers, chunksize) + source
        plain, plain_out = plain_run(text, capsys)
        plain_files = {name: Path(name).read_bytes() for name in files}
        for name in files:
            Path(name).unlink()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", paraloop.ParaLoopWarning)
            module = load_module(text)
        got_out = capsys.readouterr().out
        found = []
        for warning in caught:
            if issubclass(warning.category, paraloop.ParaLoopWarning):
                found.append(f"ParaLoopWarning: {str(warning.message).splitlines()[0]}")
        for name in names:
            convert = observe.get(name, lambda value: value)
            if name not in plain:
                found.append(f"{name}: not bound by the plain run (a translation slip)")
            elif not hasattr(module, name):
                found.append(f"{name}: unbound after the loop, the plain run has {plain[name]!r:.200}")
            else:
                found.append(difference(convert(plain[name]), convert(getattr(module, name)), name) or "")
        for name in files:
            got_file = Path(name).read_bytes() if Path(name).exists() else None
            if got_file != plain_files[name]:
                found.append(f"file {name}: {got_file!r:.300} instead of {plain_files[name]!r:.300}")
        found.append(same_output(plain_out, got_out, backend) or "")
        for problem in filter(None, found):
            problems.setdefault(problem, []).append(f"num_processes={workers}, chunksize={chunksize}")
    if problems:
        report = "\n".join(f"  {'; '.join(where)}: {problem}" for problem, where in problems.items())
        pytest.fail(f"on {backend}:\n{report}", pytrace=False)


def expect_finding(backend: str, backends: list[str], reason: str, request: pytest.FixtureRequest) -> None:
    """Mark the running test a strict xfail on ``backends``: a finding, kept open."""
    if backend in backends:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def check_refused(
    source: str,
    backend: str,
    load_module: Loader,
    tmp_path: Path,
    *,
    line_of: str,
    names: list[str],
    in_message: bool = True,
) -> paraloop.ParaLoopError:
    """paraloop refuses the loop on every setting with a ParaLoopError whose message names the
    module's file and line (the first line holding ``line_of``), or with ``in_message=False`` whose
    traceback ends there, and whose message holds each of ``names`` (the name refused, the advice);
    the (last) error is returned."""
    source = textwrap.dedent(source)
    error: paraloop.ParaLoopError | None = None
    for workers, chunksize in settings_for(backend, SETTINGS):
        text = header(workers, chunksize) + source
        line = 2 + next(number for number, text_line in enumerate(text.splitlines()) if line_of in text_line)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", paraloop.ParaLoopWarning)
            with pytest.raises(paraloop.ParaLoopError) as raised:
                load_module(text)
        error = raised.value
        assert not isinstance(error, (paraloop.WorkerCrashedError, paraloop.IterationTimeoutError)), error
        message = str(error)
        where = rf"{re.escape(str(tmp_path))}/paraloop_testmod_\d+\.py, line {line}\b"
        last = traceback.extract_tb(error.__traceback__)[-1]
        at_line = Path(last.filename).parent == tmp_path and last.lineno == line
        assert re.search(where, message) or (not in_message and at_line), (line, message, last)
        for name in names:
            assert name in message, (name, message)
    assert error is not None
    return error


# ---------------------------------------------------------------------------
# Fixtures: the scripts' folder, and Dask workers moved into it
# ---------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripts' folder (their current directory), apart from the modules load_module writes."""
    path = tmp_path / "script_folder"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture(scope="module")
def dask_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    import distributed

    cluster = request.getfixturevalue("dask_cluster")
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    yield client
    client.close()


@pytest.fixture
def backend(every_backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """``every_backend``; on Dask, the cluster's workers work in the scripts' folder meanwhile."""
    if every_backend != "dask":
        yield every_backend
        return
    client = request.getfixturevalue("dask_client")
    before = client.run(os.getcwd)
    client.run(os.chdir, str(folder))
    try:
        yield every_backend
    finally:
        for worker, path in before.items():
            client.run(os.chdir, path, workers=[worker])


# ---------------------------------------------------------------------------
# Generated input
# ---------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(seed: int, size: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_LETTERS) for _ in range(rng.randint(2, 7))) for _ in range(size)]


def text_lines(seed: int, count: int, words: list[str], *, punctuation: bool = False) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        chosen = [rng.choice(words) for _ in range(rng.randint(0, 9))]
        if punctuation:
            chosen = [w.capitalize() + rng.choice(["", "", ",", ".", "!", "?"]) for w in chosen]
        lines.append(" ".join(chosen))
    return lines


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


# ---------------------------------------------------------------------------
# 1. koolskateguy89/21coa122cw, __line_counter.py
# ---------------------------------------------------------------------------

LINE_COUNTER = """
from os import listdir
from os.path import isfile, join
from paraloop import ParaLoop


def file_len(fname):
    with open(fname) as f:
        for i, l in enumerate(f):
            pass
    return i + 1


path = '.'
files = [f for f in listdir(path) if isfile(join(path, f))]
files = [f for f in files if not f.startswith('__') and f.endswith('.py')]

sum_ = 0
lens = {}
for f in ParaLoop(files, **OPTIONS):
    try:
        lines = file_len(f)
        sum_ += lines
        lens[f] = lines
    except Exception:
        print('\\t' + f)
        pass

print(sum_)
for f, l in lens.items():
    print(f'{f}: {l}')
#print(lens)
print(len(lens), len(files))
"""


def make_py_files(folder: Path) -> None:
    rng = random.Random(1)
    words = vocabulary(11, 40)
    for number in range(23):
        lines = [f"{rng.choice(words)} = {rng.randint(0, 99)}" for _ in range(rng.randint(1, 60))]
        write_lines(folder / f"module_{number:02d}.py", lines)
    (folder / "empty_a.py").write_text("")  # file_len: i unbound, UnboundLocalError
    (folder / "empty_b.py").write_text("")
    write_lines(folder / "__init__.py", ["x = 1"])
    write_lines(folder / "notes.txt", ["not python"])
    (folder / "package.py").mkdir()  # not a file


def test_line_counter(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """koolskateguy89/21coa122cw, ``__line_counter.py`` (module level): counts the lines of each
    ``.py`` file in the current folder with ``file_len`` (whose ``i`` is unbound for an empty file:
    ``UnboundLocalError``, caught by ``except Exception`` and printed); ``sum_ += lines`` and
    ``lens[f] = lines`` inside ``try``; ``lines`` holds the last successful file's count after the
    loop."""
    make_py_files(folder)
    check_same_as_plain(
        LINE_COUNTER, ["files", "sum_", "lens", "lines", "f", "l"], backend, load_module, capsys
    )


# ---------------------------------------------------------------------------
# 2. zndxall/python_study, reptile/total_line.py
# ---------------------------------------------------------------------------

TOTAL_LINE = """
#!/usr/bin/env python
#coding=utf-8
import os
from paraloop import ParaLoop
def get_line(file_name):
    count=0
    with open(file_name,'r',encoding='UTF-8') as rfile:
        for file_line in rfile.readlines():
            if file_line != '' and file_line != '\\n' :
                count +=1
    print("%s count lines=%d" %(file_name,count))
    return count

# if __name__ == "__main__":
total_line=0
for file_n in ParaLoop(os.listdir(os.path.abspath(".")), **OPTIONS):
    file_path=os.path.join(os.path.abspath("."),file_n)
    if os.path.isfile(file_path):
        total_line=total_line+get_line(file_n)
print("total_line=",total_line)
"""


def make_text_files(folder: Path) -> None:
    words = vocabulary(21, 50)
    rng = random.Random(2)
    for number in range(17):
        lines = text_lines(100 + number, rng.randint(0, 40), words)
        write_lines(folder / f"chapter_{number}.txt", lines)
    (folder / "subfolder").mkdir()
    write_lines(folder / "subfolder" / "inner.txt", ["not counted"])
    (folder / "ünïcode.txt").write_text("é\n\n\nß\n", encoding="utf-8")


def test_total_line(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """zndxall/python_study, ``reptile/total_line.py`` (its ``__main__`` block at module level): for
    each entry of ``os.listdir(os.path.abspath("."))`` that is a file, ``get_line`` counts its
    non-blank lines and prints them; ``total_line=total_line+get_line(file_n)``."""
    make_text_files(folder)
    check_same_as_plain(TOTAL_LINE, ["total_line", "file_n", "file_path"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 3. jatuljain/LearningPython, FileAndDirectory/parsedirectory.py
# ---------------------------------------------------------------------------

PARSE_DIRECTORY = """
import os
from paraloop import ParaLoop

path = '.'   # was 'E:\\\\Python\\\\'

files = []
# r=root, d=directories, f = files
for r, d, f in ParaLoop(os.walk(path), **OPTIONS):
    for file in f:
        if '.txt' in file:
            files.append(os.path.join(r, file))

totallinecount = 0
for f in ParaLoop(files, **OPTIONS):
    # print(f)
    count = len(open(f).readlines())
    print("file number count is in file %s is %d" % (f, count))
    totallinecount = totallinecount + count

print("total file number count is ", totallinecount)
"""


def make_tree(folder: Path) -> None:
    words = vocabulary(31, 30)
    rng = random.Random(3)
    for top in range(4):
        for sub in range(3):
            directory = folder / f"dir{top}" / f"sub{sub}"
            for number in range(rng.randint(0, 4)):
                suffix = rng.choice([".txt", ".txt", ".md", ".txt.bak"])
                write_lines(
                    directory / f"file{number}{suffix}", text_lines(rng.random(), rng.randint(0, 25), words)
                )
            directory.mkdir(parents=True, exist_ok=True)
    write_lines(folder / "top.txt", ["one", "two"])


def test_parse_directory(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """jatuljain/LearningPython, ``FileAndDirectory/parsedirectory.py`` (module level): both loops,
    the first over the generator ``os.walk(path)`` appending the ``.txt`` paths (``files.append``
    in a nested loop), the second counting each file's lines with
    ``len(open(f).readlines())``, printing, and ``totallinecount = totallinecount + count``."""
    make_tree(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # open(f) is never closed
        check_same_as_plain(
            PARSE_DIRECTORY,
            ["files", "r", "d", "f", "file", "totallinecount", "count"],
            backend,
            load_module,
            capsys,
        )


# ---------------------------------------------------------------------------
# 4. yangsan/Papers, predator_prey/script/average.py
# ---------------------------------------------------------------------------

AVERAGE = """
# -*- coding: utf8 -*-

import numpy as np
import os
from paraloop import ParaLoop

data_file_list =  os.listdir(os.getcwd()+"/data/average/")

data = np.zeros([300, 2])   # [30000, 2] in the original

for filename in ParaLoop(data_file_list, **OPTIONS):
    s = np.loadtxt("./data/average/" + filename)
    data += s[:, 1:]/3200.


with open("./data/afteraverage.out", "w") as f:
    np.savetxt(f, data/float(len(data_file_list)))
"""


def make_runs(folder: Path) -> None:
    rng = np.random.default_rng(4)
    (folder / "data" / "average").mkdir(parents=True)
    for run in range(13):
        table = np.column_stack([np.arange(300.0), rng.normal(1e3, 3e2, 300), rng.exponential(17.3, 300)])
        np.savetxt(folder / "data" / "average" / f"run_{run:03d}.dat", table, fmt="%.17g")


def test_average(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """yangsan/Papers, ``predator_prey/script/average.py`` (module level): over the simulation runs
    in ``./data/average/``, ``s = np.loadtxt(...)`` and ``data += s[:, 1:]/3200.`` (a float array
    summed elementwise: the plain loop's bits), then ``np.savetxt`` of the average."""
    make_runs(folder)
    check_same_as_plain(
        AVERAGE,
        ["data_file_list", "data", "s", "filename"],
        backend,
        load_module,
        capsys,
        files=("data/afteraverage.out",),
    )


# ---------------------------------------------------------------------------
# 5. draialexis/py4e, dict_words.py
# ---------------------------------------------------------------------------

DICT_WORDS = """
import string
from paraloop import ParaLoop

fname = 'words'   # was input('Enter a file name: ')
furl = 'text_docs/' + fname + '.txt'   # was 'text_docs\\\\' + ...

try:
    fhand = open(furl)
except:
    print('In the industry, we call that a woopsie')
    quit()

words = dict()

for line in ParaLoop(fhand, **OPTIONS):
    line = line.rstrip()
    line = line.lower()
    line = line.translate(line.maketrans('', '', string.punctuation))
    for word in line.split():
        words[word] = words.get(word, 0) + 1
print(words)

vals = list(words.values())
max_val = max(vals)

for word, count in words.items():
    if count == max_val:
        print('Most frequent word:', word, '~~', count)
"""


def test_dict_words(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """draialexis/py4e, ``dict_words.py`` (commit ffc86e3, module level): iterates the open file
    object itself, rebinds the loop's ``line`` three times (``rstrip``, ``lower``, ``translate`` of
    the punctuation) and counts words with ``words[word] = words.get(word, 0) + 1``; then the most
    frequent words."""
    write_lines(folder / "text_docs" / "words.txt", text_lines(5, 120, vocabulary(51, 45), punctuation=True))
    check_same_as_plain(
        DICT_WORDS, ["words", "line", "word", "count", "vals", "max_val"], backend, load_module, capsys
    )


# ---------------------------------------------------------------------------
# 6. bhaumikbcg/count1, count1.py
# ---------------------------------------------------------------------------

COUNT1 = """
from paraloop import ParaLoop
fhand = open('romeo.txt')
counts = dict()
for line in ParaLoop(fhand, **OPTIONS):
    words = line.split()
    for word in words:
        if word not in counts:
            counts[word] = counts.get(word, 0) +1
print(counts)
"""


def test_count1_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """bhaumikbcg/count1, ``count1.py`` (module level): over the open file's lines,
    ``if word not in counts: counts[word] = counts.get(word, 0) +1`` (a count guarded by a test of
    the dict: every word ends at 1, in the order of first appearance).  paraloop refuses it: the body
    reads ``counts`` besides updating it ("Read it after the loop")."""
    write_lines(folder / "romeo.txt", text_lines(6, 80, vocabulary(61, 35)))
    check_refused(
        COUNT1,
        backend,
        load_module,
        tmp_path,
        line_of="if word not in counts",
        names=["counts", "after the loop"],
    )


# The advice followed: the body collects the words; the dict is read (and filled) after the loop.
COUNT1_FIXED = """
from paraloop import ParaLoop
fhand = open('romeo.txt')
counts = dict()
seen = []
for line in ParaLoop(fhand, **OPTIONS):
    words = line.split()
    for word in words:
        seen.append(word)
for word in seen:
    if word not in counts:
        counts[word] = counts.get(word, 0) +1
print(counts)
"""


def test_count1_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """bhaumikbcg/count1, ``count1.py``, written as paraloop's refusal says ("Read it after the
    loop"): ``seen.append(word)`` in the body, the guarded count after the loop."""
    write_lines(folder / "romeo.txt", text_lines(6, 80, vocabulary(61, 35)))
    check_same_as_plain(
        COUNT1_FIXED, ["counts", "seen", "line", "words", "word"], backend, load_module, capsys
    )


# ---------------------------------------------------------------------------
# 7. szabgab/slides, python/examples/csv/read_csv.py
# ---------------------------------------------------------------------------

READ_CSV_SEMICOLON = """
import sys
import csv
from paraloop import ParaLoop

# if len(sys.argv) != 2: (usage message and exit)
filename = 'process.csv'   # was sys.argv[1]
count = 0
with open(filename) as fh:
    rd = csv.reader(fh, delimiter=';')

    for row in ParaLoop(rd, **OPTIONS):
        print(row)
        count += int(row[2])

print("Total: {}".format(count))
"""


def make_csv(path: Path, seed: int, rows: int, delimiter: str, *, header: list[str] | None = None) -> None:
    rng = random.Random(seed)
    names = vocabulary(seed, 12)
    lines = [delimiter.join(header)] if header else []
    for _ in range(rows):
        lines.append(
            delimiter.join([rng.choice(names), f"{rng.randint(-500, 500)}", f"{rng.randint(0, 10**6)}"])
        )
    write_lines(path, lines)


def test_read_csv_semicolon(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """szabgab/slides, ``python/examples/csv/read_csv.py`` (module level): iterates a
    ``csv.reader`` over an open file, prints each row and sums ``count += int(row[2])``."""
    make_csv(folder / "process.csv", 7, 90, ";")
    check_same_as_plain(READ_CSV_SEMICOLON, ["count", "row"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 8. CarlosFabrishioVenegas/curso-python-pip, app/prueba.py
# ---------------------------------------------------------------------------

PRUEBA = """
#   for x, y in reader:
 #      total+=x

import csv
from paraloop import ParaLoop

def read_csv(path):
  with open(path,'r') as csvfile:
    reader= csv.reader(csvfile, delimiter=',')
    suma=0
    for row in ParaLoop(reader, **OPTIONS):
      suma+=int(row[1])
    return suma

response = read_csv('./app/data2.csv')
print(response)

# The same function over a file with a malformed row: the plain loop raises ValueError there.
try:
    read_csv('./app/bad.csv')
except ValueError as error:
    bad = (type(error).__name__, str(error))
"""


def test_prueba_read_csv(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """CarlosFabrishioVenegas/curso-python-pip, ``app/prueba.py``, ``read_csv``: ``suma+=int(row[1])``
    over a ``csv.reader`` inside ``with open``, returning from inside the ``with``; called again on
    a file whose 37th row holds ``12.5``, where ``int()`` raises ``ValueError`` (same type and
    message expected)."""
    make_csv(folder / "app" / "data2.csv", 8, 70, ",")
    make_csv(folder / "app" / "bad.csv", 9, 60, ",")
    lines = (folder / "app" / "bad.csv").read_text().splitlines()
    lines[36] = "broken,12.5,0"
    write_lines(folder / "app" / "bad.csv", lines)
    check_same_as_plain(PRUEBA, ["response", "bad"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 9. shupra1313/PythonChallenge, PyPoll/main1.py
# ---------------------------------------------------------------------------

PYPOLL_MAIN1 = """
import csv
import os
import math

from pathlib import Path
from paraloop import ParaLoop
filepath = Path("election_data.csv")   # was an absolute Windows path
with open(filepath, newline="",encoding='utf-8') as csvfile:
   csvreader = csv.reader(csvfile, delimiter=",")
   votes = 0
   candidates = {}
   next(csvreader)
   for row in ParaLoop(csvreader, **OPTIONS):
       votes += 1
       if row[2] in candidates.keys():
           candidates[row[2]] += 1
       else:
           candidates[row[2]] = 1
   print(votes)
   print(candidates)
"""


def make_election(folder: Path, seed: int, votes: int) -> None:
    rng = random.Random(seed)
    candidates = ["Khan", "Correy", "Li", "O'Tooley", "Vestal"]
    weights = [40, 25, 20, 10, 5]
    lines = ["Voter ID,County,Candidate"]
    for voter in range(votes):
        county = rng.choice(["Marsh", "Queen", "Bamoo", "Trandee"])
        lines.append(f"{10**7 + voter},{county},{rng.choices(candidates, weights)[0]}")
    write_lines(folder / "election_data.csv", lines)


def test_pypoll_main1_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """shupra1313/PythonChallenge, ``PyPoll/main1.py`` (module level): the csv reader (its header
    skipped with ``next``) as the iterable; ``votes += 1`` and the per-candidate tally
    ``if row[2] in candidates.keys(): candidates[row[2]] += 1 else: candidates[row[2]] = 1``.
    Refused (the idiom tests/test_real_hash_loops.py found refused in CS419's tfidf.py), the
    message proposing a ``collections.defaultdict(int)``."""
    make_election(folder, 9, 400)
    check_refused(
        PYPOLL_MAIN1,
        backend,
        load_module,
        tmp_path,
        line_of="candidates[row[2]] += 1",
        names=["'candidates'", "collections.defaultdict(int)"],
    )


# The advice followed: candidates a defaultdict(int), the tally candidates[row[2]] += 1.
PYPOLL_MAIN1_FIXED = """
import csv
import os
import math
from collections import defaultdict

from pathlib import Path
from paraloop import ParaLoop
filepath = Path("election_data.csv")   # was an absolute Windows path
with open(filepath, newline="",encoding='utf-8') as csvfile:
   csvreader = csv.reader(csvfile, delimiter=",")
   votes = 0
   candidates = defaultdict(int)
   next(csvreader)
   for row in ParaLoop(csvreader, **OPTIONS):
       votes += 1
       candidates[row[2]] += 1
   print(votes)
   print(candidates)
"""


def test_pypoll_main1_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """shupra1313/PythonChallenge, ``PyPoll/main1.py`` as the refusal advises: ``candidates`` a
    ``defaultdict(int)`` counted with ``candidates[row[2]] += 1``."""
    make_election(folder, 9, 400)
    check_same_as_plain(PYPOLL_MAIN1_FIXED, ["votes", "candidates", "row"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 10. coconutpep/python-challenge, PyPoll/main.py
# ---------------------------------------------------------------------------

PYPOLL_MAIN = """
import csv
import os
from paraloop import ParaLoop

csvpath = os.path.join('.', 'election_data.csv')   # was '..', 'PyPoll', ...

votesTotal = 0
canidates = []
canidateVotes = {}
with open(csvpath, newline='') as csvfile:
    csvreader = csv.reader(csvfile, delimiter=',')
    csv_header = next(csvreader)
    for row in ParaLoop(csvreader, **OPTIONS):
        votesTotal += 1
        if row[2] not in canidates:
            canidates.append(row[2])
            canidateVotes[row[2]] = 1
        elif row[2] in canidateVotes:
            canidateVotes[row[2]] += 1

winnervalue = max(canidateVotes.values())
winner = list(canidateVotes.keys())[list(canidateVotes.values()).index(winnervalue)]
print(winner)
canidatePercents = {}
for canidate in canidateVotes:
    if canidateVotes[canidate] not in canidatePercents:
        canidatePercents[canidate] = round(((canidateVotes[canidate] / votesTotal) * 100),3)

print("Election Results")
print("-------------------------------")
print("Total Votes: " + str(votesTotal))
print("-------------------------------")
for canidate in canidates:
    print(str(canidate) + ": " + str(canidatePercents[canidate]) + "% " + "(" + str(canidateVotes[canidate]) + ")")
print("-------------------------------")
print("Winner: " + str(winner))
print("-------------------------------")
"""


def test_pypoll_main_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """coconutpep/python-challenge, ``PyPoll/main.py`` (module level): ``votesTotal += 1``; a list of
    the candidates seen, ``if row[2] not in canidates: canidates.append(row[2]);
    canidateVotes[row[2]] = 1 elif row[2] in canidateVotes: canidateVotes[row[2]] += 1``; then
    the winner and the percentages.  Refused: the body reads ``canidates`` besides updating it
    ("Read it after the loop")."""
    make_election(folder, 10, 300)
    check_refused(
        PYPOLL_MAIN,
        backend,
        load_module,
        tmp_path,
        line_of="if row[2] not in canidates:",
        names=["'canidates'", "Read it after the loop"],
    )


# The advice followed: the body only counts the votes and collects the names; the list and the
# tally (which read their running values) are built after the loop.
PYPOLL_MAIN_FIXED = PYPOLL_MAIN.replace(
    """    for row in ParaLoop(csvreader, **OPTIONS):
        votesTotal += 1
        if row[2] not in canidates:""",
    """    names = []
    for row in ParaLoop(csvreader, **OPTIONS):
        votesTotal += 1
        names.append(row[2])
    for name in names:
        if name not in canidates:""",
).replace(
    """            canidates.append(row[2])
            canidateVotes[row[2]] = 1
        elif row[2] in canidateVotes:
            canidateVotes[row[2]] += 1""",
    """            canidates.append(name)
            canidateVotes[name] = 1
        elif name in canidateVotes:
            canidateVotes[name] += 1""",
)


def test_pypoll_main_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """coconutpep/python-challenge, ``PyPoll/main.py`` as the refusal advises: ``names.append(row[2])``
    in the body, the list of candidates and their tally read and built after the loop."""
    assert "names.append(row[2])" in PYPOLL_MAIN_FIXED and "canidateVotes[name] += 1" in PYPOLL_MAIN_FIXED
    make_election(folder, 10, 300)
    check_same_as_plain(
        PYPOLL_MAIN_FIXED,
        ["votesTotal", "canidates", "canidateVotes", "winner", "canidatePercents", "row", "names"],
        backend,
        load_module,
        capsys,
    )


# ---------------------------------------------------------------------------
# 11. Harsh27090/python, PracticeSet/_08_FileIO/_07_.py
# ---------------------------------------------------------------------------

FIND_PYTHON_BREAK = """
# python is present at which line
from paraloop import ParaLoop

with open('log.txt') as f:
    lines = f.readlines()

lineno = 1
for line in ParaLoop(lines, **OPTIONS):
    if 'python' in line:
        print(f'python is present at line no.:{lineno}')
        break
    lineno += 1

else:
    print('python is not present')
"""


def make_log(folder: Path, seed: int, count: int, python_at: list[int]) -> None:
    lines = text_lines(seed, count, vocabulary(seed, 30))
    for at in python_at:
        lines[at] = lines[at] + " python"
    write_lines(folder / "log.txt", lines)


@pytest.mark.parametrize("python_at", [[41, 57], []], ids=["present", "absent"])
def test_find_python_break_refused(
    backend: str, folder: Path, load_module: Loader, tmp_path: Path, python_at
) -> None:
    """Harsh27090/python, ``PracticeSet/_08_FileIO/_07_.py`` (module level): the first line of a log
    holding 'python': ``break`` there after printing the running ``lineno`` (``lineno += 1`` after
    the test), ``for ... else`` when absent.  Refused: the body reads ``lineno`` besides updating
    it ("Read it after the loop")."""
    make_log(folder, 12, 90, python_at)
    check_refused(
        FIND_PYTHON_BREAK,
        backend,
        load_module,
        tmp_path,
        line_of="print(f'python is present",
        names=["'lineno'", "Read it after the loop"],
    )


# The advice followed: the body no longer reads the running lineno; the line's number comes with the
# item (enumerate), and lineno (a sum cut at the break) is read after the loop.
FIND_PYTHON_BREAK_FIXED = FIND_PYTHON_BREAK.replace(
    "for line in ParaLoop(lines, **OPTIONS):", "for number, line in ParaLoop(enumerate(lines, 1), **OPTIONS):"
).replace("line no.:{lineno}')", "line no.:{number}')")


@pytest.mark.parametrize("python_at", [[41, 57], []], ids=["present", "absent"])
def test_find_python_break_advice_followed(
    backend: str, folder: Path, load_module: Loader, capsys, python_at
) -> None:
    """Harsh27090/python, ``PracticeSet/_08_FileIO/_07_.py`` as the refusal advises: the number
    printed comes from ``enumerate(lines, 1)``; ``lineno += 1`` (after the ``break`` test),
    ``break`` and ``for ... else`` as in the original."""
    assert "{number}" in FIND_PYTHON_BREAK_FIXED and "enumerate(lines, 1)" in FIND_PYTHON_BREAK_FIXED
    make_log(folder, 12, 90, python_at)
    check_same_as_plain(
        FIND_PYTHON_BREAK_FIXED, ["lineno", "line", "number", "lines"], backend, load_module, capsys
    )


# ---------------------------------------------------------------------------
# 12. tanisha200411/python, learning-python/chapter8/05_prob_5.py
# ---------------------------------------------------------------------------

FIND_PYTHON_FLAG = """
# Write a program to mine a log file and find out whether it contains 'python'
from paraloop import ParaLoop
with open("log.txt") as f:   # was "D:/python/learning-python/chapter8/log.txt"
    lines = f.readlines()

lineno = 1
found = False

for line in ParaLoop(lines, **OPTIONS):
    if "python" in line.lower():
        print(f"YES PYTHON IS PRESENT IN LINE NO. = {lineno}")
        found = True
    lineno += 1

if not found:
    print("NO PYTHON IS NOT PRESENT IN ANY LINE.")
"""


@pytest.mark.parametrize("python_at", [[13, 41, 57], []], ids=["present", "absent"])
def test_find_python_flag_refused(
    backend: str, folder: Path, load_module: Loader, tmp_path: Path, python_at
) -> None:
    """tanisha200411/python, ``learning-python/chapter8/05_prob_5.py`` (module level): prints the
    running ``lineno`` of every line holding 'python', sets the flag ``found = True``,
    ``lineno += 1``.  Refused: the body reads ``lineno`` besides updating it."""
    make_log(folder, 13, 90, python_at)
    check_refused(
        FIND_PYTHON_FLAG,
        backend,
        load_module,
        tmp_path,
        line_of='print(f"YES PYTHON',
        names=["'lineno'", "Read it after the loop"],
    )


FIND_PYTHON_FLAG_FIXED = FIND_PYTHON_FLAG.replace(
    "for line in ParaLoop(lines, **OPTIONS):", "for number, line in ParaLoop(enumerate(lines, 1), **OPTIONS):"
).replace("LINE NO. = {lineno}", "LINE NO. = {number}")


@pytest.mark.parametrize("python_at", [[13, 41, 57], []], ids=["present", "absent"])
def test_find_python_flag_advice_followed(
    backend: str, folder: Path, load_module: Loader, capsys, python_at
) -> None:
    """tanisha200411/python, ``learning-python/chapter8/05_prob_5.py`` as the refusal advises: the
    number printed comes from ``enumerate(lines, 1)``; ``found = True`` (a name only assigned, in
    some iterations) and ``lineno += 1`` as in the original."""
    assert "{number}" in FIND_PYTHON_FLAG_FIXED and "enumerate(lines, 1)" in FIND_PYTHON_FLAG_FIXED
    make_log(folder, 13, 90, python_at)
    check_same_as_plain(
        FIND_PYTHON_FLAG_FIXED, ["lineno", "found", "line", "number"], backend, load_module, capsys
    )


# ---------------------------------------------------------------------------
# 13. sphinxteam/mlcourse_2019, lec1/knn1.py
# ---------------------------------------------------------------------------

KNN_DISTANCES = """
import numpy as np
from paraloop import ParaLoop

# We don't really wanna use for loops in Python...
def compute_distances(X):
    n_samples = len(X)
    distances = np.zeros((n_samples, n_samples))
    for i in ParaLoop(range(n_samples), **OPTIONS):
        for j in range(n_samples):
            distances[i, j] = np.sqrt((X[i, 0] - X[j, 0]) ** 2 + (X[i, 1] - X[j, 1]) ** 2)
    return distances

X = np.loadtxt("points.txt")   # the notebook's X, made in an earlier cell
print("naive version using for-loops:")
distances = compute_distances(X)
print(distances[:3,:3])
"""


def test_knn_distances(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """sphinxteam/mlcourse_2019, ``lec1/knn1.py``, ``compute_distances``: the naive pairwise distance
    matrix, ``distances[i, j] = np.sqrt(...)`` on a preallocated array, the outer loop parallel."""
    np.savetxt(folder / "points.txt", np.random.default_rng(13).normal(size=(45, 2)) * 3.7, fmt="%.17g")
    check_same_as_plain(KNN_DISTANCES, ["X", "distances"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 14. jaroslavhradsky/python-sandbox, algorithms/nearest_neighbor.py
# ---------------------------------------------------------------------------

NEAREST_NEIGHBOR = """
from paraloop import ParaLoop
# Pure Python
points = [[9,2,8],[4,7,2],[3,4,4],[5,6,9],[5,0,7],[8,2,7],[0,3,2],[7,3,0],[6,1,1],[2,9,6]]
qPoint = [4,5,3]
minIdx = -1
minDist = -1
for idx, point in ParaLoop(enumerate(points), **OPTIONS):  # iterate over all points
    dist = sum([(dp-dq)**2 for dp,dq in zip(point,qPoint)])**0.5  # compute the euclidean distance for each point to q
    if dist < minDist or minDist < 0:  # if necessary, update minimum distance and index of the corresponding point
        minDist = dist
        minIdx = idx

print('Nearest point to q: {0}'.format(points[minIdx]))
"""


def test_nearest_neighbor_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """jaroslavhradsky/python-sandbox, ``algorithms/nearest_neighbor.py`` (module level, its own
    data): the nearest point by ``if dist < minDist or minDist < 0: minDist = dist; minIdx = idx``.
    Refused: ``minDist`` carries a value from one iteration to the next."""
    check_refused(
        NEAREST_NEIGHBOR,
        backend,
        load_module,
        tmp_path,
        line_of="minDist = dist",
        names=["'minDist'", "run it as a plain loop"],
    )


# Restructured as docs/recurrences.md advises for such loops: the expensive part (each distance) in
# the parallel loop, the cheap step that carries a value as a plain loop after it.
NEAREST_NEIGHBOR_FIXED = """
from paraloop import ParaLoop
# Pure Python
points = [[9,2,8],[4,7,2],[3,4,4],[5,6,9],[5,0,7],[8,2,7],[0,3,2],[7,3,0],[6,1,1],[2,9,6]]
qPoint = [4,5,3]
minIdx = -1
minDist = -1
dists = []
for idx, point in ParaLoop(enumerate(points), **OPTIONS):  # iterate over all points
    dist = sum([(dp-dq)**2 for dp,dq in zip(point,qPoint)])**0.5  # compute the euclidean distance for each point to q
    dists.append(dist)
for idx, dist in enumerate(dists):
    if dist < minDist or minDist < 0:  # if necessary, update minimum distance and index of the corresponding point
        minDist = dist
        minIdx = idx

print('Nearest point to q: {0}'.format(points[minIdx]))
"""


def test_nearest_neighbor_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """jaroslavhradsky/python-sandbox, ``algorithms/nearest_neighbor.py`` restructured: the distances
    in the ParaLoop loop (``dists.append(dist)``), the running minimum after it."""
    check_same_as_plain(
        NEAREST_NEIGHBOR_FIXED,
        ["minDist", "minIdx", "dist", "idx", "point", "dists"],
        backend,
        load_module,
        capsys,
    )


# ---------------------------------------------------------------------------
# 15. elliele/data-structures_and_algorithms, ch_03/find_max.py
# ---------------------------------------------------------------------------

FIND_MAX = """
from paraloop import ParaLoop
# Created by Ellie Le at 4/13/2021

def find_max(data):
    \"\"\"Return the maximum element from a nonempty Python list.\"\"\"
    biggest = data[0]           # The initial value to beat
    for val in ParaLoop(data, **OPTIONS):            # For each value
        if val > biggest:       # if it is greater than the best so far
            biggest = val       # we have found a new best (so far)
    return biggest              # When loops ends, biggest is the max

import random
rng = random.Random(15)
values = [rng.uniform(-1e3, 1e3) for _ in range(200)]
values[50], values[120] = 1000, 1000.0   # equal maxima: the first (the int) is kept
result = find_max(values)
"""


def test_find_max_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """elliele/data-structures_and_algorithms, ``ch_03/find_max.py``, ``find_max``: the running
    maximum written ``if val > biggest: biggest = val``.  Refused: ``biggest`` carries a value from
    one iteration to the next."""
    check_refused(
        FIND_MAX,
        backend,
        load_module,
        tmp_path,
        line_of="biggest = val ",
        names=["'biggest' is a running maximum written with if", "biggest = max(biggest, val)"],
    )


# The running maximum in the form CONTRACT.md section 4 lists as an inferred reduction.
FIND_MAX_FIXED = FIND_MAX.replace(
    """        if val > biggest:       # if it is greater than the best so far
            biggest = val       # we have found a new best (so far)""",
    """        biggest = max(biggest, val)""",
)


def test_find_max_as_max(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """elliele/data-structures_and_algorithms, ``ch_03/find_max.py`` with the ``if`` written
    ``biggest = max(biggest, val)`` (the same value, the earliest of equals kept): paraloop runs it
    and gives the plain result."""
    assert "biggest = max(biggest, val)" in FIND_MAX_FIXED
    check_same_as_plain(FIND_MAX_FIXED, ["result"], backend, load_module, capsys)


# Finding 1 (fixed): the refusal named no parallel fix.
def test_find_max_refusal_names_a_parallel_fix(
    backend: str, folder: Path, load_module: Loader, capsys
) -> None:
    """Finding 1 (elliele/data-structures_and_algorithms, ``ch_03/find_max.py``): a running maximum
    written with ``if`` is refused as "sequential by nature" (docs/troubleshooting.md: "No parallel
    order gives the same result"), though it is the reduction ``biggest = max(biggest, val)``, which
    paraloop combines (test_find_max_as_max).  Expected: the loop gives the plain result, or the
    refusal names that fix.  Reproducer::

        # paraloop: enable
        from paraloop import ParaLoop
        biggest = 0
        for val in ParaLoop([3, 9, 2], num_processes=2):
            if val > biggest:
                biggest = val
        # ParaLoopError: ... 'biggest' carries a value from one iteration to the next ... the loop is
        # sequential by nature at 'biggest'; run it as a plain loop (without ParaLoop) ...
    """
    try:
        check_same_as_plain(FIND_MAX, ["result"], backend, load_module, capsys, settings=[(2, None)])
    except paraloop.ParaLoopError as error:
        assert "max(" in str(error), str(error)


# ---------------------------------------------------------------------------
# 16. asyrofist/HMMs-and-PCFG, HMMs/bigram_hmms.py
# ---------------------------------------------------------------------------

BIGRAMS = """
import sys, os
from paraloop import ParaLoop

from collections import defaultdict

def generate_bigrams(sentence):
    bigrams = []
    for i in range(1,len(sentence)):
        bigram = (sentence[i-1],sentence[i])
        bigrams.append(bigram)
    return bigrams

def count_bigrams(corpus):
    bigram_count = defaultdict(int)
    for sentence in ParaLoop(corpus, **OPTIONS):
        bigrams = generate_bigrams(sentence)
        for bigram in bigrams:
            bigram_count[bigram] += 1
    return bigram_count

with open("corpus.txt") as corpus_file:   # the corpus the caller passes, one sentence a line
    corpus = [line.split() for line in corpus_file]
bigram_count = count_bigrams(corpus)
"""


def test_count_bigrams(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """asyrofist/HMMs-and-PCFG, ``HMMs/bigram_hmms.py``, ``count_bigrams``: per sentence, the
    bigrams from the helper ``generate_bigrams`` counted with ``bigram_count[bigram] += 1`` on a
    ``defaultdict(int)`` keyed by tuples."""
    write_lines(folder / "corpus.txt", text_lines(16, 150, vocabulary(16, 25)))
    check_same_as_plain(BIGRAMS, ["bigram_count", "corpus"], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 17. mmustafaicer/StartingOutWithPython, StartingOutWithPython/chapter_09/q04.py
# ---------------------------------------------------------------------------

UNIQUE_WORDS = """
from paraloop import ParaLoop
# unique words

def main():

    # read the file
    myfile=open("uniquewords.txt", "r")
    # read the lines
    lines=myfile.readlines()
    # close the file
    myfile.close()

    # create a set of words
    unique_words=set()

    # read each word.
    for line in ParaLoop(lines, **OPTIONS):      # each line
        for word in line.split():   # each word: split words by space (a.k.a. word)
            unique_words.add(word)  # add the word to set

    # remember. Set does not have duplicate items. So you can just iterate
    # unique_words.add(word) without checking >>>> if word is not in unique_words. etc.

    print("Unique words are below: ")
    print(unique_words)

# call the main function
main()
"""


def test_unique_words(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """mmustafaicer/StartingOutWithPython, ``StartingOutWithPython/chapter_09/q04.py``, ``main``:
    ``unique_words.add(word)`` for every word of every line, then ``print(unique_words)`` (the
    set's printed order is the observable result)."""
    write_lines(folder / "uniquewords.txt", text_lines(17, 120, vocabulary(17, 300)))
    check_same_as_plain(UNIQUE_WORDS, [], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 18. asantentata/Microscopy_Project, ao.py
# ---------------------------------------------------------------------------

MICROSCOPY = """
#!/usr/bin/env python2.7
import numpy as np
from PIL import Image
from paraloop import ParaLoop

image_index = [str(' 0'),str(' 4'),str(' 8'),12,16,20,24,28]
intensity_vals =[]

# plotting the mean intensity of each image as we cycle through images
for i in ParaLoop(image_index, **OPTIONS):
\tnow_pic = Image.open("./Images/beads 10 "+str(i)+".tiff")
\tmean_pixel = np.mean(now_pic)
\tintensity_vals.append(mean_pixel)
print(intensity_vals)
"""


def make_tiffs(folder: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(18)
    (folder / "Images").mkdir()
    for index in [" 0", " 4", " 8", 12, 16, 20, 24, 28]:
        pixels = rng.integers(0, 2**16, size=(64, 48), dtype=np.uint16)
        Image.fromarray(pixels).save(folder / "Images" / f"beads 10 {index}.tiff")


def test_microscopy_mean_intensity(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """asantentata/Microscopy_Project, ``ao.py`` (module level): for each focus step, opens a 16-bit
    TIFF with PIL, ``mean_pixel = np.mean(now_pic)``, ``intensity_vals.append(mean_pixel)`` (numpy
    float64s); ``now_pic`` (a PIL image) is a name the body binds."""
    make_tiffs(folder)
    check_same_as_plain(
        MICROSCOPY,
        ["intensity_vals", "mean_pixel", "i", "now_pic"],
        backend,
        load_module,
        capsys,
        observe={"now_pic": lambda image: (type(image).__name__, image.filename, np.asarray(image))},
    )


# ---------------------------------------------------------------------------
# 19. detectivemenon/gt-omscs-prep, logic_numeric/day7_dicts.py
# ---------------------------------------------------------------------------

TOP_PERFORMER = """
# Day 7 - Working with Dictionaries (key->list of numbers)
from paraloop import ParaLoop

grades = {
    "Alice": [85, 90, 82],
    "Bob": [78, 81, 86],
    "Charlie": [92, 88, 95]
}

print("Per-student averages:")
for name, scores in ParaLoop(grades.items(), **OPTIONS):
    total = 0
    for s in scores:
        total += s
    avg = total / len(scores)
    print(f"{name}: average={avg:.2f}")

print("\\nTop performer by average:")
top_student = ""
highest_avg = 0.0

for name, scores in ParaLoop(grades.items(), **OPTIONS):
    total = 0
    for s in scores:
        total += s
    avg = total / len(scores)
    if avg > highest_avg:
        highest_avg = avg
        top_student = name

print(f"Top performer: {top_student} ({highest_avg:.2f})")
"""


def test_top_performer_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path) -> None:
    """detectivemenon/gt-omscs-prep, ``logic_numeric/day7_dicts.py`` (module level, its own data):
    per student a ``total`` reset and summed in the body, ``avg`` printed; then the top performer
    by ``if avg > highest_avg: highest_avg = avg; top_student = name``.  The second loop is refused:
    ``highest_avg`` carries a value from one iteration to the next."""
    check_refused(
        TOP_PERFORMER,
        backend,
        load_module,
        tmp_path,
        line_of="highest_avg = avg",
        names=["'highest_avg'", "run it as a plain loop"],
    )


# Restructured as docs/recurrences.md advises: the averages in the parallel loop, the cheap step that
# carries the best so far as a plain loop after it.
TOP_PERFORMER_FIXED = TOP_PERFORMER.replace(
    """for name, scores in ParaLoop(grades.items(), **OPTIONS):
    total = 0
    for s in scores:
        total += s
    avg = total / len(scores)
    if avg > highest_avg:""",
    """averages = []
for name, scores in ParaLoop(grades.items(), **OPTIONS):
    total = 0
    for s in scores:
        total += s
    avg = total / len(scores)
    averages.append((name, avg))
for name, avg in averages:
    if avg > highest_avg:""",
)


def test_top_performer_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """detectivemenon/gt-omscs-prep, ``logic_numeric/day7_dicts.py`` restructured: both ParaLoop
    loops, the second collecting ``averages.append((name, avg))``, the best found after it."""
    assert "averages.append((name, avg))" in TOP_PERFORMER_FIXED
    check_same_as_plain(
        TOP_PERFORMER_FIXED,
        ["top_student", "highest_avg", "total", "avg", "name", "scores", "s", "averages"],
        backend,
        load_module,
        capsys,
    )


# ---------------------------------------------------------------------------
# 20. FerEsp/chem160module2, Module2/pi.py
# ---------------------------------------------------------------------------

MONTE_CARLO_PI = """
import random , math
from paraloop import ParaLoop
random.seed(160)   # added: both runs draw the same numbers
inside = 0
ntrials = 3000   # 100000 in the original
for i in ParaLoop(range(ntrials), **OPTIONS):
    x = random.random()
    y = random.random()
    if (x**2 + y**2) < 1.0:
        inside = inside + 1
pi = 4. * inside/ntrials
print("N=%d Error=%85f"%(ntrials, pi-math.pi), pi , math.pi)
"""


def test_monte_carlo_pi_refused(
    backend: str, folder: Path, load_module: Loader, tmp_path: Path, capsys
) -> None:
    """FerEsp/chem160module2, ``Module2/pi.py`` (module level): Monte Carlo estimate of pi drawing
    ``x``, ``y`` from the global random generator, ``inside = inside + 1``.  Refused (a backend is
    chosen), the message proposing a generator per iteration, ``random.Random(seed + i)``; the
    sequential backend, which draws in the plain loop's order, gives the plain result."""
    if backend == "sequential":
        check_same_as_plain(MONTE_CARLO_PI, ["inside", "pi", "x", "y", "i"], backend, load_module, capsys)
        return
    check_refused(
        MONTE_CARLO_PI,
        backend,
        load_module,
        tmp_path,
        line_of="for i in ParaLoop(",
        names=["random.random()", "rng = random.Random(seed + i)"],
    )


# The advice followed: a generator of the iteration's own (other numbers than the original's, the
# same in the plain and the parallel run).
MONTE_CARLO_PI_FIXED = MONTE_CARLO_PI.replace(
    """    x = random.random()
    y = random.random()""",
    """    rng = random.Random(160 + i)
    x = rng.random()
    y = rng.random()""",
)


def test_monte_carlo_pi_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """FerEsp/chem160module2, ``Module2/pi.py`` as the refusal advises: ``rng = random.Random(seed + i)``
    in the body, ``x``, ``y`` drawn from it; compared with the plain run of the same loop."""
    assert "rng = random.Random(160 + i)" in MONTE_CARLO_PI_FIXED
    check_same_as_plain(
        MONTE_CARLO_PI_FIXED,
        ["inside", "pi", "x", "y", "i", "rng"],
        backend,
        load_module,
        capsys,
        observe={"rng": lambda rng: rng.getstate()},
    )


# ---------------------------------------------------------------------------
# 21. Badim41/ds_ai, test.py (commit 376bbb5ab02bf49e470076b0d4c58b8dfe72d7da)
# ---------------------------------------------------------------------------

LIST_PYTHON_FILES = """
import os
from paraloop import ParaLoop


def list_python_files(root_dir):
    lines_number = 0
    for foldername, subfolders, filenames in ParaLoop(os.walk(root_dir), **OPTIONS):
        if 'venv' in subfolders:
            print("venv")
            subfolders.remove('venv')
        if 'discord' in subfolders:
            print("discord")
            subfolders.remove('discord')
        # if 'infer_pack' in subfolders:
        #     print("infer_pack")
        #     subfolders.remove('infer_pack')
        if 'src' in subfolders:
            print("src")
            subfolders.remove('src')

        for filename in filenames:
            if filename.endswith(".py"):
                print(os.path.join(foldername, filename))
                with open(os.path.join(foldername, filename), "r", encoding="utf-8") as reader:
                    lines = reader.readlines()
                    for line in lines:
                        # print(line)
                        lines_number += 1
    print(lines_number, "-number")


list_python_files('.')   # was 'B:\\\\ds_ai'
"""


def make_project(folder: Path) -> None:
    rng = random.Random(21)
    words = vocabulary(21, 20)
    for directory in ["", "bot", "bot/cogs", "venv", "venv/lib", "src", "src/inner", "discord", "tools/venv"]:
        for number in range(rng.randint(1, 3)):
            write_lines(
                folder / directory / f"m{number}.py", text_lines(rng.random(), rng.randint(1, 30), words)
            )
        write_lines(folder / directory / "README.md", ["not counted"])


def test_list_python_files(backend: str, folder: Path, load_module: Loader, capsys, request) -> None:
    """Badim41/ds_ai, ``test.py`` at commit 376bbb5, ``list_python_files``: over ``os.walk`` (top
    down), prunes the walk with ``subfolders.remove('venv')`` (and 'discord', 'src') on the list
    the walk yields, and counts the lines of every ``.py`` file left, ``lines_number += 1``; prints
    each file and the total.

    Finding 2 (every backend but sequential): the pruning is lost.  os.walk goes down into the
    folders in ``dirnames`` after its ``yield`` returns; paraloop has read the walk ahead by then
    (threads too), so the removed folders are walked, their files counted (the total printed is
    91 to 262 instead of 92 here, by setting), silently.  Reproducer::

        # paraloop: enable
        import os
        from paraloop import ParaLoop
        os.makedirs("t/keep", exist_ok=True); os.makedirs("t/venv/lib", exist_ok=True)
        seen = []
        for root, dirs, files in ParaLoop(os.walk("t"), num_processes=2):
            if "venv" in dirs:
                dirs.remove("venv")
            seen.append(root)
        print(seen)   # plain: ['t', 't/keep']

    With ``PARALOOP_CALLER_RUNS=0 PARALOOP_BACKEND=processes`` this printed
    ``['t', 't/venv', 't/venv/lib']`` (the removed folder walked, and 't/keep', which the plain
    loop walks, skipped: the change written back into the list as the walk went through it); with
    ``PARALOOP_BACKEND=dask``, ``['t', 't/venv', 't/venv/lib', 't/keep']``.  With the caller taking
    part (the default), a loop this short can run wholly in the caller and come out right.
    """
    # Finding 2 (fixed in session 46): refused where paraloop read the walk ahead of the pruning
    # (paraloop/walk_watch.py); the advice followed gives the plain result (below).
    make_project(folder)
    try:
        check_same_as_plain(LIST_PYTHON_FILES, [], backend, load_module, capsys)
    except paraloop.ParaLoopError as error:
        message = str(error)
        assert backend != "sequential", message
        assert "changed the list of folders os.walk yielded" in message, message
        assert "def walk(top)" in message and "ParaLoop(walk(top))" in message, message


# The refusal's advice followed: the pruning in a generator of the program's own, which runs as
# each item is read, the loop over it.
LIST_PYTHON_FILES_FIXED = LIST_PYTHON_FILES.replace(
    """def list_python_files(root_dir):
    lines_number = 0
    for foldername, subfolders, filenames in ParaLoop(os.walk(root_dir), **OPTIONS):""",
    """def walk(top):
    for foldername, subfolders, filenames in os.walk(top):
        subfolders[:] = [name for name in subfolders if name not in ('venv', 'discord', 'src')]
        yield foldername, subfolders, filenames


def list_python_files(root_dir):
    lines_number = 0
    for foldername, subfolders, filenames in ParaLoop(walk(root_dir), **OPTIONS):""",
)


def test_list_python_files_pruned_in_a_generator(
    backend: str, folder: Path, load_module: Loader, capsys
) -> None:
    """Badim41/ds_ai's ``list_python_files`` with the refusal's advice followed (its ``if ... in
    subfolders`` tests then find nothing to remove): the plain result on every backend."""
    assert "def walk(top)" in LIST_PYTHON_FILES_FIXED
    make_project(folder)
    check_same_as_plain(LIST_PYTHON_FILES_FIXED, [], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 22. cbohara/automate_the_boring_stuff, write_csv.py
# ---------------------------------------------------------------------------

PRINT_ROWS = """
import csv
import sys
from paraloop import ParaLoop


def print_rows(file_reader):
    for row in ParaLoop(file_reader, **OPTIONS):
        print("Row #" + str(file_reader.line_num) + " " + str(row))


def main(script):
    \"\"\"Read in csv file specified in command line argv.\"\"\"
    try:
        csv_file = 'example.csv'   # was sys.argv[1]
    except:
        print("python3 auto_csv.py [csv file]")
    else:
        input_file = open(csv_file)
        file_reader = csv.reader(input_file)
        print_rows(file_reader)


# if __name__ == "__main__":
main(sys.argv)
"""


def make_quoted_csv(path: Path) -> None:
    """Rows, some with a quoted field over two lines: line_num then runs ahead of the row count."""
    rng = random.Random(22)
    lines = []
    for number in range(40):
        note = '"two\nlines"' if rng.random() < 0.2 else "one"
        lines.append(f"{number},{rng.randint(0, 99)},{note}")
    write_lines(path, lines)


def test_print_rows_refused(backend: str, folder: Path, load_module: Loader, tmp_path: Path, capsys) -> None:
    """cbohara/automate_the_boring_stuff, ``write_csv.py``, ``print_rows``: prints each row of a
    ``csv.reader`` with the reader's own ``line_num`` (Automate the Boring Stuff's example; some
    rows span two lines), read in the body from the loop's iterable.  Refused: the body uses the
    iterator paraloop reads ahead; the message proposes
    ``ParaLoop((item, file_reader.line_num) for item in file_reader)``.  The sequential backend
    gives the plain result."""
    make_quoted_csv(folder / "example.csv")
    if backend == "sequential":
        check_same_as_plain(PRINT_ROWS, [], backend, load_module, capsys)
        return
    check_refused(
        PRINT_ROWS,
        backend,
        load_module,
        tmp_path,
        line_of="for row in ParaLoop(",
        names=["'file_reader'", "ParaLoop((item, file_reader.line_num) for item in file_reader)"],
    )


PRINT_ROWS_FIXED = PRINT_ROWS.replace(
    """    for row in ParaLoop(file_reader, **OPTIONS):
        print("Row #" + str(file_reader.line_num) + " " + str(row))""",
    """    for row, line_num in ParaLoop(((item, file_reader.line_num) for item in file_reader), **OPTIONS):
        print("Row #" + str(line_num) + " " + str(row))""",
)


def test_print_rows_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """cbohara/automate_the_boring_stuff, ``write_csv.py`` as the refusal advises: the line number
    taken along with each row by a generator expression over the reader."""
    assert "str(line_num)" in PRINT_ROWS_FIXED
    make_quoted_csv(folder / "example.csv")
    check_same_as_plain(PRINT_ROWS_FIXED, [], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 23. SHUHAIB-AREEKKAN/anand_python_solutions, iter_and_gen_ch5/problem6.py
# ---------------------------------------------------------------------------

ANAND_PROBLEM6 = """
# anand python problem 6 5:6
#Write a function to compute the total number of lines of code, ignoring empty and comment lines, in all python files in the specified directory recursively.


import os
import sys
from paraloop import ParaLoop
cnt=0
def get_path(direc):
\tfor i in os.listdir(direc):
\t\tpaths=os.path.join(direc,i)
\t\tyield paths
def get_line(filename):
\treturn (line for line in open(filename) if not line.startswith('#') if line != '')

def print_path(direc):
\tglobal cnt
\tfor path in ParaLoop(get_path(direc), **OPTIONS):
\t\tif os.path.isfile(path):
\t\t\tif '.py' == os.path.splitext(path)[1].lower():
\t\t\t\tfor i in get_line(path):
\t\t\t\t\tcnt+=1
\t\telse:
\t\t\tprint_path(path)
\treturn cnt

def main(direc):
\tsec=print_path(direc)
\tprint('No of  lines(without empty or comment) in all py files in directry {} : {}'.format(direc,sec))

# if __name__ == '__main__':
main('.')   # was sys.argv[1]
"""

# The same loop over a list of the paths (os.listdir's, joined), as a script that does not write
# the generator has it.
ANAND_PROBLEM6_LIST = ANAND_PROBLEM6.replace(
    "ParaLoop(get_path(direc), **OPTIONS)", "ParaLoop(list(get_path(direc)), **OPTIONS)"
)


def make_code_tree(folder: Path) -> None:
    rng = random.Random(23)
    for directory in ["", "pkg", "pkg/sub", "pkg/sub/deeper", "other"]:
        for number in range(rng.randint(1, 3)):
            lines = [
                rng.choice(["# comment", "x = 1", "", "def f():", "    return 2"])
                for _ in range(rng.randint(0, 25))
            ]
            write_lines(folder / directory / f"code{number}.py", lines)
        write_lines(folder / directory / "data.txt", ["x = 1"])


def test_anand_problem6(
    backend: str, folder: Path, load_module: Loader, tmp_path: Path, capsys, request
) -> None:
    """SHUHAIB-AREEKKAN/anand_python_solutions, ``iter_and_gen_ch5/problem6.py`` (Python 2; its
    ``print`` statement made a call and its tab-and-space indentation made tabs), ``print_path``:
    over the generator ``get_path(direc)``, counts the non-comment lines of ``.py`` files into the
    module global ``cnt`` (``global cnt; cnt+=1``) and recurses into directories (the recursive
    call runs the same ParaLoop loop, which adds to the global too), returning ``cnt``.

    On worker processes and Dask: refused, "an iteration rebound the global 'cnt' ... (in a
    function it calls ...)", with the advice to collect in the loop's own names.  Finding 4
    (threads, sequential): refused with a message that blames the iterable, "the loop's iterable
    changed the global 'cnt', which the body combines into, before it yielded item 4 ... set the
    name before or after the loop, not in the iterable": the generator never changes ``cnt``; the
    recursive call in the body does (the same loop over a list is finding 3).  Expected there: the
    plain result, or a refusal naming the call.  Reproducer: finding 3's, with ``range(6)``
    replaced by a generator, ``(x for x in range(6))``.
    """
    make_code_tree(folder)
    # Finding 4 (fixed in session 46): the refusal blamed the iterable alone.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # open(filename) is never closed
        try:
            check_same_as_plain(ANAND_PROBLEM6, ["cnt"], backend, load_module, capsys)
        except paraloop.ParaLoopError as error:
            message = str(error)
            # Refused for the call on processes and Dask; on threads and sequential, as the
            # recursive call's change is seen as an item is read, naming both sources.
            assert "'cnt'" in message, message
            assert "function the body calls" in message or "in a function it calls" in message, message
        if backend not in ("threads", "sequential"):
            check_refused(
                ANAND_PROBLEM6,
                backend,
                load_module,
                tmp_path,
                line_of="for path in ParaLoop(",
                names=[
                    "rebound the global 'cnt'",
                    "Collect what the iterations produce in the loop's own names",
                ],
            )


def test_anand_problem6_list(backend: str, folder: Path, load_module: Loader, capsys, request) -> None:
    """SHUHAIB-AREEKKAN/anand_python_solutions, ``iter_and_gen_ch5/problem6.py`` as above, the loop
    over ``list(get_path(direc))``.

    Finding 3 (threads, sequential): the recursive call's additions to the global ``cnt`` are lost:
    ``cnt`` ends at 9 (the top folder's own files) instead of 121, silently.  Worker processes and
    Dask refuse the loop (an iteration rebound the global), which the contract allows.
    Reproducer::

        # paraloop: enable
        from paraloop import ParaLoop
        cnt = 0
        def bump():
            global cnt
            cnt += 1
        for x in ParaLoop(range(6), num_processes=2):   # PARALOOP_BACKEND=threads or sequential
            cnt += 1
            bump()
        print(cnt)   # plain: 12; paraloop: 6
    """
    make_code_tree(folder)
    # Finding 3 (fixed in session 46): refused on threads and sequential as well.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # open(filename) is never closed
        try:
            check_same_as_plain(ANAND_PROBLEM6_LIST, ["cnt"], backend, load_module, capsys)
        except paraloop.ParaLoopError as error:
            assert "rebound the global 'cnt'" in str(error), str(error)


# The advice followed ("Collect what the iterations produce in the loop's own names"): each call
# counts into a name of its own loop and returns it; the recursive call's count is added there.
ANAND_PROBLEM6_FIXED = ANAND_PROBLEM6.replace(
    """def print_path(direc):
\tglobal cnt
\tfor path in ParaLoop(get_path(direc), **OPTIONS):
\t\tif os.path.isfile(path):
\t\t\tif '.py' == os.path.splitext(path)[1].lower():
\t\t\t\tfor i in get_line(path):
\t\t\t\t\tcnt+=1
\t\telse:
\t\t\tprint_path(path)
\treturn cnt""",
    """def print_path(direc):
\tcnt = 0
\tfor path in ParaLoop(get_path(direc), **OPTIONS):
\t\tif os.path.isfile(path):
\t\t\tif '.py' == os.path.splitext(path)[1].lower():
\t\t\t\tfor i in get_line(path):
\t\t\t\t\tcnt+=1
\t\telse:
\t\t\tcnt += print_path(path)
\treturn cnt""",
)


def test_anand_problem6_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """SHUHAIB-AREEKKAN/anand_python_solutions, ``iter_and_gen_ch5/problem6.py`` as the refusal
    advises: ``print_path`` counts into its own ``cnt`` and adds the recursive call's return
    value, ``cnt += print_path(path)``; the total printed is the original's."""
    assert "cnt += print_path(path)" in ANAND_PROBLEM6_FIXED
    make_code_tree(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        _, original_out = plain_run(header(2, None) + ANAND_PROBLEM6, capsys)
        _, fixed_out = plain_run(header(2, None) + ANAND_PROBLEM6_FIXED, capsys)
        assert fixed_out == original_out
        check_same_as_plain(ANAND_PROBLEM6_FIXED, [], backend, load_module, capsys)


# ---------------------------------------------------------------------------
# 24. elinbjorck/1DV501, eb222wb_assign3/count_lines.py
# ---------------------------------------------------------------------------

SCANDIR_COUNT_LINES = """
import os
from paraloop import ParaLoop

dir_path = os.getcwd()

def count_lines(file_path):
    lines = 0
    with open(file_path,'r',encoding='utf8') as python_file:
        for line in python_file:
            if line.strip():
                lines += 1
    return lines

def count_py_lines(path):
    directory_content = os.scandir(path)
    total_lines = 0
    for content in ParaLoop(directory_content, **OPTIONS):
        if content.name.startswith('.'):
            continue
        elif content.is_dir():
            total_lines += count_py_lines(content.path)
        elif content.name.endswith('.py'):
            total_lines += count_lines(content.path)
    return total_lines

print(count_py_lines(dir_path))
"""


def test_scandir_count_lines(backend: str, folder: Path, load_module: Loader, tmp_path: Path, capsys) -> None:
    """elinbjorck/1DV501, ``eb222wb_assign3/count_lines.py``, ``count_py_lines``: over
    ``os.scandir(path)`` (``os.DirEntry`` items), skips hidden entries with ``continue``, recurses
    into directories (the same ParaLoop loop) and counts the non-blank lines of ``.py`` files,
    ``total_lines += ...``.  Threads and sequential give the plain result; worker processes and
    Dask refuse the first item, a ``DirEntry`` that cannot be pickled ("pass what identifies it
    instead, or use backend='threads'"), the traceback ending at the loop's line."""
    make_code_tree(folder)
    write_lines(folder / ".hidden" / "secret.py", ["a = 1"] * 7)
    if backend in ("threads", "sequential"):
        check_same_as_plain(SCANDIR_COUNT_LINES, [], backend, load_module, capsys)
        return
    check_refused(
        SCANDIR_COUNT_LINES,
        backend,
        load_module,
        tmp_path,
        line_of="for content in ParaLoop(",
        names=["DirEntry", "pass what identifies it instead"],
        in_message=False,
    )


# The advice followed: the items are the entries' paths, what identifies them.
SCANDIR_COUNT_LINES_FIXED = SCANDIR_COUNT_LINES.replace(
    """    for content in ParaLoop(directory_content, **OPTIONS):
        if content.name.startswith('.'):
            continue
        elif content.is_dir():
            total_lines += count_py_lines(content.path)
        elif content.name.endswith('.py'):
            total_lines += count_lines(content.path)""",
    """    for content_path in ParaLoop([content.path for content in directory_content], **OPTIONS):
        content_name = os.path.basename(content_path)
        if content_name.startswith('.'):
            continue
        elif os.path.isdir(content_path):
            total_lines += count_py_lines(content_path)
        elif content_name.endswith('.py'):
            total_lines += count_lines(content_path)""",
)


def test_scandir_count_lines_advice_followed(backend: str, folder: Path, load_module: Loader, capsys) -> None:
    """elinbjorck/1DV501, ``eb222wb_assign3/count_lines.py`` as the refusal advises: the loop over the
    entries' paths (``os.path.basename``, ``os.path.isdir`` in the body)."""
    assert "content_path in ParaLoop(" in SCANDIR_COUNT_LINES_FIXED
    make_code_tree(folder)
    write_lines(folder / ".hidden" / "secret.py", ["a = 1"] * 7)
    check_same_as_plain(SCANDIR_COUNT_LINES_FIXED, [], backend, load_module, capsys)
