"""The portable math functions (kdsl/backend/cuda/libm) on the simulator: the largest error in ulps
over random inputs across each function's range, against a more precise reference (numpy float64
for f32; np.longdouble, or math.erf within its own ulp, for f64), special values exactly, and the
PTX assembled for sm_80 and sm_90."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned
from tests.language.test_math import unary_math

N, BLOCK = 2048, 1024


def _erf(x):
    return np.array([math.erf(v) for v in x.astype(np.float64)], np.float64)


# references, in longdouble where numpy has them (erf: math.erf, the C library's double erf, within about 1 ulp)
REFERENCE = {"exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sin": np.sin, "cos": np.cos,
             "erf": _erf}
# the bound asserted, in ulps: the measured error (lower_math's docstring) plus a margin;
# erf on f64 adds the reference's own ulp; exp2 on f32 is `ex2.approx.f32` (2 ulp in the PTX ISA)
MAX_ULP = {("exp", "float32"): 1, ("exp2", "float32"): 2, ("log", "float32"): 1, ("log2", "float32"): 1,
           ("sin", "float32"): 1, ("cos", "float32"): 1, ("erf", "float32"): 1.5,
           ("exp", "float64"): 1, ("exp2", "float64"): 1, ("log", "float64"): 1, ("log2", "float64"): 1,
           ("sin", "float64"): 1, ("cos", "float64"): 1, ("erf", "float64"): 2}


def _inputs(rng, fn: str, dtype) -> np.ndarray:
    """Random values over the function's whole interesting range, and its special values."""
    info = np.finfo(dtype)
    lo_exp, hi_exp = math.log(float(info.smallest_subnormal)), math.log(float(info.max))
    if fn in ("exp", "exp2"):
        scale = 1 if fn == "exp" else 1 / math.log(2)
        wide = rng.uniform(lo_exp - 2, hi_exp + 2, N // 2) * scale
        picked = np.concatenate([wide, rng.standard_normal(N // 2) * 3])
        special = [lo_exp * scale, hi_exp * scale, math.log(float(info.tiny)) * scale, -1e-30]
    elif fn in ("log", "log2"):
        picked = np.concatenate([np.exp(rng.uniform(lo_exp, hi_exp, N // 2)), rng.uniform(0.5, 2, N // 2)])
        special = [float(info.smallest_subnormal), float(info.tiny), 1.0, -1.0, float(info.max)]
    elif fn in ("sin", "cos"):
        magnitude = np.exp(rng.uniform(0, hi_exp, N // 4))
        picked = np.concatenate([rng.standard_normal(N // 2) * 3, rng.uniform(-1e5, 1e5, N // 4),
                                 magnitude * rng.choice([-1, 1], N // 4)])
        special = [math.pi, -math.pi / 2, float(info.max), -float(info.max), 2.0**15, 2.0**25, 1e-30]
    else:
        picked = np.concatenate([rng.uniform(-7, 7, N // 2), rng.standard_normal(N // 2)])
        special = [0.5, -0.5, 4.0, 6.0, 1e-30, float(info.smallest_subnormal)]
    special += [0.0, -0.0, np.inf, -np.inf, np.nan]
    x = picked.astype(dtype)
    x[:len(special)] = np.array(special, np.float64).astype(dtype)
    return x


def ulp_errors(out: np.ndarray, reference: np.ndarray, dtype) -> np.ndarray:
    """|out - reference| in ulps of the reference rounded to `dtype`, where both are finite."""
    with np.errstate(over="ignore"):  # beyond the format's range is infinity
        rounded = reference.astype(dtype)
    finite = np.isfinite(rounded) & np.isfinite(out)
    ulp = np.spacing(np.abs(np.where(finite, rounded, 1))).astype(np.longdouble)
    diff = np.abs(np.where(finite, out, 0).astype(np.longdouble) - np.where(finite, reference, 0))
    return (diff / ulp).astype(np.float64)


CASES = [(fn, d) for fn in REFERENCE for d in ("float32", "float64")]


@pytest.mark.parametrize("fn, dtype", CASES, ids=[f"{f}-{d}" for f, d in CASES])
@settings(max_examples=1, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_ulp_error(fn, dtype, seed):
    x = _inputs(np.random.default_rng(seed), fn, np.dtype(dtype))
    out = poisoned(N, dtype)
    run_sim(unary_math, (N // BLOCK,), x, out, N, FN=fn, BLOCK=BLOCK)
    wide = np.longdouble if dtype == "float64" else np.float64
    with np.errstate(all="ignore"):
        reference = np.asarray(REFERENCE[fn](x.astype(wide)))
    errors = ulp_errors(out, reference, dtype)
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULP[fn, dtype], (x[worst], out[worst], reference[worst])
    with np.errstate(over="ignore"):
        expected = reference.astype(dtype)  # outside the finite results: inf, NaN and the zeros' signs
    exceptional = ~(np.isfinite(expected) & np.isfinite(out)) | (expected == 0)
    np.testing.assert_array_equal(out[exceptional], expected[exceptional])
    signed = exceptional & ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(out[signed]), np.signbit(expected[signed]))


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", list(REFERENCE))
def test_ptx_assembles(fn, dtype):
    x = np.ones(64, dtype)
    assemble_all_arches(unary_math, (x, x, 64), dict(FN=fn, BLOCK=64))
