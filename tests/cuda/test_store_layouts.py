"""Stores whose value's layout vectorises worse than the pointer allows move the value to the
default layout ordered along the pointer's contiguity first (through shared memory), as the matmul
epilogue does with the mma accumulator; stores already in a good layout convert nothing."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import layouts, lower_layout, ptxas
from tests.cuda.test_ptx_quality import aligned, global_accesses, ptx_of
from tests.helpers import poisoned, random_array
from tests.language import test_tutorials as tutorials
from tests.language.test_dot import UNIT, check_close

needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")


def aligned_2d(values: np.ndarray) -> np.ndarray:
    return aligned(values.ravel()).reshape(values.shape)


def conversions(ptx: str) -> int:
    """How many shared-memory exchanges `ptx` makes: its barriers."""
    return ptx.count("bar.sync")


def assembles(ptx: str) -> None:
    if ptxas.available():
        for arch in ("sm_80", "sm_90"):
            ptxas.assemble(ptx, arch)


def matmul_args(m: int, n: int, k: int, rng):
    a, b = (aligned_2d(random_array(rng, shape, np.float16)) for shape in ((m, k), (k, n)))
    c = aligned_2d(poisoned((m, n), np.float16))
    return a, b, c, (a, b, c, m, n, k, k, 1, n, 1, n, 1)


BLOCKS = dict(BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32, GROUP_SIZE_M=4, ACTIVATION="")


@pytest.mark.parametrize("m, n, k, vectors", [
    (128, 128, 64, True),  # whole tiles
    (72, 80, 48, True),  # masked edges; N a multiple of 16: the mask is constant over 16 columns
    (70, 72, 40, False),  # N not known to be a multiple of 16: rows not aligned, mask per column
], ids=["whole-tiles", "masked-n%16==0", "masked-n%16!=0"])
def test_tutorial_matmul_stores_its_result_in_16_byte_vectors_where_the_pointer_allows(m, n, k, vectors):
    a, b, c, args = matmul_args(m, n, k, np.random.default_rng(m * n + k))
    grid = (kdsl.cdiv(m, 64) * kdsl.cdiv(n, 64),)
    tutorials.matmul_kernel[grid](*args, **BLOCKS, target="sim")
    check_close(c.astype(np.float32), a, b, None, UNIT[np.float16])
    ptx = ptx_of(tutorials.matmul_kernel, *args, **BLOCKS)
    stores = {kind for kind in global_accesses(ptx) if kind.startswith("st.")}
    assert stores == ({"st.global.v4"} if vectors else {"st.global"})
    assembles(ptx)


@kdsl.kernel
def copy_tile(x_ptr, out_ptr, M: kl.constexpr, N: kl.constexpr, TRANSPOSE: kl.constexpr):
    rows, cols = kl.arange(0, M), kl.arange(0, N)
    if TRANSPOSE:  # x is (N, M): the load runs along rows, the store along columns
        tile = kl.load(x_ptr + rows[:, None] + cols[None, :] * M)
    else:
        tile = kl.load(x_ptr + rows[:, None] * N + cols[None, :])
    kl.store(out_ptr + rows[:, None] * N + cols[None, :], tile)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_])
def test_only_a_store_whose_value_runs_across_the_pointer_converts(transpose, dtype):
    rng = np.random.default_rng(3)
    m, n = 32, 64
    x = aligned(rng.random(m * n) < 0.5 if dtype == np.bool_ else random_array(rng, m * n, dtype))
    out = aligned(poisoned(m * n, dtype))
    copy_tile[(1,)](x, out, M=m, N=n, TRANSPOSE=transpose, target="sim")
    np.testing.assert_array_equal(out.reshape(m, n), x.reshape(n, m).T if transpose else x.reshape(m, n))
    ptx = ptx_of(copy_tile, x, out, M=m, N=n, TRANSPOSE=transpose)
    assert "st.global.v4" in global_accesses(ptx)
    assert ("st.shared" in ptx, conversions(ptx)) == ((True, 2) if transpose else (False, 0))
    assembles(ptx)


@kdsl.kernel
def row_sums(x_ptr, out_ptr, n, ROWS: kl.constexpr, COLS: kl.constexpr):
    rows = kl.arange(0, ROWS)
    x = kl.load(x_ptr + rows[:, None] * COLS + kl.arange(0, COLS)[None, :], mask=rows[:, None] < n, other=0.0)
    kl.store(out_ptr + rows, kl.sum(x, axis=1), mask=rows < n)


@pytest.mark.parametrize("n", [512, 500], ids=["n%16==0", "n%16!=0"])
def test_sums_held_by_several_lanes_are_stored_once_each(n):
    """The reduction's result is replicated over lanes, one element a register: it moves to
    4 elements a thread only where the mask allows 16-byte stores."""
    rng = np.random.default_rng(n)
    rows, cols = 512, 8
    x = aligned(random_array(rng, rows * cols, np.float32))
    out = aligned(poisoned(rows, np.float32))
    row_sums[(1,)](x, out, n, ROWS=rows, COLS=cols, target="sim")
    expected = x.reshape(rows, cols).astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(out[:n], expected[:n], rtol=1e-5, atol=1e-5)
    assert np.isnan(out[n:]).all()
    ptx = ptx_of(row_sums, x, out, n, ROWS=rows, COLS=cols)
    stores = {kind for kind in global_accesses(ptx) if kind.startswith("st.")}
    assert (stores, conversions(ptx)) == (({"st.global.v4"}, 2) if n % 16 == 0 else ({"st.global"}, 0))
    assembles(ptx)


@pytest.mark.parametrize("m, n", [(128, 128), (64, 64), (32, 64)])
def test_an_mma_accumulators_writes_to_its_padded_shared_copy_meet_no_bank_conflicts(m, n):
    """Each register pair (two halves, one 32-bit word) of a warp's 32 lanes lands in 32 banks."""
    acc = layouts.mma_fragments(m, n, 32, 2, 16, 4)[2]
    rows = lower_layout._padded((m, n), 2)[1]
    for r in range(0, acc.num_registers, 2):
        for warp in range(4):
            words = []
            for lane in range(32):
                row, col = acc.apply(r, lane, warp)
                words.append((row * rows + col) * 2 // 4)
            assert len({w % 32 for w in words}) == 32
