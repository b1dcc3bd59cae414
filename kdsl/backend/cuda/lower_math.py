"""The GPU's scalar emitter table: the CPU's target-independent emitters, with the math functions
NVPTX has no library for replaced by the portable implementations of `kdsl.backend.cuda.libm`
(straight-line LLVM IR of exact IEEE operations, no approximate instructions) or, where they meet
the conformance suite's tolerance, by PTX `.approx` instructions: `exp2` and `rsqrt` on f32 only.

16-bit floats are computed in f32 and rounded, as on the CPU. Accuracy: the largest error in ulps
against a more precise reference, the larger of two measurements: on the simulator (whose f32/f64
arithmetic and fma round as the hardware's) over tests/cuda/test_libm.py's inputs for 10 seeds
(20,480 values a function: random values across the whole range plus special values), against
np.longdouble (f64) or numpy f64 (f32); and of the same IR JIT-compiled on the CPU, against mpmath
(sin, cos, erf) or np.longdouble (exp, log) over 6,000-60,000 values a function:

| function | f32                                             | f64                     |
|----------|-------------------------------------------------|-------------------------|
| exp      | 0.88                                            | 0.82                    |
| exp2     | `ex2.approx.f32`: 2 ulp (PTX ISA bound)         | 0.78                    |
| log      | 0.61                                            | 0.59                    |
| log2     | 0.69                                            | 0.69                    |
| sin      | 0.74                                            | 0.72                    |
| cos      | 0.74                                            | 0.72                    |
| erf      | 0.97                                            | 0.96                    |
| rsqrt    | `rsqrt.approx.f32`: relative 2**-22.9 (PTX ISA) | 1 / sqrt, rounded twice |

Results are exact at NaN, +-inf, +-0 (sin(-0) = -0) and past the overflow/underflow thresholds;
subnormal inputs and results are handled (exp scales by two normal powers of two, rounding once).
sin and cos reduce every finite argument accurately (Payne-Hanek from |x| >= 2**15 on f32, 2**25
on f64, so sin(DBL_MAX) is right too).
sqrt, division, fma, floor, ceil, abs, min, max are exact (`sqrt.rn`, `div.rn`, `fma.rn`, `cvt.rmi`, ...).
rem on floats: exact (C's fmod, as on the CPU), an integer remainder loop (`fmod.py`).
"""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE, Emitter, declare, float_intrinsic, half_promoted
from kdsl.backend.cpu.llvm_types import F32
from kdsl.backend.cuda import libm
from kdsl.backend.cuda.fmod import fmod


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


_float_rem = half_promoted(lambda b, args, src, dst, attrs: fmod(b, *args))


def _rem(b, args, src, dst, attrs):
    """Float remainders by the exact `fmod` (NVPTX's `frem` expansion rounds the quotient)."""
    return (_float_rem if src.is_float else ELEMENTWISE["rem"])(b, args, src, dst, attrs)


GPU_ELEMENTWISE: dict[str, Emitter] = {
    **ELEMENTWISE,
    **{name: _portable(name) for name in ("exp", "log", "log2", "sin", "cos", "erf")},
    "exp2": half_promoted(_exp2),
    "rsqrt": half_promoted(_rsqrt_emit),
    "rem": _rem,
}
