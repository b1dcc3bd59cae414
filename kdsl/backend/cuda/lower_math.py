"""The GPU's scalar emitter table: the CPU's target-independent emitters, with the math functions
NVPTX has no library for replaced by the portable implementations of `kdsl.backend.cuda.libm`
(straight-line LLVM IR, no approximate instructions) or, where they meet the conformance suite's
tolerance, PTX `.approx` instructions.

16-bit floats are computed in f32 and rounded, as on the CPU. Accuracy, as the largest error in
ulps measured against a correctly rounded reference (tests/cuda/test_libm.py measures it on the
simulator, over random inputs across each function's range plus special values):

| function | f32                              | f64      |
|----------|----------------------------------|----------|
| exp      | 0.8 (libm)                       | 0.8      |
| exp2     | `ex2.approx.f32`: 2 ulp (PTX ISA) | 0.8      |
| log      | 0.8 (libm)                       | 1.1      |
| log2     | 1.8 (libm)                       | 1.5      |
| sin, cos | 1.3 (libm)                       | 1.0      |
| erf      | 1.0 (libm)                       | 1.0      |
| rsqrt    | `rsqrt.approx.f32`: relative 2**-22.9 | 1 / sqrt, rounded twice |

exp and exp2 give correctly rounded subnormal results' neighbours (the scaling rounds once);
sin and cos reduce every finite argument exactly enough (Payne-Hanek beyond 2**15 for f32, 2**25
for f64), DBL_MAX included; every function gets NaN, +-inf, +-0 and subnormals right.
sqrt, division, fma, floor, ceil, abs, min, max are exact (`sqrt.rn`, `div.rn`, `fma.rn`, `cvt.rmi`, ...).
rem on floats: LLVM's expansion x - trunc(x / y) * y, exact while x / y is below 2**24 in
magnitude (f32), off by the rounding of the quotient beyond.
"""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE, Emitter, declare, float_intrinsic, half_promoted
from kdsl.backend.cpu.llvm_types import F32
from kdsl.backend.cuda import libm


def _ex2_approx(b, x):
    return b.call(declare(b.module, "llvm.nvvm.ex2.approx.f", F32, [F32]), [x])


def _rsqrt_approx(b, x):
    return b.call(declare(b.module, "llvm.nvvm.rsqrt.approx.f", F32, [F32]), [x])


def _portable(name: str) -> Emitter:
    """`name` from `libm` on f32 and f64 (16-bit floats arrive widened)."""
    return half_promoted(lambda b, args, src, dst, attrs: libm.emit(b, name, args[0]))


def _exp2(b, args, src, dst, attrs):
    (x,) = args
    return _ex2_approx(b, x) if x.type == F32 else libm.emit(b, "exp2", x)


def _rsqrt_emit(b, args, src, dst, attrs):
    (x,) = args
    if x.type == F32:
        return _rsqrt_approx(b, x)
    root = float_intrinsic("sqrt")(b, args, src, dst, attrs)
    return b.fdiv(ir.Constant(root.type, 1.0), root)


GPU_ELEMENTWISE: dict[str, Emitter] = {
    **ELEMENTWISE,
    **{name: _portable(name) for name in ("exp", "log", "log2", "sin", "cos", "erf")},
    "exp2": half_promoted(_exp2),
    "rsqrt": half_promoted(_rsqrt_emit),
}
