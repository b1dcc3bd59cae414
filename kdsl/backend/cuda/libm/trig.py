"""sin and cos for f32 and f64: x = q * pi/2 + r with |r| <= pi/4 (r carried as r_hi + r_lo), then
the Taylor polynomials of sin and cos on r chosen and signed by q mod 4 (fdlibm's kernels).

Reduction: Cody-Waite with pi/2 split into three format-precision parts (the first step fma-exact,
the rest carried as two-term sums) below CODY_WAITE_LIMIT; beyond it Payne-Hanek in integers: a 256-bit window of 2/pi's bits is
read at bit offset E - 1 (E the exponent of |x|) from a 20-word table, multiplied by x's
mantissa (normalised to 64 bits), and bits 255..128 of the product are x * 2/pi mod 4 with 126
fraction bits, so every finite x reduces accurately (DBL_MAX included). Both reductions run,
a select picks one: the code stays straight-line. inf and NaN give NaN.
"""
from __future__ import annotations

import math

from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cuda.libm.common import I32, I64, I128, I256, Ops
from kdsl.backend.cuda.libm.constants import half_pi, split, two_over_pi_words

CODY_WAITE_LIMIT = {"f32": 2.0**15, "f64": 2.0**25}
# Taylor terms after the first: sin = r + r^3 S(r^2), cos = 1 - r^2/2 + r^4 C(r^2), |r| <= pi/4
SIN_TERMS = {"f32": 4, "f64": 8}
COS_TERMS = {"f32": 4, "f64": 7}
TABLE = "__kdsl_libm_two_over_pi"


def _cody_waite(m: Ops, x):
    """(q as i32, r_hi, r_lo) for |x| below the limit: x - k c1 is exact (fma), k c2 and the
    subtraction are carried as exact two-term sums, k c3 is added to the low part."""
    b = m.b
    k = m.rint(b.fmul(x, m.c(2 / math.pi)))
    c1, c2, c3 = split(half_pi(), m.fmt.numpy, 3)
    r1 = m.fma(b.fneg(k), m.c(c1), x)
    p_hi = b.fmul(k, m.c(c2))
    p_lo = m.fma(k, m.c(c2), b.fneg(p_hi))
    t_hi, t_lo = m.two_sum(r1, b.fneg(p_hi))
    low = b.fsub(t_lo, m.fma(k, m.c(c3), p_lo))
    r_hi = b.fadd(t_hi, low)
    r_lo = b.fsub(low, b.fsub(r_hi, t_hi))
    return b.fptosi(m.clamp(k, -2.0**30, 2.0**30), I32), r_hi, r_lo


def _payne_hanek(m: Ops, ax):
    """(q as i32, r_hi, r_lo) for |x| = ax >= 2: x * 2/pi mod 4 in 128-bit integer arithmetic."""
    b, fmt = m.b, m.fmt
    bits = m.to_bits(ax)
    e = b.sub(b.lshr(bits, m.i(fmt.mantissa)), m.i(fmt.bias))
    mant = b.or_(b.and_(bits, m.i((1 << fmt.mantissa) - 1)), m.i(1 << fmt.mantissa))
    if fmt.bits_ty != I64:
        e, mant = b.zext(e, I64), b.zext(mant, I64)
    mant64 = b.shl(mant, ir.Constant(I64, 63 - fmt.mantissa))
    offset = b.trunc(b.sub(e, ir.Constant(I64, 1)), I32)
    max_offset = 64 * (len(two_over_pi_words()) - 5) + 63
    offset = b.select(b.icmp_signed("<", offset, ir.Constant(I32, 0)), ir.Constant(I32, 0), offset)
    offset = b.select(b.icmp_signed(">", offset, ir.Constant(I32, max_offset)), ir.Constant(I32, max_offset), offset)
    table = m.table(TABLE, two_over_pi_words(), I64)
    word = b.lshr(offset, ir.Constant(I32, 6))
    shift = b.zext(b.and_(offset, ir.Constant(I32, 63)), I64)
    words = [m.load(table, b.add(word, ir.Constant(I32, j))) for j in range(5)]
    product = ir.Constant(I256, 0)
    for j in range(4):
        window = m.call("fshl", words[j], words[j + 1], shift)
        part = b.mul(b.zext(mant64, I128), b.zext(window, I128))
        product = b.add(product, b.shl(b.zext(part, I256), ir.Constant(I256, 64 * (3 - j))))
    y = b.trunc(b.lshr(product, ir.Constant(I256, 128)), I128)
    # round to the nearest quadrant: q = the top two bits plus the next; the rest a signed fraction
    q = b.trunc(b.lshr(b.add(y, ir.Constant(I128, 1 << 125)), ir.Constant(I128, 126)), I32)
    frac = b.ashr(b.shl(y, ir.Constant(I128, 2)), ir.Constant(I128, 2))
    negative = b.icmp_signed("<", frac, ir.Constant(I128, 0))
    magnitude = b.select(negative, b.neg(frac), frac)
    zeros = m.call("ctlz", magnitude, ir.Constant(ir.IntType(1), 0))
    top = b.trunc(b.lshr(b.shl(magnitude, zeros), ir.Constant(I128, 64)), I64)
    # |frac| = top * 2**(-62 - zeros): top * 2**-64 in [1/2, 1), times 2**(2 - zeros) <= 1
    lowest = ir.Constant(I32, 1 - fmt.bias)
    exponent = b.sub(ir.Constant(I32, 2), b.trunc(zeros, I32))
    exponent = b.select(b.icmp_signed("<", exponent, lowest), lowest, exponent)
    scale = b.fmul(m.c(2.0**-64), m.pow2(exponent))
    top_float = b.uitofp(top, fmt.ty)
    # what the conversion dropped, as a signed i64 (saturating: top_float may have rounded up to 2**64)
    back = b.call(declare(b.module, f"llvm.fptoui.sat.i64.{fmt.name}", I64, [fmt.ty]), [top_float])
    rounding = b.sub(top, back)
    f = b.fmul(top_float, scale)
    f_lo = b.fmul(b.sitofp(rounding, fmt.ty), scale)
    f, f_lo = b.select(negative, b.fneg(f), f), b.select(negative, b.fneg(f_lo), f_lo)
    c1, c2 = split(half_pi(), fmt.numpy, 2)
    r_hi = b.fmul(f, m.c(c1))
    r_lo = m.fma(f, m.c(c2), m.fma(f_lo, m.c(c1), m.fma(f, m.c(c1), b.fneg(r_hi))))
    return q, r_hi, r_lo


def _reduce(m: Ops, x):
    """(q mod 4 as i32, r_hi, r_lo) with x = q * pi/2 + r_hi + r_lo."""
    b = m.b
    ax = m.abs(x)
    q_small, hi_small, lo_small = _cody_waite(m, x)
    q_big, hi_big, lo_big = _payne_hanek(m, ax)
    negative = b.fcmp_ordered("<", x, m.c(0.0))
    q_big = b.select(negative, b.neg(q_big), q_big)
    hi_big = b.select(negative, b.fneg(hi_big), hi_big)
    lo_big = b.select(negative, b.fneg(lo_big), lo_big)
    small = b.fcmp_ordered("<", ax, m.c(CODY_WAITE_LIMIT[m.fmt.name]))
    q = b.and_(b.select(small, q_small, q_big), ir.Constant(I32, 3))
    return q, b.select(small, hi_small, hi_big), b.select(small, lo_small, lo_big)


def _kernels(m: Ops, r_hi, r_lo):
    """(sin r, cos r) for r = r_hi + r_lo, |r| <= pi/4 (fdlibm's __kernel_sin/__kernel_cos)."""
    b, name = m.b, m.fmt.name
    z = b.fmul(r_hi, r_hi)
    hz = b.fmul(m.c(0.5), z)
    w = b.fsub(m.c(1.0), hz)
    sin_coeffs = [(-1) ** n / math.factorial(2 * n + 1) for n in reversed(range(1, SIN_TERMS[name] + 1))]
    sin_tail = b.fmul(b.fmul(z, r_hi), m.horner(z, sin_coeffs))
    sin_r = b.fadd(r_hi, m.fma(r_lo, w, sin_tail))  # sin(r_hi + r_lo) ~ sin r_hi + r_lo cos r_hi
    cos_coeffs = [(-1) ** n / math.factorial(2 * n) for n in reversed(range(2, COS_TERMS[name] + 2))]
    tail = b.fsub(b.fmul(b.fmul(z, z), m.horner(z, cos_coeffs)), b.fmul(r_hi, r_lo))
    cos_r = b.fadd(w, b.fadd(b.fsub(b.fsub(m.c(1.0), w), hz), tail))
    return sin_r, cos_r


def _quadrant(m: Ops, x, shift: int):
    """sin(x + shift * pi/2): sin r, cos r, -sin r, -cos r by (q + shift) mod 4; NaN off the finite."""
    b = m.b
    q, r_hi, r_lo = _reduce(m, x)
    q = b.add(q, ir.Constant(I32, shift))
    sin_r, cos_r = _kernels(m, r_hi, r_lo)
    odd = b.icmp_unsigned("!=", b.and_(q, ir.Constant(I32, 1)), ir.Constant(I32, 0))
    flip = b.icmp_unsigned("!=", b.and_(q, ir.Constant(I32, 2)), ir.Constant(I32, 0))
    y = b.select(odd, cos_r, sin_r)
    y = b.select(flip, b.fneg(y), y)
    finite = b.fcmp_ordered("<", m.abs(x), m.c(math.inf))
    return b.select(finite, y, m.c(math.nan))


def sin(m: Ops, x):
    """sin(x); sin(-0) = -0, which the reduction's x - 0 * pi/2 would make +0."""
    return m.b.select(m.b.fcmp_ordered("==", x, m.c(0.0)), x, _quadrant(m, x, 0))


def cos(m: Ops, x):
    return _quadrant(m, x, 1)
