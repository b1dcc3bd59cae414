"""Reductions and scans with a combine function (API.md "reductions"): argmax/argmin (ties, NaN),
kl.reduce and kl.associative_scan with user @kdsl.kernel functions (single and tuple inputs),
cumsum/cumprod along every axis and in reverse, checked against numpy on fresh random blocks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=4, deadline=None)
SHAPES = st.tuples(st.sampled_from([1, 2, 8]), st.sampled_from([1, 4, 16]))
SEEDS = st.integers(0, 2**32 - 1)


@kdsl.kernel
def load_2d(x_ptr, M: kl.constexpr, N: kl.constexpr):
    return kl.load(x_ptr + kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :])


@kdsl.kernel
def store_reduced(out_ptr, r, AXIS: kl.constexpr, KEEP: kl.constexpr, SIZE: kl.constexpr):
    if AXIS is None and not KEEP:
        kl.store(out_ptr, r)
    else:
        kl.store(out_ptr + kl.arange(0, SIZE), kl.reshape(r, SIZE))


def reduced_size(shape, axis):
    return 1 if axis is None else shape[1] if axis in (0, -2) else shape[0]


# argmax / argmin ---------------------------------------------------------------

@kdsl.kernel
def arg_kernel(x_ptr, out_ptr, LARGEST: kl.constexpr, AXIS: kl.constexpr, LEFT: kl.constexpr,
               KEEP: kl.constexpr, METHOD: kl.constexpr, M: kl.constexpr, N: kl.constexpr):
    x = load_2d(x_ptr, M, N)
    if METHOD:
        r = x.argmax(AXIS, LEFT, KEEP) if LARGEST else x.argmin(AXIS, tie_break_left=LEFT, keep_dims=KEEP)
    elif LARGEST:
        r = kl.argmax(x, AXIS, tie_break_left=LEFT, keep_dims=KEEP)
    else:
        r = kl.argmin(x, axis=AXIS, tie_break_left=LEFT, keep_dims=KEEP)
    store_reduced(out_ptr, r, AXIS, KEEP, 1 if AXIS is None else N if AXIS == 0 or AXIS == -2 else M)


def arg_reference(x, axis, largest, left):
    """NaN ignored (all NaN gives 0), ties to the lowest index (the highest when not `left`)."""
    if axis is None:
        x, axis = x.ravel(), 0
    best = (np.fmax if largest else np.fmin).reduce(x, axis=axis, keepdims=True)
    hit = x == best
    if not left:
        hit = np.flip(hit, axis)
    index = np.argmax(hit, axis=axis)
    if not left:
        index = x.shape[axis] - 1 - index
    return np.where(hit.any(axis=axis), index, 0).astype(np.int32)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.uint16, np.int64])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([None, 0, 1, -1]), left=st.booleans(), keep=st.booleans(),
       method=st.booleans(), seed=SEEDS)
def test_argmax_argmin(target, largest, dtype, shape, axis, left, keep, method, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4 if np.dtype(dtype).kind != "u" else 7, shape).astype(dtype)  # small range: ties
    if np.dtype(dtype).kind == "f":
        x[rng.random(shape) < 0.3] = np.nan
        x[rng.random(shape) < 0.1] = -np.inf if largest else np.inf
    size = reduced_size(shape, axis)
    out = poisoned(size, np.int32)
    arg_kernel[(1,)](x, out, largest, axis, left, keep, method, *shape, target=target)
    np.testing.assert_array_equal(out, np.reshape(arg_reference(x, axis, largest, left), size))


def test_argmax_flat_index_and_keep_dims(target):
    x = random_array(np.random.default_rng(7), (8, 16), np.float32)
    out = poisoned(1, np.int32)
    arg_kernel[(1,)](x, out, True, None, True, False, False, 8, 16, target=target)
    assert out[0] == np.argmax(x)


# kl.reduce with a user combine function ----------------------------------------

@kdsl.kernel
def max_abs(a, b):
    return kl.maximum(kl.abs(a), kl.abs(b))


@kdsl.kernel
def add_squares(acc, x):
    return acc + x * x


@kdsl.kernel
def max_with_count(value_a, count_a, value_b, count_b):
    """The larger value and how many elements were combined: a tuple reduction."""
    return kl.maximum(value_a, value_b), count_a + count_b


@kdsl.kernel
def reduce_kernel(x_ptr, out_ptr, count_ptr, FN: kl.constexpr, AXIS: kl.constexpr, KEEP: kl.constexpr,
                  M: kl.constexpr, N: kl.constexpr):
    x = load_2d(x_ptr, M, N)
    SIZE: kl.constexpr = 1 if AXIS is None else N if AXIS == 0 else M
    if FN == "max_abs":
        r = kl.reduce(x, AXIS, max_abs, keep_dims=KEEP)
    elif FN == "squares":
        r = (x * x).reduce(AXIS, add_squares, KEEP)
    else:
        r, count = kl.reduce((x, kl.full((M, N), 1, kl.int32)), AXIS, max_with_count, keep_dims=KEEP)
        store_reduced(count_ptr, count, AXIS, KEEP, SIZE)
    store_reduced(out_ptr, r, AXIS, KEEP, SIZE)


def fold(fn, x, axis):
    """The left fold of `fn` along `axis` in index order, in numpy."""
    if axis is None:
        x, axis = x.ravel(), 0
    x = np.moveaxis(x, axis, 0)
    acc = x[0]
    for row in x[1:]:
        acc = fn(acc, row)
    return acc


@pytest.mark.parametrize("fn", ["max_abs", "squares", "tuple"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([None, 0, 1]), keep=st.booleans(), seed=SEEDS)
def test_reduce_user_function(target, fn, dtype, shape, axis, keep, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    size = reduced_size(shape, axis)
    out, count = poisoned(size, dtype), poisoned(size, np.int32)
    reduce_kernel[(1,)](x, out, count, fn, axis, keep, *shape, target=target)
    with np.errstate(over="ignore"):
        if fn == "max_abs":
            expected = fold(lambda a, b: np.maximum(np.abs(a), np.abs(b)), x, axis)
        elif fn == "squares":
            xx = x * x
            expected = fold(lambda a, b: a + b * b, xx, axis)
        else:
            expected = fold(np.maximum, x, axis)
            np.testing.assert_array_equal(count, np.full(size, x.size // size))
    np.testing.assert_array_equal(out, np.reshape(expected, size).astype(dtype))


@kdsl.kernel
def returns_wrong_type(a, b):
    return (a + b).to(kl.float64)


@kdsl.kernel
def bad_reduce(x_ptr, WHAT: kl.constexpr):
    x = load_2d(x_ptr, 4, 4)
    if WHAT == "type":
        r = kl.reduce(x, 0, returns_wrong_type)
    elif WHAT == "fn":
        r = kl.reduce(x, 0, kl.maximum)
    else:
        r = kl.reduce(x, 2, max_abs)
    kl.store(x_ptr + kl.arange(0, 4), r)


@pytest.mark.parametrize("what, message", [
    ("type", "returns f64 for a f32 input"),
    ("fn", "must be a @kdsl.kernel function"),
    ("axis", "axis 2 is out of range"),
])
def test_reduce_errors(target, what, message):
    with pytest.raises(kdsl.CompilationError, match=message):
        bad_reduce[(1,)](np.zeros(16, np.float32), WHAT=what, target=target)


# scans -------------------------------------------------------------------------

@kdsl.kernel
def running_max(a, b):
    return kl.maximum(a, b)


@kdsl.kernel
def affine_compose(a1, b1, a2, b2):
    """(a1, b1) then (a2, b2) as maps x -> a*x + b: a non-commutative, tuple-valued combine."""
    return a1 * a2, b1 * a2 + b2


@kdsl.kernel
def scan_kernel(x_ptr, y_ptr, out_ptr, out2_ptr, FN: kl.constexpr, AXIS: kl.constexpr, REVERSE: kl.constexpr,
                M: kl.constexpr, N: kl.constexpr):
    x = load_2d(x_ptr, M, N)
    offs = kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    if FN == "cumsum":
        r = kl.cumsum(x, AXIS, REVERSE)
    elif FN == "cumprod":
        r = x.cumprod(axis=AXIS, reverse=REVERSE)
    elif FN == "max":
        r = x.associative_scan(AXIS, running_max, reverse=REVERSE)
    else:
        r, r2 = kl.associative_scan((x, load_2d(y_ptr, M, N)), AXIS, affine_compose, REVERSE)
        kl.store(out2_ptr + offs, r2)
    kl.store(out_ptr + offs, r)


def scan_reference(fn, x, axis, reverse):
    x = np.moveaxis(np.flip(x, axis) if reverse else x, axis, 0)
    out, acc = [], None
    for row in x:
        acc = row if acc is None else fn(acc, row)
        out.append(acc)
    out = np.moveaxis(np.stack(out), 0, axis)
    return np.flip(out, axis) if reverse else out


@pytest.mark.parametrize("fn", ["cumsum", "cumprod", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64, np.float16])
@SETTINGS
@given(shape=SHAPES, axis=st.sampled_from([0, 1, -1]), reverse=st.booleans(), seed=SEEDS)
def test_scans(target, fn, dtype, shape, axis, reverse, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    out_dtype = np.dtype(dtype)
    if fn == "cumsum" and out_dtype.kind in "iu" and out_dtype.itemsize < 4:
        out_dtype = np.dtype(np.int32 if out_dtype.kind == "i" else np.uint32)
    out = poisoned(shape, out_dtype)
    scan_kernel[(1,)](x, x, out, out, fn, axis, reverse, *shape, target=target)
    combine = {"cumsum": np.add, "cumprod": np.multiply, "max": np.fmax}[fn]
    with np.errstate(over="ignore", invalid="ignore"):
        expected = scan_reference(combine, x.astype(out_dtype), axis % 2, reverse)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("reverse", [False, True])
def test_tuple_scan_non_commutative(target, reverse):
    rng = np.random.default_rng(3)
    a, b = (rng.integers(-3, 4, (4, 8)).astype(np.int32) for _ in range(2))
    out_a, out_b = poisoned((4, 8), np.int32), poisoned((4, 8), np.int32)
    scan_kernel[(1,)](a, b, out_a, out_b, "affine", 1, reverse, 4, 8, target=target)
    expected_a, expected_b = np.empty_like(a), np.empty_like(b)
    acc = None
    for j in (range(7, -1, -1) if reverse else range(8)):
        acc = (a[:, j], b[:, j]) if acc is None else (acc[0] * a[:, j], acc[1] * a[:, j] + b[:, j])
        expected_a[:, j], expected_b[:, j] = acc
    np.testing.assert_array_equal(out_a, expected_a)
    np.testing.assert_array_equal(out_b, expected_b)
