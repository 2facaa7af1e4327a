# paraloop: enable
"""Loops from pythran's OpenMP tests, translated into ParaLoop loops.

Origins: serge-sans-paille/pythran, pythran/tests/openmp.legacy/*.py (OpenMP directives written as
strings before the loop, ``'omp parallel for reduction(+:sum)'``) and pythran/tests/openmp.4/*.py
(directives in comments). Each case is a top-level function without parameters: it runs the loop
that follows an ``omp for`` directive as ``ParaLoop(range(...), **OPTIONS)`` (``omp critical``,
``omp atomic``, ``omp ordered`` and ``omp flush`` dropped, the code under them kept) and returns
what a program can observe afterwards, instead of the test's own checks. Loops of 1000 iterations
(LOOPCOUNT) in the originals run 100 here: every loop runs many times over in the test. The comment block right
above a case names its origin (``# origin:``) and what paraloop must give (``# expect: exact`` or
``# expect: exact-or-refused``); tests/test_prange_suites.py reads it. Functions whose names start
with ``_`` are helpers that every case may call.
"""

# ruff: noqa: A001, B007, RUF059

import math

import numpy as np

from paraloop import ParaLoop

#: The test sets the loops' options before each call.
OPTIONS = {"num_processes": 2}


def _some_work():
    # pythran/tests/openmp.legacy/omp_parallel_for_private.py: some_work
    sum = 0
    for i in range(0, 100):
        sum += math.sqrt(i)


def _check_i_islarger(i, last_i):
    # pythran/tests/openmp.legacy/omp_for_collapse.py: check_i_islarger
    if i == 1:
        last_i[0] = 0
    islarger = (i >= last_i[0]) and (i - last_i[0] <= 1)
    last_i[0] = i
    return islarger


def _check_i_islarger2(i, last_i):
    # pythran/tests/openmp.legacy/omp_parallel_for_ordered.py: check_i_islarger2
    islarger = i > last_i
    last_i = i
    return islarger, last_i


# --- omp_parallel_reduction.py, omp_parallel_for_reduction.py (the same loops) -------------


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(+:sum)
# expect: exact
def parallel_reduction_sum():
    sum = 0
    for i in ParaLoop(range(1, 101), **OPTIONS):
        sum += i
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(-:diff)
# diff starts as the float 500500.0.
# expect: exact
def parallel_reduction_diff():
    diff = (100 * (100 + 1)) / 2
    for i in ParaLoop(range(1, 101), **OPTIONS):
        diff -= i
    return diff


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(+:dsum)
# A geometric series of floats summed from 0.
# expect: exact
def parallel_reduction_dsum():
    dt = 1.0 / 3.0
    dsum = 0
    for i in ParaLoop(range(0, 20), **OPTIONS):
        dsum += math.pow(dt, i)
    return dsum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(-:ddiff)
# expect: exact
def parallel_reduction_ddiff():
    dt = 1.0 / 3.0
    dpt = 1
    for i in range(0, 20):
        dpt *= dt
    ddiff = (1 - dpt) / (1 - dt)
    for i in ParaLoop(range(0, 20), **OPTIONS):
        ddiff -= math.pow(dt, i)
    return ddiff


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(*:product)
# expect: exact
def parallel_reduction_product():
    product = 1
    for i in ParaLoop(range(1, 11), **OPTIONS):
        product *= i
    return product


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(&&:logic_and)
# logic_and = (logic_and and logics[i]), all true and then with one 0.
# expect: exact
def parallel_reduction_logic_and():
    logic_and = 1
    logics = [1 for i in range(0, 100)]
    for i in ParaLoop(range(0, 100), **OPTIONS):
        logic_and = logic_and and logics[i]
    first = logic_and
    logic_and = 1
    logics[100 // 2] = 0
    for i in ParaLoop(range(0, 100), **OPTIONS):
        logic_and = logic_and and logics[i]
    return first, logic_and


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(||:logic_or)
# x = x or e keeps Python's value (the first true item).
# expect: exact
def parallel_reduction_logic_or():
    logic_or = 0
    logics = [0 for i in range(0, 100)]
    for i in ParaLoop(range(0, 100), **OPTIONS):
        logic_or = logic_or or logics[i]
    first = logic_or
    logic_or = 0
    logics[100 // 2] = 1
    for i in ParaLoop(range(0, 100), **OPTIONS):
        logic_or = logic_or or logics[i]
    return first, logic_or


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(&:bit_and)
# expect: exact
def parallel_reduction_bit_and():
    bit_and = 1
    logics = [1 for i in range(0, 100)]
    for i in ParaLoop(range(0, 100), **OPTIONS):
        bit_and = bit_and & logics[i]
    first = bit_and
    bit_and = 1
    logics[100 // 2] = 0
    for i in ParaLoop(range(0, 100), **OPTIONS):
        bit_and = bit_and & logics[i]
    return first, bit_and


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(|:bit_or)
# expect: exact
def parallel_reduction_bit_or():
    bit_or = 0
    logics = [0 for i in range(0, 100)]
    for i in ParaLoop(range(0, 100), **OPTIONS):
        bit_or = bit_or | logics[i]
    first = bit_or
    bit_or = 0
    logics[100 // 2] = 1
    for i in ParaLoop(range(0, 100), **OPTIONS):
        bit_or = bit_or | logics[i]
    return first, bit_or


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(^:exclusiv_bit_or)
# expect: exact
def parallel_reduction_xor():
    exclusiv_bit_or = 0
    logics = [0 for i in range(0, 100)]
    for i in ParaLoop(range(0, 100), **OPTIONS):
        exclusiv_bit_or = exclusiv_bit_or ^ logics[i]
    first = exclusiv_bit_or
    exclusiv_bit_or = 0
    logics[100 // 2] = 1
    for i in ParaLoop(range(0, 100), **OPTIONS):
        exclusiv_bit_or = exclusiv_bit_or ^ logics[i]
    return first, exclusiv_bit_or


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(max:max_)
# expect: exact
def parallel_reduction_max():
    max_ = 0
    logics = [0 for i in range(0, 100)]
    logics[100 // 2] = 1
    for i in ParaLoop(range(0, 100), **OPTIONS):
        max_ = max(max_, logics[i])
    return max_


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(min:min_)
# expect: exact
def parallel_reduction_min():
    min_ = 1
    logics = [1 for _ in range(100)]
    logics[100 // 2] = 0
    for i in ParaLoop(range(0, 100), **OPTIONS):
        min_ = min(min_, logics[i])
    return min_


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_reduction.py reduction(max:max_)
# Variant: max and min of floats where equal values differ in sign (0.0, -0.0) and type (1, 1.0):
# the plain loop keeps the first of equals.
# expect: exact
def parallel_reduction_max_min_ties():
    values = [0.0, -0.0, 1, 1.0, -2, -2.0, 0.5, 1, -0.0, 0.0]
    max_ = -1
    min_ = 0.0
    for i in ParaLoop(range(len(values)), **OPTIONS):
        max_ = max(max_, values[i])
        min_ = min(min_, values[i])
    return max_, min_


# --- omp_for_reduction.py: the written-out forms ----------------------------------------


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(+:sum)
# The written-out form sum = sum + j.
# expect: exact
def for_reduction_sum():
    LOOPCOUNT = 100
    sum = 0
    for j in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        sum = sum + j
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(-:diff)
# The written-out form diff = diff - j.
# expect: exact
def for_reduction_diff():
    LOOPCOUNT = 100
    diff = (LOOPCOUNT * (LOOPCOUNT + 1)) / 2
    for j in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        diff = diff - j
    return diff


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(+:sum)
# Variant: the written-out sum and product of floats where the order of the roundings matters.
# expect: exact
def for_reduction_float_written_out():
    values = [1e16, 1.0, -1e16, 1.0] * 5 + [0.1] * 10
    factors = [1.1, 0.3, 1e10, 7.0, 1e-10, 0.7] * 3
    dsum = 0.0
    for j in ParaLoop(range(len(values)), **OPTIONS):
        dsum = dsum + values[j]
    dprod = 1.0
    for j in ParaLoop(range(len(factors)), **OPTIONS):
        dprod = dprod * factors[j]
    return dsum, dprod


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(*:product)
# expect: exact
def for_reduction_product():
    MAX_FACTOR = 10
    product = 1
    for j in ParaLoop(range(1, MAX_FACTOR + 1), **OPTIONS):
        product *= j
    return product


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(*:product)
# Variant: the written-out form product = product * j.
# expect: exact
def for_reduction_product_written_out():
    MAX_FACTOR = 10
    product = 1
    for j in ParaLoop(range(1, MAX_FACTOR + 1), **OPTIONS):
        product = product * j
    return product


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(&:logic_and)
# Iterates the list itself; the second loop starts from the first one's result.
# expect: exact
def for_reduction_bit_and():
    LOOPCOUNT = 100
    logic_and = 1
    logics = [1] * LOOPCOUNT
    for logic in ParaLoop(logics, **OPTIONS):
        logic_and = logic_and & logic
    first = logic_and
    logics[LOOPCOUNT // 2] = 0
    for logic in ParaLoop(logics, **OPTIONS):
        logic_and = logic_and & logic
    return first, logic_and, logic


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(|:logic_or)
# expect: exact
def for_reduction_bit_or():
    LOOPCOUNT = 100
    logic_or = 0
    logics = [0] * LOOPCOUNT
    for logic in ParaLoop(logics, **OPTIONS):
        logic_or = logic_or | logic
    first = logic_or
    logics[LOOPCOUNT // 2] = 1
    for logic in ParaLoop(logics, **OPTIONS):
        logic_or = logic_or | logic
    return first, logic_or


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_reduction.py reduction(^:exclusiv_bit_or)
# expect: exact
def for_reduction_xor():
    LOOPCOUNT = 100
    exclusiv_bit_or = 0
    logics = [0] * LOOPCOUNT
    for logic in ParaLoop(logics, **OPTIONS):
        exclusiv_bit_or = exclusiv_bit_or ^ logic
    first = exclusiv_bit_or
    logics[LOOPCOUNT // 2] = 1
    for logic in ParaLoop(logics, **OPTIONS):
        exclusiv_bit_or = exclusiv_bit_or ^ logic
    return first, exclusiv_bit_or


# --- omp_atomic_*.py: the update under 'omp atomic' ----------------------------------------


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_add.py
# expect: exact
def atomic_add():
    sum = 0
    LOOPCOUNT = 100
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum += i
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_sub.py
# A float from the start: 0. -= i.
# expect: exact
def atomic_sub():
    sum = 0.0
    LOOPCOUNT = 100
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum -= i
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_sub.py
# Variant: -= of floats where the order of the roundings matters.
# expect: exact
def atomic_sub_float():
    values = [0.1] * 25 + [1e16, -1.0, -1e16, 3.0] * 4
    sum = 0.0
    for i in ParaLoop(range(len(values)), **OPTIONS):
        sum -= values[i]
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_prod.py
# expect: exact
def atomic_prod():
    sum = 1
    LOOPCOUNT = 10
    for i in ParaLoop(range(1, LOOPCOUNT), **OPTIONS):
        sum *= i
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_prod.py
# Variant: *= of floats where the order of the roundings matters.
# expect: exact
def atomic_prod_float():
    factors = [1.1, 0.3, 1e200, 7.0, 1e-200, 0.7, 3.0, 1e-300, 1e300] * 3
    sum = 1.0
    for i in ParaLoop(range(len(factors)), **OPTIONS):
        sum *= factors[i]
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_div.py
# A division chain (under 'omp critical'): not among the inferred reductions, refusing it is fine.
# expect: exact-or-refused
def atomic_div():
    sum = 362880
    LOOPCOUNT = 10
    for i in ParaLoop(range(1, LOOPCOUNT), **OPTIONS):
        sum /= i
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_bitand.py
# expect: exact
def atomic_bitand():
    sum = 0
    LOOPCOUNT = 100
    logics = [1] * LOOPCOUNT
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum &= logics[i]
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_bitor.py
# expect: exact
def atomic_bitor():
    sum = 0
    LOOPCOUNT = 100
    logics = [1] * LOOPCOUNT
    logics[LOOPCOUNT // 2] = 0
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum |= logics[i]
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_bitxor.py
# Inputs: some ones among the zeros, so that the result depends on every item.
# expect: exact
def atomic_bitxor():
    sum = 0
    LOOPCOUNT = 100
    logics = [0] * LOOPCOUNT
    for k in (3, 50, 51, 97, 98):
        logics[k] = k
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum ^= logics[i]
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_lshift.py
# Not among the inferred reductions: refusing it is fine.
# expect: exact-or-refused
def atomic_lshift():
    sum = 1
    LOOPCOUNT = 10
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum <<= 1
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_atomic_rshift.py
# Not among the inferred reductions: refusing it is fine.
# expect: exact-or-refused
def atomic_rshift():
    sum = 1024
    LOOPCOUNT = 10
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        sum >>= 1
    return sum


# --- private, firstprivate, lastprivate, ordered -----------------------------------------


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_lastprivate.py
# sum0 is a reduction and i0, assigned in every iteration, is read after the loop.
# expect: exact
def for_lastprivate():
    i0 = -1
    LOOPCOUNT = 100
    sum0 = 0
    for i in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        sum0 += i
        i0 = i
    return sum0, i0


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_for_lastprivate.py
# expect: exact
def parallel_for_lastprivate():
    sum = 0
    i0 = -1
    for i in ParaLoop(range(1, 101), **OPTIONS):
        sum += i
        i0 = i
    return sum, i0


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_private.py
# sum0 is private in OpenMP; in Python sum1 carries the running total from one iteration to the
# next (sum0 = sum1; ...; sum1 = sum0): a loop-carried value.
# expect: exact-or-refused
def for_private():
    LOOPCOUNT = 100
    sum0 = 0
    sum1 = 0
    for i in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        sum0 = sum1
        sum0 += i
        sum1 = sum0
    return sum1, sum0


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_for_private.py
# i2 is assigned before it is read in every iteration.
# expect: exact
def parallel_for_private():
    sum = 0
    i2 = 0
    for i in ParaLoop(range(1, 101), **OPTIONS):
        i2 = i
        _some_work()
        sum += i2
    return sum, i2


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_firstprivate.py
# sum0 is firstprivate in OpenMP; in Python sum1 = sum0 reads the running total.
# expect: exact-or-refused
def for_firstprivate():
    sum0 = 12345
    sum1 = 0
    LOOPCOUNT = 100
    for i in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        sum0 += i
        sum1 = sum0
    return sum0, sum1


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_for_firstprivate.py
# expect: exact
def parallel_for_firstprivate():
    sum = 0
    i2 = 3
    for i in ParaLoop(range(1, 101), **OPTIONS):
        sum += i + i2
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_private.py
# sum1 = 7 before the loop: a sum that does not start from 0.
# expect: exact
def parallel_private():
    sum1 = 7
    for i in ParaLoop(range(1, 100), **OPTIONS):
        sum1 += i
    return sum1


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_shared.py
# expect: exact
def parallel_shared():
    LOOPCOUNT = 100
    mysum = 0
    for i in ParaLoop(range(1, LOOPCOUNT + 1), **OPTIONS):
        mysum += i
    sum = 0
    sum += mysum
    return sum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_ordered.py
# An 'omp ordered' block: last_i is read before it is assigned (a loop-carried value).
# expect: exact-or-refused
def for_ordered():
    sum = 0
    last_i = 0
    my_is_larger = 1
    for i in ParaLoop(range(1, 100), **OPTIONS):
        my_is_larger &= i > last_i
        last_i = i
        sum += i
    return sum, my_is_larger, last_i


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_for_ordered.py
# last_i goes through a function and back; is_larger = e and is_larger is not All (section 4).
# expect: exact-or-refused
def parallel_for_ordered():
    sum = 0
    is_larger = True
    last_i = 0
    for i in ParaLoop(range(1, 100), **OPTIONS):
        ii = i
        tmp_is_larger, last_i = _check_i_islarger2(i, last_i)
        is_larger = tmp_is_larger and is_larger
        sum += ii
    return sum, is_larger, last_i


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_collapse.py
# An ordered collapse(2) loop: a function called from the body keeps the last i in the list
# last_i (section 5: combined or refused), and my_islarger = e and my_islarger is not All.
# expect: exact-or-refused
def for_collapse():
    is_larger = 1
    last_i = [0]
    my_islarger = 1
    for i in ParaLoop(range(1, 100), **OPTIONS):
        for j in range(1, 100):
            my_islarger = _check_i_islarger(i, last_i) and my_islarger
    is_larger = is_larger and my_islarger
    return is_larger, last_i


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_nowait.py
# The body rebinds the loop name in its first iteration; count
# is assigned in that iteration only.
# expect: exact
def for_nowait():
    LOOPCOUNT = 100
    count = 0
    for i in ParaLoop(range(LOOPCOUNT), **OPTIONS):
        if i == 0:
            while i < LOOPCOUNT**2:
                i += 1
            count = 1
    return count, i


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_parallel_for_if.py
# num_threads = omp.get_num_threads() becomes a constant.
# expect: exact
def parallel_for_if():
    num_threads = 0
    sum = 0
    LOOPCOUNT = 100
    for i in ParaLoop(range(LOOPCOUNT + 1), **OPTIONS):
        num_threads = 1
        sum += i
    return sum, num_threads


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_critical.py
# expect: exact
def critical():
    mysum = 0
    for i in ParaLoop(range(100), **OPTIONS):
        mysum += i
    return mysum


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/omp_for_schedule_dynamic.py
# tids[i] = omp.get_thread_num() becomes the number of the chunk of 7 the iteration is in.
# expect: exact
def for_schedule_dynamic():
    CFDMAX_SIZE = 100
    chunk_size = 7
    tids = [0] * CFDMAX_SIZE
    for i in ParaLoop(range(CFDMAX_SIZE), **OPTIONS):
        tids[i] = i // chunk_size
    return tids


# --- pythran_*.py and openmp.4 ------------------------------------------------------------


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/pythran_collapse.py::collapse_bug0
# expect: exact
def collapse_bug0():
    x = np.ones(50) * 0.1
    m = 5
    btx = 3.0 * x
    n = int(np.log2(m))
    lv = np.zeros((x.shape[0], n))
    N = x.shape[0]
    for i in ParaLoop(range(N), **OPTIONS):
        for k in range(n):
            lv[i, k] = abs(x[i] - btx[k])
    return lv


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/pythran_forward_substitution.py::aaa
# expect: exact
def forward_substitution():
    a = 5
    grid = np.empty((a,))
    for i in ParaLoop(range(a), **OPTIONS):
        j = i * i
        grid[i] = j
    return grid, j


# origin: serge-sans-paille/pythran pythran/tests/openmp.legacy/pythran_private.py::aaa
# expect: exact
def private():
    a = 5
    grid = np.empty((a,))
    for i in ParaLoop(range(a), **OPTIONS):
        if i % 2:
            j = i * i
        else:
            j = i * i * 3
        grid[i] = j
    return grid, j


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/cancel_for.py::has_zero
# has_zero is assigned (under 'omp critical') only in the iterations that find a zero.
# expect: exact
def cancel_for():
    matrix = np.array([[1, 2, 3], [4, 0, 5], [7, 8, 9]])
    has_zero = False
    rows, cols = matrix.shape
    for row in ParaLoop(range(rows), **OPTIONS):
        for col in range(cols):
            if matrix[row, col] == 0:
                has_zero = True
    return has_zero, row, col


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/cancel_for.py::has_zero
# Variant: 'omp cancel for' as a break; the loop stops at the first row with a zero.
# expect: exact
def cancel_for_break():
    matrix = np.array([[1, 2, 3], [4, 0, 5], [7, 8, 9], [0, 1, 1]])
    has_zero = False
    rows, cols = matrix.shape
    checked = []
    for row in ParaLoop(range(rows), **OPTIONS):
        checked.append(row)
        if 0 in matrix[row]:
            has_zero = True
            break
    return has_zero, row, checked


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/declare_reduction.py::find_min_abs
# A user-declared min reduction written as an if: the body reads result besides updating it.
# expect: exact-or-refused
def declare_reduction():
    data = [-1, 2, 3, 1, 4, 5, 6, -7]
    result = abs(data[0])
    for d in ParaLoop(data, **OPTIONS):
        if abs(d) < result:
            result = abs(d)
    return result


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/declare_reduction_aggregated_type.py::run
# A histogram into a float array, with the test's n_bins = 1000 and with n_bins = 7 (shared bins).
# expect: exact
def declare_reduction_aggregated_type():
    results = []
    for n_bins in (1000, 7):
        arr = np.zeros(n_bins)
        for i in ParaLoop(range(10), **OPTIONS):
            for j in range(10):
                ij = i * 10 + j
                arr[int(ij % n_bins)] += 1
        results.append(arr)
    return results


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/declare_reduction_aggregated_type.py::run
# Variant: float weights into shared bins, where the order of the additions matters.
# expect: exact
def declare_reduction_aggregated_type_weights():
    weights = [1e16, 1.0, -1e16, 1.0, 0.1, 0.2, 0.3] * 6
    arr = np.zeros(5)
    for i in ParaLoop(range(len(weights)), **OPTIONS):
        arr[i % 5] += weights[i]
    return arr


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/declare_reduction_complex_implicit.py::csum
# A complex sum starting from the float 0.
# expect: exact
def declare_reduction_complex_implicit():
    data = [-1j, 2j, 3j, 1j, 4j, 5j, 6j, -7j, 0.1 + 1e16j, 1 - 1e16j]
    result = 0.0
    for d in ParaLoop(data, **OPTIONS):
        result += d
    return result


# origin: serge-sans-paille/pythran pythran/tests/openmp.4/simd.py::perm
# expect: exact
def simd():
    data = [10, 20, 30, 40]
    p = [1, 0, 3, 2]
    n = len(data)
    out = np.empty(n)
    for i in ParaLoop(range(n), **OPTIONS):
        out[i] = data[p[i]] * 2
    return out
