"""An exact `fmod` for f32 and f64 in LLVM IR, for the GPU (NVPTX has no libm to call).

LLVM's own expansion of `frem` on NVPTX, x - trunc(x / y) * y, is off by the rounding of the
quotient once it passes 2**24 (f32) or 2**53 (f64). This one is libm's integer algorithm: with
x = mx * 2**ex and y = my * 2**ey (integer significands, subnormals normalised), the remainder is
(mx * 2**(ex - ey) mod my) * 2**ey, and that integer remainder is taken a chunk of the exponent
difference at a time with 64-bit `urem`s ((r << k) mod my, k as large as fits: 40 bits a step on
f32, 11 on f64). Every step is exact, so the result is fmod's: the sign of x, |result| < |y|; NaN
when y is 0 or NaN or x is infinite or NaN; x itself when |x| < |y|.

The function is defined once per module (internal, always inlined) and called per element.
"""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cpu.llvm_types import I64

_MANTISSA_BITS = {32: 23, 64: 52}


def fmod(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """fmod(x, y) of two f32 or two f64 values, exactly."""
    return b.call(_function(b.module, x.type), [x, y])


def _function(module: ir.Module, t: ir.Type) -> ir.Function:
    name = f"kdsl.fmod.{'f32' if isinstance(t, ir.FloatType) else 'f64'}"
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(t, [t, t]), name=name)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline")
        _define(fn, t)
    return fn


def _c(t: ir.IntType, v: int) -> ir.Constant:
    return ir.Constant(t, v)


def _define(fn: ir.Function, t: ir.Type) -> None:
    width = 32 if isinstance(t, ir.FloatType) else 64
    m_bits = _MANTISSA_BITS[width]
    it = ir.IntType(width)
    sign_bit, inf_bits = 1 << (width - 1), ((1 << (width - 1 - m_bits)) - 1) << m_bits
    entry, reduce, loop, pack, done = (fn.append_basic_block(n) for n in ("entry", "reduce", "loop", "pack", "done"))
    b = ir.IRBuilder(entry)
    x, y = fn.args
    ux, uy = b.bitcast(x, it), b.bitcast(y, it)
    sign = b.and_(ux, _c(it, sign_bit))
    ax, ay = b.and_(ux, _c(it, sign_bit - 1)), b.and_(uy, _c(it, sign_bit - 1))
    nan = b.or_(b.icmp_unsigned("==", ay, _c(it, 0)),
                b.or_(b.icmp_unsigned(">=", ax, _c(it, inf_bits)), b.icmp_unsigned(">", ay, _c(it, inf_bits))))
    quick = b.select(nan, ir.Constant(t, float("nan")), x)
    b.cbranch(b.or_(nan, b.icmp_unsigned("<", ax, ay)), done, reduce)

    b.position_at_end(reduce)
    mx, ex = _unpack(b, ax, m_bits)
    my, ey = _unpack(b, ay, m_bits)
    difference = b.sub(ex, ey)
    b.branch(loop)

    b.position_at_end(loop)
    r = b.phi(I64)
    d = b.phi(I64)
    r.add_incoming(mx, reduce)
    d.add_incoming(difference, reduce)
    umin = declare(b.module, "llvm.umin.i64", I64, [I64, I64])
    k = b.call(umin, [d, _c(I64, 64 - (m_bits + 1))])
    rest = b.urem(b.shl(r, k), my)
    left = b.sub(d, k)
    r.add_incoming(rest, loop)
    d.add_incoming(left, loop)
    b.cbranch(b.icmp_unsigned("==", left, _c(I64, 0)), pack, loop)

    b.position_at_end(pack)
    magnitude = b.select(b.icmp_unsigned("==", rest, _c(I64, 0)), _c(it, 0), _pack(b, rest, ey, m_bits, it))
    packed = b.bitcast(b.or_(magnitude, sign), t)
    b.branch(done)

    b.position_at_end(done)
    result = b.phi(t)
    result.add_incoming(quick, entry)
    result.add_incoming(packed, pack)
    b.ret(result)


def _normalise(b: ir.IRBuilder, m: ir.Value, e: ir.Value, m_bits: int) -> tuple[ir.Value, ir.Value]:
    """(m, e) shifted so that m's top bit is bit `m_bits`; m is nonzero."""
    ctlz = declare(b.module, "llvm.ctlz.i64", I64, [I64, ir.IntType(1)])
    s = b.sub(b.call(ctlz, [m, ir.Constant(ir.IntType(1), 1)]), _c(I64, 63 - m_bits))
    return b.shl(m, s), b.sub(e, s)


def _unpack(b: ir.IRBuilder, a: ir.Value, m_bits: int) -> tuple[ir.Value, ir.Value]:
    """A finite nonzero magnitude's integer significand (bit `m_bits` set) and biased exponent
    (below 1 for subnormals), as i64."""
    wide = b.zext(a, I64) if a.type.width < 64 else a
    field = b.lshr(wide, _c(I64, m_bits))
    normal = b.icmp_unsigned("!=", field, _c(I64, 0))
    m = b.or_(b.and_(wide, _c(I64, (1 << m_bits) - 1)), b.shl(b.zext(normal, I64), _c(I64, m_bits)))
    return _normalise(b, m, b.select(normal, field, _c(I64, 1)), m_bits)


def _pack(b: ir.IRBuilder, r: ir.Value, e: ir.Value, m_bits: int, it: ir.IntType) -> ir.Value:
    """The bits of the magnitude r * 2**(e - bias - m_bits), r nonzero and the value representable."""
    m, e = _normalise(b, r, e, m_bits)
    normal = b.add(b.shl(b.sub(e, _c(I64, 1)), _c(I64, m_bits)), m)
    shift = b.call(declare(b.module, "llvm.umin.i64", I64, [I64, I64]), [b.sub(_c(I64, 1), e), _c(I64, 63)])
    subnormal = b.lshr(m, shift)
    bits = b.select(b.icmp_signed(">=", e, _c(I64, 1)), normal, subnormal)
    return b.trunc(bits, it) if it.width < 64 else bits
