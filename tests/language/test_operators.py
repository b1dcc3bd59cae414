"""Operators (API.md "operators"): every arithmetic, bitwise and comparison operator, on blocks and
scalars, for every dtype it accepts, against exact Python/numpy references including special values."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import FLOATS, INTS, poisoned, random_array

BLOCK = 64


@kdsl.kernel
def apply_op(x, y, OP: kl.constexpr):
    if OP == "add":
        z = x + y
    elif OP == "sub":
        z = x - y
    elif OP == "mul":
        z = x * y
    elif OP == "truediv":
        z = x / y
    elif OP == "floordiv":
        z = x // y
    elif OP == "mod":
        z = x % y
    elif OP == "and":
        z = x & y
    elif OP == "or":
        z = x | y
    elif OP == "xor":
        z = x ^ y
    elif OP == "shl":
        z = x << y
    elif OP == "shr":
        z = x >> y
    elif OP == "lt":
        z = x < y
    elif OP == "le":
        z = x <= y
    elif OP == "gt":
        z = x > y
    elif OP == "ge":
        z = x >= y
    elif OP == "eq":
        z = x == y
    elif OP == "ne":
        z = x != y
    elif OP == "minimum":
        z = kl.minimum(x, y)
    else:
        z = kl.maximum(x, y)
    return z


@kdsl.kernel
def binary_block(x_ptr, y_ptr, out_ptr, n, OP: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, apply_op(x, y, OP), mask=mask)


@kdsl.kernel
def binary_scalar(x_ptr, y_ptr, out_ptr, OP: kl.constexpr):
    i = kl.program_id(0)
    kl.store(out_ptr + i, apply_op(kl.load(x_ptr + i), kl.load(y_ptr + i), OP))


def wrap(value, dtype):
    """`value` (a Python int) wrapped to the width and signedness of `dtype`."""
    info = np.iinfo(dtype)
    value &= (1 << info.bits) - 1
    if info.min < 0 and value > info.max:
        value -= 1 << info.bits
    return value


def c_div(a, b, dtype):
    if b == 0:
        return wrap(-1, dtype)
    q = abs(a) // abs(b)
    return wrap(q if (a < 0) == (b < 0) else -q, dtype)


def c_rem(a, b, dtype):
    if b == 0:
        return a
    return wrap(a - b * int(c_div(a, b, dtype)) if not (a == np.iinfo(dtype).min and b == -1) else 0, dtype)


def shift(a, b, dtype, left):
    info = np.iinfo(dtype)
    amount = b & ((1 << info.bits) - 1)
    if amount >= info.bits:
        return 0 if left or a >= 0 else -1
    return wrap(a << amount, dtype) if left else a >> amount


INT_REFERENCE = {
    "add": lambda a, b, d: wrap(a + b, d), "sub": lambda a, b, d: wrap(a - b, d),
    "mul": lambda a, b, d: wrap(a * b, d), "floordiv": c_div, "mod": c_rem,
    "and": lambda a, b, d: a & b, "or": lambda a, b, d: a | b, "xor": lambda a, b, d: a ^ b,
    "shl": lambda a, b, d: shift(a, b, d, True), "shr": lambda a, b, d: shift(a, b, d, False),
    "minimum": lambda a, b, d: min(a, b), "maximum": lambda a, b, d: max(a, b),
}
COMPARISONS = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
               "eq": np.equal, "ne": np.not_equal}
FLOAT_REFERENCE = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.divide, "mod": np.fmod,
    "minimum": np.fmin, "maximum": np.fmax,
}


def reference(op, x, y):
    if op in COMPARISONS:
        return COMPARISONS[op](x, y)
    with np.errstate(all="ignore"):
        if x.dtype.kind == "f":
            return FLOAT_REFERENCE[op](x, y)
        if op == "truediv":
            return x.astype(np.float32) / y.astype(np.float32)
    fn = INT_REFERENCE[op]
    return np.array([fn(int(a), int(b), x.dtype) for a, b in zip(x, y)], dtype=x.dtype)


def result_dtype(op, dtype):
    if op in COMPARISONS:
        return np.bool_
    if op == "truediv" and np.dtype(dtype).kind != "f":
        return np.float32
    return dtype


INT_OPS = list(INT_REFERENCE) + ["truediv"] + list(COMPARISONS)
FLOAT_OPS = list(FLOAT_REFERENCE) + list(COMPARISONS)
CASES = [(op, d) for d in INTS for op in INT_OPS] + [(op, d) for d in FLOATS for op in FLOAT_OPS]


def inputs(op, dtype, n, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, n, dtype, full_range=True, specials=True)
    y = random_array(rng, n, dtype, full_range=True, specials=True)
    if op in ("shl", "shr"):
        bits = np.iinfo(dtype).bits
        small = rng.integers(0, bits, n).astype(dtype)
        y = np.where(rng.random(n) < 0.8, small, y)
    return x, y


@pytest.mark.parametrize("op, dtype", CASES, ids=[f"{op}-{np.dtype(d).name}" for op, d in CASES])
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 150), seed=st.integers(0, 2**32 - 1), scalar=st.booleans())
def test_binary_operator(target, op, dtype, n, seed, scalar):
    x, y = inputs(op, dtype, n, seed)
    out = poisoned(n, result_dtype(op, dtype))
    if scalar:
        binary_scalar[(n,)](x, y, out, OP=op, target=target)
    else:
        binary_block[(math.ceil(n / BLOCK),)](x, y, out, n, OP=op, BLOCK=BLOCK, target=target)
    np.testing.assert_array_equal(out, reference(op, x, y))


@kdsl.kernel
def unary_block(x_ptr, out_ptr, n, OP: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    if OP == "neg":
        z = -x
    elif OP == "invert":
        z = ~x
    elif OP == "not":
        z = not x
    elif OP == "abs":
        z = kl.abs(x)
    elif OP == "exp":
        z = kl.exp(x)
    elif OP == "log":
        z = kl.log(x)
    else:
        z = kl.sqrt(x)
    kl.store(out_ptr + offs, z, mask=mask)


def int_unary(op, x):
    fn = {"neg": lambda a: wrap(-a, x.dtype), "invert": lambda a: wrap(~a, x.dtype),
          "abs": lambda a: wrap(abs(a), x.dtype)}[op]
    return np.array([fn(int(a)) for a in x], x.dtype)


UNARY_CASES = ([(op, d) for d in INTS for op in ("neg", "invert", "abs", "not")]
               + [(op, d) for d in FLOATS for op in ("neg", "abs", "not", "exp", "log", "sqrt")])
MATH_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 2e-7, np.dtype(np.float64): 1e-15}


@pytest.mark.parametrize("op, dtype", UNARY_CASES, ids=[f"{op}-{np.dtype(d).name}" for op, d in UNARY_CASES])
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 150), seed=st.integers(0, 2**32 - 1))
def test_unary_operator(target, op, dtype, n, seed):
    x, _ = inputs(op, dtype, n, seed)
    if op == "not" and target == "interpret":
        pytest.skip("Python's `not` cannot be overloaded, so the interpreter rejects it on blocks")
    if op == "not":
        out = poisoned(n, np.bool_)
        unary_block[(math.ceil(n / BLOCK),)](x, out, n, OP=op, BLOCK=BLOCK, target=target)
        np.testing.assert_array_equal(out, x == 0)
        return
    out = poisoned(n, dtype)
    unary_block[(math.ceil(n / BLOCK),)](x, out, n, OP=op, BLOCK=BLOCK, target=target)
    if np.dtype(dtype).kind != "f":
        np.testing.assert_array_equal(out, int_unary(op, x))
    elif op in ("neg", "abs"):
        np.testing.assert_array_equal(out, -x if op == "neg" else np.abs(x))
    else:
        with np.errstate(all="ignore"):
            expected = getattr(np, op)(x.astype(np.float64)).astype(dtype)
        np.testing.assert_allclose(out, expected, rtol=MATH_RTOL[np.dtype(dtype)], atol=0, equal_nan=True)


@kdsl.kernel
def with_python_number(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, (x * 3 + 1) // 2 - 7 % 4, mask=mask)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float16, np.float32])
def test_python_numbers_take_the_block_type(target, dtype):
    rng = np.random.default_rng(0)
    x = random_array(rng, 50, dtype)
    out = poisoned(50, dtype)
    if np.dtype(dtype).kind == "f":
        with pytest.raises(kdsl.CompilationError, match="'//' needs integer operands"):
            with_python_number[(1,)](x, out, 50, BLOCK=64, target=target)
        return
    with_python_number[(1,)](x, out, 50, BLOCK=64, target=target)
    expected = [wrap(c_div(wrap(int(a) * 3 + 1, dtype), 2, dtype) - 3, dtype) for a in x]
    np.testing.assert_array_equal(out, np.array(expected, dtype))


@kdsl.kernel
def python_min_max(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    y = kl.load(y_ptr + offs)
    kl.store(out_ptr + offs, min(x, y))
    kl.store(out_ptr + BLOCK + offs, max(x, y, 0.5))
    kl.store(out_ptr + 2 * BLOCK + offs, min(n, 3) + max(2, BLOCK) + offs * 0)


@pytest.mark.parametrize("n", [1, 7])
def test_python_min_and_max_of_kl_values_are_minimum_and_maximum(target, n):
    rng = np.random.default_rng(n)
    x, y = random_array(rng, 16, np.float32), random_array(rng, 16, np.float32)
    out = poisoned((3, 16), np.float32)
    python_min_max[(1,)](x, y, out, n, BLOCK=16, target=target)
    expected = [np.minimum(x, y), np.maximum(np.maximum(x, y), 0.5), np.full(16, min(n, 3) + 16)]
    np.testing.assert_array_equal(out, expected)
