"""Types (API.md "types"): `.to()` between every pair of dtypes, bitcasts, `.dtype`/`.shape`."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import FLOATS, INTS, poisoned, random_array

DTYPES = INTS + FLOATS + [np.bool_]
KL = {np.dtype(np.bool_): kl.int1, np.dtype(np.int8): kl.int8, np.dtype(np.int16): kl.int16,
      np.dtype(np.int32): kl.int32, np.dtype(np.int64): kl.int64, np.dtype(np.uint8): kl.uint8,
      np.dtype(np.uint16): kl.uint16, np.dtype(np.uint32): kl.uint32, np.dtype(np.uint64): kl.uint64,
      np.dtype(np.float16): kl.float16, np.dtype(np.float32): kl.float32, np.dtype(np.float64): kl.float64}


@kdsl.kernel
def convert(x_ptr, out_ptr, n, DTYPE: kl.constexpr, BITCAST: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, x.to(DTYPE, bitcast=BITCAST), mask=mask)


def float_to_int(value, dtype):
    """Saturating conversion with truncation toward zero; NaN gives 0 (the documented CPU rule)."""
    info = np.iinfo(dtype)
    if math.isnan(value):
        return 0
    if value >= info.max:
        return info.max
    if value <= info.min:
        return info.min
    return int(value)


def reference(x, dtype):
    src, dst = x.dtype, np.dtype(dtype)
    if dst.kind == "b":
        return x != 0
    if src.kind == "f" and dst.kind in "iu":
        return np.array([float_to_int(float(v), dst) for v in x], dst)
    with np.errstate(all="ignore"):
        return x.astype(dst)


PAIRS = [(s, d) for s in DTYPES for d in DTYPES if s != d]


@pytest.mark.parametrize("src, dst", PAIRS, ids=[f"{np.dtype(s).name}-to-{np.dtype(d).name}" for s, d in PAIRS])
@settings(max_examples=2, deadline=None)
@given(n=st.integers(1, 100), seed=st.integers(0, 2**32 - 1))
def test_conversion(target, src, dst, n, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, n, src, full_range=True, specials=True) if src is not np.bool_ else rng.random(n) < 0.5
    if np.dtype(src).kind == "f" and np.dtype(dst).kind in "iu":
        with np.errstate(over="ignore"):
            x[::3] = (x[::3] * 1e3).astype(src)
    out = poisoned(n, dst)
    convert[(math.ceil(n / 64),)](x, out, n, DTYPE=KL[np.dtype(dst)], BITCAST=False, BLOCK=64, target=target)
    expected = reference(x, dst)
    wide_int_to_float = np.dtype(src).kind in "iu" and np.dtype(src).itemsize == 8 and np.dtype(dst).kind == "f"
    if wide_int_to_float:
        # 64-bit integers are rounded once by the kernel; numpy may round twice (through float64)
        np.testing.assert_allclose(out, expected, rtol=float(np.finfo(dst).eps))
    else:
        np.testing.assert_array_equal(out, expected)


def nearest_bf16(values):
    """The bf16 nearest to each value, ties to even, from the exact value (no float32 on the way)."""
    out = []
    for v in map(float, values):
        ulp = 2.0 ** (math.floor(math.log2(abs(v))) - 7)
        out.append(math.copysign(round(abs(v) / ulp) * ulp, v))  # round() on a float is exact, ties to even
    return np.array(out)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_float64_and_int32_round_once_to_bf16(target, seed):
    """Values just past a bf16 halfway point that float32 cannot tell from it (f64 -> f32 -> bf16
    by nearest even twice gave -0.25 for -0.25097657463), then random ones."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(seed)
    tricky = np.array([-0.25097657463315143, 1.0 + 2**-8 + 2**-30, -(3.0 + 2**-6 + 2**-40)])
    for x in (np.concatenate([tricky, np.exp2(rng.uniform(-100, 100, 61)) * rng.choice([-1.0, 1.0], 61)]),
              np.array([2**24 + 2**16 + 1, -(2**25 + 2**17 + 3)] + list(rng.integers(-2**31, 2**31, 62)), np.int32)):
        out = np.full(x.size, np.nan, ml_dtypes.bfloat16)  # poisoned
        convert[(1,)](x, out, x.size, DTYPE=kl.bfloat16, BITCAST=False, BLOCK=64, target=target)
        np.testing.assert_array_equal(out.astype(np.float64), nearest_bf16(x))


@kdsl.kernel
def bf16_constant(out_ptr, VALUE: kl.constexpr, BLOCK: kl.constexpr):
    kl.store(out_ptr + kl.arange(0, BLOCK), kl.full((BLOCK,), VALUE, kl.bfloat16))


@pytest.mark.parametrize("value", [1.0 + 2**-8 + 2**-30, -0.25097657463315143, 1e39])
def test_bf16_constants_round_once(target, value):
    """A constant of the kernel's source becomes the bf16 nearest to it, not the one nearest
    its float32 rounding (a halfway point for the first two: 1.0 and -0.25 were compiled)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    out = np.full(16, np.nan, ml_dtypes.bfloat16)
    bf16_constant[(1,)](out, VALUE=value, BLOCK=16, target=target)
    expected = nearest_bf16([value])[0] if value < 1e38 else np.inf
    np.testing.assert_array_equal(out.astype(np.float64), expected)


@pytest.mark.parametrize("src", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dst", INTS)
def test_nan_converts_to_zero_in_whole_blocks(target, src, dst):
    """Float to int gives 0 for NaN in the vectorised loops too (LLVM's x86 backend once gave the
    most negative value for a vector of f16 NaNs), and saturates infinities."""
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 3.75, -2.5] * 16, src)[:64]
    out = poisoned(64, dst)
    convert[(1,)](x, out, 64, DTYPE=KL[np.dtype(dst)], BITCAST=False, BLOCK=64, target=target)
    np.testing.assert_array_equal(out, reference(x, dst))


BITCASTS = [(np.float32, np.int32), (np.int32, np.float32), (np.float16, np.uint16), (np.uint64, np.float64),
            (np.int8, np.uint8), (np.float64, np.int64)]


@pytest.mark.parametrize("src, dst", BITCASTS)
def test_bitcast(target, src, dst):
    rng = np.random.default_rng(1)
    x = random_array(rng, 77, src, full_range=True, specials=True)
    out = poisoned(77, dst)
    convert[(2,)](x, out, 77, DTYPE=KL[np.dtype(dst)], BITCAST=True, BLOCK=64, target=target)
    np.testing.assert_array_equal(out.view(np.uint8), x.view(np.uint8))


def test_bitcast_between_widths_is_a_compilation_error(target):
    x = np.zeros(4, np.float32)
    with pytest.raises(kdsl.CompilationError, match="bitcast needs types of one width: f32 has 32 bits, i16 has 16"):
        convert[(1,)](x, np.zeros(4, np.int16), 4, DTYPE=kl.int16, BITCAST=True, BLOCK=4, target=target)


@kdsl.kernel
def dtype_and_shape(out_ptr, x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8)[:, None] * 4 + kl.arange(0, 4)[None, :])
    kl.static_assert(x.dtype == kl.float16)
    kl.static_assert(x.shape == (8, 4))
    kl.store(out_ptr + kl.arange(0, 8), kl.sum(x.to(x.dtype), axis=1).to(kl.float32) + x.shape[1])


def test_dtype_and_shape_are_compile_time_values(target):
    x = np.arange(32, dtype=np.float16)
    out = poisoned(8, np.float32)
    dtype_and_shape[(1,)](out, x, target=target)
    np.testing.assert_array_equal(out, x.reshape(8, 4).astype(np.float32).sum(axis=1) + 4)
