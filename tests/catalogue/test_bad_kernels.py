"""The catalogue of malformed kernels: each is a different mistake a user makes, and each must
raise `kdsl.CompilationError` naming the kernel, quoting the wrong line (marked `# <- bad` below)
with a caret under it, and saying in words what is wrong. None may crash or hang the process."""
import inspect
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl

BLOCK_SIZE = 16


# device functions and plain functions some of the kernels below call

def plain_helper(x):
    return x + 1


@kdsl.kernel
def add_pair(x, y):
    return x + y


@kdsl.kernel
def recursive_helper(x):
    return recursive_helper(x)  # <- bad


@kdsl.kernel
def first_of_pairs(a, b, c, d):
    return a


@kdsl.kernel
def sum_as_int(a, b):
    return (a + b).to(kl.int32)


@kdsl.kernel
def one_or_two_values(n):
    if n > 0:  # <- bad
        return 1.0, 2.0
    return 1.0


@kdsl.kernel
def needs_block(x_ptr, N: kl.constexpr):
    return kl.load(x_ptr + kl.arange(0, N))


# --- compile-time shapes ---------------------------------------------------------------------

@kdsl.kernel
def arange_runtime_bound(x_ptr, n):
    offs = kl.arange(0, n)  # <- bad
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def arange_not_power_of_two(x_ptr):
    offs = kl.arange(0, 48)  # <- bad
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def arange_float_bound(x_ptr):
    offs = kl.arange(0, 16.0)  # <- bad
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def arange_beyond_int32(x_ptr):
    offs = kl.arange(2**31 - 8, 2**31 + 8)  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def zeros_not_power_of_two(x_ptr):
    z = kl.zeros((4, 3), kl.float32)  # <- bad
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def block_too_large(x_ptr):
    z = kl.zeros((2048, 1024), kl.float32)  # <- bad
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def zeros_with_runtime_shape(x_ptr, n):
    z = kl.zeros((n,), kl.float32)  # <- bad
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def zeros_without_dtype(x_ptr):
    z = kl.zeros((16,), "float32")  # <- bad
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def full_with_string_value(x_ptr):
    z = kl.full((16,), "one", kl.float32)  # <- bad
    kl.store(x_ptr, kl.sum(z))


# --- names, globals, calls -------------------------------------------------------------------

@kdsl.kernel
def undefined_name(x_ptr):
    kl.store(x_ptr, scale_factor)  # <- bad  # noqa: F821


@kdsl.kernel
def unknown_kl_function(x_ptr):
    kl.store(x_ptr, kl.frobnicate(1.0))  # <- bad


@kdsl.kernel
def calls_plain_function(x_ptr):
    kl.store(x_ptr, plain_helper(kl.load(x_ptr)))  # <- bad


@kdsl.kernel
def load_without_pointer(x_ptr):
    v = kl.load()  # <- bad
    kl.store(x_ptr, v)


@kdsl.kernel
def unknown_keyword(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(x, axs=0))  # <- bad


@kdsl.kernel
def device_function_missing_argument(x_ptr):
    kl.store(x_ptr, add_pair(kl.load(x_ptr)))  # <- bad


@kdsl.kernel
def device_function_runtime_constexpr(x_ptr, n):
    kl.store(x_ptr, kl.sum(needs_block(x_ptr, n)))  # <- bad


@kdsl.kernel
def calls_recursive(x_ptr):
    kl.store(x_ptr, recursive_helper(kl.load(x_ptr)))


@kdsl.kernel
def python_builtin_on_block(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, len(x))  # <- bad


@kdsl.kernel
def unknown_block_attribute(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, x.size)  # <- bad


@kdsl.kernel
def unpack_wrong_count(x_ptr):
    a, b = (1.0, 2.0, 3.0)  # <- bad
    kl.store(x_ptr, a + b)


@kdsl.kernel
def compile_time_division_by_zero(x_ptr, BLOCK: kl.constexpr):
    kl.store(x_ptr, BLOCK // 0)  # <- bad


@kdsl.kernel
def cdiv_by_zero(x_ptr, BLOCK: kl.constexpr):
    kl.store(x_ptr, kl.cdiv(BLOCK, 0))  # <- bad


@kdsl.kernel
def calls_a_number(x_ptr, BLOCK: kl.constexpr):
    kl.store(x_ptr, BLOCK(2))  # <- bad


@kdsl.kernel
def static_assert_fails(x_ptr, BLOCK: kl.constexpr):
    kl.static_assert(BLOCK % 32 == 0, "BLOCK must be a multiple of 32")  # <- bad
    kl.store(x_ptr + kl.arange(0, BLOCK), 1.0)


@kdsl.kernel
def static_assert_on_runtime_value(x_ptr, n):
    kl.static_assert(n > 0)  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def program_id_axis_out_of_range(x_ptr):
    pid = kl.program_id(3)  # <- bad
    kl.store(x_ptr + pid, 1.0)


# --- unsupported Python ----------------------------------------------------------------------

@kdsl.kernel
def uses_lambda(x_ptr):
    double = lambda v: v * 2  # <- bad  # noqa: E731
    kl.store(x_ptr, double(1.0))


@kdsl.kernel
def uses_try(x_ptr):
    try:  # <- bad
        kl.store(x_ptr, 1.0)
    finally:
        pass


@kdsl.kernel
def uses_with(x_ptr):
    with kl.float32:  # <- bad
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def defines_class(x_ptr):
    class Pair:  # <- bad
        first = 1.0
    kl.store(x_ptr, Pair.first)


@kdsl.kernel
def uses_global(x_ptr):
    global BLOCK_SIZE  # <- bad
    kl.store(x_ptr, 1.0)


def _make_nonlocal_kernel():
    total = 0

    @kdsl.kernel
    def uses_nonlocal(x_ptr):
        nonlocal total  # <- bad
        kl.store(x_ptr, 1.0)
    return uses_nonlocal


uses_nonlocal = _make_nonlocal_kernel()


@kdsl.kernel
def uses_yield(x_ptr):
    yield kl.load(x_ptr)  # <- bad


@kdsl.kernel
async def async_kernel(x_ptr):  # <- bad
    kl.store(x_ptr, 1.0)


lambda_kernel = kdsl.kernel(lambda x_ptr: kl.store(x_ptr, 1.0))  # <- bad


@kdsl.kernel
def starred_call(x_ptr):
    shape = (4, 4)
    z = kl.zeros(*shape, kl.float32)  # <- bad
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def list_comprehension(x_ptr):
    scales = [2.0 * i for i in range(4)]  # <- bad
    kl.store(x_ptr, scales[1])


@kdsl.kernel
def fstring_outside_print(x_ptr, BLOCK: kl.constexpr):
    kl.static_assert(BLOCK > 0, f"BLOCK is {BLOCK}")  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def dict_literal(x_ptr):
    scales = {"a": 1.0}  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def set_literal(x_ptr):
    sizes = {16, 32}  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_break(x_ptr, n):
    for i in range(n):
        if i > 3:
            break  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def uses_continue(x_ptr, n):
    for i in range(n):
        if i == 2:
            continue  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def return_inside_loop(x_ptr, n):
    for i in range(n):
        kl.store(x_ptr + i, 1.0)
        return  # <- bad


@kdsl.kernel
def kernel_returns_value(x_ptr):  # <- bad
    return kl.load(x_ptr)


@kdsl.kernel
def bare_annotation(x_ptr):
    y: kl.float32  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def loop_target_tuple(x_ptr):
    for i, j in range(4):  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def range_with_keyword(x_ptr, n):
    for i in range(0, n, step=2):  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def range_float_bound(x_ptr):
    for i in range(0, 2.5):  # <- bad
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def range_zero_step(x_ptr, n):
    for i in range(0, n, 0):  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def static_range_runtime_bound(x_ptr, n):
    for i in kl.static_range(n):  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def static_range_zero_step(x_ptr):
    for i in kl.static_range(4, 0, 0):  # <- bad
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def assigns_argument_attribute(x_ptr):
    x_ptr.dtype = kl.float16  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def chained_comparison(x_ptr, n):
    if 0 < n < 10:  # <- bad
        kl.store(x_ptr, 1.0)


# --- control flow and variables --------------------------------------------------------------

@kdsl.kernel
def branches_disagree_on_shape(x_ptr, n):
    if n > 0:  # <- bad
        acc = kl.zeros((16,), kl.float32)
    else:
        acc = kl.zeros((32,), kl.float32)
    kl.store(x_ptr, kl.sum(acc))


@kdsl.kernel
def branches_disagree_on_dtype_constant(x_ptr, n):
    if n > 0:  # <- bad
        kind = kl.float16
    else:
        kind = kl.float32
    kl.store(x_ptr, kl.load(x_ptr).to(kind))


@kdsl.kernel
def assigned_in_one_branch(x_ptr, n):
    if n > 0:
        y = 1.0
    kl.store(x_ptr, y)  # <- bad


@kdsl.kernel
def first_assigned_in_loop(x_ptr, n):
    for i in range(n):
        last = i
    kl.store(x_ptr, last)  # <- bad


@kdsl.kernel
def loop_carried_type_change(x_ptr, n):
    acc = kl.zeros((16,), kl.float32)
    for i in range(n):  # <- bad
        acc = acc.to(kl.float16)
    kl.store(x_ptr + kl.arange(0, 16), acc)


@kdsl.kernel
def dtype_reassigned_in_loop(x_ptr, n):
    kind = kl.float32
    for i in range(n):  # <- bad
        kind = kl.float16
    kl.store(x_ptr, kl.load(x_ptr).to(kind))


@kdsl.kernel
def paths_return_different_counts(x_ptr, n):
    kl.store(x_ptr, one_or_two_values(n))


@kdsl.kernel
def while_block_condition(x_ptr):
    offs = kl.arange(0, 16)
    while offs < 4:  # <- bad
        offs = offs + 1
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def if_block_condition(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    if x > 0:  # <- bad
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def and_on_blocks(x_ptr):
    offs = kl.arange(0, 16)
    kl.store(x_ptr + offs, 1.0, mask=(offs > 2) and (offs < 8))  # <- bad


# --- memory ----------------------------------------------------------------------------------

@kdsl.kernel
def load_from_scalar(x_ptr, n):
    v = kl.load(n)  # <- bad
    kl.store(x_ptr, v)


@kdsl.kernel
def store_to_scalar(x_ptr, n):
    kl.store(n, 1.0)  # <- bad


@kdsl.kernel
def store_mask_wrong_shape(x_ptr):
    offs = kl.arange(0, 16)
    kl.store(x_ptr + offs, 1.0, mask=kl.arange(0, 32) < 8)  # <- bad


@kdsl.kernel
def mask_is_a_pointer(x_ptr):
    kl.store(x_ptr, 1.0, mask=x_ptr)  # <- bad


@kdsl.kernel
def store_a_pointer(x_ptr, y_ptr):
    kl.store(x_ptr, y_ptr)  # <- bad


@kdsl.kernel
def other_without_mask(x_ptr):
    v = kl.load(x_ptr, other=0.0)  # <- bad
    kl.store(x_ptr, v)


@kdsl.kernel
def pointer_plus_pointer(x_ptr, y_ptr):
    kl.store(x_ptr + y_ptr, 1.0)  # <- bad


@kdsl.kernel
def pointer_times_int(x_ptr):
    kl.store(x_ptr * 2, 1.0)  # <- bad


@kdsl.kernel
def pointer_compared_with_float(x_ptr):
    if x_ptr < 1.5:  # <- bad
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def negated_pointer(x_ptr):
    kl.store(-x_ptr, 1.0)  # <- bad


@kdsl.kernel
def atomic_on_scalar(x_ptr, n):
    kl.atomic_add(n, 1)  # <- bad
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def atomic_on_int8(c_ptr):
    kl.atomic_add(c_ptr, 1)  # <- bad


@kdsl.kernel
def atomic_bad_ordering(i_ptr):
    kl.atomic_add(i_ptr, 1, sem="seq_cst")  # <- bad


# --- types and operators ---------------------------------------------------------------------

@kdsl.kernel
def shapes_do_not_broadcast(x_ptr):
    a = kl.arange(0, 64) + kl.arange(0, 128)  # <- bad
    kl.store(x_ptr + a, 1.0)


@kdsl.kernel
def bitwise_on_floats(x_ptr, y_ptr):
    x = kl.load(x_ptr)
    y = kl.load(y_ptr)
    kl.store(x_ptr, x | y)  # <- bad


@kdsl.kernel
def shift_of_float(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x << 1)  # <- bad


@kdsl.kernel
def invert_float(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, ~x)  # <- bad


@kdsl.kernel
def float_floordiv(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x // 2.0)  # <- bad


@kdsl.kernel
def power_runtime_exponent(x_ptr, n):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x ** n)  # <- bad


@kdsl.kernel
def to_non_dtype(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x.to("float16"))  # <- bad


@kdsl.kernel
def bitcast_width_mismatch(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x.to(kl.int16, bitcast=True))  # <- bad


@kdsl.kernel
def constant_does_not_fit(c_ptr):
    x = kl.load(c_ptr)
    kl.store(c_ptr, x + 300)  # <- bad


@kdsl.kernel
def exp_of_integer(i_ptr):
    x = kl.load(i_ptr)
    kl.store(i_ptr, kl.exp(x))  # <- bad


@kdsl.kernel
def identity_compare_of_blocks(x_ptr):
    x = kl.load(x_ptr)
    if x is None:  # <- bad
        kl.store(x_ptr, 1.0)


# --- shapes, reductions, dot -----------------------------------------------------------------

@kdsl.kernel
def reduce_bad_axis(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(x, axis=1))  # <- bad


@kdsl.kernel
def reduce_a_scalar(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, kl.max(x))  # <- bad


@kdsl.kernel
def keep_dims_not_bool(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(x, 0, keep_dims=1))  # <- bad


@kdsl.kernel
def reduce_with_non_kernel(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.reduce(x, 0, kl.float32))  # <- bad


@kdsl.kernel
def combine_returns_wrong_count(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    y = kl.load(x_ptr + 16 + kl.arange(0, 16))
    s, t = kl.reduce((x, y), 0, first_of_pairs)  # <- bad
    kl.store(x_ptr, s + t)


@kdsl.kernel
def combine_changes_dtype(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.reduce(x, 0, sum_as_int))  # <- bad


@kdsl.kernel
def dot_of_int32(i_ptr):
    a = kl.zeros((16, 16), kl.int32)
    kl.store(i_ptr, kl.sum(kl.dot(a, a)))  # <- bad


@kdsl.kernel
def dot_inner_dimensions_differ(x_ptr):
    a = kl.zeros((16, 32), kl.float32)
    b = kl.zeros((16, 16), kl.float32)
    kl.store(x_ptr, kl.sum(kl.dot(a, b)))  # <- bad


@kdsl.kernel
def dot_of_vectors(x_ptr):
    a = kl.zeros((16,), kl.float32)
    kl.store(x_ptr, kl.sum(kl.dot(a, a)))  # <- bad


@kdsl.kernel
def dot_accumulator_wrong_shape(x_ptr):
    a = kl.zeros((16, 16), kl.float16)
    acc = kl.zeros((16, 32), kl.float32)
    kl.store(x_ptr, kl.sum(kl.dot(a, a, acc)))  # <- bad


@kdsl.kernel
def dot_bad_precision(x_ptr):
    a = kl.zeros((16, 16), kl.float32)
    kl.store(x_ptr, kl.sum(kl.dot(a, a, input_precision="fp32")))  # <- bad


@kdsl.kernel
def matmul_operator(x_ptr):
    a = kl.zeros((16, 16), kl.float32)
    kl.store(x_ptr, kl.sum(a @ a))  # <- bad


@kdsl.kernel
def reshape_changes_element_count(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(kl.reshape(x, 4, 8)))  # <- bad


@kdsl.kernel
def permute_bad_order(x_ptr):
    x = kl.zeros((4, 8), kl.float32)
    kl.store(x_ptr, kl.sum(kl.permute(x, 0, 0)))  # <- bad


@kdsl.kernel
def transpose_of_vector(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr + kl.arange(0, 16), x.T)  # <- bad


@kdsl.kernel
def split_last_dim_not_two(x_ptr):
    x = kl.zeros((8, 4), kl.float32)
    a, b = kl.split(x)  # <- bad
    kl.store(x_ptr, kl.sum(a + b))


@kdsl.kernel
def join_different_dtypes(x_ptr, i_ptr):
    offs = kl.arange(0, 16)
    j = kl.join(kl.load(x_ptr + offs), kl.load(i_ptr + offs))  # <- bad
    kl.store(x_ptr, kl.sum(j))


@kdsl.kernel
def where_shapes_mismatch(x_ptr):
    offs = kl.arange(0, 16)
    y = kl.where(offs < 4, kl.zeros((32,), kl.float32), 1.0)  # <- bad
    kl.store(x_ptr, kl.sum(y))


@kdsl.kernel
def broadcast_to_incompatible(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(kl.broadcast_to(x, (4, 8))))  # <- bad


@kdsl.kernel
def expand_dims_bad_axis(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(kl.expand_dims(x, 3)))  # <- bad


@kdsl.kernel
def runtime_index(x_ptr, n):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, x[n])  # <- bad


@kdsl.kernel
def too_many_slices(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    kl.store(x_ptr, kl.sum(x[:, :]))  # <- bad


@kdsl.kernel
def element_assignment(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 16))
    x[0] = 1.0  # <- bad
    kl.store(x_ptr + kl.arange(0, 16), x)


# --- debugging builtins ----------------------------------------------------------------------

@kdsl.kernel
def print_without_prefix(x_ptr):
    x = kl.load(x_ptr)
    kl.device_print(x)  # <- bad


@kdsl.kernel
def assert_runtime_message(x_ptr):
    x = kl.load(x_ptr)
    kl.device_assert(x > 0, x)  # <- bad


@kdsl.kernel
def hint_not_positive(x_ptr):
    offs = kl.multiple_of(kl.arange(0, 16), 0)  # <- bad
    kl.store(x_ptr + offs, 1.0)


# --- the catalogue ---------------------------------------------------------------------------

MARK = "# <- bad"


def case(kernel, reason, *helpers):
    """A row: the kernel launched, the words of the reason, and the device functions that may
    hold the marked line."""
    return pytest.param(kernel, reason, helpers, id=kernel.__name__.strip("<>"))


CASES = [
    # compile-time shapes
    case(arange_runtime_bound, r"arange's bounds must be compile-time constants: end is a runtime value; "
                               r"annotate the parameter it comes from `kl.constexpr`"),
    case(arange_not_power_of_two, r"arange's length \(end - start = 48\) must be a positive power of two"),
    case(arange_float_bound, r"arange's end must be an integer, got 16\.0"),
    case(arange_beyond_int32, r"arange's bounds must fit in int32"),
    case(zeros_not_power_of_two, r"every block dimension must be a power of two, got \(4, 3\)"),
    case(block_too_large, r"a block of shape \(2048, 1024\) has 2097152 elements, more than the limit of 1048576"),
    case(zeros_with_runtime_shape, r"block shapes must be compile-time constants: dimension 0 is a runtime value"),
    case(zeros_without_dtype, r"expected a kl dtype such as kl\.float32, got 'float32'"),
    case(full_with_string_value, r"the fill value must be a number, got str"),
    # names, globals, calls
    case(undefined_name, r"name 'scale_factor' is not defined"),
    case(unknown_kl_function, r"module 'kdsl\.language' has no attribute 'frobnicate'"),
    case(calls_plain_function, r"the global 'plain_helper' \(function\) cannot be used in a kernel: only kl "
                               r"builtins and @kdsl\.kernel functions can be called"),
    case(load_without_pointer, r"kl\.load\(\): missing a required argument: 'pointer'"),
    case(unknown_keyword, r"kl\.sum\(\): got an unexpected keyword argument 'axs'"),
    case(device_function_missing_argument, r"'add_pair' is missing the argument 'y'"),
    case(device_function_runtime_constexpr, r"'needs_block' needs the compile-time constant 'N', got a runtime value"),
    case(calls_recursive, r"'recursive_helper' calls itself; recursion is not supported", recursive_helper),
    case(python_builtin_on_block, r"len\(\) only works on compile-time values"),
    case(unknown_block_attribute, r"blocks have no attribute 'size'"),
    case(unpack_wrong_count, r"cannot unpack tuple into 2 names"),
    case(compile_time_division_by_zero, r"compile-time evaluation failed: ZeroDivisionError"),
    case(cdiv_by_zero, r"compile-time evaluation failed: ZeroDivisionError"),
    case(calls_a_number, r"cannot call int in a kernel: only kl builtins and @kdsl\.kernel functions"),
    case(static_assert_fails, r"static_assert failed: BLOCK must be a multiple of 32"),
    case(static_assert_on_runtime_value, r"kl\.static_assert needs a compile-time condition; this one is a runtime"),
    case(program_id_axis_out_of_range, r"axis must be a compile-time 0, 1 or 2, got int 3"),
    # unsupported Python
    case(uses_lambda, r"lambdas are not supported in kernels"),
    case(uses_try, r"`try` is not supported in kernels"),
    case(uses_with, r"`with` is not supported in kernels"),
    case(defines_class, r"class definitions are not supported in kernels"),
    case(uses_global, r"`global` is not supported in kernels"),
    case(uses_nonlocal, r"`nonlocal` is not supported in kernels"),
    case(uses_yield, r"`yield` is not supported in kernels: a kernel is not a generator"),
    case(async_kernel, r"a kernel must be a plain `def` function, not `async def`"),
    case(lambda_kernel, r"a kernel must be a `def` function, not a lambda"),
    case(starred_call, r"starred expressions are not supported in kernels"),
    case(list_comprehension, r"list comprehensions are not supported in kernels"),
    case(fstring_outside_print, r"f-strings are not supported in kernels"),
    case(dict_literal, r"dicts are not supported in kernels"),
    case(set_literal, r"sets are not supported in kernels"),
    case(uses_break, r"`break` is not supported in kernels"),
    case(uses_continue, r"`continue` is not supported in kernels"),
    case(return_inside_loop, r"`return` inside a loop is not supported"),
    case(kernel_returns_value, r"a kernel cannot return a value; store results through a pointer argument"),
    case(bare_annotation, r"a bare annotation assigns nothing"),
    case(loop_target_tuple, r"the loop variable must be a single name"),
    case(range_with_keyword, r"range\(\) takes positional arguments only"),
    case(range_float_bound, r"range\(\) bounds must be integer scalars, got float"),
    case(range_zero_step, r"range\(\) with a zero or negative step is not supported"),
    case(static_range_runtime_bound, r"kl\.static_range needs compile-time integer bounds"),
    case(static_range_zero_step, r"compile-time evaluation failed: ValueError: range\(\) arg 3 must not be zero"),
    case(assigns_argument_attribute, r"only names can be assigned to in kernels"),
    case(chained_comparison, r"chained comparisons are not supported"),
    # control flow and variables
    case(branches_disagree_on_shape, r"'acc' is block<16xf32> on one path and block<32xf32> on the other"),
    case(branches_disagree_on_dtype_constant, r"'kind' holds different compile-time values on different paths"),
    case(assigned_in_one_branch, r"'y' is assigned in only one branch of the `if`"),
    case(first_assigned_in_loop, r"'last' is first assigned inside the loop"),
    case(loop_carried_type_change, r"'acc' changes type from block<16xf32> to block<16xf16>"),
    case(dtype_reassigned_in_loop, r"'kind' holds dtype, which cannot be reassigned inside a loop"),
    case(paths_return_different_counts, r"the paths through this `if` return 2 and 1 values", one_or_two_values),
    case(while_block_condition, r"`while` needs a scalar condition, got a block"),
    case(if_block_condition, r"`if` needs a scalar condition, got a block .*; use kl\.where for blocks"),
    case(and_on_blocks, r"`and`/`or` work on scalars; use & and \| on blocks"),
    # memory
    case(load_from_scalar, r"kl\.load needs a pointer or a block of pointers, got i32"),
    case(store_to_scalar, r"kl\.store needs a pointer or a block of pointers, got i32"),
    case(store_mask_wrong_shape, r"cannot broadcast shapes \(32,\) and \(16,\)"),
    case(mask_is_a_pointer, r"a pointer \(\*f32\) cannot be used as a condition"),
    case(store_a_pointer, r"kl\.store cannot store pointers"),
    case(other_without_mask, r"kl\.load got `other` without `mask`"),
    case(pointer_plus_pointer, r"pointers can only be offset by integers, not \*f32"),
    case(pointer_times_int, r"'\*' is not defined on pointers \(\*f32\)"),
    case(pointer_compared_with_float, r"'<' is not defined on pointers \(\*f32\)"),
    case(negated_pointer, r"cannot negate a pointer"),
    case(atomic_on_scalar, r"kl\.atomic_add needs a pointer or a block of pointers, got i32"),
    case(atomic_on_int8, r"kl\.atomic_add supports i32, .*, not pointers to i8"),
    case(atomic_bad_ordering, r"kl\.atomic_add's sem must be one of 'acquire', 'release', 'acq_rel', 'relaxed' "
                              r"or None, got 'seq_cst'"),
    # types and operators
    case(shapes_do_not_broadcast, r"cannot broadcast shapes \(64,\) and \(128,\): dimensions 64 and 128 differ"),
    case(bitwise_on_floats, r"'\|' needs integer operands, got f32 and f32"),
    case(shift_of_float, r"'<<' needs integer operands, got f32 and f32"),
    case(invert_float, r"'~' needs an integer operand, got f32"),
    case(float_floordiv, r"'//' needs integer operands, got f32 and f32; use kl\.floor\(a / b\)"),
    case(power_runtime_exponent, r"`\*\*` on blocks needs a compile-time integer exponent"),
    case(to_non_dtype, r"cannot convert to 'float16': expected a kl dtype such as kl\.float32"),
    case(bitcast_width_mismatch, r"bitcast needs types of one width: f32 has 32 bits, i16 has 16"),
    case(constant_does_not_fit, r"the constant 300 does not fit in i8"),
    case(exp_of_integer, r"kl\.exp needs a floating-point operand, got i32"),
    case(identity_compare_of_blocks, r"'is' only compares compile-time values; use == for blocks"),
    # shapes, reductions, dot
    case(reduce_bad_axis, r"axis 1 is out of range for a block of shape \(16,\)"),
    case(reduce_a_scalar, r"kl\.max needs a block, got the scalar f32"),
    case(keep_dims_not_bool, r"keep_dims must be a compile-time True or False"),
    case(reduce_with_non_kernel, r"kl\.reduce's combine_fn must be a @kdsl\.kernel function, got dtype$"),
    case(combine_returns_wrong_count, r"kl\.reduce's combine function must return 2 value\(s\), got 1"),
    case(combine_changes_dtype, r"kl\.reduce's combine function returns i32 for a f32 input"),
    case(dot_of_int32, r"kl\.dot does not support i32 operands"),
    case(dot_inner_dimensions_differ, r"kl\.dot's inner dimensions differ: a is 16x32, b is 16x16"),
    case(dot_of_vectors, r"kl\.dot needs 2D blocks \(or 3D, batched\); its operand `a` is a block of shape"),
    case(dot_accumulator_wrong_shape, r"kl\.dot's acc must be a block of shape \(16, 16\), got shape \(16, 32\)"),
    case(dot_bad_precision, r"kl\.dot's input_precision must be one of .* got 'fp32'"),
    case(matmul_operator, r"`@` is not an operator on blocks .*; use kl\.dot\(a, b\)"),
    case(reshape_changes_element_count, r"kl\.reshape cannot turn a block of shape \(16,\) \(16 elements\) into "
                                        r"shape \(4, 8\) \(32 elements\)"),
    case(permute_bad_order, r"kl\.permute's dims \(0, 0\) are not a permutation of the 2 dimensions"),
    case(transpose_of_vector, r"\.T transposes 2D blocks; this one has shape \(16,\)"),
    case(split_last_dim_not_two, r"kl\.split needs a block whose last dimension is 2, got shape \(8, 4\)"),
    case(join_different_dtypes, r"kl\.join needs values of one type, got block<16xf32> and block<16xi32>"),
    case(where_shapes_mismatch, r"cannot broadcast shapes \(16,\) and \(32,\)"),
    case(broadcast_to_incompatible, r"cannot broadcast shapes \(1, 16\) and \(4, 8\)"),
    case(expand_dims_bad_axis, r"axis 3 is out of range for expanding a block of shape \(16,\)"),
    case(runtime_index, r"blocks can only be indexed with ':' and None"),
    case(too_many_slices, r"too many ':' for a block of shape \(16,\)"),
    case(element_assignment, r"a block's elements cannot be assigned to \(blocks are values, not arrays\)"),
    # debugging builtins
    case(print_without_prefix, r"kl\.device_print's prefix must be a string constant .*, got a runtime f32"),
    case(assert_runtime_message, r"kl\.device_assert's message must be a string constant .*, got a runtime f32"),
    case(hint_not_positive, r"kl\.multiple_of needs compile-time positive integers, got 0"),
]

# Cases that the interpreter (which runs the Python function itself, so accepts any Python
# syntax) rejects through the same typing rules, with the same message.
INTERPRETED = {
    "arange_runtime_bound", "arange_not_power_of_two", "block_too_large", "zeros_without_dtype",
    "static_assert_fails", "program_id_axis_out_of_range",
    "load_from_scalar", "store_mask_wrong_shape", "atomic_on_int8", "pointer_times_int", "shapes_do_not_broadcast",
    "bitwise_on_floats", "constant_does_not_fit", "reduce_bad_axis", "combine_changes_dtype",
    "dot_inner_dimensions_differ", "reshape_changes_element_count", "split_last_dim_not_two", "runtime_index",
}


def arguments(kernel):
    """Small arrays and numbers for a kernel's parameters, by name."""
    by_name = {"c_ptr": lambda: np.ones(64, np.int8), "i_ptr": lambda: np.ones(64, np.int32),
               "n": lambda: 5, "BLOCK": lambda: BLOCK_SIZE}
    return [by_name.get(p, lambda: np.ones(64, np.float32))() for p in inspect.signature(kernel.fn).parameters]


def marked_line(kernels):
    """The one line marked `# <- bad` in these functions' sources: (function name, line number, text)."""
    found = []
    for k in kernels:
        lines, first = inspect.getsourcelines(k.fn)
        found += [(k.__name__, first + i, text.strip()) for i, text in enumerate(lines) if MARK in text]
    assert len(found) == 1, found
    return found[0]


def assert_reports(error, kernels, reason):
    """The error names the function, quotes the marked line with carets under its code, and gives the reason."""
    assert type(error) is kdsl.CompilationError
    name, line, text = marked_line(kernels)
    message = str(error)
    assert f"in kernel '{name}'" in message, message
    lines = message.splitlines()
    quoted = next((i for i, shown in enumerate(lines) if shown.strip() == text), None)
    assert quoted is not None, message
    source, caret = lines[quoted], lines[quoted + 1]
    assert set(caret.strip()) == {"^"}, message
    assert caret.index("^") < source.index(MARK), message
    assert (error.loc.file, error.loc.line) == (__file__, line)
    assert re.search(reason, error.reason), error.reason


@pytest.mark.parametrize("target", ["cpu", "sim"])
@pytest.mark.parametrize("kernel, reason, helpers", CASES)
def test_malformed_kernel_is_reported_at_its_line(kernel, reason, helpers, target):
    args = arguments(kernel)
    with pytest.raises(kdsl.KdslError) as info:
        kernel[(1,)](*args, target=target)
    assert_reports(info.value, (kernel, *helpers), reason)


@pytest.mark.parametrize("kernel, reason, helpers", [c for c in CASES if c.id in INTERPRETED])
def test_interpreter_rejects_it_the_same_way(kernel, reason, helpers):
    args = arguments(kernel)
    with pytest.raises(kdsl.KdslError) as info:
        kernel[(1,)](*args, target="interpret")
    assert_reports(info.value, (kernel, *helpers), reason)


def test_kernel_compile_reports_it_too():
    with pytest.raises(kdsl.KdslError) as info:
        shapes_do_not_broadcast.compile(*arguments(shapes_do_not_broadcast), target="cpu")
    assert_reports(info.value, (shapes_do_not_broadcast,), r"cannot broadcast shapes \(64,\) and \(128,\)")


def test_the_catalogue_covers_every_marked_kernel_once():
    listed = [k for c in CASES for k in (c.values[0], *c.values[2])]
    marked = [v for v in globals().values() if isinstance(v, kdsl.Kernel) and MARK in inspect.getsource(v.fn)]
    assert len(listed) == len(set(listed))
    assert set(marked) <= set(listed)
    assert len({c.id for c in CASES}) == len(CASES) >= 45
