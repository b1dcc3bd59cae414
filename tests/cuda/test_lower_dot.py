"""`dot` lowered to per-thread multiply-adds (`lower_dot`), run on the PTX simulator: the conformance
suite's kernels (2D and batched 3D) against a float64 reference and, where the dot stays on CUDA cores
(no `mma.sync` in the PTX: fp32 with "ieee", fp64, batched, blocks below an mma tile), bit for bit
against the CPU backend (same k order, same roundings), over shapes and warp counts that give the
operands different layouts. Tensor-core dots are in test_lower_mma.py."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.lower_dot import UNROLL
from tests.cuda.helpers import assemble_all_arches, lower_kernel, run_sim
from tests.helpers import poisoned, random_array
from tests.language.test_dot import (CASES, UNIT, _round_bf16, batched_dot_kernel, check_close, dot_kernel, mixed_dot,
                                     tf32_unit)
from tests.language.test_tutorials import elements, matmul_kernel
import kdsl

SETTINGS = settings(max_examples=4, deadline=None)
POW2 = st.sampled_from([1, 2, 4, 8, 16, 32])
WARPS = st.sampled_from([1, 2, 4, 8])


def _operands(rng, case, m, n, k, use_acc, batch=()):
    dtype, convert, _, result, _ = CASES[case]
    full = dtype == np.int8
    a = random_array(rng, (*batch, m, k), dtype, full_range=full)
    b = random_array(rng, (*batch, k, n), dtype, full_range=full)
    if convert is not None:
        a, b = _round_bf16(a), _round_bf16(b)
    return a, b, random_array(rng, (*batch, m, n), result) if use_acc else None


def _on_sim_and_cpu(kernel, a, b, acc, result, num_warps, **meta):
    """`kernel(a, b, acc, c)` run on the simulator and the CPU: (c on sim, c on cpu, whether the
    simulator's PTX multiplied on tensor cores)."""
    shape = (*a.shape[:-1], b.shape[-1])
    outs = {}
    for target in ("sim", "cpu"):
        c = outs[target] = poisoned(shape, result)
        # distinct arrays: the simulator copies every argument back, an unused one too
        args = (a, b, poisoned(shape, result) if acc is None else acc, c)
        if target == "sim":
            run_sim(kernel, (1,), *args, num_warps=num_warps, **meta)
            _, ptx, _ = lower_kernel(kernel, args, meta, num_warps)
        else:
            kernel[(1,)](*args, target="cpu", **meta)
    return outs["sim"], outs["cpu"], "mma.sync" in ptx


def _check_against_cpu(sim, cpu, on_tensor_cores):
    """Bit for bit on CUDA cores; mma sums in another order (exact only for integers)."""
    if not on_tensor_cores or sim.dtype.kind == "i":
        np.testing.assert_array_equal(sim.view(np.uint8), cpu.view(np.uint8))


@pytest.mark.parametrize("case", range(len(CASES)))
@SETTINGS
@given(m=POW2, n=POW2, k=POW2, use_acc=st.booleans(), num_warps=WARPS, seed=st.integers(0, 2**32 - 1))
def test_dot_matches_the_reference_and_the_cpu_bit_for_bit(case, m, n, k, use_acc, num_warps, seed):
    _, convert, out_dtype, result, unit = CASES[case]
    a, b, acc = _operands(np.random.default_rng(seed), case, m, n, k, use_acc)
    sim, cpu, mma = _on_sim_and_cpu(dot_kernel, a, b, acc, result, num_warps, M=m, N=n, K=k, A_TYPE=convert,
                                    USE_ACC=use_acc, OUT=out_dtype, PRECISION="ieee")
    check_close(sim, a, b, acc, unit)
    _check_against_cpu(sim, cpu, mma)


@pytest.mark.parametrize("case", [0, 2, 3, 5])
@SETTINGS
@given(batch=st.sampled_from([1, 2, 4]), m=st.sampled_from([1, 4, 16]), n=st.sampled_from([1, 8, 32]),
       k=st.sampled_from([1, 4, 16]), use_acc=st.booleans(), num_warps=WARPS, seed=st.integers(0, 2**32 - 1))
def test_batched_dot_matches_the_reference_and_the_cpu_bit_for_bit(case, batch, m, n, k, use_acc, num_warps,
                                                                    seed):
    _, _, out_dtype, result, unit = CASES[case]
    a, b, acc = _operands(np.random.default_rng(seed), case, m, n, k, use_acc, batch=(batch,))
    sim, cpu, mma = _on_sim_and_cpu(batched_dot_kernel, a, b, acc, result, num_warps, B=batch, M=m, N=n, K=k,
                                    USE_ACC=use_acc, OUT=out_dtype)
    assert not mma
    check_close(sim, a, b, acc, unit)
    np.testing.assert_array_equal(sim.view(np.uint8), cpu.view(np.uint8))


@pytest.mark.parametrize("num_warps", [1, 4])
def test_fp16_times_fp32_with_the_accumulator_carried_through_a_loop(num_warps):
    rng = np.random.default_rng(3)
    a, b = random_array(rng, (8, 16), np.float16), random_array(rng, (16, 4), np.float32)
    c = poisoned((8, 4), np.float32)
    run_sim(mixed_dot, (1,), a, b, c, M=8, N=4, K=16, num_warps=num_warps)
    check_close(c, 2 * a.astype(np.float32), b, None, UNIT[np.float32])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@settings(max_examples=3, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40), num_warps=WARPS,
       blocks=st.sampled_from([(16, 16, 8), (32, 16, 16), (16, 32, 4)]), seed=st.integers(0, 2**32 - 1))
def test_tiled_matmul_with_a_k_loop_and_masked_edges(dtype, m, n, k, num_warps, blocks, seed):
    rng = np.random.default_rng(seed)
    a, b = random_array(rng, (m, k), dtype), random_array(rng, (k, n), dtype)
    c = poisoned((m, n), np.float32)
    bm, bn, bk = blocks
    grid = (kdsl.cdiv(m, bm) * kdsl.cdiv(n, bn),)
    run_sim(matmul_kernel, grid, a, b, c, m, n, k, *elements(a), *elements(b), *elements(c),
            BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk, GROUP_SIZE_M=2, ACTIVATION="", num_warps=num_warps)
    check_close(c, a, b, None, UNIT[np.float32], tf32_unit("sim", dtype, None))


@pytest.mark.parametrize("case", [0, 2, 4, 6])
def test_dot_ptx_assembles(case):
    _, convert, out_dtype, result, _ = CASES[case]
    a, b, _ = _operands(np.random.default_rng(1), case, 16, 16, 16, False)
    c = np.zeros((16, 16), result)
    assemble_all_arches(dot_kernel, (a, b, c, c), dict(M=16, N=16, K=16, A_TYPE=convert, USE_ACC=False,
                                                       OUT=out_dtype, PRECISION=None))


def test_batched_dot_ptx_assembles():
    a, b, _ = _operands(np.random.default_rng(2), 0, 8, 8, 16, False, batch=(2,))
    c = np.zeros((2, 8, 8), np.float32)
    assemble_all_arches(batched_dot_kernel, (a, b, c, c), dict(B=2, M=8, N=8, K=16, USE_ACC=False,
                                                               OUT=CASES[0][2]))


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("k", [64, 256])
def test_dot_streams_k_in_a_loop_without_spills(k):
    """The multiply-adds are a loop over k: UNROLL steps of each thread's 32 accumulator elements
    in the PTX whatever K is, and ptxas spills nothing."""
    m = n = 64
    a, b, _ = _operands(np.random.default_rng(4), 0, m, n, k, False)
    c = np.zeros((m, n), np.float32)
    constants = dict(M=m, N=n, K=k, A_TYPE=None, USE_ACC=False, OUT=CASES[0][2], PRECISION="ieee")
    for arch in ("sm_80", "sm_90"):
        _, ptx, _ = lower_kernel(dot_kernel, (a, b, c, c), constants, num_warps=4, arch=arch)
        assert ptx.count("fma.rn.f32") == UNROLL * m * n // 128
        report = ptxas.assemble(ptx, arch).report
        assert re.search(r"\b0 bytes spill stores, 0 bytes spill loads", report), report
