"""Triton 3.9 as a second, independent PTX producer (skipped without triton: `pip install -e .[sim-triton]`)."""
import numpy as np
import pytest

triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

import kdsl.sim as sim  # noqa: E402

rng = np.random.default_rng()


def compile_ptx(fn, signature, constexprs, num_warps=4):
    src = triton.compiler.ASTSource(fn, signature, constexprs)
    target = triton.backends.compiler.GPUTarget("cuda", 80, 32)
    k = triton.compile(src, target=target, options={"num_warps": num_warps})
    return k.asm["ptx"], k.metadata.name, k.metadata.shared


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def softmax_kernel(x_ptr, out_ptr, stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=-float("inf"))
    x = x - tl.max(x, axis=0)
    e = tl.exp(x)
    tl.store(out_ptr + row * stride + cols, e / tl.sum(e, axis=0), mask=cols < n_cols)


@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
    rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
    a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b))


def test_vector_add():
    ptx, name, shared = compile_ptx(add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32",
                                                 "n": "i32"}, {"BLOCK": 256})
    n = 1000
    x, y = rng.random(n, np.float32), rng.random(n, np.float32)
    out = np.full(n, np.nan, np.float32)
    sim.launch_ptx(ptx, name, (4, 1, 1), (128, 1, 1), [x, y, out, ("s32", n), None, None], shared)
    np.testing.assert_array_equal(out, x + y)


def test_row_softmax():
    ptx, name, shared = compile_ptx(softmax_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "stride": "i32",
                                                     "n_cols": "i32"}, {"BLOCK": 128})
    rows, cols = 5, 100
    x = rng.standard_normal((rows, 128)).astype(np.float32)
    out = np.full_like(x, np.nan)
    sim.launch_ptx(ptx, name, (rows, 1, 1), (128, 1, 1), [x, out, ("s32", 128), ("s32", cols), None, None], shared)
    e = np.exp(x[:, :cols] - x[:, :cols].max(axis=1, keepdims=True))
    np.testing.assert_allclose(out[:, :cols], e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert np.isnan(out[:, cols:]).all()


def test_small_dot_fp16():
    ptx, name, shared = compile_ptx(dot_kernel, {"a_ptr": "*fp16", "b_ptr": "*fp16", "c_ptr": "*fp32"},
                                    {"M": 32, "N": 32, "K": 32})
    a = rng.standard_normal((32, 32)).astype(np.float16)
    b = rng.standard_normal((32, 32)).astype(np.float16)
    c = np.full((32, 32), np.nan, np.float32)
    sim.launch_ptx(ptx, name, (1, 1, 1), (128, 1, 1), [a, b, c, None, None], shared)
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-2, atol=1e-2)


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc += tl.dot(a, b)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.float16))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_pipelined_matmul(dtype):
    """num_stages=3 makes Triton emit a cp.async pipeline around ldmatrix/mma."""
    sig = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": "*fp16", "M": "i32", "N": "i32", "K": "i32"}
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(6)}  # as Triton's launcher specialises
    src = triton.compiler.ASTSource(matmul_kernel, sig, {"BM": 64, "BN": 64, "BK": 32}, aligned)
    k = triton.compile(src, target=triton.backends.compiler.GPUTarget("cuda", 80, 32),
                       options={"num_warps": 4, "num_stages": 3})
    ptx = k.asm["ptx"]
    assert "cp.async" in ptx and "mma.sync" in ptx and "ldmatrix" in ptx
    M, N, K = 64, 128, 128
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    if dtype == "fp16":
        a_in, b_in = a.astype(np.float16), b.astype(np.float16)
        a_val, b_val = a_in.astype(np.float64), b_in.astype(np.float64)
    else:
        from kdsl.sim.types import bf16_to_f32, f32_to_bf16
        a_in, b_in = f32_to_bf16(a), f32_to_bf16(b)
        a_val, b_val = bf16_to_f32(a_in).astype(np.float64), bf16_to_f32(b_in).astype(np.float64)
    c = np.full((M, N), np.nan, np.float16)
    sim.launch_ptx(ptx, k.metadata.name, (M // 64, N // 64, 1), (128, 1, 1),
                   [a_in, b_in, c, ("s32", M), ("s32", N), ("s32", K), None, None], k.metadata.shared)
    np.testing.assert_allclose(c.astype(np.float64), a_val @ b_val, rtol=2e-3, atol=2e-2)
