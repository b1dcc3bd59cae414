"""The typing rules of the language and the IR each operation builds.

The AST visitor (`codegen`) only dispatches; everything about types lives
here: Triton's promotion rules, numpy-style broadcasting, how Python numbers
adopt the type of the block they meet, and the checks behind each builtin.
Errors are raised as `CompilationError` without a location; the visitor adds
the location of the expression being compiled.
"""
from __future__ import annotations

from typing import Any, Callable

from kdsl.errors import CompilationError
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.core import Value
from kdsl.ir.types import BlockType, PointerType, ScalarType, Type

PyNumber = (bool, int, float)

MAX_NUMEL = 1 << 20  # as Triton: larger blocks are almost always a mistake and exhaust registers or stack

ARITHMETIC = ("add", "sub", "mul", "truediv", "floordiv", "mod", "min", "max")
BITWISE = ("and", "or", "xor", "shl", "shr")
# how a user writes each operation, for error messages (others are the builtin of that name)
_SPELLING = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "and": "&", "or": "|",
             "xor": "^", "shl": "<<", "shr": ">>", "min": "kl.minimum", "max": "kl.maximum",
             "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


class Tensor:
    """A runtime value inside a kernel: a scalar or a block, wrapping an IR value."""

    __slots__ = ("handle",)

    def __init__(self, handle: Value):
        self.handle = handle

    @property
    def type(self) -> Type:
        return self.handle.type

    @property
    def dtype(self) -> ScalarType | PointerType:
        return self.handle.type.scalar

    @property
    def shape(self) -> tuple[int, ...]:
        return self.handle.type.shape

    def __repr__(self) -> str:
        return f"Tensor({self.type})"


def fail(reason: str) -> CompilationError:
    return CompilationError(reason)


def type_name(x: object) -> str:
    if isinstance(x, Tensor):
        return str(x.type)
    if isinstance(x, ScalarType):
        return "dtype"  # kl.dtype, as the user knows the class
    return type(x).__name__


def spelled(op: str) -> str:
    """`op` ("add", "lt", "where") as the user wrote it: "+", "<", "kl.where"."""
    return _SPELLING.get(op, f"kl.{op}")


def python_value(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on compile-time values, run in Python; what Python raises is the user's mistake."""
    try:
        return fn(*args)
    except Exception as e:
        raise fail(f"compile-time evaluation failed: {type(e).__name__}: {e}") from None


# numbers ---------------------------------------------------------------------

def int_range(dtype: ScalarType) -> tuple[int, int]:
    if dtype.is_bool:
        return 0, 1
    if dtype.is_signed:
        return -(1 << (dtype.bits - 1)), (1 << (dtype.bits - 1)) - 1
    return 0, (1 << dtype.bits) - 1


def python_type(value: bool | int | float) -> ScalarType:
    """The type a Python number gets on its own: bool→i1, int→i32 (i64, u64 if larger), float→f32."""
    if isinstance(value, bool):
        return t.i1
    if isinstance(value, int):
        for dtype in (t.i32, t.i64, t.u64):
            lo, hi = int_range(dtype)
            if lo <= value <= hi:
                return dtype
        raise fail(f"the integer {value} does not fit in 64 bits")
    return t.f32


def constant(b: Builder, value: bool | int | float, dtype: ScalarType, shape: tuple[int, ...] = ()) -> Tensor:
    """A constant of `dtype` (a block of `shape` with every element `value`)."""
    if dtype.is_int:
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise fail(f"cannot convert {value} to {dtype}")
            value = int(value)
        value = int(value)
        lo, hi = int_range(dtype)
        if not lo <= value <= hi:
            raise fail(f"the constant {value} does not fit in {dtype}")
        stored: bool | int | float = bool(value) if dtype.is_bool else value
    else:
        stored = float(value)
    return Tensor(b.value("constant", [], t.block(shape, dtype), value=stored))


def to_tensor(b: Builder, x: object, dtype: ScalarType | None = None) -> Tensor:
    """`x` as a Tensor: Python numbers become constants of `dtype` or of their own type."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, PyNumber):
        return constant(b, x, dtype or python_type(x))
    raise fail(f"expected a number or a block, got {type_name(x)}")


def adopt(x: bool | int | float, other: ScalarType) -> ScalarType:
    """The type a Python number takes when it meets a value of type `other` (weak typing)."""
    if isinstance(other, PointerType):
        return python_type(x)
    if other.is_float:
        return other
    if isinstance(x, float):
        return t.f32
    if isinstance(x, bool):
        return other
    if other.is_bool:
        return python_type(x)
    lo, hi = int_range(other)
    if not lo <= x <= hi:
        raise fail(f"the constant {x} does not fit in {other}, the type of the value it is combined with")
    return other


# promotion -------------------------------------------------------------------

def float_promote(a: ScalarType, b: ScalarType, div_or_mod: bool = False) -> ScalarType:
    """Triton's `computation_type_impl` when at least one operand is a float.

    fp64 wins; `/` and `%` compute in fp32 (fp64); then fp32 wins, then fp16 (fp16 with bf16
    or fp8 gives fp16); two bf16 stay bf16, bf16 with anything else is fp32; two fp8 of one
    format stay that format (computed in fp32 and rounded), two formats give fp16; an fp8
    does not combine with an integer block.
    """
    if t.f64 in (a, b):
        return t.f64
    if div_or_mod:
        return t.f32
    for wins in (t.f32, t.f16):
        if wins in (a, b):
            return wins
    if t.bf16 in (a, b):
        return t.bf16 if a == b else t.f32
    if a.is_fp8 and b.is_fp8:
        return a if a == b else t.f16
    fp8, other = (a, b) if a.is_fp8 else (b, a)
    raise fail(f"{fp8} does not combine with {other} (as in Triton, fp8 only combines with floats "
               f"and Python numbers); convert one side with .to(), e.g. .to(kl.float32)")


def int_promote(a: ScalarType, b: ScalarType) -> ScalarType:
    """Triton's integer promotion: wider wins; on mixed signedness unsigned wins when at least as wide."""
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_signed == b.is_signed:
        return a if a.bits >= b.bits else b
    unsigned, signed = (a, b) if not a.is_signed else (b, a)
    return unsigned if unsigned.bits >= signed.bits else signed


def compute_type(a: ScalarType, b: ScalarType, op: str) -> ScalarType:
    if op in BITWISE:
        if not (a.is_int and b.is_int):
            raise fail(f"'{spelled(op)}' needs integer operands, got {a} and {b}")
        return int_promote(a, b)
    if op == "truediv":
        if a.is_int and b.is_int:
            return t.f32
        return float_promote(a, b, div_or_mod=True)
    if op == "floordiv" and (a.is_float or b.is_float):
        raise fail(f"'//' needs integer operands, got {a} and {b}; use kl.floor(a / b) for floats")
    if a.is_float or b.is_float:
        return float_promote(a, b, div_or_mod=op == "mod")
    if op in ARITHMETIC and a.is_bool and b.is_bool:
        return t.i32
    return int_promote(a, b)


# shapes ----------------------------------------------------------------------

def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + a
    b = (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise fail(f"cannot broadcast shapes {a} and {b}: dimensions {x} and {y} differ")
        out.append(max(x, y))
    return check_numel(tuple(out))


def check_numel(shape: tuple[int, ...]) -> tuple[int, ...]:
    numel = 1
    for d in shape:
        numel *= d
    if numel > MAX_NUMEL:
        raise fail(f"a block of shape {shape} has {numel} elements, more than the limit of {MAX_NUMEL}; "
                   "use smaller blocks and more programs")
    return shape


def broadcast_to(b: Builder, x: Tensor, shape: tuple[int, ...]) -> Tensor:
    if x.shape == shape:
        return x
    if not x.shape:
        return Tensor(b.value("splat", [x.handle], BlockType(shape, x.dtype)))
    if len(x.shape) > len(shape) or broadcast_shapes(x.shape, shape) != shape:
        raise fail(f"cannot broadcast a block of shape {x.shape} to {shape}")
    v = x.handle
    for _ in range(len(shape) - len(x.shape)):
        v = b.value("expand_dims", [v], BlockType((1, *v.type.shape), x.dtype), axis=0)
    return Tensor(b.value("broadcast", [v], BlockType(shape, x.dtype)))


def broadcast_all(b: Builder, *xs: Tensor) -> list[Tensor]:
    shape: tuple[int, ...] = ()
    for x in xs:
        shape = broadcast_shapes(shape, x.shape)
    return [broadcast_to(b, x, shape) for x in xs]


def cast(b: Builder, x: Tensor, dtype: ScalarType, bitcast: bool = False) -> Tensor:
    if not isinstance(dtype, ScalarType):
        raise fail(f"cannot convert to {dtype!r}: expected a kl dtype such as kl.float32")
    if x.dtype == dtype:
        return x
    if isinstance(x.dtype, PointerType):
        raise fail(f"cannot convert a pointer ({x.type}) to {dtype}")
    if bitcast:
        if x.dtype.bits != dtype.bits:
            raise fail(f"bitcast needs types of one width: {x.dtype} has {x.dtype.bits} bits, {dtype} has {dtype.bits}")
        return Tensor(b.value("bitcast", [x.handle], x.type.with_scalar(dtype)))
    if dtype.is_bool:
        return to_bool(b, x)
    return Tensor(b.value("cast", [x.handle], x.type.with_scalar(dtype)))


def to_bool(b: Builder, x: Tensor) -> Tensor:
    """A condition or mask: i1 as it is, other numbers compared with zero."""
    if x.dtype == t.i1:
        return x
    if isinstance(x.dtype, PointerType):
        raise fail(f"a pointer ({x.type}) cannot be used as a condition")
    zero = constant(b, 0, x.dtype, x.shape)
    return Tensor(b.value("cmp", [x.handle, zero.handle], x.type.with_scalar(t.i1), pred="ne"))


def loop_type(start: object, end: object, step: object) -> ScalarType:
    """The type of `i` in `for i in range(start, end, step)` with runtime bounds: at least i32."""
    if isinstance(step, int) and not isinstance(step, bool) and step <= 0:
        raise fail("range() with a zero or negative step is not supported yet in kernels")
    iv_type = t.i32
    for v in (start, end, step):
        if not isinstance(v, (Tensor, int)) or isinstance(v, bool) or isinstance(v, Tensor) and (
                v.shape or not isinstance(v.dtype, ScalarType) or not v.dtype.is_int):
            raise fail(f"range() bounds must be integer scalars, got {type_name(v)}")
        iv_type = int_promote(iv_type, v.dtype if isinstance(v, Tensor) else python_type(v))  # type: ignore[arg-type]
    return iv_type


# operators -------------------------------------------------------------------

def _numeric_pair(b: Builder, x: object, y: object, op: str) -> tuple[Tensor, Tensor]:
    """Both operands as tensors of one computation type and one shape."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x, y = to_tensor(b, x), to_tensor(b, y)
    if not isinstance(x, Tensor):
        x = _weak(b, x, y)  # type: ignore[arg-type]
    if not isinstance(y, Tensor):
        y = _weak(b, y, x)
    for v in (x, y):
        if isinstance(v.dtype, PointerType):
            raise fail(f"'{spelled(op)}' is not defined on pointers ({v.type})")
    dtype = compute_type(x.dtype, y.dtype, op)  # type: ignore[arg-type]
    x, y = broadcast_all(b, cast(b, x, dtype), cast(b, y, dtype))
    return x, y


def _weak(b: Builder, x: object, other: Tensor) -> Tensor:
    if not isinstance(x, PyNumber):
        raise fail(f"expected a number or a block, got {type_name(x)}")
    return constant(b, x, adopt(x, other.dtype))  # type: ignore[arg-type]


_IR_NAME = {"truediv": "div", "floordiv": "div", "mod": "rem"}


def binary(b: Builder, op: str, x: object, y: object) -> Tensor:
    """`x op y` for op in ARITHMETIC and BITWISE, pointers included for add/sub."""
    if op in ("add", "sub") and _is_pointer(x) or op == "add" and _is_pointer(y):
        return pointer_offset(b, x, y, op) if _is_pointer(x) else pointer_offset(b, y, x, op)
    x, y = _numeric_pair(b, x, y, op)
    return Tensor(b.value(_IR_NAME.get(op, op), [x.handle, y.handle], x.type))


def _is_pointer(x: object) -> bool:
    return isinstance(x, Tensor) and isinstance(x.dtype, PointerType)


def pointer_offset(b: Builder, ptr: Tensor, offset: object, op: str) -> Tensor:
    off = to_tensor(b, offset)
    if not (isinstance(off.dtype, ScalarType) and off.dtype.is_int):
        raise fail(f"pointers can only be offset by integers, not {off.type}")
    if op == "sub":
        off = Tensor(b.value("neg", [off.handle], off.type))
    ptr, off = broadcast_all(b, ptr, off)
    return Tensor(b.value("addptr", [ptr.handle, off.handle], ptr.type))


def compare(b: Builder, pred: str, x: object, y: object) -> Tensor:
    x, y = _numeric_pair(b, x, y, pred)
    return Tensor(b.value("cmp", [x.handle, y.handle], x.type.with_scalar(t.i1), pred=pred))


def power(b: Builder, base: object, exponent: object) -> Tensor:
    """`base ** exponent` on a block: repeated multiplication, the exponent a compile-time int."""
    if not isinstance(base, Tensor) or not isinstance(exponent, int) or isinstance(exponent, bool) \
            or not 0 <= exponent <= 64:
        raise fail("`**` on blocks needs a compile-time integer exponent from 0 to 64")
    if exponent == 0:
        return full(b, base.shape, 1, base.dtype)
    result = base
    for _ in range(exponent - 1):
        result = binary(b, "mul", result, base)
    return result


def negate(b: Builder, x: Tensor) -> Tensor:
    if isinstance(x.dtype, PointerType):
        raise fail("cannot negate a pointer")
    if x.dtype.is_bool:
        x = cast(b, x, t.i32)
    return Tensor(b.value("neg", [x.handle], x.type))


def invert(b: Builder, x: Tensor) -> Tensor:
    if not (isinstance(x.dtype, ScalarType) and x.dtype.is_int):
        raise fail(f"'~' needs an integer operand, got {x.type}")
    return Tensor(b.value("not", [x.handle], x.type))


def logical_not(b: Builder, x: Tensor) -> Tensor:
    cond = to_bool(b, x)
    return Tensor(b.value("xor", [cond.handle, constant(b, True, t.i1, cond.shape).handle], cond.type))


def unary_math(b: Builder, op: str, x: object) -> Tensor:
    x = to_tensor(b, x)
    if not (isinstance(x.dtype, ScalarType) and x.dtype.is_float):
        raise fail(f"kl.{op} needs a floating-point operand, got {x.type}; convert with .to(kl.float32)")
    if x.dtype.is_fp8:
        raise fail(f"kl.{op} is not defined on {x.dtype} (Triton's math functions take fp32 and fp64); "
                   "convert with .to(kl.float32) first")
    return Tensor(b.value(op, [x.handle], x.type))


def fma(b: Builder, x: object, y: object, z: object) -> Tensor:
    x, y = _numeric_pair(b, x, y, "mul")
    x, z = _numeric_pair(b, x, z, "add")
    if not x.dtype.is_float:  # type: ignore[union-attr]
        raise fail(f"kl.fma needs floating-point operands, got {x.type}")
    y = broadcast_to(b, cast(b, y, x.dtype), x.shape)  # type: ignore[arg-type]
    return Tensor(b.value("fma", [x.handle, y.handle, z.handle], x.type))


def umulhi(b: Builder, x: object, y: object) -> Tensor:
    x, y = _numeric_pair(b, x, y, "umulhi")
    if not x.dtype.is_int or x.dtype.is_bool:  # type: ignore[union-attr]
        raise fail(f"kl.umulhi needs integer operands, got {x.type}")
    return Tensor(b.value("umulhi", [x.handle, y.handle], x.type))


def absolute(b: Builder, x: object) -> Tensor:
    x = to_tensor(b, x)
    if not isinstance(x.dtype, ScalarType):
        raise fail(f"kl.abs is not defined on {x.type}")
    if not x.dtype.is_signed and not x.dtype.is_float:
        return x
    return Tensor(b.value("abs", [x.handle], x.type))


def where(b: Builder, cond: object, x: object, y: object) -> Tensor:
    c = to_bool(b, to_tensor(b, cond))
    x, y = _numeric_pair(b, x, y, "where") if not (_is_pointer(x) and _is_pointer(y)) else (x, y)
    if isinstance(x, Tensor) and isinstance(y, Tensor) and x.dtype != y.dtype:
        raise fail(f"kl.where's values have different types: {x.type} and {y.type}")
    c, x, y = broadcast_all(b, c, x, y)
    return Tensor(b.value("select", [c.handle, x.handle, y.handle], x.type))


# reductions ------------------------------------------------------------------

def reduction_type(dtype: ScalarType, kind: str) -> ScalarType:
    """The type a reduction computes in, as Triton 3.9: sums widen integers narrower than 32 bits
    (signed to int32, unsigned and bool to uint32) and keep every float; max and min widen
    everything narrower than 32 bits (floats to float32, integers to int32)."""
    if dtype.bits >= 32 or kind == "sum" and dtype.is_float:
        return dtype
    if kind == "sum":
        return t.i32 if dtype.is_signed else t.u32
    return t.f32 if dtype.is_float else t.i32


def reduce(b: Builder, x: object, axis: object, kind: str, keep_dims: object, dtype: object = None) -> Tensor:
    x = to_tensor(b, x)
    if not x.shape:
        raise fail(f"kl.{kind} needs a block, got the scalar {x.type}")
    if not isinstance(keep_dims, bool):
        raise fail("keep_dims must be a compile-time True or False")
    if isinstance(x.dtype, PointerType):
        raise fail(f"cannot reduce pointers ({x.type})")
    if dtype is not None and not isinstance(dtype, ScalarType):
        raise fail(f"kl.{kind}'s dtype must be a kl dtype such as kl.float32, got {dtype!r}")
    x = cast(b, x, dtype or reduction_type(x.dtype, kind))  # type: ignore[arg-type]
    rank = len(x.shape)
    if axis is None:
        v = x.handle
        while v.type.is_block:
            v = _reduce_axis(b, v, len(v.type.shape) - 1, kind)
        out = Tensor(v)
        return broadcast_to(b, out, (1,) * rank) if keep_dims else out
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise fail(f"axis must be a compile-time integer or None, got {type_name(axis)}")
    if not -rank <= axis < rank:
        raise fail(f"axis {axis} is out of range for a block of shape {x.shape}")
    axis %= rank
    out = Tensor(_reduce_axis(b, x.handle, axis, kind))
    if keep_dims:
        out = expand_dims(b, out, axis)
    return out


def _reduce_axis(b: Builder, v: Value, axis: int, kind: str) -> Value:
    shape = v.type.shape[:axis] + v.type.shape[axis + 1:]
    return b.value("reduce", [v], t.block(shape, v.type.scalar), axis=axis, kind=kind)


def expand_dims(b: Builder, x: Tensor, axis: int) -> Tensor:
    rank = len(x.shape) + 1
    if not -rank <= axis < rank:
        raise fail(f"axis {axis} is out of range for expanding a block of shape {x.shape}")
    axis %= rank
    if not x.shape:
        return Tensor(b.value("splat", [x.handle], BlockType((1,), x.dtype)))
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return Tensor(b.value("expand_dims", [x.handle], BlockType(shape, x.dtype), axis=axis))


def index(b: Builder, x: Tensor, items: list[object]) -> Tensor:
    """`x[:, None]` and friends: `:` (a full slice) keeps a dimension, `None` inserts one of size 1."""
    dim = 0
    for item in items:
        if isinstance(item, slice) and item == slice(None):
            dim += 1
        elif item is None:
            x = expand_dims(b, x, dim)
            dim += 1
        else:
            raise fail("blocks can only be indexed with ':' and None (to add a dimension), not with integers, "
                       "steps or runtime values; load the elements you need with kl.load, pick one with kl.where "
                       "and a reduction (kl.sum(kl.where(offs == i, x, 0))), or regroup with kl.reshape/kl.split")
    if dim > len(x.shape) + sum(1 for i in items if i is None):
        raise fail(f"too many ':' for a block of shape {x.shape}")
    return x


# memory ----------------------------------------------------------------------

def _pointer_operand(x: object, what: str) -> Tensor:
    if not _is_pointer(x):
        raise fail(f"kl.{what} needs a pointer or a block of pointers, got {type_name(x)}")
    return x  # type: ignore[return-value]


def _mask(b: Builder, mask: object) -> Tensor | None:
    if mask is None or mask is True:
        return None
    return to_bool(b, to_tensor(b, mask))


def load(b: Builder, ptr: object, mask: object, other: object) -> Tensor:
    ptr = _pointer_operand(ptr, "load")
    m = _mask(b, mask)
    if other is not None and mask is None:
        raise fail("kl.load got `other` without `mask`; `other` is the value of masked-off elements")
    if m is not None:
        ptr, m = broadcast_all(b, ptr, m)
    elem = ptr.dtype.elem  # type: ignore[union-attr]
    operands = [ptr.handle] + ([m.handle] if m is not None else [])
    if m is not None and other is not None:
        o = cast(b, to_tensor(b, other, adopt(other, elem) if isinstance(other, PyNumber) else None), elem)
        operands.append(broadcast_to(b, o, ptr.shape).handle)
    return Tensor(b.value("load", operands, ptr.type.with_scalar(elem)))


def store(b: Builder, ptr: object, value: object, mask: object) -> None:
    ptr = _pointer_operand(ptr, "store")
    elem = ptr.dtype.elem  # type: ignore[union-attr]
    v = to_tensor(b, value, adopt(value, elem) if isinstance(value, PyNumber) else None)
    if isinstance(v.dtype, PointerType):
        raise fail("kl.store cannot store pointers")
    v = broadcast_to(b, cast(b, v, elem), ptr.shape)
    operands = [ptr.handle, v.handle]
    m = _mask(b, mask)
    if m is not None:
        operands.append(broadcast_to(b, m, ptr.shape).handle)
    b.create("store", operands, [])


# creation --------------------------------------------------------------------

def check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    runtime = [i for i, d in enumerate(shape) if isinstance(d, Tensor)] if isinstance(shape, (tuple, list)) else []
    if runtime:
        raise fail(f"block shapes must be compile-time constants: dimension {runtime[0]} is a runtime value; "
                   "annotate the parameter it comes from `kl.constexpr` (or use a power of two above it and a mask)")
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise fail(f"a block shape must be a tuple of compile-time integers, got {shape!r}")
    for d in shape:
        if d <= 0 or d & (d - 1):
            raise fail(f"every block dimension must be a power of two, got {tuple(shape)}")
    return check_numel(tuple(shape))


def arange(b: Builder, start: object, end: object) -> Tensor:
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, Tensor):
            raise fail(f"arange's bounds must be compile-time constants: {name} is a runtime value; "
                       "annotate the parameter it comes from `kl.constexpr`")
        if not isinstance(v, int) or isinstance(v, bool):
            raise fail(f"arange's {name} must be an integer, got {v!r}")
    n = end - start  # type: ignore[operator]
    if n <= 0 or n & (n - 1):
        raise fail(f"arange's length (end - start = {n}) must be a positive power of two")
    check_numel((n,))
    lo, hi = int_range(t.i32)
    if not (lo <= start <= hi and lo <= end - 1 <= hi):  # type: ignore[operator]
        raise fail("arange's bounds must fit in int32")
    return Tensor(b.value("arange", [], BlockType((n,), t.i32), start=start, end=end))


def full(b: Builder, shape: object, value: object, dtype: object) -> Tensor:
    shape = check_shape(shape)
    if not isinstance(dtype, ScalarType):
        raise fail(f"expected a kl dtype such as kl.float32, got {dtype!r}")
    if isinstance(value, Tensor):
        return broadcast_to(b, cast(b, value, dtype), shape)
    if not isinstance(value, PyNumber):
        raise fail(f"the fill value must be a number, got {type_name(value)}")
    return constant(b, value, dtype, shape)
