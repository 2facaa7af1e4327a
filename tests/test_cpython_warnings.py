"""CPython's own warnings tests (Lib/test/test_warnings/__init__.py, 3.11), each made the body of a
loop: the plain loop and the ParaLoop loop, under the same filters, must show the program the
same warnings (text, category, line counted from the function's own, file), the same results and
the same exceptions (docs/semantics.md, "a warning in the body").

Each scenario is written once, as a template: ``run_plain`` iterates ``items`` and
``run_parallel`` iterates ``ParaLoop(items, ...)``, both in one marked module, as
tests/test_warnings.py does.  The comment above each test names the CPython test it comes from.

Known differences (docs/semantics.md) the comparisons respect:

- the threads backend shows the workers' warnings in no guaranteed order: compared sorted;
- on the threads backend the iterations share the process's warnings filters (docs/how-it-works.md,
  ``backend="threads"``: "its iterations share all of this state"; CPython's ``catch_warnings`` is
  not thread-safe): a body that changes the filters runs there on one thread;
- a Dask worker keeps its own filters: ``simplefilter("always")`` set around the loop shows a
  warning once per chunk and place there, so those loops run one iteration per chunk on Dask;
  and ``"error"`` set around the loop raises only as the caller combines the chunk (past the
  body's ``except``, the chunk's other iterations run), so on Dask the loops whose filters make
  errors set them in the body, as the docs advise (``where="in body"``; both loops alike), as do
  the loops whose warnings the worker's own filters would decide otherwise (Dask's filters with a
  message pattern make ``warn(None)`` a TypeError);
- a program ``showwarning`` that raises does so as the chunk is combined, tracked state then
  holding the chunks before it.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

Loader = Callable[..., ModuleType]

ITEMS = list(range(40))

# The backends whose workers' warnings the caller shows (on the caller backend, those of the
# iterations past its first ones, given work enough: _work).
RELAYED = {"fork", "forkserver", "spawn", "caller", "dask"}


def _work(backend: str) -> int:
    """The body's work per iteration (``work(size)``): on the caller backend, enough that the
    workers take part (a loop of 40 quick iterations the caller ran alone now and then, its
    warnings then shown as the plain loop's, and now and then not)."""
    return 200_000 if backend == "caller" else 0


HEAD = """
import contextlib, io, sys, warnings
from paraloop import ParaLoop


def seen_as(seen, function):
    # What the program sees of each recorded warning: its text, its category's name, its line
    # (counted from the function's first line when it is a line of the function) and its file
    # ("<own>" for this module's).
    code = function.__code__
    first, own = code.co_firstlineno, code.co_filename
    return [
        (
            str(w.message),
            w.category.__name__,
            w.lineno - first if w.filename == own and w.lineno >= first else w.lineno,
            "<own>" if w.filename == own else w.filename,
        )
        for w in seen
    ]


def settle():
    # Python 3.12+ warns at a fork of a process with threads (a test runner's): paraloop's fork
    # workers, not the body's (docs/semantics.md).
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)


def work(size):
    # Fixed work, no sleep: 3.5 ms an iteration at size 200,000, so that the caller backend hands
    # the loop's later iterations to its workers (one of quick iterations it may run alone).
    return sum(range(size))


def failure(error):
    return ("raised", type(error).__name__, str(error))


def filters_around(where, setup, *args):
    # The program's filters, set around the loop; on Dask, where they are set in the body (see
    # program_filters), the interpreter's own around it, whatever the test run's (``pytest -W
    # ignore``): there the program's filters decide what the body's let through.
    if where == "around":
        setup(*args)
    else:
        warnings.resetwarnings()


@contextlib.contextmanager
def program_filters(where, setup, *args):
    # The program's filters: set around the loop (where == "around", by the caller of this), or,
    # on Dask, in the body (docs/semantics.md: a Dask worker keeps its own filters, "Set such
    # filters in the body if they matter there").
    if where == "around":
        yield
    else:
        with warnings.catch_warnings():
            setup(*args)
            yield


def to_stderr(message, category, filename, lineno, file=None, line=None):
    # The interpreter's own showwarning, as a program outside pytest has it (pytest records the
    # warnings of each test, its _showwarnmsg_impl a list's append).
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
"""

PARALLEL = "ParaLoop(items, num_processes=workers, chunksize=chunk)"


def _load(load_module: Loader, run: str, head: str = "") -> ModuleType:
    """A marked module holding ``run`` twice: ``run_plain`` over ``items``, ``run_parallel`` over
    ``ParaLoop(items, num_processes=workers, chunksize=chunk)``."""
    run = textwrap.dedent(run)
    return load_module(
        textwrap.dedent(HEAD)
        + textwrap.dedent(head)
        + run.replace("NAME", "plain").replace("ITERABLE", "items")
        + run.replace("NAME", "parallel").replace("ITERABLE", PARALLEL)
    )


def _options(backend: str, *, always: bool = False, body_filters: bool = False) -> dict[str, Any]:
    """The loop's options on ``backend``: one iteration per chunk on Dask for an "always" set
    around the loop (a Dask worker's own filters show a warning once per chunk and place); one
    thread on the threads backend for a body that changes the filters (the threads would share
    them)."""
    return {
        "workers": 1 if backend == "threads" and body_filters else None,
        "chunk": 1 if backend == "dask" and always else None,
    }


def _where(backend: str) -> str:
    """Where a loop whose filters must decide in the worker sets them: in the body on Dask (see
    above)."""
    return "in body" if backend == "dask" else "around"


def _finding(request: pytest.FixtureRequest, backend: str, reason: str) -> None:
    """A known paraloop bug on the backends whose workers' warnings the caller shows."""
    if backend in RELAYED:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# Fixed since the file was written (each failed first): warn_explicit without a registry under
# "default" and "module" (shown every time) and under "once" (CPython's onceregistry: once per text
# and class, whatever the file); a filter's module field matched against warn_explicit's module=
# on the processes backend; showwarning = 23 in a chunk the caller runs (CPython's TypeError text).
FINDING_1 = (
    "finding 1, known difference (docs/semantics.md): a warning noted in a registry of its own that "
    "is no module's (exec() in a fresh namespace, a fresh registry given to warn_explicit and kept "
    "in a name) shows at every iteration in the plain loop; the caller deduplicates it by place"
)
FINDING_3 = (
    "finding 3, known difference (docs/semantics.md): on Dask, the program's filters decide a "
    "worker's warning by the module its file names, not warn_explicit's module="
)


def _same(backend: str, plain: tuple[Any, list[Any]], parallel: tuple[Any, list[Any]]) -> None:
    """``(results, warnings seen)`` of both loops: equal; on threads the warnings in any order."""
    if backend == "threads":
        assert parallel[0] == plain[0]
        assert sorted(parallel[1], key=repr) == sorted(plain[1], key=repr)
    else:
        assert parallel == plain


# FilterTests.test_error, FilterTests.test_inheritance, WCmdLineTests.test_improper_input
# ("error::Warning::0"): a filter "error" for Warning makes a UserWarning subclass an exception,
# raised at its iteration; one the body catches is the body's.
ERROR = """
    class Sub(UserWarning):
        pass


    def error_filters():
        warnings.resetwarnings()
        warnings.filterwarnings("error", category=Warning)
        settle()
"""

ERROR_RUN = """
    def run_NAME(items, where, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            filters_around(where, error_filters)
            try:
                for i in ITERABLE:
                    with program_filters(where, error_filters):
                        if i % 10 == 3:
                            try:
                                warnings.warn(f"caught {i}", RuntimeWarning)
                            except RuntimeWarning as error:
                                out.append(failure(error))
                        if i == 26:
                            warnings.warn(f"FilterTests.test_inheritance {i}", Sub)
                        out.append(i)
            except UserWarning as error:
                out.append(failure(error))
        return out, seen_as(seen, run_NAME)
"""


def test_error_filter_raises_the_subclass_at_its_iteration(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, ERROR_RUN, ERROR)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, where)
    assert plain[0][-1] == ("raised", "Sub", "FilterTests.test_inheritance 26")
    assert ("raised", "RuntimeWarning", "caught 13") in plain[0]
    options = _options(every_backend, body_filters=where == "in body")
    _same(every_backend, plain, module.run_parallel(ITEMS, where, **options))


# FilterTests.test_error_after_default: under the default action the warning is printed once
# (its text and its source line on stderr); after filterwarnings("error", category=UserWarning),
# the same call raises.
SHOWN_THEN_ERROR = """
    MESSAGE = "FilterTests.test_ignore_after_default"


    def f():
        warnings.warn(MESSAGE, UserWarning)


    def error_filters():
        warnings.filterwarnings("error", category=UserWarning)
"""

SHOWN_THEN_ERROR_RUN = """
    def run_NAME(items, where, workers=None, chunk=None):
        out = []
        stderr = io.StringIO()
        with warnings.catch_warnings():
            warnings.resetwarnings()
            settle()
            warnings.showwarning = to_stderr
            with contextlib.redirect_stderr(stderr):
                for i in ITERABLE:
                    f()
                    out.append(i)
            filters_around(where, error_filters)
            try:
                for i in ITERABLE:
                    with program_filters(where, error_filters):
                        out.append(-i)
                        if i >= 12:
                            f()
            except UserWarning as error:
                out.append(failure(error))
        return out, stderr.getvalue()
"""


def test_error_after_default(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, SHOWN_THEN_ERROR_RUN, SHOWN_THEN_ERROR)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, where)
    assert plain[1].count("UserWarning: FilterTests.test_ignore_after_default") == 1
    assert "warnings.warn(MESSAGE, UserWarning)" in plain[1]
    assert plain[0][-1] == ("raised", "UserWarning", "FilterTests.test_ignore_after_default")
    options = _options(every_backend, body_filters=where == "in body")
    assert module.run_parallel(ITEMS, where, **options) == plain


# FilterTests.test_ignore_after_default and FilterTests.test_always_after_default: the same place
# warns in four loops: under the default action (shown once), the default action again (already
# shown), after filterwarnings("always") (every time), after filterwarnings("ignore") (never).
AFTER_DEFAULT = """
    def f():
        warnings.warn("FilterTests.test_always_after_ignore", UserWarning)
"""

AFTER_DEFAULT_RUN = """
    def run_NAME(items, workers=None, chunk=None):
        counts = []
        with warnings.catch_warnings(record=True) as seen:
            warnings.resetwarnings()
            settle()
            for i in ITERABLE:
                f()
            counts.append(len(seen))
            for i in ITERABLE:
                f()
            counts.append(len(seen))
            warnings.filterwarnings("always", category=UserWarning)
            for i in ITERABLE:
                f()
            counts.append(len(seen))
            warnings.filterwarnings("ignore", category=UserWarning)
            for i in ITERABLE:
                f()
            counts.append(len(seen))
        return counts, seen_as(seen, run_NAME)
"""


def test_ignore_and_always_after_default(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, AFTER_DEFAULT_RUN, AFTER_DEFAULT)
    plain = module.run_plain(ITEMS)
    assert plain[0] == [1, 1, 41, 41]
    _same(every_backend, plain, module.run_parallel(ITEMS, **_options(every_backend, always=True)))


# FilterTests.test_default, FilterTests.test_module, WarnTests.test_message: a UserWarning
# instance at one place, the same text at another place of the module and in another module,
# and a text that changes with the iteration: "default" shows one per place, "module" one per
# module and text, "once" one per text.
OTHER_MODULE = """
    import warnings


    def same_text():
        warnings.warn("FilterTests.test_default")
"""

REGISTRIES = """
    import {other} as other


    def same_text():
        warnings.warn("FilterTests.test_default")
"""

REGISTRIES_RUN = """
    def run_NAME(items, action, workers=None, chunk=None):
        with warnings.catch_warnings(record=True) as seen:
            warnings.resetwarnings()
            warnings.filterwarnings(action, category=UserWarning)
            settle()
            message = UserWarning("FilterTests.test_default")
            for i in ITERABLE:
                warnings.warn(message, UserWarning)
                same_text()
                other.same_text()
                warnings.warn(f"multi {i % 4}")
        return None, seen_as(seen, run_NAME)
"""


@pytest.mark.parametrize("action", ["default", "module", "once"])
def test_default_module_and_once_registries(load_module: Loader, every_backend: str, action: str) -> None:
    other = load_module(OTHER_MODULE, marked=False)
    module = _load(load_module, REGISTRIES_RUN, REGISTRIES.format(other=other.__name__))
    plain = module.run_plain(ITEMS, action)
    assert {"default": 7, "module": 6, "once": 6}[action] == len(plain[1])
    _same(every_backend, plain, module.run_parallel(ITEMS, action, **_options(every_backend)))


# FilterTests.test_once and _WarningsTests.test_onceregistry (warn_explicit without a registry
# under "once": one per text and class, whatever the file and line), _WarningsTests.
# test_default_action (warn_explicit with a fresh registry: shown each time, the registry then
# holding its key and "version"), warn_explicit without a registry under the default action
# (nothing to remember it by: shown each time; so under "module"), FilterTests.test_module_globals
# (module_globals={} under "always").
EXPLICIT = """
    ONCE = UserWarning("FilterTests.test_once")
    DEFAULT = UserWarning("defaultaction test")
"""

EXPLICIT_RUN = """
    def run_NAME(items, case, size, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            warnings.resetwarnings()
            settle()
            if case == "once without registry":
                warnings.filterwarnings("once", category=UserWarning)
            elif case == "module_globals":
                warnings.simplefilter("always", UserWarning)
            elif case == "module without registry":
                warnings.filterwarnings("module", category=UserWarning)
            for i in ITERABLE:
                work(size)
                if case == "once without registry":
                    warnings.warn_explicit(ONCE, UserWarning, f"test_warnings{i}.py", (42, 13)[i % 2])
                elif case == "fresh registry":
                    registry = {}
                    warnings.warn_explicit(DEFAULT, UserWarning, "<test>", 42, registry=registry)
                    out.append((len(registry), "version" in registry))
                elif case in ("default without registry", "module without registry"):
                    warnings.warn_explicit(DEFAULT, UserWarning, "<test>", 43)
                else:
                    warnings.warn_explicit("msg", UserWarning, "filename", 42, module_globals={})
        return out, seen_as(seen, run_NAME)
"""


@pytest.mark.parametrize(
    ("case", "shown"),
    [
        ("once without registry", 1),
        ("fresh registry", 40),
        ("default without registry", 40),
        ("module without registry", 40),
        ("module_globals", 40),
    ],
)
def test_warn_explicit_registries(
    load_module: Loader, every_backend: str, case: str, shown: int, request: pytest.FixtureRequest
) -> None:
    if case == "fresh registry":
        _finding(request, every_backend, FINDING_1)
    module = _load(load_module, EXPLICIT_RUN, EXPLICIT)
    size = _work(every_backend)
    plain = module.run_plain(ITEMS, case, size)
    assert len(plain[1]) == shown
    # Chunks of 4: several chunks, each starting with its worker's registries emptied.
    options = {"workers": None, "chunk": 1 if every_backend == "dask" and case == "module_globals" else 4}
    _same(every_backend, plain, module.run_parallel(ITEMS, case, size, **options))


# FilterTests.test_ordering, FilterTests.test_append_duplicate,
# FilterTests.test_filterwarnings_duplicate_filters: the first matching filter decides, an
# appended "error" behind an "ignore" never does, a duplicate appended does not reorder, and a
# filter added again moves to the front.
ORDERING = """
    def ordering_filters(case):
        warnings.resetwarnings()
        if case == "ordering":
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("error", category=UserWarning, append=True)
        elif case == "append duplicate":
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", append=True)
            warnings.simplefilter("ignore", append=True)
        else:
            warnings.filterwarnings("error", category=UserWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("error", category=UserWarning)
        settle()
"""

ORDERING_RUN = """
    def run_NAME(items, case, where, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            filters_around(where, ordering_filters, case)
            try:
                for i in ITERABLE:
                    with program_filters(where, ordering_filters, case):
                        if i % 8 == 1:
                            warnings.warn(f"not a UserWarning {i % 3}", RuntimeWarning)
                        if i >= 30:
                            warnings.warn("FilterTests.test_ordering", UserWarning)
                        out.append(i)
            except UserWarning as error:
                out.append(failure(error))
        return out, seen_as(seen, run_NAME)
"""


@pytest.mark.parametrize("case", ["ordering", "append duplicate", "promoted"])
def test_filter_order_and_append(load_module: Loader, every_backend: str, case: str) -> None:
    module = _load(load_module, ORDERING_RUN, ORDERING)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, case, where)
    assert (plain[0][-1] == ("raised", "UserWarning", "FilterTests.test_ordering")) == (case == "promoted")
    options = _options(every_backend, body_filters=where == "in body")
    _same(every_backend, plain, module.run_parallel(ITEMS, case, where, **options))


# FilterTests.test_message_matching and FilterTests.test_filterwarnings ("hex*"): a filter's
# message is a case-insensitive regular expression matched at the text's start; the rest of the
# UserWarnings are ignored, a RuntimeWarning falls to the default action.
MATCHING = """
    TEXTS = ["match", "match prefix", "suffix match", "something completely different", "hex/oct", "MATCH upper"]


    def matching_filters():
        warnings.resetwarnings()
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("error", "match", UserWarning)
        warnings.filterwarnings("error", "hex*", Warning)
        settle()
"""

MATCHING_RUN = """
    def run_NAME(items, where, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            filters_around(where, matching_filters)
            for i in ITERABLE:
                with program_filters(where, matching_filters):
                    text = TEXTS[i % len(TEXTS)]
                    try:
                        warnings.warn(text)
                        out.append(("passed", text))
                    except UserWarning as error:
                        out.append(failure(error))
                    warnings.warn(f"nonmatching text {i % 2}", RuntimeWarning)
        return out, seen_as(seen, run_NAME)
"""


def test_message_matching(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, MATCHING_RUN, MATCHING)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, where)
    assert plain[0][:6] == [
        ("raised", "UserWarning", "match"),
        ("raised", "UserWarning", "match prefix"),
        ("passed", "suffix match"),
        ("passed", "something completely different"),
        ("raised", "UserWarning", "hex/oct"),
        ("raised", "UserWarning", "MATCH upper"),
    ]
    # Around the loop, one per text; in the body, whose catch_warnings makes the registries
    # forget, one per iteration.
    assert len(plain[1]) == (2 if where == "around" else 40)
    options = _options(every_backend, body_filters=where == "in body")
    _same(every_backend, plain, module.run_parallel(ITEMS, where, **options))


# FilterTests.test_catchwarnings_with_simplefilter_ignore and
# FilterTests.test_catchwarnings_with_simplefilter_error (catch_warnings(action=...), 3.11): in
# the body, under a program that made every warning an error, catch_warnings(action="ignore")
# drops a warning, and catch_warnings(action="error", category=FutureWarning) raises only
# FutureWarning, the other warning shown (and shown again at each iteration: each
# catch_warnings makes the registries forget).
CATCH_ACTION = """
    def every_warning_an_error():
        warnings.simplefilter("error")
        settle()
"""

CATCH_ACTION_RUN = """
    def run_NAME(items, where, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            filters_around(where, every_warning_an_error)
            for i in ITERABLE:
                with program_filters(where, every_warning_an_error):
                    with warnings.catch_warnings(action="ignore"):
                        warnings.warn("This will be ignored")
                    with warnings.catch_warnings(action="error", category=FutureWarning):
                        warnings.simplefilter("default", UserWarning)
                        warnings.warn(f"Other types of warnings are not errors {i % 3}")
                        try:
                            warnings.warn(FutureWarning(f"msg {i % 5}"))
                        except FutureWarning as error:
                            out.append(failure(error))
        return out, seen_as(seen, run_NAME)
"""


@pytest.mark.skipif(sys.version_info < (3, 11), reason="catch_warnings(action=...) is Python 3.11's")
def test_catch_warnings_with_an_action_in_the_body(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, CATCH_ACTION_RUN, CATCH_ACTION)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, where)
    assert len(plain[0]) == len(plain[1]) == 40
    options = _options(every_backend, body_filters=True)
    _same(every_backend, plain, module.run_parallel(ITEMS, where, **options))


# WarnTests.test_stacklevel and WarnTests.test_filename (with test_warnings/data/stacklevel.py's
# inner and outer, under "once" as warnings_state sets it): stacklevel 1 names the helper's file,
# 2 from inner and 3 from outer the body's line, 2 from outer the helper's, 9999 "sys".
LEVELS = """
    import warnings


    def outer(message, stacklevel=1):
        inner(message, stacklevel)


    def inner(message, stacklevel=1):
        warnings.warn(message, stacklevel=stacklevel)
"""

STACKLEVEL = """
    import {levels} as warning_tests
"""

STACKLEVEL_RUN = """
    def run_NAME(items, workers=None, chunk=None):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("once")
            settle()
            for i in ITERABLE:
                warning_tests.inner(f"spam3 {i % 4}", stacklevel=1)
                warning_tests.outer(f"spam4 {i % 4}", stacklevel=1)
                warning_tests.inner(f"spam5 {i % 4}", stacklevel=2)
                warning_tests.outer(f"spam6 {i % 4}", stacklevel=2)
                warning_tests.outer(f"spam6.5 {i % 4}", stacklevel=3)
                warning_tests.inner(f"spam7 {i % 4}", stacklevel=9999)
        return None, seen_as(seen, run_NAME)
"""


def test_stacklevel(load_module: Loader, every_backend: str) -> None:
    levels = load_module(LEVELS, marked=False)
    module = _load(load_module, STACKLEVEL_RUN, STACKLEVEL.format(levels=levels.__name__))
    plain = module.run_plain(ITEMS)
    files = {text.split()[0]: file for text, _, _, file in plain[1]}
    # A stacklevel past the outermost frame: "sys", "<sys>" since Python 3.13.
    assert files.pop("spam7") == ("<sys>" if sys.version_info >= (3, 13) else "sys")
    assert files == {
        "spam3": levels.__file__,
        "spam4": levels.__file__,
        "spam5": "<own>",
        "spam6": levels.__file__,
        "spam6.5": "<own>",
    }
    assert len(plain[1]) == 24
    _same(every_backend, plain, module.run_parallel(ITEMS, **_options(every_backend)))


# WarnTests.test_exec_filename: code compiled with the file name "<warnings-test>" and run by
# exec() warns with that file name; in the module's namespace its place is remembered by the
# module's registry, in a fresh namespace (a fresh registry each time) it is not.
EXEC = """
    CODE = compile("import warnings\\nwarnings.warn('hello', UserWarning)", "<warnings-test>", "exec")
"""

EXEC_RUN = """
    def run_NAME(items, action, namespace, size, workers=None, chunk=None):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter(action, category=UserWarning)
            settle()
            for i in ITERABLE:
                work(size)
                if namespace == "module":
                    exec(CODE, globals())
                else:
                    exec(CODE, {})
        return None, seen_as(seen, run_NAME)
"""


@pytest.mark.parametrize(
    ("action", "namespace", "shown"),
    [("always", "module", 40), ("default", "module", 1), ("default", "fresh", 40)],
)
def test_exec_filename(
    load_module: Loader,
    every_backend: str,
    action: str,
    namespace: str,
    shown: int,
    request: pytest.FixtureRequest,
) -> None:
    if namespace == "fresh":
        _finding(request, every_backend, FINDING_1)
    module = _load(load_module, EXEC_RUN, EXEC)
    size = _work(every_backend)
    plain = module.run_plain(ITEMS, action, namespace, size)
    assert len(plain[1]) == shown
    assert {file for *_, file in plain[1]} == {"<warnings-test>"}
    options = _options(every_backend, always=action == "always")
    _same(every_backend, plain, module.run_parallel(ITEMS, action, namespace, size, **options))


# WarnTests.test_warn_nonstandard_types (warn(Warning), warn(None), warn(42): a UserWarning of
# that object) and WarnTests.test_warning_classes (a Warning subclass; category=None is
# UserWarning; a category that is no Warning subclass, or an instance, raises TypeError), and a
# Warning instance whose own class wins over the category given.
CLASSES = """
    class MyWarningClass(Warning):
        pass


    class NonWarningSubclass:
        pass


    def classes_filters(action):
        warnings.resetwarnings()
        warnings.filterwarnings(action)
        # Not settle(): a filter with a message pattern fails on warn(Warning) and warn(None),
        # whose text is the object itself ("expected string or bytes-like object").
        warnings.filterwarnings("ignore", category=DeprecationWarning)
"""

CLASSES_RUN = """
    def run_NAME(items, action, where, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            filters_around(where, classes_filters, action)
            for i in ITERABLE:
                with program_filters(where, classes_filters, action):
                    warnings.warn((Warning, None, 42)[i % 3])
                    warnings.warn("good warning category", MyWarningClass)
                    warnings.warn("good warning category", None)
                    warnings.warn(UserWarning(f"an instance {i % 2}"), DeprecationWarning)
                    for bad in ("", NonWarningSubclass, MyWarningClass()):
                        try:
                            warnings.warn("bad warning category", bad)
                        except TypeError as error:
                            out.append(failure(error))
        return out, seen_as(seen, run_NAME)
"""


@pytest.mark.parametrize("action", ["default", "once"])
def test_nonstandard_types_and_warning_classes(load_module: Loader, every_backend: str, action: str) -> None:
    module = _load(load_module, CLASSES_RUN, CLASSES)
    where = _where(every_backend)
    plain = module.run_plain(ITEMS, action, where)
    assert len(plain[0]) == 120
    assert ("<class 'Warning'>", "UserWarning") in {seen[:2] for seen in plain[1]}
    options = _options(every_backend, body_filters=where == "in body")
    _same(every_backend, plain, module.run_parallel(ITEMS, action, where, **options))


# WarnTests.test_bad_str: a Warning whose __str__ raises ValueError makes warn() raise it, at its
# iteration.
BAD_STR = """
    class BadStrWarning(Warning):
        def __str__(self):
            return "A bad formatted string %(err)" % {"err": "there is no %(err)s"}
"""

BAD_STR_RUN = """
    def run_NAME(items, workers=None, chunk=None):
        out = []
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            settle()
            try:
                for i in ITERABLE:
                    warnings.warn(f"fine {i % 2}")
                    if i == 17:
                        warnings.warn(BadStrWarning())
                    out.append(i)
            except ValueError as error:
                out.append(failure(error))
        return out, seen_as(seen, run_NAME)
"""


def test_bad_str(load_module: Loader, every_backend: str) -> None:
    module = _load(load_module, BAD_STR_RUN, BAD_STR)
    plain = module.run_plain(ITEMS)
    assert plain[0][-1][:2] == ("raised", "ValueError")
    assert len(plain[1]) == 18
    options = _options(every_backend, always=True)
    _same(every_backend, plain, module.run_parallel(ITEMS, **options))


# _WarningsTests.test_showwarning_not_callable (showwarning = print; showwarning = 23 raises
# TypeError, "warnings.showwarning() must be set to a function or method"),
# CatchWarningTests.test_record_override_showwarning_before (a showwarning set before
# catch_warnings(record=True) gets nothing) and test_record_override_showwarning_inside (one set
# inside it gets everything, the record nothing).
SHOWWARNING = """
    def f(i):
        warnings.warn(f"Warning! {i % 3}")


    def my_logger(message, category, filename, lineno, file=None, line=None):
        MY_LOG.append((str(message), category.__name__, filename == __file__, lineno))


    MY_LOG = []
"""

SHOWWARNING_RUN = """
    def run_NAME(items, case, workers=None, chunk=None):
        out = []
        MY_LOG.clear()
        stdout = io.StringIO()
        log = None
        with warnings.catch_warnings():
            if case == "before":
                warnings.showwarning = my_logger
            with warnings.catch_warnings(record=case in ("before", "inside")) as log:
                warnings.simplefilter("always")
                settle()
                if case == "print":
                    warnings.showwarning = print
                elif case == "inside":
                    warnings.showwarning = my_logger
                elif case == "23":
                    warnings.showwarning = 23
                with contextlib.redirect_stdout(stdout):
                    try:
                        for i in ITERABLE:
                            print(f"iteration {i}")
                            out.append(i)
                            if case != "23" or i % 10 == 0:
                                f(i)
                    except TypeError as error:
                        out.append(failure(error))
        return out, (stdout.getvalue().splitlines(), list(MY_LOG), seen_as(log or [], run_NAME))
"""


@pytest.mark.parametrize("case", ["print", "23", "before", "inside"])
def test_showwarning_replaced(
    load_module: Loader, every_backend: str, case: str, request: pytest.FixtureRequest
) -> None:
    module = _load(load_module, SHOWWARNING_RUN, SHOWWARNING)
    plain = module.run_plain(ITEMS, case)
    printed, logged, recorded = plain[1]
    assert len(printed) == {"print": 80, "23": 1}.get(case, 40)
    assert len(logged) == (40 if case == "inside" else 0)
    assert len(recorded) == (40 if case == "before" else 0)
    parallel = module.run_parallel(ITEMS, case, **_options(every_backend, always=True))
    if case == "23":
        assert plain[0] == [
            0,
            ("raised", "TypeError", "warnings.showwarning() must be set to a function or method"),
        ]
        # A program showwarning that raises does so as the chunk is combined: the loop's tracked
        # state then holds the chunks before it, not that chunk's iterations before the warning
        # (docs/semantics.md, "Warnings from worker processes"): the plain loop's exception, after
        # a part of what the plain loop appended.
        assert parallel[0][-1] == plain[0][-1]
        assert parallel[0][:-1] == plain[0][: len(parallel[0]) - 1]
        plain, parallel = (None, plain[1]), (None, parallel[1])
    if every_backend == "threads":
        assert [sorted(part) for part in parallel[1]] == [sorted(part) for part in plain[1]]
        assert parallel[0] == plain[0]
    else:
        assert parallel == plain


# WarningsDisplayTests.test_formatwarning_override (a program's formatwarning gets the warning's
# line as a positional argument, None here) and _WarningsTests.test_show_warning_output (the
# default showwarning writes "file:line: category: text" and the source line to sys.stderr), into
# a replaced stderr, among the body's own lines.
FORMAT = """
    def f(i):
        warnings.warn(f"test show_warning {i % 3}")


    def myformatwarning(message, category, filename, lineno, text):
        return f"m={message}:c={category}:f={filename}:l={lineno}:t={text}\\n"
"""

FORMAT_RUN = """
    def run_NAME(items, case, workers=None, chunk=None):
        stderr = io.StringIO()
        original = warnings.formatwarning
        with warnings.catch_warnings():
            warnings.simplefilter("always" if case == "override" else "default")
            settle()
            warnings.showwarning = to_stderr
            if case == "override":
                warnings.formatwarning = myformatwarning
            try:
                with contextlib.redirect_stderr(stderr):
                    for i in ITERABLE:
                        print(f"before {i}", file=sys.stderr)
                        f(i)
            finally:
                warnings.formatwarning = original
        return None, stderr.getvalue().splitlines()
"""


@pytest.mark.parametrize("case", ["override", "default"])
def test_formatwarning_and_show_warning_output(load_module: Loader, every_backend: str, case: str) -> None:
    module = _load(load_module, FORMAT_RUN, FORMAT)
    plain = module.run_plain(ITEMS, case)
    lines = plain[1]
    if case == "override":
        assert len(lines) == 80
        line = module.f.__code__.co_firstlineno + 1
        assert (
            lines[1] == f"m=test show_warning 0:c=<class 'UserWarning'>:f={module.__file__}:l={line}:t=None"
        )
    else:
        assert len(lines) == 40 + 2 * 3
        assert lines[2] == '  warnings.warn(f"test show_warning {i % 3}")'
    options = _options(every_backend, always=case == "override")
    _same(every_backend, plain, module.run_parallel(ITEMS, case, **options))


# FilterTests.test_filterwarnings (a filter's module field) with warn_explicit's module argument
# (WarnTests.test_warn_explicit_*): the filter matches the module the warning names, not its
# file's: "always" for the module "mylib" and below, "ignore" for "mylib.quiet".
MODULE_PATTERN_RUN = """
    def run_NAME(items, size, workers=None, chunk=None):
        with warnings.catch_warnings(record=True) as seen:
            warnings.resetwarnings()
            warnings.filterwarnings("always", category=UserWarning, module="mylib")
            warnings.filterwarnings("ignore", category=UserWarning, module="mylib.quiet")
            settle()
            for i in ITERABLE:
                work(size)
                warnings.warn_explicit(f"from mylib {i % 2}", UserWarning, "generated.py", 7, module="mylib.sub")
                warnings.warn_explicit("quiet", UserWarning, "generated.py", 8, module="mylib.quiet")
        return None, seen_as(seen, run_NAME)
"""


def test_a_filter_s_module_field_matches_warn_explicit_s_module(
    load_module: Loader, every_backend: str, request: pytest.FixtureRequest
) -> None:
    if every_backend == "dask":
        _finding(request, every_backend, FINDING_3)
    module = _load(load_module, MODULE_PATTERN_RUN)
    size = _work(every_backend)
    plain = module.run_plain(ITEMS, size)
    assert len(plain[1]) == 40
    options = _options(every_backend, always=True)
    _same(every_backend, plain, module.run_parallel(ITEMS, size, **options))
