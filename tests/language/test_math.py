"""Elementwise math (API.md "elementwise"): every function on every float type against a float64
reference, plus the compositions (sigmoid, clamp, softmax, fdiv), fma and umulhi."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import FLOATS, poisoned, random_array

REFERENCE = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "exp2": np.exp2, "log2": np.log2,
    "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos, "floor": np.floor, "ceil": np.ceil,
    "erf": np.frompyfunc(math.erf, 1, 1), "abs": np.abs,
}
RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


@kdsl.kernel
def unary_math(x_ptr, out_ptr, n, FN: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    if FN == "exp2":
        y = kl.exp2(x)
    elif FN == "log2":
        y = kl.log2(x)
    elif FN == "rsqrt":
        y = kl.rsqrt(x)
    elif FN == "sin":
        y = kl.sin(x)
    elif FN == "cos":
        y = kl.cos(x)
    elif FN == "erf":
        y = kl.erf(x)
    elif FN == "floor":
        y = kl.floor(x)
    elif FN == "ceil":
        y = kl.ceil(x)
    elif FN == "sigmoid":
        y = kl.sigmoid(x)
    elif FN == "exp":
        y = kl.exp(x)
    elif FN == "log":
        y = kl.log(x)
    elif FN == "sqrt":
        y = kl.sqrt(x)
    else:
        y = kl.abs(x)
    kl.store(out_ptr + offs, y, mask=mask)


CASES = [(fn, d) for fn in [*REFERENCE, "sigmoid"] for d in FLOATS]


@pytest.mark.parametrize("fn, dtype", CASES, ids=[f"{f}-{np.dtype(d).name}" for f, d in CASES])
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_unary_math(target, fn, dtype, n, seed):
    x = random_array(np.random.default_rng(seed), n, dtype, specials=True)
    if fn in ("log", "log2", "sqrt", "rsqrt"):
        x = np.abs(x)
    out = poisoned(n, dtype)
    unary_math[(kdsl.cdiv(n, 64),)](x, out, n, FN=fn, BLOCK=64, target=target)
    with np.errstate(all="ignore"):
        if fn == "sigmoid":  # composed from exp in the block's dtype, which overflows to inf first
            expected = (1 / (1 + np.exp(-x.astype(np.float64)).astype(dtype).astype(np.float64))).astype(dtype)
        else:
            expected = np.asarray(REFERENCE[fn](x.astype(np.float64)), np.float64).astype(dtype)
    np.testing.assert_allclose(out, expected, rtol=RTOL[np.dtype(dtype)], atol=RTOL[np.dtype(dtype)] * 1e-3,
                               equal_nan=True)


@kdsl.kernel
def ternary(x_ptr, y_ptr, z_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask)
    z = kl.load(z_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, kl.fma(x, y, z) + kl.clamp(x, -0.5, 0.5) + kl.fdiv(y, 4.0), mask=mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fma_clamp_fdiv(target, dtype):
    rng = np.random.default_rng(7)
    x, y, z = (random_array(rng, 100, dtype) for _ in range(3))
    out = poisoned(100, dtype)
    ternary[(1,)](x, y, z, out, 100, BLOCK=128, target=target)
    x64, y64, z64 = (a.astype(np.float64) for a in (x, y, z))
    expected = x64 * y64 + z64 + np.clip(x64, -0.5, 0.5) + y64 / 4
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


@kdsl.kernel
def fma_only(x_ptr, y_ptr, z_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.fma(kl.load(x_ptr + offs), kl.load(y_ptr + offs), kl.load(z_ptr + offs)))


def test_fma_rounds_once(target):
    x = np.array([1 + 2.0**-23] * 4, np.float32)
    y = np.array([1 - 2.0**-23] * 4, np.float32)
    z = np.full(4, -1.0, np.float32)
    out = poisoned(4, np.float32)
    fma_only[(1,)](x, y, z, out, BLOCK=4, target=target)
    np.testing.assert_array_equal(out, np.float32(-(2.0**-46)))


@kdsl.kernel
def mulhi(x_ptr, y_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.umulhi(kl.load(x_ptr + offs), kl.load(y_ptr + offs)))


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int64, np.uint64])
def test_umulhi(target, dtype):
    rng = np.random.default_rng(11)
    x = random_array(rng, 64, dtype, full_range=True, specials=True)
    y = random_array(rng, 64, dtype, full_range=True, specials=True)
    out = poisoned(64, dtype)
    mulhi[(1,)](x, y, out, BLOCK=64, target=target)
    bits = np.iinfo(dtype).bits
    expected = [((int(a) * int(b)) >> bits) & ((1 << bits) - 1) for a, b in zip(x, y)]
    np.testing.assert_array_equal(out, np.array(expected, np.uint64).astype(dtype))


@kdsl.kernel
def int_math(x_ptr, out_ptr):
    kl.store(out_ptr, kl.sin(kl.load(x_ptr)))


def test_math_on_integers_asks_for_a_conversion(target):
    with pytest.raises(kdsl.CompilationError, match=r"kl.sin needs a floating-point operand, got i32"):
        int_math[(1,)](np.ones(1, np.int32), np.ones(1, np.int32), target=target)
