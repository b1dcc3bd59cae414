"""`reduce_with` and `scan` lowered for the GPU (`lower_combine`), on the PTX simulator: the conformance
suite's argmax/argmin (ties, NaN), kl.reduce with user functions (a non-associative one, tuples) and
scans (reverse, a non-commutative tuple scan), all equal to the reference's left folds, over shapes and
warp counts that spread the rows differently."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned, random_array
from tests.language.test_combine import (arg_kernel, arg_reference, fold, reduce_kernel, reduced_size,
                                         scan_kernel, scan_reference)

SETTINGS = settings(max_examples=4, deadline=None)
SHAPES = st.tuples(st.sampled_from([1, 2, 8, 32]), st.sampled_from([1, 4, 16]))
WARPS = st.sampled_from([1, 2, 4, 8])
SEEDS = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.int64])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([None, 0, 1]), left=st.booleans(), keep=st.booleans(),
       num_warps=WARPS, seed=SEEDS)
def test_argmax_argmin_ties_and_nan(largest, dtype, shape, axis, left, keep, num_warps, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x[rng.random(shape) < 0.3] = np.nan
        x[rng.random(shape) < 0.1] = -np.inf if largest else np.inf
    size = reduced_size(shape, axis)
    out = poisoned(size, np.int32)
    run_sim(arg_kernel, (1,), x, out, largest, axis, left, keep, False, *shape, num_warps=num_warps)
    np.testing.assert_array_equal(out, np.reshape(arg_reference(x, axis, largest, left), size))


@pytest.mark.parametrize("fn", ["max_abs", "squares", "tuple"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([None, 0, 1]), keep=st.booleans(), num_warps=WARPS, seed=SEEDS)
def test_reduce_with_user_functions_folds_left_in_index_order(fn, dtype, shape, axis, keep, num_warps, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    size = reduced_size(shape, axis)
    out, count = poisoned(size, dtype), poisoned(size, np.int32)
    run_sim(reduce_kernel, (1,), x, out, count, fn, axis, keep, *shape, num_warps=num_warps)
    with np.errstate(over="ignore"):
        if fn == "max_abs":
            expected = fold(lambda a, b: np.maximum(np.abs(a), np.abs(b)), x, axis)
        elif fn == "squares":  # acc + x * x is not associative: only a left fold gives this
            expected = fold(lambda a, b: a + b * b, x * x, axis)
        else:
            expected = fold(np.maximum, x, axis)
            np.testing.assert_array_equal(count, np.full(size, x.size // size))
    np.testing.assert_array_equal(out, np.reshape(expected, size).astype(dtype))


@pytest.mark.parametrize("fn", ["cumsum", "cumprod", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int32, np.float16])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([0, 1]), reverse=st.booleans(), num_warps=WARPS, seed=SEEDS)
def test_scans_equal_the_sequential_reference(fn, dtype, shape, axis, reverse, num_warps, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    out_dtype = np.dtype(np.int32 if fn == "cumsum" and dtype == np.int8 else dtype)
    out = poisoned(shape, out_dtype)
    # distinct arrays: the simulator copies every argument back, the unused second output too
    run_sim(scan_kernel, (1,), x, x.copy(), out, poisoned(shape, out_dtype), fn, axis, reverse, *shape,
            num_warps=num_warps)
    combine = {"cumsum": np.add, "cumprod": np.multiply, "max": np.fmax}[fn]
    with np.errstate(over="ignore", invalid="ignore"):
        expected = scan_reference(combine, x.astype(out_dtype), axis, reverse)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("num_warps", [1, 4])
def test_non_commutative_tuple_scan(reverse, num_warps):
    rng = np.random.default_rng(3)
    a, b = (rng.integers(-3, 4, (4, 8)).astype(np.int32) for _ in range(2))
    out_a, out_b = poisoned((4, 8), np.int32), poisoned((4, 8), np.int32)
    run_sim(scan_kernel, (1,), a, b, out_a, out_b, "affine", 1, reverse, 4, 8, num_warps=num_warps)
    expected_a, expected_b = scan_reference(lambda p, q: p * q, a, 1, reverse), np.empty_like(b)
    acc = None
    for j in (range(7, -1, -1) if reverse else range(8)):
        acc = b[:, j] if acc is None else acc * a[:, j] + b[:, j]
        expected_b[:, j] = acc
    np.testing.assert_array_equal(out_a, expected_a)
    np.testing.assert_array_equal(out_b, expected_b)


def test_reduce_with_and_scan_ptx_assembles():
    x = np.zeros((8, 16), np.float32)
    i = np.zeros(8, np.int32)
    assemble_all_arches(arg_kernel, (x, i), dict(LARGEST=True, AXIS=1, LEFT=True, KEEP=False, METHOD=False,
                                                 M=8, N=16))
    assemble_all_arches(scan_kernel, (x, x, x, x), dict(FN="affine", AXIS=0, REVERSE=True, M=8, N=16))
