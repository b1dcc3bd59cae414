"""The simulator's fused multiply-add rounds once: checked against exact rationals."""
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.sim.fma import fma_odd_f64, fma_rn_f64


def correctly_rounded_f32(a, b, c):
    """Round the exact value to f32 without double rounding: compare the two f32 neighbours."""
    value = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    guess = np.float32(float(value))
    with np.errstate(over="ignore"):
        neighbours = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    candidates = [x for x in neighbours if np.isfinite(x)]  # next to the largest f32 lies infinity
    return min(candidates, key=lambda x: (abs(Fraction(float(x)) - value), int(x.view(np.uint32)) & 1))


def test_f64_cases_that_defeat_an_unfused_formula():
    a = np.array([1 + 2.0**-52, 1 + 2.0**-30, 0.1, 1e308, 2.0**-600, 3.0, -0.0, 0.0, 1.5], np.float64)
    b = np.array([1 - 2.0**-52, 1 - 2.0**-30, 10.0, 10.0, 2.0**-600, 1 / 3, 5.0, -5.0, np.inf], np.float64)
    c = np.array([-1.0, -1.0, -1.0, -1e309 / 10, 0.0, -1.0, 0.0, 0.0, 1.0], np.float64)
    got = fma_rn_f64(a, b, c)
    assert got[0] == -(2.0**-104) and got[1] == -(2.0**-60)
    assert got[2] == float(Fraction(0.1) * 10 - 1)
    assert got[4] == 2.0**-1200 if 2.0**-1200 else got[4] == 0.0
    assert np.signbit(got[6]) == np.signbit(-0.0 * 5.0 + 0.0) and np.signbit(got[7]) == np.signbit(0.0 * -5.0 + 0.0)
    assert got[8] == np.inf


finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None)
@given(a=finite64, b=finite64, c=finite64)
def test_f64_matches_exact_rationals(a, b, c):
    got = fma_rn_f64(np.array([a]), np.array([b]), np.array([c]))[0]
    value = Fraction(a) * Fraction(b) + Fraction(c)
    try:
        expected = float(value)
    except OverflowError:
        expected = np.inf if value > 0 else -np.inf
    assert got == expected or (value == 0 and got == 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=3, max_size=3))
def test_f32_rounds_once_through_round_to_odd(values):
    a, b, c = (np.float32(v) for v in values)
    got = fma_odd_f64(np.array([a], np.float32), np.array([b], np.float32), np.array([c], np.float32))[0]
    with np.errstate(over="ignore"):
        got32 = np.float32(got)
    value = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if abs(value) < Fraction(float(np.finfo(np.float32).max)):
        assert got32 == correctly_rounded_f32(a, b, c) or (value == 0 and got32 == 0)


def test_f32_double_rounding_case():
    # a*b + c = 1 + 2**-11 + 2**-24 + 2**-80: just above the midpoint between two f32 values;
    # rounding to f64 first drops 2**-80, lands on the midpoint, and ties-to-even goes down
    a = b = np.float32(1 + 2.0**-12)
    c = np.float32(2.0**-80)
    unfused = np.float32(np.float64(a) * np.float64(b) + np.float64(c))
    got = np.float32(fma_odd_f64(np.array([a]), np.array([b]), np.array([c]))[0])
    assert got == correctly_rounded_f32(a, b, c) == np.float32(1 + 2.0**-11 + 2.0**-23) != unfused
