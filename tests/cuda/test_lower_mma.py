"""`dot` on tensor cores (`lower_mma`), run on the PTX simulator: the fragment layouts against the
simulator's tables of the PTX ISA, and tiled matmuls with a K loop (fp16 with fp32 and fp16
accumulators, bf16, tf32, int8; e4m3 and e5m2 compiled for sm_89 and sm_90) with masked edges,
operands read transposed through strides and a fused bias + ReLU epilogue, against a float64
reference of the operands as the tensor cores see them (bf16 and tf32 rounded), at the fp32 (fp16)
accumulation's tolerance; int8 exactly. Where nvdisasm is installed, the SASS has the tensor-core
instructions."""
import re

import ml_dtypes
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.layouts import mma_fragments
from kdsl.backend.cuda.lower_mma import INSTRUCTIONS
from kdsl.backend.cuda.sass import disassemble, find_nvdisasm, opcodes
from kdsl.sim.ops_tensorcore import _LAYOUTS, _acc_layout
from tests.cuda.helpers import assemble_all_arches, lower_kernel, run_sim
from tests.helpers import poisoned, random_array
from tests.language.test_dot import UNIT, _round_bf16, check_close, round_tf32
from tests.language.test_tutorials import elements, matmul_kernel

needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")


@pytest.mark.parametrize("inst", sorted(set(INSTRUCTIONS.values()), key=str))
def test_fragment_layouts_are_the_ptx_isa_tables(inst):
    """One warp's m16n8kK tile: register i of lane l holds what the ISA's tables (as the simulator
    implements them) say, for a, b and the accumulator."""
    family = "tf32" if inst.operand == "tf32" else ("h" if inst.operand_bits == 16 else "b")
    table_a, table_b = _LAYOUTS[(inst.k, inst.operand_bits, family)]
    a, b, acc = mma_fragments(16, 8, inst.k, inst.pack, inst.k, 1)
    for layout, table in ((a, table_a), (b, table_b), (acc, _acc_layout)):
        got = [layout.apply(r, lane, 0) for lane in range(32) for r in range(layout.num_registers)]
        want = [tuple(int(x) for x in table(lane >> 2, lane & 3, r))
                for lane in range(32) for r in range(layout.num_registers)]
        assert got == want


def test_warps_tile_m_and_n_and_every_element_has_one_owner():
    a, b, acc = mma_fragments(64, 32, 32, 2, 16, 4)
    owners = {}
    for w in range(4):
        for lane in range(32):
            for r in range(acc.num_registers):
                owners.setdefault(acc.apply(r, lane, w), set()).add(w)
    assert len(owners) == 64 * 32 and all(len(ws) == 1 for ws in owners.values())
    assert {a.apply(0, 0, w) for w in range(4)} == {(0, 0), (16, 0)}  # warps along N share rows of a


@kdsl.kernel
def mma_matmul(a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
               BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr, OPERAND: kl.constexpr, OUT: kl.constexpr,
               PRECISION: kl.constexpr, BIAS_RELU: kl.constexpr):
    rm = kl.program_id(0) * BM + kl.arange(0, BM)
    rn = kl.program_id(1) * BN + kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), OUT)
    for k0 in range(0, kl.cdiv(K, BK)):
        ka = k0 * BK + rk
        a = kl.load(a_ptr + rm[:, None] * stride_am + ka[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & (ka[None, :] < K), other=0)
        b = kl.load(b_ptr + ka[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=(ka[:, None] < K) & (rn[None, :] < N), other=0)
        if OPERAND is not None:
            a = a.to(OPERAND)
            b = b.to(OPERAND)
        acc = kl.dot(a, b, acc, input_precision=PRECISION)
    if BIAS_RELU:
        acc = kl.maximum(acc + kl.load(bias_ptr + rn, mask=rn < N, other=0)[None, :], 0)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


CASES = {  # name: (operands in memory, kl type they become, accumulator, result, unit, reference rounding,
    #                 input_precision)
    "f16-f32": (np.float16, None, kl.float32, np.float32, UNIT[np.float32], None, None),
    "f16-f16": (np.float16, None, kl.float16, np.float16, UNIT[np.float16], None, None),
    "bf16-f32": (np.float32, kl.bfloat16, kl.float32, np.float32, UNIT[np.float32], _round_bf16, None),
    "tf32-f32": (np.float32, None, kl.float32, np.float32, UNIT[np.float32], round_tf32, None),
    "i8-i32": (np.int8, None, kl.int32, np.int32, 0, None, None),
    "f32-ieee": (np.float32, None, kl.float32, np.float32, UNIT[np.float32], None, "ieee"),
}
FP8 = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
FP8_CASES = {  # a and b in memory as fp8 (each e4m3 or e5m2), into fp32
    f"{fa}x{fb}-f32": ((FP8[fa], FP8[fb]), None, kl.float32, np.float32, UNIT[np.float32], None, None)
    for fa, fb in (("e4m3", "e4m3"), ("e5m2", "e5m2"), ("e4m3", "e5m2"))}
CASES.update(FP8_CASES)
SHAPE = (37, 21, 45)  # M, N, K: no multiple of the blocks, so every edge is masked
BLOCKS = dict(BM=32, BN=16, BK=32)


def _random_operand(rng, shape, dtype, transposed):
    """Fresh values of `shape` (stored as the transpose of a `shape[::-1]` array where `transposed`):
    int8 over its full range; fp8 (ml_dtypes, which `random_array` does not know) rounded from fp32."""
    stored = shape[::-1] if transposed else shape
    if dtype in FP8.values():
        values = random_array(rng, stored, np.float32).astype(dtype)
    else:
        values = random_array(rng, stored, dtype, full_range=dtype == np.int8)
    return values.T if transposed else values


def _matmul(case, transposed, bias_relu, seed=0, num_warps=4, arch="sm_80"):
    """(c, a, b, bias) for `mma_matmul` on the simulator; a and b are read transposed through strides
    where `transposed` (each stored as the transpose of the other order)."""
    dtype, operand, out, result, _, rounding, precision = CASES[case]
    a_dtype, b_dtype = dtype if isinstance(dtype, tuple) else (dtype, dtype)
    m, n, k = SHAPE
    rng = np.random.default_rng(seed)
    a = _random_operand(rng, (m, k), a_dtype, transposed)
    b = _random_operand(rng, (k, n), b_dtype, transposed)
    bias = random_array(rng, (n,), result)
    c = poisoned((m, n), result)
    grid = (kdsl.cdiv(m, BLOCKS["BM"]), kdsl.cdiv(n, BLOCKS["BN"]))
    args = (a, b, bias, c, m, n, k, a.strides[0] // a.itemsize, a.strides[1] // a.itemsize,
            b.strides[0] // b.itemsize, b.strides[1] // b.itemsize)
    meta = dict(BLOCKS, OPERAND=operand, OUT=out, PRECISION=precision, BIAS_RELU=bias_relu)
    run_sim(mma_matmul, grid, *args, num_warps=num_warps, arch=arch, **meta)
    if rounding is not None:
        a, b = rounding(a), rounding(b)
    return c, a, b, bias, (args, meta)


@pytest.mark.parametrize("case", [name for name in CASES if name != "f32-ieee" and name not in FP8_CASES])
@pytest.mark.parametrize("transposed", [False, True])
def test_tiled_matmul_with_masked_edges(case, transposed):
    c, a, b, _, _ = _matmul(case, transposed, bias_relu=False)
    check_close(c, a, b, None, CASES[case][4])


@pytest.mark.parametrize("case", ["f16-f32", "tf32-f32", "i8-i32"])
def test_fused_bias_relu_epilogue(case):
    c, a, b, bias, _ = _matmul(case, False, bias_relu=True, seed=1)
    exact = a.astype(np.float64) @ b.astype(np.float64) + bias
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(bias)
    bound = (SHAPE[2] + 2) * CASES[case][4] * scale
    assert (np.abs(c - np.maximum(exact, 0)) <= bound).all()


@pytest.mark.parametrize("case, on_tensor_cores", [
    ("f16-f32", True), ("tf32-f32", True), ("f32-ieee", False), ("i8-i32", True)])
def test_ptx_has_mma_sync_where_the_dot_takes_tensor_cores(case, on_tensor_cores):
    """The fp32 dot with input_precision="ieee" stays exact fp32 multiply-adds on CUDA cores."""
    c, a, b, _, (args, meta) = _matmul(case, False, bias_relu=False)
    check_close(c, a, b, None, CASES[case][4])
    _, ptx, _ = lower_kernel(mma_matmul, args, meta)
    assert ("mma.sync.aligned.m16n8k" in ptx) == on_tensor_cores
    assert ("ldmatrix.sync.aligned.m8n8" in ptx) == on_tensor_cores
    assert ("cvt.rna.tf32.f32" in ptx) == (on_tensor_cores and case == "tf32-f32")
    assemble_all_arches(mma_matmul, args, meta)


@pytest.mark.parametrize("case, mma", [("e4m3xe4m3-f32", "m16n8k32.row.col.f32.e4m3.e4m3.f32"),
                                       ("e5m2xe5m2-f32", "m16n8k32.row.col.f32.e5m2.e5m2.f32"),
                                       ("e4m3xe5m2-f32", "m16n8k16.row.col.f32.f16.f16.f32")])
@pytest.mark.parametrize("arch", ["sm_89", "sm_90"])
def test_fp8_dots_take_the_fp8_mma_from_sm_89(case, mma, arch):
    """Right answers with masked edges (fp8 products are exact in fp32, so at the fp32 accumulation's
    tolerance; operands read transposed on sm_90), the fp8 mma in the PTX, its operands loaded with
    ldmatrix, and the PTX assembles for `arch`. A mixed pair is promoted to f16 by the frontend, so
    it takes the f16 mma."""
    c, a, b, _, (args, meta) = _matmul(case, transposed=arch == "sm_90", bias_relu=False, arch=arch)
    check_close(c, a, b, None, CASES[case][4])
    _, ptx, _ = lower_kernel(mma_matmul, args, meta, arch=arch)
    assert f"mma.sync.aligned.{mma}" in ptx
    assert "ldmatrix.sync.aligned.m8n8" in ptx
    if ptxas.available():
        ptxas.assemble(ptx, arch)


@pytest.mark.parametrize("arch", ["sm_80", "sm_86"])
def test_fp8_dots_stay_on_cuda_cores_before_sm_89(arch):
    """fp8 mma needs sm_89: before it the dot is fp32 multiply-adds, and its PTX assembles for `arch`."""
    c, a, b, _, (args, meta) = _matmul("e5m2xe5m2-f32", False, bias_relu=False, arch=arch)
    check_close(c, a, b, None, CASES["e5m2xe5m2-f32"][4])
    _, ptx, _ = lower_kernel(mma_matmul, args, meta, arch=arch)
    assert "mma.sync" not in ptx and "fma.rn.f32" in ptx
    if ptxas.available():
        ptxas.assemble(ptx, arch)


def _matmul_tile_args(m, n, k):
    """Arguments and meta-parameters of one `mma_matmul` tile of fp16 operands into fp32."""
    args = (np.zeros((m, k), np.float16), np.zeros((k, n), np.float16), np.zeros(n, np.float32),
            np.zeros((m, n), np.float32), m, n, k, k, 1, n, 1)
    return args, dict(BM=m, BN=n, BK=k, OPERAND=None, OUT=kl.float32, PRECISION=None, BIAS_RELU=False)


@pytest.mark.parametrize("transposed", [False, True])
def test_fp16_operands_reach_the_tensor_cores_through_ldmatrix(transposed):
    """Right answers with the operands staged through shared memory and ldmatrix (with `.trans` where
    a staged tile's rows do not run along K); in an unmasked 32x16x32 tile on 4 warps (one m16 tile of
    a and one n8 tile of b per warp), the row-major operands are copied in 16 bytes with cp.async and
    each K tile takes one x4 ldmatrix of a and one x2 `.trans` of the row-major b, next to its mma."""
    c, a, b, _, (args, meta) = _matmul("f16-f32", transposed, bias_relu=False)
    check_close(c, a, b, None, CASES["f16-f32"][4])
    _, ptx, _ = lower_kernel(mma_matmul, *_matmul_tile_args(32, 16, 32))
    assert re.findall(r"ldmatrix\.sync\.aligned\.m8n8\.(x[24](?:\.trans)?)\.shared\.b16", ptx) == ["x4", "x2.trans"] * 2
    assert "cp.async.cg.shared.global" in ptx and ptx.count("mma.sync.aligned.m16n8k16") == 2


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_a_128x128x32_fp16_tile_on_4_warps_does_not_spill(arch):
    """Fragments are loaded one K tile at a time, next to the mmas that use them."""
    args, meta = _matmul_tile_args(128, 128, 32)
    _, ptx, _ = lower_kernel(mma_matmul, args, meta, arch=arch)
    assert "ldmatrix" in ptx and "mma.sync" in ptx and "cp.async.cg.shared.global" in ptx
    report = ptxas.assemble(ptx, arch).report
    assert re.search(r"\b0 bytes spill stores, 0 bytes spill loads", report), report


@pytest.mark.skipif(find_nvdisasm() is None, reason="nvdisasm is not installed (pip install nvidia-cuda-nvdisasm)")
@needs_ptxas
@pytest.mark.parametrize("case, arch, opcode, per_mma", [
    ("f16-f32", "sm_80", "HMMA", 1), ("i8-i32", "sm_80", "IMMA", 1), ("e4m3xe4m3-f32", "sm_89", "QMMA", 1),
    ("e5m2xe5m2-f32", "sm_90", "HMMA", 2)])
def test_the_sass_runs_the_mma_on_tensor_cores(case, arch, opcode, per_mma):
    """The cubin ptxas makes of the PTX has `per_mma` tensor-core instructions per mma.sync of the PTX
    (HMMA for fp16, IMMA for int8, QMMA for fp8 on sm_89; sm_90 runs an fp8 mma.sync as two fp16
    HMMA.16816, its fp8 tensor cores being wgmma's), operands loaded by ldmatrix (LDSM), no fp32 FMAs."""
    dtype, _, out, result, *_ = CASES[case]
    dtype = dtype[0] if isinstance(dtype, tuple) else dtype
    args, meta = _matmul_tile_args(32, 16, 32)
    args = (np.zeros((32, 32), dtype), np.zeros((32, 16), dtype), np.zeros(16, result),
            np.zeros((32, 16), result)) + args[4:]
    compiled = mma_matmul.compile(*args, **dict(meta, OUT=out), target="cuda", arch=arch, cubin=True)
    found = opcodes(disassemble(compiled.asm["cubin"]))
    assert found.count(opcode) == per_mma * compiled.asm["ptx"].count("mma.sync.aligned") > 0, found
    assert "LDSM" in found and "FFMA" not in found, found


def _copies(ptx: str) -> list[str]:
    """The operand copies of cp.async in `ptx`, each as its operand list."""
    return re.findall(r"cp\.async\.cg\.shared\.global \[[^]]+\], \[[^]]+\], 16(.*);", ptx)


@pytest.mark.parametrize("shape, bk, copies", [((40, 48, 64), 32, 1), ((40, 24, 48), 32, 1), ((40, 48, 64), 16, 0)])
def test_tutorial_fp16_matmul_copies_operands_with_cp_async(shape, bk, copies):
    """The tutorial's matmul: a (contiguous along K, 16-byte aligned rows) is copied global → shared
    with cp.async, its masked-off K tail (K = 48 with BK = 32) zero-filled by src_size 0; b, whose
    columns wrap `% N`, is loaded and staged through registers; with BK = 16 the loop carries a's
    pointers in runs of 4 elements a thread, so a is loaded at the dot instead; the answers are right."""
    m, n, k = shape
    rng = np.random.default_rng(3)
    a, b = random_array(rng, (m, k), np.float16), random_array(rng, (k, n), np.float16)
    c = poisoned((m, n), np.float32)
    meta = dict(BLOCK_SIZE_M=32, BLOCK_SIZE_N=32, BLOCK_SIZE_K=bk, GROUP_SIZE_M=4, ACTIVATION="")
    args = (a, b, c, m, n, k, *elements(a), *elements(b), *elements(c))
    run_sim(matmul_kernel, (kdsl.cdiv(m, 32) * kdsl.cdiv(n, 32),), *args, num_stages=1, **meta)
    check_close(c, a, b, None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(matmul_kernel, args, meta, num_stages=1)
    assert len(_copies(ptx)) == copies and ("cp.async.wait_group" in ptx) == bool(copies)
    assert "ldmatrix.sync.aligned" in ptx and "mma.sync.aligned.m16n8k16" in ptx
    if copies:
        assert ptx.count("ld.global") == 8  # b's loads alone: a is not also loaded the normal way
    assemble_all_arches(matmul_kernel, args, meta, num_stages=1)


@pytest.mark.parametrize("transposed, shape", [(False, (37, 48, 48)), (True, (48, 48, 48))])
def test_masked_edges_on_both_operands_are_zero_filled_copies(transposed, shape):
    """`mma_matmul` with masked edges and a K tail: both operands take cp.async with a src_size (no
    global load of them is left), also read transposed through strides (tiles whose rows run along
    M for a and K for b, read with ldmatrix `.trans` and without), and the answers are right; one
    stage."""
    m, n, k = shape
    rng = np.random.default_rng(4)
    a = random_array(rng, (k, m), np.float16).T if transposed else random_array(rng, (m, k), np.float16)
    b = random_array(rng, (n, k), np.float16).T if transposed else random_array(rng, (k, n), np.float16)
    c = poisoned((m, n), np.float32)
    args = (a, b, np.zeros(n, np.float32), c, m, n, k, *elements(a), *elements(b))
    meta = dict(BLOCKS, OPERAND=None, OUT=kl.float32, PRECISION=None, BIAS_RELU=False)
    run_sim(mma_matmul, (kdsl.cdiv(m, BLOCKS["BM"]), kdsl.cdiv(n, BLOCKS["BN"])), *args, num_stages=1, **meta)
    check_close(c, a, b, None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(mma_matmul, args, meta, num_stages=1)
    copies = _copies(ptx)
    assert len(copies) == 2 and all(c.startswith(", %r") for c in copies) and "ld.global" not in ptx
    forms = set(re.findall(r"ldmatrix\.sync\.aligned\.m8n8\.(x[24](?:\.trans)?)", ptx))
    assert forms == ({"x4.trans", "x2"} if transposed else {"x4", "x2.trans"})
    assemble_all_arches(mma_matmul, args, meta, num_stages=1)


@kdsl.kernel
def padded_dot(a_ptr, b_ptr, c_ptr, M, N, K, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr,
               OTHER: kl.constexpr):
    """One BM x BN tile of a @ b with a and b padded by OTHER, stored whole."""
    rm, rn, rk = kl.arange(0, BM), kl.arange(0, BN), kl.arange(0, BK)
    a = kl.load(a_ptr + rm[:, None] * K + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=OTHER)
    b = kl.load(b_ptr + rk[:, None] * N + rn[None, :], mask=(rk[:, None] < K) & (rn[None, :] < N), other=OTHER)
    kl.store(c_ptr + rm[:, None] * BN + rn[None, :], kl.dot(a, b))


@pytest.mark.parametrize("other, k, copied", [(0.0, 16, 2), (1.0, 16, 0), (0.0, 12, 1)])
def test_cp_async_only_where_zero_fill_and_alignment_allow(other, k, copied):
    """A padding other than 0 keeps both loads in registers, and rows of K = 12 elements (not
    16-byte aligned) keep a's (b's rows of N = 16 are still copied); the padded products are right
    either way."""
    m, n, blocks = 24, 16, dict(BM=32, BN=32, BK=32)
    rng = np.random.default_rng(5)
    a, b = random_array(rng, (m, k), np.float16), random_array(rng, (k, n), np.float16)
    c = poisoned((32, 32), np.float32)
    args = (a, b, c, m, n, k)
    run_sim(padded_dot, (1,), *args, OTHER=other, **blocks)
    a_pad, b_pad = np.full((32, 32), other), np.full((32, 32), other)
    a_pad[:m, :k], b_pad[:k, :n] = a, b
    check_close(c, a_pad, b_pad, None, UNIT[np.float32])
    _, ptx, _ = lower_kernel(padded_dot, args, dict(blocks, OTHER=other))
    assert len(_copies(ptx)) == copied and "mma.sync.aligned.m16n8k16" in ptx
    assemble_all_arches(padded_dot, args, dict(blocks, OTHER=other))
