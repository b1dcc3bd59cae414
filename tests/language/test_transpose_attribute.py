"""`x.T` transposes a 2D block, as Triton's `tensor.T`; `@` is not an operator on blocks (Triton's
tensor has no `__matmul__`), and saying so points at `kl.dot`."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array


@kdsl.kernel
def transpose(x_ptr, out_ptr, M: kl.constexpr, N: kl.constexpr):
    rm, rn = kl.arange(0, M), kl.arange(0, N)
    x = kl.load(x_ptr + rm[:, None] * N + rn[None, :])
    kl.store(out_ptr + rn[:, None] * M + rm[None, :], x.T)
    kl.store(out_ptr + M * N + rm[:, None] * N + rn[None, :], x.T.T + 1)


@settings(max_examples=5, deadline=None)
@given(m=st.sampled_from([1, 2, 8, 32]), n=st.sampled_from([1, 4, 16]), seed=st.integers(0, 2**32 - 1))
def test_T_transposes_2d_blocks(target, m, n, seed):
    x = random_array(np.random.default_rng(seed), (m, n), np.float32)
    out = poisoned(2 * m * n, np.float32)
    transpose[(1,)](x, out, M=m, N=n, target=target)
    np.testing.assert_array_equal(out[:m * n].reshape(n, m), x.T)
    np.testing.assert_array_equal(out[m * n:].reshape(m, n), x + 1)


@kdsl.kernel
def misuse(x_ptr, CASE: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, 4)[:, None] * 4 + kl.arange(0, 4)[None, :])
    if CASE == "matmul":
        y = x @ x
    else:
        y = kl.reshape(x, 2, 2, 4).T
    kl.store(x_ptr, kl.sum(y, axis=None))


@pytest.mark.parametrize("case, message, line", [
    ("matmul", "use kl.dot(a, b) for a matrix product", "y = x @ x"),
    ("T3d", ".T transposes 2D blocks; this one has shape (2, 2, 4): use kl.permute(x, dims)",
     "y = kl.reshape(x, 2, 2, 4).T"),
])
def test_misuse_is_a_compilation_error_that_says_what_to_use(target, case, message, line):
    with pytest.raises(kdsl.CompilationError, match=re.escape(message)) as info:
        misuse[(1,)](np.ones(16, np.float32), CASE=case, target=target)
    assert line in str(info.value)
