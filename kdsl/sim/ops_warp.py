"""Warp-level instructions: shfl.sync (§9.7.9.6), vote.sync (§9.7.12.10), redux.sync, activemask, match."""
from __future__ import annotations

import numpy as np

from kdsl.sim.cta import CtaState, Mask
from kdsl.sim.operands import DecodeContext, pair, reader, writer
from kdsl.sim.parser import Instruction
from kdsl.sim.types import TYPES, find_type


def _by_warp(st: CtaState, values: np.ndarray, fill) -> np.ndarray:
    """Pad to whole warps and reshape to (warps, 32)."""
    w = -(-st.n // 32)
    out = np.full(w * 32, fill, dtype=np.asarray(values).dtype)
    out[: st.n] = values
    return out.reshape(w, 32)


def _active(st: CtaState, m: Mask, member) -> np.ndarray:
    act = np.ones(st.n, bool) if m is None else m
    lane = np.arange(st.n) & 31
    mem = np.broadcast_to(np.asarray(member, np.uint64), (st.n,))
    return act & (((mem >> lane.astype(np.uint64)) & np.uint64(1)) == 1)


def build_shfl(inst: Instruction, ctx: DecodeContext):
    mode = next(x for x in inst.mods if x in ("up", "down", "bfly", "idx"))
    u32 = TYPES["b32"]
    dst, pdst = pair(inst.operands[0])
    a, b, c = (reader(inst.operands[i], u32, ctx) for i in (1, 2, 3))
    d = writer(dst, u32, ctx)
    pd = writer(pdst, TYPES["pred"], ctx) if pdst is not None else None

    def run(st, m):
        lane = (np.arange(st.n) & 31).astype(np.int64)
        bval = np.asarray(b(st)).astype(np.int64) & 31
        cv = np.asarray(c(st)).astype(np.int64)
        cval, seg = cv & 31, (cv >> 8) & 31
        max_lane = (lane & seg) | (cval & ~seg)
        min_lane = lane & seg
        if mode == "up":
            j = lane - bval
            ok = j >= max_lane
        elif mode == "down":
            j = lane + bval
            ok = j <= max_lane
        elif mode == "bfly":
            j = lane ^ bval
            ok = j <= max_lane
        else:
            j = min_lane | (bval & ~seg)
            ok = j <= max_lane
        src = (np.arange(st.n) - lane) + np.where(ok, j, lane)
        ok &= src < st.n
        src = np.where(src < st.n, src, np.arange(st.n))
        vals = np.broadcast_to(np.asarray(a(st)), (st.n,))
        d(st, vals[src], m)
        if pd:
            pd(st, ok, m)
    return run


def build_vote(inst: Instruction, ctx: DecodeContext):
    mode = next(x for x in inst.mods if x in ("all", "any", "uni", "ballot"))
    p = reader(inst.operands[1], TYPES["pred"], ctx)
    member = reader(inst.operands[2], TYPES["b32"], ctx)
    d = writer(inst.operands[0], TYPES["b32"] if mode == "ballot" else TYPES["pred"], ctx)

    def run(st, m):
        act = _by_warp(st, _active(st, m, member(st)), False)
        v = _by_warp(st, np.broadcast_to(p(st), (st.n,)), False) & act
        if mode == "ballot":
            bits = (v.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
            r = np.repeat(bits, 32)
        elif mode == "all":
            r = np.repeat((v == act).all(axis=1), 32)
        elif mode == "any":
            r = np.repeat(v.any(axis=1), 32)
        else:
            r = np.repeat((v == act).all(axis=1) | (~v).all(axis=1), 32)
        d(st, r[: st.n], m)
    return run


def build_activemask(inst: Instruction, ctx: DecodeContext):
    d = writer(inst.operands[0], TYPES["b32"], ctx)

    def run(st, m):
        act = _by_warp(st, np.ones(st.n, bool) if m is None else m, False)
        bits = (act.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        d(st, np.repeat(bits, 32)[: st.n], m)
    return run


_REDUX = {"add": (np.add, 0), "min": (np.minimum, None), "max": (np.maximum, None),
          "and": (np.bitwise_and, -1), "or": (np.bitwise_or, 0), "xor": (np.bitwise_xor, 0)}


def build_redux(inst: Instruction, ctx: DecodeContext):
    op = next(x for x in inst.mods if x in _REDUX)
    t = find_type(inst.mods)
    a = reader(inst.operands[1], t, ctx)
    member = reader(inst.operands[2], TYPES["b32"], ctx)
    d = writer(inst.operands[0], t, ctx)
    ufunc, ident = _REDUX[op]

    def run(st, m):
        if ident is None:
            info = np.iinfo(t.dtype)
            fill = info.max if op == "min" else info.min
        else:
            fill = np.asarray(ident).astype(t.dtype)
        act = _by_warp(st, _active(st, m, member(st)), False)
        v = _by_warp(st, np.broadcast_to(np.asarray(a(st)).astype(t.dtype), (st.n,)), 0)
        r = ufunc.reduce(np.where(act, v, np.asarray(fill).astype(t.dtype)), axis=1).astype(t.dtype)
        d(st, np.repeat(r, 32)[: st.n], m)
    return run


def build_match(inst: Instruction, ctx: DecodeContext):
    mode = next(x for x in inst.mods if x in ("any", "all"))
    t = find_type(inst.mods)
    dst, pdst = pair(inst.operands[0])
    a = reader(inst.operands[1], t, ctx)
    member = reader(inst.operands[2], TYPES["b32"], ctx)
    d = writer(dst, TYPES["b32"], ctx)
    pd = writer(pdst, TYPES["pred"], ctx) if pdst is not None else None

    def run(st, m):
        act = _by_warp(st, _active(st, m, member(st)), False)
        v = _by_warp(st, np.broadcast_to(np.asarray(a(st)), (st.n,)), 0)
        same = (v[:, :, None] == v[:, None, :]) & act[:, None, :]
        bits = (same.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
        if mode == "all":
            allsame = (same.sum(axis=2) == act.sum(axis=1, keepdims=True))
            bits = np.where(allsame, bits, 0).astype(np.uint64)
            if pd:
                pd(st, allsame.reshape(-1)[: st.n], m)
        d(st, bits.reshape(-1)[: st.n], m)
    return run


HANDLERS = {"shfl": build_shfl, "vote": build_vote, "activemask": build_activemask, "redux": build_redux,
            "match": build_match}
