"""The scalar emitter table: one LLVM emitter per elementwise kdsl op.

Each emitter is `emit(builder, args, src, dst, attrs) -> value`, where `args`
are LLVM scalars, `src` is the kdsl element type of the (first value) operand
and `dst` the element type of the result. Block lowering calls the same
emitters inside element loops, so a fusion pass can chain them in one loop.

Legalisation: arithmetic on the narrow floats (`f16`, `bf16`, both fp8) is done
in `f32` and rounded back (exact for + - * / sqrt, as f32 carries more than
twice the bits); fp8 conversions are the bit manipulation of `fp8`.
Integer semantics that would trap or be poison on x86 are defined with selects:
`x / 0 = -1` (all ones), `x % 0 = x`, `MIN / -1 = MIN`, `MIN % -1 = 0`; shift
amounts (taken as unsigned) >= the width give 0, or the sign fill for an
arithmetic `shr` (PTX clamping).
"""
from __future__ import annotations

from typing import Any, Callable

from llvmlite import ir

from kdsl.backend.cpu import fp8, vector_math
from kdsl.backend.cpu.llvm_types import F32, I16, I32, I64, elem_of, mem_type, reg_type, unsupported
from kdsl.ir.core import Operation
from kdsl.ir.types import PointerType, ScalarType, bf16 as BF16, f32 as _F32_T, f64 as _F64_T

Emitter = Callable[[ir.IRBuilder, list[ir.Value], Any, Any, dict], ir.Value]
BoundEmitter = Callable[[ir.IRBuilder, list[ir.Value]], ir.Value]

_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def declare(module: ir.Module, name: str, ret: ir.Type, params: list[ir.Type]) -> ir.Function:
    """The function `name` of `module`, declared on first use."""
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, params), name=name)
    return fn


def _suffix(t: ir.Type) -> str:
    return {"half": "f16", "float": "f32", "double": "f64"}.get(str(t), str(t))


def float_intrinsic(name: str) -> Emitter:
    """An emitter calling `llvm.<name>.<type>` on operands of one float type."""
    def emit(b, args, src, dst, attrs):
        t = args[0].type
        fn = declare(b.module, f"llvm.{name}.{_suffix(t)}", t, [a.type for a in args])
        return b.call(fn, args)
    return emit


def is_narrow_float(t: object) -> bool:
    """f16, bf16 and the fp8 types: computed in f32 on the CPU."""
    return isinstance(t, ScalarType) and t.is_float and t.bits < 32


def half_promoted(inner: Emitter) -> Emitter:
    """Run a float emitter in f32 for narrow float operands, rounding the result back."""
    def emit(b, args, src, dst, attrs):
        if not is_narrow_float(src):
            return inner(b, args, src, dst, attrs)
        wide = [to_f32(b, a, src) for a in args]
        out = inner(b, wide, _F32_T, _F32_T if dst == src else dst, attrs)
        return from_f32(b, out, src) if dst == src else out
    return emit


def _by_kind(signed: Emitter, unsigned: Emitter, floating: Emitter) -> Emitter:
    """Dispatch on the operand type: signed int, unsigned int (and i1, pointers) or float."""
    promoted = half_promoted(floating)

    def emit(b, args, src, dst, attrs):
        if isinstance(src, ScalarType) and src.is_float:
            return promoted(b, args, src, dst, attrs)
        chosen = signed if isinstance(src, ScalarType) and src.is_signed else unsigned
        return chosen(b, args, src, dst, attrs)
    return emit


def _simple(method: str) -> Emitter:
    return lambda b, args, src, dst, attrs: getattr(b, method)(*args)


def _all_ones(t: ir.Type) -> ir.Constant:
    return ir.Constant(t, -1)


def _int_min(t: ir.IntType) -> ir.Constant:
    return ir.Constant(t, 1 << (t.width - 1))


def _safe_divisor(b: ir.IRBuilder, x: ir.Value, y: ir.Value, signed: bool) -> tuple[ir.Value, ir.Value]:
    """(y == 0, a divisor that cannot trap: 1 where y is 0 or where MIN / -1 would overflow)."""
    zero = b.icmp_unsigned("==", y, ir.Constant(y.type, 0))
    bad = zero
    if signed:
        overflow = b.and_(b.icmp_unsigned("==", x, _int_min(x.type)), b.icmp_unsigned("==", y, _all_ones(y.type)))
        bad = b.or_(zero, overflow)
    return zero, b.select(bad, ir.Constant(y.type, 1), y)


def _int_div(signed: bool) -> Emitter:
    def emit(b, args, src, dst, attrs):
        x, y = args
        zero, safe = _safe_divisor(b, x, y, signed)
        q = b.sdiv(x, safe) if signed else b.udiv(x, safe)
        return b.select(zero, _all_ones(x.type), q)
    return emit


def _int_rem(signed: bool) -> Emitter:
    def emit(b, args, src, dst, attrs):
        x, y = args
        zero, safe = _safe_divisor(b, x, y, signed)
        r = b.srem(x, safe) if signed else b.urem(x, safe)
        return b.select(zero, x, r)
    return emit


def _shift(kind: str) -> Emitter:
    """`x << y`, `x >> y` with amounts (unsigned) >= the width giving 0 or the sign fill. The shift
    itself takes the amount modulo the width: without that, LLVM's NVPTX backend folds the select
    into PTX's clamping shift, whose amount is only the low 32 bits of an i64 (2**32 + 1 shifts by 1)."""
    def emit(b, args, src, dst, attrs):
        x, y = args
        width = x.type.width
        too_far = b.icmp_unsigned(">=", y, ir.Constant(x.type, width))
        amount = b.and_(y, ir.Constant(x.type, width - 1))
        if kind == "ashr":
            fill = b.ashr(x, ir.Constant(x.type, width - 1))
        else:
            fill = ir.Constant(x.type, 0)
        return b.select(too_far, fill, getattr(b, kind)(x, amount))
    return emit


def _int_minmax(pred: str, signed: bool) -> Emitter:
    def emit(b, args, src, dst, attrs):
        x, y = args
        cmp = b.icmp_signed(pred, x, y) if signed else b.icmp_unsigned(pred, x, y)
        return b.select(cmp, x, y)
    return emit


def _int_abs(b, args, src, dst, attrs):
    (x,) = args
    return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.neg(x), x)


def _identity(b, args, src, dst, attrs):
    return args[0]


def _cmp(b, args, src, dst, attrs):
    x, y = args
    pred = _CMP[attrs["pred"]]
    if isinstance(src, ScalarType) and src.is_float:
        return b.fcmp_unordered(pred, x, y) if pred == "!=" else b.fcmp_ordered(pred, x, y)
    if isinstance(src, ScalarType) and src.is_signed:
        return b.icmp_signed(pred, x, y)
    return b.icmp_unsigned(pred, x, y)


def _select(b, args, src, dst, attrs):
    return b.select(*args)


def _addptr(b, args, src, dst, attrs):
    p, off = args
    off_type = attrs["offset_type"]
    wide = off if off.type == I64 else (b.sext(off, I64) if off_type.is_signed else b.zext(off, I64))
    return b.gep(p, [wide], source_etype=_mem(dst))


def _mem(t: ScalarType | PointerType) -> ir.Type:
    return mem_type(t.elem if isinstance(t, PointerType) else t)


def cast(b: ir.IRBuilder, x: ir.Value, src: ScalarType, dst: ScalarType) -> ir.Value:
    """Numeric conversion. Float to int saturates (NaN gives 0); to `i1` means `!= 0`."""
    if isinstance(src, PointerType) or isinstance(dst, PointerType):
        raise unsupported(src if isinstance(src, PointerType) else dst)
    if src == dst:
        return x
    if src.is_fp8:
        return cast(b, fp8.to_f32(b, x, src), _F32_T, dst)
    if dst.is_fp8:
        return fp8.from_f64(b, x if src == _F64_T else cast(b, x, src, _F64_T), dst)
    if BF16 in (src, dst):
        if src == BF16:
            wide = to_f32(b, x, src)
        else:
            wide = _f32_rounded_to_odd(b, x if src == _F64_T else cast(b, x, src, _F64_T))
        return from_f32(b, wide, dst) if dst == BF16 else cast(b, wide, _F32_T, dst)
    if dst.is_bool:
        if src.is_float:
            return b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
        return b.icmp_unsigned("!=", x, ir.Constant(x.type, 0))
    to = reg_type(dst)
    if src.is_int and dst.is_int:
        if dst.bits < src.bits:
            return b.trunc(x, to)
        if dst.bits == src.bits:
            return x
        return b.sext(x, to) if src.is_signed else b.zext(x, to)
    if src.is_int:
        return b.sitofp(x, to) if src.is_signed else b.uitofp(x, to)
    if dst.is_int:
        if src.bits == 16:  # LLVM's x86 backend vectorises the f16 saturating conversion wrongly (NaN)
            return cast(b, b.fpext(x, reg_type(_F32_T)), _F32_T, dst)
        name = "fptosi" if dst.is_signed else "fptoui"
        fn = declare(b.module, f"llvm.{name}.sat.i{dst.bits}.{_suffix(x.type)}", to, [x.type])
        return b.call(fn, [x])
    return b.fpext(x, to) if dst.bits > src.bits else b.fptrunc(x, to)


def _f32_rounded_to_odd(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The f64 `x` as an f32 rounded to odd: truncated toward zero, with the last bit set where
    that dropped anything. Rounding that to nearest even as bf16 (8 bits) gives the nearest bf16
    to `x` itself, where f64 -> f32 -> bf16 by nearest even twice is wrong for values just past a
    bf16 halfway point (-0.25097657463 became -0.25, not -0.251953125). f32 infinities stand for
    values past its largest finite one, which round to bf16 infinity either way."""
    near = b.fptrunc(x, F32)
    bits = b.bitcast(near, I32)
    widened = b.fpext(near, x.type)
    inexact = b.fcmp_unordered("!=", widened, x)
    magnitude = float_intrinsic("fabs")
    away = b.fcmp_ordered(">", magnitude(b, [widened], _F64_T, _F64_T, {}),
                          magnitude(b, [x], _F64_T, _F64_T, {}))  # nearest even rounded up in size
    toward_zero = b.select(away, b.sub(bits, ir.Constant(I32, 1)), bits)
    odd = b.select(inexact, b.or_(toward_zero, ir.Constant(I32, 1)), bits)
    return b.bitcast(odd, F32)


def _bitcast(b: ir.IRBuilder, x: ir.Value, dst: ScalarType) -> ir.Value:
    to = reg_type(dst)
    return x if x.type == to else b.bitcast(x, to)


def to_f32(b: ir.IRBuilder, x: ir.Value, t: ScalarType) -> ir.Value:
    """A narrow float widened to f32 (exact); bf16 by moving its bits up."""
    if t.is_fp8:
        return fp8.to_f32(b, x, t)
    if t != BF16:
        return b.fpext(x, F32)
    return b.bitcast(b.shl(b.zext(x, I32), ir.Constant(I32, 16)), F32)


def from_f32(b: ir.IRBuilder, x: ir.Value, t: ScalarType) -> ir.Value:
    """An f32 rounded to nearest even as `t`; bf16 with integer ops (no libcall; NaN stays quiet NaN)."""
    if t.is_fp8:
        return fp8.from_f64(b, b.fpext(x, ir.DoubleType()), t)
    if t != BF16:
        return b.fptrunc(x, reg_type(t)) if t.bits < 32 else b.fpext(x, reg_type(t))
    bits = b.bitcast(x, I32)
    high = b.lshr(bits, ir.Constant(I32, 16))
    odd = b.and_(high, ir.Constant(I32, 1))
    rounded = b.lshr(b.add(bits, b.add(odd, ir.Constant(I32, 0x7FFF))), ir.Constant(I32, 16))
    is_nan = b.fcmp_unordered("uno", x, x)
    result = b.select(is_nan, b.or_(high, ir.Constant(I32, 0x40)), rounded)
    return b.trunc(result, I16)



def _libm(name: str) -> Emitter:
    """An emitter calling the C library's `name` (f32: `namef`) on one float operand."""
    def emit(b, args, src, dst, attrs):
        (x,) = args
        symbol = name + ("f" if x.type == F32 else "")
        return b.call(declare(b.module, symbol, x.type, [x.type]), [x])
    return emit


def _vectorisable(f32: Callable[[ir.IRBuilder, ir.Value], ir.Value], other: Emitter) -> Emitter:
    """`f32` (from `vector_math`) on f32 operands, `other` on f64."""
    def emit(b, args, src, dst, attrs):
        return f32(b, args[0]) if args[0].type == F32 else other(b, args, src, dst, attrs)
    return emit


def multiply_add(b: ir.IRBuilder, total: ir.Value, x: ir.Value, y: ir.Value, t: ScalarType) -> ir.Value:
    """One step of a dot product, `total + x * y` in `t` (scalars or vectors): fused, rounding
    once, on f32 and f64; a product and a sum rounded in `t` on the other types."""
    if t.name in ("f32", "f64"):
        vector = isinstance(x.type, ir.VectorType)
        suffix = f"v{x.type.count}{_suffix(x.type.element)}" if vector else _suffix(x.type)
        return b.call(declare(b.module, f"llvm.fma.{suffix}", x.type, [x.type] * 3), [x, y, total])
    product = ELEMENTWISE["mul"](b, [x, y], t, t, {})
    return ELEMENTWISE["add"](b, [total, product], t, t, {})


def _rsqrt(b, args, src, dst, attrs):
    root = float_intrinsic("sqrt")(b, args, src, dst, attrs)
    return b.fdiv(ir.Constant(root.type, 1.0), root)


def _fma(b, args, src, dst, attrs):
    """fp8 operands fuse in f64, where x*y+z is exact short of overflow, so the result rounds once;
    other narrow floats in f32."""
    if not (isinstance(src, ScalarType) and src.is_fp8):
        return half_promoted(float_intrinsic("fma"))(b, args, src, dst, attrs)
    wide = float_intrinsic("fma")(b, [cast(b, a, src, _F64_T) for a in args], _F64_T, _F64_T, attrs)
    return fp8.from_f64(b, wide, src)


def _mulhi(signed: bool) -> Emitter:
    """The high half of the double-width product."""
    def emit(b, args, src, dst, attrs):
        x, y = args
        wide = ir.IntType(2 * x.type.width)
        extend = b.sext if signed else b.zext
        product = b.mul(extend(x, wide), extend(y, wide))
        return b.trunc(b.lshr(product, ir.Constant(wide, x.type.width)), x.type)
    return emit


_FLOAT_MIN = float_intrinsic("minnum")
_FLOAT_MAX = float_intrinsic("maxnum")

ELEMENTWISE: dict[str, Emitter] = {
    "add": _by_kind(_simple("add"), _simple("add"), _simple("fadd")),
    "sub": _by_kind(_simple("sub"), _simple("sub"), _simple("fsub")),
    "mul": _by_kind(_simple("mul"), _simple("mul"), _simple("fmul")),
    "div": _by_kind(_int_div(True), _int_div(False), _simple("fdiv")),
    "rem": _by_kind(_int_rem(True), _int_rem(False), _simple("frem")),
    "min": _by_kind(_int_minmax("<", True), _int_minmax("<", False), _FLOAT_MIN),
    "max": _by_kind(_int_minmax(">", True), _int_minmax(">", False), _FLOAT_MAX),
    "and": _simple("and_"),
    "or": _simple("or_"),
    "xor": _simple("xor"),
    "shl": _shift("shl"),
    "shr": _by_kind(_shift("ashr"), _shift("lshr"), _shift("lshr")),
    "neg": _by_kind(_simple("neg"), _simple("neg"), _simple("fneg")),
    "abs": _by_kind(_int_abs, _identity, float_intrinsic("fabs")),
    "not": _simple("not_"),
    "exp": half_promoted(_vectorisable(vector_math.exp_f32, float_intrinsic("exp"))),
    "log": half_promoted(float_intrinsic("log")),
    "sqrt": half_promoted(float_intrinsic("sqrt")),
    "exp2": half_promoted(_vectorisable(vector_math.exp2_f32, float_intrinsic("exp2"))),
    "log2": half_promoted(float_intrinsic("log2")),
    "sin": half_promoted(float_intrinsic("sin")),
    "cos": half_promoted(float_intrinsic("cos")),
    "floor": half_promoted(float_intrinsic("floor")),
    "ceil": half_promoted(float_intrinsic("ceil")),
    "rsqrt": half_promoted(_rsqrt),
    "erf": half_promoted(_libm("erf")),
    "fma": _fma,
    "umulhi": _by_kind(_mulhi(True), _mulhi(False), _mulhi(False)),
    "multiple_of": _identity,  # promises for the axis analysis
    "max_contiguous": _identity,
    "cmp": half_promoted(_cmp),
    "select": _select,
    "cast": lambda b, args, src, dst, attrs: cast(b, args[0], src, dst),
    "bitcast": lambda b, args, src, dst, attrs: _bitcast(b, args[0], dst),
    "addptr": _addptr,
}


def divide_by_uniform(b: ir.IRBuilder, x: ir.Value, d: ir.Value) -> ir.Value:
    """The f32 quotient x / d, correctly rounded, by a multiplication where d is one value for a
    whole block: x times the f64 reciprocal of d (computed once; LLVM hoists it out of the
    loop), rounded to f32. That is the correctly rounded quotient: the f64 product is within
    2**-52 (relative) of x / d, and a quotient of two 24-bit significands that is not exactly
    representable lies more than 2**-49 (relative) from every midpoint between floats, subnormal
    ones included (Figueroa's argument for double rounding), so both round alike. Zeros,
    infinities and NaNs come out as IEEE division gives them (x / 0 = x * inf, x / inf = x * 0).
    tests/cpu/test_elementwise.py compares it with numpy on random and special operands."""
    wide = ir.DoubleType()
    reciprocal = b.fdiv(ir.Constant(wide, 1.0), b.fpext(d, wide))
    return b.fptrunc(b.fmul(b.fpext(x, wide), reciprocal), F32)


def bind(op: Operation, table: dict[str, Emitter] = ELEMENTWISE) -> BoundEmitter:
    """`op`'s emitter from `table` with its element types and attributes bound: call it with the
    builder and one LLVM value per operand (a scalar, or one element of each block operand)."""
    emit = table[op.name]
    src = elem_of(op.operands[1 if op.name == "select" else 0].type)
    dst = elem_of(op.result.type)
    attrs = dict(op.attrs)
    if op.name == "addptr":
        attrs["offset_type"] = elem_of(op.operands[1].type)
    return lambda b, args: emit(b, args, src, dst, attrs)
