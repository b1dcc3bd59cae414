"""kdsl kernels lowered to NVPTX, run on the PTX simulator against numpy (no GPU needed).

The kernels are the conformance suite's and the tutorials', so the same code later runs on
target="sim" through the runtime."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from tests.cuda.kernels import layer_norm, softmax
from tests.cuda.helpers import assemble_all_arches, lower_kernel, run_sim
from tests.helpers import assert_float_sum_close, poisoned, random_array
from tests.language.test_reductions_and_control_flow import (collatz_reference, collatz_steps,
                                                             halve_block_until_small, nested_loops,
                                                             nested_loops_reference, reduce_2d,
                                                             scalar_branches)
from tests.language.test_math import REFERENCE, unary_math
from tests.language.test_memory_and_creation import creation, gather_scatter, masked_store_only, reverse, three_d
from tests.language.test_shape_kernels import row_sum, softmax_transposed
from tests.language.test_shapes import join_scalars, join_split, permute_kernel, reshape_kernel
from tests.language.test_tutorials import add_kernel

SETTINGS = settings(max_examples=4, deadline=None)


@SETTINGS
@given(n=st.integers(0, 700), dtype=st.sampled_from([np.float32, np.float16, np.int32]),
       block=st.sampled_from([16, 128, 1024]), num_warps=st.sampled_from([1, 4]), seed=st.integers(0, 2**32 - 1))
def test_vector_add_with_masks(n, dtype, block, num_warps, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, n, dtype), random_array(rng, n, dtype)
    out = poisoned(n, dtype)
    run_sim(add_kernel, (kdsl.cdiv(n, block),), x, y, out, n, BLOCK_SIZE=block, num_warps=num_warps)
    np.testing.assert_array_equal(out, x + y)


@SETTINGS
@given(n=st.integers(1, 128), idx_dtype=st.sampled_from([np.int32, np.int64, np.uint16]),
       dtype=st.sampled_from([np.float32, np.int8, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_gather_through_loaded_indices_reads_other_where_masked(n, idx_dtype, dtype, seed):
    rng = np.random.default_rng(seed)
    src = random_array(rng, 300, dtype)
    idx = rng.integers(0, 300, n).astype(idx_dtype)
    keep = rng.random(n) < 0.6
    dst = poisoned(n, dtype)
    run_sim(gather_scatter, (1,), src, dst, idx, keep, n, OTHER=-5, BLOCK=128)
    np.testing.assert_array_equal(dst, np.where(keep, src[idx], -5).astype(dtype))


def test_scalar_pointer_arithmetic_and_masked_off_stores():
    src = random_array(np.random.default_rng(2), 300, np.float32)
    dst = poisoned(300, np.float32)
    run_sim(reverse, (5,), src, dst, 300, BLOCK=64)
    np.testing.assert_array_equal(dst, src[::-1])
    out = poisoned(64, np.int32)
    run_sim(masked_store_only, (1,), out, 50, BLOCK=64)
    expected = poisoned(64, np.int32)
    expected[0:50:3] = 2 * np.arange(0, 50, 3)
    np.testing.assert_array_equal(out, expected)


@kdsl.kernel
def grid_and_branch_blocks(x_ptr, out_ptr, BLOCK: kl.constexpr):
    pid = kl.program_id(0) + kl.num_programs(0) * (kl.program_id(1) + kl.num_programs(1) * kl.program_id(2))
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + pid * BLOCK + offs)
    if pid % 2 == 0:
        y = x * 2.0
    else:
        y = kl.zeros((BLOCK,), kl.float32) + kl.sum(x, axis=0)
    kl.store(out_ptr + pid * BLOCK + offs, y)


def test_3d_grid_and_if_else_carrying_blocks():
    x = random_array(np.random.default_rng(3), (2 * 3 * 4, 32), np.float32)
    out = poisoned(x.shape, np.float32)
    run_sim(grid_and_branch_blocks, (2, 3, 4), x, out, BLOCK=32)
    sums = np.broadcast_to(x.astype(np.float64).sum(axis=1, keepdims=True), x.shape)
    expected = np.where((np.arange(24) % 2 == 0)[:, None], x * 2, sums)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@kdsl.kernel
def scalar_parameters(out_ptr, flag, h, big, u, f, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    v = kl.where(flag, h.to(kl.float64) + big, u * 1.0) + f
    kl.store(out_ptr + offs, v + offs)


@pytest.mark.parametrize("flag", [True, False])
def test_scalar_parameters_of_every_width(flag):
    """i1, f16, i64, u32 and f32 parameters, passed by value."""
    out = poisoned(8, np.float64)
    run_sim(scalar_parameters, (1,), out, flag, np.float16(1.5), 2**40, np.uint32(7), 0.25, BLOCK=8)
    np.testing.assert_array_equal(out, (1.5 + 2**40 if flag else 7.0) + 0.25 + np.arange(8))


@kdsl.kernel
def tile_copy(src_ptr, dst_ptr, m, n, src_stride, dst_stride, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.program_id(0) * BM + kl.arange(0, BM)
    cols = kl.program_id(1) * BN + kl.arange(0, BN)
    mask = (rows[:, None] < m) & (cols[None, :] < n)
    tile = kl.load(src_ptr + rows[:, None] * src_stride + cols[None, :], mask=mask)
    kl.store(dst_ptr + rows[:, None] * dst_stride + cols[None, :], tile, mask=mask)


@SETTINGS
@given(m=st.integers(1, 40), n=st.integers(1, 70), pad=st.integers(0, 5),
       tile=st.sampled_from([(16, 32), (4, 64), (64, 4), (2, 2)]), seed=st.integers(0, 2**32 - 1))
def test_2d_tile_copy_with_strides(m, n, pad, tile, seed):
    storage = random_array(np.random.default_rng(seed), (m, n + pad), np.float32)
    src = storage[:, :n]
    dst = poisoned((m, n + 3), np.float32)
    bm, bn = tile
    run_sim(tile_copy, (kdsl.cdiv(m, bm), kdsl.cdiv(n, bn)), src, dst, m, n, n + pad, n + 3, BM=bm, BN=bn)
    np.testing.assert_array_equal(dst[:, :n], src)
    assert np.isnan(dst[:, n:]).all()


@SETTINGS
@given(rows=st.integers(1, 6), cols=st.integers(1, 300), num_warps=st.sampled_from([1, 2, 4, 8]),
       seed=st.integers(0, 2**32 - 1))
def test_row_softmax(rows, cols, num_warps, seed):
    storage = random_array(np.random.default_rng(seed), (rows, cols + 3), np.float32)
    x = storage[:, :cols]
    out = poisoned((rows, cols), np.float32)
    run_sim(softmax, (rows,), out, x, x.strides[0] // 4, out.strides[0] // 4, cols,
            BLOCK=kdsl.next_power_of_2(cols), num_warps=num_warps)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=2e-5, atol=1e-7)


@SETTINGS
@given(rows=st.integers(1, 5), cols=st.integers(1, 500), dtype=st.sampled_from([np.float32, np.float16]),
       seed=st.integers(0, 2**32 - 1))
def test_layer_norm_forward(rows, cols, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (rows, cols), dtype)
    w, b = random_array(rng, cols, dtype), random_array(rng, cols, dtype)
    y = poisoned((rows, cols), dtype)
    run_sim(layer_norm, (rows,), x, w, b, y, cols, cols, 1e-5, BLOCK=kdsl.next_power_of_2(cols))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    expected = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5) * w + b
    tol = 2e-2 if dtype == np.float16 else 1e-4
    np.testing.assert_allclose(y, expected.astype(dtype), rtol=tol, atol=tol)


NUMPY = {"sum": np.sum, "max": np.max, "min": np.min}


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16])
@SETTINGS
@given(shape=st.tuples(st.sampled_from([1, 2, 8, 64]), st.sampled_from([1, 4, 16, 128])),
       axis=st.sampled_from([None, 0, 1]), keep=st.booleans(), num_warps=st.sampled_from([1, 4, 8]),
       seed=st.integers(0, 2**32 - 1))
def test_reductions_along_each_axis_and_to_a_scalar(kind, dtype, shape, axis, keep, num_warps, seed):
    m, n = shape
    x = random_array(np.random.default_rng(seed), shape, dtype)
    out_dtype = np.dtype(dtype)
    size = 1 if axis is None else n if axis == 0 else m
    out = poisoned(size, out_dtype)
    run_sim(reduce_2d, (1,), x, out, KIND=kind, AXIS=axis, KEEP=keep, M=m, N=n, num_warps=num_warps)
    if kind == "sum" and out_dtype.kind == "f":  # fp16 sums stay fp16, as Triton's
        assert_float_sum_close(out, x, axis)
        return
    expected = NUMPY[kind](x.astype(np.float64 if out_dtype.kind == "f" else out_dtype), axis=axis)
    rtol = {2: 1e-2, 4: 1e-5}[out_dtype.itemsize] if out_dtype.kind == "f" else 0
    np.testing.assert_allclose(out, np.reshape(expected, size).astype(out_dtype), rtol=rtol, atol=rtol)


@SETTINGS
@given(n_outer=st.integers(0, 4), n_inner=st.integers(0, 6), seed=st.integers(0, 2**32 - 1))
def test_for_loops_with_a_block_accumulator_and_branches(n_outer, n_inner, seed):
    x = random_array(np.random.default_rng(seed), (8, 16), np.float32)
    out = poisoned(2, np.float32)
    run_sim(nested_loops, (1,), x, out, n_outer, n_inner, BLOCK=16)
    np.testing.assert_allclose(out, nested_loops_reference(x, n_outer, n_inner), rtol=1e-5, atol=1e-4)


def test_if_else_on_runtime_scalars():
    x = random_array(np.random.default_rng(4), 40, np.float32)
    out = poisoned(40, np.float32)
    run_sim(scalar_branches, (40,), x, out, 30)
    pid = np.arange(40)
    np.testing.assert_array_equal(out, np.where((x > 0) & (pid < 30), x * 2, np.where(x < -1, -x, 0.5)))


@pytest.mark.parametrize("limit", [0, 5, 1000])
def test_while_loop_on_scalars(limit):
    x = np.arange(1, 30, dtype=np.int64)
    out = poisoned(29, np.int32)
    run_sim(collatz_steps, (29,), x, out, limit)
    np.testing.assert_array_equal(out, [collatz_reference(int(v), limit) for v in x])


def test_while_loop_carrying_a_block():
    x = random_array(np.random.default_rng(5), 256, np.float32) * 40
    out = poisoned(256, np.float32)
    run_sim(halve_block_until_small, (1,), x, out, BLOCK=256)
    y, rounds = x.copy(), 0
    while np.abs(y).max() > 1.0:
        y, rounds = y * np.float32(0.5), rounds + 1
    np.testing.assert_array_equal(out, y + rounds)


@pytest.mark.parametrize("bm, bn", [(1, 1), (4, 8), (16, 2), (32, 64)])
def test_creation_and_broadcasting(bm, bn):
    out = poisoned((bm, bn), np.float32)
    run_sim(creation, (1,), out, 0.5, BM=bm, BN=bn)
    expected = np.arange(bm)[:, None] * 100 + np.arange(3, 3 + bn)[None, :] + 0.5 + 1
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_three_dimensional_blocks():
    out = poisoned((2, 4, 8), np.int32)
    run_sim(three_d, (1,), out, A=2, B=4, C=8)
    a, b, c = np.meshgrid(np.arange(2), np.arange(4), np.arange(8), indexing="ij")
    np.testing.assert_array_equal(out, a * 10000 + b * 100 + c)


@pytest.mark.parametrize("num_warps", [1, 4])
@pytest.mark.parametrize("rows, cols", [(1, 8), (4, 16), (16, 4), (32, 64)])
def test_row_sums_through_reshape(rows, cols, num_warps):
    x = random_array(np.random.default_rng(rows * cols), (3 * rows, cols), np.float32)
    out = poisoned(3 * rows, np.float32)
    run_sim(row_sum, (3,), x, out, ROWS=rows, COLS=cols, num_warps=num_warps)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_warps", [1, 4])
@pytest.mark.parametrize("m, n", [(4, 16), (8, 8), (1, 32), (64, 32)])
def test_softmax_on_the_transposed_block(m, n, num_warps):
    x = random_array(np.random.default_rng(m + n), (m, n), np.float32)
    out = poisoned((m, n), np.float32)
    run_sim(softmax_transposed, (1,), x, out, M=m, N=n, num_warps=num_warps)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=2e-5, atol=1e-6)


POW2 = st.sampled_from([1, 2, 4, 8, 32])


@SETTINGS
@given(shape=st.tuples(POW2, POW2, POW2), split=st.integers(0, 6), perm=st.permutations([0, 1, 2]),
       dtype=st.sampled_from([np.float32, np.int8, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_reshape_and_permute(shape, split, perm, dtype, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    p = 2 ** min(split, x.size.bit_length() - 1)
    out = poisoned((p, x.size // p), dtype)
    run_sim(reshape_kernel, (1,), x, out, *shape, p, x.size // p, True)
    np.testing.assert_array_equal(out, x.reshape(p, x.size // p))
    flat = poisoned(x.size, dtype)
    run_sim(permute_kernel, (1,), x, flat, *shape, *perm, "permute")
    np.testing.assert_array_equal(flat, np.transpose(x, perm).ravel())


@SETTINGS
@given(shape=st.tuples(POW2, POW2), dtype=st.sampled_from([np.float32, np.int8, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_join_and_split(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    out, a, b = poisoned(x.size * 2, dtype), poisoned(shape, dtype), poisoned(shape, dtype)
    run_sim(join_split, (1,), x, y, out, a, b, *shape)
    np.testing.assert_array_equal(out, np.stack([x, y], axis=-1).ravel())
    np.testing.assert_array_equal(a, y)
    np.testing.assert_array_equal(b, x)
    pair = poisoned(2, np.int32)
    run_sim(join_scalars, (1,), pair, 5)
    np.testing.assert_array_equal(pair, [10, 5])


@kdsl.kernel
def split_loaded_pairs(x_ptr, a_ptr, b_ptr, N: kl.constexpr):
    offs = kl.arange(0, N)
    a, b = kl.split(kl.load(x_ptr + offs[:, None] * 2 + kl.arange(0, 2)[None, :]))
    kl.store(a_ptr + offs, a)
    kl.store(b_ptr + offs, b)


@pytest.mark.parametrize("n", [16, 1024])
def test_split_of_pairs_held_by_lanes_or_registers(n):
    """With 16 pairs over 128 threads the pairs' halves sit in different lanes and are moved first."""
    x = random_array(np.random.default_rng(n), (n, 2), np.float32)
    a, b = poisoned(n, np.float32), poisoned(n, np.float32)
    run_sim(split_loaded_pairs, (1,), x, a, b, N=n)
    np.testing.assert_array_equal(a, x[:, 0])
    np.testing.assert_array_equal(b, x[:, 1])


@kdsl.kernel
def row_plus_column_sums(x_ptr, y_ptr, out_ptr, N: kl.constexpr):
    offs = kl.arange(0, N)
    x = kl.load(x_ptr + offs[:, None] * N + offs[None, :])
    y = kl.load(y_ptr + offs)
    kl.store(out_ptr + offs, kl.sum(x, axis=1) + kl.sum(x, axis=0) * y)


@pytest.mark.parametrize("num_warps", [1, 2, 8])
@pytest.mark.parametrize("n", [4, 32, 128])
def test_values_of_different_layouts_meet_through_shared_memory(n, num_warps):
    """Row sums, column sums and a loaded vector hold their elements in different threads."""
    rng = np.random.default_rng(n)
    x, y = random_array(rng, (n, n), np.float32), random_array(rng, n, np.float32)
    out = poisoned(n, np.float32)
    gpu = run_sim(row_plus_column_sums, (1,), x, y, out, N=n, num_warps=num_warps)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(out, x64.sum(axis=1) + x64.sum(axis=0) * y, rtol=1e-5, atol=1e-5)
    assert gpu.shared_bytes > 0


@kdsl.kernel
def cast_chain(x_ptr, f16_ptr, bf16_ptr, int_ptr, u8_ptr, back_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(f16_ptr + offs, x.to(kl.float16), mask=mask)
    kl.store(bf16_ptr + offs, x.to(kl.bfloat16).to(kl.float32), mask=mask)
    kl.store(int_ptr + offs, x.to(kl.int32), mask=mask)
    kl.store(u8_ptr + offs, x.to(kl.uint8), mask=mask)
    kl.store(back_ptr + offs, x.to(kl.float16).to(kl.float64) + x.to(kl.int32).to(kl.float64), mask=mask)


@SETTINGS
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_casts_between_f16_bf16_f32_and_integers(n, seed):
    with np.errstate(over="ignore"):
        x = random_array(np.random.default_rng(seed), n, np.float32, specials=True) * 50
    outs = [poisoned(n, t) for t in (np.float16, np.float32, np.int32, np.uint8, np.float64)]
    run_sim(cast_chain, (kdsl.cdiv(n, 128),), x, *outs, n, BLOCK=128)
    f16, bf16, i32, u8, back = outs
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(f16, x.astype(np.float16))
        np.testing.assert_array_equal(bf16, x.astype(ml_dtypes.bfloat16).astype(np.float32))
        sat = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0, posinf=np.inf, neginf=-np.inf)
        np.testing.assert_array_equal(i32, np.clip(sat, -2**31, 2**31 - 1).astype(np.int64).astype(np.int32))
        np.testing.assert_array_equal(u8, np.clip(sat, 0, 255).astype(np.uint8))
        expected = x.astype(np.float16).astype(np.float64) + np.clip(sat, -2**31, 2**31 - 1)
    np.testing.assert_array_equal(back, expected)


# the bounds lower_math documents, with room for the simulator's own rounding: (rtol, atol)
MATH_TOLERANCE = {"exp": (1e-6, 0), "exp2": (1e-6, 0), "log": (1e-6, 1e-6), "log2": (1e-6, 1e-6),
                  "sin": (0, 2e-6), "cos": (0, 2e-6), "rsqrt": (1e-6, 0), "erf": (0, 1e-6), "sqrt": (0, 0),
                  "floor": (0, 0), "ceil": (0, 0), "abs": (0, 0), "sigmoid": (1e-6, 0)}


@pytest.mark.parametrize("fn", sorted(MATH_TOLERANCE))
def test_math_functions_within_their_documented_accuracy(fn):
    x = (np.random.default_rng(9).standard_normal(200) * 4).astype(np.float32)
    if fn in ("log", "log2", "sqrt", "rsqrt"):
        x = np.abs(x) + np.float32(0.25)
    out = poisoned(200, np.float32)
    run_sim(unary_math, (4,), x, out, 200, FN=fn, BLOCK=64)
    x64 = x.astype(np.float64)
    expected = 1 / (1 + np.exp(-x64)) if fn == "sigmoid" else np.asarray(REFERENCE[fn](x64), np.float64)
    rtol, atol = MATH_TOLERANCE[fn]
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=rtol, atol=atol)


def test_replicated_layouts_store_each_element_once():
    """16 elements over 128 threads: lanes and warps hold copies; the shared memory a reduction
    needs and the PTX show one predicated store per element (no duplicate writes to race)."""
    gpu, ptx, _ = lower_kernel(softmax, (np.zeros(16, np.float32), np.zeros(16, np.float32), 16, 16, 16),
                               {"BLOCK": 16})
    assert gpu.shared_bytes == 0
    assert ptx.count("st.global") == 1


KERNELS = [
    (add_kernel, (np.zeros(8, np.float32), np.zeros(8, np.float32), np.zeros(8, np.float32), 8), {"BLOCK_SIZE": 256}),
    (tile_copy, (np.zeros((4, 4), np.float16), np.zeros((4, 4), np.float16), 4, 4, 4, 4), {"BM": 32, "BN": 64}),
    (softmax, (np.zeros(8, np.float32), np.zeros(8, np.float32), 8, 8, 8), {"BLOCK": 1024}),
    (layer_norm, (*(np.zeros(8, np.float16),) * 4, 8, 8, 1e-5), {"BLOCK": 512}),
    (reduce_2d, (np.zeros((8, 8), np.float32), np.zeros(8, np.float32)),
     {"KIND": "max", "AXIS": 0, "KEEP": False, "M": 64, "N": 128}),
    (nested_loops, (np.zeros(8, np.float32), np.zeros(8, np.float32), 1, 1), {"BLOCK": 16}),
    (collatz_steps, (np.zeros(8, np.int64), np.zeros(8, np.int32), 3), {}),
    (cast_chain, (np.zeros(8, np.float32), np.zeros(8, np.float16), np.zeros(8, np.float32), np.zeros(8, np.int32),
                  np.zeros(8, np.uint8), np.zeros(8, np.float64), 8), {"BLOCK": 128}),
    (unary_math, (np.zeros(8, np.float32), np.zeros(8, np.float32), 8), {"FN": "erf", "BLOCK": 256}),
]


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("kernel, args, constants", KERNELS, ids=[k.source.name for k, _, _ in KERNELS])
def test_ptx_assembles_for_sm80_and_sm90(kernel, args, constants):
    assemble_all_arches(kernel, args, constants)
