"""Launching: grids, argument checks, specialization and the in-memory cache, `compile().asm`."""
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.runtime.binding import bind


@kdsl.kernel
def fill(out_ptr, value, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, value, mask=offs < n)


@kdsl.kernel
def grid_ids(out_ptr):
    x = kl.program_id(0)
    y = kl.program_id(1)
    z = kl.program_id(2)
    nx = kl.num_programs(0)
    ny = kl.num_programs(1)
    nz = kl.num_programs(2)
    linear = x + nx * (y + ny * z)
    kl.store(out_ptr + linear, linear * 1000 + nx * 100 + ny * 10 + nz)


@pytest.mark.parametrize("grid", [5, (5,), (2, 3), (2, 3, 4), [3, 1, 2]])
def test_program_ids_cover_1d_2d_3d_grids(grid):
    dims = (grid,) if isinstance(grid, int) else tuple(grid)
    gx, gy, gz = dims + (1,) * (3 - len(dims))
    out = np.full(gx * gy * gz, -1, np.int32)
    grid_ids[grid](out)
    expected = np.arange(out.size) * 1000 + gx * 100 + gy * 10 + gz
    np.testing.assert_array_equal(out, expected)


def test_grid_callable_receives_every_argument_by_name():
    seen = {}

    def grid(meta):
        seen.update(meta)
        return (kdsl.cdiv(meta["n"], meta["BLOCK"]),)

    out = np.full(100, np.nan, np.float32)
    fill[grid](out, 2.5, 100, BLOCK=32)
    assert seen["BLOCK"] == 32 and seen["n"] == 100 and seen["value"] == 2.5 and seen["out_ptr"] is out
    np.testing.assert_array_equal(out, 2.5)


@pytest.mark.parametrize("grid", [0, (0, 4), (4, 0, 1)])
def test_empty_grid_is_a_valid_launch_that_does_nothing(grid):
    out = np.full(8, 7.0, np.float32)
    fill[grid](out, 1.0, 8, BLOCK=8)
    np.testing.assert_array_equal(out, 7.0)


def test_n_zero_writes_nothing():
    out = np.full(8, 7.0, np.float32)
    fill[(1,)](out, 1.0, 0, BLOCK=8)
    np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("target", ["cpu", "interpret"])
@pytest.mark.parametrize("value, dtype, kind", [(2**31 - 1, np.int32, "i32"), (-2**31 - 1, np.int64, "i64"),
                                                (2**63, np.uint64, "u64"), (2**64 - 1, np.uint64, "u64")])
def test_python_ints_take_the_first_of_i32_i64_u64_they_fit(target, value, dtype, kind):
    out = np.zeros(8, dtype)
    fill[(1,)](out, value, 8, BLOCK=8, target=target)
    assert (out == value).all()
    assert re.search(rf"%value: {kind}\b", fill.compile(out, value, 8, BLOCK=8).asm["ir"])


@kdsl.kernel
def fill_stages(out_ptr, num_stages: kl.constexpr):
    kl.store(out_ptr + kl.arange(0, 8), num_stages)


@pytest.mark.parametrize("target", ["cpu", "interpret"])
def test_a_launch_option_named_by_a_parameter_reaches_the_kernel_too(target):
    out = np.zeros(8, np.int32)
    fill_stages[(1,)](out, num_stages=5, target=target)
    np.testing.assert_array_equal(out, 5)


BAD_LAUNCHES = [
    (lambda out: fill[(1,)](out, 1.0, 8), r"missing the compile-time constant 'BLOCK'"),
    (lambda out: fill[(1,)](out, 1.0, BLOCK=8), r"missing the argument 'n'"),
    (lambda out: fill[(1,)](out, 1.0, 8, 8, 9), r"takes 4 arguments"),
    (lambda out: fill[(1,)](out, 1.0, 8, BLOCK=8, bogus=1), r"has no parameter 'bogus'"),
    (lambda out: fill[(1,)](out, "x", 8, BLOCK=8), r"argument 'value' has unsupported type str"),
    (lambda out: fill[(1,)]([1.0, 2.0], 1.0, 8, BLOCK=8), r"argument 'out_ptr' has unsupported type list"),
    (lambda out: fill[(-1,)](out, 1.0, 8, BLOCK=8), r"must not be negative"),
    (lambda out: fill[(1, 1, 1, 1)](out, 1.0, 8, BLOCK=8), r"tuple of 1 to 3 ints"),
    (lambda out: fill[(1.5,)](out, 1.0, 8, BLOCK=8), r"grid dimensions must be ints"),
    (lambda out: fill[lambda m: 1 / 0](out, 1.0, 8, BLOCK=8), r"the grid function raised ZeroDivisionError"),
    (lambda out: fill[(1,)](out, 1.0, 8, BLOCK=8, target="tpu"), r"unknown target 'tpu'"),
    (lambda out: fill[(1,)](out, 1.0, 8, BLOCK=[8]), r"compile-time constant 'BLOCK' must be a number"),
    (lambda out: fill[(1,)](out.astype(np.complex64), 1.0, 8, BLOCK=8), r"arrays of complex64 are not supported"),
    (lambda out: fill[(1,)](out, 2**70, 8, BLOCK=8), r"does not fit in int64"),
    (lambda out: fill[(1,)](out, 1.0, 8, BLOCK=8, num_warps=0), r"num_warps must be a positive int"),
]


@pytest.mark.parametrize("launch, reason", BAD_LAUNCHES, ids=[r for _, r in BAD_LAUNCHES])
def test_bad_launches_raise_launch_errors_before_running(launch, reason):
    out = np.full(8, 7.0, np.float32)
    with pytest.raises(kdsl.LaunchError, match=reason):
        launch(out)
    np.testing.assert_array_equal(out, 7.0)


def test_each_specialization_compiles_once():
    out = np.zeros(64, np.float32)
    fill[(1,)](out, 1.0, 64, BLOCK=64)
    before = len(fill._cache)
    fill[(1,)](out, 3.0, 64, BLOCK=64)
    assert len(fill._cache) == before
    fill[(1,)](out, 3.0, 64, BLOCK=32)
    fill[(1,)](out.astype(np.float64), 3.0, 64, BLOCK=64)
    assert len(fill._cache) == before + 2


def test_divisibility_by_16_is_part_of_the_key():
    out = np.zeros(64, np.float32)
    fill[(1,)](out, 1.0, 48, BLOCK=64)
    ir_16 = fill.compile(out, 1.0, 48, BLOCK=64).asm["ir"]
    ir_odd = fill.compile(out, 1.0, 47, BLOCK=64).asm["ir"]
    assert "%n: i32 {divisibility = 16, min = 1}" in ir_16
    assert "%n: i32 {divisibility" not in ir_odd


def test_ints_equal_to_1_are_part_of_the_key():
    out = np.zeros(64, np.float32)
    assert "%n: i32 {min = 1, value = 1}" in fill.compile(out, 1.0, 1, BLOCK=64).asm["ir"]
    assert "%n: i32 {min = 1}" in fill.compile(out, 1.0, 3, BLOCK=64).asm["ir"]


def test_the_sign_of_ints_is_part_of_the_key():
    """0, positive and negative ints compile apart: `min` 0 or 1 bounds what index arithmetic
    on them can be (the axis analysis keeps `x % n`'s runs only for x not negative)."""
    out = np.zeros(64, np.float32)
    assert "%n: i32 {divisibility = 16, min = 0}" in fill.compile(out, 1.0, 0, BLOCK=64).asm["ir"]
    assert "%n: i32) {" in fill.compile(out, 1.0, -3, BLOCK=64).asm["ir"]


def test_compile_exposes_ir_stages_and_llvm():
    out = np.zeros(64, np.float32)
    compiled = fill.compile(out, 1.0, 64, BLOCK=64, stages=True)
    assert set(compiled.asm) >= {"ir", "ir_stages", "llvm", "llvm_optimized"}
    stages = list(compiled.asm["ir_stages"])
    assert stages[0] == "frontend" and len(stages) > 1
    assert "store" in compiled.asm["ir"]
    assert "define" in compiled.asm["llvm"]


def test_numpy_scalars_and_bools_are_runtime_arguments():
    out = np.full(16, np.nan, np.float64)
    fill[(1,)](out, np.float64(0.125), np.int64(16), BLOCK=16)
    np.testing.assert_array_equal(out, 0.125)


@kdsl.kernel
def scaled_copy(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr, SCALE: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, x * factor * SCALE if SCALE != 1 else x * factor, mask=mask)


QUICK_LAUNCHES = [
    (np.float32, 0, 100, 2.0, 1), (np.float32, 1, 100, 2.0, 1), (np.float32, 0, 96, 2.0, 1),
    (np.float32, 0, 1, 2.0, 1), (np.float32, 0, 0, 2.0, 1), (np.float64, 0, 100, 2.0, 1),
    (np.float32, 0, 100, 2.0, 1.0), (np.float32, 0, 100, 2.0, True), (np.float32, 0, 100, 2.0, 3),
    (np.float32, 0, np.int64(100), 2.0, 1), (np.float32, 0, np.int16(100), 2.0, 1), (np.float32, 0, 2**40, 2.0, 1),
    (np.float32, 0, 2**63, 2.0, 1), (np.float32, 0, 100, np.float64(2.0), 1), (np.float32, 0, 100, np.float16(2.0), 1),
]


def test_repeated_launches_take_the_kernel_the_full_binding_takes():
    """A CPU launch like an earlier one skips the binding (`Kernel.quick_key`); every argument
    that changes the specialization (dtype, alignment, divisibility, ints equal to 1, 0 or
    positive, the width an int takes, numpy scalars' types, the constants' types and values)
    still picks the kernel the full path picks."""
    rng = np.random.default_rng(5)
    for dtype, shift, n, factor, scale in QUICK_LAUNCHES * 2:
        memory = rng.standard_normal(160).astype(dtype)
        x = memory[shift:shift + 128]
        out = np.full(128, np.nan, dtype)
        scaled_copy[(4,)](x, out, n, factor, BLOCK=32, SCALE=scale)
        np.testing.assert_allclose(out[:n], x[:n] * factor * scale, rtol=1e-6)
        assert np.isnan(out[n:]).all()
        key, _ = scaled_copy.quick_key((x, out, n, factor), {"BLOCK": 32, "SCALE": scale})
        bound = bind(scaled_copy.source, (x, out, n, factor), {"BLOCK": 32, "SCALE": scale})
        assert scaled_copy._quick[key] is scaled_copy._compiled(bound, scaled_copy._options(bound))
    assert len(scaled_copy._quick) == len(QUICK_LAUNCHES) == len(scaled_copy._cache)


def test_launches_the_fast_path_takes_and_does_not_take_work():
    """Grid functions and int grids take the fast path once seen, launch options never do."""
    out = np.full(64, np.nan, np.float32)
    for value in (1.0, 2.0):
        fill[(1,)](out, value, 64, BLOCK=64, num_warps=2)  # a launch option
        np.testing.assert_array_equal(out, value)
    for value in (3.0, 4.0):
        fill[lambda meta: (meta["n"] // meta["BLOCK"],)](out, value, 64, BLOCK=32)
        np.testing.assert_array_equal(out, value)
    for value in (5.0, 6.0):
        fill[2](out, value, 64, BLOCK=32)
        np.testing.assert_array_equal(out, value)
    with pytest.raises(kdsl.LaunchError, match="the grid function raised ZeroDivisionError"):
        fill[lambda meta: (1 // 0,)](out, 7.0, 64, BLOCK=32)  # a seen launch, by the fast path
    assert fill.quick_key((out, 1.0, 64), {"BLOCK": 64, "num_warps": 2}) is None
    assert fill.quick_key((out, 1.0, 64), {"BLOCK": 32})[0] in fill._quick


def test_torch_tensors_take_the_fast_path_and_the_kernel_the_full_binding_takes():
    torch = pytest.importorskip("torch")
    x = torch.arange(160, dtype=torch.float32)
    for shift, n, dtype in ((0, 100, torch.float32), (1, 100, torch.float32), (0, 100, torch.float64)) * 2:
        src = x.to(dtype)[shift:shift + 128]
        out = torch.full((128,), float("nan"), dtype=dtype)
        scaled_copy[(4,)](src, out, n, 2.0, BLOCK=32, SCALE=1)
        torch.testing.assert_close(out[:n], src[:n] * 2.0)
        assert out[n:].isnan().all()
        key, _ = scaled_copy.quick_key((src, out, n, 2.0), {"BLOCK": 32, "SCALE": 1})
        bound = bind(scaled_copy.source, (src, out, n, 2.0), {"BLOCK": 32, "SCALE": 1})
        assert scaled_copy._quick[key] is scaled_copy._compiled(bound, scaled_copy._options(bound))
    strided = x[::2][:64]  # its span, from its strides, ends after x[126]
    out = torch.zeros(128)
    for _ in range(2):  # the kernel reads consecutive elements: within the span up to x[126]
        scaled_copy[(4,)](strided, out, 127, 2.0, BLOCK=32, SCALE=1)
        torch.testing.assert_close(out[:127], x[:127] * 2.0)
    with pytest.raises(kdsl.MemoryAccessError):
        scaled_copy[(4,)](strided, out, 128, 2.0, BLOCK=32, SCALE=1)


@kdsl.kernel
def count_into(x_ptr, out_ptr, counts_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr + offs, x + 1.0)
    kl.atomic_add(counts_ptr, 1)


@pytest.mark.parametrize("target", ["cpu", "sim"])
def test_read_only_arrays_may_be_read_but_not_stored_through(target):
    x = np.ones(32, np.float32)
    x.flags.writeable = False
    out, counts = np.zeros(32, np.float32), np.zeros(1, np.int32)
    count_into[(1,)](x, out, counts, BLOCK=32, target=target)  # a read-only input is fine
    np.testing.assert_array_equal(out, 2.0)
    for position, line in ((1, "kl.store(out_ptr + offs, x + 1.0)"), (2, "kl.atomic_add(counts_ptr, 1)")):
        args = [x, out.copy(), counts.copy()]
        args[position] = args[position].copy()
        args[position].flags.writeable = False
        for _ in range(2):  # the second time too (the fast path of repeated launches)
            with pytest.raises(kdsl.LaunchError) as info:
                count_into[(1,)](*args, BLOCK=32, target=target)
        name = ("x_ptr", "out_ptr", "counts_ptr")[position]
        assert f"argument '{name}' is a read-only array, but the kernel stores through it" in str(info.value)
        assert line in str(info.value) and "^^^" in str(info.value)
