"""What the PTX of the tutorial kernels looks like: 16-byte vector accesses where the axis analysis
proves them legal (and right answers on the simulator either way), warp shuffles in reductions, and
no register spills in ptxas's report."""
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from tests.helpers import poisoned, random_array
from tests.language import test_tutorials as tutorials

needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")


def aligned(values: np.ndarray, misalign: int = 0) -> np.ndarray:
    """A copy of 1-D `values` whose data starts `misalign` elements past a 16-byte boundary."""
    buffer = np.empty(values.size + 16 + misalign, values.dtype)
    start = (-buffer.ctypes.data % 16) // values.itemsize + misalign
    out = buffer[start:start + values.size]
    out[...] = values
    return out


def ptx_of(kernel, *args, arch="sm_80", **meta) -> str:
    return kernel.compile(*args, target="sim", arch=arch, **meta).asm["ptx"]


def global_accesses(ptx: str) -> set[str]:
    """The kinds of global loads and stores in `ptx`: 'ld.global.v4', 'st.global', ..."""
    return set(re.findall(r"\b((?:ld|st)\.global(?:\.v[248])?)\.", ptx))


@pytest.mark.parametrize("n", [4096 + 16, 4096 - 5], ids=["n%16==0", "n%16!=0"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_vector_add_on_aligned_arrays(n, dtype):
    rng = np.random.default_rng()
    x, y = aligned(random_array(rng, n, dtype)), aligned(random_array(rng, n, dtype))
    out = aligned(poisoned(n, dtype))
    args = (x, y, out, n)
    tutorials.add_kernel[(kdsl.cdiv(n, 1024),)](*args, BLOCK_SIZE=1024, num_warps=4, target="sim")
    np.testing.assert_array_equal(out, x + y)
    accesses = global_accesses(ptx_of(tutorials.add_kernel, *args, BLOCK_SIZE=1024, num_warps=4))
    if n % 16 == 0:  # the mask is constant over runs of 16 elements: whole 16-byte vectors
        assert accesses == {"ld.global.v4", "st.global.v4"}
    else:  # the mask may change at any element: one access per element
        assert accesses == {"ld.global", "st.global"}


def test_vector_add_on_pointers_not_known_aligned_falls_back_to_scalar_accesses():
    rng = np.random.default_rng()
    n = 2048
    x, y = aligned(random_array(rng, n, np.float32), 1), aligned(random_array(rng, n, np.float32), 3)
    out = aligned(poisoned(n, np.float32), 2)
    tutorials.add_kernel[(n // 512,)](x, y, out, n, BLOCK_SIZE=512, target="sim")
    np.testing.assert_array_equal(out, x + y)
    accesses = global_accesses(ptx_of(tutorials.add_kernel, x, y, out, n, BLOCK_SIZE=512))
    assert accesses == {"ld.global", "st.global"}


@kdsl.kernel
def masked_copy_with_other(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n, other=offs.to(kl.float32) * -1.0))


def test_masked_vector_loads_give_other_where_masked_off():
    rng = np.random.default_rng()
    n, block = 48, 512
    x = aligned(random_array(rng, 2 * block, np.float32))
    out = aligned(poisoned(2 * block, np.float32))
    masked_copy_with_other[(2,)](x, out, n, BLOCK=block, target="sim")
    offs = np.arange(2 * block)
    np.testing.assert_array_equal(out, np.where(offs < n, x, -offs.astype(np.float32)))
    assert global_accesses(ptx_of(masked_copy_with_other, x, out, n, BLOCK=block)) == {"ld.global.v4",
                                                                                        "st.global.v4"}


@kdsl.kernel
def transpose_tile(x_ptr, out_ptr, M: kl.constexpr, N: kl.constexpr):
    rows, cols = kl.arange(0, M), kl.arange(0, N)
    tile = kl.load(x_ptr + rows[:, None] + cols[None, :] * M)  # x is (N, M): contiguous along rows
    kl.store(out_ptr + rows[:, None] * N + cols[None, :], tile)


def test_loads_contiguous_along_the_first_dimension_are_vectorised_along_it():
    rng = np.random.default_rng()
    m, n = 32, 16
    x = aligned(random_array(rng, m * n, np.float32))
    out = aligned(poisoned(m * n, np.float32))
    transpose_tile[(1,)](x, out, M=m, N=n, target="sim")
    np.testing.assert_array_equal(out.reshape(m, n), x.reshape(n, m).T)
    assert "ld.global.v4" in global_accesses(ptx_of(transpose_tile, x, out, M=m, N=n))


@kdsl.kernel
def halved_gather(x_ptr, out_ptr, BLOCK: kl.constexpr, HINTED: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    same = (offs * 2) // 2  # the analysis knows nothing of //
    if HINTED:
        same = kl.max_contiguous(kl.multiple_of(same, BLOCK), BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + same))


@pytest.mark.parametrize("hinted", [False, True])
def test_multiple_of_and_max_contiguous_let_offsets_the_analysis_cannot_follow_vectorise(hinted):
    rng = np.random.default_rng()
    block = 512  # 4 elements a thread
    x = aligned(random_array(rng, 6 * block, np.float32))
    out = aligned(poisoned(6 * block, np.float32))
    halved_gather[(6,)](x, out, BLOCK=block, HINTED=hinted, target="sim")
    np.testing.assert_array_equal(out, x)
    accesses = global_accesses(ptx_of(halved_gather, x, out, BLOCK=block, HINTED=hinted))
    assert accesses == {"ld.global.v4" if hinted else "ld.global", "st.global.v4"}


@kdsl.kernel
def wrapped_gather(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs % n))


@pytest.mark.parametrize("n, load", [(2048, "ld.global.v4"), (2056, "ld.global")])
def test_offsets_wrapped_by_a_size_keep_the_runs_the_size_allows(n, load):
    """`offs % n` (offs not negative: program ids and aranges) wraps only at multiples of n, so its
    runs are as long as the power of two dividing n: n specialised as a multiple of 16 keeps
    4-element vectors; other n (divisibility is specialised only as 16) give single elements."""
    rng = np.random.default_rng()
    block = 512
    x = aligned(random_array(rng, n, np.float32))
    out = aligned(poisoned(6 * block, np.float32))
    wrapped_gather[(6,)](x, out, n, BLOCK=block, target="sim")
    np.testing.assert_array_equal(out, x[np.arange(6 * block) % n])
    assert load in global_accesses(ptx_of(wrapped_gather, x, out, n, BLOCK=block))


def test_softmax_reduces_across_lanes_with_butterfly_shuffles():
    x = random_array(np.random.default_rng(), (4, 256), np.float32)
    y = poisoned(x.shape, np.float32)
    ptx = ptx_of(tutorials.softmax_kernel, y, x, 256, 256, 4, 256, BLOCK_SIZE=256, num_stages=2)
    assert "shfl.sync.bfly" in ptx


def _tutorial_launches():
    """(name, kernel, example arguments, meta-parameters) of each tutorial kernel, at the sizes
    the tutorials run them."""
    f32, f16 = np.float32, np.float16

    def z(*shape, dtype=f32):
        return np.zeros(shape, dtype)

    attention = dict(HEAD_DIM=64, BLOCK_M=64, BLOCK_N=32, CAUSAL=True)
    strides = [64 * 128 * 2, 128 * 64, 64, 1]
    return [
        ("vector_add", tutorials.add_kernel, (z(4096), z(4096), z(4096), 4096), dict(BLOCK_SIZE=1024)),
        ("softmax", tutorials.softmax_kernel, (z(64, 1024), z(64, 1024), 1024, 1024, 64, 1000),
         dict(BLOCK_SIZE=1024, num_stages=2)),
        ("matmul", tutorials.matmul_kernel, (z(256, 256, dtype=f16), z(256, 256, dtype=f16),
                                             z(256, 256, dtype=f16), 256, 256, 256, 256, 1, 256, 1, 256, 1),
         dict(BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32, GROUP_SIZE_M=8, ACTIVATION="leaky_relu")),
        ("dropout", tutorials._seeded_dropout, (z(4096), z(4096), 4096, 0.5, 123), dict(BLOCK_SIZE=1024)),
        ("layer_norm_fwd", tutorials._layer_norm_fwd_fused,
         (z(64, 1024), z(64, 1024), z(1024), z(1024), z(64), z(64), 1024, 1000, 1e-5), dict(BLOCK_SIZE=1024)),
        ("layer_norm_bwd_dx", tutorials._layer_norm_bwd_dx_fused,
         (z(64, 1024), z(64, 1024), z(32, 1024), z(32, 1024), z(64, 1024), z(1024), z(64), z(64),
          z(64, dtype=np.int32), 1024, 1000), dict(GROUP_SIZE_M=32, BLOCK_SIZE_N=1024)),
        ("layer_norm_bwd_dwdb", tutorials._layer_norm_bwd_dwdb, (z(32, 1024), z(32, 1024), z(1024), z(1024), 32, 1000),
         dict(BLOCK_SIZE_M=32, BLOCK_SIZE_N=128)),
        ("attention", tutorials._attn_fwd,
         (z(1, 2, 128, 64, dtype=f16), z(1, 2, 128, 64, dtype=f16), z(1, 2, 128, 64, dtype=f16), 0.5,
          z(1, 2, 128), z(1, 2, 128, 64, dtype=f16), *strides * 4, 1, 2, 128), attention),
    ]


SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name, kernel, args, meta", _tutorial_launches(), ids=lambda v: v if isinstance(v, str) else "")
def test_tutorial_kernels_do_not_spill_registers(arch, name, kernel, args, meta):
    report = kernel.compile(*args, target="sim", arch=arch, cubin=True, num_warps=4, **meta).asm["ptxas"]
    spills = SPILLS.findall(report)
    assert spills and all(stores == loads == "0" for stores, loads in spills), report
