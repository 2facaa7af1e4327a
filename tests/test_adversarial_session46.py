"""Adversarial tests of session 46's paired chunks on the threads backend (d275b24): with more
threads than CPUs and no ``chunksize=``, a chunk of a sequence of known length holds two
iterations at least while more than twice the threads' number of items are left.

Each finding is a strict xfail asserting the plain loop's (or the contract's) behaviour; the
attacks that held are ordinary tests guarding it.  ``MANY`` threads are more than this machine's
CPUs, so chunks are paired from the first one on: chunk ``k`` holds items ``2k`` and ``2k + 1``
while more than ``2 * MANY`` items are left (see ``test_chunks_are_pairs_with_more_threads_than_cpus``).
Iterations sleep (their work) so that slow ones get chunks of one item but for the pairing.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import interrupt_like_a_terminal
from plain_loop import run_plain

import paraloop
from paraloop.cpus import available_cpus

Loader = Callable[..., ModuleType]
MANY = available_cpus() + 2
# Items enough that the first chunks are pairs (more than 2 * MANY left) and the last 2 * MANY single.
ITEMS = 2 * MANY + 40


def _load(load_module: Loader, source: str, threads: int) -> ModuleType:
    return load_module(textwrap.dedent(source).replace("THREADS", str(threads)).replace("ITEMS", str(ITEMS)))


def _plain(source: str) -> Any:
    return run_plain(textwrap.dedent(source).replace("THREADS", "2").replace("ITEMS", str(ITEMS)))["result"]


def _paraloop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("paraloop-thread")]


# Precondition: the loops below really run in pairs ------------------------------------------------


def test_chunks_are_pairs_with_more_threads_than_cpus(load_module: Loader) -> None:
    """Items 2k and 2k+1 run in one thread (one chunk) while many are left: the pairing the other
    tests attack is there (with as many threads as CPUs each slow iteration is a chunk of its own)."""
    module = _load(
        load_module,
        """
        import threading, time
        from paraloop import ParaLoop
        ran = []
        for i in ParaLoop(range(ITEMS), num_processes=THREADS, backend="threads"):
            time.sleep(0.03)
            ran.append(threading.get_ident())
        """,
        MANY,
    )
    paired = (ITEMS - 2 * MANY) // 2
    assert all(module.ran[2 * k] == module.ran[2 * k + 1] for k in range(paired))
    assert len(module.ran) == ITEMS


# Findings ---------------------------------------------------------------------------------------


# finding 1: after an iteration past timeout=, the tracked state lacked its pair partner's update
# (fixed: no pairs in a loop with a timeout); the same loss with chunks of two on processes remains
def test_a_timeout_keeps_the_iteration_before_it_in_its_pair(load_module: Loader) -> None:
    """Iteration 21 runs past timeout=0.5; 20 finished before it started.  The sequential backend
    (and two threads, whose slow iterations are chunks of one) leave done == [0..20] after the
    IterationTimeoutError; with many threads pairs made it [0..19]: iteration 20's append was
    dropped with its chunk.  A loop with a timeout is not paired."""
    module = _load(
        load_module,
        """
        import time
        from paraloop import ParaLoop
        done = []
        def run(threads):
            for i in ParaLoop(range(ITEMS), num_processes=threads, backend="threads", timeout=0.5):
                time.sleep(1.5 if i == 21 else 0.03)
                done.append(i)
        """,
        MANY,
    )
    with pytest.raises(paraloop.IterationTimeoutError, match=r"iteration 21 \(item 21\)"):
        module.run(MANY)
    assert module.done == list(range(21))


@pytest.mark.xfail(
    strict=True,
    reason="finding 1 (before pairs): a timeout drops the iterations before it in its chunk on processes",
)
def test_a_timeout_keeps_the_iterations_before_it_in_its_chunk_on_processes(load_module: Loader) -> None:
    """The same loss where a chunk holds several iterations on worker processes (chunksize=2 here;
    fast iterations get large chunks by default): the worker is stopped at the deadline and its
    chunk's outcome, with the iterations before the slow one, is lost: done == [0..19], where the
    plain loop stopped by the timeout had [0..20] (CONTRACT 5: tracked state as the sequential
    loop left it at that point)."""
    module = _load(
        load_module,
        """
        import time
        from paraloop import ParaLoop
        done = []
        def run():
            for i in ParaLoop(range(40), num_processes=2, chunksize=2, timeout=0.5):
                time.sleep(1.5 if i == 21 else 0.01)
                done.append(i)
        """,
        2,
    )
    with pytest.raises(paraloop.IterationTimeoutError, match=r"iteration 21 \(item 21\)"):
        module.run()
    assert module.done == list(range(21))


def test_a_timeout_with_chunks_of_one_keeps_every_iteration_before_it(load_module: Loader) -> None:
    """Two threads (no pairs): done == [0..20] after the timeout at 21, as sequentially."""
    module = _load(
        load_module,
        """
        import time
        from paraloop import ParaLoop
        done = []
        def run(backend):
            for i in ParaLoop(range(ITEMS), num_processes=2, backend=backend, timeout=0.5):
                time.sleep(1.5 if i == 21 else 0.03)
                done.append(i)
        """,
        2,
    )
    with pytest.raises(paraloop.IterationTimeoutError, match=r"iteration 21 \(item 21\)"):
        module.run("threads")
    assert module.done == list(range(21))


# finding 2: an iteration that updates the next item (reached through its own) gives a silent wrong result
@pytest.mark.xfail(strict=True, reason="finding 2: an item holding the next item: silent wrong result")
def test_an_iteration_updating_the_item_its_item_holds_is_plain_or_refused(load_module: Loader) -> None:
    """A linked list's nodes as items, each iteration adding its node's value into the next node:
    the plain loop gives the running sum [1, 2, ..., 12].  docs/semantics.md: "When another item in
    flight is the same object, holds it ... the loop is refused, naming both iterations".  On
    threads (many, paired; two as well) the user gets other numbers, silently; on processes
    [1, 1, ..., 1]: every change to the next node is lost."""
    source = """
        import time
        from paraloop import ParaLoop
        class Node:
            def __init__(self):
                self.v, self.next = 1, None
        nodes = [Node() for _ in range(12)]
        for a, b in zip(nodes, nodes[1:]):
            a.next = b
        for n in ParaLoop(nodes, num_processes=THREADS, backend="threads"):
            v = n.v
            time.sleep(0.1)
            if n.next is not None:
                n.next.v += v
        result = [n.v for n in nodes]
    """
    assert _plain(source) == list(range(1, 13))
    try:
        result = _load(load_module, source, MANY).result
    except paraloop.ParaLoopError:
        return
    assert result == list(range(1, 13))


# finding 3: locals() shows no value of a name the previous iteration bound
@pytest.mark.xfail(strict=True, reason="finding 3: locals() misses the previous iteration's binding")
def test_locals_in_the_body_sees_the_previous_iterations_binding_or_is_refused(load_module: Loader) -> None:
    """docs/semantics.md: locals() in a body in a function sees the function's names "as the plain
    loop's frame holds them".  The plain frame holds prev = i - 1 when iteration i reads it; the
    user gets 0 (prev unbound) for most iterations, and with pairs every second one right, silently
    (two threads, processes and even backend="sequential": all 0)."""
    source = """
        import time
        from paraloop import ParaLoop
        def main():
            out = []
            for i in ParaLoop(range(1, ITEMS + 1), num_processes=THREADS, backend="threads"):
                time.sleep(0.02)
                out.append(locals().get("prev", 0))
                prev = i
            return out
        result = main()
    """
    assert _plain(source) == list(range(ITEMS))
    try:
        result = _load(load_module, source, MANY).result
    except paraloop.ParaLoopError:
        return
    assert result == list(range(ITEMS))


# finding 4 (before pairs; fixed): random.seed(i) at the start of each iteration mixed on threads
@pytest.mark.parametrize("threads", [2, MANY])
def test_seeding_each_iteration_gives_the_plain_draws_on_threads_or_is_refused(
    load_module: Loader, threads: int
) -> None:
    """docs/troubleshooting.md advises random.seed(seed + i) at the start of each iteration; the
    processes and sequential backends then give the plain draws.  On threads (paired or two)
    another iteration's seed landed between an iteration's seed and its draw: other numbers,
    silently (CONTRACT 3 and 7: process-wide state, the same result on every backend).  Now
    refused on threads, naming the change and its line, with advice that works."""
    source = """
        import random, time
        from paraloop import ParaLoop
        out = []
        for i in ParaLoop(range(ITEMS), num_processes=THREADS, backend="threads"):
            random.seed(i)
            time.sleep(0.03)
            out.append(random.random())
        result = out
    """
    expected = _plain(source)
    with pytest.raises(paraloop.ParaLoopError) as refused:
        _load(load_module, source, threads)
    message = str(refused.value)
    assert ", line 6: the body changes the global random generator (line 7: random.seed(i))" in message
    assert "rng = random.Random(i)" in message and "backend='sequential'" in message
    # The advice: a generator of each iteration's own, or sequentially.
    own = source.replace("random.seed(i)", "rng = random.Random(i)").replace(
        "random.random()", "rng.random()"
    )
    assert _load(load_module, own, threads).result == _plain(own)
    sequential = source.replace('backend="threads"', 'backend="sequential"')
    assert _load(load_module, sequential, threads).result == expected


# Attacks that held ------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [10, 11])
def test_a_break_in_a_pair_keeps_the_plain_state(load_module: Loader, stop: int) -> None:
    """A break in a pair's first (10) or second (11) iteration: the plain state, the target's
    value, no else, with many threads (pairs), 64 and two."""
    module = _load(
        load_module,
        f"""
        import time
        from paraloop import ParaLoop
        def run(threads):
            out = []
            for i in ParaLoop(range(ITEMS), num_processes=threads, backend="threads"):
                time.sleep(0.3 if i == {stop} + 1 else 0.03)
                out.append(i)
                if i == {stop}:
                    break
            else:
                out.append("else")
            return out, i
        """,
        MANY,
    )
    for threads in (MANY, 64, 2):
        assert module.run(threads) == (list(range(stop + 1)), stop)


def test_a_breaking_iterations_partner_never_starts(load_module: Loader, tmp_path: Path) -> None:
    """Iteration 10 (first of the pair [10, 11]) breaks; 11 must never start, during the loop nor
    after it (iterations already running elsewhere may finish, no other).  Starts are marked in a
    file (an untracked effect)."""
    marks = tmp_path / "marks.txt"
    module = _load(
        load_module,
        f"""
        import time
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(ITEMS), num_processes=THREADS, backend="threads"):
                with open({str(marks)!r}, "a") as marks:
                    marks.write(f"{{i}}\\n")
                time.sleep(0.2 if i == 10 else 0.05)
                if i == 10:
                    break
            return i
        """,
        MANY,
    )
    assert module.run() == 10
    deadline = time.monotonic() + 10
    while _paraloop_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _paraloop_threads()
    started = [int(line) for line in marks.read_text().split()]
    assert 10 in started and 9 in started
    assert 11 not in started


@pytest.mark.parametrize("bad", [20, 21, 2 * MANY + 38])
def test_an_exception_in_a_pair_names_its_iteration_and_keeps_the_state_before_it(
    load_module: Loader, bad: int
) -> None:
    """An exception in a pair's first or second iteration, or in one of the last single ones: its
    own type, a note naming the iteration and item, the state of the iterations before it."""
    module = _load(
        load_module,
        f"""
        import time
        from paraloop import ParaLoop
        done = []
        def run():
            for i in ParaLoop(list(range(100, 100 + ITEMS)), num_processes=THREADS, backend="threads"):
                time.sleep(0.03)
                if i == 100 + {bad}:
                    raise KeyError(i)
                done.append(i)
        """,
        MANY,
    )
    with pytest.raises(KeyError) as caught:
        module.run()
    assert f"iteration {bad} (item {100 + bad})" in "".join(getattr(caught.value, "__notes__", []))
    assert module.done == list(range(100, 100 + bad))


def test_the_earliest_exception_wins_over_a_later_quicker_one(load_module: Loader) -> None:
    """Iteration 20 is slow, 21 (its partner) raises after it, 22 and 30 raise at once: the plain
    loop's ValueError(21), with 0..20 done."""
    module = _load(
        load_module,
        """
        import time
        from paraloop import ParaLoop
        done = []
        def run():
            for i in ParaLoop(range(ITEMS), num_processes=THREADS, backend="threads"):
                time.sleep(0.4 if i == 20 else 0.02)
                if i in (21, 22, 30):
                    raise ValueError(i)
                done.append(i)
        """,
        MANY,
    )
    with pytest.raises(ValueError, match="21"):
        module.run()
    assert module.done == list(range(21))


def test_return_in_a_pair_returns_the_earliest(load_module: Loader) -> None:
    """return in the second of a slow pair beats a quicker later return: the plain value."""
    module = _load(
        load_module,
        """
        import time
        from paraloop import ParaLoop
        def run():
            for i in ParaLoop(range(3, 3 * ITEMS, 3), num_processes=THREADS, backend="threads"):
                time.sleep(0.4 if i == 60 else 0.02)
                if i in (63, 66, 90):
                    return i
            return None
        """,
        MANY,
    )
    assert module.run() == 63


def test_else_and_negative_steps(load_module: Loader) -> None:
    """A range with a negative step, no break: the else runs, the target is the last item."""
    source = """
        import time
        from paraloop import ParaLoop
        n = 0
        for i in ParaLoop(range(3 * ITEMS, -3, -3), num_processes=THREADS, backend="threads"):
            time.sleep(0.02)
            n += i
        else:
            n = -n
        result = n, i
    """
    assert _load(load_module, source, MANY).result == _plain(source)


def test_timeout_with_many_threads_keeps_the_state_before_it(load_module: Loader, tmp_path: Path) -> None:
    """Iteration 20 runs past timeout= on many threads (a loop with a timeout is not paired, so 21
    may run beside it, as the contract allows): IterationTimeoutError naming it, the state of
    0..19, and every thread gone once 20 finishes in the background (starts marked in a file, an
    untracked effect)."""
    marks = tmp_path / "marks.txt"
    module = _load(
        load_module,
        f"""
        import time
        from paraloop import ParaLoop
        done = []
        def run():
            for i in ParaLoop(range(ITEMS), num_processes=THREADS, backend="threads", timeout=0.5):
                with open({str(marks)!r}, "a") as marks:
                    marks.write(f"{{i}}\\n")
                time.sleep(1.5 if i == 20 else 0.03)
                done.append(i)
        """,
        MANY,
    )
    with pytest.raises(paraloop.IterationTimeoutError, match=r"iteration 20 \(item 20\)"):
        module.run()
    assert module.done == list(range(20))
    deadline = time.monotonic() + 10
    while _paraloop_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _paraloop_threads()
    started = [int(line) for line in marks.read_text().split()]
    assert 20 in started


def test_a_generator_expression_read_halfway_leaves_no_thread(load_module: Loader) -> None:
    """(f(x) for x in ParaLoop(...)) read 7 items and closed, 64 and 200 threads: the plain items,
    and every thread ends."""
    module = load_module(
        """
        import time
        from paraloop import ParaLoop
        def run(threads):
            g = (time.sleep(0.02) or i * 2 for i in ParaLoop(range(1000), num_processes=threads, backend="threads"))
            got = [next(g) for _ in range(7)]
            g.close()
            return got
        """
    )
    for threads in (MANY, 64, 200):
        assert module.run(threads) == list(range(0, 14, 2))
        deadline = time.monotonic() + 10
        while _paraloop_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _paraloop_threads()


def test_variables_and_inferred_reductions_in_pairs(load_module: Loader) -> None:
    """Variables of several strategies and inferred reductions (float sums replayed, per-key and
    per-index sums, element updates at the loop's own index): the sequential backend's values."""
    source = """
        import collections, time
        from paraloop import ParaLoop, Variable, aggregation_strategies as s
        def run(backend, threads):
            a = Variable(0.1, aggregation_strategy=s.Sum)
            b = Variable([], aggregation_strategy=s.Concatenate)
            c = Variable({}, aggregation_strategy=s.Merge)
            e = Variable(10**9, aggregation_strategy=s.Min)
            f = Variable(set(), aggregation_strategy=s.Union)
            g = Variable(1.0, aggregation_strategy=s.Product)
            total = 0.1
            counts = collections.Counter()
            hist = [0] * 5
            x = [float(k) for k in range(ITEMS)]
            for i in ParaLoop(range(ITEMS), num_processes=threads, backend=backend):
                time.sleep(0.02)
                a += i * 0.1 + 1e-17
                b.append(i)
                c[i % 7] = i
                e = min(e, (i * 37) % 41)
                f.add(i % 5)
                g *= 1.0 + i * 1e-3
                total += i * 0.1
                counts[i % 3] += 1
                hist[i % 5] += 1
                x[i] = x[i] / 3 + 1
            return [getattr(v, "value", v) for v in (a, b, c, e, f, g, total, counts, hist, x)]
    """
    module = _load(load_module, source, MANY)
    assert module.run("threads", MANY) == module.run("sequential", 1)


def test_a_repeated_element_inside_one_pair_is_refused(load_module: Loader) -> None:
    """x[i] = x[i] * 2 over items 0 and -4 of a list of 4 (one element, in one pair): refused, as
    with chunks of one (never a result that depends on the pairing)."""
    source = """
        import time
        from paraloop import ParaLoop
        def run(threads):
            x = [1, 2, 3, 4]
            for i in ParaLoop([0, -4] + [1, 2] * ITEMS, num_processes=threads, backend="threads"):
                time.sleep(0.01)
                x[i] = x[i] * 2
            return x
    """
    module = _load(load_module, source, MANY)
    for threads in (MANY, 2):
        with pytest.raises(paraloop.ParaLoopError, match="updated by two iterations"):
            module.run(threads)


def test_list_and_tuple_subclasses_whose_len_lies(load_module: Loader) -> None:
    """A tuple subclass whose __len__ says 3 and __getitem__ 999, a list subclass whose __len__
    says 1000: iterated as the plain loop does (their stored items), a break in a pair."""
    source = """
        import time
        from paraloop import ParaLoop
        class T(tuple):
            def __len__(self):
                return 3
            def __getitem__(self, k):
                return 999
        class L(list):
            def __len__(self):
                return 1000
        seen = []
        for x in ParaLoop(T(range(ITEMS)), num_processes=THREADS, backend="threads"):
            time.sleep(0.01)
            seen.append(x)
        for x in ParaLoop(L(range(ITEMS)), num_processes=THREADS, backend="threads"):
            time.sleep(0.01)
            seen.append(-x)
            if x == 17:
                break
        result = seen, x
    """
    assert _load(load_module, source, MANY).result == _plain(source)


@pytest.mark.parametrize(
    "change",
    ["L.append(100)", "L[v + 1] = -1", "M = L; del M[30:]"],
)
def test_a_body_changing_the_iterated_list_is_refused_with_any_thread_count(
    load_module: Loader, change: str
) -> None:
    """The body grows, writes or shrinks the list it iterates (the plain loop sees the change):
    refused with many threads (pairs) as with two, never a result."""
    source = f"""
        import time
        from paraloop import ParaLoop
        def run(threads):
            L = list(range(ITEMS))
            for v in ParaLoop(L, num_processes=threads, backend="threads"):
                time.sleep(0.01)
                if v == 5:
                    {change}
            return L
    """
    module = _load(load_module, source, MANY)
    for threads in (MANY, 2):
        with pytest.raises(paraloop.ParaLoopError):
            module.run(threads)


def test_loops_in_several_program_threads_each_as_if_alone(load_module: Loader) -> None:
    """Four program threads run a 64-thread paired loop each, two of them breaking: each gets its
    own plain result, and no loop thread is left."""
    module = load_module(
        """
        import time
        from paraloop import ParaLoop
        def run(stop):
            seen = []
            for i in ParaLoop(range(600), num_processes=64, backend="threads"):
                time.sleep(0.01)
                seen.append(i)
                if i == stop:
                    break
            return seen
        """
    )
    results: dict[int, list[int]] = {}
    stops = (None, 77, 301, None)
    workers = [
        threading.Thread(target=lambda k=k, s=s: results.__setitem__(k, module.run(s)))
        for k, s in enumerate(stops)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [results[k] for k in range(4)] == [list(range(600 if s is None else s + 1)) for s in stops]
    deadline = time.monotonic() + 10
    while _paraloop_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _paraloop_threads()


def test_ctrl_c_starts_no_partner_and_ends_the_program(tmp_path: Path) -> None:
    """Ctrl-C while 64 threads each run the first iteration of a pair: KeyboardInterrupt in the
    program at once, and no iteration starts after it (the partners never do)."""
    marks = tmp_path / "marks.txt"
    script = tmp_path / "ctrl_c.py"
    script.write_text(
        textwrap.dedent(
            f"""
            # paraloop: enable
            import sys, time
            from paraloop import ParaLoop
            marks = open({str(marks)!r}, "w", buffering=1)
            total = 0
            try:
                for i in ParaLoop(range(400), num_processes=64, backend="threads"):
                    marks.write(f"start {{i}} {{time.monotonic()}}\\n")
                    if i == 0:
                        print("running", flush=True)
                    time.sleep(0.5)
                    total += i
            except KeyboardInterrupt:
                marks.write(f"interrupted {{time.monotonic()}}\\n")
                time.sleep(1.0)
                sys.exit(3)
            """
        )
    )
    _, status, stderr, elapsed = interrupt_like_a_terminal(script)
    assert status == 3, stderr
    assert elapsed < 5
    lines = [line.split() for line in marks.read_text().splitlines()]
    interrupted = [float(line[1]) for line in lines if line[0] == "interrupted"]
    assert len(interrupted) == 1
    late = [int(line[1]) for line in lines if line[0] == "start" and float(line[2]) > interrupted[0]]
    assert late == []
    # Every chunk was a pair whose first iteration ran: none of their second iterations started.
    assert not [int(line[1]) for line in lines if line[0] == "start" and int(line[1]) % 2 == 1]


def test_many_threads_few_items(load_module: Loader) -> None:
    """200 threads over 5 items and 64 threads over 130 (just past the pairing's threshold), a
    break in the last one: the plain results."""
    module = load_module(
        """
        import time
        from paraloop import ParaLoop
        def run(threads, n, stop):
            out = []
            for i in ParaLoop(range(n), num_processes=threads, backend="threads"):
                time.sleep(0.02)
                out.append(i)
                if i == stop:
                    break
            return out
        """
    )
    assert module.run(200, 5, None) == list(range(5))
    assert module.run(64, 130, None) == list(range(130))
    assert module.run(64, 130, 1) == [0, 1]
    assert module.run(64, 130, 129) == list(range(130))
