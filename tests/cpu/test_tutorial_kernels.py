"""The core kernels, written as a Triton user writes them, against numpy on fresh random inputs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=25, deadline=None)


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=0.0)
    kl.store(out_ptr + offs, x + y, mask=mask)


@SETTINGS
@given(n=st.integers(0, 5000), dtype=st.sampled_from([np.float32, np.float16, np.int32]),
       block=st.sampled_from([16, 128, 1024]), seed=st.integers(0, 2**32 - 1))
def test_vector_add(n, dtype, block, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, n, dtype), random_array(rng, n, dtype)
    out = poisoned(n, dtype)
    add[(kdsl.cdiv(n, block),)](x, y, out, n, BLOCK=block)
    np.testing.assert_array_equal(out, x + y)


@kdsl.kernel
def softmax(out_ptr, in_ptr, in_stride, out_stride, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    offs = kl.arange(0, BLOCK)
    mask = offs < n_cols
    x = kl.load(in_ptr + row * in_stride + offs, mask=mask, other=-float("inf"))
    x = x - kl.max(x, axis=0)
    num = kl.exp(x)
    kl.store(out_ptr + row * out_stride + offs, num / kl.sum(num, axis=0), mask=mask)


@SETTINGS
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), pad=st.integers(0, 7), seed=st.integers(0, 2**32 - 1))
def test_softmax_on_strided_rows(rows, cols, pad, seed):
    rng = np.random.default_rng(seed)
    storage = random_array(rng, (rows, cols + pad), np.float32)
    x = storage[:, :cols]
    out = poisoned((rows, cols), np.float32)
    softmax[(rows,)](out, x, x.strides[0] // 4, out.strides[0] // 4, cols, BLOCK=kdsl.next_power_of_2(cols))
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


@kdsl.kernel
def layer_norm(x_ptr, w_ptr, b_ptr, y_ptr, stride, n_cols, eps, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(kl.float32)
    mean = kl.sum(x, axis=0) / n_cols
    xc = kl.where(mask, x - mean, 0.0)
    var = kl.sum(xc * xc, axis=0) / n_cols
    rstd = 1 / kl.sqrt(var + eps)
    w = kl.load(w_ptr + cols, mask=mask)
    b = kl.load(b_ptr + cols, mask=mask)
    kl.store(y_ptr + row * stride + cols, xc * rstd * w + b, mask=mask)


@SETTINGS
@given(rows=st.integers(1, 20), cols=st.integers(1, 500), dtype=st.sampled_from([np.float32, np.float16]),
       eps=st.sampled_from([1e-5, 1e-2]), seed=st.integers(0, 2**32 - 1))
def test_layer_norm_forward(rows, cols, dtype, eps, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (rows, cols), dtype)
    w, b = random_array(rng, cols, dtype), random_array(rng, cols, dtype)
    y = poisoned((rows, cols), dtype)
    layer_norm[(rows,)](x, w, b, y, cols, cols, eps, BLOCK=kdsl.next_power_of_2(cols))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    ref = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(axis=1, keepdims=True) + np.float32(eps)) * w + b
    tol = 2e-2 if dtype == np.float16 else 1e-4
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=tol, atol=tol)


@kdsl.kernel
def copy_tile(src_ptr, dst_ptr, n_rows, n_cols, src_stride, dst_stride, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.program_id(0) * BM + kl.arange(0, BM)
    cols = kl.program_id(1) * BN + kl.arange(0, BN)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    tile = kl.load(src_ptr + rows[:, None] * src_stride + cols[None, :], mask=mask)
    kl.store(dst_ptr + rows[:, None] * dst_stride + cols[None, :], tile, mask=mask)


@SETTINGS
@given(rows=st.integers(0, 70), cols=st.integers(0, 70), pad=st.integers(0, 5), bm=st.sampled_from([1, 8, 32]),
       bn=st.sampled_from([4, 16]), dtype=st.sampled_from([np.float32, np.int16, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_2d_tile_copy(rows, cols, pad, bm, bn, dtype, seed):
    rng = np.random.default_rng(seed)
    src = random_array(rng, (rows, cols + pad), dtype)[:, :cols]
    dst = poisoned((rows, cols), dtype)
    grid = (kdsl.cdiv(rows, bm), kdsl.cdiv(cols, bn))
    copy_tile[grid](src, dst, rows, cols, cols + pad, cols, BM=bm, BN=bn)
    np.testing.assert_array_equal(dst, src)


@kdsl.kernel
def row_sums(x_ptr, out_ptr, n_cols, stride, BLOCK_K: kl.constexpr):
    row = kl.program_id(0)
    acc = kl.zeros((BLOCK_K,), kl.float32)
    for k in range(0, n_cols, BLOCK_K):
        offs = k + kl.arange(0, BLOCK_K)
        acc += kl.load(x_ptr + row * stride + offs, mask=offs < n_cols, other=0.0).to(kl.float32)
    kl.store(out_ptr + row, kl.sum(acc, axis=0))


@SETTINGS
@given(rows=st.integers(1, 16), cols=st.integers(0, 600), block=st.sampled_from([8, 64, 256]),
       dtype=st.sampled_from([np.float32, np.float16]), seed=st.integers(0, 2**32 - 1))
def test_loop_carrying_a_block_accumulator(rows, cols, block, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (rows, cols), dtype)
    out = poisoned(rows, np.float32)
    row_sums[(rows,)](x, out, cols, max(cols, 1), BLOCK_K=block)
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), rtol=1e-4, atol=1e-3)


def test_vector_add_on_torch_tensors():
    torch = pytest.importorskip("torch")
    x = torch.randn(3000)
    y = torch.randn(3000)
    out = torch.full_like(x, float("nan"))
    add[(kdsl.cdiv(3000, 256),)](x, y, out, 3000, BLOCK=256)
    assert torch.equal(out, x + y)
