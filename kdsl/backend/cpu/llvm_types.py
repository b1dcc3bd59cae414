"""kdsl types as LLVM types: a register form and a memory form per scalar.

`i1` lives in registers as LLVM `i1` and in memory (block buffers, global
memory, the argument vector) as `i8`. `bf16` is carried as its `i16` bit
pattern: every bf16 operation widens to f32 with integer ops and rounds back
(see `elementwise.to_f32/from_f32`), so no LLVM `bfloat` code generation (whose
x86 lowering crashed the JIT-ed code in testing) or libcall is involved. Pointers are opaque LLVM pointers; the
element type is supplied to each GEP and load. The fp8 types are carried as
their `i8` bit patterns likewise (see `fp8`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from kdsl.errors import CompilationError
from kdsl.ir.types import BlockType, PointerType, ScalarType, Type
from kdsl.runtime.scalar_bits import float_bits, scalar_bits


I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
PTR = ir.PointerType()

_FLOATS: dict[str, ir.Type] = {"f16": ir.HalfType(), "bf16": I16, "f32": F32, "f64": ir.DoubleType()}


def unsupported(t: Type) -> CompilationError:
    return CompilationError(f"type {t} is not supported yet on the CPU")


def reg_type(t: ScalarType | PointerType) -> ir.Type:
    """The LLVM type of a scalar value held in a register."""
    if isinstance(t, PointerType):
        return PTR
    if t.is_fp8:
        return I8
    if t.is_float:
        return _FLOATS[t.name]
    return ir.IntType(t.bits)


def mem_type(t: ScalarType | PointerType) -> ir.Type:
    """The LLVM type of one element in memory (`i1` is stored as `i8`)."""
    if isinstance(t, ScalarType) and t.is_bool:
        return I8
    return reg_type(t)


def elem_of(t: Type) -> ScalarType | PointerType:
    """The element type of a scalar, pointer or block type."""
    return t.elem if isinstance(t, BlockType) else t  # type: ignore[return-value]


def to_memory(b: ir.IRBuilder, v: ir.Value, t: ScalarType | PointerType) -> ir.Value:
    return b.zext(v, I8) if isinstance(t, ScalarType) and t.is_bool else v


def from_memory(b: ir.IRBuilder, v: ir.Value, t: ScalarType | PointerType) -> ir.Value:
    return b.trunc(v, I1) if isinstance(t, ScalarType) and t.is_bool else v


def constant(b: ir.IRBuilder, t: ScalarType, value: bool | int | float) -> ir.Value:
    """An LLVM constant of type `t`; 16-bit floats go through their bit pattern."""
    if t.name == "bf16" or t.is_fp8:
        return ir.Constant(reg_type(t), float_bits(float(value), t))
    if t.name == "f16":
        return b.bitcast(ir.Constant(I16, float_bits(float(value), t)), reg_type(t))
    if t.is_float:
        rounded = float(np.float32(value)) if t.bits == 32 else float(value)
        return ir.Constant(reg_type(t), rounded)
    return ir.Constant(reg_type(t), scalar_bits(value, t))
