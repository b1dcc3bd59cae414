"""The typing rules: Triton's promotion, weak typing of Python numbers, broadcasting."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.ir import Builder, Function
from kdsl.ir import types as t


def tensor_of(*types):
    fn = Function("f", list(types))
    return Builder(fn.body), [sem.Tensor(a) for a in fn.args]


PROMOTIONS = [
    ("add", t.f16, t.f32, t.f32), ("add", t.f16, t.bf16, t.f16), ("add", t.bf16, t.bf16, t.bf16),
    ("add", t.f16, t.f16, t.f16), ("mul", t.i32, t.f16, t.f16), ("add", t.i8, t.i32, t.i32),
    ("add", t.u32, t.i32, t.u32), ("add", t.u8, t.i32, t.i32), ("add", t.i64, t.u32, t.i64),
    ("add", t.i1, t.i8, t.i8), ("add", t.f64, t.f16, t.f64), ("sub", t.i64, t.f32, t.f32),
    ("truediv", t.i32, t.i32, t.f32), ("truediv", t.i64, t.i8, t.f32), ("truediv", t.f16, t.i32, t.f16),
    ("truediv", t.f64, t.i32, t.f64), ("and", t.i8, t.u16, t.u16), ("add", t.i1, t.i1, t.i32),
    ("and", t.i1, t.i1, t.i1),
]


@pytest.mark.parametrize("op, a, b, expected", PROMOTIONS)
def test_promotion_follows_triton(op, a, b, expected):
    builder, (x, y) = tensor_of(a, b)
    assert sem.binary(builder, op, x, y).dtype == expected
    assert sem.binary(builder, op, y, x).dtype == expected


WEAK = [
    (t.f16, 2.5, t.f16), (t.bf16, 2, t.bf16), (t.i8, 3, t.i8), (t.i32, 1.5, t.f32), (t.u8, 255, t.u8),
    (t.i64, 2**40, t.i64), (t.f32, True, t.f32),
]


@pytest.mark.parametrize("dtype, number, expected", WEAK)
def test_python_numbers_adopt_the_block_type(dtype, number, expected):
    builder, (x,) = tensor_of(t.BlockType((16,), dtype))
    assert sem.binary(builder, "add", x, number).type == t.BlockType((16,), expected)
    assert sem.binary(builder, "mul", number, x).type == t.BlockType((16,), expected)


@pytest.mark.parametrize("dtype, number", [(t.u8, 256), (t.i8, -129), (t.u32, -1), (t.i16, 2**15)])
def test_python_numbers_that_do_not_fit_are_errors(dtype, number):
    builder, (x,) = tensor_of(dtype)
    with pytest.raises(CompilationError, match=f"the constant {number} does not fit in {dtype}"):
        sem.binary(builder, "add", x, number)


def test_fp8_arithmetic_asks_for_a_conversion():
    builder, (x, y) = tensor_of(t.fp8e4nv, t.fp8e4nv)
    with pytest.raises(CompilationError, match=r"convert with .to\(kl.float16\)"):
        sem.binary(builder, "add", x, y)


def test_comparison_gives_i1_of_the_broadcast_shape():
    builder, (x, y) = tensor_of(t.BlockType((4, 1), t.f32), t.BlockType((8,), t.i32))
    assert sem.compare(builder, "lt", x, y).type == t.BlockType((4, 8), t.i1)


def test_pointer_plus_offsets_broadcasts_the_pointer():
    builder, (p, offs) = tensor_of(t.PointerType(t.f16), t.BlockType((32,), t.i64))
    assert sem.binary(builder, "add", p, offs).type == t.BlockType((32,), t.PointerType(t.f16))
    assert sem.binary(builder, "add", offs, p).type == t.BlockType((32,), t.PointerType(t.f16))


def test_pointers_do_not_multiply():
    builder, (p,) = tensor_of(t.PointerType(t.f32))
    with pytest.raises(CompilationError, match="'mul' is not defined on pointers"):
        sem.binary(builder, "mul", p, 2)


powers = st.sampled_from([1, 2, 4, 8])
shapes = st.lists(powers, min_size=0, max_size=3).map(tuple)


@given(shapes, shapes, st.data())
def test_broadcast_shapes_agree_with_numpy(a, b, data):
    b = tuple(data.draw(st.sampled_from([d, 1])) for d in b)
    try:
        expected = np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(CompilationError, match="cannot broadcast"):
            sem.broadcast_shapes(a, b)
        return
    assert sem.broadcast_shapes(a, b) == expected


@given(shapes.filter(bool), shapes.filter(bool))
def test_broadcast_to_builds_a_value_of_the_target_shape(src, extra):
    target = extra + src
    builder, (x,) = tensor_of(t.BlockType(src, t.f32))
    assert sem.broadcast_to(builder, x, target).shape == target
