"""cast (numeric, float→int saturating with NaN→0) and bitcast."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tests.cpu.helpers import NUMPY, run_elementwise
from tests.cpu.reference import float_to_int

SETTINGS = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def _floats(dtype: str):
    dt = np.dtype(NUMPY[dtype])
    return hnp.arrays(dt, 40, elements=st.floats(width=8 * dt.itemsize, allow_nan=True, allow_infinity=True))


@pytest.mark.parametrize("src,dst", [("f32", "i32"), ("f32", "u8"), ("f64", "i64"), ("f16", "i16"),
                                     ("f32", "i8"), ("f64", "u32"), ("f32", "u64")])
def test_float_to_int_saturates(src, dst):
    @SETTINGS
    @given(_floats(src))
    def check(x):
        out = run_elementwise("cast", [x], [src], dst)
        np.testing.assert_array_equal(out, float_to_int(x, NUMPY[dst]))
    check()


@pytest.mark.parametrize("src,dst", [("i32", "f32"), ("u32", "f32"), ("i64", "f64"), ("u8", "f16"),
                                     ("i8", "i32"), ("u8", "i32"), ("i32", "i8"), ("u64", "i16"),
                                     ("i16", "u64"), ("f32", "f64"), ("f64", "f16"), ("f16", "f32"),
                                     ("f64", "f32"), ("i32", "i1"), ("f32", "i1"), ("i1", "i32"), ("i1", "f32")])
def test_numeric_casts(src, dst):
    @SETTINGS
    @given(hnp.arrays(NUMPY[src], 40))
    def check(x):
        out = run_elementwise("cast", [x], [src], dst)
        with np.errstate(all="ignore"):
            expected = (x != 0) if dst == "i1" else x.astype(NUMPY[dst])
        np.testing.assert_array_equal(out, expected)
    check()


@pytest.mark.parametrize("src,dst", [("f32", "i32"), ("i32", "f32"), ("f16", "u16"), ("u64", "f64")])
def test_bitcast(src, dst):
    x = np.random.default_rng(4).standard_normal(50).astype(NUMPY[src] if src.startswith("f") else np.float32)
    x = x.astype(NUMPY[src]) if src.startswith("f") else x.view(np.int32).astype(NUMPY[src])
    out = run_elementwise("bitcast", [x], [src], dst)
    np.testing.assert_array_equal(out.view(np.uint8), x.view(np.uint8))


def test_bf16_roundtrip_and_add():
    """bf16 values travel as their uint16 bits: f32 → bf16 rounds to nearest even."""
    x = np.random.default_rng(5).standard_normal(50).astype(np.float32)
    bits = run_elementwise("cast", [x], ["f32"], "bf16")
    wide = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_allclose(wide, x, rtol=2 ** -8)
    back = run_elementwise("cast", [bits], ["bf16"], "f32")
    np.testing.assert_array_equal(back, wide)
    doubled = run_elementwise("add", [bits, bits], ["bf16", "bf16"], "bf16")
    np.testing.assert_array_equal((doubled.astype(np.uint32) << 16).view(np.float32), wide * 2)
