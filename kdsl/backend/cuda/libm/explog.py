"""exp, exp2, log and log2 for f32 and f64: one algorithm each, the degree set by the format.

exp/exp2: x = k * ln2 + r (Cody-Waite in two fma steps for exp, r = x - k exactly for exp2),
|r| <= ln2/2; e^r from its Taylor polynomial by Horner with fma; 2**k applied as two normal
factors so that results that underflow to subnormals round once. x is clamped first to where the
result is surely 0 or inf, NaN selected back at the end.

log/log2 (fdlibm's scheme): x = 2**e * m with m in [sqrt(1/2), sqrt(2)) (subnormals scaled up
first), f = m - 1, s = f / (2 + f), log(1 + f) = f - hfsq + s * (hfsq + R(s*s)) with hfsq = f*f/2
and R the atanh series 2/3 z + 2/5 z^2 + ..., carried as hi + lo (hi = f - hfsq rounded);
log = e * ln2 + hi + lo and log2 = e + (hi + lo) / ln2 with the constants in two parts and the
last sum by 2Sum, so that the result rounds about once.
"""
from __future__ import annotations

import math

from kdsl.backend.cuda.libm.common import I32, Format, Ops
from kdsl.backend.cuda.libm.constants import ln2_scaled, split, split_short

# Taylor terms of e^r needed for |r| <= ln2/2 to leave a truncation error under 1/8 ulp
EXP_TERMS = {"f32": 8, "f64": 14}
# terms of R(z), z = s*s <= 0.0295, for the same bound
LOG_TERMS = {"f32": 4, "f64": 10}


def _exp_bounds(fmt: Format) -> tuple[float, float]:
    """log2 of the results: beyond these 2**k is surely inf or rounds to 0."""
    return -(fmt.bias + fmt.mantissa + 8.0), fmt.bias + 8.0


def _scaled(m: Ops, x, k, r, coeffs):
    """2**k * P(r), NaN where x is NaN."""
    y = m.ldexp(m.horner(r, coeffs), m.b.fptosi(k, I32))
    return m.b.select(m.is_nan(x), x, y)


def exp(m: Ops, x):
    lo, hi = _exp_bounds(m.fmt)
    xc = m.clamp(x, lo * math.log(2), hi * math.log(2))
    k = m.rint(m.b.fmul(xc, m.c(1 / math.log(2))))
    ln2_hi, ln2_lo = split(ln2_scaled(), m.fmt.numpy, 2)
    minus_k = m.b.fneg(k)
    r = m.fma(minus_k, m.c(ln2_lo), m.fma(minus_k, m.c(ln2_hi), xc))
    return _scaled(m, x, k, r, [1 / math.factorial(n) for n in reversed(range(EXP_TERMS[m.fmt.name]))])


def exp2(m: Ops, x):
    xc = m.clamp(x, *_exp_bounds(m.fmt))
    k = m.rint(xc)
    ln2 = math.log(2)
    coeffs = [ln2**n / math.factorial(n) for n in reversed(range(EXP_TERMS[m.fmt.name]))]
    return _scaled(m, x, k, m.b.fsub(xc, k), coeffs)


def _log_parts(m: Ops, x):
    """(e as a float, hi, lo) with x = 2**e * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)) and
    log(1 + f) = hi + lo, hi = f - hfsq rounded, lo what that rounding and the tail leave."""
    b, fmt = m.b, m.fmt
    subnormal = b.fcmp_ordered("<", x, m.c(fmt.tiny))
    bits = m.to_bits(b.select(subnormal, b.fmul(x, m.c(2.0 ** (fmt.mantissa + 1))), x))
    # adding 1 - sqrt(1/2) (as bit patterns) carries into the exponent exactly when m >= sqrt(1/2)
    one, half_root = fmt.bias << fmt.mantissa, fmt.bits_of(math.sqrt(0.5))
    shifted = b.add(bits, m.i(one - half_root))
    e = b.sub(b.lshr(shifted, m.i(fmt.mantissa)), m.i(fmt.bias))
    e = b.sub(e, b.select(subnormal, m.i(fmt.mantissa + 1), m.i(0)))
    f = b.fsub(m.from_bits(b.add(b.and_(shifted, m.i((1 << fmt.mantissa) - 1)), m.i(half_root))), m.c(1.0))
    s = b.fdiv(f, b.fadd(m.c(2.0), f))
    z = b.fmul(s, s)
    r = b.fmul(z, m.horner(z, [2 / (2 * n + 1) for n in reversed(range(1, LOG_TERMS[fmt.name] + 1))]))
    half_f = b.fmul(m.c(0.5), f)
    hfsq = b.fmul(half_f, f)
    hfsq_lo = m.fma(half_f, f, b.fneg(hfsq))  # f*f/2 = hfsq + hfsq_lo exactly
    hi = b.fsub(f, hfsq)
    lo = b.fadd(b.fsub(b.fsub(b.fsub(f, hi), hfsq), hfsq_lo), b.fmul(s, b.fadd(hfsq, r)))
    return b.sitofp(e, fmt.ty), hi, lo


def _log_specials(m: Ops, x, y):
    """y where x is finite and positive; -inf at +-0, NaN below 0 and at NaN, +inf at +inf."""
    b = m.b
    y = b.select(b.fcmp_ordered("==", x, m.c(math.inf)), x, y)
    y = b.select(b.fcmp_ordered("==", x, m.c(0.0)), m.c(-math.inf), y)
    return b.select(b.fcmp_unordered("<", x, m.c(0.0)), m.c(math.nan), y)


def _plus(m: Ops, big, hi, lo):
    """big + hi + lo, rounding once in effect: 2Sum of big and hi, the errors added last."""
    total, error = m.two_sum(big, hi)
    return m.b.fadd(total, m.b.fadd(error, lo))


def log(m: Ops, x):
    """e ln2 + hi + lo, ln2 = ln2_hi + ln2_lo with e * ln2_hi exact."""
    e, hi, lo = _log_parts(m, x)
    exponent_bits = m.fmt.bits_ty.width - 1 - m.fmt.mantissa
    ln2_hi, ln2_lo = split_short(ln2_scaled(), m.fmt.numpy, m.fmt.mantissa + 1 - exponent_bits)
    y = _plus(m, m.b.fmul(e, m.c(ln2_hi)), hi, m.fma(e, m.c(ln2_lo), lo))
    return _log_specials(m, x, y)


def log2(m: Ops, x):
    """e + (hi + lo) / ln2, the product with 1/ln2 = inv_hi + inv_lo carried as two terms."""
    b = m.b
    e, hi, lo = _log_parts(m, x)
    inv_hi, inv_lo = split(1 / ln2_scaled(), m.fmt.numpy, 2)
    y_hi = b.fmul(hi, m.c(inv_hi))
    y_lo = m.fma(lo, m.c(inv_hi), m.fma(hi, m.c(inv_lo), m.fma(hi, m.c(inv_hi), b.fneg(y_hi))))
    return _log_specials(m, x, _plus(m, e, y_hi, y_lo))
