"""Tutorial kernels written with the shape ops: row sums of a flat load reshaped to rows, and a
row softmax computed on the transposed block, against numpy."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array


@kdsl.kernel
def row_sum(x_ptr, out_ptr, ROWS: kl.constexpr, COLS: kl.constexpr):
    pid = kl.program_id(0)
    flat = kl.load(x_ptr + pid * ROWS * COLS + kl.arange(0, ROWS * COLS))
    sums = kl.sum(flat.reshape(ROWS, COLS), axis=1)
    kl.store(out_ptr + pid * ROWS + kl.arange(0, ROWS), sums)


@pytest.mark.parametrize("rows, cols", [(1, 8), (4, 16), (16, 4)])
def test_row_sum_with_reshape(target, rows, cols):
    x = random_array(np.random.default_rng(rows * cols), (3 * rows, cols), np.float32)
    out = poisoned(3 * rows, np.float32)
    row_sum[(3,)](x, out, rows, cols, target=target)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-5, atol=1e-5)


@kdsl.kernel
def softmax_transposed(x_ptr, out_ptr, M: kl.constexpr, N: kl.constexpr):
    offs = kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    xt = kl.trans(kl.load(x_ptr + offs))  # (N, M): rows of x are columns here
    shifted = xt - kl.max(xt, axis=0, keep_dims=True)
    numerator = kl.exp(shifted)
    probabilities = numerator / kl.sum(numerator, axis=0, keep_dims=True)
    kl.store(out_ptr + offs, probabilities.permute(1, 0))


@pytest.mark.parametrize("m, n", [(4, 16), (8, 8), (1, 32)])
def test_softmax_with_trans(target, m, n):
    x = random_array(np.random.default_rng(m + n), (m, n), np.float32)
    out = poisoned((m, n), np.float32)
    softmax_transposed[(1,)](x, out, m, n, target=target)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
