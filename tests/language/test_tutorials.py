"""Triton's tutorials (python/tutorials/01 to 06) ported to kdsl, run against numpy references.

Each kernel follows the tutorial's code as closely as kdsl's API allows; where it departs,
a comment says why. Interpreted runs stay small: the interpreter takes tens of microseconds
per operation per program.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array
from tests.language.test_dot import UNIT, check_close, tf32_unit

SEED = st.integers(0, 2**32 - 1)


def small(target, cpu_value, interpret_value):
    """A size for the target: the interpreter gets the smaller one."""
    return interpret_value if target == "interpret" else cpu_value


# 01 vector add ------------------------------------------------------------------------------

@kdsl.kernel
def add_kernel(x_ptr, y_ptr, output_ptr, n_elements, BLOCK_SIZE: kl.constexpr):
    pid = kl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + kl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = kl.load(x_ptr + offsets, mask=mask)
    y = kl.load(y_ptr + offsets, mask=mask)
    output = x + y
    kl.store(output_ptr + offsets, output, mask=mask)


def add(x, y, target, block_size=1024):
    output = poisoned(x.shape, x.dtype) if isinstance(x, np.ndarray) else x.new_full(x.shape, float("nan"))
    n_elements = output.size if isinstance(output, np.ndarray) else output.numel()
    grid = lambda meta: (kdsl.cdiv(n_elements, meta["BLOCK_SIZE"]),)
    add_kernel[grid](x, y, output, n_elements, BLOCK_SIZE=block_size, target=target)
    return output


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 5000), dtype=st.sampled_from([np.float32, np.float16, np.int32]),
       block_size=st.sampled_from([16, 128, 1024]), seed=SEED)
def test_vector_add(target, n, dtype, block_size, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, n, dtype), random_array(rng, n, dtype)
    np.testing.assert_array_equal(add(x, y, target, block_size), x + y)


def test_vector_add_on_torch_tensors(target):
    torch = pytest.importorskip("torch")
    x, y = torch.rand(1823), torch.rand(1823)
    assert torch.equal(add(x, y, target), x + y)


# 02 fused softmax (the persistent form: each program walks rows num_programs apart) ----------

@kdsl.kernel
def softmax_kernel(output_ptr, input_ptr, input_row_stride, output_row_stride, n_rows, n_cols,
                   BLOCK_SIZE: kl.constexpr, num_stages: kl.constexpr):
    row_start = kl.program_id(0)
    row_step = kl.num_programs(0)
    for row_idx in kl.range(row_start, n_rows, row_step, num_stages=num_stages):
        row_start_ptr = input_ptr + row_idx * input_row_stride
        col_offsets = kl.arange(0, BLOCK_SIZE)
        input_ptrs = row_start_ptr + col_offsets
        mask = col_offsets < n_cols
        row = kl.load(input_ptrs, mask=mask, other=-float("inf"))
        row_minus_max = row - kl.max(row, axis=0)
        numerator = kl.exp(row_minus_max)
        denominator = kl.sum(numerator, axis=0)
        softmax_output = numerator / denominator
        output_row_start_ptr = output_ptr + row_idx * output_row_stride
        output_ptrs = output_row_start_ptr + col_offsets
        kl.store(output_ptrs, softmax_output, mask=mask)


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), pad=st.integers(0, 7), programs=st.integers(1, 8),
       seed=SEED)
def test_softmax_on_strided_rows(target, rows, cols, pad, programs, seed):
    x = random_array(np.random.default_rng(seed), (rows, cols + pad), np.float32)[:, :cols]
    y = poisoned((rows, cols), np.float32)
    softmax_kernel[(min(programs, rows),)](y, x, x.strides[0] // 4, y.strides[0] // 4, rows, cols,
                                            BLOCK_SIZE=kdsl.next_power_of_2(cols), num_stages=2, target=target)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


# 03 matrix multiplication with grouped ordering ----------------------------------------------

@kdsl.kernel
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_SIZE_M: kl.constexpr, BLOCK_SIZE_N: kl.constexpr, BLOCK_SIZE_K: kl.constexpr,
                  GROUP_SIZE_M: kl.constexpr, ACTIVATION: kl.constexpr):
    pid = kl.program_id(axis=0)
    num_pid_m = kl.cdiv(M, BLOCK_SIZE_M)
    num_pid_n = kl.cdiv(N, BLOCK_SIZE_N)
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    offs_am = (pid_m * BLOCK_SIZE_M + kl.arange(0, BLOCK_SIZE_M)) % M
    offs_bn = (pid_n * BLOCK_SIZE_N + kl.arange(0, BLOCK_SIZE_N)) % N
    offs_k = kl.arange(0, BLOCK_SIZE_K)
    a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
    accumulator = kl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=kl.float32)
    for k in range(0, kl.cdiv(K, BLOCK_SIZE_K)):
        a = kl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_SIZE_K, other=0.0)
        b = kl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
        accumulator = kl.dot(a, b, accumulator)
        a_ptrs += BLOCK_SIZE_K * stride_ak
        b_ptrs += BLOCK_SIZE_K * stride_bk
    if ACTIVATION == "leaky_relu":
        accumulator = leaky_relu(accumulator)
    c = accumulator.to(c_ptr.dtype.element_ty)

    offs_cm = pid_m * BLOCK_SIZE_M + kl.arange(0, BLOCK_SIZE_M)
    offs_cn = pid_n * BLOCK_SIZE_N + kl.arange(0, BLOCK_SIZE_N)
    c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
    c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    kl.store(c_ptrs, c, mask=c_mask)


@kdsl.kernel
def leaky_relu(x):
    return kl.where(x >= 0, x, 0.01 * x)


def elements(x):
    return [s // x.itemsize for s in x.strides]


def matmul(a, b, target, activation="", out_dtype=np.float16, blocks=(32, 32, 16), group=4):
    (M, K), N = a.shape, b.shape[1]
    c = poisoned((M, N), out_dtype)
    bm, bn, bk = blocks
    grid = lambda META: (kdsl.cdiv(M, META["BLOCK_SIZE_M"]) * kdsl.cdiv(N, META["BLOCK_SIZE_N"]),)
    matmul_kernel[grid](a, b, c, M, N, K, *elements(a), *elements(b), *elements(c), BLOCK_SIZE_M=bm,
                        BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk, GROUP_SIZE_M=group, ACTIVATION=activation, target=target)
    return c


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@settings(max_examples=3, deadline=None)
@given(m=st.integers(1, 100), n=st.integers(1, 100), k=st.integers(1, 80), seed=SEED)
def test_matmul_with_masked_edges(target, dtype, m, n, k, seed):
    rng = np.random.default_rng(seed)
    a, b = random_array(rng, (m, k), dtype), random_array(rng, (k, n), dtype)
    check_close(matmul(a, b, target, out_dtype=np.float32), a, b, None, UNIT[np.float32],
                tf32_unit(target, dtype, None))


@pytest.mark.parametrize("blocks, group", [((16, 32, 8), 3), ((64, 16, 32), 8)])
def test_grouped_ordering_covers_every_tile(target, blocks, group):
    rng = np.random.default_rng(11)
    a, b = random_array(rng, (77, 45), np.float16), random_array(rng, (45, 130), np.float16)
    c = matmul(a, b, target, blocks=blocks, group=group)
    check_close(c.astype(np.float32), a, b, None, UNIT[np.float16])


def test_transposed_operand_through_strides(target):
    rng = np.random.default_rng(5)
    a, b = random_array(rng, (40, 24), np.float32), random_array(rng, (33, 24), np.float32).T
    check_close(matmul(a, b, target, out_dtype=np.float32), a, b, None, UNIT[np.float32],
                tf32_unit(target, np.float32, None))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_leaky_relu_epilogue_as_a_device_function(target, dtype):
    rng = np.random.default_rng(9)
    a, b = random_array(rng, (50, 70), dtype), random_array(rng, (70, 60), dtype)
    c = matmul(a, b, target, activation="leaky_relu", out_dtype=np.float32)
    exact = a.astype(np.float64) @ b
    expected = np.where(exact >= 0, exact, 0.01 * exact)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert (np.abs(c - expected) <= (72 * UNIT[np.float32] + 2 * tf32_unit(target, dtype, None)) * scale).all()


# 04 low-memory dropout, with Triton's counter-based RNG (language/random.py) written in kdsl ---

PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
N_ROUNDS_DEFAULT = 10


@kdsl.kernel
def philox_impl(c0, c1, c2, c3, k0, k1, n_rounds: kl.constexpr = N_ROUNDS_DEFAULT):
    """Philox 4x32: `n_rounds` rounds on the counter (c0, c1, c2, c3) with the key (k0, k1), all uint32."""
    for _ in kl.static_range(n_rounds):
        A = PHILOX_ROUND_A
        B = PHILOX_ROUND_B
        _c0, _c2 = c0, c2
        c0 = kl.umulhi(B, _c2) ^ c1 ^ k0
        c2 = kl.umulhi(A, _c0) ^ c3 ^ k1
        c1 = B * _c2
        c3 = A * _c0
        k0 = k0 + PHILOX_KEY_A
        k1 = k1 + PHILOX_KEY_B
    return c0, c1, c2, c3


@kdsl.kernel
def philox(seed, c0, c1, c2, c3, n_rounds: kl.constexpr = N_ROUNDS_DEFAULT):
    """The 32-bit counter case of Triton's `philox`: the 64-bit seed is the key."""
    seed = seed.to(kl.uint64)
    seed_hi = ((seed >> 32) & 0xFFFFFFFF).to(kl.uint32)
    seed_lo = (seed & 0xFFFFFFFF).to(kl.uint32)
    c0 = c0.to(kl.uint32, bitcast=True)
    c1 = c1.to(kl.uint32, bitcast=True)
    c2 = c2.to(kl.uint32, bitcast=True)
    c3 = c3.to(kl.uint32, bitcast=True)
    return philox_impl(c0, c1, c2, c3, seed_lo, seed_hi, n_rounds)


@kdsl.kernel
def randint(seed, offset, n_rounds: kl.constexpr = N_ROUNDS_DEFAULT):
    ret, _, _, _ = randint4x(seed, offset, n_rounds)
    return ret


@kdsl.kernel
def randint4x(seed, offset, n_rounds: kl.constexpr = N_ROUNDS_DEFAULT):
    kl.static_assert(offset.dtype.bits == 32, "32-bit offsets only in this port")
    offset_lo = offset.to(kl.uint32)
    _0 = offset_lo * 0
    return philox(seed, offset_lo, _0, _0, _0, n_rounds)


@kdsl.kernel
def uint_to_uniform_float(x):
    """A uint32 block as floats in [0, 1): the largest scale with `MAX_INT * scale < 1.0` in fp32."""
    x = x.to(kl.int32, bitcast=True)
    scale = 4.6566127342e-10
    x = kl.where(x < 0, -x - 1, x)
    return x * scale


@kdsl.kernel
def rand(seed, offset, n_rounds: kl.constexpr = N_ROUNDS_DEFAULT):
    source = randint(seed, offset, n_rounds)
    return uint_to_uniform_float(source)


@kdsl.kernel
def _seeded_dropout(x_ptr, output_ptr, n_elements, p, seed, BLOCK_SIZE: kl.constexpr):
    pid = kl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + kl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = kl.load(x_ptr + offsets, mask=mask)
    random = rand(seed, offsets)
    x_keep = random > p
    output = kl.where(x_keep, x / (1 - p), 0.0)
    kl.store(output_ptr + offsets, output, mask=mask)


def seeded_dropout(x, p, seed, target):
    output = poisoned(x.shape, x.dtype)
    n_elements = x.size
    grid = lambda meta: (kdsl.cdiv(n_elements, meta["BLOCK_SIZE"]),)
    _seeded_dropout[grid](x, output, n_elements, p, seed, BLOCK_SIZE=small(target, 1024, 128), target=target)
    return output


def philox_reference(seed, counters, n_rounds=N_ROUNDS_DEFAULT):
    """Philox 4x32 in numpy: `counters` is a (4, n) uint32 array, the key the 64-bit `seed`."""
    seed = int(seed)
    c = [np.array(ci, np.uint64) for ci in counters]
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(n_rounds):
        prod_b, prod_a = np.uint64(PHILOX_ROUND_B) * c[2], np.uint64(PHILOX_ROUND_A) * c[0]
        c = [(prod_b >> np.uint64(32)) ^ c[1] ^ k0, prod_b & mask, (prod_a >> np.uint64(32)) ^ c[3] ^ k1, prod_a & mask]
        k0, k1 = (k0 + np.uint64(PHILOX_KEY_A)) & mask, (k1 + np.uint64(PHILOX_KEY_B)) & mask
    return np.stack(c).astype(np.uint32)


def uniform_reference(seed, offsets):
    """`rand(seed, offsets)` in numpy."""
    x = philox_reference(seed, [offsets.astype(np.uint32)] + [np.zeros(offsets.shape, np.uint32)] * 3)[0]
    x = x.view(np.int32)
    x = np.where(x < 0, -(x.astype(np.int64)) - 1, x).astype(np.int32)
    return x.astype(np.float32) * np.float32(4.6566127342e-10)


# Known answers for philox4x32-10 from Random123's kat_vectors: (counter, key, result).
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@kdsl.kernel
def philox_kernel(counters_ptr, out_ptr, seed, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    c0 = kl.load(counters_ptr + offs, mask=mask)
    c1 = kl.load(counters_ptr + n + offs, mask=mask)
    c2 = kl.load(counters_ptr + 2 * n + offs, mask=mask)
    c3 = kl.load(counters_ptr + 3 * n + offs, mask=mask)
    r0, r1, r2, r3 = philox(seed, c0, c1, c2, c3)
    kl.store(out_ptr + offs, r0, mask=mask)
    kl.store(out_ptr + n + offs, r1, mask=mask)
    kl.store(out_ptr + 2 * n + offs, r2, mask=mask)
    kl.store(out_ptr + 3 * n + offs, r3, mask=mask)


def run_philox(counters, seed, target):
    counters = np.ascontiguousarray(counters, np.uint32)
    n = counters.shape[1]
    out = poisoned((4, n), np.uint32)
    philox_kernel[(kdsl.cdiv(n, 64),)](counters, out, seed, n, BLOCK=64, target=target)
    return out


def test_philox_known_answers(target):
    counters = np.array([counter for counter, _, _ in PHILOX_KNOWN_ANSWERS], np.uint32).T
    for i, (_, (k0, k1), result) in enumerate(PHILOX_KNOWN_ANSWERS):
        seed = np.uint64(k0 | k1 << 32)  # one argument type for every key: fewer specializations
        np.testing.assert_array_equal(philox_reference(seed, counters[:, i:i + 1])[:, 0], result)
        np.testing.assert_array_equal(run_philox(counters[:, i:i + 1], seed, target)[:, 0], result)


@settings(max_examples=5, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**63 - 1), data_seed=SEED)
def test_philox_matches_numpy(target, n, seed, data_seed):
    counters = random_array(np.random.default_rng(data_seed), (4, n), np.uint32, full_range=True)
    np.testing.assert_array_equal(run_philox(counters, seed, target), philox_reference(seed, counters))


@settings(max_examples=5, deadline=None)
@given(n=st.integers(1, 3000), p=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**31 - 1), data_seed=SEED)
def test_seeded_dropout_keep_mask_and_scale(target, n, p, seed, data_seed):
    x = random_array(np.random.default_rng(data_seed), n, np.float32)
    output = seeded_dropout(x, p, seed, target)
    keep = uniform_reference(seed, np.arange(n)) > np.float32(p)
    np.testing.assert_array_equal(output, np.where(keep, x / (np.float32(1) - np.float32(p)), np.float32(0)))


def test_seeded_dropout_is_deterministic_per_seed(target):
    x = random_array(np.random.default_rng(0), 2000, np.float32)
    first, again = seeded_dropout(x, 0.5, 123, target), seeded_dropout(x, 0.5, 123, target)
    other = seeded_dropout(x, 0.5, 512, target)
    np.testing.assert_array_equal(first, again)
    assert ((first == 0) != (other == 0)).mean() > 0.3


@kdsl.kernel
def rand_kernel(out_ptr, seed, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, rand(seed, offs), mask=offs < n)


def test_random_stream_looks_uniform(target):
    n = small(target, 1 << 16, 1 << 12)
    u = poisoned(n, np.float32)
    rand_kernel[(kdsl.cdiv(n, 1024),)](u, 2024, n, BLOCK=1024, target=target)
    np.testing.assert_array_equal(u, uniform_reference(2024, np.arange(n)))
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    counts = np.bincount((u * 16).astype(int), minlength=16)
    chi2 = ((counts - n / 16) ** 2 / (n / 16)).sum()
    assert chi2 < 56  # 15 degrees of freedom: the 99.9999th percentile is about 56.5
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / np.sqrt(n)


# 05 layer norm, forward and backward ---------------------------------------------------------

@kdsl.kernel
def _layer_norm_fwd_fused(X, Y, W, B, Mean, Rstd, stride, N, eps, BLOCK_SIZE: kl.constexpr):
    row = kl.program_id(0)
    Y += row * stride
    X += row * stride
    _mean = kl.zeros([BLOCK_SIZE], dtype=kl.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + kl.arange(0, BLOCK_SIZE)
        a = kl.load(X + cols, mask=cols < N, other=0.).to(kl.float32)
        _mean += a
    mean = kl.sum(_mean, axis=0) / N
    _var = kl.zeros([BLOCK_SIZE], dtype=kl.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + kl.arange(0, BLOCK_SIZE)
        x = kl.load(X + cols, mask=cols < N, other=0.).to(kl.float32)
        x = kl.where(cols < N, x - mean, 0.)
        _var += x * x
    var = kl.sum(_var, axis=0) / N
    rstd = 1 / kl.sqrt(var + eps)
    kl.store(Mean + row, mean)
    kl.store(Rstd + row, rstd)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + kl.arange(0, BLOCK_SIZE)
        mask = cols < N
        w = kl.load(W + cols, mask=mask)
        b = kl.load(B + cols, mask=mask)
        x = kl.load(X + cols, mask=mask, other=0.).to(kl.float32)
        x_hat = (x - mean) * rstd
        y = x_hat * w + b
        kl.store(Y + cols, y, mask=mask)


@kdsl.kernel
def _layer_norm_bwd_dx_fused(DX, DY, DW, DB, X, W, Mean, Rstd, Lock, stride, N, GROUP_SIZE_M: kl.constexpr,
                             BLOCK_SIZE_N: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK_SIZE_N)
    mask = cols < N
    X += row * stride
    DY += row * stride
    DX += row * stride
    # Each program adds its partial dW and dB into one of GROUP_SIZE_M rows, under that row's lock.
    lock_id = row % GROUP_SIZE_M
    Lock += lock_id
    Count = Lock + GROUP_SIZE_M
    DW = DW + lock_id * N + cols
    DB = DB + lock_id * N + cols
    x = kl.load(X + cols, mask=mask, other=0).to(kl.float32)
    dy = kl.load(DY + cols, mask=mask, other=0).to(kl.float32)
    w = kl.load(W + cols, mask=mask).to(kl.float32)
    mean = kl.load(Mean + row)
    rstd = kl.load(Rstd + row)
    xhat = (x - mean) * rstd
    wdy = w * dy
    xhat = kl.where(mask, xhat, 0.)
    wdy = kl.where(mask, wdy, 0.)
    c1 = kl.sum(xhat * wdy, axis=0) / N
    c2 = kl.sum(wdy, axis=0) / N
    dx = (wdy - (xhat * c1 + c2)) * rstd
    kl.store(DX + cols, dx, mask=mask)
    partial_dw = (dy * xhat).to(w.dtype)
    partial_db = (dy).to(w.dtype)
    while kl.atomic_cas(Lock, 0, 1) == 1:
        pass
    count = kl.load(Count)
    if count == 0:  # the first store does not accumulate
        kl.atomic_xchg(Count, 1)
    else:
        partial_dw += kl.load(DW, mask=mask)
        partial_db += kl.load(DB, mask=mask)
    kl.store(DW, partial_dw, mask=mask)
    kl.store(DB, partial_db, mask=mask)
    kl.atomic_xchg(Lock, 0)


@kdsl.kernel
def _layer_norm_bwd_dwdb(DW, DB, FINAL_DW, FINAL_DB, M, N, BLOCK_SIZE_M: kl.constexpr, BLOCK_SIZE_N: kl.constexpr):
    pid = kl.program_id(0)
    cols = pid * BLOCK_SIZE_N + kl.arange(0, BLOCK_SIZE_N)
    dw = kl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=kl.float32)
    db = kl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=kl.float32)
    for i in range(0, M, BLOCK_SIZE_M):
        rows = i + kl.arange(0, BLOCK_SIZE_M)
        mask = (rows[:, None] < M) & (cols[None, :] < N)
        offs = rows[:, None] * N + cols[None, :]
        dw += kl.load(DW + offs, mask=mask, other=0.)
        db += kl.load(DB + offs, mask=mask, other=0.)
    sum_dw = kl.sum(dw, axis=0)
    sum_db = kl.sum(db, axis=0)
    kl.store(FINAL_DW + cols, sum_dw, mask=cols < N)
    kl.store(FINAL_DB + cols, sum_db, mask=cols < N)


def layer_norm_forward(x, weight, bias, eps, block_size, target):
    M, N = x.shape
    y = poisoned(x.shape, x.dtype)
    mean, rstd = poisoned(M, np.float32), poisoned(M, np.float32)
    _layer_norm_fwd_fused[(M,)](x, y, weight, bias, mean, rstd, x.strides[0] // x.itemsize, N, eps,
                                BLOCK_SIZE=block_size, target=target)
    return y, mean, rstd


def layer_norm_backward(dy, x, weight, mean, rstd, group_size_m, target):
    M, N = x.shape
    locks = np.zeros(2 * group_size_m, np.int32)
    _dw, _db = poisoned((group_size_m, N), x.dtype), poisoned((group_size_m, N), x.dtype)
    dw, db = poisoned(N, weight.dtype), poisoned(N, weight.dtype)
    dx = poisoned(dy.shape, dy.dtype)
    _layer_norm_bwd_dx_fused[(M,)](dx, dy, _dw, _db, x, weight, mean, rstd, locks, x.strides[0] // x.itemsize, N,
                                   BLOCK_SIZE_N=kdsl.next_power_of_2(N), GROUP_SIZE_M=group_size_m, target=target)
    grid = lambda meta: (kdsl.cdiv(N, meta["BLOCK_SIZE_N"]),)
    # The partial buffers start poisoned (the tutorial's start empty): with M < GROUP_SIZE_M the rows
    # no program wrote are left out of the sum.
    _layer_norm_bwd_dwdb[grid](_dw, _db, dw, db, min(group_size_m, M), N, BLOCK_SIZE_M=32, BLOCK_SIZE_N=128,
                               target=target)
    assert (locks[:group_size_m] == 0).all() and (locks[group_size_m:] == (np.arange(group_size_m) < M)).all()
    return dx, dw, db


def layer_norm_reference(x, w, b, dy, eps):
    """y and the gradients of sum(y * dy) with respect to x, w and b, in float64."""
    x, w, b, dy = (v.astype(np.float64) for v in (x, w, b, dy))
    mean = x.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    wdy = w * dy
    dx = (wdy - xhat * (xhat * wdy).mean(axis=1, keepdims=True) - wdy.mean(axis=1, keepdims=True)) * rstd
    return xhat * w + b, mean[:, 0], rstd[:, 0], dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def layer_norm_inputs(rng, M, N, dtype):
    """As the tutorial's test: x around -2.3, weights and biases in [0, 1), small upstream gradients."""
    x = (-2.3 + 0.5 * rng.standard_normal((M, N))).astype(dtype)
    weight, bias = rng.random(N).astype(dtype), rng.random(N).astype(dtype)
    dy = (0.1 * rng.standard_normal((M, N))).astype(dtype)
    return x, weight, bias, dy


@settings(max_examples=4, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 300), dtype=st.sampled_from([np.float16, np.float32]),
       block=st.sampled_from([16, 128]), seed=SEED)
def test_layer_norm_forward(target, m, n, dtype, block, seed):
    rng = np.random.default_rng(seed)
    m, n = small(target, m, min(m, 8)), small(target, n, min(n, 100))
    x, weight, bias, dy = layer_norm_inputs(rng, m, n, dtype)
    y, mean, rstd = layer_norm_forward(x, weight, bias, 1e-5, block, target)
    y_ref, mean_ref, rstd_ref, *_ = layer_norm_reference(x, weight, bias, dy, 1e-5)
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(y.astype(np.float64), y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-6)
    np.testing.assert_allclose(rstd, rstd_ref, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@settings(max_examples=3, deadline=None)
@given(m=st.integers(1, 60), n=st.integers(1, 200), group=st.sampled_from([1, 4, 16]), seed=SEED)
def test_layer_norm_backward_accumulates_dw_db_under_locks(target, dtype, m, n, group, seed):
    rng = np.random.default_rng(seed)
    m, n = small(target, m, min(m, 12)), small(target, n, min(n, 64))
    x, weight, bias, dy = layer_norm_inputs(rng, m, n, dtype)
    _, mean, rstd = layer_norm_forward(x, weight, bias, 1e-5, 128, target)
    dx, dw, db = layer_norm_backward(dy, x, weight, mean, rstd, group, target)
    _, _, rstd_ref, dx_ref, dw_ref, db_ref = layer_norm_reference(x, weight, bias, dy, 1e-5)
    tol = 1e-2 if dtype == np.float16 else 1e-5
    # dx is rstd times a difference of terms of the size of w * dy: where the row's spread is small
    # (rstd large) it is large and the rounding of those terms, not of dx, sets its error
    dx_scale = rstd_ref[:, None] * np.abs(weight.astype(np.float64) * dy).max(axis=1, keepdims=True) * 4
    np.testing.assert_array_less(np.abs(dx.astype(np.float64) - dx_ref), tol * (np.abs(dx_ref) + np.maximum(dx_scale, 1)))
    scale = np.abs(dy.astype(np.float64)).sum(axis=0) * 4 + 1
    np.testing.assert_allclose(dw.astype(np.float64), dw_ref, rtol=0, atol=tol * scale.max())
    np.testing.assert_allclose(db.astype(np.float64), db_ref, rtol=0, atol=tol * scale.max())


# 06 fused attention, forward -----------------------------------------------------------------
# Triton's tutorial walks Q, K and V with block pointers (tl.make_block_ptr, tl.advance); kdsl
# has none, so these use the pointer blocks the block pointers describe: K is read transposed
# (HEAD_DIM x BLOCK_N) through its strides. The fp8 V path is left out; the inner function takes
# offs_m, offs_n and N_CTX as the runtime values they are (the tutorial annotates them constexpr).

@kdsl.kernel
def _attn_fwd_inner(acc, l_i, m_i, q, K_ptrs, V_ptrs, start_m, qk_scale, stride_kn, stride_vk,
                    BLOCK_M: kl.constexpr, HEAD_DIM: kl.constexpr, BLOCK_N: kl.constexpr, CAUSAL: kl.constexpr,
                    offs_m, offs_n, N_CTX):
    if CAUSAL:
        causal_start = start_m * BLOCK_M
    else:
        causal_start = N_CTX
    lo, hi = 0, N_CTX
    for start_n in range(lo, hi, BLOCK_N):
        start_n = kl.multiple_of(start_n, BLOCK_N)
        # -- compute qk ----
        k = kl.load(K_ptrs)
        qk = kl.dot(q, k)
        if start_n >= causal_start:
            mask = offs_m[:, None] >= (start_n + offs_n[None, :])
            qk = qk * qk_scale + kl.where(mask, 0, -1.0e6)
            m_ij = kl.maximum(m_i, kl.max(qk, 1))
            qk -= m_ij[:, None]
        else:
            m_ij = kl.maximum(m_i, kl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        p = kl.exp2(qk)
        l_ij = kl.sum(p, 1)
        # -- update m_i and l_i
        alpha = kl.exp2(m_i - m_ij)
        l_i = l_i * alpha + l_ij
        # -- update output accumulator --
        acc = acc * alpha[:, None]
        v = kl.load(V_ptrs)
        p = p.to(kl.float16)
        acc = kl.dot(p, v, acc)
        m_i = m_ij
        V_ptrs += BLOCK_N * stride_vk
        K_ptrs += BLOCK_N * stride_kn
    return acc, l_i, m_i


@kdsl.kernel
def _attn_fwd(Q, K, V, sm_scale, M, Out,
              stride_qz, stride_qh, stride_qm, stride_qk,
              stride_kz, stride_kh, stride_kn, stride_kk,
              stride_vz, stride_vh, stride_vk, stride_vn,
              stride_oz, stride_oh, stride_om, stride_on,
              Z, H, N_CTX,
              HEAD_DIM: kl.constexpr, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, CAUSAL: kl.constexpr):
    kl.static_assert(BLOCK_N <= HEAD_DIM)
    start_m = kl.program_id(0)
    off_hz = kl.program_id(1)
    off_z = off_hz // H
    off_h = off_hz % H
    qvk_offset = off_z.to(kl.int64) * stride_qz + off_h.to(kl.int64) * stride_qh
    # initialize offsets
    offs_m = start_m * BLOCK_M + kl.arange(0, BLOCK_M)
    offs_n = kl.arange(0, BLOCK_N)
    offs_d = kl.arange(0, HEAD_DIM)
    Q_ptrs = Q + qvk_offset + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qk
    K_ptrs = K + qvk_offset + offs_d[:, None] * stride_kk + offs_n[None, :] * stride_kn
    V_ptrs = V + qvk_offset + offs_n[:, None] * stride_vk + offs_d[None, :] * stride_vn
    O_ptrs = Out + qvk_offset + offs_m[:, None] * stride_om + offs_d[None, :] * stride_on
    # initialize pointer to m and l
    m_i = kl.zeros([BLOCK_M], dtype=kl.float32) - float("inf")
    l_i = kl.zeros([BLOCK_M], dtype=kl.float32) + 1.0
    acc = kl.zeros([BLOCK_M, HEAD_DIM], dtype=kl.float32)
    # load scales
    qk_scale = sm_scale
    qk_scale *= 1.44269504  # 1/log(2)
    # load q: it will stay in SRAM throughout
    q = kl.load(Q_ptrs)
    acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, K_ptrs, V_ptrs, start_m, qk_scale, stride_kn, stride_vk,
                                    BLOCK_M, HEAD_DIM, BLOCK_N, CAUSAL, offs_m, offs_n, N_CTX)
    # epilogue
    m_i += kl.log2(l_i)
    acc = acc / l_i[:, None]
    m_ptrs = M + off_hz * N_CTX + offs_m
    kl.store(m_ptrs, m_i)
    kl.store(O_ptrs, acc.to(Out.dtype.element_ty))


def attention(q, k, v, causal, sm_scale, block_m, block_n, target):
    Z, H, N_CTX, HEAD_DIM = q.shape
    o = poisoned(q.shape, q.dtype)
    M = poisoned((Z, H, N_CTX), np.float32)
    grid = lambda args: (kdsl.cdiv(q.shape[2], args["BLOCK_M"]), q.shape[0] * q.shape[1], 1)
    _attn_fwd[grid](q, k, v, sm_scale, M, o, *elements(q), *elements(k), *elements(v), *elements(o), Z, H, N_CTX,
                    HEAD_DIM=HEAD_DIM, BLOCK_M=block_m, BLOCK_N=block_n, CAUSAL=causal, target=target)
    return o, M


def attention_reference(q, k, v, causal, sm_scale):
    """The output and the log2-sum-exp2 of each row of scaled scores, in float64."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    scores = q @ k.swapaxes(-1, -2) * sm_scale
    if causal:
        n = q.shape[2]
        scores = np.where(np.tril(np.ones((n, n), bool)), scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - row_max)
    lse2 = (row_max[..., 0] + np.log(e.sum(axis=-1))) / np.log(2)
    return e / e.sum(axis=-1, keepdims=True) @ v, lse2


@pytest.mark.parametrize("causal", [False, True])
@settings(max_examples=3, deadline=None)
@given(z=st.integers(1, 2), h=st.integers(1, 3), blocks=st.sampled_from([(16, 16), (32, 16), (16, 8)]),
       n_blocks=st.integers(1, 4), head_dim=st.sampled_from([16, 32]), seed=SEED)
def test_fused_attention_forward(target, causal, z, h, blocks, n_blocks, head_dim, seed):
    rng = np.random.default_rng(seed)
    block_m, block_n = blocks
    n_ctx = block_m * n_blocks
    q, k, v = (rng.normal(0.0, 0.5, (z, h, n_ctx, head_dim)).astype(np.float16) for _ in range(3))
    sm_scale = 0.5
    o, lse2 = attention(q, k, v, causal, sm_scale, block_m, block_n, target)
    o_ref, lse2_ref = attention_reference(q, k, v, causal, sm_scale)
    np.testing.assert_allclose(o.astype(np.float64), o_ref, rtol=0, atol=1e-2)
    np.testing.assert_allclose(lse2, lse2_ref, rtol=1e-4, atol=1e-4)
