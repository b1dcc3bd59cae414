"""fp8 lowered for the GPU (the CPU's software conversions, `kdsl.backend.cpu.fp8`), on the PTX simulator
against ml_dtypes: every bit pattern widened, random and boundary values narrowed (round to nearest even,
saturating), arithmetic rounded once per operation, sums folded left in index order (bit for bit the CPU's)
and max/min through the tree reduction, over shapes and warp counts; the PTX assembles for sm_80 and sm_90.

NaN codes are compared by NaN-ness: e4m3 has two (0x7f, 0xff) and e5m2 six, and which one a NaN input
gives is not part of the contract."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned
from tests.language.test_types import KL, convert

ml_dtypes = pytest.importorskip("ml_dtypes")

FORMATS = {"e4m3": (kl.float8e4nv, ml_dtypes.float8_e4m3fn), "e5m2": (kl.float8e5, ml_dtypes.float8_e5m2)}
SETTINGS = settings(max_examples=4, deadline=None)
WARPS = st.sampled_from([1, 2, 4])
SEEDS = st.integers(0, 2**32 - 1)


def narrowed(x, fmt):
    """ml_dtypes' round to nearest even, saturating finite values (and e4m3's infinities) at the largest
    finite fp8 value, as `cvt.rn.satfinite` does; e5m2 keeps its infinities."""
    dtype = FORMATS[fmt][1]
    top = float(ml_dtypes.finfo(dtype).max)
    x = x.astype(np.float64)
    kept = np.isinf(x) if fmt == "e5m2" else np.zeros(x.shape, bool)
    return np.where(kept, x, np.clip(x, -top, top)).astype(dtype)


def assert_same_fp8(got, expected):
    """Equal bit patterns, NaNs compared by NaN-ness."""
    nan = np.isnan(expected.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
    np.testing.assert_array_equal(got.view(np.uint8)[~nan], expected.view(np.uint8)[~nan])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dst", [np.float32, np.float16, np.float64])
def test_every_bit_pattern_widens_exactly(fmt, dst):
    x = np.arange(256, dtype=np.uint8).view(FORMATS[fmt][1])
    out = poisoned(256, dst)
    run_sim(convert, (1,), x, out, 256, DTYPE=KL[np.dtype(dst)], BITCAST=False, BLOCK=256)
    np.testing.assert_array_equal(out, x.astype(dst))


def values_to_narrow(rng, fmt, n):
    """Random values over fp8's range and beyond, the ties between neighbouring fp8 values, and specials."""
    finite = np.arange(256, dtype=np.uint8).view(FORMATS[fmt][1]).astype(np.float64)
    finite = np.unique(finite[np.isfinite(finite)])
    ties = (finite[1:] + finite[:-1]) / 2
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e6, -1e6, 2.0**-20])
    wide = rng.standard_normal(n) * np.exp2(rng.integers(-12, 18, n))
    return np.concatenate([wide, rng.choice(ties, n), specials]).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(n=st.integers(1, 200), num_warps=WARPS, seed=SEEDS)
def test_f32_narrows_to_nearest_even_and_saturates(fmt, n, num_warps, seed):
    x = values_to_narrow(np.random.default_rng(seed), fmt, n)
    out = np.zeros(x.size, np.uint8).view(FORMATS[fmt][1])
    run_sim(convert, (kdsl.cdiv(x.size, 128),), x, out, x.size, DTYPE=FORMATS[fmt][0], BITCAST=False,
            BLOCK=128, num_warps=num_warps)
    assert_same_fp8(out, narrowed(x, fmt))


@kdsl.kernel
def arithmetic(x_ptr, y_ptr, sum_ptr, prod_ptr, N: kl.constexpr):
    offs = kl.arange(0, N)
    x, y = kl.load(x_ptr + offs), kl.load(y_ptr + offs)
    kl.store(sum_ptr + offs, x + y)
    kl.store(prod_ptr + offs, x * y)


@pytest.mark.parametrize("fmt", FORMATS)
def test_arithmetic_rounds_the_f32_result_once(fmt):
    rng = np.random.default_rng(4)
    dtype = FORMATS[fmt][1]
    x, y = ((rng.standard_normal(128) * 16).astype(dtype) for _ in range(2))
    total, product = np.zeros(128, dtype), np.zeros(128, dtype)
    run_sim(arithmetic, (1,), x, y, total, product, N=128)
    a, b = x.astype(np.float32), y.astype(np.float32)
    assert_same_fp8(total, narrowed(a + b, fmt))
    assert_same_fp8(product, narrowed(a * b, fmt))


@kdsl.kernel
def reduce_rows(x_ptr, sum_ptr, max_ptr, min_ptr, AXIS: kl.constexpr, R: kl.constexpr, C: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, R)[:, None] * C + kl.arange(0, C)[None, :])
    size = C if AXIS == 0 else R
    offs = kl.arange(0, size)
    kl.store(sum_ptr + offs, kl.sum(x, axis=AXIS))
    kl.store(max_ptr + offs, kl.max(x, axis=AXIS))
    kl.store(min_ptr + offs, kl.min(x, axis=AXIS))


def left_fold_sum(x, axis, fmt):
    """The sum along `axis` added in index order, each partial sum rounded to fp8 (ml_dtypes)."""
    rows = np.moveaxis(x, axis, 0).astype(np.float32)
    total = rows[0].astype(FORMATS[fmt][1])
    for row in rows[1:]:
        total = narrowed(total.astype(np.float32) + row, fmt)
    return total


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(rows=st.sampled_from([1, 4, 32]), cols=st.sampled_from([2, 16, 64]), axis=st.sampled_from([0, 1]),
       num_warps=WARPS, seed=SEEDS)
def test_sum_folds_left_like_the_cpu_and_max_min_are_exact(fmt, rows, cols, axis, num_warps, seed):
    dtype = FORMATS[fmt][1]
    x = np.random.default_rng(seed).uniform(-4, 8, (rows, cols)).astype(dtype)
    size = (rows, cols)[1 - axis]
    outs = {}
    for target in ("sim", "cpu"):
        outs[target] = sums, highs, lows = tuple(np.zeros(size, np.uint8).view(dtype) for _ in range(3))
        meta = dict(AXIS=axis, R=rows, C=cols)
        if target == "sim":
            run_sim(reduce_rows, (1,), x, sums, highs, lows, num_warps=num_warps, **meta)
        else:
            reduce_rows[(1,)](x, sums, highs, lows, target="cpu", **meta)
    sums, highs, lows = outs["sim"]
    assert_same_fp8(sums, left_fold_sum(x, axis, fmt))
    np.testing.assert_array_equal(sums.view(np.uint8), outs["cpu"][0].view(np.uint8))
    np.testing.assert_array_equal(highs.astype(np.float32), x.astype(np.float32).max(axis=axis))
    np.testing.assert_array_equal(lows.astype(np.float32), x.astype(np.float32).min(axis=axis))


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("fmt", FORMATS)
def test_fp8_ptx_assembles(fmt):
    dtype = FORMATS[fmt][1]
    x = np.zeros((4, 16), dtype)
    assemble_all_arches(convert, (x.astype(np.float32).ravel(), x.ravel(), 64),
                        dict(DTYPE=FORMATS[fmt][0], BITCAST=False, BLOCK=64))
    assemble_all_arches(convert, (x.ravel(), x.astype(np.float32).ravel(), 64),
                        dict(DTYPE=kl.float32, BITCAST=False, BLOCK=64))
    assemble_all_arches(reduce_rows, (x, x[0], x[0], x[0]), dict(AXIS=0, R=4, C=16))
