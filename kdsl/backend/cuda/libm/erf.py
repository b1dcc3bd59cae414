"""erf for f32 and f64: |x| < 1/2 by erf's odd Taylor series, |x| in [1/2, cutoff) by a Taylor
polynomial around the centre of its interval of width 1/4 (coefficients from exact Hermite
polynomials, in a constant table indexed by the interval), 1 beyond the cutoff (where erfc(x)
is below a quarter ulp of 1); the sign copied from x, NaN kept."""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from llvmlite import ir

from kdsl.backend.cuda.libm.common import I32, Ops
from kdsl.backend.cuda.libm.constants import erf_odd_series, erf_taylor

SERIES_LIMIT = 0.5
WIDTH = Fraction(1, 4)
CUTOFF = {"f32": 4.0, "f64": 6.0}
SERIES_TERMS = {"f32": 8, "f64": 13}
TAYLOR_TERMS = {"f32": 8, "f64": 15}


def _intervals(name: str) -> int:
    return int((CUTOFF[name] - SERIES_LIMIT) / WIDTH)


@lru_cache(maxsize=None)
def erf_table(name: str) -> tuple[float, ...]:
    """Per interval i (centre 1/2 + (i + 1/2)/4), its Taylor coefficients highest first."""
    return tuple(c for i in range(_intervals(name))
                 for c in erf_taylor(Fraction(1, 2) + (i + Fraction(1, 2)) * WIDTH, TAYLOR_TERMS[name]))


def erf(m: Ops, x):
    b, fmt = m.b, m.fmt
    ax = m.abs(x)
    # x * (1 + (a_0 - 1) + a_1 x^2 + ...): x's own term exact, a_0 = 2/sqrt(pi) rounds in the rest
    odd = erf_odd_series(SERIES_TERMS[fmt.name])
    series = m.fma(ax, m.horner(b.fmul(ax, ax), odd[:-1] + [odd[-1] - 1]), ax)
    intervals, terms = _intervals(fmt.name), TAYLOR_TERMS[fmt.name]
    position = b.fmul(b.fsub(m.clamp(ax, SERIES_LIMIT, CUTOFF[fmt.name]), m.c(SERIES_LIMIT)), m.c(1 / WIDTH))
    index = b.fptosi(m.call("floor", position), I32)
    index = b.select(b.icmp_signed(">=", index, ir.Constant(I32, intervals)), ir.Constant(I32, intervals - 1), index)
    centre = b.fadd(m.c(SERIES_LIMIT + float(WIDTH) / 2), b.fmul(b.sitofp(index, fmt.ty), m.c(float(WIDTH))))
    table = m.table(f"__kdsl_libm_erf_{fmt.name}", [float(fmt.numpy(c)) for c in erf_table(fmt.name)], fmt.ty)
    first = b.mul(index, ir.Constant(I32, terms))
    coeffs = [m.load(table, b.add(first, ir.Constant(I32, j))) for j in range(terms)]
    taylor = m.horner_values(b.fsub(ax, centre), coeffs)
    y = b.select(b.fcmp_ordered("<", ax, m.c(SERIES_LIMIT)), series, taylor)
    y = b.select(b.fcmp_unordered(">=", ax, m.c(CUTOFF[fmt.name])), m.c(1.0), y)
    y = m.copysign(y, x)
    return b.select(m.is_nan(x), x, y)
