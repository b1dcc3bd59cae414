"""Evaluating ops on constant scalars with the exact semantics every backend implements.

Values are Python numbers: ints already wrapped to their type (bool for `i1`),
floats already rounded to their type. Each evaluator returns the folded value,
or None where folding must not happen: types without an exact host model
(bf16, fp8), results the targets leave undefined (out-of-range shifts and
float→int conversions), and functions whose libm results may differ between
targets by an ulp (`exp`, `log`).
"""
from __future__ import annotations

import math
import operator
from typing import Callable

import numpy as np

from kdsl.ir.types import ScalarType

Number = bool | int | float

_NUMPY_FLOATS = {16: np.float16, 32: np.float32, 64: np.float64}
_NUMPY_INTS = {(kind, bits): np.dtype(f"{'u' if kind == 'uint' else ''}int{bits}")
               for kind in ("int", "uint") for bits in (8, 16, 32, 64)}


def foldable(t: object) -> bool:
    """Whether constants of element type `t` can be folded exactly."""
    return isinstance(t, ScalarType) and (t.is_int or (t.is_float and t.name in ("f16", "f32", "f64")))


def wrap(value: Number, t: ScalarType) -> Number:
    """`value` as an element of `t`: wrapped to its width and signedness, or rounded to its precision."""
    if t.is_float:
        with np.errstate(over="ignore"):
            return float(_NUMPY_FLOATS[t.bits](value))
    v = int(value) & ((1 << t.bits) - 1)
    if t.is_bool:
        return bool(v)
    if t.is_signed and v >= 1 << (t.bits - 1):
        v -= 1 << t.bits
    return v


def _float_op(fn: Callable[..., object]) -> Callable[..., float]:
    def run(t: ScalarType, *args: float) -> float:
        ft = _NUMPY_FLOATS[t.bits]
        with np.errstate(all="ignore"):
            return float(fn(*(ft(a) for a in args)))
    return run


def _int_div(a: int, b: int) -> int:
    if b == 0:
        return -1
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _int_rem(a: int, b: int) -> int:
    return a if b == 0 else a - b * _int_div(a, b)


def _shift(t: ScalarType, a: int, b: int, left: bool) -> int | None:
    if not 0 <= b < t.bits:
        return None
    if left:
        return a << b
    return (a if t.is_signed else a & ((1 << t.bits) - 1)) >> b


_INT_BINARY: dict[str, Callable[[int, int], int]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": _int_div, "rem": _int_rem,
    "min": min, "max": max, "and": operator.and_, "or": operator.or_, "xor": operator.xor,
}
_FLOAT_BINARY: dict[str, Callable[..., float]] = {
    "add": _float_op(np.add), "sub": _float_op(np.subtract), "mul": _float_op(np.multiply),
    "div": _float_op(np.divide), "rem": _float_op(np.fmod), "min": _float_op(np.fmin), "max": _float_op(np.fmax),
}
_CMP: dict[str, Callable[[Number, Number], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}


def fold_binary(name: str, t: ScalarType, a: Number, b: Number) -> Number | None:
    """`a name b` in type `t`, or None when it does not fold."""
    if t.is_float:
        fn = _FLOAT_BINARY.get(name)
        return None if fn is None else wrap(fn(t, a, b), t)
    if name in ("shl", "shr"):
        r = _shift(t, int(a), int(b), name == "shl")
        return None if r is None else wrap(r, t)
    fn2 = _INT_BINARY.get(name)
    return None if fn2 is None else wrap(fn2(int(a), int(b)), t)


def fold_unary(name: str, t: ScalarType, a: Number) -> Number | None:
    if name == "neg":
        return wrap(-a, t) if t.is_int else wrap(_float_op(np.negative)(t, a), t)
    if name == "abs":
        return wrap(abs(int(a)), t) if t.is_int else abs(a)
    if name == "not" and t.is_int:
        return wrap(~int(a), t)
    if name == "sqrt" and t.is_float:
        return wrap(_float_op(np.sqrt)(t, a), t)
    return None


def fold_cmp(pred: str, a: Number, b: Number) -> bool:
    """Signedness is already in the values; Python's float comparisons are ordered except `!=`."""
    return _CMP[pred](a, b)


def fold_cast(src: ScalarType, dst: ScalarType, a: Number) -> Number | None:
    if dst.is_bool != src.is_bool:
        return None  # i1 <-> number conversions differ between frontends (trunc vs != 0, sext vs zext)
    if src.is_float and dst.is_int:
        if math.isnan(a) or math.isinf(a):
            return None
        v = math.trunc(a)
        lo, hi = (-(1 << (dst.bits - 1)), 1 << (dst.bits - 1)) if dst.is_signed else (0, 1 << dst.bits)
        return v if lo <= v < hi else None
    if src.is_int and dst.is_float:
        exact = (np.uint64 if src.kind == "uint" else np.int64)(int(a))
        with np.errstate(over="ignore"):
            return float(np.array(exact).astype(_NUMPY_FLOATS[dst.bits]))
    return wrap(a, dst)


def fold_bitcast(src: ScalarType, dst: ScalarType, a: Number) -> Number | None:
    """Reinterpret the bits of `a`; not folded to a NaN, whose payload a `constant` cannot hold."""
    if src.is_bool or dst.is_bool:
        return a if src == dst else None
    value = np.array(a, dtype=_numpy_dtype(src)).view(_numpy_dtype(dst)).item()
    return None if isinstance(value, float) and math.isnan(value) else wrap(value, dst)


def fold_reduce(kind: str, t: ScalarType, a: Number, count: int) -> Number | None:
    """Reducing `count` copies of `a`: exact for min/max, and for integer sums (wrapping)."""
    if kind in ("min", "max"):
        return a
    return wrap(int(a) * count, t) if t.is_int else None


def _numpy_dtype(t: ScalarType) -> np.dtype:
    return np.dtype(_NUMPY_FLOATS[t.bits]) if t.is_float else _NUMPY_INTS[(t.kind, t.bits)]
