"""`kl.dot` (API.md "linear algebra"): result types and accumulation against a float64 reference,
shapes from 1 to 64, batched 3D operands, `acc`, `out_dtype`, `input_precision`, and the errors. Tiled matmuls
(Triton's tutorial 03 with grouped ordering, a fused epilogue) are in test_tutorials.py."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=3, deadline=None)
POW2 = st.sampled_from([1, 2, 4, 8, 16, 32, 64])
UNIT = {np.float16: 2.0**-10, np.float32: 2.0**-23, np.float64: 2.0**-52}
BF16_UNIT = 2.0**-7
TF32_UNIT = 2.0**-11  # the relative error of rounding an fp32 operand to tf32 (10 mantissa bits)
GPU_TARGETS = ("sim", "cuda")


@kdsl.kernel
def dot_kernel(a_ptr, b_ptr, acc_ptr, c_ptr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr,
               A_TYPE: kl.constexpr, USE_ACC: kl.constexpr, OUT: kl.constexpr, PRECISION: kl.constexpr):
    rm = kl.arange(0, M)[:, None]
    rn = kl.arange(0, N)[None, :]
    rk = kl.arange(0, K)
    a = kl.load(a_ptr + rm * K + rk[None, :])
    b = kl.load(b_ptr + rk[:, None] * N + rn)
    if A_TYPE is not None:
        a = a.to(A_TYPE)
        b = b.to(A_TYPE)
    if USE_ACC:
        c = kl.dot(a, b, kl.load(acc_ptr + rm * N + rn), input_precision=PRECISION)
    else:
        c = kl.dot(a, b, input_precision=PRECISION, out_dtype=OUT)
    kl.store(c_ptr + rm * N + rn, c)


def check_close(c, a, b, acc, unit, input_unit=0.0):
    """|c - (acc + a @ b)| within (K + 2) roundings of the magnitudes involved (exact for integers),
    plus the rounding of each operand by `input_unit` where the products see rounded inputs (tf32)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = a64 @ b64 + (0 if acc is None else acc.astype(np.float64))
    if unit == 0:
        np.testing.assert_array_equal(c, expected.astype(c.dtype))
        return
    scale = np.abs(a64) @ np.abs(b64) + (0 if acc is None else np.abs(acc.astype(np.float64)))
    bound = ((a.shape[-1] + 2) * unit + 2 * input_unit) * scale + 1e-30
    err = np.abs(c.astype(np.float64) - expected)
    assert (err <= bound).all(), f"max error {err.max()} above {bound[err > bound].min()}"


CASES = [  # (input dtype in memory, kl type to convert to or None, out_dtype, result numpy dtype, unit)
    (np.float32, None, kl.float32, np.float32, UNIT[np.float32]),
    (np.float16, None, kl.float32, np.float32, UNIT[np.float32]),
    (np.float16, None, kl.float16, np.float16, UNIT[np.float16]),
    (np.float64, None, kl.float32, np.float64, UNIT[np.float64]),
    (np.int8, None, kl.float32, np.int32, 0),
    (np.int8, None, kl.int32, np.int32, 0),
    (np.float32, kl.bfloat16, kl.float32, np.float32, UNIT[np.float32]),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@SETTINGS
@given(m=POW2, n=POW2, k=POW2, use_acc=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_dot_matches_float64_reference(target, case, m, n, k, use_acc, seed):
    dtype, convert, out_dtype, result, unit = CASES[case]
    rng = np.random.default_rng(seed)
    a, b = random_array(rng, (m, k), dtype), random_array(rng, (k, n), dtype)
    if dtype == np.int8:
        a, b = random_array(rng, (m, k), dtype, full_range=True), random_array(rng, (k, n), dtype, full_range=True)
    if convert is not None:  # bf16 operands: the reference sees the values rounded to bf16
        a, b = _round_bf16(a), _round_bf16(b)
    acc = random_array(rng, (m, n), result) if use_acc else None
    c = poisoned((m, n), result)
    dot_kernel[(1,)](a, b, acc if use_acc else c, c, M=m, N=n, K=k, A_TYPE=convert, USE_ACC=use_acc,
                     OUT=out_dtype, PRECISION=None, target=target)
    check_close(c, a, b, acc, unit, tf32_unit(target, a.dtype, None))


@kdsl.kernel
def batched_dot_kernel(a_ptr, b_ptr, acc_ptr, c_ptr, B: kl.constexpr, M: kl.constexpr, N: kl.constexpr,
                       K: kl.constexpr, USE_ACC: kl.constexpr, OUT: kl.constexpr):
    rb = kl.arange(0, B)[:, None, None]
    rm = kl.arange(0, M)[None, :, None]
    rn = kl.arange(0, N)[None, None, :]
    rk = kl.arange(0, K)
    a = kl.load(a_ptr + rb * M * K + rm * K + rk[None, None, :])
    b = kl.load(b_ptr + rb * K * N + rk[None, :, None] * N + rn)
    if USE_ACC:
        c = kl.dot(a, b, kl.load(acc_ptr + rb * M * N + rm * N + rn))
    else:
        c = kl.dot(a, b, out_dtype=OUT)
    kl.store(c_ptr + rb * M * N + rm * N + rn, c)


@pytest.mark.parametrize("case", range(len(CASES) - 1))
@SETTINGS
@given(batch=st.sampled_from([1, 2, 4]), m=POW2, n=POW2, k=POW2, use_acc=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_batched_dot_multiplies_each_batch_index(target, case, batch, m, n, k, use_acc, seed):
    dtype, _, out_dtype, result, unit = CASES[case]
    rng = np.random.default_rng(seed)
    full = dtype == np.int8
    a = random_array(rng, (batch, m, k), dtype, full_range=full)
    b = random_array(rng, (batch, k, n), dtype, full_range=full)
    acc = random_array(rng, (batch, m, n), result) if use_acc else None
    c = poisoned((batch, m, n), result)
    batched_dot_kernel[(1,)](a, b, acc if use_acc else c, c, B=batch, M=m, N=n, K=k, USE_ACC=use_acc,
                             OUT=out_dtype, target=target)
    check_close(c, a, b, acc, unit)


def tf32_unit(target, dtype, precision):
    """The operand rounding of an fp32 dot: GPUs multiply tf32 by default (and for "tf32"), as Triton does."""
    return TF32_UNIT if target in GPU_TARGETS and dtype == np.float32 and precision in (None, "tf32") else 0.0


def round_tf32(x):
    """fp32 values rounded to tf32 as `cvt.rna.tf32.f32` does: to nearest, ties away from zero."""
    bits = x.astype(np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def _round_bf16(x):
    bits = x.astype(np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


@pytest.mark.parametrize("precision", [None, "tf32", "tf32x3", "ieee"])
def test_input_precision_is_exact_fp32_or_tf32_on_gpus(target, precision):
    """"ieee" and "tf32x3" are exact fp32 products everywhere; the default and "tf32" are too on the
    CPU, while GPUs round the operands to tf32 (exactly as the reference does) and sum in fp32."""
    rng = np.random.default_rng(7)
    a, b = random_array(rng, (16, 32), np.float32), random_array(rng, (32, 8), np.float32)
    c = poisoned((16, 8), np.float32)
    dot_kernel[(1,)](a, b, c, c, M=16, N=8, K=32, A_TYPE=None, USE_ACC=False, OUT=kl.float32,
                     PRECISION=precision, target=target)
    if tf32_unit(target, a.dtype, precision):
        a, b = round_tf32(a), round_tf32(b)
    check_close(c, a, b, None, UNIT[np.float32])


@kdsl.kernel
def mixed_dot(a_ptr, b_ptr, c_ptr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr):
    rm, rn, rk = kl.arange(0, M), kl.arange(0, N), kl.arange(0, K)
    a = kl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = kl.load(b_ptr + rk[:, None] * N + rn[None, :])
    acc = kl.zeros((M, N), kl.float32)
    for _ in range(2):
        acc = kl.dot(a, b, acc)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


def test_fp16_times_fp32_promotes_and_acc_carries_through_a_loop(target):
    rng = np.random.default_rng(3)
    a, b = random_array(rng, (8, 16), np.float16), random_array(rng, (16, 4), np.float32)
    c = poisoned((8, 4), np.float32)
    mixed_dot[(1,)](a, b, c, M=8, N=4, K=16, target=target)
    check_close(c, 2 * a.astype(np.float32), b, None, UNIT[np.float32])


# errors ----------------------------------------------------------------------------------

@kdsl.kernel
def bad_dot(x_ptr, CASE: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, 16)[:, None] * 16 + kl.arange(0, 16)[None, :])
    if CASE == "rank":
        kl.dot(kl.load(x_ptr + kl.arange(0, 16)), x)
    elif CASE == "k":
        kl.dot(x, kl.load(x_ptr + kl.arange(0, 8)[:, None] * 16 + kl.arange(0, 16)[None, :]))
    elif CASE == "dtype":
        kl.dot(x.to(kl.int32), x.to(kl.int32))
    elif CASE == "int_float":
        kl.dot(x.to(kl.int8), x)
    elif CASE == "precision":
        kl.dot(x, x, input_precision="tf16")
    elif CASE == "out_dtype":
        kl.dot(x, x, out_dtype=kl.float16)
    elif CASE == "rank_mix":
        kl.dot(kl.reshape(x, 2, 8, 16), x)
    elif CASE == "batch":
        kl.dot(kl.reshape(x, 2, 8, 16), kl.reshape(x, 4, 16, 4))
    elif CASE == "rank4":
        kl.dot(kl.reshape(x, 2, 2, 4, 16), kl.reshape(x, 2, 2, 16, 4))
    elif CASE == "acc_batched":
        kl.dot(kl.reshape(x, 2, 8, 16), kl.reshape(x, 2, 16, 8), kl.zeros((8, 8), kl.float32))
    elif CASE == "acc_dtype":
        kl.dot(x, x, kl.zeros((16, 16), kl.float16))
    else:
        kl.dot(x, x, kl.zeros((16, 8), kl.float32))


@pytest.mark.parametrize("case, message", [
    ("rank", "kl.dot needs 2D blocks (or 3D, batched); its operand `a` is a block of shape (16,)"),
    ("rank_mix", "operands of one rank, both 2D or both 3D; a has shape (2, 8, 16), b has shape (16, 16)"),
    ("batch", "batch dimensions differ: a has 2, b has 4"),
    ("rank4", "its operand `a` is a block of shape (2, 2, 4, 16)"),
    ("acc_batched", "acc must be a block of shape (2, 8, 8), got shape (8, 8)"),
    ("k", "inner dimensions differ: a is 16x16, b is 8x16"),
    ("dtype", "does not support i32 operands"),
    ("int_float", "operands have types i8 and f32"),
    ("precision", "input_precision must be one of"),
    ("out_dtype", "on f32 operands gives f32, not out_dtype=f16"),
    ("acc_dtype", "accumulates in f32; acc is f16"),
    ("acc_shape", "acc must be a block of shape (16, 16), got shape (16, 8)"),
])
def test_dot_errors_name_the_problem(target, case, message):
    x = np.zeros((16, 16), np.float32)
    with pytest.raises(kdsl.CompilationError, match=re.escape(message)) as info:
        bad_dot[(1,)](x, CASE=case, target=target)
    assert "kl.dot" in str(info.value)
