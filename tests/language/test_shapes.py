"""Shape operations (API.md "shape"): reshape/view/ravel, trans/permute, join/split, as methods too,
checked against numpy on fresh random blocks, and the errors for bad shapes and dims."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=6, deadline=None)
DTYPES = [np.float32, np.float16, np.int8, np.uint32, np.int64, np.float64]
POW2 = st.sampled_from([1, 2, 4, 8])


@kdsl.kernel
def load_3d(x_ptr, A: kl.constexpr, B: kl.constexpr, C: kl.constexpr):
    offs = kl.arange(0, A)[:, None, None] * (B * C) + kl.arange(0, B)[None, :, None] * C + kl.arange(0, C)[None, None, :]
    return kl.load(x_ptr + offs)


@kdsl.kernel
def reshape_kernel(x_ptr, out_ptr, A: kl.constexpr, B: kl.constexpr, C: kl.constexpr,
                   P: kl.constexpr, Q: kl.constexpr, METHOD: kl.constexpr):
    x = load_3d(x_ptr, A, B, C)
    y = x.reshape(P, Q) if METHOD else kl.reshape(x, (P, Q))
    kl.store(out_ptr + kl.arange(0, P)[:, None] * Q + kl.arange(0, Q)[None, :], y)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(shape=st.tuples(POW2, POW2, POW2), split=st.integers(0, 6), method=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_reshape(target, dtype, shape, split, method, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    total = x.size
    p = 2 ** min(split, total.bit_length() - 1)
    out = poisoned((p, total // p), dtype)
    reshape_kernel[(1,)](x, out, *shape, p, total // p, method, target=target)
    np.testing.assert_array_equal(out, x.reshape(p, total // p))


@kdsl.kernel
def permute_kernel(x_ptr, out_ptr, A: kl.constexpr, B: kl.constexpr, C: kl.constexpr,
                   D0: kl.constexpr, D1: kl.constexpr, D2: kl.constexpr, HOW: kl.constexpr):
    x = load_3d(x_ptr, A, B, C)
    if HOW == "permute":
        y = kl.permute(x, D0, D1, D2)
    elif HOW == "trans":
        y = kl.trans(x, (D0, D1, D2))
    else:
        y = x.permute(D0, D1, D2)
    kl.store(out_ptr + kl.arange(0, A * B * C), kl.ravel(y))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(shape=st.tuples(POW2, POW2, POW2), perm=st.permutations([0, 1, 2]),
       how=st.sampled_from(["permute", "trans", "method"]), seed=st.integers(0, 2**32 - 1))
def test_permute(target, dtype, shape, perm, how, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    out = poisoned(x.size, dtype)
    permute_kernel[(1,)](x, out, *shape, *perm, how, target=target)
    np.testing.assert_array_equal(out, np.transpose(x, perm).ravel())


@kdsl.kernel
def trans_2d(x_ptr, out_ptr, M: kl.constexpr, N: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :])
    kl.store(out_ptr + kl.arange(0, N)[:, None] * M + kl.arange(0, M)[None, :], kl.trans(x) + x.trans() * 0)


def test_trans_2d_default(target):
    x = random_array(np.random.default_rng(1), (4, 16), np.int32)
    out = poisoned((16, 4), np.int32)
    trans_2d[(1,)](x, out, 4, 16, target=target)
    np.testing.assert_array_equal(out, x.T)


@kdsl.kernel
def join_split(x_ptr, y_ptr, out_ptr, a_ptr, b_ptr, M: kl.constexpr, N: kl.constexpr):
    offs = kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    x = kl.load(x_ptr + offs)
    y = kl.load(y_ptr + offs)
    j = kl.join(x, y)
    kl.store(out_ptr + kl.arange(0, M * N * 2), kl.reshape(j, M * N * 2))
    a, b = kl.split(kl.permute(kl.join(y, x), 0, 1, 2))
    kl.store(a_ptr + offs, a)
    kl.store(b_ptr + offs, b)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(shape=st.tuples(POW2, POW2), seed=st.integers(0, 2**32 - 1))
def test_join_split(target, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    out, a, b = poisoned(x.size * 2, dtype), poisoned(shape, dtype), poisoned(shape, dtype)
    join_split[(1,)](x, y, out, a, b, *shape, target=target)
    np.testing.assert_array_equal(out, np.stack([x, y], axis=-1).ravel())
    np.testing.assert_array_equal(a, y)
    np.testing.assert_array_equal(b, x)


@kdsl.kernel
def join_scalars(out_ptr, v):
    a, b = kl.split(kl.join(v, 2 * v))
    kl.store(out_ptr + kl.arange(0, 2), kl.join(b, a))


def test_join_split_scalars(target):
    out = poisoned(2, np.int32)
    join_scalars[(1,)](out, 5, target=target)
    np.testing.assert_array_equal(out, [10, 5])


@kdsl.kernel
def bad_shape(x_ptr, WHAT: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, 8)[:, None] * 4 + kl.arange(0, 4)[None, :])
    if WHAT == "count":
        x = kl.reshape(x, 4, 4)
    elif WHAT == "pow2":
        x = kl.reshape(x, 3, 8)
    elif WHAT == "dims":
        x = kl.permute(x, 0, 0)
    elif WHAT == "trans3":
        x = kl.trans(x[:, :, None])
    elif WHAT == "split":
        x, y = kl.split(x)
    else:
        x = kl.join(x, x.to(kl.float16))
    kl.store(x_ptr, kl.sum(kl.ravel(x)))


@pytest.mark.parametrize("what, message", [
    ("count", r"cannot turn a block of shape \(8, 4\) \(32 elements\) into shape \(4, 4\)"),
    ("pow2", "must be a power of two"),
    ("dims", r"not a permutation of the 2 dimensions"),
    ("trans3", "transposes 2D blocks"),
    ("split", "last dimension is 2"),
    ("join", "one type"),
])
def test_shape_errors(target, what, message):
    x = np.zeros(32, np.float32)
    with pytest.raises(kdsl.CompilationError, match=message):
        bad_shape[(1,)](x, WHAT=what, target=target)
