"""Helpers shared by the test suites: dtype lists, fresh random inputs, poisoned outputs."""
import numpy as np

FLOATS = [np.float16, np.float32, np.float64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
INTS = SIGNED + UNSIGNED


def special_values(dtype):
    """Values that break careless implementations: extremes, zero, NaN and infinities."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, info.max, info.min, info.tiny], dtype)
    info = np.iinfo(dtype)
    return np.array([0, 1, info.max, info.min, info.max - 1, info.min + 1] + ([-1] if dtype.kind == "i" else []), dtype)


def random_array(rng, shape, dtype, full_range=False, specials=False):
    """Fresh random values of `dtype` (never all zeros).

    Integers are small unless `full_range`; `specials` mixes in `special_values`.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        values = (rng.standard_normal(shape) * 3).astype(dtype)
    elif full_range:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    else:
        lo = -1000 if dtype.kind == "i" else 0
        values = rng.integers(max(lo, np.iinfo(dtype).min), min(1000, np.iinfo(dtype).max), shape).astype(dtype)
    if specials and values.size:
        where = rng.random(values.shape) < 0.2
        values[where] = rng.choice(special_values(dtype), int(where.sum()))
    return values


def poisoned(shape, dtype):
    """An output array whose unwritten elements show: NaN for floats, a sentinel for integers."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.full(shape, np.nan, dtype)
    if dtype.kind == "b":
        return np.ones(shape, dtype)
    return np.full(shape, np.iinfo(dtype).max // 3, dtype)


def assert_float_sum_close(out, x, axis) -> None:
    """`out` is x's sum along `axis` (None: all) in `out`'s float type, in any order of additions:
    each of the n - 1 additions rounds, off by at most a unit roundoff of the partial sum, itself at
    most the sum of magnitudes; the result's own rounding adds one of the sum's."""
    wide = x.astype(np.float64)
    count = x.size if axis is None else x.shape[axis]
    unit = 2.0 ** -(np.finfo(out.dtype).nmant + 1)
    exact = np.sum(wide, axis=axis)
    bound = 1.01 * unit * ((count - 1) * np.sum(np.abs(wide), axis=axis) + np.abs(exact))
    error = np.abs(out.astype(np.float64) - np.reshape(exact, out.shape))
    assert np.all(error <= np.reshape(bound, out.shape)), (out, exact)
