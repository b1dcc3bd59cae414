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
    ("truediv", t.i32, t.i32, t.f32), ("truediv", t.i64, t.i8, t.f32), ("truediv", t.f16, t.i32, t.f32),
    ("truediv", t.f64, t.i32, t.f64), ("and", t.i8, t.u16, t.u16), ("add", t.i1, t.i1, t.i32),
    ("and", t.i1, t.i1, t.i1),
    # Triton's computation_type_impl: / and % of floats in fp32, bf16 only with bf16, fp8 pairs
    ("truediv", t.f16, t.f16, t.f32), ("mod", t.bf16, t.bf16, t.f32), ("mod", t.f64, t.f16, t.f64),
    ("add", t.bf16, t.i32, t.f32), ("mul", t.bf16, t.f32, t.f32),
    ("add", t.fp8e4nv, t.fp8e4nv, t.fp8e4nv), ("mul", t.fp8e5, t.fp8e5, t.fp8e5),
    ("sub", t.fp8e4nv, t.fp8e5, t.f16), ("add", t.fp8e4nv, t.f16, t.f16), ("add", t.fp8e5, t.bf16, t.f32),
    ("max", t.fp8e4nv, t.f32, t.f32), ("min", t.fp8e5, t.f64, t.f64), ("truediv", t.fp8e4nv, t.fp8e4nv, t.f32),
    ("mod", t.fp8e5, t.fp8e5, t.f32),
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


@pytest.mark.parametrize("fp8", [t.fp8e4nv, t.fp8e5])
@pytest.mark.parametrize("other", [t.i8, t.i32, t.u64, t.i1])
def test_fp8_does_not_combine_with_integer_blocks(fp8, other):
    builder, (x, y) = tensor_of(fp8, other)
    with pytest.raises(CompilationError, match=rf"{fp8} does not combine with {other}.*\.to\(kl.float32\)"):
        sem.binary(builder, "add", x, y)
    with pytest.raises(CompilationError, match=f"{fp8} does not combine"):
        sem.compare(builder, "lt", y, x)


@pytest.mark.parametrize("fp8", [t.fp8e4nv, t.fp8e5])
def test_fp8_comparisons_where_and_python_numbers(fp8):
    builder, (x, y, c) = tensor_of(t.BlockType((8,), fp8), t.BlockType((8,), t.fp8e4nv), t.BlockType((8,), t.i1))
    assert sem.compare(builder, "lt", x, y).type == t.BlockType((8,), t.i1)
    assert sem.binary(builder, "add", x, 1.5).dtype == fp8
    assert sem.binary(builder, "mul", 3, x).dtype == fp8
    assert sem.where(builder, c, x, 0.0).dtype == fp8
    assert sem.absolute(builder, x).dtype == fp8


@pytest.mark.parametrize("fp8", [t.fp8e4nv, t.fp8e5])
def test_math_functions_reject_fp8_as_triton_does(fp8):
    builder, (x,) = tensor_of(fp8)
    with pytest.raises(CompilationError, match=rf"kl.exp is not defined on {fp8}.*\.to\(kl.float32\)"):
        sem.unary_math(builder, "exp", x)


@pytest.mark.parametrize("dtype, kind, expected", [
    (t.fp8e4nv, "sum", t.fp8e4nv), (t.fp8e5, "sum", t.fp8e5), (t.f16, "sum", t.f16), (t.bf16, "sum", t.bf16),
    (t.i8, "sum", t.i32), (t.u16, "sum", t.u32), (t.i1, "sum", t.u32), (t.i64, "sum", t.i64),
    (t.fp8e4nv, "max", t.f32), (t.f16, "min", t.f32), (t.u8, "max", t.i32), (t.i1, "min", t.i32),
    (t.f32, "max", t.f32), (t.u32, "min", t.u32),
])
def test_reduction_types_follow_triton(dtype, kind, expected):
    builder, (x,) = tensor_of(t.BlockType((8,), dtype))
    assert sem.reduce(builder, x, 0, kind, False).dtype == expected
    assert sem.reduce(builder, x, 0, "sum", False, t.f32).dtype == t.f32


def test_comparison_gives_i1_of_the_broadcast_shape():
    builder, (x, y) = tensor_of(t.BlockType((4, 1), t.f32), t.BlockType((8,), t.i32))
    assert sem.compare(builder, "lt", x, y).type == t.BlockType((4, 8), t.i1)


def test_pointer_plus_offsets_broadcasts_the_pointer():
    builder, (p, offs) = tensor_of(t.PointerType(t.f16), t.BlockType((32,), t.i64))
    assert sem.binary(builder, "add", p, offs).type == t.BlockType((32,), t.PointerType(t.f16))
    assert sem.binary(builder, "add", offs, p).type == t.BlockType((32,), t.PointerType(t.f16))


def test_pointers_do_not_multiply():
    builder, (p,) = tensor_of(t.PointerType(t.f32))
    with pytest.raises(CompilationError, match=r"'\*' is not defined on pointers"):
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
