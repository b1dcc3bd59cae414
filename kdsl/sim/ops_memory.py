"""Memory instructions: ld/st (§9.7.9.8-9), atom/red (§9.7.13.5-6), cp.async (§9.7.9.25), cvta, param space."""
from __future__ import annotations

import numpy as np

from kdsl.sim.cta import CtaState, Mask
from kdsl.sim.memory import LOCAL_WINDOW, SHARED_WINDOW, WINDOW_SIZE, gather, scatter
from kdsl.sim.operands import DecodeContext, address, reader, vector_items, writer
from kdsl.sim.ops_float import pack_half2, unpack_half2, round_half
from kdsl.sim.parser import Instruction
from kdsl.sim.types import TYPES, PtxType, bf16_to_f32, find_type, from_bits

_SPACES = ("global", "shared", "local", "param", "const")


def _space(inst: Instruction, implied: str | None) -> str:
    found = next((m for m in inst.mods if m in _SPACES), None)
    return found or implied or "generic"


def _lanes(st: CtaState, m: Mask) -> np.ndarray:
    return np.arange(st.n) if m is None else np.flatnonzero(m)


def _addresses(addr, st: CtaState, lanes: np.ndarray) -> np.ndarray:
    a = np.asarray(addr(st), np.uint64)
    return a[lanes] if a.ndim else np.full(lanes.size, a, np.uint64)


def _check_vector_alignment(st: CtaState, addrs: np.ndarray, count: int, size: int, text: str,
                            lanes: np.ndarray) -> None:
    """A vector access (`.v2`, `.v4`) must be aligned to its whole size, not only to its elements'."""
    if count > 1:
        bad = np.flatnonzero(addrs % np.uint64(count * size))
        if bad.size:
            raise st.fault(text, int(lanes[bad[0]]), int(addrs[bad[0]]), f"misaligned {count * size}-byte vector access")


def _param_reader(inst: Instruction, ctx: DecodeContext, t: PtxType, count: int):
    op = inst.operands[1] if inst.opcode == "ld" else inst.operands[0]
    name, off = op.base.name, op.offset

    def read(st: CtaState):
        buf = st.params[name]
        return [buf[:, off + i * t.size: off + (i + 1) * t.size].copy().view(t.udtype)[:, 0] for i in range(count)]

    def write(st: CtaState, values: list, m: Mask):
        need = off + count * t.size
        buf = st.params.setdefault(name, np.zeros((st.n, need), np.uint8))
        if buf.shape != (st.n, max(need, buf.shape[1])):
            grown = np.zeros((st.n, max(need, buf.shape[1])), np.uint8)
            grown[:, : buf.shape[1]] = buf
            buf = st.params[name] = grown
        rows = _lanes(st, m)
        for i, v in enumerate(values):
            chunk = np.broadcast_to(np.asarray(v).astype(t.udtype), (st.n,))[rows]
            buf[rows, off + i * t.size: off + (i + 1) * t.size] = chunk.view(np.uint8).reshape(rows.size, t.size)
    return read, write


def build_ld(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    dests = vector_items(inst.operands[0])
    addr, implied = address(inst.operands[1], ctx)
    space = _space(inst, implied)
    writers = [writer(d, t, ctx) for d in dests]
    if space == "param" and addr is None:
        read, _ = _param_reader(inst, ctx, t, len(dests))
        
        def run_param(st, m):
            for w, v in zip(writers, read(st)):
                w(st, from_bits(v, t), m)
        return run_param
    text, size = inst.text, t.size

    def run(st, m):
        lanes = _lanes(st, m)
        addrs = _addresses(addr, st, lanes)
        _check_vector_alignment(st, addrs, len(dests), size, text, lanes)
        out = [np.zeros(st.n, t.udtype) for _ in dests]
        for i in range(len(dests)):
            for acc in st.resolve(space, addrs + np.uint64(i * size), size, text, lanes):
                out[i][lanes[acc.lanes]] = gather(acc.buffer, acc.offsets, t.udtype)
        for w, v in zip(writers, out):
            w(st, from_bits(v, t), m)
    return run


def build_st(inst: Instruction, ctx: DecodeContext):
    t = find_type(inst.mods)
    srcs = vector_items(inst.operands[1])
    addr, implied = address(inst.operands[0], ctx)
    space = _space(inst, implied)
    bt = TYPES[f"b{t.bits}"] if t.bits in (8, 16, 32, 64) else t
    readers = [reader(s, bt, ctx) for s in srcs]
    if space == "param" and addr is None:
        _, write = _param_reader(inst, ctx, bt, len(srcs))
        return lambda st, m: write(st, [r(st) for r in readers], m)
    text, size = inst.text, t.size

    def run(st, m):
        lanes = _lanes(st, m)
        addrs = _addresses(addr, st, lanes)
        _check_vector_alignment(st, addrs, len(readers), size, text, lanes)
        for i, r in enumerate(readers):
            v = np.broadcast_to(np.asarray(r(st)).astype(bt.udtype), (st.n,))[lanes]
            for acc in st.resolve(space, addrs + np.uint64(i * size), size, text, lanes):
                scatter(acc.buffer, acc.offsets, v[acc.lanes])
    return run


def _atomic_fn(op: str, t: PtxType):
    """new = f(old, b, c) for one atom/red operation; values are of t's numpy type."""
    half = t.name[:-2] if t.kind == "x2" else None
    if half:
        if op != "add":
            return None
        return lambda old, b, c: pack_half2(unpack_half2(old, half) + unpack_half2(b, half), half)
    if t.kind == "bf":
        if op != "add":
            return None
        return lambda old, b, c: round_half(bf16_to_f32(old).astype(np.float64) + bf16_to_f32(b), "bf16")
    table = {"add": lambda o, b, c: o + b, "min": lambda o, b, c: np.minimum(o, b),
             "max": lambda o, b, c: np.maximum(o, b), "and": lambda o, b, c: o & b, "or": lambda o, b, c: o | b,
             "xor": lambda o, b, c: o ^ b, "exch": lambda o, b, c: b + o * 0,
             "cas": lambda o, b, c: np.where(o == b, c, o),
             "inc": lambda o, b, c: np.where(o >= b, 0, o + 1).astype(o.dtype),
             "dec": lambda o, b, c: np.where((o == 0) | (o > b), b, o - 1).astype(o.dtype)}
    return table.get(op)


def build_atom(inst: Instruction, ctx: DecodeContext):
    """Threads hitting one address are serialised in lane order, one round per repeat."""
    is_red = inst.opcode == "red"
    t = find_type(inst.mods)
    op = next(x for x in inst.mods if x in ("add", "min", "max", "and", "or", "xor", "exch", "cas", "inc", "dec"))
    fn = _atomic_fn(op, t)
    if fn is None:
        raise ctx.unsupported(f"atomic .{op} on .{t.name}")
    first = 0 if is_red else 1
    addr, implied = address(inst.operands[first], ctx)
    space = _space(inst, implied)
    vt = TYPES[f"b{t.bits}"] if t.kind in ("b", "x2", "bf") else t
    b = reader(inst.operands[first + 1], vt, ctx)
    c = reader(inst.operands[first + 2], vt, ctx) if op == "cas" else (lambda st: np.asarray(0, vt.dtype))
    d = None if is_red else writer(inst.operands[0], vt, ctx)
    text, size = inst.text, t.size
    store_dtype = vt.udtype

    def run(st, m):
        lanes = _lanes(st, m)
        addrs = _addresses(addr, st, lanes)
        bv = np.broadcast_to(np.asarray(b(st), vt.dtype), (st.n,))[lanes]
        cv = np.broadcast_to(np.asarray(c(st), vt.dtype), (st.n,))[lanes]
        old_all = np.zeros(st.n, vt.dtype)
        for acc in st.resolve(space, addrs, size, text, lanes):
            todo = np.arange(acc.offsets.size)
            while todo.size:
                _, first_idx = np.unique(acc.offsets[todo], return_index=True)
                now = todo[np.sort(first_idx)]
                old = gather(acc.buffer, acc.offsets[now], store_dtype).view(vt.dtype)
                new = np.asarray(fn(old, bv[acc.lanes[now]], cv[acc.lanes[now]])).astype(vt.dtype)
                scatter(acc.buffer, acc.offsets[now], new.view(store_dtype))
                old_all[lanes[acc.lanes[now]]] = old
                todo = np.setdiff1d(todo, now, assume_unique=True)
        if d is not None:
            d(st, old_all, m)
    return run


def build_cp_async(inst: Instruction, ctx: DecodeContext):
    """A copy reads its source at once and lands when a wait needs it (`async_copies`)."""
    if "commit_group" in inst.mods:
        return lambda st, m: st.copies.commit(_lanes(st, m))
    if "wait_group" in inst.mods:
        newest = int(inst.operands[0].value)
        return lambda st, m: st.copies.wait(_lanes(st, m), newest)
    if "wait_all" in inst.mods:
        def wait_all(st, m):
            lanes = _lanes(st, m)
            st.copies.commit(lanes)
            st.copies.wait(lanes, 0)
        return wait_all
    dst, _ = address(inst.operands[0], ctx)
    src, _ = address(inst.operands[1], ctx)
    cp_size = int(inst.operands[2].value)
    u32 = TYPES["u32"]
    src_size = reader(inst.operands[3], u32, ctx) if len(inst.operands) > 3 and not _is_pred(inst.operands[3]) else None
    ignore = reader(inst.operands[-1], TYPES["pred"], ctx) if _is_pred(inst.operands[-1]) else None
    text = inst.text

    def run(st, m):
        lanes = _lanes(st, m)
        s_addr, d_addr = _addresses(src, st, lanes), _addresses(dst, st, lanes)
        n_src = np.full(lanes.size, cp_size) if src_size is None else \
            np.broadcast_to(np.asarray(src_size(st), np.int64), (st.n,))[lanes]
        if ignore is not None:
            n_src = np.where(np.broadcast_to(ignore(st), (st.n,))[lanes], 0, n_src)
        data = np.zeros((lanes.size, cp_size), np.uint8)
        for k in range(cp_size):
            reading = np.flatnonzero(k < n_src)
            if reading.size:
                for acc in st.resolve("global", s_addr[reading] + np.uint64(k), 1, text, lanes[reading]):
                    data[reading[acc.lanes], k] = acc.buffer[acc.offsets.astype(np.intp)]
        st.resolve("shared", d_addr, cp_size, text, lanes)  # bounds and cp-size alignment
        for acc in st.resolve("shared", d_addr, 1, text, lanes):
            idx = acc.offsets.astype(np.intp)[:, None] + np.arange(cp_size)
            st.copies.issue(lanes[acc.lanes], acc.buffer, idx, data[acc.lanes])
    return run


def _is_pred(op) -> bool:
    return getattr(op, "name", "").startswith("%p")


_WINDOWS = {"shared": SHARED_WINDOW, "local": LOCAL_WINDOW, "global": 0, "const": 0, "param": 0}


def build_cvta(inst: Instruction, ctx: DecodeContext):
    space = next(m for m in inst.mods if m in _WINDOWS)
    base = np.uint64(_WINDOWS[space])
    t = find_type(inst.mods)
    a = reader(inst.operands[1], t, ctx)
    d = writer(inst.operands[0], t, ctx)
    if "to" in inst.mods:
        return lambda st, m: d(st, np.asarray(a(st), np.uint64) - base, m)
    return lambda st, m: d(st, np.asarray(a(st), np.uint64) + base, m)


def build_isspacep(inst: Instruction, ctx: DecodeContext):
    """§9.7.9.19: whether a generic address lies in the shared or local window (else global)."""
    space = next(m for m in inst.mods if m in _WINDOWS)
    a = reader(inst.operands[1], TYPES["u64"], ctx)
    d = writer(inst.operands[0], TYPES["pred"], ctx)

    def inside(v, base):
        return (v >= np.uint64(base)) & (v < np.uint64(base + WINDOW_SIZE))

    def run(st, m):
        v = np.asarray(a(st), np.uint64)
        sh, lo = inside(v, SHARED_WINDOW), inside(v, LOCAL_WINDOW)
        r = {"shared": sh, "local": lo, "global": ~(sh | lo)}.get(space, np.zeros_like(sh))
        d(st, r, m)
    return run


def build_noop(inst: Instruction, ctx: DecodeContext):
    """Fences, prefetches and cache hints: ordering and caching are not observable in this simulator."""
    return lambda st, m: None


HANDLERS = {"ld": build_ld, "ldu": build_ld, "st": build_st, "atom": build_atom, "red": build_atom,
            "cp": build_cp_async, "cvta": build_cvta, "isspacep": build_isspacep, "membar": build_noop, "fence": build_noop,
            "prefetch": build_noop, "prefetchu": build_noop}
