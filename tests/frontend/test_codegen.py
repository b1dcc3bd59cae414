"""What the frontend builds, checked as textual IR straight out of the visitor (before any pass)."""
import textwrap

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.frontend.codegen import build_module
from kdsl.ir import print_module, verify_module
from kdsl.runtime.binding import bind

SCALE = kl.constexpr(3)
WIDTH = 16


def frontend_ir(kernel, *args, **meta):
    bound = bind(kernel.source, args, meta)
    module = build_module(kernel, bound.constants, bound.runtime, bound.arg_attrs)
    verify_module(module)
    return print_module(module)


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=0.0)
    kl.store(out_ptr + offs, x + y, mask=mask)


def test_vector_add_ir():
    x = np.zeros(64, np.float32)
    assert frontend_ir(add, x, x, x, 63, BLOCK=64) == textwrap.dedent("""\
        kernel @add(%x_ptr: *f32 {divisibility = 16}, %y_ptr: *f32 {divisibility = 16}, %out_ptr: *f32 {divisibility = 16}, %n: i32 {min = 1}) {
          %0 = program_id {axis = 0} : i32
          %1 = constant {value = 64} : i32
          %2 = mul %0, %1 : i32
          %3 = arange {end = 64, start = 0} : block<64xi32>
          %4 = splat %2 : block<64xi32>
          %5 = add %4, %3 : block<64xi32>
          %6 = splat %n : block<64xi32>
          %7 = cmp %5, %6 {pred = "lt"} : block<64xi1>
          %8 = splat %x_ptr : block<64x*f32>
          %9 = addptr %8, %5 : block<64x*f32>
          %10 = load %9, %7 : block<64xf32>
          %11 = splat %y_ptr : block<64x*f32>
          %12 = addptr %11, %5 : block<64x*f32>
          %13 = constant {value = 0.0} : f32
          %14 = splat %13 : block<64xf32>
          %15 = load %12, %7, %14 : block<64xf32>
          %16 = splat %out_ptr : block<64x*f32>
          %17 = addptr %16, %5 : block<64x*f32>
          %18 = add %10, %15 : block<64xf32>
          store %17, %18, %7
          return
        }
        """)


@kdsl.kernel
def static_branch(out_ptr, FLAG: kl.constexpr):
    if FLAG:
        v = 1.0
    else:
        v = kl.exp(2.0)
    kl.store(out_ptr, v * SCALE + WIDTH)


def test_constexpr_if_builds_only_the_taken_branch_and_globals_fold():
    out = np.zeros(1, np.float32)
    taken = frontend_ir(static_branch, out, FLAG=True)
    assert "exp" not in taken and " if " not in taken
    assert "constant {value = 19.0} : f32" in taken
    assert "exp" in frontend_ir(static_branch, out, FLAG=False)


def make_closure_kernel(block):
    @kdsl.kernel
    def closure_kernel(out_ptr):
        kl.store(out_ptr + kl.arange(0, block), 1.0)

    return closure_kernel


def test_closure_constants_resolve():
    out = np.zeros(32, np.float32)
    assert "arange {end = 32, start = 0}" in frontend_ir(make_closure_kernel(32), out)


@kdsl.kernel
def scaled(x, FACTOR: kl.constexpr):
    return x * FACTOR, x + FACTOR


@kdsl.kernel
def uses_device_functions(out_ptr, v):
    a, b = scaled(v, 2.0)
    c, d = scaled(v, 3.0)
    e, f = scaled(v, FACTOR=2.0)
    kl.store(out_ptr, a + b + c + d + e + f)


def test_device_functions_specialise_per_constant_and_return_tuples():
    ir = frontend_ir(uses_device_functions, np.zeros(1, np.float32), 1.5)
    assert ir.count("func @scaled_") == 2
    assert ir.count("call %v {callee = \"scaled_0\"} : f32, f32") == 2
    assert "-> f32, f32" in ir


@kdsl.kernel
def shapes(out_ptr):
    rows = kl.arange(0, 4)
    cols = kl.arange(0, 8)
    grid = rows[:, None] * 8 + cols[None, :]
    total = kl.sum(grid, axis=None)
    per_row = kl.max(grid, axis=1, keep_dims=True)
    kl.store(out_ptr + grid, per_row + total)


def test_indexing_with_none_and_keep_dims():
    ir = frontend_ir(shapes, np.zeros(32, np.int32))
    assert "expand_dims %0 {axis = 1} : block<4x1xi32>" in ir
    assert "expand_dims %1 {axis = 0} : block<1x8xi32>" in ir
    assert "reduce %" in ir and "{axis = 1, kind = \"max\"} : block<4xi32>" in ir
    assert ": block<4x1xi32>" in ir


@kdsl.kernel
def scalar_logic(out_ptr, n, m):
    ok = n > 0 and m > 0 or n == 7
    value = 1.0 if n > 3 else 2.0
    if ok:
        value = value ** 3
    kl.store(out_ptr, value)


def test_scalar_and_or_ifexp_and_power():
    ir = frontend_ir(scalar_logic, np.zeros(1, np.float32), 1, 2)
    assert "and %" in ir and "or %" in ir
    assert "select %" in ir
    assert ir.count("mul %") == 2
    assert "= if %" in ir


@kdsl.kernel
def composed(out_ptr, x_ptr, BLOCK: kl.constexpr):
    kl.static_assert(BLOCK % 16 == 0, "BLOCK must be a multiple of 16")
    offs = kl.max_contiguous(kl.multiple_of(kl.arange(0, BLOCK), 16), BLOCK)
    x = kl.load(x_ptr + offs)
    y = kl.clamp(kl.sigmoid(x), 0.25, 0.75) + kl.softmax(x) + kl.fdiv(x, 3.0)
    z = kl.broadcast_to(kl.expand_dims(y, (0, 2)), 2, BLOCK, 1)
    kl.static_print("BLOCK is", BLOCK, z)
    kl.store(out_ptr + offs, kl.sum(kl.sum(z, axis=0), axis=1))


def test_builtins_composed_from_other_operations(capsys):
    x = np.zeros(32, np.float32)
    ir = frontend_ir(composed, x, x, BLOCK=32)
    assert "BLOCK is 32 <block<2x32x1xf32>>" in capsys.readouterr().out
    assert "exp" in ir and "max" in ir and "broadcast" in ir


def test_static_assert_failure_is_a_compilation_error():
    x = np.zeros(32, np.float32)
    with pytest.raises(kdsl.CompilationError, match="static_assert failed: BLOCK must be a multiple of 16") as info:
        frontend_ir(composed, x, x, BLOCK=8)
    assert 'kl.static_assert(BLOCK % 16 == 0, "BLOCK must be a multiple of 16")' in str(info.value)
