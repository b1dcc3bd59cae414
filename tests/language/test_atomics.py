"""Atomics (API.md "atomics"): every kind and dtype against a sequential numpy reference, histograms with
many collisions, masks, returned old values, scalar pointers, "first writer wins" with atomic_cas,
sem/scope, the errors, and that DCE and CSE keep atomics whose results are unused."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=3, deadline=None)
INTS = [np.int32, np.int64, np.uint32, np.uint64]
FLOATS = [np.float16, np.float32, np.float64]


@kdsl.kernel
def rmw_kernel(dst_ptr, idx_ptr, val_ptr, keep_ptr, old_ptr, n, KIND: kl.constexpr, SEM: kl.constexpr,
               SCOPE: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    inside = offs < n
    ptrs = dst_ptr + kl.load(idx_ptr + offs, mask=inside, other=0)
    val = kl.load(val_ptr + offs, mask=inside)
    m = inside & kl.load(keep_ptr + offs, mask=inside, other=False)
    if KIND == "add":
        old = kl.atomic_add(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    elif KIND == "max":
        old = kl.atomic_max(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    elif KIND == "min":
        old = kl.atomic_min(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    elif KIND == "and":
        old = kl.atomic_and(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    elif KIND == "or":
        old = kl.atomic_or(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    elif KIND == "xor":
        old = kl.atomic_xor(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    else:
        old = kl.atomic_xchg(ptrs, val, mask=m, sem=SEM, scope=SCOPE)
    kl.store(old_ptr + offs, old, mask=m)


REFERENCE = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and,
             "or": np.bitwise_or, "xor": np.bitwise_xor, "xchg": lambda old, val: val}


def run_rmw(target, kind, dst, idx, val, keep, sem=None, scope=None, block=64):
    n = idx.size
    old = poisoned(n, dst.dtype)
    rmw_kernel[(kdsl.cdiv(n, block),)](dst, idx, val, keep, old, n, KIND=kind, SEM=sem, SCOPE=scope, BLOCK=block,
                                       target=target)
    return old


def reference(kind, dst, idx, val, keep):
    """Final memory after the active lanes in order; old values of lanes whose address is theirs alone."""
    mem = dst.copy()
    with np.errstate(over="ignore"):
        for i in np.flatnonzero(keep):
            mem[idx[i]] = REFERENCE[kind](mem[idx[i]], val[i])
    active = idx[keep]
    unique = keep & (np.bincount(active, minlength=dst.size)[idx] == 1)
    return mem, unique


def values_for(rng, kind, dtype, n):
    """Operands whose result does not depend on the order of the lanes: small integers for float add."""
    if np.dtype(dtype).kind == "f":
        if kind == "add":
            return rng.integers(-4, 5, n).astype(dtype)
        return (rng.standard_normal(n) * 100).astype(dtype)
    if kind in ("and", "or", "xor"):
        return random_array(rng, n, dtype, full_range=True)
    return random_array(rng, n, dtype)


CASES = [(kind, dtype) for kind in ("add", "max", "min") for dtype in INTS + FLOATS] + \
        [(kind, dtype) for kind in ("and", "or", "xor") for dtype in (np.int32, np.uint64)]


@pytest.mark.parametrize("kind, dtype", CASES)
@SETTINGS
@given(n=st.integers(1, 200), slots=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_rmw_matches_sequential_reference(target, kind, dtype, n, slots, seed):
    rng = np.random.default_rng(seed)
    dst = values_for(rng, kind, dtype, slots)
    idx = rng.integers(0, slots, n).astype(np.int32)
    val = values_for(rng, kind, dtype, n)
    keep = rng.random(n) < 0.8
    before = dst.copy()
    expected, unique = reference(kind, dst, idx, val, keep)
    old = run_rmw(target, kind, dst, idx, val, keep)
    np.testing.assert_array_equal(dst, expected)
    np.testing.assert_array_equal(old[unique], before[idx[unique]])


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_histogram_with_many_collisions(target, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1000, 3000)
    hist = np.zeros(16, dtype)
    idx = (x % 16).astype(np.int32)
    old = run_rmw(target, "add", hist, idx, np.ones(3000, dtype), np.ones(3000, np.bool_), block=256)
    np.testing.assert_array_equal(hist, np.bincount(idx, minlength=16).astype(dtype))
    for b in range(16):  # the lanes of one bin saw 0, 1, 2, ... in some order
        np.testing.assert_array_equal(np.sort(old[idx == b]), np.arange((idx == b).sum()).astype(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_max_min_order_negative_values_and_signed_zeros(target, dtype):
    dst = np.array([-5.0, -5.0, 3.0, 3.0, -0.0, 0.0, -np.inf, np.inf], dtype)
    val = np.array([-7.0, -2.0, -1.0, 8.0, 0.0, -0.0, -1.0, 1.0], dtype)
    idx = np.arange(8, dtype=np.int32)
    keep = np.ones(8, np.bool_)
    high, low = dst.copy(), dst.copy()
    old = run_rmw(target, "max", high, idx, val, keep)
    run_rmw(target, "min", low, idx, val, keep)
    np.testing.assert_array_equal(old, dst)
    np.testing.assert_array_equal(high, np.array([-5.0, -2.0, 3.0, 8.0, 0.0, 0.0, -1.0, np.inf], dtype))
    np.testing.assert_array_equal(low, np.array([-7.0, -5.0, -1.0, 3.0, -0.0, -0.0, -np.inf, 1.0], dtype))
    assert np.signbit(high[4:6]).tolist() == [False, False] and np.signbit(low[4:6]).tolist() == [True, True]


SEMS = [None, "relaxed", "acquire", "release", "acq_rel", "relaxed", "acq_rel"]


@pytest.mark.parametrize("dtype, sem", zip(INTS + FLOATS, SEMS))
def test_xchg_returns_old_values_and_masked_lanes_touch_nothing(target, dtype, sem):
    rng = np.random.default_rng(4)
    dst = random_array(rng, 100, dtype)
    before = dst.copy()
    idx = rng.permutation(100).astype(np.int32)
    val = random_array(rng, 100, dtype)
    keep = rng.random(100) < 0.5
    old = run_rmw(target, "xchg", dst, idx, val, keep, sem=sem, scope="gpu" if sem else None)
    expected = before.copy()
    expected[idx[keep]] = val[keep]
    np.testing.assert_array_equal(dst, expected)
    np.testing.assert_array_equal(old[keep], before[idx[keep]])


@kdsl.kernel
def first_writer_wins(flag_ptr, winner_ptr, n, SLOTS: kl.constexpr, BLOCK: kl.constexpr):
    lane = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    slot = lane % SLOTS
    mine = kl.where(lane < n, lane + 1, 0)
    old = kl.atomic_cas(flag_ptr + slot, 0, mine)
    kl.store(winner_ptr + lane, (old == 0) & (lane < n))


@pytest.mark.parametrize("dtype", INTS)
def test_cas_first_writer_wins(target, dtype):
    n, slots = 300, 7
    flags = np.zeros(slots, dtype)
    winners = np.zeros(320, np.bool_)
    first_writer_wins[(5,)](flags, winners, n, SLOTS=slots, BLOCK=64, target=target)
    lanes = np.flatnonzero(winners)
    assert sorted(lanes % slots) == list(range(slots))  # one winner per slot
    np.testing.assert_array_equal(flags[lanes % slots], lanes + 1)  # and its id is the one stored


@kdsl.kernel
def tickets(counter_ptr, out_ptr, total_ptr):
    ticket = kl.atomic_add(counter_ptr, 1)
    kl.store(out_ptr + kl.program_id(0), ticket)
    kl.atomic_add(total_ptr, 0.5, sem="relaxed", scope="sys")


def test_scalar_pointer_atomics_hand_out_tickets(target):
    counter, out, total = np.zeros(1, np.int64), poisoned(37, np.int64), np.zeros(1, np.float64)
    tickets[(37,)](counter, out, total, target=target)
    assert counter[0] == 37 and total[0] == 18.5
    np.testing.assert_array_equal(np.sort(out), np.arange(37))


@kdsl.kernel
def unused_atomics(p_ptr):
    kl.atomic_add(p_ptr, 1)
    kl.atomic_add(p_ptr, 1)
    kl.atomic_cas(p_ptr + 1, 0, 5)
    kl.atomic_cas(p_ptr + 1, 0, 5)


def test_dce_and_cse_keep_atomics_whose_results_are_unused(target):
    p = np.zeros(2, np.int32)
    unused_atomics[(3,)](p, target=target)
    assert p.tolist() == [6, 5]
    ir = unused_atomics.compile(p).asm["ir"]
    assert ir.count("atomic_rmw") == 2 and ir.count("atomic_cas") == 2


@kdsl.kernel
def bad_atomic(f_ptr, i_ptr, h_ptr, CASE: kl.constexpr):
    offs = kl.arange(0, 4)
    if CASE == "and_float":
        kl.atomic_and(f_ptr + offs, 1.0)
    elif CASE == "narrow":
        kl.atomic_add(h_ptr + offs, 1)
    elif CASE == "cas_float":
        kl.atomic_cas(f_ptr, 0.0, 1.0)
    elif CASE == "not_pointer":
        kl.atomic_max(offs, 1)
    elif CASE == "sem":
        kl.atomic_add(i_ptr, 1, sem="seq_cst")
    else:
        kl.atomic_xchg(i_ptr, 1, scope="device")


@pytest.mark.parametrize("case, message", [
    ("and_float", "kl.atomic_and supports i32, i64, u32, u64, not pointers to f32"),
    ("narrow", "kl.atomic_add supports i32, i64, u32, u64, f16, f32, f64, not pointers to i16"),
    ("cas_float", "kl.atomic_cas supports i32, i64, u32, u64, not pointers to f32"),
    ("not_pointer", "kl.atomic_max needs a pointer or a block of pointers, got block<4xi32>"),
    ("sem", "kl.atomic_add's sem must be one of 'acquire', 'release', 'acq_rel', 'relaxed' or None, got 'seq_cst'"),
    ("scope", "kl.atomic_xchg's scope must be one of 'gpu', 'cta', 'sys' or None, got 'device'"),
])
def test_atomic_errors_name_the_problem(target, case, message):
    f, i, h = np.zeros(4, np.float32), np.zeros(4, np.int32), np.zeros(4, np.int16)
    with pytest.raises(kdsl.CompilationError, match=re.escape(message)):
        bad_atomic[(1,)](f, i, h, CASE=case, target=target)
