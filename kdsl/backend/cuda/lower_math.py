"""The GPU's scalar emitter table: the CPU's target-independent emitters, with the math functions
NVPTX has no library for replaced by PTX approximations.

16-bit floats are computed in f32 and rounded, as on the CPU. Accuracy on f32 (the PTX ISA's
bounds for the `.approx` instructions):

- exp2: `ex2.approx.f32`, at most 2 ulp.
- exp: `ex2.approx(x * log2(e))`; the rounding of the product adds a relative error of up to
  |x| * 2**-24 (about 2**-17 near the overflow threshold |x| = 88), as in Triton.
- log2: `lg2.approx.f32`, absolute error at most 2**-22.6 for x in [0.5, 2], relative 2**-22 elsewhere.
- log: `lg2.approx(x) * ln(2)`, the same bounds plus one rounding.
- sin, cos: x reduced to [-pi, pi] with a two-constant Cody-Waite step (exact for |x| < 2**17 or
  so), then `sin.approx.f32`/`cos.approx.f32`: absolute error at most 2**-20.5.
- rsqrt: `rsqrt.approx.f32`, relative error at most 2**-22.9; f64 is 1 / sqrt, correctly rounded twice.
- erf: Abramowitz & Stegun 7.1.26 with the exp above: absolute error about 2e-7.
- sqrt, division, fma, floor, ceil, abs, min, max: exact (`sqrt.rn`, `div.rn`, `fma.rn`, `cvt.rmi`, ...).
- rem on floats: exact (C's fmod, as on the CPU), an integer remainder loop (`fmod.py`).

exp, exp2, log, log2, sin, cos and erf on f64 have no PTX instruction and are not supported yet.
"""
from __future__ import annotations

import math

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE, Emitter, declare, float_intrinsic, half_promoted
from kdsl.backend.cpu.llvm_types import F32
from kdsl.backend.cuda.fmod import fmod
from kdsl.errors import CompilationError

LOG2_E = math.log2(math.e)
LN_2 = math.log(2.0)
TWO_PI_HIGH = 6.28125  # 2*pi split so that k * TWO_PI_HIGH is exact for |k| < 2**15
TWO_PI_LOW = 2 * math.pi - 6.28125


def _f32(x: float) -> ir.Constant:
    return ir.Constant(F32, x)


def _approx(name: str):
    """The NVVM intrinsic `llvm.nvvm.<name>.approx.f` on an f32."""
    return lambda b, x: b.call(declare(b.module, f"llvm.nvvm.{name}.approx.f", F32, [F32]), [x])


_ex2, _lg2, _sin, _cos, _rsqrt = (_approx(n) for n in ("ex2", "lg2", "sin", "cos", "rsqrt"))


def _exp(b, x):
    return _ex2(b, b.fmul(x, _f32(LOG2_E)))


def _log(b, x):
    return b.fmul(_lg2(b, x), _f32(LN_2))


def _reduced(b, x):
    """x - k * 2pi for k = rint(x / 2pi), in [-pi, pi]."""
    fma = declare(b.module, "llvm.fma.f32", F32, [F32, F32, F32])
    k = b.call(declare(b.module, "llvm.rint.f32", F32, [F32]), [b.fmul(x, _f32(1 / (2 * math.pi)))])
    minus_k = b.fneg(k)
    return b.call(fma, [minus_k, _f32(TWO_PI_LOW), b.call(fma, [minus_k, _f32(TWO_PI_HIGH), x])])


def _erf(b, x):
    """Abramowitz & Stegun 7.1.26: sign(x) * (1 - t * P(t) * exp(-x*x)), t = 1 / (1 + p|x|)."""
    fabs = declare(b.module, "llvm.fabs.f32", F32, [F32])
    a = b.call(fabs, [x])
    t = b.fdiv(_f32(1.0), b.fadd(_f32(1.0), b.fmul(_f32(0.3275911), a)))
    poly = _f32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = b.fadd(b.fmul(poly, t), _f32(c))
    y = b.fsub(_f32(1.0), b.fmul(b.fmul(poly, t), _exp(b, b.fneg(b.fmul(a, a)))))
    copysign = declare(b.module, "llvm.copysign.f32", F32, [F32, F32])
    return b.call(copysign, [y, x])


def _f32_only(name: str, fn) -> Emitter:
    """An emitter for `name` on f32 (16-bit floats arrive widened); f64 is rejected."""
    def emit(b, args, src, dst, attrs):
        (x,) = args
        if x.type != F32:
            raise CompilationError(f"not supported on the GPU yet: {name} on {src}")
        return fn(b, x)
    return half_promoted(emit)


def _rsqrt_emit(b, args, src, dst, attrs):
    (x,) = args
    if x.type == F32:
        return _rsqrt(b, x)
    root = float_intrinsic("sqrt")(b, args, src, dst, attrs)
    return b.fdiv(ir.Constant(root.type, 1.0), root)


_float_rem = half_promoted(lambda b, args, src, dst, attrs: fmod(b, *args))


def _rem(b, args, src, dst, attrs):
    """Float remainders by the exact `fmod` (NVPTX's `frem` expansion rounds the quotient)."""
    return (_float_rem if src.is_float else ELEMENTWISE["rem"])(b, args, src, dst, attrs)


GPU_ELEMENTWISE: dict[str, Emitter] = {
    **ELEMENTWISE,
    "exp": _f32_only("exp", _exp),
    "exp2": _f32_only("exp2", _ex2),
    "log": _f32_only("log", _log),
    "log2": _f32_only("log2", _lg2),
    "sin": _f32_only("sin", lambda b, x: _sin(b, _reduced(b, x))),
    "cos": _f32_only("cos", lambda b, x: _cos(b, _reduced(b, x))),
    "erf": _f32_only("erf", _erf),
    "rsqrt": half_promoted(_rsqrt_emit),
    "rem": _rem,
}
