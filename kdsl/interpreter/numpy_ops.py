"""The numpy semantics of every kdsl IR op: the interpreter's engine and the reference for tests.

`evaluate(name, result_type, operands, attrs, env)` computes one op on payload
arrays (see `dtypes`) exactly as `kdsl.ir.ops` defines it:

- integers wrap at their width; `div` truncates toward zero and `rem` takes the
  dividend's sign; x/0 gives -1 (all ones) and x%0 gives x; INT_MIN/-1 gives
  INT_MIN with remainder 0. Float `rem` is fmod.
- `shr` is arithmetic on signed and logical on unsigned integers; shift amounts
  at or beyond the width (read as unsigned) give 0, or the sign fill for `shr`.
- float `min`/`max` return the non-NaN operand; `cmp` is ordered except `ne`.
- `cast` float→int truncates and saturates, NaN→0; a cast to i1 is `!= 0`.
- f16 ops are rounded by numpy's float16; bf16 and fp8 are computed in float32 and
  rounded to nearest even after every op.
- `reduce` folds from the left in index order in the element type: float sums
  round after every addition, as the CPU's loop does.
- `load`/`store` go through `env.memory`; masked-off lanes touch no memory and
  load `other` (0 without it).
- `dot` computes in its result type (`numpy_dot`); `atomic_rmw`/`atomic_cas`
  apply their lanes one after another, in lane order (`numpy_atomics`).
- `print` writes its lines (`kdsl.runtime.device_print`) with Python's `print`;
  `assert` reports its first false element through `env.assertion_failed`.
"""
from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any, Callable, Protocol

import numpy as np

from kdsl.interpreter.dtypes import elem_bytes, finish, from_bits, payload_dtype, to_bits
from kdsl.interpreter.numpy_atomics import atomic_cas, atomic_rmw
from kdsl.interpreter.numpy_dot import dot
from kdsl.ir.ops import permute_order
from kdsl.ir.types import PointerType, ScalarType, Type
from kdsl.runtime.device_print import print_lines


class Memory(Protocol):
    def read(self, addresses: np.ndarray, nbytes: int, mask: np.ndarray) -> np.ndarray: ...

    def write(self, addresses: np.ndarray, bits: np.ndarray, mask: np.ndarray) -> None: ...


class Env(Protocol):
    """What the few ops that are not pure functions of their operands need."""

    memory: Memory

    def program_id(self, axis: int) -> int: ...

    def num_programs(self, axis: int) -> int: ...

    def assertion_failed(self, index: tuple[int, ...] | None, message: str) -> None: ...


Impl = Callable[[Type, list[np.ndarray], dict[str, Any], Env], Any]


def _elem(ty: Type) -> ScalarType:
    return ty.scalar  # type: ignore[return-value]


# integer division ---------------------------------------------------------------

def _divmod_int(a: np.ndarray, b: np.ndarray, ty: ScalarType) -> tuple[np.ndarray, np.ndarray]:
    """C division: quotient toward zero, remainder with the dividend's sign, x/0 = -1, x%0 = x."""
    zero = b == 0
    overflow = np.zeros_like(zero)
    if ty.is_signed:
        overflow = (a == np.iinfo(a.dtype).min) & (b == -1)
    safe = np.where(zero | overflow, np.ones_like(b), b)
    rem = np.fmod(a, safe)
    quot = (a - rem) // safe
    return np.where(zero, np.invert(np.zeros_like(a)), quot), np.where(zero, a, rem)


def _div(rt: Type, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    elem = _elem(rt)
    return a / b if elem.is_float else _divmod_int(a, b, elem)[0]


def _rem(rt: Type, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    elem = _elem(rt)
    return np.fmod(a, b) if elem.is_float else _divmod_int(a, b, elem)[1]


# shifts ------------------------------------------------------------------------

def _shift(rt: Type, a: np.ndarray, b: np.ndarray, left: bool) -> np.ndarray:
    elem = _elem(rt)
    if elem.is_bool:
        return np.where(b, False, a)
    amount = b.astype(np.dtype(f"u{a.dtype.itemsize}"))
    big = amount >= elem.bits
    safe = np.where(big, 0, amount).astype(a.dtype)
    if left:
        return np.where(big, np.zeros_like(a), np.left_shift(a, safe))
    fill = np.where(a < 0, np.full_like(a, -1), np.zeros_like(a)) if elem.is_signed else np.zeros_like(a)
    return np.where(big, fill, np.right_shift(a, safe))


# min, max, abs, neg ----------------------------------------------------------------

def _minmax(rt: Type, a: np.ndarray, b: np.ndarray, smallest: bool) -> np.ndarray:
    if _elem(rt).is_float:
        return np.fmin(a, b) if smallest else np.fmax(a, b)
    return np.minimum(a, b) if smallest else np.maximum(a, b)


# casts -----------------------------------------------------------------------

def _cast(rt: Type, x: np.ndarray, src: ScalarType) -> np.ndarray:
    """Only what `finish` does not: to i1 is `!= 0`, float to int saturates."""
    dst = _elem(rt)
    if dst.is_bool:
        return x != 0
    if dst.is_int and src.is_float:
        return _float_to_int(x, dst)
    return x


def _float_to_int(x: np.ndarray, dst: ScalarType) -> np.ndarray:
    """Truncate toward zero, saturate at the type's bounds, NaN → 0."""
    info = np.iinfo(payload_dtype(dst))
    x = np.trunc(np.asarray(x, np.float64))
    over = x >= 2.0 ** (dst.bits - (1 if dst.is_signed else 0))
    under = x < float(info.min)
    inside = np.where(over | under | np.isnan(x), 0.0, x).astype(payload_dtype(dst))
    return np.where(over, info.max, np.where(under, info.min, inside)).astype(payload_dtype(dst))


def _cast_op(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> np.ndarray:
    return _cast(rt, args[0], attrs["src_type"])


def _bitcast(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> np.ndarray:
    return from_bits(to_bits(args[0], attrs["src_type"]), _elem(rt))


# reductions ------------------------------------------------------------------

_REDUCERS = {
    ("sum", "int"): np.add.reduce, ("max", "int"): np.maximum.reduce, ("min", "int"): np.minimum.reduce,
    ("sum", "float"): np.add.reduce, ("max", "float"): np.fmax.reduce, ("min", "float"): np.fmin.reduce,
}


def _reduce(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> np.ndarray:
    (x,) = args
    elem, kind, axis = _elem(rt), attrs["kind"], attrs["axis"]
    if kind == "sum" and elem.is_float:
        return _float_sum(x, axis, elem)
    fn = _REDUCERS[(kind, "float" if elem.is_float else "int")]
    return fn(x, axis=axis, dtype=x.dtype)


def _float_sum(x: np.ndarray, axis: int, elem: ScalarType) -> np.ndarray:
    """The left fold of + along `axis`, rounding to `elem` after every addition (numpy's reductions
    sum pairwise; its accumulations run in order, but bf16/fp8 payloads are float32, rounded here)."""
    if elem.bits == np.dtype(payload_dtype(elem)).itemsize * 8:
        return np.take(np.add.accumulate(x, axis=axis, dtype=x.dtype), -1, axis=axis)
    parts = np.moveaxis(x, axis, 0)
    total = parts[0]
    for part in parts[1:]:
        total = finish(elem, total + part)
    return total


# memory ----------------------------------------------------------------------

def _mask_of(ptr: np.ndarray, args: list[np.ndarray], position: int) -> np.ndarray:
    return args[position] if len(args) > position else np.ones(ptr.shape, np.bool_)


def _load(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> np.ndarray:
    ptr, elem = args[0], _elem(rt)
    mask = _mask_of(ptr, args, 1)
    bits = env.memory.read(ptr, elem_bytes(elem), mask)
    values = from_bits(bits, elem)
    other = args[2] if len(args) > 2 else np.zeros_like(values)
    return np.where(mask, values, other)


def _store(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> None:
    ptr, value = args[0], args[1]
    env.memory.write(ptr, to_bits(value, attrs["pointee"]), _mask_of(ptr, args, 2))


def _addptr(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> np.ndarray:
    ptr, offset = args
    step = np.uint64(elem_bytes(_elem(rt).elem))  # type: ignore[union-attr]
    return ptr + offset.astype(np.int64).astype(np.uint64) * step


# math ------------------------------------------------------------------------

def _fma(rt: Type, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """x*y+z rounded once: exact in float64 for narrower types, through fractions for float64."""
    if _elem(rt).bits < 64:
        return x.astype(np.float64) * y + z
    exact = np.frompyfunc(lambda a, b, c: float(Fraction(a) * Fraction(b) + Fraction(c))
                          if math.isfinite(a) and math.isfinite(b) and math.isfinite(c) else a * b + c, 3, 1)
    return exact(x, y, z).astype(np.float64)


def _umulhi(rt: Type, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    bits = _elem(rt).bits
    product = np.frompyfunc(lambda a, b: (int(a) * int(b)) >> bits, 2, 1)(x, y)
    return np.frompyfunc(lambda v: v & ((1 << bits) - 1), 1, 1)(product).astype(np.uint64).astype(x.dtype)


_ERF = np.frompyfunc(math.erf, 1, 1)


def _print(rt: None, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> None:
    pid = (env.program_id(0), env.program_id(1), env.program_id(2))
    print("\n".join(print_lines(attrs["prefix"], attrs["hex"], pid, list(zip(attrs["operand_types"], args)))))


def _assert(rt: None, args: list[np.ndarray], attrs: dict[str, Any], env: Env) -> None:
    (cond,) = args
    if cond.ndim == 0:
        if not cond:
            env.assertion_failed(None, attrs["message"])
        return
    failing = np.argwhere(~cond)
    if len(failing):
        env.assertion_failed(tuple(int(i) for i in failing[0]), attrs["message"])


# the table -------------------------------------------------------------------

def _elementwise(fn: Callable[..., Any]) -> Impl:
    return lambda rt, args, attrs, env: fn(*args)


def _typed(fn: Callable[..., Any], **kw: Any) -> Impl:
    return lambda rt, args, attrs, env: fn(rt, *args, **kw)


_CMP = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
        "ge": operator.ge}

OPS: dict[str, Impl] = {
    "constant": lambda rt, args, attrs, env: np.full(rt.shape, attrs["value"], payload_dtype(_elem(rt))
                                                     if _elem(rt).is_int else np.float64),
    "program_id": lambda rt, args, attrs, env: env.program_id(attrs["axis"]),
    "num_programs": lambda rt, args, attrs, env: env.num_programs(attrs["axis"]),
    "arange": lambda rt, args, attrs, env: np.arange(attrs["start"], attrs["end"]),
    "splat": lambda rt, args, attrs, env: np.full(rt.shape, args[0]),
    "broadcast": lambda rt, args, attrs, env: np.broadcast_to(args[0], rt.shape),
    "expand_dims": lambda rt, args, attrs, env: np.expand_dims(args[0], attrs["axis"]),
    "cmp": lambda rt, args, attrs, env: _CMP[attrs["pred"]](*args),
    "select": _elementwise(np.where),
    "cast": _cast_op,
    "bitcast": _bitcast,
    "addptr": _addptr,
    "load": _load,
    "store": _store,
    "reduce": _reduce,
    "add": _elementwise(np.add),
    "sub": _elementwise(np.subtract),
    "mul": _elementwise(np.multiply),
    "div": _typed(_div),
    "rem": _typed(_rem),
    "min": _typed(_minmax, smallest=True),
    "max": _typed(_minmax, smallest=False),
    "and": _elementwise(np.bitwise_and),
    "or": _elementwise(np.bitwise_or),
    "xor": _elementwise(np.bitwise_xor),
    "shl": _typed(_shift, left=True),
    "shr": _typed(_shift, left=False),
    "neg": _elementwise(np.negative),
    "abs": _elementwise(np.abs),
    "not": _elementwise(np.invert),
    "exp": _elementwise(np.exp),
    "log": _elementwise(np.log),
    "sqrt": _elementwise(np.sqrt),
    "exp2": _elementwise(np.exp2),
    "log2": _elementwise(np.log2),
    "rsqrt": _elementwise(lambda x: 1 / np.sqrt(x)),
    "sin": _elementwise(np.sin),
    "cos": _elementwise(np.cos),
    "erf": _elementwise(lambda x: _ERF(x.astype(np.float64)).astype(np.float64)),
    "floor": _elementwise(np.floor),
    "ceil": _elementwise(np.ceil),
    "fma": _typed(_fma),
    "umulhi": _typed(_umulhi),
    "multiple_of": _elementwise(lambda x: x),
    "max_contiguous": _elementwise(lambda x: x),
    "dot": dot,
    "atomic_rmw": atomic_rmw,
    "atomic_cas": atomic_cas,
    "reshape": lambda rt, args, attrs, env: np.reshape(args[0], rt.shape),
    "permute": lambda rt, args, attrs, env: np.transpose(args[0], permute_order(attrs)),
    "join": lambda rt, args, attrs, env: np.stack(args, axis=-1),
    "split": lambda rt, args, attrs, env: args[0][..., attrs["index"]],
    "print": _print,
    "assert": _assert,
}

def evaluate(name: str, rt: Type | None, operands: list[np.ndarray], attrs: dict[str, Any], env: Env,
             operand_types: list[Type] | None = None) -> np.ndarray | None:
    """Compute op `name` with result type `rt` (None for ops without a result) on payloads."""
    attrs = dict(attrs)  # plus the operand types, and the first one's element type for casts and stores
    attrs["operand_types"] = operand_types or []
    if operand_types:
        attrs["src_type"] = operand_types[0].scalar
        if isinstance(operand_types[0].scalar, PointerType):
            attrs["pointee"] = operand_types[0].scalar.elem
    with np.errstate(all="ignore"):
        result = OPS[name](rt, [np.asarray(x) for x in operands], attrs, env)
        return None if rt is None else finish(rt, np.broadcast_to(result, rt.shape))

