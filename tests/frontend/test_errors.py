"""User mistakes: each raises a specific error that quotes the offending line with a caret."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl

GLOBAL_ARRAY = np.zeros(4)


@kdsl.kernel
def arange_not_pow2(x_ptr):
    offs = kl.arange(0, 100)
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def load_scalar(x_ptr, n):
    v = kl.load(n)
    kl.store(x_ptr, v)


@kdsl.kernel
def undefined_name(x_ptr):
    kl.store(x_ptr, undefined_thing)  # noqa: F821


@kdsl.kernel
def shape_mismatch(x_ptr):
    a = kl.arange(0, 64) + kl.arange(0, 128)
    kl.store(x_ptr + a, 1.0)


@kdsl.kernel
def block_condition(x_ptr):
    offs = kl.arange(0, 16)
    if offs < 3:
        kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def while_forever(x_ptr, n):
    i = 0
    while True:
        i += 1
    kl.store(x_ptr, i)


@kdsl.kernel
def fp8_plus_int(x_ptr, n):
    x = kl.load(x_ptr).to(kl.float8e4nv)
    kl.store(x_ptr, x + n)


@kdsl.kernel
def exp_of_fp8(x_ptr):
    x = kl.load(x_ptr).to(kl.float8e5)
    kl.store(x_ptr, kl.exp(x))


@kdsl.kernel
def float_floordiv(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x // 2.0)


@kdsl.kernel
def float_bitwise(x_ptr, y_ptr):
    x = kl.load(x_ptr)
    y = kl.load(y_ptr)
    kl.store(x_ptr, x & y)


@kdsl.kernel
def unknown_builtin(x_ptr):
    kl.store(x_ptr, kl.frobnicate(1.0))


@kdsl.kernel
def bad_keyword(x_ptr):
    v = kl.load(x_ptr, maskk=True)
    kl.store(x_ptr, v)


@kdsl.kernel
def carried_type_change(x_ptr, n):
    acc = kl.zeros((64,), kl.float32)
    for i in range(0, n):
        acc = kl.zeros((128,), kl.float32)
    kl.store(x_ptr + kl.arange(0, 64), acc)


@kdsl.kernel
def constant_too_big(x_ptr):
    x = kl.load(x_ptr)
    kl.store(x_ptr, x + 1000)


@kdsl.kernel
def kernel_returns(x_ptr):
    return kl.load(x_ptr)


@kdsl.kernel
def one_branch(x_ptr, n):
    if n > 0:
        y = 1.0
    kl.store(x_ptr, y)


@kdsl.kernel
def uses_global_array(x_ptr):
    kl.store(x_ptr, GLOBAL_ARRAY)


@kdsl.kernel
def int_index(x_ptr):
    offs = kl.arange(0, 16)
    kl.store(x_ptr, offs[0])


@kdsl.kernel
def other_without_mask(x_ptr):
    v = kl.load(x_ptr, other=0.0)
    kl.store(x_ptr, v)


@kdsl.kernel
def exp_of_int(x_ptr, n):
    kl.store(x_ptr, kl.exp(n))


@kdsl.kernel
def loop_local_used_after(x_ptr, n):
    for i in range(0, n):
        t = i * 2
    kl.store(x_ptr, t)


@kdsl.kernel
def chained_compare(x_ptr, n):
    if 0 < n < 10:
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def bad_axis(x_ptr):
    offs = kl.arange(0, 16)
    kl.store(x_ptr, kl.sum(offs, axis=1))


@kdsl.kernel
def range_runtime_hint(x_ptr, n):
    for i in kl.range(0, 4, num_stages=n):
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def range_unknown_hint(x_ptr):
    for i in kl.range(0, 4, num_warps=4):
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def range_as_a_value(x_ptr):
    r = kl.range(0, 4)
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def hint_on_floats(x_ptr):
    x = kl.multiple_of(kl.load(x_ptr + kl.arange(0, 16)), 16)
    kl.store(x_ptr, kl.sum(x, axis=0))


@kdsl.kernel
def hint_values_per_dimension(x_ptr):
    offs = kl.max_contiguous(kl.arange(0, 16)[:, None] * 16 + kl.arange(0, 16)[None, :], (1, 16, 1))
    kl.store(x_ptr + offs, 1.0)


CASES = [
    (arange_not_pow2, "offs = kl.arange(0, 100)", r"must be a positive power of two"),
    (load_scalar, "v = kl.load(n)", r"kl.load needs a pointer or a block of pointers, got i32"),
    (undefined_name, "kl.store(x_ptr, undefined_thing)", r"name 'undefined_thing' is not defined"),
    (shape_mismatch, "a = kl.arange(0, 64) + kl.arange(0, 128)", r"cannot broadcast shapes \(64,\) and \(128,\)"),
    (block_condition, "if offs < 3:", r"`if` needs a scalar condition.*kl.where"),
    (while_forever, "while True:", r"a `while` condition must change at run time.*would never end"),
    (float_floordiv, "kl.store(x_ptr, x // 2.0)", r"'//' needs integer operands"),
    (fp8_plus_int, "kl.store(x_ptr, x + n)", r"fp8e4nv does not combine with i32 \(as in Triton, fp8 only"),
    (exp_of_fp8, "kl.store(x_ptr, kl.exp(x))", r"kl.exp is not defined on fp8e5 \(Triton's math functions"),
    (float_bitwise, "kl.store(x_ptr, x & y)", r"'&' needs integer operands, got f32 and f32"),
    (unknown_builtin, "kl.store(x_ptr, kl.frobnicate(1.0))", r"has no attribute 'frobnicate'"),
    (bad_keyword, "v = kl.load(x_ptr, maskk=True)", r"kl.load\(\): got an unexpected keyword argument 'maskk'"),
    (carried_type_change, "for i in range(0, n):", r"'acc' changes type from block<64xf32> to block<128xf32>"),
    (constant_too_big, "kl.store(x_ptr, x + 1000)", r"the constant 1000 does not fit in i8"),
    (kernel_returns, "def kernel_returns(x_ptr):", r"a kernel cannot return a value"),
    (one_branch, "kl.store(x_ptr, y)", r"'y' is assigned in only one branch of the `if`"),
    (uses_global_array, "kl.store(x_ptr, GLOBAL_ARRAY)", r"the global 'GLOBAL_ARRAY' \(ndarray\) cannot be used"),
    (int_index, "kl.store(x_ptr, offs[0])", r"blocks can only be indexed with ':' and None"),
    (other_without_mask, "v = kl.load(x_ptr, other=0.0)", r"`other` without `mask`"),
    (exp_of_int, "kl.store(x_ptr, kl.exp(n))", r"kl.exp needs a floating-point operand, got i32"),
    (loop_local_used_after, "kl.store(x_ptr, t)", r"'t' is first assigned inside the loop"),
    (chained_compare, "if 0 < n < 10:", r"chained comparisons are not supported"),
    (range_runtime_hint, "for i in kl.range(0, 4, num_stages=n):", r"kl.range's num_stages must be a compile-time"),
    (range_unknown_hint, "for i in kl.range(0, 4, num_warps=4):", r"unexpected keyword argument 'num_warps'"),
    (range_as_a_value, "r = kl.range(0, 4)", r"kl.range can only be used as the iterable of a for loop"),
    (bad_axis, "kl.store(x_ptr, kl.sum(offs, axis=1))", r"axis 1 is out of range for a block of shape \(16,\)"),
    (hint_on_floats, "x = kl.multiple_of(", r"kl.multiple_of takes integers, got block<16xf32>"),
    (hint_values_per_dimension, "offs = kl.max_contiguous(", r"kl.max_contiguous needs 1 or 2 values for block<16x16xi32>, got 3"),
]


@pytest.mark.parametrize("kernel, line, reason", CASES, ids=[c[0].__name__ for c in CASES])
def test_compilation_error_quotes_line_and_reason(kernel, line, reason):
    x = np.ones(16, np.int8 if kernel is constant_too_big else np.float32)
    args = [x if p.endswith("_ptr") else 5 for p in kernel.source.params]
    with pytest.raises(kdsl.CompilationError, match=reason) as info:
        kernel.compile(*args)
    lines = str(info.value).splitlines()
    quoted = next(i for i, text in enumerate(lines) if line in text)
    assert lines[quoted + 1].strip().startswith("^")
    assert info.value.loc.file == __file__


def test_error_points_at_the_expression_column():
    with pytest.raises(kdsl.CompilationError) as info:
        float_floordiv.compile(np.ones(4, np.float32))
    lines = str(info.value).splitlines()
    source, caret = next((a, b) for a, b in zip(lines, lines[1:]) if "x // 2.0" in a)
    start = caret.index("^")
    assert source[start:start + len("x // 2.0")] == "x // 2.0"
    assert caret.count("^") == len("x // 2.0")


def test_calling_a_kernel_directly_is_an_error():
    with pytest.raises(kdsl.KdslError, match=r"launch a kernel with float_floordiv\[grid\]"):
        float_floordiv(np.ones(4, np.float32))


def test_builtins_outside_kernels_are_errors():
    with pytest.raises(kdsl.KdslError, match="kl.load can only be called inside a @kdsl.kernel"):
        kl.load(None)


@kdsl.kernel
def huge_block(x_ptr):
    big = kl.arange(0, 1024)[:, None] + kl.arange(0, 2048)[None, :]
    kl.store(x_ptr + big, 1.0)


def test_blocks_beyond_the_element_limit_are_rejected():
    with pytest.raises(kdsl.CompilationError, match=r"has 2097152 elements, more than the limit of 1048576") as info:
        huge_block.compile(np.ones(4, np.float32))
    assert "big = kl.arange(0, 1024)[:, None] + kl.arange(0, 2048)[None, :]" in str(info.value)
