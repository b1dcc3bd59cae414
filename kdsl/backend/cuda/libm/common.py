"""The building blocks of the portable math functions: a float format's parameters and `Ops`,
a thin layer over llvmlite's IRBuilder for one float type (constants rounded to the format,
fma, Horner polynomials, powers of two built from exponent bits, constant tables)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cpu.llvm_types import F32, I32, I64

F64 = ir.DoubleType()
I128, I256 = ir.IntType(128), ir.IntType(256)


@dataclass(frozen=True)
class Format:
    """An IEEE binary format: its LLVM type, the integer type of its bits, numpy scalar type."""
    name: str
    ty: ir.Type
    bits_ty: ir.IntType
    mantissa: int  # explicit fraction bits
    bias: int
    numpy: type

    def bits_of(self, value: float) -> int:
        """The bit pattern of `value` rounded to the format."""
        return int(np.array(value, self.numpy).view(np.uint32 if self.bits_ty.width == 32 else np.uint64))

    @property
    def tiny(self) -> float:
        return float(np.finfo(self.numpy).tiny)


FORMATS = {str(F32): Format("f32", F32, I32, 23, 127, np.float32),
           str(F64): Format("f64", F64, I64, 52, 1023, np.float64)}


def format_of(t: ir.Type) -> Format:
    return FORMATS[str(t)]


class Ops:
    """Emits float and integer operations of one format at the builder's position."""

    def __init__(self, b: ir.IRBuilder, fmt: Format):
        self.b, self.fmt = b, fmt

    def c(self, value: float) -> ir.Constant:
        """`value` rounded to the format."""
        return ir.Constant(self.fmt.ty, float(self.fmt.numpy(value)))

    def i(self, value: int, ty: ir.IntType | None = None) -> ir.Constant:
        return ir.Constant(ty or self.fmt.bits_ty, value)

    def call(self, name: str, *args: ir.Value, ret: ir.Type | None = None) -> ir.Value:
        """The LLVM intrinsic `llvm.<name>.<type of the first argument>` (f32, f64, i64, ...)."""
        t = args[0].type
        suffix = {"float": "f32", "double": "f64"}.get(str(t), str(t))
        fn = declare(self.b.module, f"llvm.{name}.{suffix}", ret or t, [a.type for a in args])
        return self.b.call(fn, list(args))

    def fma(self, x, y, z):
        return self.call("fma", x, y, z)

    def abs(self, x):
        return self.call("fabs", x)

    def rint(self, x):
        return self.call("rint", x)

    def copysign(self, x, sign):
        return self.call("copysign", x, sign)

    def two_sum(self, a, c):
        """(a + c rounded, its rounding error), both exact (Knuth's 2Sum)."""
        b = self.b
        s = b.fadd(a, c)
        a_part = b.fsub(s, c)
        return s, b.fadd(b.fsub(a, a_part), b.fsub(c, b.fsub(s, a_part)))

    def horner(self, x, coeffs: Sequence[float]):
        """sum c_i x^(n-1-i) for coefficients given highest degree first, one fma a term."""
        return self.horner_values(x, [self.c(v) for v in coeffs])

    def horner_values(self, x, coeffs: Sequence[ir.Value]):
        """`horner` with coefficients that are LLVM values (loaded from a table)."""
        acc = coeffs[0]
        for coeff in coeffs[1:]:
            acc = self.fma(acc, x, coeff)
        return acc

    def is_nan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def is_inf(self, x):
        return self.b.fcmp_ordered("==", self.abs(x), self.c(np.inf))

    def clamp(self, x, lo: float, hi: float):
        """x limited to [lo, hi]; NaN becomes `hi` (maxnum/minnum return the number)."""
        return self.call("minnum", self.call("maxnum", x, self.c(lo)), self.c(hi))

    def to_bits(self, x):
        return self.b.bitcast(x, self.fmt.bits_ty)

    def from_bits(self, bits):
        return self.b.bitcast(bits, self.fmt.ty)

    def pow2(self, k: ir.Value):
        """2**k for an i32 `k` in the normal range [1 - bias, bias], built from exponent bits."""
        biased = self.b.add(k, ir.Constant(I32, self.fmt.bias))
        wide = self.b.zext(biased, self.fmt.bits_ty) if self.fmt.bits_ty != I32 else biased
        return self.from_bits(self.b.shl(wide, self.i(self.fmt.mantissa)))

    def ldexp(self, x, k: ir.Value):
        """x * 2**k for an i32 `k` with |k| up to twice the exponent range, rounding once: two
        factors 2**(k >> 1) and 2**(k - (k >> 1)) that are normal, so only the last product rounds."""
        half = self.b.ashr(k, ir.Constant(I32, 1))
        return self.b.fmul(self.b.fmul(x, self.pow2(half)), self.pow2(self.b.sub(k, half)))

    def table(self, name: str, values: Sequence, elem: ir.Type) -> ir.GlobalVariable:
        """The module's constant array `name`, defined on first use. In the generic address
        space: NVPTX moves it to global memory, and the CPU JIT reads it in place."""
        module = self.b.module
        found = module.globals.get(name)
        if found is not None:
            return found
        ty = ir.ArrayType(elem, len(values))
        table = ir.GlobalVariable(module, ty, name)
        table.global_constant = True
        table.linkage = "internal"
        table.align = 8
        table.initializer = ir.Constant(ty, [ir.Constant(elem, v) for v in values])
        return table

    def load(self, table: ir.GlobalVariable, index: ir.Value) -> ir.Value:
        """table[index] for an i32 index."""
        ptr = self.b.gep(table, [ir.Constant(I32, 0), index], inbounds=True)
        return self.b.load(ptr)

