"""`join`/`split` lowered for the GPU (`lower_join`), on the PTX simulator: the conformance suite's kernels,
with joins of blocks of several layouts and of scalars, over warp counts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cuda.helpers import assemble_all_arches, run_sim
from tests.helpers import poisoned, random_array
from tests.language.test_shapes import join_scalars, join_split

SETTINGS = settings(max_examples=4, deadline=None)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float16, np.int64])
@SETTINGS
@given(shape=st.tuples(st.sampled_from([1, 2, 8, 32]), st.sampled_from([1, 4, 16])),
       num_warps=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 2**32 - 1))
def test_join_split_through_a_permute(dtype, shape, num_warps, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    out, a, b = poisoned(x.size * 2, dtype), poisoned(shape, dtype), poisoned(shape, dtype)
    run_sim(join_split, (1,), x, y, out, a, b, *shape, num_warps=num_warps)
    np.testing.assert_array_equal(out, np.stack([x, y], axis=-1).ravel())
    np.testing.assert_array_equal(a, y)
    np.testing.assert_array_equal(b, x)


@pytest.mark.parametrize("num_warps", [1, 4])
def test_join_and_split_scalars(num_warps):
    out = poisoned(2, np.int32)
    run_sim(join_scalars, (1,), out, 5, num_warps=num_warps)
    np.testing.assert_array_equal(out, [10, 5])


def test_join_split_ptx_assembles():
    x = np.zeros((8, 16), np.float32)
    assemble_all_arches(join_split, (x, x, x, x, x), dict(M=8, N=16))
