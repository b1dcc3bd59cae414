"""`dot` lowered to per-thread multiply-adds (`lower_dot`), run on the PTX simulator: the conformance
suite's kernels against a float64 reference and, bit for bit, against the CPU backend (same k order,
same roundings), over shapes and warp counts that give the operands different layouts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned, random_array
from tests.language.test_dot import CASES, UNIT, _round_bf16, check_close, dot_kernel, mixed_dot
from tests.language.test_tutorials import elements, matmul_kernel
import kdsl

SETTINGS = settings(max_examples=4, deadline=None)
POW2 = st.sampled_from([1, 2, 4, 8, 16, 32])
WARPS = st.sampled_from([1, 2, 4, 8])


def _operands(rng, case, m, n, k, use_acc):
    dtype, convert, _, result, _ = CASES[case]
    full = dtype == np.int8
    a, b = random_array(rng, (m, k), dtype, full_range=full), random_array(rng, (k, n), dtype, full_range=full)
    if convert is not None:
        a, b = _round_bf16(a), _round_bf16(b)
    return a, b, random_array(rng, (m, n), result) if use_acc else None


@pytest.mark.parametrize("case", range(len(CASES)))
@SETTINGS
@given(m=POW2, n=POW2, k=POW2, use_acc=st.booleans(), num_warps=WARPS, seed=st.integers(0, 2**32 - 1))
def test_dot_matches_the_reference_and_the_cpu_bit_for_bit(case, m, n, k, use_acc, num_warps, seed):
    _, convert, out_dtype, result, unit = CASES[case]
    a, b, acc = _operands(np.random.default_rng(seed), case, m, n, k, use_acc)
    outs = {}
    for target in ("sim", "cpu"):
        c = outs[target] = poisoned((m, n), result)
        # distinct arrays: the simulator copies every argument back, an unused one too
        args = (a, b, acc if use_acc else poisoned((m, n), result), c)
        meta = dict(M=m, N=n, K=k, A_TYPE=convert, USE_ACC=use_acc, OUT=out_dtype, PRECISION="tf32")
        if target == "sim":
            run_sim(dot_kernel, (1,), *args, num_warps=num_warps, **meta)
        else:
            dot_kernel[(1,)](*args, target="cpu", **meta)
    check_close(outs["sim"], a, b, acc, unit)
    np.testing.assert_array_equal(outs["sim"].view(np.uint8), outs["cpu"].view(np.uint8))


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
    check_close(c, a, b, None, UNIT[np.float32])


@pytest.mark.parametrize("case", [0, 2, 4, 6])
def test_dot_ptx_assembles(case):
    _, convert, out_dtype, result, _ = CASES[case]
    a, b, _ = _operands(np.random.default_rng(1), case, 16, 16, 16, False)
    c = np.zeros((16, 16), result)
    assemble_all_arches(dot_kernel, (a, b, c, c), dict(M=16, N=16, K=16, A_TYPE=convert, USE_ACC=False,
                                                       OUT=out_dtype, PRECISION=None))
