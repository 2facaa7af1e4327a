# paraloop: enable
"""Loops from joblib's tests and examples, translated into ParaLoop loops.

Origins: joblib/joblib, joblib/test/test_parallel.py, joblib/test/test_memmapping.py,
joblib/test/test_dask.py and the examples examples/parallel_memmap.py, parallel_random_state.py,
parallel_generator.py, nested_parallel_memory.py and serialization_and_wrappers.py. joblib writes
``Parallel(n_jobs=...)(delayed(f)(x) for x in xs)``: each case runs the plain loop that builds the
same list, ``for x in ParaLoop(xs, **OPTIONS): results.append(f(x))`` (or the list comprehension),
with joblib's own helper functions (here with a ``_`` in front of their names) called from the body
as the original calls them. Where the original's function changes an argument in place, a second
case writes the same change in the body itself. ``with raises(E):`` becomes a ``# raises:``
comment, or an ``except E`` whose observations the case returns. Sleeps of seconds are cut to
fractions of a second, memory-mapped files are plain arrays, and sizes are smaller. Each case is a
top-level function without parameters; the comment block right above it names its origin
(``# origin:``) and what paraloop must give (``# expect: exact`` or ``# expect: exact-or-refused``);
tests/test_prange_suites.py reads it. Functions whose names start with ``_`` are helpers that every
case may call.
"""

# ruff: noqa: E731, UP004, UP031

import time
from math import sqrt
from queue import Queue

import numpy as np

from paraloop import ParaLoop

#: The test sets the loops' options before each call.
OPTIONS = {"num_processes": 2}


# --- joblib/test/test_parallel.py helpers ---------------------------------------------------


def _division(x, y):
    return x / y


def _square(x):
    return x**2


class MyExceptionWithFinickyInit(Exception):
    """An exception class with non trivial __init__"""

    def __init__(self, a, b, c, d):
        pass


def _exception_raiser(x, custom_exception=False):
    if x == 7:
        raise (MyExceptionWithFinickyInit("a", "b", "c", "d") if custom_exception else ValueError)
    return x


def _f(x, y=0, z=0):
    return x**2 + y + z


def _nested_loop():
    # test_parallel.py: nested_loop, Parallel(n_jobs=2)(delayed(square)(.01) for _ in range(2))
    out = []
    for _ in ParaLoop(range(2), **OPTIONS):
        out.append(_square(0.01))
    return out


def _my_generator(raise_at=0):
    # test_parallel.py::test_error_in_task_iterator: my_generator
    for i in range(20):
        if i == raise_at:
            raise ValueError("Iterator Raising Error")
        yield i


def _consumer(queue, item):
    queue.append("Consumed %s" % item)


def _set_list_value(input_list, index, value):
    input_list[index] = value
    return value


def _sqrt_with_delay(e, delay):
    if delay:
        time.sleep(0.05)  # 30 s in the original
    return sqrt(e)


def _inspect_byteorder(x):
    # test_parallel.py::test_parallel_byteorder_corruption: inspect_byteorder
    return x, x.dtype.byteorder


# --- joblib/test/test_memmapping.py helpers -------------------------------------------------


def _fill(arr, value):
    # test_memmapping.py::test_numpy_arrays_use_different_memory: func
    arr[:] = value
    return arr


def _worker_multiply(a, n_times):
    return a * n_times


# --- joblib/test/test_dask.py helpers -------------------------------------------------------


def _inc(x):
    # distributed.utils_test.inc, imported by test_dask.py
    return x + 1


def _slow_raise_value_error(condition, duration=0.05):
    time.sleep(duration)
    if condition:
        raise ValueError("condition evaluated to True")


def _noop(*args, **kwargs):
    pass


def _isolated_operation(list_, data=None):
    # test_dask.py::test_no_undesired_distributed_cache_hit: isolated_operation (its data check
    # dropped); uuid4().hex appended in the original, a fixed string here.
    list_.append("4f1c0ffee")
    return list_


def _my_sum(x, i, j):
    return np.sum(x)


def _outer_function_joblib(array, i):
    # test_dask.py::test_nested_scatter: outer_function_joblib (NUM_INNER_TASKS = 10); its
    # sum(results) written as a loop of +=.
    results = []
    for j in ParaLoop(range(10), **OPTIONS):
        results.append(_my_sum(array[j:], i, j))
    total = 0
    for r in results:
        total += r
    return total


# --- examples helpers ------------------------------------------------------------------------


def _slow_mean(data, sl):
    # examples/parallel_memmap.py: slow_mean (its time.sleep(0.01) dropped)
    return data[sl].mean()


def _slow_mean_write_output(data, sl, output, idx):
    # examples/parallel_memmap.py: slow_mean_write_output (sleep and print dropped)
    res_ = data[sl].mean()
    output[idx] = res_


def _stochastic_function_seeded(max_value, random_state):
    # examples/parallel_random_state.py: stochastic_function_seeded
    rng = np.random.RandomState(random_state)
    return rng.randint(max_value, size=5)


def _return_big_object(i):
    # examples/parallel_generator.py: return_big_object, (10000, 200) there, no sleep
    return i * np.ones((100, 20), dtype=np.float64)


def _costly_compute(data, column):
    # examples/nested_parallel_memory.py: costly_compute (its time.sleep(2) dropped)
    return data[column]


def _data_processing_mean(data, column):
    return _costly_compute(data, column).mean()


def _data_processing_max(data, column):
    return _costly_compute(data, column).max()


def _func_async(i, *args):
    # examples/serialization_and_wrappers.py: func_async
    return 2 * i


# --- test_parallel.py ---------------------------------------------------------------------


# origin: joblib/joblib joblib/test/test_parallel.py::test_simple_parallel
# expect: exact
def simple_parallel():
    results = []
    for x in ParaLoop(range(5), **OPTIONS):
        results.append(_square(x))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_simple_parallel
# The list comprehension closest to joblib's generator of delayed calls.
# expect: exact
def simple_parallel_comprehension():
    return [_square(x) for x in ParaLoop(range(5), **OPTIONS)]


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_kwargs
# expect: exact
def parallel_kwargs():
    lst = range(10)
    results = []
    for x in ParaLoop(lst, **OPTIONS):
        results.append(_f(x, y=1))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_capture division(x, y) for x, y in zip((0, 1), (1, 0))
# raises: ZeroDivisionError
# expect: exact
def error_capture_division():
    results = []
    for x, y in ParaLoop(zip((0, 1), (1, 0)), **OPTIONS):
        results.append(_division(x, y))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_capture division(x, y) for x, y in zip((0, 1), (1, 0))
# Caught: the list as the plain loop left it when the second iteration raised.
# expect: exact
def error_capture_division_caught():
    results = []
    try:
        for x, y in ParaLoop(zip((0, 1), (1, 0)), **OPTIONS):
            results.append(_division(x, y))
    except ZeroDivisionError as error:
        return results, error.args
    return results, None


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_capture exception_raiser(i, custom_exception=True) for i in range(30)
# An exception whose __init__ takes four arguments, caught by its class.
# expect: exact
def error_capture_finicky_init():
    results = []
    try:
        for i in ParaLoop(range(30), **OPTIONS):
            results.append(_exception_raiser(i, custom_exception=True))
    except MyExceptionWithFinickyInit as error:
        return results, type(error).__name__, error.args
    return results, None, None


# origin: joblib/joblib joblib/test/test_parallel.py::test_exception_dispatch
# raises: ValueError
# expect: exact
def exception_dispatch():
    results = []
    for i in ParaLoop(range(30), **OPTIONS):
        results.append(_exception_raiser(i))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_in_task_iterator raise_at=0
# raises: ValueError
# expect: exact
def error_in_task_iterator_first():
    results = []
    for i in ParaLoop(_my_generator(raise_at=0), **OPTIONS):
        results.append(_square(i))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_in_task_iterator raise_at=5
# Caught: the squares of the five items the generator gave before it raised.
# expect: exact
def error_in_task_iterator_fifth():
    results = []
    try:
        for i in ParaLoop(_my_generator(raise_at=5), **OPTIONS):
            results.append(_square(i))
    except ValueError as error:
        return results, str(error)
    return results, None


# origin: joblib/joblib joblib/test/test_parallel.py::test_error_in_task_iterator raise_at=19
# expect: exact
def error_in_task_iterator_last():
    results = []
    try:
        for i in ParaLoop(_my_generator(raise_at=19), **OPTIONS):
            results.append(_square(i))
    except ValueError as error:
        return results, str(error)
    return results, None


# origin: joblib/joblib joblib/test/test_parallel.py::test_dispatch_one_job
# The generator and the body's function append to the same list: the plain loop interleaves
# 'Produced i' and 'Consumed i'.
# expect: exact-or-refused
def dispatch_one_job():
    queue = list()

    def producer():
        for i in range(6):
            queue.append("Produced %i" % i)
            yield i

    for x in ParaLoop(producer(), **OPTIONS):
        _consumer(queue, x)
    return queue


# origin: joblib/joblib joblib/test/test_parallel.py::test_mutate_input_with_threads
# A queue.Queue (it holds locks) filled through its bound method.
# expect: exact-or-refused
def mutate_input_with_threads():
    q = Queue(maxsize=5)
    for _ in ParaLoop(range(5), **OPTIONS):
        q.put(1)
    return q.full(), q.qsize()


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_return_order_with_return_as_generator_parameter
# set_list_value writes into input_list from a function the body calls.
# expect: exact-or-refused
def return_order_set_list_value():
    input_list = [0] * 5
    result = []
    for i in ParaLoop(range(5), **OPTIONS):
        result.append(_set_list_value(input_list, i, i))
    return input_list, result


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_return_order_with_return_as_generator_parameter
# set_list_value's write made in the body: a write at the loop's index and an append.
# expect: exact
def return_order_set_list_value_in_body():
    input_list = [0] * 5
    result = []
    for i in ParaLoop(range(5), **OPTIONS):
        input_list[i] = i
        result.append(i)
    return input_list, result


# origin: joblib/joblib joblib/test/test_parallel.py::_test_parallel_unordered_generator_returns_fastest_first
# The second task is slow; the results, sorted, as the test compares them.
# expect: exact
def unordered_generator_sqrt():
    result = []
    for i in ParaLoop(range(10), **OPTIONS):
        result.append(_sqrt_with_delay(i**2, (i == 1)))
    return sorted(result)


# origin: joblib/joblib joblib/test/test_parallel.py::test_abort_backend
# time.sleep("a") raises TypeError at once; the sleeps after it are 0.05 s, not 10 s.
# raises: TypeError
# expect: exact
def abort_backend():
    delays = ["a"] + [0.05] * 20
    for i in ParaLoop(delays, **OPTIONS):
        time.sleep(i)
    return None


# origin: joblib/joblib joblib/test/test_parallel.py::test_lambda_expression
# expect: exact
def lambda_expression():
    square = lambda x: x**2
    results = []
    for i in ParaLoop(range(10), **OPTIONS):
        results.append(square(i))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_with_exhausted_iterator
# expect: exact
def exhausted_iterator():
    exhausted_iterator = iter([])
    results = []
    for x in ParaLoop(exhausted_iterator, **OPTIONS):
        results.append(x)
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_dispatch_race_condition n_tasks=517
# expect: exact
def dispatch_race_condition():
    results = []
    for i in ParaLoop(range(517), **OPTIONS):
        results.append(_square(i))
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_nested_loop
# The body calls nested_loop, whose own loop is a ParaLoop loop.
# expect: exact
def nested_loop():
    results = []
    for _ in ParaLoop(range(2), **OPTIONS):
        results.append(_nested_loop())
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_nested_parallel_warnings
# parallel_func's loop written in the outer loop's body.
# expect: exact
def nested_parallel_inline():
    res = []
    for _ in ParaLoop(range(5), **OPTIONS):
        inner = []
        for i in ParaLoop(range(3), **OPTIONS):
            inner.append(_square(i))
        res.append(inner)
    return res


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_pickling
# Items that refuse to be pickled (the original sends them to id() in a worker).
# expect: exact-or-refused
def parallel_pickling():
    class UnpicklableObject(object):
        def __reduce__(self):
            raise RuntimeError("123")

    results = []
    for obj in ParaLoop([UnpicklableObject() for _ in range(10)], **OPTIONS):
        results.append(type(obj).__name__)
    return results


# origin: joblib/joblib joblib/test/test_parallel.py::test_parallel_byteorder_corruption
# Big-endian, little-endian and native int32 arrays captured and returned.
# expect: exact
def parallel_byteorder_corruption():
    out = []
    for byteorder in ["<", ">", "="]:
        x = np.arange(6).reshape((2, 3)).view(f"{byteorder}i4")
        result = []
        for _ in ParaLoop(range(3), **OPTIONS):
            result.append(_inspect_byteorder(x))
        out.append((x.dtype.byteorder, result))
    return out


# --- test_memmapping.py ------------------------------------------------------------------


# origin: joblib/joblib joblib/test/test_memmapping.py::test_numpy_arrays_use_different_memory
# func fills each item in place from a function the body calls and returns it.
# expect: exact-or-refused
def numpy_arrays_use_different_memory():
    arrays = [np.zeros((10, 10), dtype="float64") for i in range(10)]
    results = []
    for i, arr in ParaLoop(enumerate(arrays), **OPTIONS):
        results.append(_fill(arr, i))
    return arrays, results


# origin: joblib/joblib joblib/test/test_memmapping.py::test_numpy_arrays_use_different_memory
# func's arr[:] = value written in the body: the item is changed in place.
# expect: exact
def numpy_arrays_use_different_memory_in_body():
    arrays = [np.zeros((10, 10), dtype="float64") for i in range(10)]
    for i, arr in ParaLoop(enumerate(arrays), **OPTIONS):
        arr[:] = i
    return arrays


# origin: joblib/joblib joblib/test/test_memmapping.py::test_pool_with_memmap
# inplace_double's data[position] *= 2 written in the body: a per-index product.
# expect: exact
def pool_with_memmap_inplace_double_in_body():
    a = np.ones((3, 5), dtype=np.float32)
    positions = [(i, j) for i in range(a.shape[0]) for j in range(a.shape[1])]
    for position in ParaLoop(positions, **OPTIONS):
        a[position] *= 2
    return a


# origin: joblib/joblib joblib/test/test_memmapping.py::test_pool_with_memmap_array_view
# The writes go through a view of a; a shows them.
# expect: exact-or-refused
def pool_with_memmap_array_view():
    a = np.ones((3, 5), dtype=np.float32)
    a_view = a.view()
    positions = [(i, j) for i in range(a.shape[0]) for j in range(a.shape[1])]
    for position in ParaLoop(positions, **OPTIONS):
        a_view[position] *= 2
    return a, a_view


# origin: joblib/joblib joblib/test/test_memmapping.py::test_workaround_against_bad_memmap_with_copied_buffers
# A strided Fortran-ordered view multiplied in the body.
# expect: exact
def bad_memmap_with_copied_buffers():
    a = np.asarray(np.arange(6000).reshape((1000, 2, 3)), order="F")[:, :1, :]
    results = []
    for _ in ParaLoop(range(1), **OPTIONS):
        results.append(_worker_multiply(a, 3))
    return results


# --- test_dask.py ------------------------------------------------------------------------


# origin: joblib/joblib joblib/test/test_dask.py::test_simple
# expect: exact
def dask_simple():
    seq = []
    for i in ParaLoop(range(10), **OPTIONS):
        seq.append(_inc(i))
    raised = None
    try:
        for i in ParaLoop(range(10), **OPTIONS):
            _slow_raise_value_error(i == 3)
    except ValueError as error:
        raised = str(error)
    seq2 = []
    for i in ParaLoop(range(10), **OPTIONS):
        seq2.append(_inc(i))
    return seq, raised, seq2


# origin: joblib/joblib joblib/test/test_dask.py::test_no_undesired_distributed_cache_hit isolated_operation(list_) for list_ in lists
# isolated_operation appends to each item from a function the body calls and returns it.
# expect: exact-or-refused
def isolated_operation_mutates_items():
    lists = [[] for _ in range(100)]
    res = []
    for list_ in ParaLoop(lists, **OPTIONS):
        res.append(_isolated_operation(list_))
    return lists, [len(r) for r in res]


# origin: joblib/joblib joblib/test/test_dask.py::test_auto_scatter
# The same arrays as item, argument and keyword argument.
# expect: exact
def auto_scatter():
    data1 = np.ones(int(1e4), dtype=np.uint8)
    data2 = np.ones(int(1e4), dtype=np.uint8)
    data_to_process = ([data1] * 3) + ([data2] * 3)
    results = []
    for i, data in ParaLoop(enumerate(data_to_process), **OPTIONS):
        results.append(_noop(data, data, i, opt=data))
    small = []
    for i in ParaLoop(range(5), **OPTIONS):
        small.append(_noop(data1[:3], i))
    return results, small


# origin: joblib/joblib joblib/test/test_dask.py::test_nested_scatter
# The body calls outer_function_joblib, whose own loop is a ParaLoop loop over slices.
# expect: exact
def nested_scatter():
    my_array = np.ones(10000)
    results = []
    for i in ParaLoop(range(10), **OPTIONS):
        results.append(_outer_function_joblib(my_array[i:], i))
    return results


# --- examples -----------------------------------------------------------------------------


# origin: joblib/joblib examples/parallel_memmap.py slow_mean(data, sl) for sl in slices
# 1e4 seeded values, windows of 500 every 100 (1e7, 5e5 and 1e5 there).
# expect: exact
def parallel_memmap_slow_mean():
    data = np.random.RandomState(0).random_sample((int(1e4),))
    window_size = 500
    slices = [slice(start, start + window_size) for start in range(0, data.size - window_size, 100)]
    results = []
    for sl in ParaLoop(slices, **OPTIONS):
        results.append(_slow_mean(data, sl))
    return results


# origin: joblib/joblib examples/parallel_memmap.py slow_mean_write_output(data, sl, output, idx)
# The function the body calls writes output[idx] (a np.memmap opened w+ there).
# expect: exact-or-refused
def parallel_memmap_write_output():
    data = np.random.RandomState(0).random_sample((int(1e4),))
    window_size = 500
    slices = [slice(start, start + window_size) for start in range(0, data.size - window_size, 100)]
    output = np.zeros(len(slices), dtype=data.dtype)
    for idx, sl in ParaLoop(enumerate(slices), **OPTIONS):
        _slow_mean_write_output(data, sl, output, idx)
    return output


# origin: joblib/joblib examples/parallel_memmap.py slow_mean_write_output(data, sl, output, idx)
# Its write made in the body: output[idx] at the loop's own index.
# expect: exact
def parallel_memmap_write_output_in_body():
    data = np.random.RandomState(0).random_sample((int(1e4),))
    window_size = 500
    slices = [slice(start, start + window_size) for start in range(0, data.size - window_size, 100)]
    output = np.zeros(len(slices), dtype=data.dtype)
    for idx, sl in ParaLoop(enumerate(slices), **OPTIONS):
        res_ = data[sl].mean()
        output[idx] = res_
    return output


# origin: joblib/joblib examples/parallel_random_state.py stochastic_function_seeded(10, [i, seed])
# expect: exact
def parallel_random_state_seeded():
    seed = 42
    n_vectors = 5
    random_vector = []
    for i in ParaLoop(range(n_vectors), **OPTIONS):
        random_vector.append(_stochastic_function_seeded(10, [i, seed]))
    return random_vector


# origin: joblib/joblib examples/parallel_generator.py accumulator_sum over return_big_object(i) for i in range(150)
# result starts as the int 0 and becomes an array with the first +=.
# expect: exact
def parallel_generator_accumulator_sum():
    result = 0
    for i in ParaLoop(range(150), **OPTIONS):
        result += _return_big_object(i)
    return result


# origin: joblib/joblib examples/parallel_generator.py accumulator_sum over return_big_object(i)
# The same with terms whose float sum depends on the order of the additions (i * 0.1, 1e16).
# expect: exact
def parallel_generator_accumulator_sum_rounding():
    result = 0
    for i in ParaLoop(range(150), **OPTIONS):
        value = _return_big_object(i) * 0.1
        if i % 50 == 1:
            value = value + 1e16
        if i % 50 == 2:
            value = value - 1e16
        result += value
    return result


# origin: joblib/joblib examples/nested_parallel_memory.py data_processing_mean / data_processing_max over columns
# expect: exact
def nested_parallel_memory():
    rng = np.random.RandomState(42)
    data = rng.randn(int(1e4), 4)
    means = []
    for col in ParaLoop(range(data.shape[1]), **OPTIONS):
        means.append(_data_processing_mean(data, col))
    maxes = []
    for col in ParaLoop(range(data.shape[1]), **OPTIONS):
        maxes.append(_data_processing_max(data, col))
    return means, maxes


# origin: joblib/joblib examples/serialization_and_wrappers.py func_async(21, large_list) for _ in range(1)
# expect: exact
def serialization_large_list():
    large_list = list(range(100000))
    results = []
    for _ in ParaLoop(range(1), **OPTIONS):
        results.append(_func_async(21, large_list))
    return results


def _check_globals():
    # joblib/test/test_parallel.py: check_globals
    return MY_GLOBAL_VARIABLE


# origin: joblib/joblib joblib/test/test_parallel.py::test_globals_update_at_each_parallel_call
# The global is first bound by this function, then rebound between the two loops, and read by a
# function the body calls (before, the workers of the first loop kept their value of then).
# expect: exact
def globals_update_at_each_call():
    global MY_GLOBAL_VARIABLE
    MY_GLOBAL_VARIABLE = "original value"
    first = []
    for _i in ParaLoop(range(2), **OPTIONS):
        first.append(_check_globals())
    MY_GLOBAL_VARIABLE = "changed value"
    second = []
    for _i in ParaLoop(range(2), **OPTIONS):
        second.append(_check_globals())
    return first, second


def _inplace_double(args):
    # joblib/test/test_memmapping.py: inplace_double
    data, position, expected = args
    assert data[position] == expected
    data[position] *= 2


# origin: joblib/joblib joblib/test/test_memmapping.py::test_pool_with_memmap inplace_double
# Every item holds the same array; each iteration doubles its own position of it, in a function
# it calls (before, each chunk's copy of the array was written over the others', silently).
# expect: exact-or-refused
def pool_with_memmap_inplace_double():
    a = np.ones((3, 5), dtype=np.float32)
    tasks = [(a, (i, j), 1.0) for i in range(a.shape[0]) for j in range(a.shape[1])]
    for args in ParaLoop(tasks, **OPTIONS):
        _inplace_double(args)
    return a
