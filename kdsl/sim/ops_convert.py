"""Data movement and conversion: cvt (§9.7.9.21), mov (§9.7.9.1), setp/set/selp/slct (§9.7.6, §9.7.7)."""
from __future__ import annotations

import numpy as np

from kdsl.sim.operands import DecodeContext, bits_reader, pair, reader, vector_items, writer
from kdsl.sim.ops_float import round_half
from kdsl.sim.parser import Instruction, Vec
from kdsl.sim.types import (E4M3, E5M2, TYPES, PtxType, bf16_to_f32, f32_to_bf16, f32_to_minifloat,
                            find_type, minifloat_to_f32)

_ROUND_INT = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil}


def round_float(x: np.ndarray, t: PtxType, mode: str) -> np.ndarray:
    """float64 → type `t` values, rounded per `.rn/.rz/.rm/.rp` (directed modes step one ulp)."""
    x = np.asarray(x, np.float64)
    if t.kind == "bf":
        r = bf16_to_f32(f32_to_bf16(x.astype(np.float32))).astype(np.float64)
        if mode == "rn":
            return r
        step = _directed(x, r, mode)
        bits = f32_to_bf16(r.astype(np.float32)).astype(np.int32)
        away = np.where(np.signbit(r) == (step > 0), -1, 1)
        nb = np.where(step != 0, bits + np.where(r == 0, 1, away * 1), bits).astype(np.uint16)
        nb = np.where((step != 0) & (r == 0), np.where(step > 0, 0x0001, 0x8001), nb).astype(np.uint16)
        return bf16_to_f32(nb)
    r = x.astype(t.dtype)  # NaN stays NaN; beyond the range is infinity (directed: the maximum)
    if mode == "rn":
        return r
    step = _directed(x, r.astype(np.float64), mode)
    return np.where(step > 0, np.nextafter(r, t.dtype.type(np.inf)),
                    np.where(step < 0, np.nextafter(r, t.dtype.type(-np.inf)), r)).astype(t.dtype)


def _directed(x: np.ndarray, r: np.ndarray, mode: str) -> np.ndarray:
    """+1 where the rounded value must move up one ulp, -1 down, 0 keep."""
    up, down = (r < x), (r > x)
    if mode == "rz":
        return np.where(down & (x > 0), -1, np.where(up & (x < 0), 1, 0))
    if mode == "rm":
        return np.where(down, -1, 0)
    return np.where(up, 1, 0)


def _int_range(t: PtxType) -> tuple[int, int]:
    info = np.iinfo(t.dtype)
    return int(info.min), int(info.max)


def convert(x, src: PtxType, dst: PtxType, mode: str | None, sat: bool):
    """One scalar `cvt` between integer, float, f16 and bf16 types."""
    fsrc, fdst = src.kind in ("f", "bf"), dst.kind in ("f", "bf")
    if fsrc and not fdst:
        v = np.asarray(x, np.float64)
        v = _ROUND_INT.get(mode or "rzi", np.trunc)(v)
        lo, hi = _int_range(dst)
        if dst.bits == 64:
            return _f64_to_int64(v, dst)
        return np.where(np.isnan(v), 0, np.clip(v, lo, hi)).astype(dst.dtype)
    if not fsrc and not fdst:
        v = np.asarray(x)
        if sat:
            lo, hi = _int_range(dst)
            return np.clip(v.astype(np.float64) if v.dtype.itemsize == 8 else v.astype(np.int64), lo, hi).astype(dst.dtype)
        return v.astype(dst.dtype)
    v = np.asarray(x, np.float64)
    if mode in _ROUND_INT:
        v = _ROUND_INT[mode](v)
        mode = "rn"
    out = round_float(v, dst, mode or "rn")
    if sat:
        out = np.where(np.isnan(out), 0, np.clip(out, 0, 1)).astype(out.dtype)
    return out


def _f64_to_int64(v: np.ndarray, dst: PtxType) -> np.ndarray:
    """Saturating float64 → 64-bit integer (NaN → 0); values ≥ 2^63 go through an offset."""
    lo, hi = _int_range(dst)
    clipped = np.clip(np.where(np.isnan(v), 0, v), lo, hi)
    if dst.kind == "s":
        safe = np.minimum(clipped, 2.0**63 - 1024).astype(np.int64)
        return np.where(clipped >= 2.0**63, np.iinfo(np.int64).max, safe).astype(np.int64)
    top = clipped >= 2.0**63
    low_part = np.where(top, np.minimum(clipped - 2.0**63, 2.0**63 - 1024), clipped).astype(np.uint64)
    out = np.where(top, low_part + np.uint64(1 << 63), low_part).astype(np.uint64)
    return np.where(clipped >= 2.0**64, np.iinfo(np.uint64).max, out).astype(np.uint64)


def f32_to_tf32(bits: np.ndarray, mode: str) -> np.ndarray:
    """§9.7.9.21: keep 10 mantissa bits; `.rna` rounds half away from zero, `.rz` truncates.

    The result is a .b32 with the low 13 bits zero; NaN and infinity pass through.
    """
    u = np.asarray(bits).astype(np.uint32)
    special = (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    rounded = u + np.uint32(0x1000) if mode == "rna" else u
    return np.where(special, u, rounded & np.uint32(0xFFFFE000)).astype(np.uint32)


_MINI = {"e4m3x2": E4M3, "e5m2x2": E5M2}


def build_cvt(inst: Instruction, ctx: DecodeContext):
    types = [m for m in inst.mods if m in TYPES]
    dst, src = TYPES[types[0]], TYPES[types[1]]
    mode = next((m for m in inst.mods if m in ("rn", "rz", "rm", "rp", "rna", "rni", "rzi", "rmi", "rpi")), None)
    sat = "sat" in inst.mods
    if dst.name in ("f16x2", "bf16x2") and src.name == "f32":
        a, b = reader(inst.operands[1], src, ctx), reader(inst.operands[2], src, ctx)
        d = writer(inst.operands[0], TYPES["b32"], ctx)
        half = dst.name[:-2]
        # §9.7.9.21: a goes to the upper half, b to the lower.
        return lambda st, m: d(st, (round_half(round_float(a(st), TYPES[half], mode or "rn"), half).astype(np.uint32)
                                    << np.uint32(16)) | round_half(round_float(b(st), TYPES[half], mode or "rn"),
                                                                   half).astype(np.uint32), m)
    if dst.name in _MINI and src.name == "f32":
        fmt = _MINI[dst.name]
        a, b = reader(inst.operands[1], src, ctx), reader(inst.operands[2], src, ctx)
        d = writer(inst.operands[0], TYPES["b16"], ctx)
        sf = "satfinite" in inst.mods
        return lambda st, m: d(st, (f32_to_minifloat(a(st), fmt, sf).astype(np.uint16) << np.uint16(8))
                               | f32_to_minifloat(b(st), fmt, sf).astype(np.uint16), m)
    if dst.name == "f16x2" and src.name in _MINI:
        fmt = _MINI[src.name]
        a = reader(inst.operands[1], TYPES["b16"], ctx)
        d = writer(inst.operands[0], TYPES["b32"], ctx)

        def widen(st, m):
            v = np.asarray(a(st)).astype(np.uint16)
            lo = minifloat_to_f32(v & np.uint16(0xFF), fmt).astype(np.float16).view(np.uint16).astype(np.uint32)
            hi = minifloat_to_f32(v >> np.uint16(8), fmt).astype(np.float16).view(np.uint16).astype(np.uint32)
            d(st, lo | (hi << np.uint32(16)), m)
        return widen
    if dst.name == "tf32" and src.name == "f32":
        a = reader(inst.operands[1], TYPES["b32"], ctx)
        d = writer(inst.operands[0], TYPES["b32"], ctx)
        return lambda st, m: d(st, f32_to_tf32(a(st), mode or "rna"), m)
    if dst.kind == "x2" or src.kind == "x2" or dst.name == "tf32":
        raise ctx.unsupported(f"conversion .{dst.name}.{src.name}")
    a = reader(inst.operands[1], src, ctx)
    d = writer(inst.operands[0], dst, ctx)
    return lambda st, m: d(st, convert(a(st), src, dst, mode, sat), m)


def build_mov(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    dst, src = inst.operands
    if isinstance(src, Vec):
        parts = vector_items(src)
        w = t.bits // len(parts)
        readers = [bits_reader(p, w, ctx) for p in parts]
        d = writer(dst, TYPES[f"b{t.bits}"], ctx)

        def pack(st, m):
            out = np.uint64(0)
            for i, r in enumerate(readers):
                out = out | (r(st) << np.uint64(i * w))
            d(st, out, m)
        return pack
    if isinstance(dst, Vec):
        parts = vector_items(dst)
        w = t.bits // len(parts)
        src_r = bits_reader(src, t.bits, ctx)
        writers = [writer(p, TYPES[f"b{w}"], ctx) for p in parts]
        mask = np.uint64((1 << w) - 1)

        def unpack(st, m):
            v = src_r(st)
            for i, wr in enumerate(writers):
                wr(st, (v >> np.uint64(i * w)) & mask, m)
        return unpack
    r = reader(src, t, ctx)
    d = writer(dst, t, ctx)
    return lambda st, m: d(st, r(st), m)


def compare(op: str, a, b, t: PtxType):
    """§9.7.6.1: ordered float comparisons are false on NaN; `u` forms are true on NaN."""
    unordered = op.endswith("u") and op not in ("lu",)
    base = op[:-1] if unordered and op not in ("nan", "num") else op
    fn = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
          "ge": np.greater_equal, "lo": np.less, "ls": np.less_equal, "hi": np.greater, "hs": np.greater_equal}
    if op == "num":
        return ~(np.isnan(a) | np.isnan(b))
    if op == "nan":
        return np.isnan(a) | np.isnan(b)
    if base in ("lo", "ls", "hi", "hs") and t.kind == "s":
        a, b = np.asarray(a).astype(t.udtype), np.asarray(b).astype(t.udtype)
    r = fn[base](a, b)
    if t.kind in ("f", "bf"):
        either = np.isnan(a) | np.isnan(b)
        r = (r | either) if unordered else (r & ~either)
    return r


_COMBINE = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def _cmp_parts(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    cmp = next(x for x in inst.mods if x in ("eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs", "equ", "neu",
                                             "ltu", "leu", "gtu", "geu", "num", "nan"))
    comb = next((x for x in inst.mods if x in _COMBINE), None)
    return t, cmp, comb


def build_setp(inst: Instruction, ctx: DecodeContext):
    t, cmp, comb = _cmp_parts(inst, ctx)
    p, q = pair(inst.operands[0])
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    pred = TYPES["pred"]
    c = reader(inst.operands[3], pred, ctx) if comb else None
    wp = writer(p, pred, ctx)
    wq = writer(q, pred, ctx) if q is not None else None

    def run(st, m):
        r = compare(cmp, a(st), b(st), t)
        if comb:
            cv = c(st)
            wp(st, _COMBINE[comb](r, cv), m)
            if wq:
                wq(st, _COMBINE[comb](~r, cv), m)
        else:
            wp(st, r, m)
            if wq:
                wq(st, ~r, m)
    return run


def build_set(inst: Instruction, ctx: DecodeContext):
    types = [TYPES[x] for x in inst.mods if x in TYPES]
    dt, st_t = types[0], types[1]
    _, cmp, comb = _cmp_parts(inst, ctx)
    a, b = reader(inst.operands[1], st_t, ctx), reader(inst.operands[2], st_t, ctx)
    c = reader(inst.operands[3], TYPES["pred"], ctx) if comb else None
    d = writer(inst.operands[0], dt, ctx)
    true = np.float32(1.0) if dt.kind == "f" else np.asarray(-1).astype(dt.dtype)

    def run(st, m):
        r = compare(cmp, a(st), b(st), st_t)
        if comb:
            r = _COMBINE[comb](r, c(st))
        d(st, np.where(r, true, 0).astype(dt.dtype), m)
    return run


def build_selp(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    a, b = reader(inst.operands[1], t, ctx), reader(inst.operands[2], t, ctx)
    c = reader(inst.operands[3], TYPES["pred"], ctx)
    d = writer(inst.operands[0], t, ctx)
    return lambda st, m: d(st, np.where(c(st), a(st), b(st)), m)


def build_slct(inst: Instruction, ctx: DecodeContext):
    dt, ct = find_type(inst.mods, 0), find_type(inst.mods, 1)
    a, b = reader(inst.operands[1], dt, ctx), reader(inst.operands[2], dt, ctx)
    c = reader(inst.operands[3], ct, ctx)
    d = writer(inst.operands[0], dt, ctx)
    return lambda st, m: d(st, np.where(c(st) >= 0, a(st), b(st)), m)


HANDLERS = {"cvt": build_cvt, "mov": build_mov, "setp": build_setp, "set": build_set, "selp": build_selp,
            "slct": build_slct}
