"""Portable math functions for NVPTX, which has no libm: straight-line LLVM IR (range reduction,
polynomial, exponent reconstruction with integer bit operations, special cases by selects),
one implementation per function for f32 and f64 (the degree of the polynomials set by the format).
Accuracy: see kdsl/backend/cuda/lower_math.py."""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from kdsl.backend.cuda.libm import erf as _erf
from kdsl.backend.cuda.libm import explog, trig
from kdsl.backend.cuda.libm.common import Ops, format_of

FUNCTIONS: dict[str, Callable[[Ops, ir.Value], ir.Value]] = {
    "exp": explog.exp, "exp2": explog.exp2, "log": explog.log, "log2": explog.log2,
    "sin": trig.sin, "cos": trig.cos, "erf": _erf.erf,
}


def emit(b: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    """The function `name` of the f32 or f64 value `x`."""
    return FUNCTIONS[name](Ops(b, format_of(x.type)), x)
