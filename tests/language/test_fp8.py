"""fp8 (API.md "types": float8e4nv = e4m3fn, float8e5 = e5m2): conversions to and from every type against the
numpy reference (kdsl.interpreter.dtypes), exhaustive over the 256 bit patterns one way and random, special,
tie, subnormal and overflowing values the other; arithmetic and promotion as Triton; reductions; ml_dtypes
arrays and torch tensors; bitcasts; dot."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.interpreter import dtypes
from tests.helpers import FLOATS, INTS, poisoned, random_array, special_values
from tests.language.test_operators import apply_op
from tests.language.test_types import KL as TYPES_KL, convert

ml_dtypes = pytest.importorskip("ml_dtypes")

FP8 = {"e4m3": (kl.float8e4nv, ml_dtypes.float8_e4m3fn), "e5m2": (kl.float8e5, ml_dtypes.float8_e5m2)}
BF16 = np.dtype(ml_dtypes.bfloat16)
OTHERS = INTS + FLOATS + [np.bool_, BF16]
KL = {**TYPES_KL, BF16: kl.bfloat16, np.dtype(ml_dtypes.float8_e4m3fn): kl.float8e4nv,
      np.dtype(ml_dtypes.float8_e5m2): kl.float8e5}
SETTINGS = settings(max_examples=4, deadline=None)


def run_convert(target, x, dst, bitcast=False):
    out = poisoned(x.size, np.float32).astype(dst) if np.dtype(dst).kind == "V" else poisoned(x.size, dst)
    convert[(kdsl.cdiv(x.size, 256),)](x, out, x.size, DTYPE=KL[np.dtype(dst)], BITCAST=bitcast, BLOCK=256,
                                        target=target)
    return out


def all_codes(fmt):
    return np.arange(256, dtype=np.uint8).view(FP8[fmt][1])


def float_to_int(values, dst):
    """Truncation toward zero, saturating; NaN gives 0 (API.md's documented CPU rule)."""
    info = np.iinfo(dst)
    v = np.trunc(np.where(np.isnan(values), 0.0, values.astype(np.float64)))
    over, under = v >= 2.0 ** (info.bits - (info.min < 0)), v < info.min
    inside = np.where(over | under, 0, v).astype(dst)
    return np.where(over, info.max, np.where(under, info.min, inside)).astype(dst)


def fp8_reference(x, fmt):
    """The fp8 bit patterns of `x` rounded once (kdsl.interpreter.dtypes, the reference)."""
    ty = FP8[fmt][0]
    wide = x.astype(np.float64) if np.dtype(x.dtype) != BF16 else x.astype(np.float32).astype(np.float64)
    return dtypes.fp8_bits(dtypes.round_fp8(wide, ty), ty)


@pytest.mark.parametrize("fmt", FP8)
@pytest.mark.parametrize("dst", OTHERS + list(FP8), ids=lambda d: d if isinstance(d, str) else np.dtype(d).name)
def test_every_fp8_bit_pattern_converts_exactly(target, fmt, dst):
    x = all_codes(fmt)
    values = x.astype(np.float32)
    if dst in FP8:
        got = run_convert(target, x, FP8[dst][1]).view(np.uint8)
        expected = fp8_reference(values, dst)
        nan = np.isnan(values)
        np.testing.assert_array_equal(got[~nan], expected[~nan])
        assert np.isnan(dtypes.fp8_table(FP8[dst][0])[got[nan]]).all()
        return
    got = run_convert(target, x, dst)
    dst = np.dtype(dst)
    if dst.kind == "b":
        expected = values != 0
    elif dst.kind in "iu":
        expected = float_to_int(values, dst)
    else:
        got, expected = got.astype(np.float64), values.astype(dst).astype(np.float64)
    np.testing.assert_array_equal(got, expected)


def interesting(fmt, dtype):
    """Exact values, the ties between neighbours and one float32 step either side of them,
    subnormals, the overflow boundary, NaN and infinities, in `dtype` where it holds them."""
    table = dtypes.fp8_table(FP8[fmt][0]).astype(np.float64)
    finite = np.sort(table[np.isfinite(table)])
    ties = (finite[1:] + finite[:-1]) / 2
    near = np.concatenate([np.nextafter(ties.astype(np.float32), np.float32(np.inf)),
                           np.nextafter(ties.astype(np.float32), np.float32(-np.inf))])
    top = finite[-1]
    edges = np.array([top * 1.0625, top * 1.125, top * 1.2, top * 4, 2.0 ** -20, -(2.0 ** -20), np.nan, np.inf,
                      -np.inf, 0.0, -0.0])
    values = np.concatenate([finite, ties, near, edges])
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@pytest.mark.parametrize("fmt", FP8)
@pytest.mark.parametrize("src", FLOATS + [BF16], ids=lambda d: np.dtype(d).name)
def test_ties_subnormals_overflow_and_nan_round_once(target, fmt, src):
    x = interesting(fmt, src)
    got = run_convert(target, x, FP8[fmt][1]).view(np.uint8)
    np.testing.assert_array_equal(got, fp8_reference(x, fmt))


@pytest.mark.parametrize("fmt", FP8)
@pytest.mark.parametrize("src", OTHERS, ids=lambda d: np.dtype(d).name)
@SETTINGS
@given(n=st.integers(1, 300), scale=st.sampled_from([1e-4, 0.1, 1.0, 100.0, 1e5]), seed=st.integers(0, 2**32 - 1))
def test_conversion_to_fp8_rounds_to_nearest_even(target, fmt, src, n, scale, seed):
    rng = np.random.default_rng(seed)
    src = np.dtype(src)
    if src.kind == "b":
        x = rng.random(n) < 0.5
    elif src == BF16:
        x = (rng.standard_normal(n) * scale).astype(BF16)
    elif src.kind == "f":
        with np.errstate(over="ignore"):
            x = (rng.standard_normal(n) * scale).astype(src)
        x[: n // 8] = rng.choice(special_values(src), n // 8)
    else:
        x = random_array(rng, n, src, full_range=scale > 1, specials=True)
    got = run_convert(target, x, FP8[fmt][1]).view(np.uint8)
    np.testing.assert_array_equal(got, fp8_reference(x, fmt))


@pytest.mark.parametrize("fmt", FP8)
@pytest.mark.parametrize("other", [np.int8, np.uint8])
def test_bitcast_between_fp8_and_8_bit_integers(target, fmt, other):
    codes = all_codes(fmt)
    np.testing.assert_array_equal(run_convert(target, codes, other, bitcast=True), codes.view(other))
    back = run_convert(target, codes.view(other), FP8[fmt][1], bitcast=True)
    np.testing.assert_array_equal(back.view(np.uint8), codes.view(np.uint8))


# arithmetic ----------------------------------------------------------------------------------------------------

@kdsl.kernel
def binary(x_ptr, y_ptr, out_ptr, n, OP: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask)
    if OP == "where":
        z = kl.where(x < y, x, y)
    elif OP == "scalar":
        z = x * 3 + 0.5
    elif OP == "neg_abs":
        z = -kl.abs(x)
    else:
        z = apply_op(x, y, OP)
    kl.store(out_ptr + offs, z, mask=mask)


def reference_op(op, a, b):
    with np.errstate(all="ignore"):
        return {"add": a + b, "sub": a - b, "mul": a * b, "truediv": a / b, "maximum": np.fmax(a, b),
                "minimum": np.fmin(a, b), "lt": a < b, "where": np.where(a < b, a, b), "neg_abs": -np.abs(a)}[op]


# (x format, y dtype, the computation type as Triton promotes, the out array's dtype)
PROMOTIONS = [("e4m3", "e4m3", "e4m3"), ("e5m2", "e5m2", "e5m2"), ("e4m3", "e5m2", np.float16),
              ("e4m3", np.float16, np.float16), ("e5m2", BF16, np.float32), ("e4m3", np.float32, np.float32),
              ("e5m2", np.float64, np.float64)]


def as_array(dtype):
    return np.dtype(FP8[dtype][1]) if isinstance(dtype, str) else np.dtype(dtype)


def round_to(values, dtype):
    """float64 values rounded (once) to `dtype`, as float64."""
    if isinstance(dtype, str):
        return dtypes.round_fp8(values, FP8[dtype][0]).astype(np.float64)
    return values.astype(as_array(dtype)).astype(np.float64)


@pytest.mark.parametrize("fmt, other, computed", PROMOTIONS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "maximum", "minimum", "lt", "where", "scalar",
                                "neg_abs"])
def test_arithmetic_computes_in_the_promoted_type(target, fmt, other, computed, op):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(200) * 8).astype(as_array(fmt))
    y = (rng.standard_normal(200) * 8).astype(as_array(other))
    x[:3], y[:3] = [np.nan, 2.0, 0.0], [1.0, np.nan, -0.0]
    if op == "truediv":
        computed = np.float64 if computed is np.float64 else np.float32  # Triton divides in fp32 (or fp64)
    a, b = x.astype(np.float64), y.astype(np.float64)
    if computed not in (np.float64,):  # operands meet in the computation type: float32 arithmetic, rounded
        a, b = a.astype(np.float32), b.astype(np.float32)
    out = poisoned(200, np.bool_ if op == "lt" else np.float64)
    binary[(1,)](x, y, out, 200, OP=op, BLOCK=256, target=target)
    if op == "scalar":  # Python numbers take the block's type: two fp8 operations, each rounded
        expected = round_to(round_to(a * 3, fmt) + 0.5, fmt)
    elif op == "lt":
        expected = reference_op(op, a, b)
    else:
        expected = round_to(np.asarray(reference_op(op, a, b), np.float64), fmt if op == "neg_abs" else computed)
    np.testing.assert_array_equal(out, expected)


@kdsl.kernel
def reduce_fp8(x_ptr, sum_ptr, max_ptr, wide_ptr, N: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, N))
    kl.store(sum_ptr, kl.sum(x, axis=0))
    kl.store(max_ptr, kl.max(x, axis=0))
    kl.store(wide_ptr, kl.sum(x, axis=0, dtype=kl.float32))


@pytest.mark.parametrize("fmt", FP8)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_sum_stays_fp8_and_rounds_every_partial_sum(target, fmt, seed):
    x = np.random.default_rng(seed).uniform(-4, 8, 64).astype(FP8[fmt][1])
    total, high, wide = poisoned(1, np.float64), poisoned(1, np.float64), poisoned(1, np.float64)
    reduce_fp8[(1,)](x, total, high, wide, N=64, target=target)
    expected = 0.0
    for i, v in enumerate(x.astype(np.float64)):
        expected = v if i == 0 else float(round_to(np.array([expected + v]), fmt)[0])
    assert total[0] == expected
    assert high[0] == x.astype(np.float64).max()
    assert wide[0] == pytest.approx(x.astype(np.float64).sum(), rel=1e-6)


# memory --------------------------------------------------------------------------------------------------------

@kdsl.kernel
def copy(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


@pytest.mark.parametrize("fmt", FP8)
def test_ml_dtypes_arrays_load_and_store_every_bit_pattern(target, fmt):
    x = np.tile(all_codes(fmt), 3)
    out = np.zeros(x.size, np.uint8).view(FP8[fmt][1])
    copy[(2,)](x, out, x.size, BLOCK=512, target=target)
    np.testing.assert_array_equal(out.view(np.uint8), x.view(np.uint8))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2"])
def test_torch_fp8_tensors(target, name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, name)
    x = torch.arange(256, dtype=torch.uint8).view(dtype)
    out = torch.zeros(256, dtype=torch.uint8).view(dtype)
    copy[(1,)](x, out, 256, BLOCK=256, target=target)
    assert torch.equal(out.view(torch.uint8), x.view(torch.uint8))
    wide = torch.full((256,), float("nan"), dtype=torch.float32)
    convert[(1,)](x, wide, 256, DTYPE=kl.float32, BITCAST=False, BLOCK=256, target=target)
    np.testing.assert_array_equal(wide.numpy(), x.float().numpy())


@kdsl.kernel
def add_scalar(x_ptr, out_ptr, s, N: kl.constexpr):
    offs = kl.arange(0, N)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs) + s)


@pytest.mark.parametrize("fmt", FP8)
def test_ml_dtypes_scalars_are_fp8_arguments(target, fmt):
    """An fp8 scalar argument keeps its type: fp8 + fp8 stays fp8, one rounding of the f32 sum."""
    x = np.random.default_rng(2).uniform(-8, 8, 16).astype(FP8[fmt][1])
    out = poisoned(16, np.float64)
    add_scalar[(1,)](x, out, FP8[fmt][1](2.75), N=16, target=target)
    np.testing.assert_array_equal(out, round_to(x.astype(np.float64) + float(FP8[fmt][1](2.75)), fmt))


# dot -----------------------------------------------------------------------------------------------------------

@kdsl.kernel
def dot_kernel(a_ptr, b_ptr, c_ptr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr, OUT: kl.constexpr):
    rm, rn, rk = kl.arange(0, M), kl.arange(0, N), kl.arange(0, K)
    a = kl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = kl.load(b_ptr + rk[:, None] * N + rn[None, :])
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], kl.dot(a, b, out_dtype=OUT))


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e5m2"), ("e4m3", "e5m2")])
@pytest.mark.parametrize("out", [np.float32, np.float16])
def test_dot_on_fp8_operands_accumulates_in_the_result_type(target, fa, fb, out):
    rng = np.random.default_rng(3)
    m, n, k = 16, 32, 64
    a = rng.standard_normal((m, k)).astype(FP8[fa][1])
    b = rng.standard_normal((k, n)).astype(FP8[fb][1])
    c = poisoned((m, n), out)
    dot_kernel[(1,)](a, b, c, M=m, N=n, K=k, OUT=KL[np.dtype(out)], target=target)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if out is np.float32 else 2e-2
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * 8)


@kdsl.kernel
def fma_kernel(x_ptr, y_ptr, z_ptr, out_ptr, N: kl.constexpr):
    offs = kl.arange(0, N)
    kl.store(out_ptr + offs, kl.fma(kl.load(x_ptr + offs), kl.load(y_ptr + offs), kl.load(z_ptr + offs)))


@pytest.mark.parametrize("fmt", FP8)
def test_fma_rounds_once(target, fmt):
    """192 * 192 = 36864 is an e5m2 tie: a tiny z decides it, which an f32 intermediate would lose."""
    rng = np.random.default_rng(5)
    x, y, z = (rng.standard_normal(64) * 4 for _ in range(3))
    x[0], y[0], z[0] = 192.0, 192.0, 2.0 ** -16
    x, y, z = (v.astype(FP8[fmt][1]) for v in (x, y, z))
    out = poisoned(64, np.float64)
    fma_kernel[(1,)](x, y, z, out, N=64, target=target)
    exact = x.astype(np.float64) * y.astype(np.float64) + z.astype(np.float64)
    np.testing.assert_array_equal(out, round_to(exact, fmt))


@kdsl.kernel
def batched_dot(a_ptr, b_ptr, c_ptr, B: kl.constexpr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr):
    rb, rm, rn, rk = kl.arange(0, B), kl.arange(0, M), kl.arange(0, N), kl.arange(0, K)
    a = kl.load(a_ptr + rb[:, None, None] * M * K + rm[None, :, None] * K + rk[None, None, :])
    b = kl.load(b_ptr + rb[:, None, None] * K * N + rk[None, :, None] * N + rn[None, None, :])
    kl.store(c_ptr + rb[:, None, None] * M * N + rm[None, :, None] * N + rn[None, None, :], kl.dot(a, b))


def test_batched_dot_on_mixed_fp8_operands(target):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2, 8, 16)).astype(FP8["e4m3"][1])
    b = rng.standard_normal((2, 16, 8)).astype(FP8["e5m2"][1])
    c = poisoned((2, 8, 8), np.float32)
    batched_dot[(1,)](a, b, c, B=2, M=8, N=8, K=16, target=target)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-5)
