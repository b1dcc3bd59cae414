"""Folding random constant expressions gives the values numpy computes in the same type.

The reference is numpy arithmetic on 0-d arrays of the expression's dtype:
integer ops wrap at the type's width, float ops round to the type (f16, f32,
f64). C division is built from numpy's `fmod` (truncating, sign of the
dividend); division by zero follows the backend rule x/0 = -1, x%0 = x.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.ir import Builder, Function, Module, Value, verify_module
from kdsl.ir.core import OpResult
from kdsl.ir.ops import CMP_PREDICATES
from kdsl.ir.passes import run_pipeline
from kdsl.ir.passes.canonicalize import Canonicalize
from kdsl.ir.types import PointerType, ScalarType, f16, f32, f64, i1, i8, i16, i32, i64, u8, u16, u32, u64

from tests.ir.irgen import constant_values

DTYPES = {i8: np.int8, i16: np.int16, i32: np.int32, i64: np.int64, u8: np.uint8, u16: np.uint16,
          u32: np.uint32, u64: np.uint64, f16: np.float16, f32: np.float32, f64: np.float64}
INT_BINARY = ["add", "sub", "mul", "div", "rem", "min", "max", "and", "or", "xor", "shl", "shr"]
FLOAT_BINARY = ["add", "sub", "mul", "div", "rem", "min", "max"]


def c_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C's truncating division from numpy's truncating fmod: a - fmod(a, b) is an exact multiple of b."""
    if b == 0:
        return np.array(-1).astype(a.dtype)
    if b == -1:
        return -a  # wraps for the most negative value, where numpy's // would overflow
    return (a - np.fmod(a, b)) // b


NUMPY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.fmin, "max": np.fmax,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
    "shl": np.left_shift, "shr": np.right_shift, "neg": np.negative, "abs": np.abs, "not": np.invert,
    "sqrt": np.sqrt,
}


def reference(name: str, args: list[np.ndarray]) -> np.ndarray:
    a = args[0]
    if name == "div" and a.dtype.kind in "iu":
        return c_div(*args)
    if name == "rem" and a.dtype.kind in "iu":
        return a if args[1] == 0 else np.fmod(*args)
    fn = {"div": np.divide, "rem": np.fmod}.get(name) or NUMPY[name]
    return np.asarray(fn(*args)).astype(a.dtype)


@st.composite
def expressions(draw, t: ScalarType, depth: int):
    """A tree of ops over constants: ('const', v) | (name, [children])."""
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return ("const", draw(constant_values(t)))
    if t.is_int:
        name = draw(st.sampled_from(INT_BINARY + ["neg", "abs", "not"]))
    else:
        name = draw(st.sampled_from(FLOAT_BINARY + ["neg", "abs", "sqrt"]))
    if name in ("shl", "shr"):
        return (name, [draw(expressions(t, depth - 1)), ("const", draw(st.integers(0, t.bits - 1)))])
    arity = 1 if name in ("neg", "abs", "not", "sqrt") else 2
    return (name, [draw(expressions(t, depth - 1)) for _ in range(arity)])


def build(b: Builder, t: ScalarType, tree) -> Value:
    name, payload = tree
    if name == "const":
        return b.value("constant", [], t, value=payload)
    return b.value(name, [build(b, t, child) for child in payload], t)


def evaluate(t: ScalarType, tree) -> np.ndarray:
    name, payload = tree
    if name == "const":
        return np.array(payload, dtype=DTYPES[t])
    return reference(name, [evaluate(t, child) for child in payload])


def fold(result_type: ScalarType, emit) -> object:
    """Build `store p, emit(builder)` in a kernel, canonicalize, and return the stored constant."""
    fn = Function("k", [PointerType(result_type)])
    b = Builder(fn.body)
    b.create("store", [fn.args[0], emit(b)], [])
    b.create("return", [], [])
    module = Module([fn])
    verify_module(module)
    run_pipeline(module, [Canonicalize()])
    stored = fn.body.ops[-2].operands[1]
    assert isinstance(stored, OpResult) and stored.op.name == "constant", "expression did not fold"
    return stored.op.attrs["value"]


def same(got: object, want: np.ndarray) -> bool:
    """Bitwise equality in `want`'s dtype (a bare constant leaf keeps its unrounded attribute)."""
    if want.dtype.kind == "f":
        with np.errstate(over="ignore"):
            return (math.isnan(got) and np.isnan(want)) or np.array(got, dtype=want.dtype).tobytes() == want.tobytes()
    return got == want.item()


types = st.sampled_from(list(DTYPES))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_folding_matches_numpy(data) -> None:
    t = data.draw(types)
    tree = data.draw(expressions(t, 3))
    with np.errstate(all="ignore"):
        want = evaluate(t, tree)
    got = fold(t, lambda b: build(b, t, tree))
    assert same(got, want), (tree, got, want)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cmp_folding_matches_numpy(data) -> None:
    t = data.draw(types)
    pred = data.draw(st.sampled_from(CMP_PREDICATES))
    a, b = (data.draw(constant_values(t)) for _ in range(2))
    numpy_op = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                "gt": np.greater, "ge": np.greater_equal}[pred]
    with np.errstate(all="ignore"):
        want = numpy_op(np.array(a, dtype=DTYPES[t]), np.array(b, dtype=DTYPES[t]))

    def emit(builder: Builder) -> Value:
        x, y = (builder.value("constant", [], t, value=v) for v in (a, b))
        return builder.value("cmp", [x, y], i1, pred=pred)

    assert fold(i1, emit) == bool(want)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cast_folding_matches_numpy(data) -> None:
    src = data.draw(types)
    dst = data.draw(types.filter(lambda d: not (src.is_float and d.is_int)))
    value = data.draw(constant_values(src))
    with np.errstate(all="ignore"):
        want = np.array(value, dtype=DTYPES[src]).astype(DTYPES[dst])

    def emit(builder: Builder) -> Value:
        return builder.value("cast", [builder.value("constant", [], src, value=value)], dst)

    assert same(fold(dst, emit), want)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_bitcast_folding_matches_numpy_view(data) -> None:
    src = data.draw(types)
    dst = data.draw(types.filter(lambda d: d.bits == src.bits))
    value = data.draw(constant_values(src))
    with np.errstate(all="ignore"):
        want = np.array(value, dtype=DTYPES[src]).view(DTYPES[dst])

    def emit(builder: Builder) -> Value:
        return builder.value("bitcast", [builder.value("constant", [], src, value=value)], dst)

    if src != dst and want.dtype.kind == "f" and np.isnan(want):
        with pytest.raises(AssertionError, match="did not fold"):
            fold(dst, emit)
    else:
        assert same(fold(dst, emit), want)
