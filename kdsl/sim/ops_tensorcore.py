"""Tensor-core instructions: mma.sync (§9.7.14.5), ldmatrix (§9.7.14.5.15), stmatrix, movmatrix.

Fragment layouts follow the ISA's tables "Matrix Fragments for mma.m16n8kK":
with g = %laneid >> 2 and t = %laneid % 4, element i of a thread's fragment
sits at the (row, col) computed by the functions below. Each warp's fragments
are scattered into whole matrices, multiplied in float64 (int64 for integer
types), and the product gathered back into D's fragments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kdsl.sim.cta import CtaState, Mask
from kdsl.sim.operands import DecodeContext, address, bits_reader, vector_items, writer
from kdsl.sim.parser import Instruction
from kdsl.sim.types import E4M3, E5M2, TYPES, bf16_to_f32, minifloat_to_f32

Layout = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def _acc_layout(g, t, i):
    """C/D for every m16n8 shape: c0,c1 in row g, c2,c3 in row g+8; cols 2t, 2t+1."""
    return g + 8 * (i >> 1), t * 2 + (i & 1)


# (A layout, B layout) per (k, element bits), each (g, t, i) -> (row, col).
_LAYOUTS: dict[tuple[int, int, str], tuple[Layout, Layout]] = {
    (8, 16, "h"): (lambda g, t, i: (g + 8 * (i >> 1), t * 2 + (i & 1)),
                   lambda g, t, i: (t * 2 + i, g)),
    (16, 16, "h"): (lambda g, t, i: (g + 8 * ((i >> 1) & 1), t * 2 + (i & 1) + 8 * (i >> 2)),
                    lambda g, t, i: (t * 2 + (i & 1) + 8 * (i >> 1), g)),
    (8, 32, "tf32"): (lambda g, t, i: (g + 8 * (i & 1), t + 4 * (i >> 1)),
                      lambda g, t, i: (t + 4 * i, g)),
    (16, 8, "b"): (lambda g, t, i: (g + 8 * (i >> 2), t * 4 + (i & 3)),
                   lambda g, t, i: (t * 4 + i, g)),
    (32, 8, "b"): (lambda g, t, i: (g + 8 * ((i >> 2) & 1), t * 4 + (i & 3) + 16 * (i >> 3)),
                   lambda g, t, i: (t * 4 + (i & 3) + 16 * (i >> 2), g)),
}

_ELEM_BITS = {"f16": 16, "bf16": 16, "tf32": 32, "s8": 8, "u8": 8, "e4m3": 8, "e5m2": 8}


def _decode_elements(raw: np.ndarray, kind: str) -> np.ndarray:
    """Raw element bits (uint) → float64/int64 values."""
    if kind == "f16":
        return raw.astype(np.uint16).view(np.float16).astype(np.float64)
    if kind == "bf16":
        return bf16_to_f32(raw.astype(np.uint16)).astype(np.float64)
    if kind == "tf32":
        # tf32 operands use the top 19 bits of the register.
        return (raw.astype(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    if kind == "s8":
        return raw.astype(np.uint8).view(np.int8).astype(np.int64)
    if kind == "u8":
        return raw.astype(np.int64)
    return minifloat_to_f32(raw.astype(np.uint8), E4M3 if kind == "e4m3" else E5M2).astype(np.float64)


@dataclass
class _Operand:
    """How one mma operand maps a warp's register fragments to a matrix."""

    rows: np.ndarray  # (32, elems)
    cols: np.ndarray
    shape: tuple[int, int]
    kind: str
    bits: int

    def to_matrix(self, regs: list[np.ndarray], warps: int) -> np.ndarray:
        per = 32 // self.bits
        raw = np.stack([(r.reshape(warps, 32, 1) >> (np.arange(per, dtype=np.uint64) * np.uint64(self.bits)))
                        & np.uint64((1 << self.bits) - 1) for r in regs], axis=2).reshape(warps, 32, -1)
        vals = _decode_elements(raw, self.kind)
        out = np.zeros((warps,) + self.shape, vals.dtype)
        out[:, self.rows, self.cols] = vals
        return out


def _operand(layout: Layout, count: int, shape: tuple[int, int], kind: str, bits: int) -> _Operand:
    lane = np.arange(32)[:, None]
    i = np.arange(count)[None, :]
    rows, cols = layout(lane >> 2, lane & 3, i)
    return _Operand(np.broadcast_to(rows, (32, count)), np.broadcast_to(cols, (32, count)), shape, kind, bits)


def build_mma(inst: Instruction, ctx: DecodeContext):
    shape = next(m for m in inst.mods if m.startswith("m") and "n" in m and "k" in m)
    m_, rest = shape[1:].split("n")
    n_, k_ = (int(x) for x in rest.split("k"))
    if int(m_) != 16 or n_ != 8 or "row" not in inst.mods or "col" not in inst.mods:
        raise ctx.unsupported(f"mma shape/layout {shape} (m16n8 row.col only)")
    types = [m for m in inst.mods if m in TYPES or m in _ELEM_BITS]
    dtype_, atype, btype, ctype = types if len(types) == 4 else (types[0], types[1], types[1], types[0])
    bits = _ELEM_BITS[atype]
    family = "h" if bits == 16 else ("tf32" if atype == "tf32" else "b")
    if (k_, bits, family) not in _LAYOUTS:
        raise ctx.unsupported(f"mma .{shape} with .{atype}")
    la, lb = _LAYOUTS[(k_, bits, family)]
    a_elems, b_elems = 16 * k_ // 32, 8 * k_ // 32
    A = _operand(la, a_elems, (16, k_), atype, bits)
    B = _operand(lb, b_elems, (k_, 8), btype, bits)
    C = _operand(_acc_layout, 4, (16, 8), ctype, 32)
    a_regs = [bits_reader(r, 32, ctx) for r in vector_items(inst.operands[1])]
    b_regs = [bits_reader(r, 32, ctx) for r in vector_items(inst.operands[2])]
    c_ops, d_ops = vector_items(inst.operands[3]), vector_items(inst.operands[0])
    acc_kind = "f16" if dtype_ == "f16" else ("s32" if ctype == "s32" else "f32")
    c_regs = [bits_reader(r, 32, ctx) for r in c_ops]
    d_writers = [writer(r, TYPES["b32"], ctx) for r in d_ops]

    def run(st: CtaState, m: Mask):
        warps = st.n // 32
        if warps * 32 != st.n:
            raise ctx.unsupported("mma.sync needs whole warps")
        a = A.to_matrix([np.broadcast_to(r(st), (st.n,)) for r in a_regs], warps)
        b = B.to_matrix([np.broadcast_to(r(st), (st.n,)) for r in b_regs], warps)
        c = _accumulator_matrix([np.broadcast_to(r(st), (st.n,)) for r in c_regs], acc_kind, C, warps)
        d = np.matmul(a, b) + c
        for w, v in zip(d_writers, _accumulator_registers(d[:, C.rows, C.cols].reshape(st.n, 4), acc_kind)):
            w(st, v, m)
    return run


def _accumulator_matrix(regs: list[np.ndarray], kind: str, C: _Operand, warps: int) -> np.ndarray:
    """C's registers → (warps, 16, 8) values; f16 accumulators are two f16x2 registers."""
    if kind == "f16":
        halves = [(regs[j // 2] >> np.uint64(16 * (j % 2))) & np.uint64(0xFFFF) for j in range(4)]
        vals = [v.astype(np.uint16).view(np.float16).astype(np.float64) for v in halves]
    elif kind == "s32":
        vals = [v.astype(np.uint32).view(np.int32).astype(np.int64) for v in regs]
    else:
        vals = [v.astype(np.uint32).view(np.float32).astype(np.float64) for v in regs]
    out = np.zeros((warps, 16, 8), vals[0].dtype)
    out[:, C.rows, C.cols] = np.stack(vals, axis=1).reshape(warps, 32, 4)
    return out


def _accumulator_registers(frag: np.ndarray, kind: str) -> list[np.ndarray]:
    """(threads, 4) results → D's register values (s32 wraps like the hardware)."""
    if kind == "f16":
        h = frag.astype(np.float16).view(np.uint16).astype(np.uint32)
        return [h[:, 0] | (h[:, 1] << np.uint32(16)), h[:, 2] | (h[:, 3] << np.uint32(16))]
    if kind == "s32":
        return [frag[:, j].astype(np.int64).astype(np.uint32) for j in range(4)]
    return [frag[:, j].astype(np.float32).view(np.uint32) for j in range(4)]


def _matrix_count(inst: Instruction) -> int:
    return int(next(m for m in inst.mods if m in ("x1", "x2", "x4"))[1])


def _fragment_index() -> tuple[np.ndarray, np.ndarray]:
    """Lane t holds row t//4, columns 2(t%4) and 2(t%4)+1 of an 8×8 b16 matrix."""
    lane = np.arange(32)
    return lane >> 2, (lane & 3) * 2


def _rows(st: CtaState, addr, space: str, count: int, text: str, m: Mask) -> tuple[list, np.ndarray]:
    """Per warp and matrix, the shared-memory byte offsets of the 8 rows (16 bytes each)."""
    warps = st.n // 32
    a = np.broadcast_to(np.asarray(addr(st), np.uint64), (st.n,)).reshape(warps, 32)[:, : 8 * count]
    lanes = (np.arange(warps)[:, None] * 32 + np.arange(8 * count)[None, :]).reshape(-1)
    accs = st.resolve(space, a.reshape(-1), 16, text, lanes)
    return accs, lanes


def build_ldmatrix(inst: Instruction, ctx: DecodeContext):
    count = _matrix_count(inst)
    trans = "trans" in inst.mods
    addr, implied = address(inst.operands[1], ctx)
    space = next((s for s in ("shared",) if s in inst.mods), implied or "generic")
    dests = [writer(d, TYPES["b32"], ctx) for d in vector_items(inst.operands[0])]
    r, c = _fragment_index()
    text = inst.text

    def run(st: CtaState, m: Mask):
        warps = st.n // 32
        data = np.zeros((warps * 8 * count, 8), np.uint16)
        for acc in _rows(st, addr, space, count, text, m)[0]:
            idx = acc.offsets.astype(np.intp)[:, None] + np.arange(16)
            data[acc.lanes] = acc.buffer[idx].view(np.uint16)
        mats = data.reshape(warps, count, 8, 8)
        if trans:
            mats = mats.transpose(0, 1, 3, 2)
        for j, w in enumerate(dests):
            lo, hi = mats[:, j, r, c], mats[:, j, r, c + 1]
            w(st, (lo.astype(np.uint32) | (hi.astype(np.uint32) << np.uint32(16))).reshape(-1), m)
    return run


def build_stmatrix(inst: Instruction, ctx: DecodeContext):
    count = _matrix_count(inst)
    trans = "trans" in inst.mods
    addr, implied = address(inst.operands[0], ctx)
    space = next((s for s in ("shared",) if s in inst.mods), implied or "generic")
    srcs = [bits_reader(s, 32, ctx) for s in vector_items(inst.operands[1])]
    r, c = _fragment_index()
    text = inst.text

    def run(st: CtaState, m: Mask):
        warps = st.n // 32
        mats = np.zeros((warps, count, 8, 8), np.uint16)
        for j, s in enumerate(srcs):
            v = np.broadcast_to(s(st), (st.n,)).reshape(warps, 32)
            mats[:, j, r, c] = v & np.uint64(0xFFFF)
            mats[:, j, r, c + 1] = v >> np.uint64(16)
        if trans:
            mats = mats.transpose(0, 1, 3, 2)
        data = np.ascontiguousarray(mats).reshape(-1, 8)
        for acc in _rows(st, addr, space, count, text, m)[0]:
            idx = acc.offsets.astype(np.intp)[:, None] + np.arange(16)
            acc.buffer[idx] = data[acc.lanes].view(np.uint8).reshape(-1, 16)
    return run


def build_movmatrix(inst: Instruction, ctx: DecodeContext):
    src = bits_reader(inst.operands[1], 32, ctx)
    d = writer(inst.operands[0], TYPES["b32"], ctx)
    r, c = _fragment_index()

    def run(st: CtaState, m: Mask):
        warps = st.n // 32
        v = np.broadcast_to(src(st), (st.n,)).reshape(warps, 32)
        mat = np.zeros((warps, 8, 8), np.uint16)
        mat[:, r, c], mat[:, r, c + 1] = v & np.uint64(0xFFFF), v >> np.uint64(16)
        t = mat.transpose(0, 2, 1)
        d(st, (t[:, r, c].astype(np.uint32) | (t[:, r, c + 1].astype(np.uint32) << np.uint32(16))).reshape(-1), m)
    return run


HANDLERS = {"mma": build_mma, "ldmatrix": build_ldmatrix, "stmatrix": build_stmatrix, "movmatrix": build_movmatrix}
