"""Integer and bitwise instructions (PTX ISA §9.7.1 integer arithmetic, §9.7.8 logic and shift)."""
from __future__ import annotations

import numpy as np

from kdsl.sim.operands import DecodeContext, reader, writer
from kdsl.sim.parser import Instruction
from kdsl.sim.types import TYPES, PtxType, find_type

_M32 = np.uint64(0xFFFFFFFF)


def _wide(t: PtxType) -> PtxType:
    return TYPES[f"{t.kind}{t.bits * 2}"]


def _mul_hi64(a: np.ndarray, b: np.ndarray, signed: bool) -> np.ndarray:
    """High 64 bits of a 64×64-bit product, from 32-bit halves."""
    ua, ub = np.asarray(a).view(np.uint64) if signed else a, np.asarray(b).view(np.uint64) if signed else b
    ua, ub = np.asarray(ua, np.uint64), np.asarray(ub, np.uint64)
    a0, a1, b0, b1 = ua & _M32, ua >> np.uint64(32), ub & _M32, ub >> np.uint64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> np.uint64(32)) + (p01 & _M32) + (p10 & _M32)
    hi = p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))
    if signed:
        hi = hi - np.where(np.asarray(a) < 0, ub, 0).astype(np.uint64) - np.where(np.asarray(b) < 0, ua, 0).astype(np.uint64)
        return hi.view(np.int64)
    return hi


def mul_int(a, b, t: PtxType, mode: str):
    """`mul.lo/.hi/.wide` on integers of type `t`."""
    if mode == "wide":
        w = _wide(t)
        return np.asarray(a).astype(w.dtype) * np.asarray(b).astype(w.dtype), w
    if mode == "hi":
        if t.bits == 64:
            return _mul_hi64(a, b, t.kind == "s"), t
        w = _wide(t)
        return (np.asarray(a).astype(w.dtype) * np.asarray(b).astype(w.dtype)) >> t.bits, t
    return np.asarray(np.asarray(a) * np.asarray(b)).astype(t.dtype), t


def _mode(inst: Instruction) -> str:
    return next((m for m in inst.mods if m in ("lo", "hi", "wide")), "lo")


def build_mul(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    mode = _mode(inst)
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    rt = _wide(t) if mode == "wide" else t
    d = writer(inst.operands[0], rt, ctx)
    return lambda st, m: d(st, mul_int(a(st), b(st), t, mode)[0], m)


def build_mad(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    mode = _mode(inst)
    rt = _wide(t) if mode == "wide" else t
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    c = reader(inst.operands[3], rt, ctx)
    d = writer(inst.operands[0], rt, ctx)
    carry = _carry_io(inst)
    if carry:
        return lambda st, m: carry(st, m, d, mul_int(a(st), b(st), t, mode)[0].astype(rt.dtype), c(st), rt)
    return lambda st, m: d(st, (mul_int(a(st), b(st), t, mode)[0] + c(st)).astype(rt.dtype), m)


def _carry_io(inst: Instruction):
    """Extended-precision forms (`add.cc`, `addc{.cc}`; §9.7.2): carry in/out through %cc."""
    base = inst.opcode
    carry_in = base in ("addc", "subc", "madc")
    carry_out = "cc" in inst.mods
    if not (carry_in or carry_out):
        return None
    sub = base.startswith("sub")

    def apply(st, m, d, x, y, t):
        ux, uy = np.asarray(x).astype(t.udtype).astype(np.uint64), np.asarray(y).astype(t.udtype).astype(np.uint64)
        cin = (st.get("%cc") & np.uint64(1)) if carry_in else np.uint64(0)
        bits = t.bits
        if bits == 32:
            total = ux - uy - cin if sub else ux + uy + cin
            cout = (total >> np.uint64(32)) & np.uint64(1)
            res = total & _M32
        else:
            if sub:
                res = ux - uy - cin
                cout = ((ux < uy) | ((ux == uy) & (cin == 1))).astype(np.uint64)
            else:
                res = ux + uy + cin
                cout = ((res < ux) | ((res == ux) & (cin == 1))).astype(np.uint64)
        d(st, res.astype(t.udtype), m)
        if carry_out:
            st.put("%cc", cout, m)
    return apply


def _binary(fn):
    def build(inst: Instruction, ctx: DecodeContext):
        t = find_type(inst.mods)
        a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
        d = writer(inst.operands[0], t, ctx)
        return lambda st, m: d(st, fn(a(st), b(st), t), m)
    return build


def build_add_sub(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    d = writer(inst.operands[0], t, ctx)
    carry = _carry_io(inst)
    if carry:
        return lambda st, m: carry(st, m, d, a(st), b(st), t)
    sub = inst.opcode.startswith("sub")
    sat = "sat" in inst.mods
    if sat:
        def run_sat(st, m):
            x, y = np.asarray(a(st), np.int64), np.asarray(b(st), np.int64)
            d(st, np.clip(x - y if sub else x + y, -2**31, 2**31 - 1), m)
        return run_sat
    if sub:
        return lambda st, m: d(st, np.asarray(a(st)) - np.asarray(b(st)), m)
    return lambda st, m: d(st, np.asarray(a(st)) + np.asarray(b(st)), m)


def _magnitude(x: np.ndarray, t: PtxType) -> np.ndarray:
    """|x| as t's unsigned type: exact for MIN too, whose magnitude the signed type cannot hold."""
    u = np.asarray(x).astype(t.udtype)
    return np.where(x < 0, -u, u)


def _div(a, b, t):
    """Quotients rounded toward zero, from the operands' magnitudes (|MIN| included). The PTX ISA
    leaves x / 0 and MIN / -1 unspecified: x / 0 gives all ones (the divisor's complement, which the
    32-bit division sequence ptxas emits is understood to select; not checked on a GPU), MIN / -1
    gives MIN (|MIN| / 1, negated with wrap-around), with no fault either way. kdsl's lowering never
    relies on either: it selects the CPU's results around them."""
    a, b = np.asarray(a), np.asarray(b)
    zero = b == 0
    safe = np.where(zero, 1, b).astype(t.dtype)
    if t.kind == "s":
        q = np.asarray(_magnitude(a, t) // _magnitude(safe, t))
        q = np.where((a < 0) ^ (safe < 0), -q, q).astype(t.dtype)
        return np.where(zero, -1, q).astype(t.dtype)
    return np.where(zero, np.iinfo(t.dtype).max, a // safe).astype(t.dtype)


def _rem(a, b, t):
    a, b = np.asarray(a), np.asarray(b)
    q = _div(a, b, t)
    return np.where(b == 0, a, a - q * np.where(b == 0, 1, b).astype(t.dtype)).astype(t.dtype)


def _shift_amount(b) -> np.ndarray:
    return np.asarray(b).astype(np.uint64) & np.uint64(0xFFFFFFFF)


def _shl(a, b, t):
    n = _shift_amount(b)
    big = n >= t.bits
    r = np.asarray(a).astype(t.udtype) << np.minimum(n, t.bits - 1).astype(t.udtype)
    return np.where(big, 0, r).astype(t.udtype)


def _shr(a, b, t):
    """Shift amounts above the width clamp: zero fill, or sign fill for `.s` (§9.7.8.8)."""
    n = np.minimum(_shift_amount(b), t.bits - 1).astype(t.dtype)
    big = _shift_amount(b) >= t.bits
    r = np.asarray(a) >> n
    if t.kind == "s":
        return np.where(big, np.asarray(a) >> (t.bits - 1), r).astype(t.dtype)
    return np.where(big, 0, r).astype(t.dtype)


def _bits(t: PtxType) -> PtxType:
    return TYPES[f"b{t.bits}"] if t.kind != "pred" else t


def build_logic(inst: Instruction, ctx: DecodeContext):
    t = _bits(find_type(inst.mods))
    fn = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[inst.opcode]
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    d = writer(inst.operands[0], t, ctx)
    return lambda st, m: d(st, fn(a(st), b(st)), m)


def build_unary(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    if inst.opcode in ("not", "cnot"):
        t = _bits(t)
    fn = {"not": np.invert,
          "cnot": lambda x: (x == 0).astype(t.dtype),
          "neg": lambda x: (-np.asarray(x)).astype(t.dtype),
          "abs": lambda x: np.abs(np.asarray(x)).astype(t.dtype),
          "popc": lambda x: np.bitwise_count(np.asarray(x).astype(t.udtype)).astype(np.uint32),
          "clz": lambda x: _clz(np.asarray(x).astype(t.udtype), t.bits),
          "brev": lambda x: _brev(np.asarray(x).astype(t.udtype), t.bits)}[inst.opcode]
    a = reader(inst.operands[1], t, ctx)
    dt = TYPES["u32"] if inst.opcode in ("popc", "clz") else t
    d = writer(inst.operands[0], dt, ctx)
    return lambda st, m: d(st, fn(a(st)), m)


def _clz(x: np.ndarray, bits: int) -> np.ndarray:
    n = np.zeros(x.shape, np.uint32)
    x = x.astype(np.uint64)
    for s in (32, 16, 8, 4, 2, 1):
        if s >= bits:
            continue
        top = x >> np.uint64(bits - s) == 0
        n += np.where(top, s, 0).astype(np.uint32)
        x = np.where(top, x << np.uint64(s), x) & np.uint64((1 << bits) - 1 if bits < 64 else 2**64 - 1)
    return n + (x >> np.uint64(bits - 1) == 0).astype(np.uint32)


_REV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], np.uint8)


def _brev(x: np.ndarray, bits: int) -> np.ndarray:
    b = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, bits // 8)
    return _REV8[b][..., ::-1].copy().view(x.dtype).reshape(x.shape)


def build_minmax(inst: Instruction, ctx: DecodeContext):
    fn = np.minimum if inst.opcode == "min" else np.maximum
    return _binary(lambda a, b, t: fn(a, b))(inst, ctx)


def build_bfe(inst: Instruction, ctx: DecodeContext):
    """§9.7.8.5: the field at pos/len, zero- or sign-extended; fields past the msb take the sign bit."""
    t = find_type(inst.mods)
    a, pos, ln = reader(inst.operands[1], t, ctx), reader(inst.operands[2], TYPES["u32"], ctx), reader(inst.operands[3], TYPES["u32"], ctx)
    d = writer(inst.operands[0], t, ctx)
    w = t.bits
    full = np.uint64(2**64 - 1)

    def run(st, m):
        x = np.asarray(a(st)).astype(t.udtype).astype(np.uint64)
        p = np.asarray(pos(st)).astype(np.uint64) & np.uint64(0xFF)
        n = np.asarray(ln(st)).astype(np.uint64) & np.uint64(0xFF)
        eff = np.minimum(n, np.where(p >= w, 0, w - np.minimum(p, w)).astype(np.uint64))
        field = np.where(p >= w, np.uint64(0), x >> np.minimum(p, np.uint64(63)))
        keep = np.where(eff >= 64, full, (np.uint64(1) << np.minimum(eff, np.uint64(63))) - np.uint64(1))
        field &= keep
        if t.kind == "s":
            sb = (x >> np.minimum(p + np.maximum(n, np.uint64(1)) - np.uint64(1), np.uint64(w - 1))) & np.uint64(1)
            sb = np.where(n == 0, np.uint64(0), sb)
            field |= np.where(sb == 1, ~keep, np.uint64(0))
        d(st, (field & np.uint64(2**w - 1 if w < 64 else 2**64 - 1)).astype(t.udtype).view(t.dtype), m)
    return run


def build_bfi(inst: Instruction, ctx: DecodeContext):
    t = _bits(find_type(inst.mods))
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    pos, ln = reader(inst.operands[3], TYPES["u32"], ctx), reader(inst.operands[4], TYPES["u32"], ctx)
    d = writer(inst.operands[0], t, ctx)
    w = t.bits

    def run(st, m):
        p = np.asarray(pos(st)).astype(np.uint64) & np.uint64(0xFF)
        n = np.minimum(np.asarray(ln(st)).astype(np.uint64) & np.uint64(0xFF), np.uint64(w))
        ones = np.where(n >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(n, np.uint64(63))) - np.uint64(1))
        mask = np.where(p >= w, np.uint64(0), ones << np.minimum(p, np.uint64(63)))
        x, y = np.asarray(a(st)).astype(np.uint64), np.asarray(b(st)).astype(np.uint64)
        d(st, ((y & ~mask) | ((x << np.minimum(p, np.uint64(63))) & mask)).astype(t.udtype), m)
    return run


def build_prmt(inst: Instruction, ctx: DecodeContext):
    """§9.7.8.7 prmt: default mode picks bytes of {b, a} by selector nibbles (bit 3: replicate sign)."""
    mode = next((x for x in inst.mods if x in ("f4e", "b4e", "rc8", "ecl", "ecr", "rc16")), None)
    u32 = TYPES["b32"]
    a, b, c = (reader(inst.operands[i], u32, ctx) for i in (1, 2, 3))
    d = writer(inst.operands[0], u32, ctx)
    shape = np.arange(4, dtype=np.uint64)

    def selectors(cv):
        s = np.asarray(cv).astype(np.uint64)[..., None]
        if mode is None:
            return (s >> (shape * np.uint64(4))) & np.uint64(0xF)
        lo = s & np.uint64(3)
        table = {"f4e": lambda: (lo + shape) & np.uint64(7),
                 "b4e": lambda: (lo + np.uint64(8) - shape) & np.uint64(7),
                 "rc8": lambda: np.broadcast_to(lo, lo.shape[:-1] + (4,)),
                 "ecl": lambda: np.maximum(lo, shape),
                 "ecr": lambda: np.minimum(lo, shape),
                 "rc16": lambda: ((s & np.uint64(1)) * np.uint64(2)) + (shape & np.uint64(1))}
        return table[mode]()

    def run(st, m):
        x = np.asarray(a(st)).astype(np.uint64)
        y = np.asarray(b(st)).astype(np.uint64)
        x, y = np.broadcast_arrays(x, y)
        allb = ((x | (y << np.uint64(32)))[..., None] >> (np.arange(8, dtype=np.uint64) * np.uint64(8))) & np.uint64(0xFF)
        sel = np.broadcast_to(selectors(c(st)), allb.shape[:-1] + (4,))
        picked = np.take_along_axis(allb, (sel & np.uint64(7)).astype(np.intp), axis=-1)
        if mode is None:
            sign = (picked >> np.uint64(7)) & np.uint64(1)
            picked = np.where(sel & np.uint64(8), sign * np.uint64(0xFF), picked)
        out = (picked << (shape * np.uint64(8))).sum(axis=-1, dtype=np.uint64)
        d(st, out.astype(np.uint32), m)
    return run


def build_shf(inst: Instruction, ctx: DecodeContext):
    """§9.7.8.9 funnel shift of the 64-bit {b:a}; `.clamp` caps n at 32, `.wrap` takes n mod 32."""
    u32 = TYPES["b32"]
    a, b, c = (reader(inst.operands[i], u32, ctx) for i in (1, 2, 3))
    d = writer(inst.operands[0], u32, ctx)
    left, wrap = "l" in inst.mods, "wrap" in inst.mods

    def run(st, m):
        n = np.asarray(c(st)).astype(np.uint64)
        n = n & np.uint64(31) if wrap else np.minimum(n, np.uint64(32))
        v = np.asarray(a(st)).astype(np.uint64) | (np.asarray(b(st)).astype(np.uint64) << np.uint64(32))
        r = ((v << n) >> np.uint64(32)) if left else (v >> n)
        d(st, (r & _M32).astype(np.uint32), m)
    return run


def build_lop3(inst: Instruction, ctx: DecodeContext):
    u32 = TYPES["b32"]
    a, b, c = (reader(inst.operands[i], u32, ctx) for i in (1, 2, 3))
    lut = int(inst.operands[4].value)
    d = writer(inst.operands[0], u32, ctx)

    def run(st, m):
        x, y, z = a(st), b(st), c(st)
        out = np.zeros(np.broadcast(x, y, z).shape, np.uint32)
        for i in range(8):
            if lut >> i & 1:
                out |= (x if i & 4 else ~x) & (y if i & 2 else ~y) & (z if i & 1 else ~z)
        d(st, out, m)
    return run


def build_bfind(inst: Instruction, ctx: DecodeContext):
    """§9.7.1.16: bit position of the most significant non-sign bit (0xFFFFFFFF if none);
    `.shiftamt` gives the left shift that brings it to the top instead."""
    t = find_type(inst.mods)
    a = reader(inst.operands[1], t, ctx)
    d = writer(inst.operands[0], TYPES["u32"], ctx)
    shiftamt = "shiftamt" in inst.mods

    def run(st, m):
        x = np.asarray(a(st))
        u = np.where(x < 0, ~x, x).astype(t.udtype) if t.kind == "s" else x.astype(t.udtype)
        pos = np.int64(t.bits - 1) - _clz(u, t.bits).astype(np.int64)
        none = pos < 0
        r = np.where(none, 0xFFFFFFFF, (t.bits - 1 - pos) if shiftamt else pos)
        d(st, r.astype(np.uint32), m)
    return run


def build_dp4a(inst: Instruction, ctx: DecodeContext):
    """§9.7.1.23: four 8-bit products of a and b added to c (signedness per operand type)."""
    ta, tb = find_type(inst.mods, 0), find_type(inst.mods, 1)
    a, b = reader(inst.operands[1], TYPES["b32"], ctx), reader(inst.operands[2], TYPES["b32"], ctx)
    c = reader(inst.operands[3], TYPES["s32"] if "s32" in (ta.name, tb.name) else TYPES["u32"], ctx)
    d = writer(inst.operands[0], TYPES["s32"], ctx)

    def lanes(v, t):
        raw = np.ascontiguousarray(np.atleast_1d(np.asarray(v, np.uint32))).view(np.uint8).reshape(-1, 4)
        return raw.view(np.int8).astype(np.int64) if t.kind == "s" else raw.astype(np.int64)

    def run(st, m):
        total = (lanes(a(st), ta) * lanes(b(st), tb)).sum(axis=1) + np.asarray(c(st)).astype(np.int64)
        d(st, total.astype(np.uint64).astype(np.uint32).view(np.int32), m)
    return run


HANDLERS = {"bfind": build_bfind, "dp4a": build_dp4a,
    "bfe": build_bfe, "bfi": build_bfi, "prmt": build_prmt, "shf": build_shf, "lop3": build_lop3,
    "and": build_logic, "or": build_logic, "xor": build_logic,
    "not": build_unary, "cnot": build_unary, "popc": build_unary, "clz": build_unary, "brev": build_unary,
    "shl": _binary(_shl), "shr": _binary(_shr), "addc": build_add_sub, "subc": build_add_sub,
}
INT_ARITH = {"add": build_add_sub, "sub": build_add_sub, "mul": build_mul, "mad": build_mad, "madc": build_mad,
             "div": _binary(_div), "rem": _binary(_rem), "min": build_minmax, "max": build_minmax,
             "neg": build_unary, "abs": build_unary}
