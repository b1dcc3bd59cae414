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


GROUPS = {"arith": ("add", "max", "min"), "bits": ("and", "or", "xor"), "xchg": ("xchg", "xchg", "xchg")}


@kdsl.kernel
def rmw_kernel(d0_ptr, d1_ptr, d2_ptr, idx_ptr, val_ptr, keep_ptr, o0_ptr, o1_ptr, o2_ptr, n,
               GROUP: kl.constexpr, SEM: kl.constexpr, SCOPE: kl.constexpr, BLOCK: kl.constexpr):
    """The three kinds of GROUP, each on its own destination array, with the same lanes and values."""
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    inside = offs < n
    idx = kl.load(idx_ptr + offs, mask=inside, other=0)
    val = kl.load(val_ptr + offs, mask=inside)
    m = inside & kl.load(keep_ptr + offs, mask=inside, other=False)
    if GROUP == "arith":
        o0 = kl.atomic_add(d0_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o1 = kl.atomic_max(d1_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o2 = kl.atomic_min(d2_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
    elif GROUP == "bits":
        o0 = kl.atomic_and(d0_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o1 = kl.atomic_or(d1_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o2 = kl.atomic_xor(d2_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
    else:
        o0 = kl.atomic_xchg(d0_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o1 = kl.atomic_xchg(d1_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
        o2 = kl.atomic_xchg(d2_ptr + idx, val, mask=m, sem=SEM, scope=SCOPE)
    kl.store(o0_ptr + offs, o0, mask=m)
    kl.store(o1_ptr + offs, o1, mask=m)
    kl.store(o2_ptr + offs, o2, mask=m)


REFERENCE = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and,
             "or": np.bitwise_or, "xor": np.bitwise_xor, "xchg": lambda old, val: val}


def run_rmw(target, group, dst, idx, val, keep, sem=None, scope=None):
    """Runs GROUP's kinds on three copies of `dst`; returns the three final arrays and old values."""
    n, block = idx.size, 64
    dsts = [dst.copy() for _ in range(3)]
    olds = [poisoned(n, dst.dtype) for _ in range(3)]
    rmw_kernel[(kdsl.cdiv(n, block),)](*dsts, idx, val, keep, *olds, n, GROUP=group, SEM=sem, SCOPE=scope,
                                       BLOCK=block, target=target)
    return dsts, olds


def reference(kind, dst, idx, val, keep):
    """Final memory after the active lanes in order."""
    mem = dst.copy()
    with np.errstate(over="ignore"):
        for i in np.flatnonzero(keep):
            mem[idx[i]] = REFERENCE[kind](mem[idx[i]], val[i])
    return mem


def check_group(target, group, dst, idx, val, keep, sem=None, scope=None):
    """Memory matches the sequential reference; lanes alone at their address return what it held."""
    dsts, olds = run_rmw(target, group, dst, idx, val, keep, sem, scope)
    unique = keep & (np.bincount(idx[keep], minlength=dst.size)[idx] == 1)
    for kind, got, old in zip(GROUPS[group], dsts, olds):
        np.testing.assert_array_equal(got, reference(kind, dst, idx, val, keep), err_msg=kind)
        np.testing.assert_array_equal(old[unique], dst[idx[unique]], err_msg=kind)
    return dsts, olds


def values_for(rng, group, dtype, n):
    """Operands whose result does not depend on the order of the lanes: small integers for float add
    (sums of up to 200 stay exact in fp16); full-range bits for the bitwise kinds."""
    if np.dtype(dtype).kind == "f":
        return rng.integers(-8, 9, n).astype(dtype)
    return random_array(rng, n, dtype, full_range=group == "bits")


CASES = [("arith", dtype) for dtype in INTS + FLOATS] + [("bits", dtype) for dtype in (np.int32, np.uint64)]


@pytest.mark.parametrize("group, dtype", CASES)
@SETTINGS
@given(n=st.integers(1, 200), slots=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_rmw_matches_sequential_reference(target, group, dtype, n, slots, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, slots, n).astype(np.int32)
    keep = rng.random(n) < 0.8
    check_group(target, group, values_for(rng, group, dtype, slots), idx, values_for(rng, group, dtype, n), keep)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_histogram_with_many_collisions(target, dtype):
    x = np.random.default_rng(1).integers(0, 1000, 3000)
    idx = (x % 16).astype(np.int32)
    (hist, _, _), (old, _, _) = run_rmw(target, "arith", np.zeros(16, dtype), idx, np.ones(3000, dtype),
                                        np.ones(3000, np.bool_))
    np.testing.assert_array_equal(hist, np.bincount(idx, minlength=16).astype(dtype))
    for b in range(16):  # the lanes of one bin saw 0, 1, 2, ... in some order
        np.testing.assert_array_equal(np.sort(old[idx == b]), np.arange((idx == b).sum()).astype(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_max_min_order_negative_values_and_signed_zeros(target, dtype):
    dst = np.array([-5.0, -5.0, 3.0, 3.0, -0.0, 0.0, -np.inf, np.inf], dtype)
    val = np.array([-7.0, -2.0, -1.0, 8.0, 0.0, -0.0, -1.0, 1.0], dtype)
    (_, high, low), (_, old, _) = run_rmw(target, "arith", dst, np.arange(8, dtype=np.int32), val,
                                          np.ones(8, np.bool_))
    np.testing.assert_array_equal(old, dst)
    np.testing.assert_array_equal(high, np.array([-5.0, -2.0, 3.0, 8.0, 0.0, 0.0, -1.0, np.inf], dtype))
    np.testing.assert_array_equal(low, np.array([-7.0, -5.0, -1.0, 3.0, -0.0, -0.0, -np.inf, 1.0], dtype))
    assert np.signbit(high[4:6]).tolist() == [False, False] and np.signbit(low[4:6]).tolist() == [True, True]


SEMS = [None, "relaxed", "acquire", "release", "acq_rel", "relaxed", "acq_rel"]


@pytest.mark.parametrize("dtype, sem", list(zip(INTS + FLOATS, SEMS)))
def test_xchg_returns_old_values_and_masked_lanes_touch_nothing(target, dtype, sem):
    rng = np.random.default_rng(4)
    idx = rng.permutation(100).astype(np.int32)
    keep = rng.random(100) < 0.5
    check_group(target, "xchg", random_array(rng, 100, dtype), idx, random_array(rng, 100, dtype), keep,
                sem=sem, scope="gpu" if sem else None)


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
def add_at(dst_ptr, idx_ptr, val_ptr, keep_ptr, old_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    inside = offs < n
    m = inside & kl.load(keep_ptr + offs, mask=inside, other=False)
    idx = kl.load(idx_ptr + offs, mask=inside, other=0)
    old = kl.atomic_add(dst_ptr + idx, kl.load(val_ptr + offs, mask=inside), mask=m)
    kl.store(old_ptr + offs, old, mask=m)


BF16 = "bfloat16"


@pytest.mark.parametrize("dtype", [np.float16, BF16])
@SETTINGS
@given(n=st.integers(1, 100), slots=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_half_precision_add_with_masks(target, dtype, n, slots, seed):
    """Small integers keep every partial sum exact in fp16 and bf16, so any order gives the reference."""
    dtype = np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == BF16 else np.dtype(dtype)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, slots, n).astype(np.int32)
    keep = rng.random(n) < 0.7
    dst, val = rng.integers(-8, 9, slots).astype(dtype), rng.integers(-2, 3, n).astype(dtype)
    got, old = dst.copy(), np.full(n, np.nan, np.float32).astype(dtype)
    add_at[(kdsl.cdiv(n, 32),)](got, idx, val, keep, old, n, BLOCK=32, target=target)
    expected = dst.astype(np.float64)
    np.add.at(expected, idx[keep], val[keep].astype(np.float64))
    np.testing.assert_array_equal(got.astype(np.float64), expected)
    unique = keep & (np.bincount(idx[keep], minlength=slots)[idx] == 1)
    np.testing.assert_array_equal(old[unique].astype(np.float64), dst[idx[unique]].astype(np.float64))
    assert np.isnan(old[~keep].astype(np.float32)).all()  # masked-off lanes store nothing


@pytest.mark.parametrize("dtype", [np.int32, np.uint64, np.float16, BF16, np.float32, np.float64])
def test_many_programs_on_the_same_addresses(target, dtype):
    """4096 lanes in 64 programs add 1 to 16 addresses: 256 each, exact in every type (bf16 included);
    the old values each address handed out are 0..255, each once."""
    dtype = np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == BF16 else np.dtype(dtype)
    n = 4096
    idx = (np.random.default_rng(9).permutation(n) % 16).astype(np.int32)
    dst, old = np.zeros(16, dtype), np.zeros(n, dtype)
    add_at[(64,)](dst, idx, np.ones(n, dtype), np.ones(n, np.bool_), old, n, BLOCK=64, target=target)
    np.testing.assert_array_equal(dst.astype(np.float64), np.full(16, 256.0))
    for slot in range(16):
        np.testing.assert_array_equal(np.sort(old[idx == slot].astype(np.float64)), np.arange(256.0))


@kdsl.kernel
def cas_kernel(p_ptr, cmp_ptr, val_ptr, old_ptr, N: kl.constexpr):
    offs = kl.arange(0, N)
    old = kl.atomic_cas(p_ptr + offs, kl.load(cmp_ptr + offs), kl.load(val_ptr + offs))
    kl.store(old_ptr + offs, old)


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float32, np.float64, np.int16, np.uint16])
def test_cas_compares_bit_patterns(target, dtype):
    """As Triton: -0.0 does not match 0.0, a NaN matches the same NaN, equal values swap."""
    dtype = np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == BF16 else np.dtype(dtype)
    if dtype.kind in "iu":
        mem, cmp = np.array([0, 5, 7, 9], dtype), np.array([0, 6, 7, 1], dtype)
        swaps = [True, False, True, False]
    else:
        mem, cmp = np.array([-0.0, 0.0, np.nan, 2.5], dtype), np.array([0.0, 0.0, np.nan, 2.5], dtype)
        swaps = [False, True, True, True]
    val = np.array([3, 4, 5, 6], dtype)
    p, old = mem.copy(), np.zeros(4, dtype)
    cas_kernel[(1,)](p, cmp, val, old, N=4, target=target)
    np.testing.assert_array_equal(old.view(f"u{dtype.itemsize}"), mem.view(f"u{dtype.itemsize}"))
    np.testing.assert_array_equal(p.view(f"u{dtype.itemsize}"),
                                  np.where(swaps, val, mem).astype(dtype).view(f"u{dtype.itemsize}"))


@kdsl.kernel
def bad_atomic(f_ptr, i_ptr, h_ptr, CASE: kl.constexpr):
    offs = kl.arange(0, 4)
    if CASE == "and_float":
        kl.atomic_and(f_ptr + offs, 1.0)
    elif CASE == "narrow":
        kl.atomic_add(h_ptr + offs, 1)
    elif CASE == "cas_narrow":
        kl.atomic_cas(h_ptr, 0, 1)

    elif CASE == "not_pointer":
        kl.atomic_max(offs, 1)
    elif CASE == "sem":
        kl.atomic_add(i_ptr, 1, sem="seq_cst")
    else:
        kl.atomic_xchg(i_ptr, 1, scope="device")


@pytest.mark.parametrize("case, message", [
    ("and_float", "kl.atomic_and supports i32, i64, u32, u64, not pointers to f32"),
    ("narrow", "kl.atomic_add supports i32, i64, u32, u64, f16, f32, f64, bf16, not pointers to i8"),
    ("cas_narrow", "kl.atomic_cas supports i32, i64, u32, u64, i16, u16, f16, bf16, f32, f64, not pointers to i8"),
    ("not_pointer", "kl.atomic_max needs a pointer or a block of pointers, got block<4xi32>"),
    ("sem", "kl.atomic_add's sem must be one of 'acquire', 'release', 'acq_rel', 'relaxed' or None, got 'seq_cst'"),
    ("scope", "kl.atomic_xchg's scope must be one of 'gpu', 'cta', 'sys' or None, got 'device'"),
])
def test_atomic_errors_name_the_problem(target, case, message):
    f, i, h = np.zeros(4, np.float32), np.zeros(4, np.int32), np.zeros(4, np.int8)
    with pytest.raises(kdsl.CompilationError, match=re.escape(message)):
        bad_atomic[(1,)](f, i, h, CASE=case, target=target)
