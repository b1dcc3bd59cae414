"""Floating-point instructions (PTX ISA §9.7.3 f32/f64, §9.7.4 f16/bf16 and packed x2).

f32 add/sub/mul/div are numpy float32 operations (correctly rounded, .rn).
f16 and bf16 are computed in float64 and rounded once to the element type.
fma rounds once, as the hardware does (kdsl/sim/fma.py).
Approximate functions are computed in float32 with numpy, which is within the
ISA's documented bounds (ex2/lg2 ~2 ulp, rsqrt/rcp 1 ulp, sin/cos abs error 2^-20.5).
"""
from __future__ import annotations

import numpy as np

from kdsl.sim.fma import fma_odd_f64, fma_rn_f64
from kdsl.sim.operands import DecodeContext, reader, writer
from kdsl.sim.parser import Instruction
from kdsl.sim.types import TYPES, PtxType, bf16_to_f32, f32_to_bf16, find_type

_TINY32 = np.float32(np.finfo(np.float32).tiny)


def unpack_half2(bits, half: str) -> np.ndarray:
    """A packed f16x2/bf16x2 as float64 array of shape (..., 2): [low, high]."""
    u = np.asarray(bits).astype(np.uint32)
    lo, hi = (u & np.uint32(0xFFFF)).astype(np.uint16), (u >> np.uint32(16)).astype(np.uint16)
    conv = (lambda x: x.view(np.float16)) if half == "f16" else bf16_to_f32
    return np.stack([conv(lo), conv(hi)], axis=-1).astype(np.float64)


def round_half(x: np.ndarray, half: str) -> np.ndarray:
    """float64 → f16/bf16 bits (uint16), round to nearest even."""
    if half == "f16":
        return np.asarray(x).astype(np.float16).view(np.uint16)
    return f32_to_bf16(np.asarray(x).astype(np.float32))


def pack_half2(v: np.ndarray, half: str) -> np.ndarray:
    r = round_half(v, half).astype(np.uint32)
    return r[..., 0] | (r[..., 1] << np.uint32(16))


def float_op(inst: Instruction, ctx: DecodeContext, nargs: int, fn):
    """Shared builder: read `nargs` operands of the instruction's float type, apply `fn`, round, write."""
    t = find_type(inst.mods)
    ftz, sat, relu = "ftz" in inst.mods, "sat" in inst.mods, "relu" in inst.mods
    srcs = [reader(inst.operands[i + 1], TYPES["b32"] if t.kind == "x2" else t, ctx) for i in range(nargs)]
    d = writer(inst.operands[0], t, ctx)
    half = t.name[:-2] if t.kind == "x2" else None

    def post(v):
        if sat:
            v = np.where(np.isnan(v), 0, np.clip(v, 0, 1))
        if relu:  # §9.7.4.4: negative results become +0, NaN becomes the canonical NaN
            v = np.where(np.isnan(v), np.nan, np.maximum(v, 0))
        return v

    if half:
        def run_x2(st, m):
            args = [unpack_half2(s(st), half) for s in srcs]
            d(st, pack_half2(post(fn(*args)), half), m)
        return run_x2
    if t.kind == "bf" or t.bits == 16:
        def run_half(st, m):
            d(st, post(fn(*[np.asarray(s(st), np.float64) for s in srcs])), m)
        return run_half
    if ftz and t.bits == 32:
        def flush(x):
            x = np.asarray(x, np.float32)
            return np.where(np.abs(x) < _TINY32, np.copysign(np.float32(0), x), x)

        def run_ftz(st, m):
            d(st, flush(post(fn(*[flush(s(st)) for s in srcs]))).astype(np.float32), m)
        return run_ftz

    def run(st, m):
        d(st, np.asarray(post(fn(*[s(st) for s in srcs]))).astype(t.dtype), m)
    return run


def _fma(a, b, c):
    """f64: correctly rounded; narrower types: rounded to odd in f64, which the caller's rounding
    to the element type turns into the correctly rounded result."""
    wide = all(np.asarray(x).dtype == np.float64 for x in (a, b, c))
    return fma_rn_f64(a, b, c) if wide else fma_odd_f64(a, b, c)


def _approx(fn):
    def apply(x):
        x32 = np.asarray(x, np.float32) if np.asarray(x).dtype != np.float64 else np.asarray(x)
        return fn(x32)
    return apply


_UNARY = {"neg": np.negative, "abs": np.abs, "sqrt": _approx(np.sqrt), "rcp": _approx(lambda x: np.divide(1, x)),
          "rsqrt": _approx(lambda x: np.divide(1, np.sqrt(x))), "ex2": _approx(np.exp2), "lg2": _approx(np.log2),
          "sin": _approx(np.sin), "cos": _approx(np.cos), "tanh": _approx(np.tanh)}


def build_unary(inst: Instruction, ctx: DecodeContext):
    return float_op(inst, ctx, 1, _UNARY[inst.opcode])




def _min_max(inst: Instruction):
    """min/max return the non-NaN operand unless `.NaN` is given (§9.7.3.10)."""
    nan = "NaN" in inst.mods
    if inst.opcode == "min":
        return np.minimum if nan else np.fmin
    return np.maximum if nan else np.fmax


def build_binary(inst: Instruction, ctx: DecodeContext):
    op = inst.opcode
    fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "min": _min_max(inst), "max": _min_max(inst), "copysign": lambda a, b: np.copysign(b, a)}[op]
    return float_op(inst, ctx, 2, fn)


def build_fma(inst: Instruction, ctx: DecodeContext):
    return float_op(inst, ctx, 3, _fma)


def build_testp(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    kind = next(x for x in inst.mods if x in ("finite", "infinite", "number", "notanumber", "normal", "subnormal"))
    a = reader(inst.operands[1], t, ctx)
    d = writer(inst.operands[0], TYPES["pred"], ctx)
    tiny = np.finfo(t.dtype).tiny
    fn = {"finite": np.isfinite, "infinite": np.isinf, "number": lambda x: ~np.isnan(x),
          "notanumber": np.isnan, "normal": lambda x: np.isfinite(x) & (np.abs(x) >= tiny),
          "subnormal": lambda x: (np.abs(x) < tiny) & (x != 0)}[kind]
    return lambda st, m: d(st, fn(a(st)), m)


FLOAT_ARITH = {"add": build_binary, "sub": build_binary, "mul": build_binary, "div": build_binary,
               "min": build_binary, "max": build_binary, "fma": build_fma, "mad": build_fma,
               "neg": build_unary, "abs": build_unary}
HANDLERS = {"fma": build_fma, "sqrt": build_unary, "rcp": build_unary, "rsqrt": build_unary, "ex2": build_unary, "lg2": build_unary,
            "sin": build_unary, "cos": build_unary, "tanh": build_unary, "copysign": build_binary, "testp": build_testp}


def is_float(t: PtxType) -> bool:
    return t.kind in ("f", "bf", "x2")
