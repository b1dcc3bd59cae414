"""The numpy semantics of IR ops (kdsl.interpreter.numpy_ops) against hand-computed values."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.interpreter import dtypes
from kdsl.frontend.semantic import int_range
from kdsl.interpreter.numpy_ops import evaluate
from kdsl.ir import types as t

NAN = float("nan")
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def op(name, ty, *values, result=None, **attrs):
    """Evaluate op `name` on blocks of `ty` made from `values`; the result is a block of `result` (else `ty`)."""
    shape = np.shape(values[0])
    operands = [dtypes.finish(t.block(shape, ty), v) for v in values]
    rt = t.block(shape, result or ty)
    return evaluate(name, rt, operands, attrs, None, [t.block(shape, ty)] * len(values)).tolist()


def test_integer_division_truncates_and_remainder_takes_the_dividends_sign():
    assert op("div", t.i32, [7, -7, 7, -7], [2, 2, -2, -2]) == [3, -3, -3, 3]
    assert op("rem", t.i32, [7, -7, 7, -7], [2, 2, -2, -2]) == [1, -1, 1, -1]
    assert op("div", t.u8, [250, 7], [7, 250]) == [35, 0]


def c_divmod(a: int, b: int, ty) -> tuple[int, int]:
    """C's integer division on `ty`, in Python integers: the reference for the numpy table."""
    lo, hi = int_range(ty)
    if b == 0:
        return (-1 if ty.is_signed else hi), a
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    wrap = hi - lo + 1
    return (q - lo) % wrap + lo, a - q * b


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ty=st.sampled_from([t.i8, t.i16, t.i32, t.i64, t.u8, t.u32, t.u64]))
def test_integer_division_matches_c_on_random_operands(data, ty):
    lo, hi = int_range(ty)
    a = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=8))
    special = st.sampled_from([v for v in (0, -1, 1, lo, hi) if lo <= v <= hi])
    b = data.draw(st.lists(special | st.integers(lo, hi), min_size=len(a), max_size=len(a)))
    expected = [c_divmod(x, y, ty) for x, y in zip(a, b)]
    assert op("div", ty, a, b) == [q for q, _ in expected]
    assert op("rem", ty, a, b) == [r for _, r in expected]


def test_division_by_zero_and_int_min_over_minus_one():
    assert op("div", t.i32, [5, -5, 0], [0, 0, 0]) == [-1, -1, -1]
    assert op("rem", t.i32, [5, -5, 0], [0, 0, 0]) == [5, -5, 0]
    assert op("div", t.u32, [5], [0]) == [2**32 - 1]
    assert op("div", t.i32, [I32_MIN], [-1]) == [I32_MIN]
    assert op("rem", t.i32, [I32_MIN], [-1]) == [0]
    assert op("div", t.i64, [-(2**63)], [-1]) == [-(2**63)]


def test_float_division_and_remainder():
    assert op("div", t.f32, [1.0, -1.0], [0.0, 0.0]) == [math.inf, -math.inf]
    assert op("rem", t.f32, [-7.5, 7.5], [2.0, -2.0]) == [-1.5, 1.5]


def test_shifts():
    assert op("shl", t.i32, [1, 1, 1, 3], [31, 32, 40, -1]) == [I32_MIN, 0, 0, 0]
    assert op("shr", t.i32, [-8, -8, 8, -8], [1, 40, 40, -1]) == [-4, -1, 0, -1]
    assert op("shr", t.u32, [0xFFFFFFF0, 0x80000000, 5], [4, 31, 32]) == [0x0FFFFFFF, 1, 0]
    assert op("shl", t.u8, [0x81], [1]) == [2]


def c_shift(a: int, s: int, ty, left: bool) -> int:
    """Shifts on `ty` in Python integers: amounts read unsigned; at or past the width, 0 or the sign fill."""
    lo, hi = int_range(ty)
    amount = s % (1 << ty.bits)
    if amount >= ty.bits:
        return -1 if not left and a < 0 else 0
    return ((a << amount) - lo) % (hi - lo + 1) + lo if left else a >> amount


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ty=st.sampled_from([t.i8, t.i32, t.i64, t.u16, t.u64]), left=st.booleans())
def test_shifts_match_the_reference_on_random_operands(data, ty, left):
    lo, hi = int_range(ty)
    a = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=8))
    s = data.draw(st.lists(st.integers(0, ty.bits + 2) | st.integers(lo, hi), min_size=len(a), max_size=len(a)))
    assert op("shl" if left else "shr", ty, a, s) == [c_shift(x, y, ty, left) for x, y in zip(a, s)]


def test_integers_wrap_at_their_width():
    assert op("add", t.i8, [127], [1]) == [-128]
    assert op("sub", t.u8, [0], [1]) == [255]
    assert op("mul", t.i32, [65536], [65536]) == [0]
    assert op("neg", t.i32, [I32_MIN]) == [I32_MIN]
    assert op("abs", t.i32, [I32_MIN, -3]) == [I32_MIN, 3]
    assert op("not", t.u8, [0x0F]) == [0xF0]


def test_float_min_max_return_the_operand_that_is_not_nan():
    assert op("min", t.f32, [NAN, 1.0, 3.0], [2.0, NAN, 4.0]) == [2.0, 1.0, 3.0]
    assert op("max", t.f32, [NAN, 1.0, 3.0], [2.0, NAN, 4.0]) == [2.0, 1.0, 4.0]
    assert all(math.isnan(v) for v in op("max", t.f32, [NAN], [NAN]))


@pytest.mark.parametrize("pred, expected", [("eq", [False, True]), ("ne", [True, False]), ("lt", [False, False]),
                                            ("le", [False, True]), ("gt", [False, False]), ("ge", [False, True])])
def test_comparisons_are_ordered_except_ne(pred, expected):
    assert op("cmp", t.f32, [NAN, 1.0], [NAN, 1.0], result=t.i1, pred=pred) == expected


def test_unsigned_comparison():
    assert op("cmp", t.u32, [0xFFFFFFFF], [1], result=t.i1, pred="gt") == [True]


def test_float_to_int_casts_truncate_and_saturate_with_nan_to_zero():
    values = [1e10, -1e10, NAN, 2.7, -2.7, math.inf]
    assert op("cast", t.f32, values, result=t.i32) == [I32_MAX, I32_MIN, 0, 2, -2, I32_MAX]
    assert op("cast", t.f32, values, result=t.u8) == [255, 0, 0, 2, 0, 255]
    assert op("cast", t.f64, [1e30, 2.0**64], result=t.i64) == [2**63 - 1, 2**63 - 1]
    assert op("cast", t.f64, [2.0**64, -1.0], result=t.u64) == [2**64 - 1, 0]
    assert op("cast", t.f32, [0.0, 0.5, NAN], result=t.i1) == [False, True, True]


def test_integer_casts_wrap():
    assert op("cast", t.i32, [300, -1], result=t.u8) == [44, 255]
    assert op("cast", t.i8, [-1], result=t.u32) == [2**32 - 1]


def test_f16_ops_round_to_half_precision():
    assert op("add", t.f16, [2048.0, 2048.0], [1.0, 3.0]) == [2048.0, 2052.0]
    assert op("cast", t.f32, [65520.0, 1e-8], result=t.f16) == [math.inf, 0.0]


def test_bf16_rounds_to_nearest_even_after_every_op():
    assert op("add", t.bf16, [1.0, 1.0], [2.0**-8, 3 * 2.0**-8]) == [1.0, 1.0 + 2.0**-6]
    assert op("cast", t.f32, [1.0 + 2.0**-8 + 2.0**-20], result=t.bf16) == [1.0 + 2.0**-7]
    assert op("mul", t.bf16, [3.0e38], [2.0]) == [math.inf]
    assert dtypes.bf16_bits(np.float32(1.0)) == 0x3F80
    assert op("bitcast", t.bf16, [1.0], result=t.i16) == [0x3F80]


@pytest.mark.parametrize("ty, values, expected", [
    (t.fp8e4nv, [1.0625, 1.1875, 448.0, 500.0, -1e6, -math.inf, 2.0**-10, 1.5 * 2.0**-10],
     [1.0, 1.25, 448.0, 448.0, -448.0, -448.0, 0.0, 2.0**-9]),
    (t.fp8e5, [1.125, 1.375, 57344.0, 70000.0, -math.inf, 2.0**-17],
     [1.0, 1.5, 57344.0, 57344.0, -math.inf, 0.0]),
])
def test_fp8_conversions_round_to_nearest_even(ty, values, expected):
    assert op("cast", t.f32, values, result=ty) == expected
    assert math.isnan(op("cast", t.f32, [NAN], result=ty)[0])


@pytest.mark.parametrize("ty, one, top", [(t.fp8e4nv, 0x38, 0x7E), (t.fp8e5, 0x3C, 0x7B)])
def test_fp8_bit_patterns_round_trip(ty, one, top):
    codes = np.arange(256, dtype=np.uint8)
    values = dtypes.from_bits(codes, ty)
    finite = ~np.isnan(values)
    np.testing.assert_array_equal(dtypes.to_bits(values[finite], ty), codes[finite])
    assert dtypes.to_bits(np.float32(1.0), ty) == one
    assert values[top] == (448.0 if ty == t.fp8e4nv else 57344.0)


@pytest.mark.parametrize("ty", [t.fp8e4nv, t.fp8e5])
def test_fp8_matches_ml_dtypes(ty):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    reference = ml_dtypes.float8_e4m3fn if ty == t.fp8e4nv else ml_dtypes.float8_e5m2
    top = 448.0 if ty == t.fp8e4nv else 57344.0
    x = np.random.default_rng(0).uniform(-top, top, 10_000).astype(np.float32)
    x = np.concatenate([x, x * 1e-3, x * 1e-6])
    np.testing.assert_array_equal(dtypes.round_fp8(x, ty), x.astype(reference).astype(np.float32))


def test_reductions_accumulate_in_the_element_type():
    assert evaluate("reduce", t.i32, [np.array([I32_MAX, 1], np.int32)], {"axis": 0, "kind": "sum"}, None) == I32_MIN
    f16_sum = evaluate("reduce", t.f16, [np.array([2048, 1, 1], np.float16)], {"axis": 0, "kind": "sum"}, None)
    assert f16_sum == 2048  # each f16 partial sum rounds: 2048 + 1 is 2048 again
    fp8_sum = evaluate("reduce", t.fp8e4nv, [np.array([16.0, 1.0, 1.0], np.float32)], {"axis": 0, "kind": "sum"}, None)
    assert fp8_sum == 16.0
    assert evaluate("reduce", t.f32, [np.array([NAN, 1.0], np.float32)], {"axis": 0, "kind": "max"}, None) == 1.0


def test_bitcast_and_addptr():
    assert op("bitcast", t.f32, [1.0], result=t.i32) == [0x3F800000]
    ptr = np.array([1000], np.uint64)
    out = evaluate("addptr", t.block((1,), t.PointerType(t.f64)), [ptr, np.array([-2], np.int32)], {}, None)
    assert out.tolist() == [984]


def test_bf16_matches_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(10_000) * 10.0 ** rng.integers(-40, 39, 10_000)).astype(np.float32)
    np.testing.assert_array_equal(dtypes.round_bf16(x), x.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_f64_to_bf16_rounds_once():
    tie_plus = 1.0 + 2.0**-8 + 2.0**-40  # above the bf16 tie, but a float32 rounding would land on it
    assert op("cast", t.f64, [tie_plus, 1.0 + 2.0**-8], result=t.bf16) == [1.0 + 2.0**-7, 1.0]


def test_scalars_stay_scalars():
    for ty in (t.f32, t.bf16, t.fp8e5):
        out = evaluate("bitcast", t.SCALARS[f"u{ty.bits}"], [dtypes.finish(ty, 1.0)], {}, None, [ty])
        assert out.shape == () and out == dtypes.to_bits(np.float32(1.0), ty)
