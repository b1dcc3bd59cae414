"""Constants of the portable math functions, computed exactly (once, on first use): pi to 1,300
bits by Machin's formula in integers, ln 2 by its atanh series, the bits of 2/pi for Payne-Hanek
reduction, the Taylor coefficients of erf around the centres of its intervals (exact Hermite
polynomials in fractions)."""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

PI_BITS = 1300  # enough 2/pi for f64's largest exponent (1023) + 256 window bits + one padding word
TABLE_WORDS = 20


def _arctan_inverse(n: int, scale: int) -> int:
    """floor(atan(1/n) * scale) within a few units (the alternating Taylor series in integers)."""
    total, power, k, sign = 0, scale // n, 1, 1
    while power:
        total += sign * (power // k)
        power //= n * n
        k += 2
        sign = -sign
    return total


@lru_cache(maxsize=None)
def pi_scaled(bits: int = PI_BITS) -> Fraction:
    """pi to `bits` bits (Machin: pi = 16 atan(1/5) - 4 atan(1/239)), 64 guard bits dropped."""
    scale = 1 << (bits + 64)
    pi = 16 * _arctan_inverse(5, scale) - 4 * _arctan_inverse(239, scale)
    return Fraction(pi >> 64, 1 << bits)


@lru_cache(maxsize=None)
def two_over_pi_words() -> tuple[int, ...]:
    """2/pi's fraction bits as 64-bit words, most significant first, after one zero word: the
    padding that lets Payne-Hanek read a window at bit offset E - 1 for every exponent E >= 1."""
    bits = TABLE_WORDS * 64 - 64
    fraction = (Fraction(2) / pi_scaled()) * (1 << bits)
    value = fraction.numerator // fraction.denominator
    return (0,) + tuple((value >> (64 * (TABLE_WORDS - 2 - i))) & (2**64 - 1) for i in range(TABLE_WORDS - 1))


@lru_cache(maxsize=None)
def ln2_scaled(bits: int = 256) -> Fraction:
    """ln 2 to `bits` bits: 2 atanh(1/3) = sum 2 / ((2k + 1) 3^(2k + 1)) in integers."""
    scale = 1 << (bits + 64)
    total, power, k = 0, scale // 3, 1
    while power:
        total += power // k
        power //= 9
        k += 2
    return Fraction((2 * total) >> 64, 1 << bits)


def split(value: Fraction, rounder, parts: int) -> list[float]:
    """`value` as the sum of `parts` floats, each the rounding (`rounder`) of what the others leave."""
    out = []
    for _ in range(parts):
        piece = float(rounder(float(value)))
        out.append(piece)
        value -= Fraction(piece)
    return out


def split_short(value: Fraction, rounder, bits: int) -> tuple[float, float]:
    """(hi, lo): hi is `value` rounded to `bits` significant bits, so that n * hi is exact in a
    format of p-bit precision for integers |n| < 2**(p - bits); lo the rest, rounded by `rounder`."""
    mantissa, exponent = math.frexp(float(value))
    hi = math.ldexp(round(mantissa * 2**bits), exponent - bits)
    return hi, float(rounder(float(value - Fraction(hi))))


def half_pi() -> Fraction:
    return pi_scaled() / 2


def erf_odd_series(terms: int) -> list[float]:
    """erf(x) = x * sum_n a_n x^(2n): a_n = 2/sqrt(pi) (-1)^n / (n! (2n + 1)), highest first."""
    scale = 2 / math.sqrt(math.pi)
    return [scale * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in reversed(range(terms))]


def erf_taylor(centre: Fraction, terms: int) -> list[float]:
    """The Taylor coefficients of erf around `centre`, highest first: c_0 = erf(a), and
    c_n = 2/sqrt(pi) e^(-a^2) (-1)^(n-1) H_(n-1)(a) / n! with H the physicists' Hermite polynomials."""
    a = centre
    hermite = [Fraction(1), 2 * a]
    while len(hermite) < terms:
        n = len(hermite) - 1
        hermite.append(2 * a * hermite[n] - 2 * n * hermite[n - 1])
    weight = 2 / math.sqrt(math.pi) * math.exp(-float(a * a))
    coeffs = [math.erf(float(a))]
    coeffs += [float(weight * float((-1) ** (n - 1) * hermite[n - 1] / math.factorial(n))) for n in range(1, terms)]
    return coeffs[::-1]
