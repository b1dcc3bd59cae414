"""Every elementwise op against numpy/Python references, on hypothesis-drawn inputs."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tests.cpu.helpers import NUMPY, run_elementwise
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
