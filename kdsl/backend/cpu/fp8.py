"""fp8 on the CPU and the GPU: values are carried as their i8 bit patterns; conversions are integer bit
manipulation.

`fp8e4nv` (e4m3fn: bias 7, no infinity, NaN = S.1111.111, max ±448) and
`fp8e5` (e5m2: bias 15, IEEE-like with ±inf) follow the interpreter's
reference (`kdsl.interpreter.dtypes.round_fp8`), which follows Triton's GPU
lowering (`cvt.rn.satfinite`): round to nearest even, NaN stays NaN (0x7f with
the input's sign), and finite values beyond the largest finite one saturate to
it. Infinities saturate in e4m3, which has none, and stay infinities in e5m2,
so that converting an e5m2 value is the identity (PTX's `.satfinite` would
clamp them too).

Widening is exact: the magnitude bits, moved into the f16 layout, are an f16
whose value times 2**(15 - bias) is the fp8 value (subnormals included).
Narrowing has one helper, `from_f64`: every source widens to f64 exactly
(integers beyond 2**53 round there, but are far beyond fp8's range and
saturate either way), and `from_f64` rounds once.

The GPU lowering emits these same functions (through the shared emitters of
`elementwise`): PTX's `cvt.rn.satfinite.e4m3x2.f32` and `cvt.rn.f16x2.e4m3x2`
exist only on sm_89 and newer, and kdsl targets sm_80, so software conversion is
the path there too (and gives the CPU's results bit for bit).
"""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import F32, I8, I16, I64
from kdsl.ir import types as t
from kdsl.ir.types import ScalarType

F16 = ir.HalfType()

_MANTISSA_BITS = {t.fp8e4nv: 3, t.fp8e5: 2}
_BIAS = {t.fp8e4nv: 7, t.fp8e5: 15}
_LARGEST = {t.fp8e4nv: 0x7E, t.fp8e5: 0x7B}  # the code of the largest finite magnitude
_INFINITY = {t.fp8e4nv: 0x7E, t.fp8e5: 0x7C}  # what an infinity becomes
NAN = 0x7F

_F64_MANTISSA = 52
_F64_BIAS = 1023


def _i64(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def to_f32(b: ir.IRBuilder, x: ir.Value, ty: ScalarType) -> ir.Value:
    """The f32 value of the fp8 bits `x` (exact)."""
    magnitude = b.and_(x, ir.Constant(I8, 0x7F))
    as_f16 = b.shl(b.zext(magnitude, I16), ir.Constant(I16, 10 - _MANTISSA_BITS[ty]))
    value = b.fpext(b.bitcast(as_f16, F16), F32)
    scale = 15 - _BIAS[ty]
    if scale:
        value = b.fmul(value, ir.Constant(F32, float(2 ** scale)))
    if ty == t.fp8e4nv:
        value = b.select(b.icmp_unsigned("==", magnitude, ir.Constant(I8, NAN)), ir.Constant(F32, float("nan")), value)
    negative = b.icmp_signed("<", x, ir.Constant(I8, 0))
    return b.select(negative, b.fneg(value), value)


def from_f64(b: ir.IRBuilder, x: ir.Value, ty: ScalarType) -> ir.Value:
    """The fp8 bits nearest to the f64 `x` (ties to even), saturating at the largest finite value."""
    mbits, bias = _MANTISSA_BITS[ty], _BIAS[ty]
    bits = b.bitcast(x, I64)
    sign = b.trunc(b.lshr(bits, _i64(56)), I8)
    sign = b.and_(sign, ir.Constant(I8, 0x80))
    magnitude = b.and_(bits, _i64((1 << 63) - 1))
    exponent = b.lshr(magnitude, _i64(_F64_MANTISSA))
    # A normal fp8 result: the f64 bits rebiased keep exponent and mantissa in place, and a
    # rounding carry out of the mantissa steps the exponent up, as it should.
    min_normal_exponent = _F64_BIAS - bias + 1
    normal = b.icmp_unsigned(">=", exponent, _i64(min_normal_exponent))
    rebiased = b.sub(magnitude, _i64((_F64_BIAS - bias) << _F64_MANTISSA))
    # A subnormal one: the significand with its implicit bit, shifted further right.
    significand = b.or_(b.and_(magnitude, _i64((1 << _F64_MANTISSA) - 1)), _i64(1 << _F64_MANTISSA))
    extra = b.sub(_i64(min_normal_exponent), exponent)
    shift = b.add(_i64(_F64_MANTISSA - mbits), b.select(normal, _i64(0), extra))
    shift = b.select(b.icmp_unsigned(">", shift, _i64(63)), _i64(63), shift)
    value = b.select(normal, rebiased, significand)
    lowest_kept = b.and_(b.lshr(value, shift), _i64(1))
    half_minus_one = b.sub(b.shl(_i64(1), b.sub(shift, _i64(1))), _i64(1))
    rounded = b.lshr(b.add(value, b.add(half_minus_one, lowest_kept)), shift)
    largest = _i64(_LARGEST[ty])
    code = b.select(b.icmp_unsigned(">", rounded, largest), largest, rounded)
    infinity = _i64(0x7FF << _F64_MANTISSA)
    code = b.select(b.icmp_unsigned("==", magnitude, infinity), _i64(_INFINITY[ty]), code)
    code = b.select(b.icmp_unsigned(">", magnitude, infinity), _i64(NAN), code)
    return b.or_(b.trunc(code, I8), sign)
