"""Reductions and control flow (API.md "reductions", "control flow"): sum/max/min along each axis and
over the whole block, keep_dims; runtime and static loops, if/else carrying values, device functions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import assert_float_sum_close, poisoned, random_array

SETTINGS = settings(max_examples=6, deadline=None)


@kdsl.kernel
def reduce_2d(x_ptr, out_ptr, KIND: kl.constexpr, AXIS: kl.constexpr, KEEP: kl.constexpr,
              M: kl.constexpr, N: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :])
    if KIND == "sum":
        r = kl.sum(x, axis=AXIS, keep_dims=KEEP)
    elif KIND == "max":
        r = kl.max(x, axis=AXIS, keep_dims=KEEP)
    else:
        r = kl.min(x, axis=AXIS, keep_dims=KEEP)
    if AXIS is None:
        kl.store(out_ptr, r if not KEEP else kl.sum(kl.sum(r, axis=0), axis=0))
    elif AXIS == 0 or AXIS == -2:
        kl.store(out_ptr + kl.arange(0, N), r if not KEEP else kl.sum(r, axis=0))
    else:
        kl.store(out_ptr + kl.arange(0, M), r if not KEEP else kl.sum(r, axis=1))


NUMPY = {"sum": np.sum, "max": np.max, "min": np.min}


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.uint8, np.int64, np.float64])
@SETTINGS
@given(shape=st.tuples(st.sampled_from([1, 2, 8, 32]), st.sampled_from([1, 4, 16, 64])),
       axis=st.sampled_from([None, 0, 1, -1, -2]), keep=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_reductions(target, kind, dtype, shape, axis, keep, seed):
    m, n = shape
    x = random_array(np.random.default_rng(seed), shape, dtype)
    out_dtype = np.dtype(dtype)
    if kind == "sum" and out_dtype.kind in "iu" and out_dtype.itemsize < 4:
        out_dtype = np.dtype({"i": np.int32, "u": np.uint32}[out_dtype.kind])
    size = 1 if axis is None else n if axis in (0, -2) else m
    out = poisoned(size, out_dtype)
    reduce_2d[(1,)](x, out, KIND=kind, AXIS=axis, KEEP=keep, M=m, N=n, target=target)
    expected = NUMPY[kind](x.astype(np.float64 if out_dtype.kind == "f" else out_dtype), axis=axis)
    if kind == "sum" and out_dtype.kind == "f":
        assert_float_sum_close(out, x, axis)
        return
    rtol = {2: 1e-2, 4: 1e-5, 8: 1e-12}[out_dtype.itemsize] if out_dtype.kind == "f" else 0
    np.testing.assert_allclose(out, np.reshape(expected, size).astype(out_dtype), rtol=rtol, atol=rtol)


@kdsl.kernel
def nested_loops(x_ptr, out_ptr, n_outer, n_inner, BLOCK: kl.constexpr):
    total = 0.0
    count = 0
    for i in range(0, n_outer):
        acc = kl.zeros((BLOCK,), kl.float32)
        for j in range(i, n_inner, 2):
            offs = kl.arange(0, BLOCK)
            acc = acc + kl.load(x_ptr + j * BLOCK + offs)
            count += 1
        if i % 2 == 0:
            total += kl.sum(acc, axis=0)
        else:
            total -= kl.max(acc, axis=0)
    for k in kl.static_range(3):
        total = total * 2 + k
    kl.store(out_ptr, total)
    kl.store(out_ptr + 1, count)


@SETTINGS
@given(n_outer=st.integers(0, 5), n_inner=st.integers(0, 7), seed=st.integers(0, 2**32 - 1))
def test_nested_loops_and_branches_carry_values(target, n_outer, n_inner, seed):
    x = random_array(np.random.default_rng(seed), (8, 16), np.float32)
    out = poisoned(2, np.float32)
    nested_loops[(1,)](x, out, n_outer, n_inner, BLOCK=16, target=target)
    np.testing.assert_allclose(out, nested_loops_reference(x, n_outer, n_inner), rtol=1e-5, atol=1e-4)


def nested_loops_reference(x, n_outer, n_inner):
    """`nested_loops`'s (total, count) in float64."""
    total, count = 0.0, 0
    for i in range(n_outer):
        acc = np.zeros(x.shape[1], np.float64)
        for j in range(i, n_inner, 2):
            acc += x[j]
            count += 1
        total = total + acc.sum() if i % 2 == 0 else total - acc.max()
    for k in range(3):
        total = total * 2 + k
    return [total, count]


@kdsl.kernel
def row_sums(x_ptr, out_ptr, n_cols, stride, BLOCK_K: kl.constexpr):
    row = kl.program_id(0)
    acc = kl.zeros((BLOCK_K,), kl.float32)
    for k in range(0, n_cols, BLOCK_K):
        offs = k + kl.arange(0, BLOCK_K)
        acc += kl.load(x_ptr + row * stride + offs, mask=offs < n_cols, other=0.0).to(kl.float32)
    kl.store(out_ptr + row, kl.sum(acc, axis=0))


@SETTINGS
@given(rows=st.integers(1, 16), cols=st.integers(0, 600), block=st.sampled_from([8, 64, 256]),
       dtype=st.sampled_from([np.float32, np.float16]), seed=st.integers(0, 2**32 - 1))
def test_loop_carrying_a_block_accumulator(target, rows, cols, block, dtype, seed):
    x = random_array(np.random.default_rng(seed), (rows, cols), dtype)
    out = poisoned(rows, np.float32)
    row_sums[(rows,)](x, out, cols, max(cols, 1), BLOCK_K=block, target=target)
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), rtol=1e-4, atol=1e-3)


@kdsl.kernel
def kl_range_loops(out_ptr, start, end, step):
    """kl.range with one, two and three bounds and Triton's scheduling hints."""
    total = 0
    for i in kl.range(end):
        total += i
    kl.store(out_ptr, total)
    total = 0
    for i in kl.range(start, end, num_stages=3, loop_unroll_factor=2):
        total += i
    kl.store(out_ptr + 1, total)
    total = 0
    for i in kl.range(start, end, step, num_stages=1, flatten=True, warp_specialize=False):
        total += i * i
    kl.store(out_ptr + 2, total)


@pytest.mark.parametrize("start, end, step", [(0, 10, 1), (3, 17, 4), (5, 5, 2), (9, 2, 3)])
def test_kl_range_is_a_runtime_loop_whose_hints_change_nothing(target, start, end, step):
    out = poisoned(3, np.int32)
    kl_range_loops[(1,)](out, start, end, step, target=target)
    expected = [sum(range(end)), sum(range(start, end)), sum(i * i for i in range(start, end, step))]
    np.testing.assert_array_equal(out, expected)


@kdsl.kernel
def device_square_sum(x, SCALE: kl.constexpr):
    y = x * x
    return kl.sum(y, axis=0) * SCALE, y


@kdsl.kernel
def uses_device_function(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    total, squares = device_square_sum(kl.load(x_ptr + offs), 2.0)
    kl.store(out_ptr + offs, squares + total)


def test_device_function_returns_tuple(target):
    x = random_array(np.random.default_rng(3), 32, np.float32)
    out = poisoned(32, np.float32)
    uses_device_function[(1,)](x, out, BLOCK=32, target=target)
    np.testing.assert_allclose(out, x * x + 2 * (x.astype(np.float64) ** 2).sum(), rtol=1e-5)


@kdsl.kernel
def scalar_branches(x_ptr, out_ptr, n):
    pid = kl.program_id(0)
    v = kl.load(x_ptr + pid)
    if v > 0 and pid < n:
        r = v * 2
    elif v < -1:
        r = -v
    else:
        r = 0.5
    kl.store(out_ptr + pid, r)


def test_if_elif_else_on_runtime_scalars(target):
    x = random_array(np.random.default_rng(4), 40, np.float32)
    out = poisoned(40, np.float32)
    scalar_branches[(40,)](x, out, 30, target=target)
    pid = np.arange(40)
    expected = np.where((x > 0) & (pid < 30), x * 2, np.where(x < -1, -x, 0.5)).astype(np.float32)
    np.testing.assert_array_equal(out, expected)


@kdsl.kernel
def collatz_steps(x_ptr, out_ptr, limit):
    pid = kl.program_id(0)
    v = kl.load(x_ptr + pid)
    steps = 0
    while v != 1 and steps < limit:
        if v % 2 == 0:
            v = v // 2
        else:
            v = 3 * v + 1
        steps += 1
    kl.store(out_ptr + pid, steps)


def collatz_reference(v, limit):
    steps = 0
    while v != 1 and steps < limit:
        v = v // 2 if v % 2 == 0 else 3 * v + 1
        steps += 1
    return steps


@pytest.mark.parametrize("limit", [0, 5, 1000])
def test_while_loop_with_a_runtime_condition(target, limit):
    x = np.arange(1, 80, dtype=np.int64)
    out = poisoned(79, np.int32)
    collatz_steps[(79,)](x, out, limit, target=target)
    np.testing.assert_array_equal(out, [collatz_reference(int(v), limit) for v in x])


@kdsl.kernel
def halve_block_until_small(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    rounds = 0
    while kl.max(kl.abs(x), axis=0) > 1.0:
        x = x * 0.5
        rounds += 1
    kl.store(out_ptr + offs, x + rounds)


def test_while_loop_carrying_a_block(target):
    x = random_array(np.random.default_rng(5), 32, np.float32) * 40
    out = poisoned(32, np.float32)
    halve_block_until_small[(1,)](x, out, BLOCK=32, target=target)
    rounds = 0
    y = x.copy()
    while np.abs(y).max() > 1.0:
        y = y * np.float32(0.5)
        rounds += 1
    np.testing.assert_array_equal(out, y + rounds)


@kdsl.kernel
def early_exit(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    if pid * BLOCK >= n:
        return
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)


def test_early_return_from_a_kernel(target):
    x = random_array(np.random.default_rng(8), 100, np.float32)
    out = poisoned(200, np.float32)
    early_exit[(8,)](x, out, 100, BLOCK=32, target=target)
    np.testing.assert_array_equal(out[:100], x * 2)
    assert np.isnan(out[100:]).all()


@kdsl.kernel
def sign_class(x):
    if x > 0:
        if x > 10:
            return 2
        return 1
    elif x == 0:
        return 0
    y = -1
    return y


@kdsl.kernel
def classify(x_ptr, out_ptr):
    pid = kl.program_id(0)
    kl.store(out_ptr + pid, sign_class(kl.load(x_ptr + pid)))


def test_device_function_with_returns_on_every_path(target):
    x = np.array([-3.5, 0.0, 0.5, 10.0, 11.0, -0.0, np.inf, -np.inf], np.float32)
    out = poisoned(8, np.int32)
    classify[(8,)](x, out, target=target)
    np.testing.assert_array_equal(out, np.where(x > 10, 2, np.where(x > 0, 1, np.where(x == 0, 0, -1))))
