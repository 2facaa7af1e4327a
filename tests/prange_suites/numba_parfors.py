# paraloop: enable
"""Loops from numba's parallel-loop tests, translated into ParaLoop loops.

Origins: numba/numba, numba/tests/test_parfors.py (the prange tests), numba/tests/test_parfors_passes.py
and docs/source/user/parallel.rst. Each case is a top-level function without parameters: it builds
its inputs, runs the loop as the original wrote it with ``prange(...)`` spelt
``ParaLoop(range(...), **OPTIONS)``, and returns what a program can observe afterwards. The comment
block right above a case names its origin (``# origin:``) and what paraloop must give
(``# expect: exact`` or ``# expect: exact-or-refused``); tests/test_prange_suites.py reads it.
Functions whose names start with ``_`` are helpers that every case may call.
"""

# ruff: noqa: B007, B018, F841

import cmath
from collections import defaultdict

import numpy as np

from paraloop import ParaLoop

#: The test sets the loops' options before each call.
OPTIONS = {"num_processes": 2}


def _tricky(n):
    """``n`` floats whose sum depends on the order of the additions (1e16 + 1.0 - 1e16, 0.1s, ...)."""
    base = [1e16, 1.0, -1e16, 1.0, 0.1, 0.1, 0.1, 1e-3, -0.3, 2.0**-40, 3.0, -1e-17]
    return [base[k % len(base)] * (1 + k // len(base)) for k in range(n)]


def _list_check(X):
    # numba test_parfors.py TestPrangeSpecific.test_mutable_list_param: list_check
    ret = X[-1]
    a = X[-1] + 1
    X.append(a)
    return ret


def _issue7854_proc(u, i, even, size):
    # numba test_parfors.py TestParfors.test_prange_unknown_call1: issue7854_proc
    for j in range((even + i + 1) % 2 + 1, size - 1, 2):
        u[i, j] = u[i + 1, j] + 1


# --- TestPrangeBasic ---------------------------------------------------------------------


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange01
# expect: exact
def prange01():
    n = 4
    A = np.zeros(n)
    for i in ParaLoop(range(n), **OPTIONS):
        A[i] = 2.0 * i
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange02
# expect: exact
def prange02():
    n = 4
    A = np.zeros(n - 1)
    for i in ParaLoop(range(1, n), **OPTIONS):
        A[i - 1] = 2.0 * i
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange03
# expect: exact
def prange03():
    s = 10
    for i in ParaLoop(range(10), **OPTIONS):
        s += 2
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange03mul
# expect: exact
def prange03mul():
    s = 3
    for i in ParaLoop(range(10), **OPTIONS):
        s *= 2
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange03sub
# expect: exact
def prange03sub():
    s = 100
    for i in ParaLoop(range(10), **OPTIONS):
        s -= 2
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange03div
# A division chain is not among the reductions section 4 infers: refusing it is fine.
# expect: exact-or-refused
def prange03div():
    s = 10
    for i in ParaLoop(range(10), **OPTIONS):
        s /= 2
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange04
# expect: exact
def prange04():
    a = 2
    b = 3
    A = np.empty(4)
    for i in ParaLoop(range(4), **OPTIONS):
        if i == a:
            A[i] = b
        else:
            A[i] = 0
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange05
# Inputs: 40 order-sensitive floats instead of np.ones(4).
# expect: exact
def prange05():
    n = 40
    A = np.array(_tricky(n), dtype=np.float64)
    s = 0
    for i in ParaLoop(range(1, n - 1, 1), **OPTIONS):
        s += A[i]
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange06
# An empty range: s keeps its int, the loop name stays unbound.
# expect: exact
def prange06():
    n = 4
    A = np.ones((n), dtype=np.float64)
    s = 0
    for i in ParaLoop(range(1, 1, 1), **OPTIONS):
        s += A[i]
    try:
        last = i
    except UnboundLocalError:
        last = "unbound"
    return s, last


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange07
# expect: exact
def prange07():
    n = 4
    A = np.ones((n), dtype=np.float64)
    s = 0
    for i in ParaLoop(range(n, 1), **OPTIONS):
        s += A[i]
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange08
# Inputs: order-sensitive floats instead of np.ones(4).
# expect: exact
def prange08():
    A = np.array(_tricky(12))
    acc = 0
    for i in ParaLoop(range(len(A)), **OPTIONS):
        for j in range(len(A)):
            acc += A[i]
    return acc, j


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange09
# The inner loop is the parallel one (patch_instance=[1]).
# expect: exact
def prange09():
    n = 4
    acc = 0
    for i in range(n):
        for j in ParaLoop(range(n), **OPTIONS):
            acc += 1
    return acc, i, j


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange10
# The outer loop is the parallel one (patch_instance=[0]); acc1 is private to an iteration.
# expect: exact
def prange10():
    n = 4
    acc2 = 0
    for j in ParaLoop(range(n), **OPTIONS):
        acc1 = 0
        for i in range(n):
            acc1 += 1
        acc2 += acc1
    return acc2, acc1, i


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange12
# expect: exact
def prange12():
    acc = 0
    n = 4
    X = np.ones(n)
    for i in ParaLoop(range(-len(X)), **OPTIONS):
        acc += X[i]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange13
# expect: exact
def prange13():
    n = np.int32(4)
    acc = 0
    for i in ParaLoop(range(n), **OPTIONS):
        acc += 1
    return acc, i


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange14
# Inputs: order-sensitive floats instead of np.random.ranf(4).
# expect: exact
def prange14():
    A = np.array(_tricky(30))
    s = 3
    for i in ParaLoop(range(len(A)), **OPTIONS):
        s += A[i] * 2
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange15
# N = 64 instead of 1024.
# expect: exact
def prange15():
    N = 64
    acc = 0
    for i in ParaLoop(range(N), **OPTIONS):
        x = np.ones((1, 1))
        acc += x[0, 0]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange16
# N = 64 instead of 1024.
# expect: exact
def prange16():
    N = 64
    acc = 0
    for i in ParaLoop(range(-N, N), **OPTIONS):
        acc += 2
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange17
# Inputs: order-sensitive floats instead of np.ones(9).
# expect: exact
def prange17():
    N = 9
    acc = 0
    X = np.array(_tricky(N))
    for i in ParaLoop(range(-N, N), **OPTIONS):
        acc += X[i]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange18
# Inputs: order-sensitive floats instead of np.ones(9).
# expect: exact
def prange18():
    N = 9
    acc = 0
    X = np.array(_tricky(N))
    for i in ParaLoop(range(-N, 5), **OPTIONS):
        acc += X[i]
        for j in range(-4, N):
            acc += X[j]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange19
# expect: exact
def prange19():
    N = 9
    acc = 0
    M = N + 4
    X = np.ones((N, M))
    for i in ParaLoop(range(-N, N), **OPTIONS):
        for j in range(-M, M):
            acc += X[i, j]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange20
# Inputs: order-sensitive floats instead of np.ones(9).
# expect: exact
def prange20():
    N = 9
    acc = 0
    X = np.array(_tricky(N))
    for i in ParaLoop(range(-1, N), **OPTIONS):
        acc += X[i]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange21
# expect: exact
def prange21():
    acc = 0
    for i in ParaLoop(range(-3, -1), **OPTIONS):
        acc += 3
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange22
# Writes at negative indexes of an np.empty array.
# expect: exact
def prange22():
    a = 0
    b = 3
    A = np.empty(4)
    for i in ParaLoop(range(-2, 2), **OPTIONS):
        if i == a:
            A[i] = b
        elif i < 1:
            A[i] = -1
        else:
            A[i] = 7
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange23
# A non-contiguous array written at the loop's index.
# expect: exact
def prange23():
    A = np.zeros(32)[::2]
    for i in ParaLoop(range(len(A)), **OPTIONS):
        A[i] = i
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange24
# expect: exact
def prange24():
    A = np.zeros(32)[::2]
    for i in ParaLoop(range(-len(A), 0), **OPTIONS):
        A[i] = i
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange25
# A list of arrays, each slot replaced.
# expect: exact
def prange25():
    A = np.ones((10,))
    n = len(A)
    buf = [np.zeros_like(A) for _ in range(n)]
    for i in ParaLoop(range(n), **OPTIONS):
        buf[i] = A + i
    return buf


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange26
# B is a view of A made before the loop; the caller looks at A. Section 5: a change through a
# view is combined or refused.
# expect: exact-or-refused
def prange26():
    A = np.zeros(32)[::2]
    B = A[::3]
    for i in ParaLoop(range(len(B)), **OPTIONS):
        B[i] = i
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange27
# The inner loop is the parallel one (patch_instance=[1]); z is bound by its iterations.
# expect: exact
def prange27():
    a = np.arange(20)
    b = np.asarray([4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    c = 0
    for j in range(b[0] - 1):
        for k in ParaLoop(range(2), **OPTIONS):
            z = np.abs(a[c - 1 : c + 1])
    return 0, z, k


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange28
# expect: exact
def prange28():
    x = np.array([[-1.0, -1.0], [-1.0, 1.0], [0.0, 0.0], [1.0, -1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    out = np.zeros(len(y))
    for idx in ParaLoop(range(0, len(y)), **OPTIONS):
        i0 = y[idx, 0]
        i1 = y[idx, 1]
        Pt1 = x[i0]
        Pt2 = x[i1]
        v = Pt1 - Pt2
        vl2 = v[0] + v[1]
        out[idx] = vl2
    return out, vl2


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange29
# The loops sit in the branches of an if; the test calls it with True and with False.
# expect: exact
def prange29():
    def test_impl(flag):
        result = 0
        if flag:
            for i in ParaLoop(range(1), **OPTIONS):
                result += 1
        else:
            for i in ParaLoop(range(1), **OPTIONS):
                result -= 3
        return result

    return test_impl(True), test_impl(False)


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeBasic::test_prange30
# Each iteration writes a block of columns of a 2-D array (a broadcast slice write).
# expect: exact
def prange30():
    x = np.array(np.arange(0, 6, 1.0))
    par = np.array([1.0, 2.0, 3.0])
    numthreads = 2
    n_par = par.shape[0]
    n_x = len(x)
    result = np.zeros((n_par, n_x), dtype=np.float64)
    chunklen = (len(x) + numthreads - 1) // numthreads
    for i in ParaLoop(range(numthreads), **OPTIONS):
        start = i * chunklen
        stop = (i + 1) * chunklen
        result[:, start:stop] = x[start:stop] * par[:]
    return result, start, stop


# --- TestPrangeSpecific ------------------------------------------------------------------


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_prange_two_instances_same_reduction_var
# n = 20 instead of 9, so that the second update runs.
# expect: exact
def prange_two_instances_same_reduction_var():
    n = 20
    c = 0
    for i in ParaLoop(range(n), **OPTIONS):
        c += 1
        if i > 10:
            c += 1
    return c


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_prange_conflicting_reduction_ops
# numba refuses it; so may paraloop (section 6: mixing += with *=).
# expect: exact-or-refused
def prange_conflicting_reduction_ops():
    n = 20
    c = 0
    for i in ParaLoop(range(n), **OPTIONS):
        c += 1
        if i > 10:
            c *= 1
    return c


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_prange_two_conditional_reductions
# range(4) instead of range(1), so that both branches run.
# expect: exact
def prange_two_conditional_reductions():
    A = B = 0
    for k in ParaLoop(range(4), **OPTIONS):
        if k == 2:
            A += 1
        else:
            x = np.zeros((1, 1))
            if x[0, 0]:
                B += 1
    return A, B


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_prange_nested_reduction1
# expect: exact
def prange_nested_reduction1():
    A = 0
    for k in ParaLoop(range(5), **OPTIONS):
        for i in range(3):
            if i == 0:
                A += 1
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_check_alias_analysis
# B = A[i] is a view of a row of A; B[:] = 1 writes A through it (section 5: combined or refused).
# expect: exact-or-refused
def check_alias_analysis():
    A = np.zeros(32).reshape(4, 8)
    for i in ParaLoop(range(len(A)), **OPTIONS):
        B = A[i]
        B[:] = 1
    return A


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_parfor_alias1
# a is a view of b made before the loop; the caller reads b.
# expect: exact-or-refused
def parfor_alias1():
    n = 4
    b = np.zeros((n, n))
    a = b[0]
    for j in ParaLoop(range(n), **OPTIONS):
        a[j] = j + 1
    return b.sum(), b


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_parfor_alias2
# expect: exact-or-refused
def parfor_alias2():
    n = 4
    b = np.zeros((n, n))
    for i in ParaLoop(range(n), **OPTIONS):
        a = b[i]
        for j in range(n):
            a[j] = i + j
    return b.sum(), b


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_parfor_alias3
# expect: exact-or-refused
def parfor_alias3():
    n = 4
    b = np.zeros((n, n, n))
    for i in ParaLoop(range(n), **OPTIONS):
        a = b[i]
        for j in range(n):
            c = a[j]
            for k in range(n):
                c[k] = i + j + k
    return b.sum(), b


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_parfor_race_1
# k is assigned in every iteration and read after the loop (lastprivate).
# expect: exact
def parfor_race_1():
    x, y = 10, 20
    for j in ParaLoop(range(y), **OPTIONS):
        k = x
    return k, j


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_nested_parfor_push_call_vars
# B collects -0.0s onto the int 0: the float bits (the sign of zero) matter.
# expect: exact
def nested_parfor_push_call_vars():
    B = 0
    f = np.negative
    for i in ParaLoop(range(1), **OPTIONS):
        this_matters = f(1.0)
        B += f(np.zeros(1))[0]
    for i in ParaLoop(range(2), **OPTIONS):
        this_matters = f(1.0)
        B += f(np.zeros(1))[0]
    return B, this_matters


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_copy_global_for_parfor
# The outer loop is the parallel one (patch_instance=[0]); lh and lc are whole-array sums.
# expect: exact
def copy_global_for_parfor():
    m = 2
    zz = np.ones((m, m, m))
    tc = np.ones(m, dtype=np.int_)
    lh = np.zeros(len(tc))
    lc = np.zeros(len(tc))
    for i in ParaLoop(range(1), **OPTIONS):
        nt = tc[i]
        for t in range(nt):
            lh += np.exp(zz[i, t])
        for t in range(nt):
            lc += np.exp(zz[i, t])
    return lh, lc


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_multiple_call_getattr_object
# expect: exact
def multiple_call_getattr_object():
    n = 1.0
    B = 0
    f = np.negative
    for i in ParaLoop(range(1), **OPTIONS):
        this_matters = f(1.0)
        B += f(n)
    return B, this_matters


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_argument_alias_recarray_field
# n.x is a view of a field of the record array: a change through an attribute (section 6).
# expect: exact-or-refused
def argument_alias_recarray_field():
    n = np.zeros(10, dtype=[("x", float), ("y", int)]).view(np.recarray)
    for i in ParaLoop(range(len(n)), **OPTIONS):
        n.x[i] = 7.0
    return n.tolist()


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_mutable_list_param
# X is made in each iteration and changed by a function; a is read after the loop.
# expect: exact
def mutable_list_param():
    n = 10
    for i in ParaLoop(range(n), **OPTIONS):
        X = [100]
        a = _list_check(X)
    return a, X


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_list_comprehension_prange
# expect: exact
def list_comprehension_prange():
    x = [np.array([1, 2, 3], dtype=int), np.array([1, 2], dtype=int)]
    return np.array([len(x[i]) for i in ParaLoop(range(len(x)), **OPTIONS)])


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_ssa_false_reduction
# With a == b == 0 every iteration assigns h before reading it, but on the path where both tests
# fail h would come from an earlier iteration: the documented refusal of such names is fine.
# expect: exact-or-refused
def ssa_false_reduction():
    image = np.zeros((3, 3), dtype=np.int32)
    a = b = 0
    empty = np.zeros(image.shape)
    for i in ParaLoop(range(image.shape[0]), **OPTIONS):
        r = image[i][0] / 255.0
        if a == 0:
            h = 0
        if b == 0:
            h = 0
        empty[i] = [h, h, h]
    return empty, r, h


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_list_setitem_hoisting
# expect: exact
def list_setitem_hoisting():
    n = 5
    a = np.empty(n, dtype=np.int64)
    for k in ParaLoop(range(5), **OPTIONS):
        X = [0]
        X[0] = 1
        a[k] = X[0]
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_tuple_hoisting
# numba's typed Dict becomes a dict.
# expect: exact
def tuple_hoisting():
    inputs = [{i: float(i)} for i in range(5)]
    outputs = [({}, np.zeros(1)) for _ in range(len(inputs))]
    for i in ParaLoop(range(len(inputs)), **OPTIONS):
        y = inputs[i]
        out = np.zeros(1)
        out[0] = i
        outputs[i] = (inputs[i], out)
    return outputs[0][1][0], outputs


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_record_array_setitem
# states[i] is a record of the array: a change through an item (section 5: combined or refused).
# expect: exact-or-refused
def record_array_setitem():
    states = np.zeros(shape=4, dtype=np.dtype([("var", np.int32)]))
    for i in ParaLoop(range(1), **OPTIONS):
        states[i]["var"] = 1
    return states.tolist()


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_record_array_setitem_yield_array
# states["x"] is a view of a field.
# expect: exact-or-refused
def record_array_setitem_yield_array():
    states = np.zeros(10, dtype=np.dtype([("x", np.intp)]))
    n = states.size
    for i in ParaLoop(range(states.size), **OPTIONS):
        states["x"][i] = 7 + i
    return states.tolist()


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_issue7501
# expect: exact
def issue7501():
    def test_impl(size, case):
        result = np.zeros((size,))
        if case == 1:
            for i in ParaLoop(range(size), **OPTIONS):
                result[i] += 1
        else:
            for i in ParaLoop(range(size), **OPTIONS):
                result[i] += 2
        return result

    return test_impl(3, 1), test_impl(3, 2)


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_kde_example
# exps starts as the int 0 and becomes a numpy float64.
# 40 samples instead of 128.
# expect: exact
def kde_example():
    X = np.random.default_rng(7).random(40)
    b = 0.5
    points = np.array([-1.0, 2.0, 5.0])
    N = points.shape[0]
    n = X.shape[0]
    exps = 0
    for i in ParaLoop(range(n), **OPTIONS):
        p = X[i]
        d = (-((p - points) ** 2)) / (2 * b**2)
        m = np.min(d)
        exps += m - np.log(b * N) + np.log(np.sum(np.exp(d - m)))
    return exps


# origin: numba/numba numba/tests/test_parfors.py::TestPrangeSpecific::test_issue7578
# expect: exact
def issue7578():
    x = np.arange(10.0)
    A = np.zeros_like(x)
    tmp = np.cos(x)
    for i in ParaLoop(range(len(x)), **OPTIONS):
        A[i] = tmp.sum()
    return A


# --- TestParfors -------------------------------------------------------------------------


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_cfg
# Two iterations, each writing its half of is_positive, some elements twice.
# expect: exact
def cfg():
    N = 100
    x = np.random.default_rng(3).random(N) - 0.5
    is_positive = np.zeros(N)
    for i in ParaLoop(range(2), **OPTIONS):
        for j in range(i * N // 2, (i + 1) * N // 2):
            is_positive[j] = 0
            if x[j] > 0:
                is_positive[j] = 1
    return is_positive


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_use_of_reduction_var1
# acc = sqrt(acc) carries acc from one iteration to the next. range(3) instead of range(1).
# expect: exact-or-refused
def use_of_reduction_var1():
    acc = 0
    for i in ParaLoop(range(3), **OPTIONS):
        acc = cmath.sqrt(acc)
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_unsupported_floordiv1
# numba refuses //= as a reduction; so may paraloop.
# expect: exact-or-refused
def unsupported_floordiv1():
    acc = 100
    for i in ParaLoop(range(2), **OPTIONS):
        acc //= 2
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_unsupported_xor1
# numba refuses it, but ^= on ints is an exact reduction (section 4: x = x ^ e).
# expect: exact
def unsupported_xor1():
    acc = 100
    for i in ParaLoop(range(2), **OPTIONS):
        acc ^= i + 2
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_parfor_array_access2
# The second loop reads n besides updating it.
# n = 31 instead of 211.
# expect: exact-or-refused
def parfor_array_access2():
    n = 31
    A = np.ones(n)
    m = 0
    n = 0
    for i in ParaLoop(range(len(A)), **OPTIONS):
        m += A[i]
    for i in ParaLoop(range(len(A)), **OPTIONS):
        if m == n:
            n += A[i]
    return m + n, m, n


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_parfor_array_access3
# Reads the running total m and rebinds the loop name (numba refuses the latter).
# n = 31 instead of 211.
# expect: exact-or-refused
def parfor_array_access3():
    n = 31
    A = np.ones(n, np.int64)
    m = 0
    for i in ParaLoop(range(len(A)), **OPTIONS):
        m += A[i]
        if m == 2:
            i = m
    return m, i


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_parfor_dtype_type
# The body reads a's dtype besides writing its items: not a dependency, but not among the uses
# section 4 lists either, so refusing it is fine.
# expect: exact-or-refused
def parfor_dtype_type():
    a = np.ones(10)
    for i in ParaLoop(range(len(a)), **OPTIONS):
        a[i] = a.dtype.type(0)
    return a[4], a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_parfor_array_access5
# n = 31 instead of 211.
# expect: exact
def parfor_array_access5():
    n = 31
    X = np.ones((n, 3))
    y = 0
    for i in ParaLoop(range(n), **OPTIONS):
        y += X[i, :].sum()
    return y


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_parfor_hoist_setitem
# out[0] = 2 * out[0] carries out[0] from one iteration to the next.
# expect: exact-or-refused
def parfor_hoist_setitem():
    out = np.ones(1)
    for i in ParaLoop(range(10), **OPTIONS):
        out[0] = 2 * out[0]
    return out[0]


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_reduction_var_reuse
# expect: exact
def reduction_var_reuse():
    n = 16
    acc = 0
    for i in ParaLoop(range(n), **OPTIONS):
        acc += 1
    for i in ParaLoop(range(n), **OPTIONS):
        acc += 2
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_non_identity_initial
# expect: exact
def non_identity_initial():
    A = np.ones(10)
    cond = np.ones(10).astype("bool")
    cond[3] = False
    s = 1
    for i in ParaLoop(range(A.shape[0]), **OPTIONS):
        if cond[i]:
            s += 1
    return s


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_if_not_else_reduction
# expect: exact
def if_not_else_reduction():
    A = np.ones(10)
    cond = np.arange(10) % 3 == 0
    s = 1
    t = 10
    for i in ParaLoop(range(A.shape[0]), **OPTIONS):
        if cond[i]:
            s += 1
            t += 1
        else:
            s += 2
    return s + t, s, t


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_two_d_array_reduction_reuse
# n = 30 instead of 100.
# expect: exact
def two_d_array_reduction_reuse():
    n = 30
    shp = (13, 17)
    size = shp[0] * shp[1]
    result1 = np.zeros(shp, np.int_)
    tmp = np.arange(size).reshape(shp)
    for i in ParaLoop(range(n), **OPTIONS):
        result1 += tmp
    for i in ParaLoop(range(n), **OPTIONS):
        result1 += tmp
    return result1


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_one_d_array_reduction
# n = 30 instead of 100.
# expect: exact
def one_d_array_reduction():
    n = 30
    result = np.zeros(1, np.int_)
    for i in ParaLoop(range(n), **OPTIONS):
        result += np.array([i], np.int_)
    return result


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_two_d_array_reduction_with_float_sizes
# A float32 array summing float64 arrays: the result stays float32, rounded as the plain loop does.
# Inputs: a 0.1 among the original 1.0 ... 6.0, so the float32 roundings show.
# n = 30 instead of 100.
# expect: exact
def two_d_array_reduction_with_float_sizes():
    n = 30
    shp = (2, 3)
    result1 = np.zeros(shp, np.float32)
    tmp = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.1]).reshape(shp)
    for i in ParaLoop(range(n), **OPTIONS):
        result1 += tmp
    return result1


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_two_d_array_reduction_prod
# The product overflows int64 and wraps around as in the plain loop.
# n = 70 instead of 100 (2**71 still overflows).
# expect: exact
def two_d_array_reduction_prod():
    n = 70
    shp = (13, 17)
    result1 = 2 * np.ones(shp, np.int_)
    tmp = 2 * np.ones_like(result1)
    for i in ParaLoop(range(n), **OPTIONS):
        result1 *= tmp
    return result1


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_three_d_array_reduction
# n = 30 instead of 100.
# expect: exact
def three_d_array_reduction():
    n = 30
    shp = (3, 2, 7)
    result1 = np.zeros(shp, np.int_)
    for i in ParaLoop(range(n), **OPTIONS):
        result1 += np.ones(shp, np.int_)
    return result1


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_no_hoisting_with_member_function_call
# 40 samples instead of 128.
# expect: exact
def no_hoisting_with_member_function_call():
    X = np.random.default_rng(5).random(40)
    n = X.shape[0]
    acc = 0
    for i in ParaLoop(range(n), **OPTIONS):
        R = {1, 2, 3}
        R.add(i)
        tmp = 0
        for x in R:
            tmp += x
        acc += tmp
    return acc, R


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_side_effects
# The second loop is x[i] = f(x[i]) at the loop's own index.
# expect: exact
def prange_side_effects():
    a = np.arange(10**2, dtype=float) * 0.1
    b = np.arange(10**2, dtype=float) * 0.3
    data = np.empty(len(a), dtype=np.float64)
    size = len(data)
    for i in ParaLoop(range(size), **OPTIONS):
        data[i] = a[i]
    for i in ParaLoop(range(size), **OPTIONS):
        data[i] = data[i] + b[i]
    return data


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_tuple1
# expect: exact
def tuple1():
    a = np.arange(10)
    atup = (3, 4)
    b = 7
    for i in ParaLoop(range(len(a)), **OPTIONS):
        a[i] += atup[0] + atup[1] + b
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_tuple2
# expect: exact
def tuple2():
    a = np.arange(10)
    atup = a.shape
    b = 7
    for i in ParaLoop(range(len(a)), **OPTIONS):
        a[i] += atup[0] + b
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_unknown_call1
# A function called from the body changes u (and reads the row the next iteration writes).
# Section 5: a change made by a function called from the body is combined or refused.
# expect: exact-or-refused
def prange_unknown_call1():
    size = 4
    u = np.zeros((size, size))
    for i in ParaLoop(range(1, size - 1), **OPTIONS):
        _issue7854_proc(u, i, 0, size)
    for i in ParaLoop(range(1, size - 1), **OPTIONS):
        _issue7854_proc(u, i, 1, size)
    return u


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_index_calc1
# u[i, j] = u[i + 1, j] + 1 reads a row another iteration writes.
# expect: exact-or-refused
def prange_index_calc1():
    size = 4
    u = np.zeros((size, size))
    for i in ParaLoop(range(1, size - 1), **OPTIONS):
        for j in range((i + 1) % 2 + 1, size - 1, 2):
            u[i, j] = u[i + 1, j] + 1
    for i in ParaLoop(range(1, size - 1), **OPTIONS):
        for j in range(i % 2 + 1, size - 1, 2):
            u[i, j] = u[i + 1, j] + 1
    return u


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_reverse_order1
# expect: exact
def prange_reverse_order1():
    size = 10
    a = np.zeros((size, size))
    b = np.zeros((size, size))
    for i in ParaLoop(range(size), **OPTIONS):
        for j in range(size):
            a[i, j] = b[i, j] + 1
    for i in ParaLoop(range(size), **OPTIONS):
        for j in range(size):
            b[j, i] = 3
    return a[0, 0] + b[0, 0], a, b


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_parfor_index_then_not
# expect: exact
def prange_parfor_index_then_not():
    size = 10
    a = np.zeros(size)
    b = 0
    for i in ParaLoop(range(size), **OPTIONS):
        a[i] = i
    for i in ParaLoop(range(size), **OPTIONS):
        b += a[5]
    return b, a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_parfor_index_const_tuple_fusion
# expect: exact
def prange_parfor_index_const_tuple_fusion():
    size = 10
    a = np.zeros(size)
    tup = tuple(np.arange(size) * 0.1)
    acc = 0
    for i in ParaLoop(range(size), **OPTIONS):
        a[i] = i + tup[i]
    for i in ParaLoop(range(size), **OPTIONS):
        acc += a[i] + tup[1]
    return acc, a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_non_parfor_index_then_opposite
# expect: exact
def prange_non_parfor_index_then_opposite():
    size = 10
    a = np.arange(size) * 0.5
    b = np.zeros(size)
    for i in ParaLoop(range(size), **OPTIONS):
        b[i] = a[5]
    for i in ParaLoop(range(size), **OPTIONS):
        a[i] = i
    b[0] += a[0]
    return b, a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_prange_optional
# Run with pred=None (as the test does) and with pred=0.
# expect: exact
def prange_optional():
    results = []
    for pred in (None, 0):
        arr = np.ones(10)
        for i in ParaLoop(range(1), **OPTIONS):
            if pred is not None:
                arr[i] = 0.0
        results.append(arr)
    return results


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_untraced_value_parfor
# expect: exact
def untraced_value_parfor():
    arr = np.arange(10, dtype=np.int64)
    a = (1.2, 1.3)
    n1 = len(arr)
    arr2 = np.empty(n1, np.float64)
    for i in ParaLoop(range(n1), **OPTIONS):
        arr2[i] = arr[i] * a[0]
    n2 = len(arr2)
    arr3 = np.empty(n2, np.float64)
    for j in ParaLoop(range(n2), **OPTIONS):
        arr3[j] = arr2[j] - a[1]
    total = 0.0
    n3 = len(arr3)
    for k in ParaLoop(range(n3), **OPTIONS):
        total += arr3[k]
    return total + a[0]


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_setitem_2d_one_replaced
# count is a running index: read as an index besides its update.
# expect: exact-or-refused
def setitem_2d_one_replaced():
    x = np.zeros((3, 1))
    count = 0
    for n in ParaLoop(range(x.shape[0]), **OPTIONS):
        if n:
            n
        x[count, :] = 1
        count += 1
    return x, count


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue8515
# c[i] += 1 at the loop's index from an inner loop; the second loop reads c, skips i == 0.
# expect: exact
def issue8515():
    n = 15
    r = np.zeros(n, dtype=np.intp)
    c = np.zeros(n, dtype=np.intp)
    for i in ParaLoop(range(n), **OPTIONS):
        for j in range(i):
            c[i] += 1
    for i in ParaLoop(range(n), **OPTIONS):
        if i == 0:
            continue
        r[i] = c[i] - c[i - 1]
    return r[1:]


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue8515
# Variant: the second loop as a recurrence, r[i] = r[i - 1] + c[i] (a prefix sum).
# expect: exact-or-refused
def issue8515_recurrence():
    n = 15
    r = np.zeros(n, dtype=np.intp)
    c = np.arange(n, dtype=np.intp)
    for i in ParaLoop(range(n), **OPTIONS):
        if i == 0:
            continue
        r[i] = r[i - 1] + c[i]
    return r


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue9029
# N = 3 instead of 30 (the parallel loop runs N * N times).
# expect: exact
def issue9029():
    i1, i2 = 0, 3
    N = 3
    S = 3
    a = np.empty((N, N))
    for y in range(N):
        for x in range(N):
            values = np.ones(S)
            v = values[0]
            p2 = np.empty(S)
            for i in ParaLoop(range(i1, i2), **OPTIONS):
                p2[i] = 1
            j = p2[0]
            a[y, x] = v + j
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue9256_lower_sroa_conflict
# expect: exact
def issue9256_lower_sroa_conflict():
    x = 10
    c = 0
    for i in ParaLoop(range(x), **OPTIONS):
        c = i
    return c


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue9256_lower_sroa_conflict_variant1
# expect: exact
def issue9256_lower_sroa_conflict_variant1():
    x = 4
    c = x
    for _i in ParaLoop(range(x), **OPTIONS):
        if c:
            d = x + 4
    return c, d > 0, d


# origin: numba/numba numba/tests/test_parfors.py::TestParfors::test_issue9256_lower_sroa_conflict_variant2
# expect: exact
def issue9256_lower_sroa_conflict_variant2():
    x = 4
    c = x
    for _i in ParaLoop(range(x), **OPTIONS):
        if c:
            for _j in range(x):
                d = x + 4
    return c, d > 0, d, _j


# --- TestParforsLeaks, TestParforsMisc, TestParforsDiagnostics, TestParforReductionSetNumThreads ---


# origin: numba/numba numba/tests/test_parfors.py::TestParforsLeaks::test_multiple_reduction_vars
# expect: exact
def multiple_reduction_vars():
    arr = np.arange(10).astype(np.float64)
    a = 0.0
    b = 1.0
    for i in ParaLoop(range(arr.size), **OPTIONS):
        a += arr[i]
        b += 1.0 / (arr[i] + 1)
    return a * b, a, b


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue5001
# expect: exact
def issue5001():
    myarray = (np.empty(100), np.empty(50))
    result = [0] * len(myarray)
    for i in ParaLoop(range(len(myarray)), **OPTIONS):
        result[i] = len(myarray[i])
    return result


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue3748
# expect: exact
def issue3748():
    x = (1, 2, 3, 4, 5)
    a = 0
    for i in ParaLoop(range(len(x)), **OPTIONS):
        a += x[i]
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue5277
# Nested parallel loops; arr[y] is a view of a row, written at [x] (a change through an item).
# expect: exact-or-refused
def issue5277():
    size = (10, 10)
    arr = np.zeros(size, dtype=int)
    for x in ParaLoop(range(size[0]), **OPTIONS):
        for y in ParaLoop(range(size[1]), **OPTIONS):
            arr[y][x] = x * 4.5 + y
    return arr


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue5570_ssa_races
# expect: exact
def issue5570_ssa_races():
    method = 57
    out = np.zeros((2, 2))
    for i in ParaLoop(range(1), **OPTIONS):
        for j in range(1):
            out[i, j] = 1
    if method:
        out += 1
    return out


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue6095_numpy_max
# z_stack, a view bound in the body, is read after the loop.
# expect: exact
def issue6095_numpy_max():
    package = np.random.default_rng(0).random((10, 10, 10))
    for index in ParaLoop(range(0, 10), **OPTIONS):
        z_stack = package[index, :, :]
    return np.max(z_stack), z_stack


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue5942_1
# A row write, then an element update in the same row (the loop's own index).
# expect: exact
def issue5942_1():
    d = 4
    k = 2
    gg = np.arange(d * k, dtype=np.int32).reshape((d, k))
    gg_next = np.zeros((d, k), dtype=np.int32)
    gs = gg.shape
    d = gs[0]
    for i_gg in ParaLoop(range(d), **OPTIONS):
        gg_next[i_gg, :] = gg[i_gg, :]
        gg_next[i_gg, 0] += 1
    return gg_next


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue5942_2
# expect: exact
def issue5942_2():
    d = 4
    k = 2
    gg = np.zeros((d, k), dtype=np.int32)
    gg_next = np.zeros((d, k), dtype=np.int32)
    for i_gg in ParaLoop(range(d), **OPTIONS):
        for n in range(k):
            gg[i_gg, n] = i_gg
        gg_next[i_gg, :] = gg[i_gg, :]
        gg_next[i_gg, 0] += 1
    return gg_next, gg


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue6102
# r[ir, :] += tr: an update of the loop's own row by a float32 array.
# expect: exact
def issue6102():
    r = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for ir in ParaLoop(range(r.shape[0]), **OPTIONS):
        dist = np.inf
        tr = np.array([0, 0, 0], dtype=np.float32)
        for i in [1, 0, -1]:
            dist_t = np.linalg.norm(r[ir, :] + i)
            if dist_t < dist:
                dist = dist_t
                tr = np.array([i, i, i], dtype=np.float32)
        r[ir, :] += tr
    return r


# origin: numba/numba numba/tests/test_parfors.py::TestParforsMisc::test_issue6774
# expect: exact
def issue6774():
    n = 5
    na_mask = np.ones((n,))
    result = np.empty((n - 1,))
    for i in ParaLoop(range(len(result)), **OPTIONS):
        result[i] = np.sum(na_mask[i : i + 1])
    return result


# origin: numba/numba numba/tests/test_parfors.py::TestParforsDiagnostics::test_prange
# expect: exact
def diagnostics_prange():
    n = 10
    a = np.empty(n)
    for i in ParaLoop(range(n), **OPTIONS):
        a[i] = i * 10
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParforsDiagnostics::test_user_varname
# Nested parallel loops summing floats.
# expect: exact
def diagnostics_user_varname():
    n = 10
    x = np.ones(n)
    a = np.sin(x)
    b = np.cos(a * a)
    acc = 0
    for i in ParaLoop(range(n - 2), **OPTIONS):
        for j in ParaLoop(range(n - 1), **OPTIONS):
            acc += b[i] + b[j + 1]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParforsDiagnostics::test_nested_prange
# expect: exact
def diagnostics_nested_prange():
    n = 10
    a = np.empty((n, n))
    for i in ParaLoop(range(n), **OPTIONS):
        for j in ParaLoop(range(n), **OPTIONS):
            a[i, j] = i * 10 + j
    return a


# origin: numba/numba numba/tests/test_parfors.py::TestParforsDiagnostics::test_reduction_binop
# The written-out form acc = acc - a[i]. Inputs: order-sensitive floats instead of np.ones(11).
# expect: exact
def diagnostics_reduction_binop():
    n = 10
    a = np.array(_tricky(n + 1))
    acc = 0
    for i in ParaLoop(range(n), **OPTIONS):
        acc = acc - a[i]
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParforsDiagnostics::test_allocation_hoisting
# expect: exact
def diagnostics_allocation_hoisting():
    n = 10
    m = 5
    acc = 0
    for i in ParaLoop(range(n), **OPTIONS):
        temp = np.zeros((m,))
        for j in range(m):
            temp[j] = i
        acc += temp[-1]
    return acc, temp


# origin: numba/numba numba/tests/test_parfors.py::TestParforReductionSetNumThreads::test_add
# get_num_threads() after set_num_threads(local_mask) is local_mask.
# expect: exact
def set_num_threads_add():
    mask = 3
    M = 8
    acc = 0
    for i in ParaLoop(range(M), **OPTIONS):
        local_mask = 1 + i % mask
        gnt = local_mask
        acc += gnt
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParforReductionSetNumThreads::test_mul
# expect: exact
def set_num_threads_mul():
    mask = 3
    M = 8
    acc = 1
    for i in ParaLoop(range(M), **OPTIONS):
        local_mask = 1 + i % mask
        gnt = local_mask
        acc *= gnt
    return acc


# origin: numba/numba numba/tests/test_parfors.py::TestParforReductionSetNumThreads::test_max
# expect: exact
def set_num_threads_max():
    mask = 3
    M = 8
    acc = 1
    for i in ParaLoop(range(M), **OPTIONS):
        local_mask = 1 + i % mask
        gnt = local_mask
        acc = max(acc, gnt)
    return acc


# --- numba/tests/test_parfors_passes.py --------------------------------------------------


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_reduce_simple
# expect: exact
def passes_prange_reduce_simple():
    n = 20
    c = 0
    for i in ParaLoop(range(n), **OPTIONS):
        c += i
    return c


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_map_simple
# expect: exact
def passes_prange_map_simple():
    n = 20
    arr = np.ones(n)
    for i in ParaLoop(range(n), **OPTIONS):
        arr[i] += i
    return arr


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_map_simple
# Variant: the same loop with -=, *= and /= at the loop's index (section 4 lists all four).
# expect: exact
def passes_prange_map_simple_other_ops():
    n = 20
    sub = np.ones(n)
    mul = np.full(n, 0.1)
    div = np.full(n, 1.0)
    for i in ParaLoop(range(n), **OPTIONS):
        sub[i] -= i * 0.1
        mul[i] *= i + 0.5
        div[i] /= i + 3
    return sub, mul, div


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_two_args
# expect: exact
def passes_prange_two_args():
    n = 20
    arr = np.ones(n)
    for i in ParaLoop(range(3, n), **OPTIONS):
        arr[i] += i
    return arr


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_three_args
# numba refuses a step; a Python range with a step is an ordinary iterable.
# expect: exact
def passes_prange_three_args():
    n = 20
    arr = np.ones(n)
    for i in ParaLoop(range(3, n, 2), **OPTIONS):
        arr[i] += i
    return arr


# origin: numba/numba numba/tests/test_parfors_passes.py::TestConvertLoopPass::test_prange_map_inner_loop
# expect: exact
def passes_prange_map_inner_loop():
    n = 20
    arr = np.ones((n, n))
    for i in ParaLoop(range(n), **OPTIONS):
        for j in range(i):
            arr[i, j] += i + j * n
    return arr


# --- docs/source/user/parallel.rst -------------------------------------------------------


# origin: numba/numba docs/source/user/parallel.rst (Explicit Parallel Loops: prange_test)
# Inputs: order-sensitive floats.
# expect: exact
def docs_prange_test():
    A = np.array(_tricky(50))
    s = 0
    for i in ParaLoop(range(A.shape[0]), **OPTIONS):
        s += A[i]
    return s


# origin: numba/numba docs/source/user/parallel.rst (prange_wrong_result: y[:] += x[i])
# A race in numba; in Python every element of y is a sum over all iterations.
# expect: exact
def docs_prange_wrong_result_slice():
    x = np.array(_tricky(24))
    n = x.shape[0]
    y = np.zeros(4)
    for i in ParaLoop(range(n), **OPTIONS):
        y[:] += x[i]
    return y


# origin: numba/numba docs/source/user/parallel.rst (prange_wrong_result: y[i % 4] += x[i])
# A histogram: iterations share the indexes, each element is a per-index sum.
# expect: exact
def docs_prange_wrong_result_index():
    x = np.array(_tricky(24))
    n = x.shape[0]
    y = np.zeros(4)
    for i in ParaLoop(range(n), **OPTIONS):
        y[i % 4] += x[i]
    return y


# origin: numba/numba docs/source/user/parallel.rst (prange_ok_result_whole_arr)
# expect: exact
def docs_prange_ok_result_whole_arr():
    x = np.array(_tricky(24))
    n = x.shape[0]
    y = np.zeros(4)
    for i in ParaLoop(range(n), **OPTIONS):
        y += x[i]
    return y


# origin: numba/numba docs/source/user/parallel.rst (prange_ok_result_outer_slice)
# z is a view of y made before the loop; the caller reads y (section 5: combined or refused).
# expect: exact-or-refused
def docs_prange_ok_result_outer_slice():
    x = np.array(_tricky(24))
    n = x.shape[0]
    y = np.zeros(4)
    z = y[:]
    for i in ParaLoop(range(n), **OPTIONS):
        z += x[i]
    return y


# origin: numba/numba docs/source/user/parallel.rst (Unsupported Operations: z.append(i))
# 300 iterations instead of 10000.
# expect: exact
def docs_list_append():
    z = []
    for i in ParaLoop(range(300), **OPTIONS):
        z.append(i)
    return z


# origin: numba/numba docs/source/user/parallel.rst (Unsupported Operations: z[i % n] += i)
# A histogram on a list: iterations share the indexes.
# expect: exact
def docs_list_index_sum():
    n = 4
    z = [0 for _ in range(n)]
    for i in ParaLoop(range(100), **OPTIONS):
        z[i % n] += i
    return z


# origin: numba/numba docs/source/user/parallel.rst (Unsupported Operations: z[i % n] += i)
# Variant: the histogram on a defaultdict(list), a bytearray and with float weights.
# expect: exact
def docs_index_sum_variants():
    groups = defaultdict(list)
    counts = bytearray(5)
    weights = [0.0] * 3
    values = _tricky(60)
    for i in ParaLoop(range(60), **OPTIONS):
        groups[i % 4] += [i]
        counts[i % 5] += 1
        weights[i % 3] += values[i]
    return groups, counts, weights


# origin: numba/numba docs/source/user/parallel.rst (Allocation hoisting, after hoisting)
# A scratch array made before the loop, zeroed and written in each iteration; read after it.
# expect: exact
def docs_allocation_hoisting():
    n = 6
    temp = np.empty((50, 50))
    for i in ParaLoop(range(n), **OPTIONS):
        temp[:] = 0
        for j in range(50):
            temp[j, j] = i
    return temp
