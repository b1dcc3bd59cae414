"""The core kernels of tests/cpu, run on target="interpret" against numpy on fresh random inputs."""
import importlib.util
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl

_spec = importlib.util.spec_from_file_location("cpu_kernels", Path(__file__).parents[1] / "cpu" / "test_tutorial_kernels.py")
cpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpu)

SETTINGS = settings(max_examples=25, deadline=None)
SEED = st.integers(0, 2**32 - 1)


@SETTINGS
@given(n=st.integers(0, 5000), dtype=st.sampled_from([np.float32, np.float16, np.int32]),
       block=st.sampled_from([16, 128, 1024]), seed=SEED)
def test_vector_add(n, dtype, block, seed):
    rng = np.random.default_rng(seed)
    x, y = cpu.random_array(rng, n, dtype), cpu.random_array(rng, n, dtype)
    out = cpu.poisoned(n, dtype)
    cpu.add[(kdsl.cdiv(n, block),)](x, y, out, n, BLOCK=block, target="interpret")
    np.testing.assert_array_equal(out, x + y)


@SETTINGS
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), pad=st.integers(0, 7), seed=SEED)
def test_softmax_on_strided_rows(rows, cols, pad, seed):
    x = cpu.random_array(np.random.default_rng(seed), (rows, cols + pad), np.float32)[:, :cols]
    out = cpu.poisoned((rows, cols), np.float32)
    cpu.softmax[(rows,)](out, x, x.strides[0] // 4, out.strides[0] // 4, cols,
                         BLOCK=kdsl.next_power_of_2(cols), target="interpret")
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


@SETTINGS
@given(rows=st.integers(1, 20), cols=st.integers(1, 500), dtype=st.sampled_from([np.float32, np.float16]),
       eps=st.sampled_from([1e-5, 1e-2]), seed=SEED)
def test_layer_norm_forward(rows, cols, dtype, eps, seed):
    rng = np.random.default_rng(seed)
    x, w, b = (cpu.random_array(rng, shape, dtype) for shape in ((rows, cols), cols, cols))
    y = cpu.poisoned((rows, cols), dtype)
    cpu.layer_norm[(rows,)](x, w, b, y, cols, cols, eps, BLOCK=kdsl.next_power_of_2(cols), target="interpret")
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=1, keepdims=True)
    ref = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + np.float32(eps)) * w + b
    tol = 2e-2 if dtype == np.float16 else 1e-4
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=tol, atol=tol)


@SETTINGS
@given(rows=st.integers(0, 70), cols=st.integers(0, 70), pad=st.integers(0, 5), bm=st.sampled_from([1, 8, 32]),
       bn=st.sampled_from([4, 16]), dtype=st.sampled_from([np.float32, np.int16, np.float64]), seed=SEED)
def test_2d_tile_copy(rows, cols, pad, bm, bn, dtype, seed):
    src = cpu.random_array(np.random.default_rng(seed), (rows, cols + pad), dtype)[:, :cols]
    dst = cpu.poisoned((rows, cols), dtype)
    grid = (kdsl.cdiv(rows, bm), kdsl.cdiv(cols, bn))
    cpu.copy_tile[grid](src, dst, rows, cols, cols + pad, cols, BM=bm, BN=bn, target="interpret")
    np.testing.assert_array_equal(dst, src)


@SETTINGS
@given(rows=st.integers(1, 16), cols=st.integers(0, 600), block=st.sampled_from([8, 64, 256]),
       dtype=st.sampled_from([np.float32, np.float16]), seed=SEED)
def test_loop_carrying_a_block_accumulator(rows, cols, block, dtype, seed):
    x = cpu.random_array(np.random.default_rng(seed), (rows, cols), dtype)
    out = cpu.poisoned(rows, np.float32)
    cpu.row_sums[(rows,)](x, out, cols, max(cols, 1), BLOCK_K=block, target="interpret")
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), rtol=1e-4, atol=1e-3)
