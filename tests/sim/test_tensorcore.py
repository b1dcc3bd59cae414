"""mma.sync, ldmatrix, stmatrix, movmatrix and cp.async through inline PTX in CUDA C (nvcc)."""
import numpy as np
import pytest

import kdsl.sim as sim
from kdsl.sim.types import E4M3, E5M2, f32_to_bf16, f32_to_minifloat, minifloat_to_f32

rng = np.random.default_rng()

# Each warp of the CTA takes 16x8 tiles of C in turn and runs the K loop for each, loading the
# fragments straight from global memory by the ISA's fragment-layout formulas.
TILE_LOOP = r"""
#define FOR_EACH_TILE                                                                              \
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;               \
  for (int tile = warp; tile < (M / 16) * (N / 8); tile += blockDim.x >> 5) {                      \
    int m0 = (tile / (N / 8)) * 16, n0 = (tile % (N / 8)) * 8;
#define STORE_TILE                                                                                 \
    for (int e = 0; e < 4; e++) C[(m0 + g + 8 * (e >> 1)) * N + n0 + t * 2 + (e & 1)] = c[e];      \
  }
"""

K32_MACRO = TILE_LOOP + r"""
#define MMA_K32(NAME, T, ACC, INSTR, CONSTRAINT)                                                    \
extern "C" __global__ void NAME(const T* A, const T* B, ACC* C, int M, int N, int K) {             \
  FOR_EACH_TILE                                                                                    \
    ACC c[4] = {1, 2, 3, 4};                                                                       \
    for (int k0 = 0; k0 < K; k0 += 32) {                                                           \
      unsigned a[4] = {0, 0, 0, 0}, b[2] = {0, 0};                                                 \
      for (int i = 0; i < 16; i++)                                                                 \
        a[i / 4] |= (unsigned)(unsigned char)A[(m0 + g + 8 * ((i >> 2) & 1)) * K + k0 + t * 4 + (i & 3) + 16 * (i >> 3)] << (8 * (i % 4)); \
      for (int i = 0; i < 8; i++)                                                                  \
        b[i / 4] |= (unsigned)(unsigned char)B[(k0 + t * 4 + (i & 3) + 16 * (i >> 2)) * N + n0 + g] << (8 * (i % 4)); \
      asm volatile(INSTR " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                 \
                   : CONSTRAINT(c[0]), CONSTRAINT(c[1]), CONSTRAINT(c[2]), CONSTRAINT(c[3])        \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));            \
    }                                                                                              \
  STORE_TILE                                                                                       \
}
"""

TILED = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>
// One CTA of 4 warps computes C[128x128] = A[128xK] @ B, with B given transposed (Bt[128xK]).
// cp.async stages 128x32 tiles of A and Bt in shared memory; ldmatrix feeds mma.sync.
#define TILED_MMA(NAME, T, MMA)                                                                    \
extern "C" __global__ void NAME(const T* A, const T* Bt, float* C, int K) {                       \
  __shared__ __align__(16) T As[128 * 32];                                                         \
  __shared__ __align__(16) T Bs[128 * 32];                                                         \
  int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;                                         \
  float acc[2][16][4];                                                                             \
  for (int i = 0; i < 2; i++) for (int j = 0; j < 16; j++) for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f; \
  for (int k0 = 0; k0 < K; k0 += 32) {                                                             \
    for (int c = tid; c < 512; c += 128) {                                                         \
      int row = c >> 2, col = (c & 3) * 8;                                                         \
      unsigned sa = (unsigned)__cvta_generic_to_shared(&As[row * 32 + col]);                       \
      unsigned sb = (unsigned)__cvta_generic_to_shared(&Bs[row * 32 + col]);                       \
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(sa), "l"(&A[row * K + k0 + col])); \
      asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" :: "r"(sb), "l"(&Bt[row * K + k0 + col])); \
    }                                                                                              \
    asm volatile("cp.async.commit_group;");                                                        \
    asm volatile("cp.async.wait_group 0;");                                                        \
    __syncthreads();                                                                               \
    for (int kk = 0; kk < 32; kk += 16) {                                                          \
      unsigned a[2][4], b[16][2];                                                                  \
      for (int mi = 0; mi < 2; mi++) {                                                             \
        unsigned addr = (unsigned)__cvta_generic_to_shared(                                        \
            &As[(warp * 32 + mi * 16 + (lane % 16)) * 32 + kk + (lane / 16) * 8]);                 \
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"              \
                     : "=r"(a[mi][0]), "=r"(a[mi][1]), "=r"(a[mi][2]), "=r"(a[mi][3]) : "r"(addr)); \
      }                                                                                            \
      for (int ni = 0; ni < 16; ni++) {                                                            \
        unsigned addr = (unsigned)__cvta_generic_to_shared(                                        \
            &Bs[(ni * 8 + (lane % 8)) * 32 + kk + ((lane / 8) % 2) * 8]);                          \
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"                    \
                     : "=r"(b[ni][0]), "=r"(b[ni][1]) : "r"(addr));                                \
      }                                                                                            \
      for (int mi = 0; mi < 2; mi++) for (int ni = 0; ni < 16; ni++)                              \
        asm volatile(MMA " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                  \
                     : "+f"(acc[mi][ni][0]), "+f"(acc[mi][ni][1]), "+f"(acc[mi][ni][2]), "+f"(acc[mi][ni][3]) \
                     : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1])); \
    }                                                                                              \
    __syncthreads();                                                                               \
  }                                                                                                \
  int g = lane >> 2, t = lane & 3;                                                                 \
  for (int mi = 0; mi < 2; mi++) for (int ni = 0; ni < 16; ni++) for (int e = 0; e < 4; e++)      \
    C[(warp * 32 + mi * 16 + g + 8 * (e >> 1)) * 128 + ni * 8 + t * 2 + (e & 1)] = acc[mi][ni][e]; \
}
TILED_MMA(mma_f16, __half, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32")
TILED_MMA(mma_bf16, __nv_bfloat16, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")

"""+K32_MACRO+r"""
extern "C" __global__ void mma_tf32(const float* A, const float* B, float* C, int M, int N, int K) {
  FOR_EACH_TILE
    float c[4] = {0, 0, 0, 0};
    for (int k0 = 0; k0 < K; k0 += 8) {
      unsigned a[4], b[2];
      for (int i = 0; i < 4; i++) a[i] = __float_as_uint(A[(m0 + g + 8 * (i & 1)) * K + k0 + t + 4 * (i >> 1)]);
      for (int i = 0; i < 2; i++) b[i] = __float_as_uint(B[(k0 + t + 4 * i) * N + n0 + g]);
      asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                   : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
  STORE_TILE
}

MMA_K32(mma_s8, signed char, int, "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32", "+r")
MMA_K32(mma_u8, unsigned char, int, "mma.sync.aligned.m16n8k32.row.col.s32.u8.u8.s32", "+r")

// f16 accumulate, movmatrix and stmatrix on one 16x8 tile.
extern "C" __global__ void mma_f16acc(const __half* A, const __half* B, __half* C, __half* Ct) {  // A 16x16, B 16x8
  int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  unsigned a[4], b[2], c[2] = {0, 0};
  for (int i = 0; i < 8; i += 2) {
    int r = g + 8 * ((i >> 1) & 1), k = t * 2 + 8 * (i >> 2);
    a[i / 2] = __half_as_ushort(A[r * 16 + k]) | (unsigned)__half_as_ushort(A[r * 16 + k + 1]) << 16;
  }
  for (int i = 0; i < 4; i += 2) {
    int k = t * 2 + 8 * (i >> 1);
    b[i / 2] = __half_as_ushort(B[k * 8 + g]) | (unsigned)__half_as_ushort(B[(k + 1) * 8 + g]) << 16;
  }
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%0,%1};"
               : "+r"(c[0]), "+r"(c[1]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  __shared__ __align__(16) unsigned short S[16 * 8];
  unsigned tr;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(tr) : "r"(c[0]));
  unsigned addr = (unsigned)__cvta_generic_to_shared(&S[(lane % 16) * 8]);
  asm volatile("stmatrix.sync.aligned.m8n8.x2.shared.b16 [%0], {%1, %2};" :: "r"(addr), "r"(c[0]), "r"(c[1]));
  __syncwarp();
  for (int i = lane; i < 128; i += 32) C[i] = __ushort_as_half(S[i]);
  Ct[g * 8 + t * 2] = __ushort_as_half((unsigned short)(tr & 0xFFFF));
  Ct[g * 8 + t * 2 + 1] = __ushort_as_half((unsigned short)(tr >> 16));
}
"""

FP8 = K32_MACRO + r"""
MMA_K32(mma_e4m3, unsigned char, float, "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32", "+f")
MMA_K32(mma_e5m2, unsigned char, float, "mma.sync.aligned.m16n8k32.row.col.f32.e5m2.e5m2.f32", "+f")
"""


@pytest.fixture(scope="module")
def tc_ptx(compile_cuda):
    return compile_cuda(TILED)


def _tiled(tc_ptx, entry, a_bits, bt_bits, a_vals, b_vals):
    c = np.full((128, 128), np.nan, np.float32)
    sim.launch_ptx(tc_ptx, entry, (1, 1, 1), (128, 1, 1), [a_bits, bt_bits, c, ("s32", a_bits.shape[1])])
    np.testing.assert_allclose(c, a_vals @ b_vals, rtol=1e-5, atol=1e-4)


def test_tiled_f16_matmul(tc_ptx):
    a = rng.standard_normal((128, 64)).astype(np.float16)
    b = rng.standard_normal((64, 128)).astype(np.float16)
    _tiled(tc_ptx, "mma_f16", a, np.ascontiguousarray(b.T), a.astype(np.float64), b.astype(np.float64))


def test_tiled_bf16_matmul(tc_ptx):
    a = f32_to_bf16(rng.standard_normal((128, 64)).astype(np.float32))
    b = f32_to_bf16(rng.standard_normal((64, 128)).astype(np.float32))
    val = lambda x: (x.astype(np.uint32) << 16).view(np.float32).astype(np.float64)  # noqa: E731
    _tiled(tc_ptx, "mma_bf16", a, np.ascontiguousarray(b.T), val(a), val(b))


# The tiled kernels below: a CTA of 4 warps computes C (M x N) = A (M x K) @ B (K x N) + the tiles' initial values.
M, N, K_TF32, K_K32 = 64, 32, 48, 96


def _run_tiled(ptx, entry, a, b, c):
    m, k = a.shape
    sim.launch_ptx(ptx, entry, 1, 128, [a, b, c, ("s32", m), ("s32", b.shape[1]), ("s32", k)])


def _initial_accumulators(m, n):
    """The values {1, 2, 3, 4} each thread puts in its accumulator fragment, as a matrix."""
    tile = np.tile([1, 2], 4)[None, :] + np.where(np.arange(16) >= 8, 2, 0)[:, None]
    return np.tile(tile, (m // 16, n // 8))


def test_tiled_tf32_matmul_truncates_operands(tc_ptx):
    a, b = rng.standard_normal((M, K_TF32)).astype(np.float32), rng.standard_normal((K_TF32, N)).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    _run_tiled(tc_ptx, "mma_tf32", a, b, c)
    tf = lambda x: (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(c, tf(a) @ tf(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry,dtype", [("mma_s8", np.int8), ("mma_u8", np.uint8)])
def test_tiled_int8_matmul(tc_ptx, entry, dtype):
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max + 1, (M, K_K32)).astype(dtype)
    b = rng.integers(info.min, info.max + 1, (K_K32, N)).astype(dtype)
    c = np.full((M, N), -99, np.int32)
    _run_tiled(tc_ptx, entry, a, b, c)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64) + _initial_accumulators(M, N))


def test_f16_accumulate_movmatrix_stmatrix(tc_ptx):
    a, b = rng.standard_normal((16, 16)).astype(np.float16), rng.standard_normal((16, 8)).astype(np.float16)
    c, ct = np.full((16, 8), np.nan, np.float16), np.full((8, 8), np.nan, np.float16)
    sim.launch_ptx(tc_ptx, "mma_f16acc", 1, 32, [a, b, c, ct])
    expect = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(c, expect)
    np.testing.assert_array_equal(ct, expect[:8].T)


@pytest.mark.parametrize("entry,fmt", [("mma_e4m3", E4M3), ("mma_e5m2", E5M2)])
def test_tiled_fp8_matmul(compile_cuda, entry, fmt):
    ptx = compile_cuda(FP8, "sm_89")
    a = f32_to_minifloat(rng.standard_normal((M, K_K32)).astype(np.float32) * 4, fmt, True)
    b = f32_to_minifloat(rng.standard_normal((K_K32, N)).astype(np.float32), fmt, True)
    c = np.full((M, N), np.nan, np.float32)
    _run_tiled(ptx, entry, a, b, c)
    val = lambda x: minifloat_to_f32(x, fmt).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(c, val(a) @ val(b) + _initial_accumulators(M, N), rtol=1e-5, atol=1e-4)
