"""exp and exp2 on f32 as straight-line IR: within 1 ulp of the correctly rounded result, vectorised."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cpu import vector_math
from kdsl.backend.cpu.program import compile_cpu
from kdsl.ir import parse_module, verify_module
from tests.cpu.helpers import elementwise_kernel
from tests.helpers import special_values


@kdsl.kernel
def exp_kernel(x_ptr, out_ptr, n, BASE2: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, kl.exp2(x) if BASE2 else kl.exp(x), mask=mask)


def ulps_from_correctly_rounded(got, x, base2):
    with np.errstate(over="ignore"):
        exact = np.exp2(x.astype(np.float64)) if base2 else np.exp(x.astype(np.float64))
        rounded = exact.astype(np.float32)
    finite = np.isfinite(rounded) & np.isfinite(got)
    assert np.array_equal(np.isnan(got), np.isnan(rounded))
    assert np.array_equal(got[~finite & ~np.isnan(got)], rounded[~finite & ~np.isnan(got)])
    a = got[finite].view(np.int32).astype(np.int64)
    b = rounded[finite].view(np.int32).astype(np.int64)
    return np.abs(a - b)


def run_exp(x, base2, scaling, monkeypatch):
    """exp (or exp2) of `x` by a kernel compiled here: with the host's scaling by 2**n (`ldexp`
    with AVX-512) or with the two multiplications hosts without it get."""
    if scaling == "two multiplications":
        monkeypatch.setattr(vector_math, "vector_bits", lambda: 256)
    module = parse_module(elementwise_kernel("exp2" if base2 else "exp", ["f32"], "f32", block=4096))
    verify_module(module)
    out = np.full_like(x, np.nan)
    compile_cpu(module).launch([x.ctypes.data, out.ctypes.data, x.size], (kdsl.cdiv(x.size, 4096), 1, 1), [x, out, x.size])
    return out


@pytest.mark.parametrize("scaling", ["host", "two multiplications"])
@pytest.mark.parametrize("base2", [False, True])
def test_within_one_ulp_everywhere(base2, scaling, monkeypatch):
    rng = np.random.default_rng()
    low, high = (-151.0, 129.0) if base2 else (-105.0, 90.0)
    x = np.concatenate([rng.uniform(low, high, 1 << 21), rng.uniform(-1, 1, 1 << 18),
                        rng.standard_normal(1 << 18) * 1e-6, special_values(np.float32),
                        np.array([low, high, -0.0, 1e-45, 88.72283, 88.72284, -103.972, -87.33655, 127.99999,
                                  -149.5, -126.0, -125.9], np.float32)]).astype(np.float32)
    assert ulps_from_correctly_rounded(run_exp(x, base2, scaling, monkeypatch), x, base2).max() <= 1


def test_exp_loop_is_vectorised():
    x = np.ones(64, np.float32)
    llvm = exp_kernel.compile(x, x, 64, BASE2=False, BLOCK=1024).asm["llvm_optimized"]
    assert "x float>" in llvm and "expf" not in llvm
