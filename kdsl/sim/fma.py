"""A fused multiply-add on numpy arrays, rounded once as `fma.rn` is (numpy has none).

`fma_rn_f64(a, b, c)` is a*b+c correctly rounded to float64. Error-free transformations give
the exact value as s + u + v (Dekker's product, Knuth's two-sum); where v is 0 (nearly
always) RN(s + u) is the correctly rounded result. The other lanes (v != 0, or operands or
products beyond the range where the transformations are exact) are computed with Python's
exact rationals. Infinities and NaNs follow the plain formula, which gives IEEE's answer.

`fma_odd_f64(a, b, c)` is a*b+c rounded to odd in float64 for operands of at most 24
significant bits (f32, f16, bf16): the product is exact in float64 and rounding the sum to
odd (an inexact result gets an odd last bit) makes the caller's rounding to the narrow type
the correct rounding of the exact value, with no double-rounding error.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

_SPLIT = np.float64(2.0**27 + 1)
# Within these magnitudes the splitting cannot overflow and the product's error is exact.
_SAFE_MAX = 2.0**995
_SAFE_PRODUCT_MIN = 2.0**-968


def _two_sum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x + y
    z = s - x
    return s, (x - (s - z)) + (y - z)


def _two_product(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    def split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = _SPLIT * v
        high = t - (t - v)
        return high, v - high
    p = x * y
    xh, xl = split(x)
    yh, yl = split(y)
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


def _exact(a: float, b: float, c: float) -> float:
    value = Fraction(a) * Fraction(b) + Fraction(c)
    if value == 0:
        return float(np.float64(a) * np.float64(b) + np.float64(c))  # IEEE's sign of an exact zero
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def fma_rn_f64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    with np.errstate(all="ignore"):
        plain = a * b + c
        p, e = _two_product(a, b)
        s, t = _two_sum(p, c)
        u, v = _two_sum(t, e)
        fast = s + u
    finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    magnitude = np.abs(p)
    safe = (finite & (np.abs(a) < _SAFE_MAX) & (np.abs(b) < _SAFE_MAX) & (np.abs(c) < _SAFE_MAX)
            & ((magnitude > _SAFE_PRODUCT_MIN) | (p == 0)) & np.isfinite(fast))
    out = np.where(safe & (v == 0), fast, plain)
    for i in np.flatnonzero(finite & ~(safe & (v == 0))):
        out.flat[i] = _exact(a.flat[i], b.flat[i], c.flat[i])
    return out


def fma_odd_f64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        s, t = _two_sum(np.asarray(a, np.float64) * np.asarray(b, np.float64), np.asarray(c, np.float64))
        even = (s.view(np.uint64) & np.uint64(1)) == 0
        nudge = (t != 0) & even & np.isfinite(s)
        return np.where(nudge, np.nextafter(s, np.where(t > 0, np.inf, -np.inf)), s)
