"""GPU atomics on the PTX simulator, with the conformance suite's kernels and references; blocks
smaller than the CTA (lanes and warps holding copies) must still update each element once."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned
from tests.language.test_atomics import GROUPS, first_writer_wins, reference, rmw_kernel, tickets, values_for


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
    dst = values_for(rng, group, dtype, max(slots, n) + 1)  # f16 compare-and-swap works on 32-bit words
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


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64])
def test_atomics_assemble_for_sm80_and_sm90(dtype):
    d, i, k = np.zeros(8, dtype), np.zeros(8, np.int32), np.zeros(8, np.bool_)
    assemble_all_arches(rmw_kernel, (d, d, d, i, d, k, d, d, d, 8),
                        {"GROUP": "arith", "SEM": "acq_rel", "SCOPE": "gpu", "BLOCK": 64})
    assemble_all_arches(tickets, (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.float64)), {})
