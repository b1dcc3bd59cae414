"""Masked vector add over sizes that are not multiples of the block."""
import numpy as np
import pytest

from tests.cpu.helpers import NUMPY, elementwise_kernel, launch, random_array, run_elementwise


@pytest.mark.parametrize("dtype", ["f32", "f16", "i32", "f64", "u8"])
@pytest.mark.parametrize("n", [1, 63, 64, 1000])
@pytest.mark.parametrize("block", [16, 128])
def test_vector_add(dtype, n, block):
    rng = np.random.default_rng(n)
    x, y = (random_array(rng, n, NUMPY[dtype]) for _ in range(2))
    out = run_elementwise("add", [x, y], [dtype, dtype], dtype, block=block)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, x + y)


def test_masked_off_lanes_touch_no_memory():
    """With n = 0 every lane is masked off: null pointers must be neither read nor written."""
    text = elementwise_kernel("add", ["f32", "f32"], "f32", 64)
    launch(text, [0, 0, 0, 0], (3, 1, 1))
