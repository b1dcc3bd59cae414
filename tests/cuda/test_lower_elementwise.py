"""GPU lowering of the integer and remainder operators on the PTX simulator, against the conformance
suite's exact references: shifts by every amount (and by amounts whose low 32 bits are small),
division and remainder at MIN, -1 and 0, and float remainders with huge quotients, subnormals and
the special values, bit for bit."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned
from tests.language.test_operators import BLOCK, binary_block, reference

SHIFT_TYPES = [np.int8, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
DIVISION_TYPES = [np.int8, np.int32, np.uint32, np.int64, np.uint64]


def run_binary(op, x, y, out_dtype=None):
    out = poisoned(x.size, out_dtype or x.dtype)
    run_sim(binary_block, (math.ceil(x.size / BLOCK),), x, y, out, x.size, OP=op, BLOCK=BLOCK)
    return out


def edge_integers(dtype):
    info = np.iinfo(dtype)
    return np.array(sorted({info.min, info.min + 1, -1 if info.min else 2, 0, 1, info.max - 1, info.max, 7}),
                    dtype=dtype)


def shift_amounts(dtype):
    """0 .. width + 1, then amounts past the width whose low 32 (or 8, 16) bits are small."""
    info = np.iinfo(dtype)
    wide = [a for a in (2**32, 2**32 + 1, 2**63 + 1, 2**16 + 3, 2**8 + 1) if a < 2**info.bits]
    return np.array([np.array(a, np.uint64).astype(dtype) for a in [*range(info.bits + 2), *wide]], dtype)


@pytest.mark.parametrize("op", ["shl", "shr"])
@pytest.mark.parametrize("dtype", SHIFT_TYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_shifts_by_every_amount(op, dtype, seed):
    rng = np.random.default_rng(seed)
    amounts = shift_amounts(dtype)
    info = np.iinfo(dtype)
    values = np.concatenate([edge_integers(dtype), rng.integers(info.min, info.max, 8, dtype=dtype, endpoint=True)])
    x, y = np.repeat(values, amounts.size), np.tile(amounts, values.size)
    np.testing.assert_array_equal(run_binary(op, x, y), reference(op, x, y))


@pytest.mark.parametrize("op", ["floordiv", "mod"])
@pytest.mark.parametrize("dtype", DIVISION_TYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_division_at_min_minus_one_and_zero(op, dtype, seed):
    """Every pair of edge values (MIN / -1, x / 0, x / MIN, MIN % x, ...) and random pairs."""
    info = np.iinfo(dtype)
    edges = edge_integers(dtype)
    random = np.random.default_rng(seed).integers(info.min, info.max, (2, 64), dtype=dtype, endpoint=True)
    x = np.concatenate([np.repeat(edges, edges.size), random[0]])
    y = np.concatenate([np.tile(edges, edges.size), random[1]])
    np.testing.assert_array_equal(run_binary(op, x, y), reference(op, x, y))


def float_operands(rng, dtype, n):
    """Random bit patterns over every exponent (subnormals, huge quotients), with the special values."""
    bits = np.dtype(dtype).itemsize * 8
    u = np.dtype(f"u{bits // 8}")
    values = rng.integers(0, 2**bits, n, dtype=np.uint64).astype(u).view(dtype)
    info = np.finfo(dtype)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.smallest_subnormal,
                         -info.smallest_subnormal, info.tiny, 1.0, -3.0], dtype)
    where = rng.random(n) < 0.15
    values[where] = rng.choice(specials, int(where.sum()))
    return values


def assert_same_bits(got, want):
    """Equal bit patterns (so -0.0 differs from 0.0), any NaN matching any NaN."""
    u = np.dtype(f"u{got.dtype.itemsize}")
    both_nan = np.isnan(got) & np.isnan(want)
    bad = np.flatnonzero(~both_nan & (got.view(u) != want.view(u)))
    assert bad.size == 0, [f"at {i}: got {got[i]!r}, want {want[i]!r}" for i in bad[:8]]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_float_remainder_is_fmod_exactly(dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = float_operands(rng, dtype, 128), float_operands(rng, dtype, 128)
    y[:16] = rng.uniform(0.5, 8, 16).astype(dtype)  # quotients far beyond 2**24 / 2**53 in the huge x
    x[:16] = np.finfo(dtype).max / rng.uniform(1, 1e3, 16).astype(dtype)
    with np.errstate(all="ignore"):
        want = np.fmod(x, y)
    assert_same_bits(run_binary("mod", x, y), want)


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("op, dtype", [("shl", np.int64), ("shr", np.int8), ("floordiv", np.int64),
                                       ("mod", np.uint32), ("mod", np.float32), ("mod", np.float64),
                                       ("mod", np.float16)])
def test_integer_and_remainder_kernels_assemble_for_sm80_and_sm90(op, dtype):
    x = np.ones(8, dtype)
    assemble_all_arches(binary_block, (x, x, x.copy(), 8), {"OP": op, "BLOCK": BLOCK})
