"""Every elementwise op against numpy/Python references, on hypothesis-drawn inputs."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tests.cpu.helpers import NUMPY, launch, run_elementwise
from tests.cpu.reference import CMP, FLOAT_BINARY, FLOAT_UNARY, int_binary, int_unary

INT_TYPES = ["i8", "i32", "i64", "u8", "u64"]
FLOAT_TYPES = ["f16", "f32", "f64"]
SETTINGS = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def int_arrays(dtype: str, n: int = 40):
    dt = np.dtype(NUMPY[dtype])
    info = np.iinfo(dt)
    bits = 8 * dt.itemsize
    special = st.sampled_from([0, 1, -1 if info.min else 1, info.min, info.max, bits, bits - 1])
    elems = st.one_of(st.integers(info.min, info.max), special, st.integers(0, bits + 2))
    return hnp.arrays(dt, n, elements=elems)


def float_arrays(dtype: str, n: int = 40):
    dt = np.dtype(NUMPY[dtype])
    width = 8 * dt.itemsize
    return hnp.arrays(dt, n, elements=st.floats(width=width, allow_nan=True, allow_infinity=True))


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "rem", "min", "max", "and", "or", "xor", "shl", "shr"])
def test_int_binary(op, dtype):
    @SETTINGS
    @given(int_arrays(dtype), int_arrays(dtype))
    def check(x, y):
        out = run_elementwise(op, [x, y], [dtype, dtype], dtype)
        np.testing.assert_array_equal(out, int_binary(op, x, y))
    check()


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("op", ["neg", "abs", "not"])
def test_int_unary(op, dtype):
    if op == "abs" and dtype.startswith("u"):
        pytest.skip("abs of unsigned is the identity; covered by i-types")

    @SETTINGS
    @given(int_arrays(dtype))
    def check(x):
        np.testing.assert_array_equal(run_elementwise(op, [x], [dtype], dtype), int_unary(op, x))
    check()


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", sorted(FLOAT_BINARY))
def test_float_binary(op, dtype):
    @SETTINGS
    @given(float_arrays(dtype), float_arrays(dtype))
    def check(x, y):
        out = run_elementwise(op, [x, y], [dtype, dtype], dtype)
        with np.errstate(all="ignore"):
            expected = FLOAT_BINARY[op](x, y)
        np.testing.assert_array_equal(out, expected)
    check()


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_float_unary(op, dtype):
    @SETTINGS
    @given(float_arrays(dtype))
    def check(x):
        out = run_elementwise(op, [x], [dtype], dtype)
        with np.errstate(all="ignore"):
            expected = FLOAT_UNARY[op](x)
        np.testing.assert_allclose(out, expected, rtol=2e-7 if dtype == "f64" else 2e-6, atol=0)
    check()


@pytest.mark.parametrize("dtype", ["i8", "u32", "f16", "f32", "f64"])
@pytest.mark.parametrize("pred", sorted(CMP))
def test_cmp(pred, dtype):
    arrays = float_arrays(dtype) if dtype.startswith("f") else int_arrays(dtype)

    @SETTINGS
    @given(arrays, arrays)
    def check(x, y):
        out = run_elementwise("cmp", [x, y], [dtype, dtype], "i1", attrs=f'pred = "{pred}"')
        np.testing.assert_array_equal(out, CMP[pred](x, y))
    check()


def test_select():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, 100).astype(np.bool_)
    x, y = rng.standard_normal(100).astype(np.float32), rng.standard_normal(100).astype(np.float32)
    out = run_elementwise("select", [c, x, y], ["i1", "f32", "f32"], "f32")
    np.testing.assert_array_equal(out, np.where(c, x, y))


UNIFORM_DIVIDE = """
kernel @divide(%x: *f32, %out: *f32, %d: f32) {
  %pid = program_id {axis = 0} : i32
  %c = constant {value = 1024} : i32
  %base = mul %pid, %c : i32
  %a = arange {end = 1024, start = 0} : block<1024xi32>
  %bs = splat %base : block<1024xi32>
  %off = add %bs, %a : block<1024xi32>
  %xp = splat %x : block<1024x*f32>
  %xa = addptr %xp, %off : block<1024x*f32>
  %v = load %xa : block<1024xf32>
  %ds = splat %d : block<1024xf32>
  %q = div %v, %ds : block<1024xf32>
  %op = splat %out : block<1024x*f32>
  %oa = addptr %op, %off : block<1024x*f32>
  store %oa, %q
  return
}
"""


def _awkward_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """f32 values of every magnitude (subnormal to huge), both signs, with zeros, infinities,
    NaNs and significands of all ones among them."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32).copy()
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 2 - 2**-23, 2**-149, 2**-126,
                        3.4028235e38, 1.1754942e-38], np.float32)
    x[rng.integers(0, n, 64)] = rng.choice(special, 64)
    return x


def test_division_by_a_uniform_divisor_rounds_like_ieee_division():
    """`x / d` with one d for the block multiplies by d's reciprocal in f64 (`divide_by_uniform`):
    bit for bit numpy's f32 division, over random bit patterns and special values of both."""
    rng = np.random.default_rng(0)
    divisors = np.concatenate([_awkward_floats(rng, 48), np.float32([0.0, -0.0, np.inf, np.nan, 3.0, 2 - 2**-23,
                                                                       2**-149, 1e-45, 7.0e37, 1e30])])
    x = _awkward_floats(rng, 16 * 1024)
    out = np.empty_like(x)
    for d in divisors:
        out.fill(np.nan)
        launch(UNIFORM_DIVIDE, [x, out, float(d)], (16, 1, 1))
        with np.errstate(all="ignore"):
            expected = x / d
        np.testing.assert_array_equal(out, expected, err_msg=f"divisor {d!r}")
        assert (np.signbit(out) == np.signbit(expected))[~np.isnan(expected)].all()
