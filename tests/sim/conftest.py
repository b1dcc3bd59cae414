"""Shared fixtures: CUDA C compiled to PTX once per session with nvcc."""
from __future__ import annotations

import shutil
import subprocess

import pytest

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on the PATH")

KERNELS = r"""
__device__ __noinline__ float poly(float x, int k) { if (k & 1) return x * x + k; return x - k; }
__device__ __noinline__ void twice(float* p, float v) { p[0] = v; p[1] = 2 * v; }
extern "C" __global__ void calls(const float* x, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { float v = poly(x[i], i); twice(out + 2 * i, v); }
}
extern "C" __global__ void warp_ops(const int* in, int* out) {
  // out: 10 ints per thread
  int lane = threadIdx.x & 31, v = in[threadIdx.x];
  int* o = out + 10 * threadIdx.x;
  o[0] = __shfl_up_sync(0xffffffff, v, 3, 16);
  o[1] = __shfl_down_sync(0xffffffff, v, 5, 8);
  o[2] = __shfl_sync(0xffffffff, v, (lane * 7) & 31, 32);
  o[3] = __ballot_sync(0xffffffff, v & 1);
  o[4] = __all_sync(0xffffffff, v > -1000) + 2 * __any_sync(0xffffffff, v > 900) + 4 * __uni_sync(0xffffffff, v & 1);
  o[5] = __reduce_add_sync(0xffffffff, v);
  o[6] = __reduce_max_sync(0xffffffff, v);
  o[7] = __match_any_sync(0xffffffff, v & 3);
  if (v & 1) o[8] = __activemask(); else o[8] = -1;
  o[9] = __reduce_xor_sync(0xffffffff, (unsigned)v);
}
extern "C" __global__ void local_and_dynamic_shared(const int* in, int* out, int n) {
  extern __shared__ int dyn[];
  int t = threadIdx.x;
  int buf[16];
  for (int k = 0; k < 16; k++) buf[k] = in[t] * k;
  dyn[t] = buf[in[t] & 15];
  __syncthreads();
  out[t] = dyn[(t + 1) % n] + atomicCAS(&dyn[0], dyn[0], 7) * 0;
}
extern "C" __global__ void shared_atomics(const int* in, int* out) {
  __shared__ int s[4];
  if (threadIdx.x < 4) s[threadIdx.x] = threadIdx.x == 1 ? 1 << 30 : 0;
  __syncthreads();
  int v = in[threadIdx.x];
  atomicMax(&s[0], v);
  atomicMin(&s[1], v);
  atomicXor(&s[2], v);
  int old = atomicAdd(&s[3], 1);
  __syncthreads();
  out[threadIdx.x] = old;
  if (threadIdx.x < 4) out[blockDim.x + threadIdx.x] = s[threadIdx.x];
}
extern "C" __global__ void bit_tricks(const int* in, int* out) {
  extern __shared__ int sm[];
  int t = threadIdx.x, v = in[t];
  sm[t] = v;
  out[4 * t] = __ffs(v);
  out[4 * t + 1] = __dp4a(v, in[(t + 1) % blockDim.x], 7);
  out[4 * t + 2] = __dp4a((unsigned)v, 0x01020304u, 5u);
  out[4 * t + 3] = __isShared(&sm[t]) + 2 * __isGlobal(in + t) + 4 * __isShared(in);
}
extern "C" __global__ void saxpy(const float* x, const float* y, float* out, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a * x[i] + y[i];
}
extern "C" __global__ void warp_sum(const float* x, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? x[i] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  __shared__ float s[32];
  if ((threadIdx.x & 31) == 0) s[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) { float t = 0; for (int k = 0; k < blockDim.x / 32; k++) t += s[k]; atomicAdd(out, t); }
}
extern "C" __global__ void transpose(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[32][33];
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  if (x < cols && y < rows) tile[threadIdx.y][threadIdx.x] = in[y * cols + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x; y = blockIdx.x * 32 + threadIdx.y;
  if (x < rows && y < cols) out[y * rows + x] = tile[threadIdx.x][threadIdx.y];
}
extern "C" __global__ void histogram(const unsigned* in, unsigned* bins, int n, int nbins) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) atomicAdd(&bins[in[i] % nbins], 1u);
}
extern "C" __global__ void collatz(const int* in, int* steps, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  long long v = in[i]; int s = 0;
  while (v != 1) { if (v & 1) v = 3 * v + 1; else v >>= 1; s++; }
  steps[i] = s;
}
extern "C" __global__ void mixed(const int* a, const double* d, long long* o64, float* of, unsigned short* oh, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int x = a[i];
  o64[i] = (long long)x * 123456789LL / 7 + (x % 13) - (unsigned)x / 3u;
  of[i] = (float)(d[i] * 0.5 + (double)(x >> 3));
  oh[i] = __popc(x) + __clz(x) * 64 + (__brev(x) & 0xF) * 4096;
}
"""


@pytest.fixture(scope="session")
def compile_cuda(tmp_path_factory):
    """`compile_cuda(source, arch)` → PTX text; each distinct source is compiled once per session."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on the PATH")
    d = tmp_path_factory.mktemp("nvcc")
    cache: dict[tuple[str, str], str] = {}

    def compile_(source: str, arch: str = "sm_80") -> str:
        key = (source, arch)
        if key not in cache:
            cu, ptx = d / f"k{len(cache)}.cu", d / f"k{len(cache)}.ptx"
            cu.write_text(source)
            subprocess.run(["nvcc", f"-arch={arch}", "-ptx", str(cu), "-o", str(ptx)], check=True)
            cache[key] = ptx.read_text()
        return cache[key]
    return compile_


@pytest.fixture(scope="session")
def cuda_ptx(compile_cuda) -> str:
    """The test kernels above, compiled once per session."""
    return compile_cuda(KERNELS)
