"""Launches whose programs run on several threads: results, atomics across programs, asserts,
prints, 2D/3D grids, and the thread count setting."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.backend.cpu import threads
from tests.helpers import poisoned, random_array

THREAD_COUNTS = [1, 2, 3, 8]


@pytest.fixture
def num_threads(monkeypatch):
    """Sets the thread count for one test; the setting before it comes back afterwards."""
    monkeypatch.setattr(threads, "_num_threads", threads._num_threads)
    return kdsl.set_num_threads


@kdsl.kernel
def scaled_add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=1.0)
    y = kl.load(y_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, x * 2.0 + y, mask=mask)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 5000), count=st.sampled_from(THREAD_COUNTS), seed=st.integers(0, 2**32 - 1))
def test_many_programs_each_write_their_block(n, count, seed):
    kdsl.set_num_threads(count)
    try:
        rng = np.random.default_rng(seed)
        x, y = random_array(rng, n, np.float32), random_array(rng, n, np.float32)
        out = poisoned(n + 16, np.float32)
        scaled_add[(kdsl.cdiv(n, 16),)](x, y, out, n, BLOCK=16)
        np.testing.assert_allclose(out[:n], x.astype(np.float64) * 2 + y, rtol=1e-6)
        assert np.isnan(out[n:]).all()
    finally:
        threads._num_threads = None


@kdsl.kernel
def histogram(values_ptr, counts_ptr, sums_ptr, n, BINS: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    v = kl.load(values_ptr + offs, mask=mask, other=0)
    kl.atomic_add(counts_ptr + v % BINS, 1, mask=mask)
    kl.atomic_add(sums_ptr + kl.program_id(0) % BINS, kl.sum(kl.where(mask, v, 0), axis=0))


@pytest.mark.parametrize("count", THREAD_COUNTS)
def test_atomics_across_programs_count_every_element(num_threads, count):
    num_threads(count)
    n, bins, block = 20_000, 7, 32
    rng = np.random.default_rng(count)
    values = np.abs(random_array(rng, n, np.int32))  # C remainders of negatives would index below counts
    counts, sums = np.zeros(bins, np.int32), np.zeros(bins, np.int32)
    grid = kdsl.cdiv(n, block)
    histogram[(grid,)](values, counts, sums, n, BINS=bins, BLOCK=block)
    np.testing.assert_array_equal(counts, np.bincount(values % bins, minlength=bins))
    per_program = np.add.reduceat(values.astype(np.int64), np.arange(0, n, block))
    np.testing.assert_array_equal(sums, np.bincount(np.arange(grid) % bins, per_program, minlength=bins))


@kdsl.kernel
def checked(x_ptr, out_ptr, limit, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.device_assert(x < limit, "too big")
    kl.store(out_ptr + offs, x)


@pytest.mark.parametrize("count", THREAD_COUNTS)
def test_a_failed_assert_is_reported_once_whole_and_stops_the_launch(num_threads, count):
    num_threads(count)
    programs, block = 4096, 8
    x = np.arange(programs * block, dtype=np.int32)
    bad = [(37, 3), (1500, 0), (4000, 7)]
    for pid, index in bad:
        x[pid * block + index] = 10**6
    out = poisoned(x.size, np.int32)
    with pytest.raises(kdsl.DeviceAssertionError) as info:
        checked[(programs,)](x, out, 10**6, BLOCK=block)
    assert info.value.message == "too big"
    assert (info.value.pid[0], info.value.index[0]) in bad  # one failure, its program and element together
    ran = (out != poisoned(1, np.int32)[0]).reshape(programs, block)
    assert not ran.all()  # the launch stopped early
    assert not ran[[p for p, _ in bad]].any()  # failing programs stored nothing


@kdsl.kernel
def print_pid(x_ptr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.device_print("a", kl.load(x_ptr + offs))
    kl.device_print("b", kl.program_id(0))


def test_prints_keep_their_order_within_each_program(num_threads, capsys):
    num_threads(4)
    programs, block = 32, 4
    x = np.arange(programs * block, dtype=np.int32)
    capsys.readouterr()
    print_pid[(programs,)](x, BLOCK=block)
    lines = capsys.readouterr().out.splitlines()
    by_program: dict[str, list[str]] = {}
    for line in lines:
        by_program.setdefault(line.split(" idx ")[0], []).append(line)
    assert len(by_program) == programs
    for p in range(programs):
        expected = [f"pid ({p}, 0, 0) idx ({i}) a: {p * block + i}" for i in range(block)]
        assert by_program[f"pid ({p}, 0, 0)"] == expected + [f"pid ({p}, 0, 0) idx () b: {p}"]


@kdsl.kernel
def program_ids(out_ptr):
    x, y, z = kl.program_id(0), kl.program_id(1), kl.program_id(2)
    nx, ny = kl.num_programs(0), kl.num_programs(1)
    linear = (z * ny + y) * nx + x
    kl.store(out_ptr + linear, x + 1000 * y + 1000000 * z + 0 * kl.num_programs(2))


@pytest.mark.parametrize("grid", [(37, 5, 1), (3, 7, 11), (1, 1, 9), (64, 1, 1)])
def test_2d_and_3d_grids_run_every_program_once(num_threads, grid):
    num_threads(3)
    gx, gy, gz = grid
    out = poisoned(gx * gy * gz, np.int32)
    program_ids[grid](out)
    z, y, x = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")
    np.testing.assert_array_equal(out, (x + 1000 * y + 1000000 * z).ravel())


@kdsl.kernel
def big_block(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr + offs, x - kl.max(x, axis=0))


def test_programs_with_blocks_beyond_the_caller_stack_run_on_threads(num_threads):
    num_threads(2)
    block = 1 << 18
    x = np.random.default_rng(3).random(4 * block).astype(np.float32)
    out = poisoned(x.size, np.float32)
    big_block[(4,)](x, out, BLOCK=block)
    np.testing.assert_array_equal(out, (x.reshape(4, block) - x.reshape(4, block).max(axis=1, keepdims=True)).ravel())


def test_thread_count_from_setting_environment_and_affinity(num_threads, monkeypatch):
    threads._num_threads = None
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    import os
    assert kdsl.get_num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert kdsl.get_num_threads() == 3
    num_threads(5)
    assert kdsl.get_num_threads() == 5
    for bad in (0, -2, "many"):
        with pytest.raises(kdsl.LaunchError, match="positive number of threads"):
            kdsl.set_num_threads(bad)
    threads._num_threads = None
    monkeypatch.setenv(threads.THREADS_ENV, "zero")
    with pytest.raises(kdsl.LaunchError, match=threads.THREADS_ENV):
        kdsl.get_num_threads()


def test_launches_from_several_python_threads_at_once_each_get_their_results(num_threads):
    """Python threads launching at once take turns on the worker pool; each launch's programs,
    arguments and results stay its own."""
    from concurrent.futures import ThreadPoolExecutor

    num_threads(2)
    rng = np.random.default_rng(11)
    inputs = [(random_array(rng, 3000 + 97 * k, np.float32), random_array(rng, 3000 + 97 * k, np.float32))
              for k in range(12)]

    def launch(pair):
        x, y = pair
        out = poisoned(x.size, np.float32)
        for _ in range(20):
            scaled_add[(kdsl.cdiv(x.size, 64),)](x, y, out, x.size, BLOCK=64)
        return out
    with ThreadPoolExecutor(6) as pool:
        outputs = list(pool.map(launch, inputs))
    for (x, y), out in zip(inputs, outputs):
        np.testing.assert_allclose(out, x.astype(np.float64) * 2 + y, rtol=1e-6)


@kdsl.kernel
def first_compile(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs) * 3)


def test_one_kernel_compiled_from_several_threads_at_once_compiles_once(num_threads, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("KDSL_CACHE_DIR", "off")
    x = np.arange(128, dtype=np.float32)
    outs = [poisoned(128, np.float32) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda out: first_compile[(1,)](x, out, BLOCK=128), outs))
    for out in outs:
        np.testing.assert_array_equal(out, x * 3)
    assert len(first_compile._cache) == 1


def test_a_forked_child_launches_on_a_pool_of_its_own(num_threads):
    """The workers stay in the parent when a process forks (as multiprocessing does by default on
    Linux): a child's launches must not wait for them."""
    import multiprocessing

    num_threads(2)
    x = np.arange(4096, dtype=np.float32)
    out = poisoned(x.size, np.float32)
    scaled_add[(64,)](x, x, out, x.size, BLOCK=64)  # the parent's pool is running
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_launch_in_child, (x,)).get(timeout=60)
    np.testing.assert_array_equal(child, x * 3)


def _launch_in_child(x):
    out = poisoned(x.size, np.float32)
    scaled_add[(64,)](x, x, out, x.size, BLOCK=64)
    return out


POOL_BEFORE_ANY_CODE = """
import weakref
from kdsl.backend.cpu import threads
assert not weakref.finalize._registered_with_atexit  # nothing to unmap yet: the pool's code is the first
threads._workers(2, 1 << 20)
"""


def test_a_pool_started_before_any_kernel_code_stops_before_its_code_is_unmapped():
    """At exit the workers are stopped through the pool's code, so that must still be mapped:
    with the pool's code the first a process loads (a kernel loaded by LLVM's linker leaves no
    finalizer before it), the process once ended in a segmentation fault."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", POOL_BEFORE_ANY_CODE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_without_futexes_launches_run_on_one_thread(num_threads, monkeypatch):
    """Where the pool cannot wait (no Linux futexes), a launch runs on the calling thread, or on
    a thread of its own where its blocks need more stack than the caller may give (both give
    the right results here; the main thread's stack would hold these blocks too)."""
    monkeypatch.setattr(threads, "pool_supported", lambda: False)
    num_threads(2)
    test_programs_with_blocks_beyond_the_caller_stack_run_on_threads(num_threads)
    x = np.arange(1000, dtype=np.float32)
    out = poisoned(x.size, np.float32)
    scaled_add[(16,)](x, x, out, x.size, BLOCK=64)
    np.testing.assert_array_equal(out, x * 3)
