"""Blocks in registers: the coordinates a thread holds, and conversions between layouts.

A conversion stays in registers when both layouts put every element in the
same threads (a register permutation, copies included); otherwise every
thread writes its elements to shared memory at their row-major index (rows
padded against bank conflicts), the CTA waits, and every thread reads the
elements its new layout gives it.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I1, I8, I32
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.nvvm import barrier

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering


@dataclass
class Regs:
    """A block value in one thread: `values[r]` is register r of `layout`."""

    layout: LinearLayout
    values: list[ir.Value]


def _bit(b: ir.IRBuilder, index: ir.Value, bit: int) -> ir.Value:
    return b.and_(b.lshr(index, ir.Constant(I32, bit)), ir.Constant(I32, 1))


def _disjoint(layout: LinearLayout, dim: int) -> bool:
    """Whether no two bases of `layout` share a bit along `dim`: there XOR is addition."""
    seen = 0
    for name in ("register", "lane", "warp"):
        for basis in layout.bases(name):
            if seen & basis[dim]:
                return False
            seen |= basis[dim]
    return True


def thread_coordinates(b: ir.IRBuilder, layout: LinearLayout, lane: ir.Value, warp: ir.Value) -> list[list[ir.Value]]:
    """Per register, the i32 coordinates (one per dimension) of the element this thread holds there.

    Along a dimension whose bases share no bits the terms are added, not XORed, so that LLVM folds
    each register's constant into the addresses computed from it."""
    combine = [b.add if _disjoint(layout, d) else b.xor for d in range(layout.rank)]
    thread = [ir.Constant(I32, 0)] * layout.rank
    for name, index in (("lane", lane), ("warp", warp)):
        for bit, basis in enumerate(layout.bases(name)):
            if not any(basis):
                continue
            on = _bit(b, index, bit)
            thread = [t if c == 0 else f(t, b.mul(on, ir.Constant(I32, c))) for t, c, f in zip(thread, basis, combine)]
    return [[t if c == 0 else f(t, ir.Constant(I32, c)) for t, c, f in zip(thread, layout.combine("register", r), combine)]
            for r in range(layout.num_registers)]


def row_major_index(b: ir.IRBuilder, coords: list[ir.Value], shape: tuple[int, ...]) -> ir.Value:
    index = ir.Constant(I32, 0)
    for c, n in zip(coords, shape):
        index = b.add(b.mul(index, ir.Constant(I32, n)), c)
    return index


def _in_registers(regs: Regs, target: LinearLayout) -> list[ir.Value] | None:
    """Target register r's value from the register of the same thread holding its element, if all are there."""
    if not regs.layout.same_threads(target):
        return None
    where: dict[tuple, int] = {}
    for r in range(regs.layout.num_registers):
        where.setdefault(regs.layout.combine("register", r), r)
    sources = [where.get(target.combine("register", r)) for r in range(target.num_registers)]
    return None if None in sources else [regs.values[s] for s in sources]


def convert(low: KernelLowering, regs: Regs, target: LinearLayout) -> Regs:
    """`regs` in layout `target` (of the same shape)."""
    if regs.layout == target:
        return regs
    moved = _in_registers(regs, target)
    if moved is not None:
        return Regs(target, moved)
    return through_shared(low, regs, target)


def pack(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
    """One value, or a vector of several."""
    if len(values) == 1:
        return values[0]
    vector: ir.Value = ir.Constant(ir.VectorType(values[0].type, len(values)), ir.Undefined)
    for i, v in enumerate(values):
        vector = b.insert_element(vector, v, ir.Constant(I32, i))
    return vector


def unpack(b: ir.IRBuilder, value: ir.Value, width: int) -> list[ir.Value]:
    return [value] if width == 1 else [b.extract_element(value, ir.Constant(I32, i)) for i in range(width)]


def _row_run(layout: LinearLayout, nbytes: int) -> int:
    """How many consecutive registers of `layout` are consecutive in a row-major copy of the block:
    its register run where that runs along the last dimension, up to 16 bytes."""
    dim, run = layout.register_run()
    return min(run, max(1, 16 // nbytes)) if dim == layout.rank - 1 else 1


def _padded(shape: tuple[int, ...], nbytes: int) -> tuple[int, ...]:
    """The shape of a block's copy in shared memory: rows (along the last dimension) 16 bytes
    longer than the block's where they are a multiple of 16 bytes, so that the rows a warp touches
    at once start in different banks (an mma accumulator's 8 rows of 4 lanes, a column's lanes)
    while every row stays 16-byte aligned for vector accesses."""
    if len(shape) < 2 or shape[-1] * nbytes % 16:
        return shape
    return shape[:-1] + (shape[-1] + 16 // nbytes,)


def through_shared(low: KernelLowering, regs: Regs, target: LinearLayout, writer: ir.Value | None = None) -> Regs:
    """Every thread (or only those where `writer` holds) writes its elements to shared memory at
    their row-major index in a `_padded` copy; after a barrier every thread reads those of
    `target`. Registers that are consecutive in the copy move as one vector access (`_row_run`)."""
    b = low.b
    reg_type = regs.values[0].type
    slot_type = I8 if reg_type == I1 else reg_type
    nbytes = type_bytes(slot_type)
    shape = _padded(target.shape, nbytes)
    low.shared.reserve(prod(shape) * nbytes)

    def vector_at(coords: list[ir.Value], width: int) -> tuple[ir.Value, ir.Type]:
        typ = slot_type if width == 1 else ir.VectorType(slot_type, width)
        address = low.shared.address(b, row_major_index(b, coords, shape), slot_type)
        return b.bitcast(address, ir.PointerType(typ, addrspace=3)), typ

    sources = low.coordinates(regs.layout)  # outside the branch: cached for later uses
    write_width = _row_run(regs.layout, nbytes)

    def write() -> None:
        for r in range(0, len(regs.values), write_width):
            address, _ = vector_at(sources[r], write_width)
            slots = [b.zext(v, I8) if reg_type == I1 else v for v in regs.values[r:r + write_width]]
            b.store(pack(b, slots), address, align=write_width * nbytes)
    if writer is None:
        write()
    else:
        with b.if_then(writer):
            write()
    barrier(b)
    values = []
    read_width = _row_run(target, nbytes)
    targets = low.coordinates(target)
    for r in range(0, target.num_registers, read_width):
        address, typ = vector_at(targets[r], read_width)
        slots = unpack(b, b.load(address, typ=typ, align=read_width * nbytes), read_width)
        values += [b.trunc(v, I1) if reg_type == I1 else v for v in slots]
    barrier(b)
    return Regs(target, values)


def type_bytes(t: ir.Type) -> int:
    """The size of an LLVM scalar or pointer in memory."""
    if isinstance(t, ir.IntType):
        return max(1, t.width // 8)
    return {"half": 2, "float": 4, "double": 8}.get(str(t), 8)
