"""The typing rules of `kl.dot`: operand and result dtypes, shapes, the accumulator.

The `dot` op always takes an accumulator: without `acc` the frontend passes a
block of zeros of the result type, so every target implements one thing,
`acc + a @ b`, accumulating in the result type.
"""
from __future__ import annotations

from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.semantic import Tensor
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.types import BlockType, ScalarType

OPERAND_TYPES = (t.fp8e4nv, t.fp8e5, t.f16, t.bf16, t.f32, t.f64, t.i8)
PRECISIONS = (None, "tf32", "tf32x3", "ieee")


def _operand(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor) or len(x.shape) not in (2, 3):
        shape = f"a block of shape {x.shape}" if isinstance(x, Tensor) and x.shape else sem.type_name(x)
        raise CompilationError(f"kl.dot needs 2D blocks (or 3D, batched); its operand `{name}` is {shape}")
    if x.dtype not in OPERAND_TYPES:
        raise CompilationError(f"kl.dot does not support {x.dtype} operands; "
                               "use fp8e4nv, fp8e5, fp16, bf16, fp32, fp64 or int8 (convert with .to())")
    return x


def _operand_type(x: ScalarType, y: ScalarType) -> ScalarType:
    """One element type for both operands: equal types, or floats promoted (fp16 and fp32 give fp32;
    the two fp8 formats, which Triton multiplies together, give fp16, which holds both exactly)."""
    if x == y:
        return x
    if x.is_float and y.is_float:
        return sem.float_promote(x, y)
    raise CompilationError(f"kl.dot's operands have types {x} and {y}; int8 only multiplies int8")


def _result_types(operand: ScalarType) -> tuple[ScalarType, ...]:
    """As Triton: int8 → int32, fp64 → fp64, fp32 and bf16 → fp32, fp16 and fp8 → fp32 or fp16."""
    narrow = (t.f32, t.f16)
    return {t.i8: (t.i32,), t.f64: (t.f64,), t.f16: narrow, t.fp8e4nv: narrow, t.fp8e5: narrow}.get(operand, (t.f32,))


def _result_type(operand: ScalarType, out_dtype: object) -> ScalarType:
    """The result type without `acc`; `out_dtype` chooses for fp16 only (its default fp32 means "natural")."""
    if not isinstance(out_dtype, ScalarType):
        raise CompilationError(f"kl.dot's out_dtype must be a kl dtype such as kl.float32, got {out_dtype!r}")
    allowed = _result_types(operand)
    if out_dtype == t.f32 and len(allowed) == 1:
        return allowed[0]
    if out_dtype not in allowed:
        raise CompilationError(f"kl.dot on {operand} operands gives {' or '.join(map(str, allowed))}, "
                               f"not out_dtype={out_dtype}; convert the result with .to()")
    return out_dtype  # type: ignore[return-value]


def _accumulator(b: Builder, acc: object, operand: ScalarType, shape: tuple[int, ...],
                 out_dtype: object) -> Tensor:
    """`acc`, checked, or zeros of the result type; its dtype is the result type."""
    if acc is None:
        return sem.full(b, shape, 0, _result_type(operand, out_dtype))
    if not isinstance(acc, Tensor) or acc.shape != shape:
        got = f"shape {acc.shape}" if isinstance(acc, Tensor) else sem.type_name(acc)
        raise CompilationError(f"kl.dot's acc must be a block of shape {shape}, got {got}")
    allowed = _result_types(operand)
    if acc.dtype not in allowed:
        raise CompilationError(f"kl.dot on {operand} operands accumulates in "
                               f"{' or '.join(map(str, allowed))}; acc is {acc.dtype}")
    return acc


def dot(b: Builder, a: object, x: object, acc: object, input_precision: object, out_dtype: object) -> Tensor:
    """`acc + a @ x` (the second operand is named `b` in the user's signature); with 3D
    operands [B, M, K] and [B, K, N], one product per batch index, as Triton."""
    a, x = _operand(a, "a"), _operand(x, "b")
    if len(a.shape) != len(x.shape):
        raise CompilationError(f"kl.dot needs operands of one rank, both 2D or both 3D; a has shape {a.shape}, "
                               f"b has shape {x.shape}")
    if a.shape[-1] != x.shape[-2]:
        raise CompilationError(f"kl.dot's inner dimensions differ: a is {'x'.join(map(str, a.shape))}, "
                               f"b is {'x'.join(map(str, x.shape))}")
    if a.shape[:-2] != x.shape[:-2]:
        raise CompilationError(f"kl.dot's batch dimensions differ: a has {a.shape[0]}, b has {x.shape[0]}")
    if input_precision not in PRECISIONS:
        raise CompilationError(f"kl.dot's input_precision must be one of \"tf32\", \"tf32x3\", \"ieee\" "
                               f"or None, got {input_precision!r}")
    operand = _operand_type(a.dtype, x.dtype)  # type: ignore[arg-type]
    a, x = sem.cast(b, a, operand), sem.cast(b, x, operand)
    shape = sem.check_numel((*a.shape[:-1], x.shape[-1]))
    c = _accumulator(b, acc, operand, shape, out_dtype)  # type: ignore[arg-type]
    precision = input_precision or ("tf32" if operand == t.f32 else "ieee")
    return Tensor(b.value("dot", [a.handle, x.handle, c.handle], BlockType(shape, c.dtype),
                          input_precision=precision))
