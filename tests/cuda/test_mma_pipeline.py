"""Software-pipelined K loops (`mma_pipeline`): the copies of iteration i + num_stages - 1 issued
while iteration i computes, on the simulator, whose cp.async copies land only when a wait needs
them (so a wait that counts wrong reads stale slots), for every stage count and for trip counts
shorter than the pipeline; the PTX's waits and slots; zero spills at 128x128x32."""
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
import kdsl.sim
from kdsl.backend.cuda import ptxas
from tests.cuda.helpers import assemble_all_arches, lower_kernel, run_sim
from tests.cuda.test_lower_mma import _copies, _matmul_tile_args, mma_matmul
from tests.helpers import poisoned, random_array
from tests.language.test_dot import UNIT, check_close
from tests.language.test_tutorials import _attn_fwd, attention_reference, elements, matmul_kernel

needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
BLOCKS = dict(BLOCK_SIZE_M=32, BLOCK_SIZE_N=32, BLOCK_SIZE_K=32, GROUP_SIZE_M=4, ACTIVATION="")


def _operands(m, n, k, seed):
    rng = np.random.default_rng(seed)
    return random_array(rng, (m, k), np.float16), random_array(rng, (k, n), np.float16)


def _tutorial_args(a, b, c):
    m, k = a.shape
    return (a, b, c, m, b.shape[1], k, *elements(a), *elements(b), *elements(c))


def _waits(ptx: str) -> list[int]:
    return [int(n) for n in re.findall(r"cp\.async\.wait_group\s+(\d+);", ptx)]


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [16, 48, 160])  # 1 and 2 iterations of BK = 32 (masked tails), 5
def test_the_tutorial_matmul_is_right_for_every_stage_count(stages, k):
    """The tutorial's matmul carries its pointer blocks (`a_ptrs += BLOCK_SIZE_K * stride_ak`):
    with S stages its prologue copies S - 1 iterations of a's tiles (the loop's state runs S - 1
    iterations ahead), each iteration waits with `wait_group S - 2` for its own and copies S - 1
    iterations on; iterations past the end copy nothing (their slots zero-filled), also where the
    loop is shorter than the pipeline."""
    m, n = 40, 48
    a, b = _operands(m, n, k, seed=k + stages)
    c = poisoned((m, n), np.float32)
    args = _tutorial_args(a, b, c)
    run_sim(matmul_kernel, (kdsl.cdiv(m, 32) * kdsl.cdiv(n, 32),), *args, num_stages=stages, **BLOCKS)
    check_close(c, a, b, None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(matmul_kernel, args, BLOCKS, num_stages=stages)
    per_iteration = 1  # a's 32x32 tile: 128 copies of 16 bytes, one per thread (b wraps `% N`: loaded)
    assert len(_copies(ptx)) == per_iteration * stages
    assert _waits(ptx) == ([0] if stages == 1 else [stages - 2, 0])  # the loop's, then the drain's


@pytest.mark.parametrize("stages", [2, 3])
@pytest.mark.parametrize("transposed", [False, True])
def test_both_operands_with_masked_edges_through_the_pipeline(stages, transposed):
    """`mma_matmul` computes its pointers from the induction variable (no loop state) and masks
    every edge: both operands are pipelined, with `.trans` ldmatrix where the rows run along M or K."""
    m, n, k = (48, 48, 112) if transposed else (37, 48, 112)
    rng = np.random.default_rng(stages)
    a = random_array(rng, (k, m), np.float16).T if transposed else random_array(rng, (m, k), np.float16)
    b = random_array(rng, (n, k), np.float16).T if transposed else random_array(rng, (k, n), np.float16)
    c = poisoned((m, n), np.float32)
    args = (a, b, np.zeros(n, np.float32), c, m, n, k, *elements(a), *elements(b))
    meta = dict(BM=32, BN=16, BK=32, OPERAND=None, OUT=kl.float32, PRECISION=None, BIAS_RELU=False)
    run_sim(mma_matmul, (kdsl.cdiv(m, 32), kdsl.cdiv(n, 16)), *args, num_stages=stages, **meta)
    check_close(c, a, b, None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(mma_matmul, args, meta, num_stages=stages)
    assert "ld.global" not in ptx and _waits(ptx) == [stages - 2, 0]
    assemble_all_arches(mma_matmul, args, meta, num_stages=stages)


def test_a_wait_that_counts_one_group_too_few_reads_stale_slots():
    """The tests above can fail: the same PTX with `wait_group 2` instead of 1 (3 stages) lets the
    dot read slots whose copies have not landed, and the simulator gives wrong sums."""
    a, b = _operands(32, 32, 128, seed=9)
    results = []
    for wait in ("1", "2"):
        c = poisoned((32, 32), np.float32)
        gpu, ptx, _ = lower_kernel(matmul_kernel, _tutorial_args(a, b, c), BLOCKS, num_stages=3)
        ptx = re.sub(r"cp\.async\.wait_group\s+1;", f"cp.async.wait_group {wait};", ptx)
        sim_args = [a, b, c] + [("s32", v) for v in (32, 32, 128, *elements(a), *elements(b), *elements(c))]
        kdsl.sim.launch_ptx(ptx, gpu.entry, (1, 1, 1), (128, 1, 1), sim_args, gpu.shared_bytes)
        results.append(c)
    check_close(results[0], a, b, None, UNIT[np.float32])
    expected = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(results[1] - expected).max() > 1


@kdsl.kernel
def matmul_storing_partial_sums(a_ptr, b_ptr, c_ptr, partial_ptr, K, BM: kl.constexpr, BN: kl.constexpr,
                                BK: kl.constexpr):
    """One tile of a @ b whose loop also stores each running sum's first row."""
    rm, rn, rk = kl.arange(0, BM), kl.arange(0, BN), kl.arange(0, BK)
    acc = kl.zeros((BM, BN), kl.float32)
    for k0 in range(0, K, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k0 + rk)[None, :])
        b = kl.load(b_ptr + (k0 + rk)[:, None] * BN + rn[None, :])
        acc = kl.dot(a, b, acc)
        kl.store(partial_ptr + (k0 // BK) * BN + rn, kl.sum(kl.where(rm[:, None] == 0, acc, 0.0), axis=0))
    kl.store(c_ptr + rm[:, None] * BN + rn[None, :], acc)


def test_a_loop_that_writes_memory_is_not_pipelined():
    """What a loop stores could be what a copy issued iterations earlier reads: such a loop keeps
    one stage (copies waited for at the dot), and its answers are right."""
    a, b = _operands(32, 32, 96, seed=2)
    c, partial = poisoned((32, 32), np.float32), poisoned((3, 32), np.float32)
    args = (a, b, c, partial, 96)
    meta = dict(BM=32, BN=32, BK=32)
    run_sim(matmul_storing_partial_sums, (1,), *args, num_stages=3, **meta)
    check_close(c, a, b, None, UNIT[np.float32])
    for i in range(3):
        check_close(partial[i:i + 1], a[:1, :32 * (i + 1)], b[:32 * (i + 1)], None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(matmul_storing_partial_sums, args, meta, num_stages=3)
    assert _waits(ptx) == [0] and len(_copies(ptx)) == 2  # a and b, 2 KB each: one copy a thread


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_a_pipelined_128x128x32_tile_does_not_spill(arch):
    """Three stages of a 128x128x32 fp16 tile (3 x (8 + 8) KB of slots; the epilogue's conversion of
    the fp32 accumulator takes 66 KB after the loop), and no spills on 4 warps."""
    args, meta = _matmul_tile_args(128, 128, 32)
    gpu, ptx, _ = lower_kernel(mma_matmul, args, meta, arch=arch, num_stages=3)
    assert _waits(ptx) == [1, 0] and len(_copies(ptx)) == 3 * 2 * 4
    report = ptxas.assemble(ptx, arch).report
    assert re.search(r"\b0 bytes spill stores, 0 bytes spill loads", report), report


def test_stages_that_do_not_fit_in_shared_memory_are_dropped():
    """sm_86 gives a CTA at most 99 KB of shared memory: four stages of 32 KB do not fit, three do."""
    args, meta = _matmul_tile_args(128, 128, 64)
    gpu, ptx, _ = lower_kernel(mma_matmul, args, meta, arch="sm_86", num_stages=4)
    assert _waits(ptx) == [1, 0] and gpu.shared_bytes <= 101376


@pytest.mark.parametrize("stages", [1, 3])
def test_attention_pipelines_v_and_loads_the_transposed_k_at_its_dot(stages):
    """The fused-attention loop's V tiles (rows contiguous along HEAD_DIM) are pipelined; K, read
    transposed (contiguous along the carried pointers' slow dimension), is loaded as loads are at
    its dot, in the same loop; the online softmax's answers are right either way."""
    rng = np.random.default_rng(stages)
    q, k, v = (rng.normal(0.0, 0.5, (1, 2, 96, 64)).astype(np.float16) for _ in range(3))
    o, lse2 = poisoned(q.shape, np.float16), poisoned((1, 2, 96), np.float32)
    args = (q, k, v, 0.5, lse2, o, *elements(q), *elements(k), *elements(v), *elements(o), 1, 2, 96)
    meta = dict(HEAD_DIM=64, BLOCK_M=32, BLOCK_N=32, CAUSAL=True)
    run_sim(_attn_fwd, (3, 2, 1), *args, num_stages=stages, **meta)
    o_ref, lse2_ref = attention_reference(q, k, v, True, 0.5)
    np.testing.assert_allclose(o.astype(np.float64), o_ref, rtol=0, atol=1e-2)
    np.testing.assert_allclose(lse2, lse2_ref, rtol=1e-4, atol=1e-4)
    _, ptx, _ = lower_kernel(_attn_fwd, args, meta, num_stages=stages)
    assert _waits(ptx) == ([0] if stages == 1 else [stages - 2, 0])
    assert len(_copies(ptx)) == 2 * stages  # V's 32x64 tile: two 16-byte copies a thread
