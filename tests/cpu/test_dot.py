"""The CPU dot micro-kernel: both vector widths (AVX-512's and AVX2's), accumulating in place
across a K loop, against a float64 reference."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cpu import lower_dot


def matmul_kernel():
    """A fresh kernel object each time, so nothing compiled for another vector width is reused."""
    @kdsl.kernel
    def matmul(a_ptr, b_ptr, c_ptr, K, N: kl.constexpr, BM: kl.constexpr, BK: kl.constexpr):
        rm = kl.program_id(0) * BM + kl.arange(0, BM)
        rn = kl.arange(0, N)
        rk = kl.arange(0, BK)
        acc = kl.zeros((BM, N), dtype=kl.float32)
        for k in range(0, K, BK):
            a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
            b = kl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
            acc = kl.dot(a, b, acc)
        kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)
    return matmul


@pytest.mark.parametrize("bits", [512, 256])
@pytest.mark.parametrize("n", [16, 64, 128])
def test_micro_kernel_at_both_vector_widths(monkeypatch, bits, n):
    monkeypatch.setenv("KDSL_CACHE_DIR", "off")
    monkeypatch.setattr(lower_dot, "vector_bits", lambda: bits)
    rng = np.random.default_rng(n + bits)
    m, k = 64, 96
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)
    kernel = matmul_kernel()
    kernel[(m // 16,)](a, b, c, k, N=n, BM=16, BK=32)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    llvm = kernel.compile(a, b, c, k, N=n, BM=16, BK=32).asm["llvm"]  # as kdsl emitted it
    other = 256 if bits == 512 else 512
    assert f"<{bits // 32} x float>" in llvm and f"<{other // 32} x float>" not in llvm
