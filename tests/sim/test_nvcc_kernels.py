"""CUDA C compiled by nvcc, simulated, and checked against numpy."""
import numpy as np

import kdsl.sim as sim

rng = np.random.default_rng()


def test_saxpy(cuda_ptx):
    n = 1000
    x, y = rng.random(n, np.float32) + 0.5, rng.random(n, np.float32) + 0.5
    out = np.full(n + 24, np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "saxpy", (4, 1, 1), (256, 1, 1), [x, y, out, ("f32", 1.5), ("s32", n)])
    np.testing.assert_allclose(out[:n], np.float32(1.5) * x + y, rtol=1e-6)
    assert np.isnan(out[n:]).all()


def test_warp_shuffle_reduction(cuda_ptx):
    n = 3000
    x = rng.random(n, np.float32)
    out = np.zeros(1, np.float32)
    sim.launch_ptx(cuda_ptx, "warp_sum", (12, 1, 1), (256, 1, 1), [x, out, ("s32", n)])
    np.testing.assert_allclose(out[0], x.sum(dtype=np.float64), rtol=1e-5)


def test_shared_transpose(cuda_ptx):
    rows, cols = 40, 70
    a = rng.random((rows, cols), np.float32)
    out = np.full((cols, rows), np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "transpose", (3, 2, 1), (32, 32, 1), [a, out, ("s32", rows), ("s32", cols)])
    np.testing.assert_array_equal(out, a.T)


def test_atomic_histogram(cuda_ptx):
    n, nbins = 2000, 7
    data = rng.integers(0, 1 << 20, n, dtype=np.uint32)
    bins = np.zeros(nbins, np.uint32)
    sim.launch_ptx(cuda_ptx, "histogram", (8, 1, 1), (256, 1, 1), [data, bins, ("s32", n), ("s32", nbins)])
    np.testing.assert_array_equal(bins, np.bincount(data % nbins, minlength=nbins))


def _collatz(v: int) -> int:
    s = 0
    while v != 1:
        v = 3 * v + 1 if v & 1 else v >> 1
        s += 1
    return s


def test_divergent_loop(cuda_ptx):
    n = 100
    data = rng.integers(1, 300, n, dtype=np.int32)
    out = np.full(n, -7, np.int32)
    sim.launch_ptx(cuda_ptx, "collatz", (1, 1, 1), (128, 1, 1), [data, out, ("s32", n)])
    np.testing.assert_array_equal(out, [_collatz(int(v)) for v in data])


def test_mixed_integer_and_double(cuda_ptx):
    n = 200
    a = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    d = rng.standard_normal(n)
    o64, of, oh = np.zeros(n, np.int64), np.full(n, np.nan, np.float32), np.zeros(n, np.uint16)
    sim.launch_ptx(cuda_ptx, "mixed", (2, 1, 1), (128, 1, 1), [a, d, o64, of, oh, ("s32", n)])
    x = a.astype(np.int64)
    prod = x * 123456789
    expect = np.where(prod < 0, -(-prod // 7), prod // 7) + np.fmod(x, 13) - (a.view(np.uint32).astype(np.int64) // 3)
    np.testing.assert_array_equal(o64, expect)
    np.testing.assert_array_equal(of, (d * 0.5 + (x >> 3)).astype(np.float32))
    u = a.view(np.uint32)
    popc = np.array([bin(int(v)).count("1") for v in u])
    clz = np.array([32 - int(v).bit_length() for v in u])
    brev = np.array([int(f"{int(v):032b}"[::-1], 2) for v in u])
    np.testing.assert_array_equal(oh, ((popc + clz * 64 + (brev & 0xF) * 4096) & 0xFFFF).astype(np.uint16))


def test_device_function_calls_with_divergent_returns(cuda_ptx):
    n = 100
    x = rng.random(n, np.float32)
    out = np.full(2 * n + 8, np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "calls", (1, 1, 1), (128, 1, 1), [x, out, ("s32", n)])
    i = np.arange(n)
    fma = x.astype(np.float64) ** 2 + i  # nvcc contracts x * x + k into one fma
    v = np.where(i & 1, fma, x - i).astype(np.float32)
    np.testing.assert_array_equal(out[0:2 * n:2], v)
    np.testing.assert_array_equal(out[1:2 * n:2], 2 * v)
    assert np.isnan(out[2 * n:]).all()


def test_warp_level_primitives(cuda_ptx):
    v = rng.integers(-1000, 1000, 64).astype(np.int32)
    out = np.full((64, 10), -12345, np.int32)
    sim.launch_ptx(cuda_ptx, "warp_ops", 1, 64, [v, out])
    for w in range(2):
        x = v[32 * w: 32 * w + 32].astype(np.int64)
        o = out[32 * w: 32 * w + 32]
        lane = np.arange(32)
        up = np.where(lane % 16 >= 3, x[lane - 3], x)
        np.testing.assert_array_equal(o[:, 0], up)
        down = np.where(lane % 8 + 5 < 8, x[np.minimum(lane + 5, 31)], x)
        np.testing.assert_array_equal(o[:, 1], down)
        np.testing.assert_array_equal(o[:, 2], x[(lane * 7) & 31])
        ballot = sum(1 << i for i in range(32) if x[i] & 1)
        np.testing.assert_array_equal(o[:, 3].view(np.uint32), ballot)
        odd = x & 1
        flags = int((x > -1000).all()) + 2 * int((x > 900).any()) + 4 * int((odd == odd[0]).all())
        np.testing.assert_array_equal(o[:, 4], flags)
        np.testing.assert_array_equal(o[:, 5], x.sum())
        np.testing.assert_array_equal(o[:, 6], x.max())
        match = [sum(1 << j for j in range(32) if (x[j] & 3) == (x[i] & 3)) for i in range(32)]
        np.testing.assert_array_equal(o[:, 7].view(np.uint32), np.array(match, np.uint64).astype(np.uint32))
        np.testing.assert_array_equal(o[:, 8].view(np.uint32), np.where(odd == 1, ballot, 0xFFFFFFFF))
        np.testing.assert_array_equal(o[:, 9], np.bitwise_xor.reduce(x))


def test_local_array_and_dynamic_shared(cuda_ptx):
    n = 96
    v = rng.integers(-50, 50, n).astype(np.int32)
    out = np.full(n, -1, np.int32)
    sim.launch_ptx(cuda_ptx, "local_and_dynamic_shared", 1, n, [v, out, ("s32", n)], shared_bytes=4 * n)
    dyn = v * (v & 15)
    np.testing.assert_array_equal(out, np.roll(dyn, -1))


def test_shared_atomics_serialise(cuda_ptx):
    v = rng.integers(-2**20, 2**20, 128).astype(np.int32)
    out = np.full(132, -1, np.int32)
    sim.launch_ptx(cuda_ptx, "shared_atomics", 1, 128, [v, out])
    assert sorted(out[:128]) == list(range(128))
    np.testing.assert_array_equal(out[128:], [max(0, v.max()), min(1 << 30, v.min()),
                                              np.bitwise_xor.reduce(v), 128])


def test_strided_array_argument_is_the_array_memory(cuda_ptx):
    """A strided view passes a pointer to its first element; the kernel sees the underlying layout."""
    base = rng.random((8, 130), np.float32) + 1
    x = base[::2, 1:]  # rows 0, 2, 4, 6, starting at column 1
    y = np.ones(4 * 130, np.float32)
    out = np.full((4, 130), np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "saxpy", (3, 1, 1), (256, 1, 1), [x, y, out, ("f32", 2.0), ("s32", 4 * 130)])
    expect = 2 * base.reshape(-1)[1: 1 + 4 * 130] + 1
    np.testing.assert_allclose(out.reshape(-1), expect, rtol=1e-6)
    neg = base[::-1, 0]  # negative stride: the pointer is to base[7, 0]
    out2 = np.full(1, np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "saxpy", 1, 32, [neg, np.ones(1, np.float32), out2, ("f32", 1.0), ("s32", 1)])
    assert out2[0] == base[7, 0] + 1


def test_ffs_dp4a_isspacep(cuda_ptx):
    n = 64
    v = rng.integers(-2**31, 2**31, n).astype(np.int32)
    v[:3] = [0, 1, -2**31]
    out = np.full((n, 4), -7, np.int32)
    sim.launch_ptx(cuda_ptx, "bit_tricks", 1, n, [v, out], shared_bytes=4 * n)
    u = v.view(np.uint32)
    ffs = [0 if x == 0 else (int(x) & -int(x)).bit_length() for x in u]
    np.testing.assert_array_equal(out[:, 0], ffs)
    sb, nb = v.view(np.int8).reshape(n, 4).astype(np.int64), np.roll(v, -1).view(np.int8).reshape(n, 4)
    np.testing.assert_array_equal(out[:, 1], (sb * nb).sum(1) + 7)
    ub = u.view(np.uint8).reshape(n, 4).astype(np.int64)
    np.testing.assert_array_equal(out[:, 2], ((ub * [4, 3, 2, 1]).sum(1) + 5).astype(np.uint32).view(np.int32))
    np.testing.assert_array_equal(out[:, 3], 3)
