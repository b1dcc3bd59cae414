"""What the interpret target is for: print, errors at the user's line, checked memory, plain Python control."""
import sys

import numpy as np
import pytest

import kdsl
import kdsl.language as kl


def interpret(kernel, grid, *args, **meta):
    kernel[grid](*args, target="interpret", **meta)


@kdsl.kernel
def show(x_ptr, BLOCK: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, BLOCK))
    print("pid", kl.program_id(0), "sum", kl.sum(x, axis=0), x.dtype, x.shape)


def test_print_inside_a_kernel_prints(capsys):
    interpret(show, (2,), np.arange(4, dtype=np.float32), BLOCK=4)
    out = capsys.readouterr().out.splitlines()
    assert out == ["pid InterpTensor(i32, 0) sum InterpTensor(f32, 6.) f32 (4,)",
                   "pid InterpTensor(i32, 1) sum InterpTensor(f32, 6.) f32 (4,)"]


@kdsl.kernel
def copy(src_ptr, dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(dst_ptr + offs, kl.load(src_ptr + offs))


def test_out_of_bounds_load_names_the_program_offset_and_line():
    src, dst = np.zeros(20, np.float32), np.zeros(32, np.float32)
    with pytest.raises(kdsl.MemoryAccessError) as info:
        interpret(copy, (2,), src, dst, 20, BLOCK=16)
    e = info.value
    assert (e.kernel, e.pid, e.offset, e.argument) == ("copy", (1, 0, 0), 20, "src_ptr")
    assert e.line == copy.fn.__code__.co_firstlineno + 3
    assert "program (1, 0, 0)" in str(e) and "'src_ptr' + 20 elements" in str(e)
    assert np.all(dst[16:] == 0)  # the failing program stored nothing


def test_masked_off_lanes_touch_no_memory():
    src = np.arange(20, dtype=np.float32)
    dst = np.full(32, -1.0, np.float32)
    interpret(kdsl.kernel(_masked_copy), (2,), src, dst, 20, BLOCK=16)
    np.testing.assert_array_equal(dst[:20], src)
    assert np.all(dst[20:] == -1.0)


def _masked_copy(src_ptr, dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(dst_ptr + offs, kl.load(src_ptr + offs, mask=offs < n), mask=offs < n)


def test_misaligned_access_is_reported():
    raw = np.zeros(68, np.uint8)
    src = raw[1:65].view(np.int32)  # a misaligned base address
    with pytest.raises(kdsl.MemoryAccessError, match="misaligned"):
        interpret(copy, (1,), src, np.zeros(16, np.int32), 16, BLOCK=16)


@kdsl.kernel
def reverse_read(x_ptr, out_ptr, stride, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs * stride))


def test_negative_strides_register_the_right_span():
    x = np.arange(8, dtype=np.int64)[::-1]
    out = np.zeros(8, np.int64)
    interpret(reverse_read, (1,), x, out, -1, BLOCK=8)
    np.testing.assert_array_equal(out, x)
    with pytest.raises(kdsl.MemoryAccessError):
        interpret(reverse_read, (1,), x, out, 1, BLOCK=8)


@kdsl.kernel
def mismatched(x_ptr):
    a = kl.arange(0, 16)
    b = kl.arange(0, 32)
    kl.store(x_ptr + a, a + b)


def test_typing_errors_quote_the_users_line():
    with pytest.raises(kdsl.CompilationError) as info:
        interpret(mismatched, (1,), np.zeros(16, np.int32))
    message = str(info.value)
    assert "in kernel 'mismatched'" in message and "kl.store(x_ptr + a, a + b)" in message
    assert "cannot broadcast" in message and "^^^^^" in message


@kdsl.kernel
def scale(x, factor: kl.constexpr):
    return x * factor


@kdsl.kernel
def python_control(out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = kl.arange(0, BLOCK)
    acc = kl.zeros((BLOCK,), kl.int32)
    for i in range(n):
        acc += scale(offs, 2) + i
    for j in kl.static_range(3):
        acc += j
    if pid == 1:
        acc = -acc
    if pid > 1 and n > 0:
        acc = acc // 3 - acc % 3 + (offs ** 2 << 1)
    kl.store(out_ptr + pid * BLOCK + offs, acc)


def test_runtime_scalars_drive_python_control_and_device_functions_run():
    out = np.zeros(3 * 8, np.int32)
    interpret(python_control, (3,), out, 4, BLOCK=8)
    offs = np.arange(8)
    acc = 4 * 2 * offs + 6 + 3
    np.testing.assert_array_equal(out.reshape(3, 8), [acc, -acc, acc // 3 - acc % 3 + 2 * offs**2])


@kdsl.kernel
def grid_ids(out_ptr):
    x, y, z = kl.program_id(0), kl.program_id(1), kl.program_id(2)
    nx, ny = kl.num_programs(0), kl.num_programs(1)
    linear = x + nx * (y + ny * z)
    kl.store(out_ptr + linear, linear * 1000 + nx * 100 + ny * 10 + kl.num_programs(2))


@pytest.mark.parametrize("grid", [5, (2, 3), (2, 3, 4), (0, 3)])
def test_program_ids_cover_the_grid_x_fastest(grid):
    dims = (grid,) if isinstance(grid, int) else grid
    gx, gy, gz = dims + (1,) * (3 - len(dims))
    out = np.full(max(gx * gy * gz, 1), -1, np.int32)
    interpret(grid_ids, grid, out)
    if gx * gy * gz:
        np.testing.assert_array_equal(out, np.arange(out.size) * 1000 + gx * 100 + gy * 10 + gz)
    else:
        assert np.all(out == -1)


def test_builtins_outside_a_kernel_still_raise_and_compile_refuses_interpret():
    with pytest.raises(kdsl.KdslError, match="only be called inside"):
        kl.arange(0, 4)
    with pytest.raises(kdsl.LaunchError, match="compiles nothing"):
        copy.compile(np.zeros(4, np.float32), np.zeros(4, np.float32), 4, BLOCK=4, target="interpret")


@kdsl.kernel
def mixed_types(a_ptr, b_ptr, out_ptr):
    offs = kl.arange(0, 4)
    a = kl.load(a_ptr + offs)
    b = kl.load(b_ptr + offs)
    kl.store(out_ptr + offs, (a + b) / 2 + kl.maximum(a, 1.5))


def test_promotion_follows_the_compilers_rules():
    a = np.array([1, 2, 3, 4], np.float16)
    b = np.array([1, -2, 5, 0], np.int32)
    out = np.zeros(4, np.float32)
    interpret(mixed_types, (1,), a, b, out)
    np.testing.assert_allclose(out, (a.astype(np.float32) + b) / 2 + np.maximum(a, 1.5).astype(np.float32))


def test_stores_into_read_only_arrays_are_refused():
    dst = np.zeros(16, np.float32)
    dst.flags.writeable = False
    with pytest.raises(kdsl.MemoryAccessError, match="read-only array 'dst_ptr'"):
        interpret(copy, (1,), np.ones(16, np.float32), dst, 16, BLOCK=16)
    assert np.all(dst == 0)


@kdsl.kernel
def stop_here(x_ptr, BLOCK: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, BLOCK))
    breakpoint()
    kl.store(x_ptr + kl.arange(0, BLOCK), x * 2)


def test_breakpoint_stops_inside_the_kernel_with_its_values(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "breakpointhook", lambda: seen.append(sys._getframe(1).f_locals["x"].numpy()))
    x = np.arange(4, dtype=np.float32)
    interpret(stop_here, (1,), x, BLOCK=4)
    np.testing.assert_array_equal(seen[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(x, [0, 2, 4, 6])


@kdsl.kernel
def typed_loop(x_ptr, out_ptr, n):
    x = kl.load(x_ptr)
    for i in range(n):
        kl.store(out_ptr + i, x * i)


def test_range_loop_variables_are_typed_as_the_compiler_types_them():
    out = np.zeros(4, np.int32)
    interpret(typed_loop, (1,), np.array([100], np.int8), out, 4)
    np.testing.assert_array_equal(out, [0, 100, 200, 300])  # i8 * i32 is i32: no wrap at 8 bits
    assert "range" not in globals()  # the module's globals are untouched


@kdsl.kernel
def misspelled(out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, ofs * 2)


def test_a_python_error_in_an_interpreted_kernel_is_a_compilation_error_at_its_line():
    with pytest.raises(kdsl.CompilationError) as info:
        interpret(misspelled, (1,), np.zeros(4, np.float32), BLOCK=4)
    e = info.value
    assert e.kernel == "misspelled" and e.loc.line == misspelled.fn.__code__.co_firstlineno + 3
    assert "NameError: name 'ofs' is not defined" in str(e) and "kl.store(out_ptr + offs, ofs * 2)" in str(e)
    assert isinstance(e.__cause__, NameError)
