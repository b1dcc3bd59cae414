"""GPU atomics on the PTX simulator, with the conformance suite's kernels and references; blocks
smaller than the CTA (lanes and warps holding copies) must still update each element once."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, lower_kernel, run_sim
from tests.helpers import poisoned
from tests.language.test_atomics import (GROUPS, add_at, first_writer_wins, reference, rmw_kernel, tickets,
                                         values_for)


def run_group(group, dst, idx, val, keep, block, num_warps=4):
    """GROUP's three kinds on copies of `dst`; the final arrays and the old values."""
    n = idx.size
    dsts = [dst.copy() for _ in range(3)]
    olds = [poisoned(n, dst.dtype) for _ in range(3)]
    run_sim(rmw_kernel, (kdsl.cdiv(n, block),), *dsts, idx, val, keep, *olds, n, GROUP=group, SEM=None,
            SCOPE=None, BLOCK=block, num_warps=num_warps)
    return dsts, olds


CASES = [("arith", np.int32), ("arith", np.uint64), ("arith", np.float32), ("arith", np.float16),
         ("bits", np.int32), ("xchg", np.float64)]


@pytest.mark.parametrize("group, dtype", CASES)
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 200), slots=st.integers(1, 40), block=st.sampled_from([16, 64, 256]),
       seed=st.integers(0, 2**32 - 1))
def test_rmw_matches_sequential_reference(group, dtype, n, slots, block, seed):
    rng = np.random.default_rng(seed)
    idx = (rng.permutation(n) if group == "xchg" else rng.integers(0, slots, n)).astype(np.int32)
    dst = values_for(rng, group, dtype, max(slots, n))
    val, keep = values_for(rng, group, dtype, n), rng.random(n) < 0.8
    dsts, olds = run_group(group, dst, idx, val, keep, block)
    unique = keep & (np.bincount(idx[keep], minlength=dst.size)[idx] == 1)
    for kind, got, old in zip(GROUPS[group], dsts, olds):
        np.testing.assert_array_equal(got, reference(kind, dst, idx, val, keep), err_msg=kind)
        np.testing.assert_array_equal(old[unique], dst[idx[unique]], err_msg=kind)


@pytest.mark.parametrize("block", [16, 512])
@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_histogram_with_many_collisions(dtype, block):
    idx = (np.random.default_rng(1).integers(0, 1000, 1000) % 16).astype(np.int32)
    (hist, _, _), (old, _, _) = run_group("arith", np.zeros(16, dtype), idx, np.ones(1000, dtype),
                                          np.ones(1000, np.bool_), block)
    np.testing.assert_array_equal(hist, np.bincount(idx, minlength=16).astype(dtype))
    for b in range(16):  # the elements of one bin saw 0, 1, 2, ... in some order
        np.testing.assert_array_equal(np.sort(old[idx == b]), np.arange((idx == b).sum()).astype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.uint64])
def test_cas_first_writer_wins(dtype):
    n, slots = 300, 7
    flags = np.zeros(slots, dtype)
    winners = np.zeros(320, np.bool_)
    run_sim(first_writer_wins, (5,), flags, winners, n, SLOTS=slots, BLOCK=64)
    lanes = np.flatnonzero(winners)
    assert sorted(lanes % slots) == list(range(slots))
    np.testing.assert_array_equal(flags[lanes % slots], lanes + 1)


def test_scalar_pointer_atomics_hand_out_tickets():
    counter, out, total = np.zeros(1, np.int64), poisoned(37, np.int64), np.zeros(1, np.float64)
    run_sim(tickets, (37,), counter, out, total)
    assert counter[0] == 37 and total[0] == 18.5
    np.testing.assert_array_equal(np.sort(out), np.arange(37))


HALVES = [np.float16, "bfloat16", np.int16, np.uint16]


def half_dtype(dtype):
    return np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


@pytest.mark.parametrize("dtype", HALVES[:2], ids=str)
@settings(max_examples=2, deadline=None)
@given(slots=st.sampled_from([1, 3, 7]), seed=st.integers(0, 2**32 - 1))
def test_half_float_add_on_odd_length_arrays(dtype, slots, seed):
    """fp16/bf16 atomic_add (bf16 a 16-bit compare-and-swap loop) on arrays of odd length, the last
    element included: a compare-and-swap widened to 32 bits would fault past the end."""
    dtype = half_dtype(dtype)
    rng = np.random.default_rng(seed)
    n = 3 * slots + 1
    idx = np.concatenate([[slots - 1], rng.integers(0, slots, n - 1)]).astype(np.int32)
    dst, val = (rng.integers(-8, 9, size).astype(dtype) for size in (slots, n))  # sums stay exact
    keep = rng.random(n) < 0.8
    keep[0] = True
    got, old = dst.copy(), np.full(n, np.nan, np.float32).astype(dtype)
    run_sim(add_at, (kdsl.cdiv(n, 16),), got, idx, val, keep, old, n, BLOCK=16, num_warps=1)
    np.testing.assert_array_equal(got.astype(np.float64), reference("add", dst, idx, val, keep).astype(np.float64))
    unique = keep & (np.bincount(idx[keep], minlength=slots)[idx] == 1)
    np.testing.assert_array_equal(old[unique].astype(np.float64), dst[idx[unique]].astype(np.float64))


@kdsl.kernel
def cas_each(p_ptr, cmp_ptr, val_ptr, old_ptr):
    i = kl.program_id(0)
    kl.store(old_ptr + i, kl.atomic_cas(p_ptr + i, kl.load(cmp_ptr + i), kl.load(val_ptr + i)))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_16_bit_cas_is_atom_cas_b16(dtype):
    """atomic_cas on the 3 halfwords of an allocation, bits compared (-0.0 is not 0.0); the PTX
    never widens to b32."""
    dtype = half_dtype(dtype)
    mem, cmp, val = (np.array(v, np.uint16).view(dtype) for v in ([1, 2, 0x8000], [1, 5, 0], [7, 8, 9]))
    p, old = mem.copy(), np.zeros(3, dtype)
    run_sim(cas_each, (3,), p, cmp, val, old, num_warps=1)
    np.testing.assert_array_equal(old.view(np.uint16), mem.view(np.uint16))
    np.testing.assert_array_equal(p.view(np.uint16), [7, 2, 0x8000])
    _, ptx, _ = lower_kernel(cas_each, (p, cmp, val, old), {})
    assert "cas.b16" in ptx and "cas.b32" not in ptx


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64])
def test_atomics_assemble_for_sm80_and_sm90(dtype):
    d, i, k = np.zeros(8, dtype), np.zeros(8, np.int32), np.zeros(8, np.bool_)
    assemble_all_arches(rmw_kernel, (d, d, d, i, d, k, d, d, d, 8),
                        {"GROUP": "arith", "SEM": "acq_rel", "SCOPE": "gpu", "BLOCK": 64})
    assemble_all_arches(tickets, (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.float64)), {})


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_16_bit_atomics_assemble_for_sm80_and_sm90(dtype):
    dtype = half_dtype(dtype)
    h = np.zeros(8, dtype)
    assemble_all_arches(cas_each, (h, h, h, h), {})
    if dtype.kind != "i" and dtype.kind != "u":
        i, k = np.zeros(8, np.int32), np.zeros(8, np.bool_)
        assemble_all_arches(add_at, (h, i, h, k, h, 8), {"BLOCK": 8})
