# paraloop: enable
"""Loops from Cython's prange tests, translated into ParaLoop loops.

Origins: cython/cython, tests/run/sequential_parallel.pyx (also run with OpenMP by parallel.pyx),
tests/run/parallel.pyx, tests/run/pure_parallel.py, tests/run/parallel_with_gil.pyx,
tests/run/numpy_parallel.pyx and the examples of docs/src/userguide/parallelism.rst and
docs/src/tutorial/parallelization.rst (docs/examples/...). Each case is a top-level function without
parameters: it builds its inputs, runs the loop as the original wrote it with ``prange(...)`` spelt
``ParaLoop(range(...), **OPTIONS)`` (``with gil:`` blocks dropped, printed values collected), and
returns what a program can observe afterwards. In Cython a name assigned in a prange body is
lastprivate, and an in-place operator makes a reduction: plain Python names here. The comment
block right above a case names its origin (``# origin:``) and what paraloop must give
(``# expect: exact`` or ``# expect: exact-or-refused``); tests/test_prange_suites.py reads it.
Functions whose names start with ``_`` are helpers that every case may call.
"""

# ruff: noqa: A001, A002, B007, B012, B904, BLE001, E741, F841

import math
from contextlib import contextmanager

import numpy as np

from paraloop import ParaLoop

#: The test sets the loops' options before each call.
OPTIONS = {"num_processes": 2}


def _f(x):
    # tests/run/parallel_with_gil.pyx: f
    return x


def _use_nogil(x, i):
    # tests/run/pure_parallel.py: use_nogil
    cx = x
    return cx * i


def _inner_parallel_section():
    # tests/run/sequential_parallel.pyx: inner_parallel_section, a prange loop in a function
    # that the body of another prange loop calls.
    sum = 0
    for j in ParaLoop(range(10), **OPTIONS):
        sum += j
    return sum


def _error():
    # tests/run/sequential_parallel.pyx: error
    raise Exception("propagate me")


def _exception_checked_function(arr, id):
    # tests/run/sequential_parallel.pyx: prange_exception_checked_function (ptr[0] = id)
    arr[id] = id


# --- tests/run/sequential_parallel.pyx ---------------------------------------------------


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange
# The loop names i and j hold their last values after the loops.
# expect: exact
def test_prange():
    sum1 = sum2 = 0
    for i in ParaLoop(range(10), **OPTIONS):
        sum1 += i
    for j in ParaLoop(range(10), **OPTIONS):
        sum2 += j
    return i, j, sum1, sum2


# origin: cython/cython tests/run/sequential_parallel.pyx::test_descending_prange
# expect: exact
def test_descending_prange():
    start, stop, step = 5, -5, -2
    sum = 0
    for i in ParaLoop(range(start, stop, step), **OPTIONS):
        sum += i
    return sum


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_matches_range
# Run with the test's eight (start, stop, step); prange_last and i keep their values when the range
# is empty.
# expect: exact
def test_prange_matches_range():
    results = []
    for start, stop, step in [
        (0, 8, 3),
        (0, 9, 3),
        (0, 10, 3),
        (0, 10, -3),
        (0, -10, -3),
        (1, -10, -3),
        (2, -10, -3),
        (3, -10, -3),
    ]:
        i = -765432
        prange_last = -987654
        prange_set = set()
        for i in ParaLoop(range(start, stop, step), **OPTIONS):
            prange_last = i
            prange_set.add(i)
        results.append((start, stop, step, i, prange_last, sorted(prange_set)))
    return results


# origin: cython/cython tests/run/sequential_parallel.pyx::test_propagation
# Nested prange loops; the outer loop's body holds the inner one.
# expect: exact
def test_propagation():
    i = j = x = y = 0
    sum1 = sum2 = 0
    for i in ParaLoop(range(10), **OPTIONS):
        for j in ParaLoop(range(10), **OPTIONS):
            sum1 += i
    for x in ParaLoop(range(10), **OPTIONS):
        for y in ParaLoop(range(10), **OPTIONS):
            sum2 += y
    return i, j, x, y, sum1, sum2


# origin: cython/cython tests/run/sequential_parallel.pyx::test_reassign_start_stop_step
# The body rebinds the names the range was made from; the range is already made.
# expect: exact
def test_reassign_start_stop_step():
    start, stop, step = 0, 10, 2
    sum = 0
    for i in ParaLoop(range(start, stop, step), **OPTIONS):
        start = -2
        stop = 2
        step = 0
        sum += i
    return sum, start, stop, step


# origin: cython/cython tests/run/sequential_parallel.pyx::test_closure_parallel_privates
# The loop name, a reduction and a lastprivate are the enclosing function's (nonlocal) names.
# expect: exact
def test_closure_parallel_privates():
    x = None
    seen = []

    def test_target():
        nonlocal x
        for x in ParaLoop(range(10), **OPTIONS):
            pass
        return x

    seen.append((test_target(), x))

    def test_reduction():
        nonlocal x
        x = 0
        for i in ParaLoop(range(10), **OPTIONS):
            x += i
        return x

    seen.append((test_reduction(), x))

    def test_generator():
        nonlocal x
        x = 0
        yield x
        x = 2
        for i in ParaLoop(range(10), **OPTIONS):
            x = i
        yield x

    g = test_generator()
    seen.append((next(g), x, next(g), x))
    return seen


# origin: cython/cython tests/run/sequential_parallel.pyx::test_closure_parallel_with_gil
# expect: exact
def test_closure_parallel_with_gil():
    sum = 0
    temp1 = 5
    temp2 = -5

    def test_reduction():
        nonlocal sum, temp1, temp2
        for i in ParaLoop(range(10), **OPTIONS):
            sum += temp1 + temp2 + i
        return sum

    return test_reduction(), sum


# origin: cython/cython tests/run/sequential_parallel.pyx::test_pure_mode
# The printed values are collected in a list.
# expect: exact
def test_pure_mode():
    printed = []
    for i in ParaLoop(range(5), **OPTIONS):
        printed.append(i)
    for i in ParaLoop(range(4, -1, -1), **OPTIONS):
        printed.append(i)
    return printed


# origin: cython/cython tests/run/sequential_parallel.pyx::test_init_prange
# Every name is only assigned on a path never taken, then read: a value some path through an
# iteration reads before assigning it (refusing it is fine); err is changed at an index.
# expect: exact-or-refused
def test_init_prange():
    mybool = 0
    err = [0]
    a1 = 10
    f = 10.0
    o = 10.0
    for i in ParaLoop(range(10), **OPTIONS):
        if mybool:
            a1 = 0
            f = 0.0
            o = 0.0
        if a1 != 10 or f != 10.0:
            err[0] = 1
        if o != 10.0:
            err[0] = 1
    return err, a1, f, o


# origin: cython/cython tests/run/sequential_parallel.pyx::test_else_clause
# expect: exact
def test_else_clause():
    printed = []
    for i in ParaLoop(range(5), **OPTIONS):
        pass
    else:
        printed.append("else clause executed")
    return printed, i


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_break
# expect: exact
def test_prange_break():
    printed = []
    for i in ParaLoop(range(10), **OPTIONS):
        if i == 8:
            break
    else:
        printed.append("else clause executed")
    return printed, i


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_continue
# expect: exact
def test_prange_continue():
    printed = []
    p = [0] * 10
    for i in ParaLoop(range(10), **OPTIONS):
        if i % 2 != 0:
            continue
        p[i] = i
    else:
        printed.append("else clause executed")
    return printed, p, i


# origin: cython/cython tests/run/sequential_parallel.pyx::test_nested_break_continue
# expect: exact
def test_nested_break_continue():
    result1 = result2 = 0
    for i in ParaLoop(range(10), **OPTIONS):
        for j in ParaLoop(range(10), **OPTIONS):
            if i == 6 and j == 7:
                result1 = i
                result2 = j
                break
        else:
            continue
        break
    first = (i, j, result1, result2)
    for i in ParaLoop(range(10), **OPTIONS):
        if i == 8:
            break
        else:
            continue
    return first, i


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_return (test_return)
# expect: exact
def parallel_return():
    def parallel_return():
        for i in ParaLoop(range(10), **OPTIONS):
            if i == 8:
                return i
        else:
            return 1
        return 2

    return parallel_return()


# origin: cython/cython tests/run/sequential_parallel.pyx::plain_parallel_return (test_plain_return)
# expect: exact
def plain_parallel_return():
    def plain_parallel_return():
        for i in ParaLoop(range(10), **OPTIONS):
            if i == 8:
                return i

    return plain_parallel_return()


# origin: cython/cython tests/run/sequential_parallel.pyx::test_parallel_exceptions
# The exception leaves the first iteration after its finally: appended; sum is still 0.
# expect: exact
def test_parallel_exceptions():
    sum = 0
    mylist = []
    try:
        for i in ParaLoop(range(10), **OPTIONS):
            try:
                for j in ParaLoop(range(10), **OPTIONS):
                    raise Exception("propagate me")
                    sum += i * j
                sum += i
            finally:
                mylist.append("I am executed first")
    except Exception as e:
        return mylist, e.args, sum, i, j


# origin: cython/cython tests/run/sequential_parallel.pyx::test_parallel_exceptions_unnested
# expect: exact
def test_parallel_exceptions_unnested():
    sum = 0
    mylist = []
    try:
        try:
            for i in ParaLoop(range(10), **OPTIONS):
                raise Exception("propagate me")
                sum += i
        finally:
            mylist.append(("I am executed first", sum))
    except Exception as e:
        return mylist[0], e.args, sum, i


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exc_cdef_unnested (test_parallel_exc_cdef)
# The exception escapes the case: its type and arguments are compared.
# raises: Exception
# expect: exact
def parallel_exc_cdef_unnested():
    for i in ParaLoop(range(10), **OPTIONS):
        raise Exception("propagate me")
    return 0


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exc_cpdef (test_parallel_exc_cpdef)
# raises: Exception
# expect: exact
def parallel_exc_cpdef():
    for i in ParaLoop(range(10), **OPTIONS):
        for j in ParaLoop(range(10), **OPTIONS):
            raise Exception("propagate me")
    return 0


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exc_nogil_swallow (test_parallel_exc_nogil_swallow)
# A return in a finally: in the body swallows the exception: the function returns 0.
# expect: exact
def parallel_exc_nogil_swallow():
    def parallel_exc_nogil_swallow():
        for i in ParaLoop(range(10), **OPTIONS):
            try:
                for j in ParaLoop(range(10), **OPTIONS):
                    raise Exception("propagate me")
            finally:
                return i
        return 0

    return parallel_exc_nogil_swallow(), "execute me"


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exc_nogil_swallow_unnested
# The loop name after the exception is that of the raising iteration, 0.
# expect: exact
def parallel_exc_nogil_swallow_unnested():
    def parallel_exc_nogil_swallow_unnested():
        try:
            for i in ParaLoop(range(10), **OPTIONS):
                raise Exception("propagate me")
        finally:
            return i
        return 0

    return parallel_exc_nogil_swallow_unnested()


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exc_replace
# raises: Exception
# expect: exact
def parallel_exc_replace():
    for i in ParaLoop(range(10), **OPTIONS):
        try:
            for j in ParaLoop(range(10), **OPTIONS):
                raise Exception("propagate me")
        except Exception:
            raise Exception("propagate me instead")
    return 0


# origin: cython/cython tests/run/sequential_parallel.pyx::parallel_exceptions2
# Three nested prange loops; the first i + j + k > 20 raises. The loop names are observed.
# expect: exact
def parallel_exceptions2():
    i = j = k = None
    try:
        for i in ParaLoop(range(10), **OPTIONS):
            for j in ParaLoop(range(10), **OPTIONS):
                for k in ParaLoop(range(10), **OPTIONS):
                    if i + j + k > 20:
                        raise Exception("propagate me")
                        break
                    continue
                    return
    except Exception as e:
        return e.args, i, j, k


# origin: cython/cython tests/run/sequential_parallel.pyx::test_parallel_with_gil_return
# obj is assigned in every iteration and read after the loop.
# expect: exact
def test_parallel_with_gil_return():
    sum = 0
    for i in ParaLoop(range(10), **OPTIONS):
        obj = i
        sum += obj
    return obj in range(10), obj, sum


# origin: cython/cython tests/run/sequential_parallel.pyx::test_parallel_with_gil_continue_unnested
# expect: exact
def test_parallel_with_gil_continue_unnested():
    sum = 0
    for i in ParaLoop(range(10), **OPTIONS):
        if i % 2:
            continue
        sum += i
    return sum


# origin: cython/cython tests/run/sequential_parallel.pyx::outer_parallel_section
# The body calls a function that runs a prange loop of its own.
# expect: exact
def outer_parallel_section():
    sum = 0
    for i in ParaLoop(range(10), **OPTIONS):
        sum += _inner_parallel_section()
    return sum


# origin: cython/cython tests/run/sequential_parallel.pyx::test_chunksize
# The loops' own num_threads and chunksize become num_processes and chunksize.
# expect: exact
def test_chunksize():
    printed = []
    sum = 0
    for i in ParaLoop(range(10), num_processes=2, chunksize=3):
        sum += i
    printed.append(sum)
    sum = 0
    for i in ParaLoop(range(10), num_processes=6, chunksize=3):
        sum += i
    printed.append(sum)
    sum = 0
    for i in ParaLoop(range(10), chunksize=3):
        sum += i
    printed.append(sum)
    return printed


# origin: cython/cython tests/run/sequential_parallel.pyx::test_clean_temps
# expect: exact
def test_clean_temps():
    class PrintOnDealloc:
        pass

    try:
        for i in ParaLoop(range(100), **OPTIONS):
            x = PrintOnDealloc() + _error()
    except Exception as e:
        return e.args[0], i


# origin: cython/cython tests/run/sequential_parallel.pyx::test_pointer_temps
# f, a view into arr bound in every iteration, is read after the loop.
# expect: exact
def test_pointer_temps():
    arr = np.empty(10)
    arr[0] = 4.0
    arr[1] = 3.0
    for i in ParaLoop(range(10), **OPTIONS):
        f = arr[0:]
    return f[0]


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_in_with
# l[0] += i on the list a context manager gave.
# expect: exact
def test_prange_in_with():
    @contextmanager
    def ctx(l):
        yield l

    x = 4
    with ctx([0]) as l:
        for i in ParaLoop(range(x), **OPTIONS):
            l[0] += i
        return l[0], l


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_call_exception_checked_function
# A function called from the body writes buf (section 5: combined or refused).
# N = 30 instead of 10000.
# expect: exact-or-refused
def test_prange_call_exception_checked_function():
    N = 30
    buf = [None] * N
    for i in ParaLoop(range(N), **OPTIONS):
        _exception_checked_function(buf, i)
    return buf


# origin: cython/cython tests/run/sequential_parallel.pyx::test_prange_type_inference_1 (and _2, _3)
# The loop name after loops with one, two and three range arguments.
# expect: exact
def test_prange_type_inference():
    for i in ParaLoop(range(1), **OPTIONS):
        pass
    first = i
    for i in ParaLoop(range(-100, 5), **OPTIONS):
        pass
    second = i
    for i in ParaLoop(range(-100, 5, 2), **OPTIONS):
        pass
    return first, second, i


# origin: cython/cython tests/run/sequential_parallel.pyx::test_type_inference_two_step
# Writes to a bytearray at the loop's index.
# expect: exact
def test_type_inference_two_step():
    x = bytearray(b"\0" * 50)
    length = len(x)
    for n in ParaLoop(range(length), **OPTIONS):
        x[n] = n
    return x, n


# --- tests/run/parallel.pyx, pure_parallel.py, parallel_with_gil.pyx, numpy_parallel.pyx ---


# origin: cython/cython tests/run/parallel.pyx::test_num_threads
# p[0] = ... then break, in a one-iteration prange.
# expect: exact
def test_num_threads():
    p = [0xBAD]
    for i in ParaLoop(range(1), **OPTIONS):
        p[0] = 3
        break
    return p


# origin: cython/cython tests/run/parallel.pyx::prange_0_threads (test_prange_0_threads)
# arr[i] = omp_get_num_threads() becomes a constant.
# expect: exact
def prange_0_threads():
    arr = [0] * 10
    for i in ParaLoop(range(10), **OPTIONS):
        arr[i] = 4
    return arr[0], arr


# origin: cython/cython tests/run/pure_parallel.py::prange_regression
# expect: exact
def prange_regression():
    n = 10
    data = list(range(1, 4))
    s = 0
    d = data
    for i in ParaLoop(range(n), **OPTIONS):
        s += d[i % 3]
    return s


# origin: cython/cython tests/run/pure_parallel.py::prange_with_gil
# expect: exact
def prange_with_gil():
    n, x = 10, 3
    s = 0
    for i in ParaLoop(range(n), **OPTIONS):
        s += x * i
    return s


# origin: cython/cython tests/run/pure_parallel.py::prange_with_gil_call_nogil
# expect: exact
def prange_with_gil_call_nogil():
    n, x = 10, 3
    s = 0
    for i in ParaLoop(range(n), **OPTIONS):
        s += _use_nogil(x, i)
    return s


# origin: cython/cython tests/run/parallel_with_gil.pyx::test_prange_with_python
# expect: exact
def test_prange_with_python():
    i = 0
    out = [None] * 100
    for i in ParaLoop(range(100), **OPTIONS):
        out[i] = _f(i)
    return out, i


# origin: cython/cython tests/run/numpy_parallel.pyx::test_parallel_numpy_arrays
# expect: exact
def test_parallel_numpy_arrays():
    x = np.zeros(10, dtype=np.int_)
    length = x.shape[0]
    for i in ParaLoop(range(length), **OPTIONS):
        x[i] = i - 5
    return x


# --- docs/examples ---------------------------------------------------------------------------


# origin: cython/cython docs/examples/userguide/parallelism/breaking_loop.py::func
# i == 2 returns before the i == 4 break and the i == 8 exception.
# expect: exact
def breaking_loop():
    def func(n):
        for i in ParaLoop(range(n), **OPTIONS):
            if i == 8:
                raise Exception()
            elif i == 4:
                break
            elif i == 2:
                return i

    return func(10), func(3)


# origin: cython/cython docs/examples/userguide/parallelism/breaking_loop.py::func
# Variant: the order of the branches reversed, so that the break and then the exception come first.
# expect: exact
def breaking_loop_reversed():
    def func(n, first, second):
        seen = []
        for i in ParaLoop(range(n), **OPTIONS):
            seen.append(i)
            if i == first:
                raise Exception(i)
            elif i == second:
                break
        return seen, i

    outcomes = [func(10, 8, 4)]
    try:
        func(10, 3, 6)
    except Exception as e:
        outcomes.append(e.args)
    return outcomes


# origin: cython/cython docs/examples/userguide/parallelism/condition_sum.py::psum
# psum(300) instead of psum(10000).
# expect: exact
def condition_sum():
    def psum(n):
        sum = 0
        for i in ParaLoop(range(n), **OPTIONS):
            sum += i
        return sum

    return psum(30), psum(300)


# origin: cython/cython docs/examples/userguide/parallelism/memoryview_sum.py::func
# x[i] = alpha * x[i]: x[i] = f(x[i]) at the loop's own index.
# expect: exact
def memoryview_sum():
    x = np.array([0.1 * k for k in range(20)])
    alpha = 1.0 / 3.0
    for i in ParaLoop(range(x.shape[0]), **OPTIONS):
        x[i] = alpha * x[i]
    return x


# origin: cython/cython docs/examples/tutorial/parallelization/norm.py::l2norm
# Inputs: 0.1 repeated and order-sensitive magnitudes.
# expect: exact
def l2norm():
    x = np.array([0.1] * 30 + [1e8, 1.0, 1e-8] * 10)
    total = 0
    for i in ParaLoop(range(x.shape[0]), **OPTIONS):
        total += x[i] * x[i]
    return math.sqrt(total), total


# origin: cython/cython docs/examples/tutorial/parallelization/normalize.py::normalize
# A float sum, then x[i] /= norm at the loop's index.
# expect: exact
def normalize():
    x = np.array([0.1] * 30 + [1e8, 1.0, 1e-8] * 10)
    total = 0.0
    for i in ParaLoop(range(x.shape[0]), **OPTIONS):
        total += x[i] * x[i]
    norm = math.sqrt(total)
    for i in ParaLoop(range(x.shape[0]), **OPTIONS):
        x[i] /= norm
    return x, total


# origin: cython/cython docs/examples/tutorial/parallelization/parallel_sin.py::do_sine
# 2-D writes from an inner loop.
# expect: exact
def parallel_sin():
    input = np.arange(30.0).reshape(5, 6) * 0.1
    output = np.empty_like(input)
    for i in ParaLoop(range(input.shape[0]), **OPTIONS):
        for j in range(input.shape[1]):
            output[i, j] = math.sin(input[i, j])
    return output


# origin: cython/cython docs/examples/tutorial/parallelization/parallel_sin.py::do_sine
# Variant: each iteration writes its whole row, output[i, :] = ...
# expect: exact
def parallel_sin_rows():
    input = np.arange(30.0).reshape(5, 6) * 0.1
    output = np.empty_like(input)
    for i in ParaLoop(range(input.shape[0]), **OPTIONS):
        output[i, :] = np.sin(input[i, :])
    return output


# origin: cython/cython docs/examples/tutorial/parallelization/median.py::median_along_axis0
# scratch, made before the loop, is written element by element and then read within each
# iteration (a thread's buffer in Cython); nth_element becomes np.partition. Nothing shows that
# every element is written before it is read, so a refusal (with a fix) is acceptable here; the
# variant below follows the refusal's advice.
# expect: exact-or-refused
def median_along_axis0():
    x = np.random.default_rng(11).random((7, 9))
    out = np.empty(x.shape[1])
    scratch = np.empty(x.shape[0])
    for i in ParaLoop(range(x.shape[1]), **OPTIONS):
        for j in range(x.shape[0]):
            scratch[j] = x[j, i]
        mid = x.shape[0] // 2
        out[i] = np.partition(scratch, mid)[mid]
    return out, scratch


# origin: cython/cython docs/examples/tutorial/parallelization/median.py::median_along_axis0
# Variant: the fix paraloop's refusal of the case above names: the buffer is overwritten whole
# first, which makes it a scratch buffer (each chunk works on its own copy; it holds the last
# column after the loop, as in the plain loop).
# expect: exact
def median_along_axis0_overwritten():
    x = np.random.default_rng(11).random((7, 9))
    out = np.empty(x.shape[1])
    scratch = np.empty(x.shape[0])
    for i in ParaLoop(range(x.shape[1]), **OPTIONS):
        scratch[:] = 0
        for j in range(x.shape[0]):
            scratch[j] = x[j, i]
        mid = x.shape[0] // 2
        out[i] = np.partition(scratch, mid)[mid]
    return out, scratch
