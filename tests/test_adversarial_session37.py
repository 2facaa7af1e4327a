"""Findings of session 37's adversarial pass on lanes and process-wide state, against commit 7cfd203
(after bd92ed2: a worker imports threadpoolctl before a chunk's lanes start).

Fixed in the same session: 1 (the caller counts what a worker counts while it runs a chunk,
``process_state.counted_here``) and 3 (a worker and the caller count the changes of the warnings
filters, ``warnings_relay._mutations``, and each ``redirect_stdout``/``redirect_stderr`` entered:
a change put back shows).  Decided (docs/how-it-works.md, "Loops that mostly wait"): 2
(``caller_runs=False``, not the defaults) gives the plain result or the refusal, a race, and the
refusal's advice works; 4 and 5, a module's first import in a lane that changes process-wide
state, are refused (strict xfails; with the defaults 4 gives the plain result or that refusal,
depending on which iterations ran in lanes), and the refusal names the module, whose import
before the loop keeps the lanes (``test_a_refusal_for_a_first_import_names_it_and_its_advice_works``).

Also found, outside lanes (6, fixed): a script's top-level loop whose body makes a
``ThreadPoolExecutor`` in a ``with ... as ex:`` was refused, "'ex' is read after the loop ... cannot
be sent back", because other modules can import a module's public names; the refusal's advice
("keep such objects inside the loop body") did not work, the object being there already.  It now
says what does (``_ex``, or the loop in a function), and both give the plain result.

Every program below runs in plain Python to its end; each loop's iterations mostly wait
(``time.sleep(0.02)``, 64 iterations), so paraloop runs them side by side in threads of its
workers ("lanes").  Each finding has a strict xfail test asserting what plain Python gives.

1. The caller's own chunks do not count set-and-restore changes.  A function the body calls sets
   an environment variable, reads it and removes it again (or calls ``locale.getpreferredencoding()``,
   which sets ``LC_CTYPE`` to the environment's locale and back: a call that looks like a read).
   A worker counts such writes (``process_state.count_writes``), so when a worker runs the first
   iterations alone lanes stay off and the plain result comes.  With the defaults, though, the
   caller runs the first iterations (``caller_runs``) and counts nothing (``count_writes`` is
   only called in ``child.py``): its snapshots before and after look the same, the iterations
   wait, the workers start in lanes, and the loop is refused: "an iteration changed the
   environment [the locale] while others ran beside it in threads of its worker".  Plain: the
   program prints ``true``.  Default settings (fork, spawn), every run.  With
   ``caller_runs=False`` the same programs give the plain result (regression test below).

2. A worker's early word races its first chunk.  With ``caller_runs=False``, a worker's first
   chunk is watched (backends/processes/watch.py); 15 ms in, if its iteration mostly waited and
   nothing had changed yet, the watcher tells the caller, which sends a chunk to run in lanes at
   once.  A body that waits first and then calls a function that sets and removes an
   environment variable changes the state only after that word: the lanes already run, and the
   loop is refused ("an iteration changed the environment ...").  Plain: ``true``.
   ``caller_runs=False`` (fork, spawn), every run; with the defaults it fails as finding 1.  The
   docs (internals.md, "Process-wide state") promise that such a loop's first chunks, run alone,
   keep lanes off.

3. Set-and-restore of the warnings filters or ``sys.stdout`` by a function the body calls is
   invisible to the run alone.  A helper module's ``fetch()`` wraps its wait in
   ``warnings.catch_warnings(): warnings.simplefilter("error")`` (or ``redirect_stdout`` into a
   buffer it returns): ``catch_warnings`` puts the same list object back, ``redirect_stdout`` the
   same stream, so the snapshots around a chunk run alone compare equal (the filters are read as
   ``id`` and ``len``, with no count of changes as the environment has), lanes start, and the
   loop is refused ("an iteration changed the warnings filters [sys.stdout] ...").  Plain: the
   list the program expects.  Defaults and ``caller_runs=False``, fork and spawn, every run.  The
   refusal is the safe side (in lanes the iterations do mix: a ``warnings.warn`` beside the
   helper raises), but CONTRACT section 3 promises the plain result under the defaults for a loop
   whose iterations use process-wide state.

4. numpy imported for the first time inside a lane.  numpy's import calls
   ``os.putenv("OPENBLAS_MAIN_FREE", "1")`` and ``os.unsetenv`` (``numpy/_core/__init__.py``:
   ``os.environ`` never changes, the environment ends as it began) and adds four warnings filters
   for numpy's own warnings.  A body that needs numpy only for some items (a helper that imports
   it lazily for every 16th item) is refused with the defaults ("an iteration changed the
   environment ..."), fork and spawn, every run; with ``lanes=True, caller_runs=False`` any body
   that imports numpy is refused, under fork, spawn and forkserver, ``PARALOOP_PORTABLE`` 0 or 1.
   Plain: ``true``.  The same holds for joblib and threadpoolctl (their imports
   ``os.environ.setdefault("KMP_DUPLICATE_LIB_OK", ...)``): the threadpoolctl fix of bd92ed2
   covers paraloop's own import of it only.

5. A module of the program imported for the first time inside a lane, whose top level does
   ``os.environ.setdefault("HELPER_FLAG", "1")``: the body imports it at iteration 40 and never
   reads the variable.  Plain: ``true``; paraloop with the defaults: refused ("an iteration
   changed the environment ..."), fork and spawn, every run.  Debatable: the variable really is
   set, and an iteration in another lane could read it earlier than the plain loop's iterations
   would (iterations in other workers never see it, a documented limitation); listed because the
   refusal comes under the defaults, for a body that changes nothing it reads.

Held (regression tests at the end): set-and-restore of the environment before the wait with
``caller_runs=False`` (lanes stay off, plain result); a loop after a first one whose pool did not
have numpy, numpy imported between them (fork, spawn with ``PARALOOP_PORTABLE=1``); warnings
the body emits in lanes shown as often as the plain loop shows them; and, under ``lanes=True,
caller_runs=False``, bodies that print, log, run ``asyncio.run``, make a temporary directory,
start a subprocess, use ``decimal``, ``uuid`` and ``datetime`` with a time zone, read the locale,
or raise at a late iteration: none refused, each the plain result.  (Probed and not changing
tracked state on first import, with numpy already loaded: decimal, logging, json, asyncio,
concurrent.futures, subprocess, multiprocessing, matplotlib(.pyplot), dask(.array), distributed,
dill, cloudpickle, PIL, psutil, tqdm, urllib.request, ssl, sqlite3, ctypes, tempfile, uuid,
IPython, jinja2, yaml, hypothesis.)
"""

from __future__ import annotations

import pytest
from conftest import last_json, run_plain, run_source

_FORK = {"PARALOOP_START_METHOD": "fork"}
_SPAWN = {"PARALOOP_START_METHOD": "spawn"}
_METHODS = {"fork": _FORK, "spawn": _SPAWN}


def _plain_then_paraloop(tmp_path, source, files=None, **extra):
    """What plain Python prints last (JSON), then what paraloop's run gives: its last JSON line,
    or the last line of its stderr when it failed (a refusal)."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    plain = last_json(run_plain(tmp_path, source))
    result = run_source(tmp_path, source, timeout=60, **extra)
    if result.returncode != 0:
        return plain, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode
    return plain, last_json(result)


# F1. The caller's chunks do not count a set-and-restore: refused under the defaults. ------------

_ENV_HELPER = """\
import os, time


def tagged(i):
    # a value handed down through the environment for the length of a call
    os.environ["STEP"] = str(i)
    time.sleep(0.02)
    value = int(os.environ["STEP"])
    del os.environ["STEP"]
    return value
"""

_ENV_PROGRAM = """\
# paraloop: enable
import json
import helper
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(64){options}):
    out.append(helper.tagged(i))
print(json.dumps(out == list(range(64))))
"""

_LOCALE_PROGRAM = """\
# paraloop: enable
import json, locale, time
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(64){options}):
    encoding = locale.getpreferredencoding()
    time.sleep(0.02)
    out.append(encoding == locale.getpreferredencoding(False))
print(json.dumps(all(out) and len(out) == 64))
"""


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_environment_set_and_removed_by_a_helper_under_the_defaults(tmp_path, method):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _ENV_PROGRAM.format(options=""), {"helper.py": _ENV_HELPER}, **_METHODS[method]
    )
    assert plain is True
    assert paraloop == plain


def test_preferred_encoding_read_under_the_defaults(tmp_path):
    plain, paraloop = _plain_then_paraloop(tmp_path, _LOCALE_PROGRAM.format(options=""), **_FORK)
    assert plain is True
    assert paraloop == plain


# F2. The early word races the first chunk: a change after the wait is refused. --------------------

_LATE_ENV_HELPER = """\
import os


def tagged(i):
    os.environ["STEP"] = str(i)
    value = int(os.environ["STEP"])
    del os.environ["STEP"]
    return value
"""

_LATE_ENV_PROGRAM = """\
# paraloop: enable
import json, time
import helper
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(64), caller_runs=False):
    # The first iteration changes the environment well after its worker's early word (15 ms):
    # under load, a word later than a change made at 20 ms let the loop run without lanes.
    time.sleep(0.3 if i == 0 else 0.02)
    out.append(helper.tagged(i))
print(json.dumps(out == list(range(64))))
"""


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_environment_set_and_removed_after_the_wait_with_workers_first(tmp_path, method):
    """Decided (finding 2, ``caller_runs=False`` only): whether lanes start before a chunk run
    alone reports the change is a race (3 runs in 12 gave the plain result), so the loop gives
    the plain result or the refusal, whose advice (``lanes=False``) gives the plain result."""
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _LATE_ENV_PROGRAM, {"helper.py": _LATE_ENV_HELPER}, **_METHODS[method]
    )
    assert plain is True
    assert paraloop == plain or "changed the environment while others ran beside it" in paraloop
    advised = run_source(
        tmp_path,
        _LATE_ENV_PROGRAM.replace("caller_runs=False", "caller_runs=False, lanes=False"),
        **_METHODS[method],
    )
    assert last_json(advised) is True


# F3. catch_warnings / redirect_stdout in a helper: invisible alone, refused in lanes. -------------

_QUIET_HELPER = """\
import contextlib, io, time, warnings


def fetch(i):
    # a library call that makes warnings errors for its own length
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        time.sleep(0.02)
    return i


def captured(i):
    # a library call whose chatter is kept and returned
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        time.sleep(0.01)
        print(f"item {i}")
        time.sleep(0.01)
    return buffer.getvalue()
"""

_WARNINGS_PROGRAM = """\
# paraloop: enable
import json, time, warnings
import quiet
from paraloop import ParaLoop
warnings.simplefilter("ignore")
out = []
for i in ParaLoop(range(64){options}):
    # The first iteration calls the helper: one that only a later iteration calls is first seen
    # in lanes, whichever iterations the first chunk holds (refused, documented).
    if i % 2 == 0:
        out.append(quiet.fetch(i))
    else:
        time.sleep(0.005)
        try:
            warnings.warn("slow item")
            out.append(i)
        except UserWarning:
            out.append(-i)
print(json.dumps(out == list(range(64))))
"""

_STDOUT_PROGRAM = """\
# paraloop: enable
import json
import quiet
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(64){options}):
    out.append(quiet.captured(i))
print(json.dumps(out == [f"item {{i}}\\n" for i in range(64)]))
"""


@pytest.mark.parametrize(
    ("method", "options"), [("fork", ""), ("spawn", ""), ("fork", ", caller_runs=False")], ids=str
)
def test_catch_warnings_in_a_helper(tmp_path, method, options):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _WARNINGS_PROGRAM.format(options=options), {"quiet.py": _QUIET_HELPER}, **_METHODS[method]
    )
    assert plain is True
    assert paraloop == plain


@pytest.mark.parametrize("options", ["", ", caller_runs=False"], ids=["defaults", "workers first"])
def test_redirect_stdout_in_a_helper(tmp_path, options):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _STDOUT_PROGRAM.format(options=options), {"quiet.py": _QUIET_HELPER}, **_FORK
    )
    assert plain is True
    assert paraloop == plain


# F4. numpy imported for the first time in a lane. --------------------------------------------------

_NUMPY_SOMETIMES = """\
# paraloop: enable
import json, time
from paraloop import ParaLoop


def summarize(i):
    if i % 16 == 15:  # only some items need the numeric path
        import numpy as np
        return int(np.int64(i).sum())
    return i


out = []
for i in ParaLoop(range(64)):
    time.sleep(0.02)
    out.append(summarize(i))
print(json.dumps(out == list(range(64))))
"""

_NUMPY_IN_BODY = """\
# paraloop: enable
import json, os, time
from paraloop import ParaLoop
os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
out = []
for i in ParaLoop(range(64), lanes=True, caller_runs=False):
    time.sleep(0.02)
    import numpy as np
    out.append(int(np.int64(i) * 2))
print(json.dumps(out == [2 * i for i in range(64)]))
"""


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_numpy_imported_by_some_iterations_under_the_defaults(tmp_path, method):
    """Decided (finding 4): the plain result where the import came in an iteration run alone,
    else the refusal naming numpy (which iterations run in lanes depends on timing)."""
    plain, paraloop = _plain_then_paraloop(tmp_path, _NUMPY_SOMETIMES, **_METHODS[method])
    assert plain is True
    assert paraloop == plain or "an iteration imported numpy for the first time meanwhile" in paraloop


@pytest.mark.xfail(
    strict=True,
    reason="finding 4, decided: numpy's first import in a lane (putenv/unsetenv, filters) is refused",
)
@pytest.mark.parametrize(
    ("method", "portable"), [("fork", "0"), ("spawn", "1"), ("forkserver", "0")], ids=str
)
def test_numpy_imported_in_the_body_in_forced_lanes(tmp_path, method, portable):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _NUMPY_IN_BODY, PARALOOP_START_METHOD=method, PARALOOP_PORTABLE=portable
    )
    assert plain is True
    assert paraloop == plain


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_a_refusal_for_a_first_import_names_it_and_its_advice_works(tmp_path, method):
    """Finding 4's refusal names the module the iteration imported, and its advice (import it
    before the loop) gives the plain result with the lanes on."""
    # Lanes from the workers' first chunk, whatever the machine's load.
    forced = _NUMPY_SOMETIMES.replace("ParaLoop(range(64))", "ParaLoop(range(64), lanes=True)")
    refused = run_source(tmp_path, forced, timeout=60, **_METHODS[method])
    assert refused.returncode == 1
    assert (
        "an iteration imported numpy for the first time meanwhile, which may have made the change: "
        "import numpy before the loop and the lanes stay"
    ) in refused.stderr, refused.stderr[-2000:]
    advised = run_source(
        tmp_path, forced.replace("import json, time", "import json, time, numpy"), **_METHODS[method]
    )
    assert last_json(advised) is True


# F5. A module of the program that sets an environment variable as it is first imported. ---------

_SETDEFAULT_HELPER = """\
import os

os.environ.setdefault("HELPER_FLAG", "1")


def double(x):
    return 2 * x
"""

_SETDEFAULT_PROGRAM = """\
# paraloop: enable
import json, time
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(64)):
    time.sleep(0.02)
    if i == 40:
        import helper_env
    out.append(i)
print(json.dumps(out == list(range(64))))
"""


@pytest.mark.xfail(
    strict=True,
    reason="finding 5, decided: a first import in a lane that sets an environment variable is refused",
)
def test_module_setting_the_environment_on_first_import(tmp_path):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _SETDEFAULT_PROGRAM, {"helper_env.py": _SETDEFAULT_HELPER}, **_FORK
    )
    assert plain is True
    assert paraloop == plain


# Held. ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_held_environment_set_and_removed_with_workers_first(tmp_path, method):
    """The change comes before the early word: the first chunk, run alone, counts it, lanes stay
    off, and the plain result comes."""
    plain, paraloop = _plain_then_paraloop(
        tmp_path,
        _ENV_PROGRAM.format(options=", caller_runs=False"),
        {"helper.py": _ENV_HELPER},
        **_METHODS[method],
    )
    assert plain is True
    assert paraloop == plain


def test_held_preferred_encoding_with_workers_first(tmp_path):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _LOCALE_PROGRAM.format(options=", caller_runs=False"), **_FORK
    )
    assert plain is True
    assert paraloop == plain


_NUMPY_BETWEEN_LOOPS = """\
# paraloop: enable
import json, os, time
from paraloop import ParaLoop
os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
first = []
for i in ParaLoop(range(32), lanes=True, caller_runs=False):
    time.sleep(0.02)
    first.append(i)
import numpy as np
second = []
for i in ParaLoop(range(64), lanes=True, caller_runs=False):
    time.sleep(0.02)
    second.append(int(np.int64(i)))
print(json.dumps([first == list(range(32)), second == list(range(64)), "KMP_DUPLICATE_LIB_OK" in os.environ]))
"""


@pytest.mark.parametrize(("method", "portable"), [("fork", "0"), ("spawn", "1")], ids=str)
def test_held_numpy_imported_between_two_loops(tmp_path, method, portable):
    plain, paraloop = _plain_then_paraloop(
        tmp_path, _NUMPY_BETWEEN_LOOPS, PARALOOP_START_METHOD=method, PARALOOP_PORTABLE=portable
    )
    assert plain == [True, True, False]
    assert paraloop == plain


_WARNING_BODY = """\
# paraloop: enable
import json, time, warnings
from paraloop import ParaLoop
out = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("default")
    for i in ParaLoop(range(64), lanes=True, caller_runs=False):
        time.sleep(0.02)
        warnings.warn(f"w{i % 3}")
        out.append(i)
print(json.dumps([out == list(range(64)), sorted(str(w.message) for w in caught)]))
"""


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_held_warnings_in_lanes_shown_as_often_as_plain(tmp_path, method):
    plain, paraloop = _plain_then_paraloop(tmp_path, _WARNING_BODY, **_METHODS[method])
    assert plain == [True, ["w0", "w1", "w2"]]
    assert paraloop == plain


_BODIES = {
    "print": ("", "print('item', i)"),
    "logging": ("import logging", "logging.getLogger('body').warning('item %d', i)"),
    "asyncio": (
        "import asyncio\nasync def fetch(i):\n    await asyncio.sleep(0.001)\n    return i",
        "assert asyncio.run(fetch(i)) == i",
    ),
    "tempdir": (
        "import pathlib, tempfile",
        "with tempfile.TemporaryDirectory() as d:\n    (pathlib.Path(d) / 'f').write_text(str(i))",
    ),
    "subprocess": (
        "import subprocess, sys",
        "if i % 32 == 3:\n    subprocess.run([sys.executable, '-c', 'pass'], check=True)",
    ),
    "stdlib": (
        "import datetime, decimal, locale, uuid",
        "uuid.uuid4()\ndatetime.datetime.now().astimezone()\nlocale.getlocale()\n"
        "assert decimal.Decimal(i) / 3 > -1",
    ),
    "raise_late": ("", "if i == 50:\n    raise KeyError(i)"),
}


def _body_program(head: str, body: str) -> str:
    indented = "\n".join("        " + line for line in body.splitlines())
    return (
        "# paraloop: enable\nimport json, time\nfrom paraloop import ParaLoop\n"
        + head
        + "\nout = []\ntry:\n    for i in ParaLoop(range(64), lanes=True, caller_runs=False):\n"
        + "        time.sleep(0.02)\n"
        + indented
        + "\n        out.append(i)\nexcept KeyError as error:\n    out.append(['KeyError', error.args[0]])\n"
        + "print(json.dumps(out == list(range(64)) or out[-1]))\n"
    )


@pytest.mark.parametrize("name", sorted(_BODIES))
def test_held_bodies_that_change_nothing_in_forced_lanes(tmp_path, name):
    plain, paraloop = _plain_then_paraloop(tmp_path, _body_program(*_BODIES[name]), **_FORK)
    assert plain in (True, ["KeyError", 50])
    assert paraloop == plain


# F6. A public name at a script's top level that cannot travel back: the refusal's advice works. --

_EXECUTOR_PROGRAM = """\
# paraloop: enable
import json
from concurrent.futures import ThreadPoolExecutor
from paraloop import ParaLoop
out = []
for i in ParaLoop(range(8)):
    with ThreadPoolExecutor(2) as ex:
        out.append(sum(ex.map(abs, [i, -i])))
print(json.dumps(out))
"""


def test_a_public_name_a_top_level_loop_binds_is_refused_with_advice_that_works(tmp_path):
    plain = last_json(run_plain(tmp_path, _EXECUTOR_PROGRAM))
    refused = run_source(tmp_path, _EXECUTOR_PROGRAM, **_FORK)
    assert refused.returncode == 1
    assert (
        "if nothing after the loop reads it, name it '_ex', or put the loop in a function" in refused.stderr
    )
    renamed = _EXECUTOR_PROGRAM.replace(" as ex:", " as _ex:").replace("ex.map", "_ex.map")
    assert last_json(run_source(tmp_path, renamed, **_FORK)) == plain
    body = _EXECUTOR_PROGRAM.split("out = []\n", 1)[1]
    in_function = _EXECUTOR_PROGRAM.replace(
        "out = []\n" + body,
        "def main():\n    out = []\n" + "".join("    " + line for line in body.splitlines(True)) + "main()\n",
    )
    assert last_json(run_source(tmp_path, in_function, **_FORK)) == plain


def test_a_name_a_function_reads_after_its_loop_keeps_the_plain_advice(tmp_path):
    """In a function, a name really read after the loop gets the advice about the object."""
    source = """\
# paraloop: enable
from concurrent.futures import ThreadPoolExecutor
from paraloop import ParaLoop
def main():
    for i in ParaLoop(range(8)):
        ex = ThreadPoolExecutor(1)
        ex.shutdown()
    print(ex)
main()
"""
    refused = run_source(tmp_path, source, **_FORK)
    assert "'ex' is read after the loop" in refused.stderr
    assert "Keep such objects inside the loop body" in refused.stderr
    assert "top level" not in refused.stderr
