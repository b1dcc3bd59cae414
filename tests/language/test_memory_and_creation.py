"""Memory and creation (API.md "memory", "creation", "shape"): masked loads and stores, pointer
arithmetic, arange/zeros/full, indexing with None, broadcasting, expand_dims/broadcast_to."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=10, deadline=None)


@kdsl.kernel
def gather_scatter(src_ptr, dst_ptr, idx_ptr, keep_ptr, n, OTHER: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    inside = offs < n
    idx = kl.load(idx_ptr + offs, mask=inside, other=0)
    keep = kl.load(keep_ptr + offs, mask=inside, other=False)
    values = kl.load(src_ptr + idx, mask=keep, other=OTHER)
    kl.store(dst_ptr + offs, values, mask=inside)


@SETTINGS
@given(n=st.integers(1, 128), idx_dtype=st.sampled_from([np.int32, np.int64, np.uint16]),
       dtype=st.sampled_from([np.float32, np.int8, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_masked_gather_reads_other_where_masked(target, n, idx_dtype, dtype, seed):
    rng = np.random.default_rng(seed)
    src = random_array(rng, 300, dtype)
    idx = rng.integers(0, 300, n).astype(idx_dtype)
    keep = rng.random(n) < 0.6
    dst = poisoned(n, dtype)
    gather_scatter[(1,)](src, dst, idx, keep, n, OTHER=-5, BLOCK=128, target=target)
    np.testing.assert_array_equal(dst, np.where(keep, src[idx], -5).astype(dtype))


@kdsl.kernel
def reverse(src_ptr, dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    end = src_ptr + (n - 1)
    kl.store(dst_ptr + offs, kl.load(end - offs, mask=mask), mask=mask)


@SETTINGS
@given(n=st.integers(0, 500), seed=st.integers(0, 2**32 - 1))
def test_pointer_subtraction_and_scalar_pointer_arithmetic(target, n, seed):
    src = random_array(np.random.default_rng(seed), n, np.float32)
    dst = poisoned(n, np.float32)
    reverse[(kdsl.cdiv(n, 64),)](src, dst, n, BLOCK=64, target=target)
    np.testing.assert_array_equal(dst, src[::-1])


@kdsl.kernel
def masked_store_only(dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(dst_ptr + offs, offs * 2, mask=(offs % 3 == 0) & (offs < n))


def test_masked_off_stores_write_nothing(target):
    dst = poisoned(64, np.int32)
    masked_store_only[(1,)](dst, 50, BLOCK=64, target=target)
    expected = poisoned(64, np.int32)
    for i in range(0, 50, 3):
        expected[i] = 2 * i
    np.testing.assert_array_equal(dst, expected)


@kdsl.kernel
def creation(out_ptr, value, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.arange(0, BM)
    cols = kl.arange(3, 3 + BN)
    z = kl.zeros((BM, BN), kl.float32)
    f = kl.full((BM, 1), value, kl.float32)
    grid = rows[:, None] * 100 + cols[None, :] + z + f
    ones = kl.full_like(grid, 1) + kl.zeros_like(grid)
    offsets = kl.broadcast_to(kl.expand_dims(rows, 1), BM, BN) * BN + kl.arange(0, BN)[None, :]
    kl.store(out_ptr + offsets, grid + ones)


@pytest.mark.parametrize("bm, bn", [(1, 1), (4, 8), (16, 2)])
def test_creation_and_broadcasting(target, bm, bn):
    out = poisoned((bm, bn), np.float32)
    creation[(1,)](out, 0.5, BM=bm, BN=bn, target=target)
    expected = np.arange(bm)[:, None] * 100 + np.arange(3, 3 + bn)[None, :] + 0.5 + 1
    np.testing.assert_array_equal(out, expected.astype(np.float32))


@kdsl.kernel
def three_d(out_ptr, A: kl.constexpr, B: kl.constexpr, C: kl.constexpr):
    a = kl.arange(0, A)[:, None, None]
    b = kl.arange(0, B)[None, :, None]
    c = kl.arange(0, C)[None, None, :]
    kl.store(out_ptr + a * (B * C) + b * C + c, a * 10000 + b * 100 + c)


def test_three_dimensional_blocks(target):
    out = poisoned((2, 4, 8), np.int32)
    three_d[(1,)](out, A=2, B=4, C=8, target=target)
    a, b, c = np.meshgrid(np.arange(2), np.arange(4), np.arange(8), indexing="ij")
    np.testing.assert_array_equal(out, a * 10000 + b * 100 + c)


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
def test_2d_tile_copy_on_a_2d_grid(target, rows, cols, pad, bm, bn, dtype, seed):
    src = random_array(np.random.default_rng(seed), (rows, cols + pad), dtype)[:, :cols]
    dst = poisoned((rows, cols), dtype)
    grid = (kdsl.cdiv(rows, bm), kdsl.cdiv(cols, bn))
    copy_tile[grid](src, dst, rows, cols, cols + pad, cols, BM=bm, BN=bn, target=target)
    np.testing.assert_array_equal(dst, src)
