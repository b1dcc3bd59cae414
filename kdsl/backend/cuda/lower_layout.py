"""Blocks in registers: the coordinates a thread holds, and conversions between layouts.

A conversion stays in registers when both layouts put every element in the
same threads (a register permutation, copies included); otherwise every
thread writes its elements to shared memory at their row-major index, the CTA
waits, and every thread reads the elements its new layout gives it.
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


def thread_coordinates(b: ir.IRBuilder, layout: LinearLayout, lane: ir.Value, warp: ir.Value) -> list[list[ir.Value]]:
    """Per register, the i32 coordinates (one per dimension) of the element this thread holds there."""
    thread = [ir.Constant(I32, 0)] * layout.rank
    for name, index in (("lane", lane), ("warp", warp)):
        for bit, basis in enumerate(layout.bases(name)):
            if not any(basis):
                continue
            on = _bit(b, index, bit)
            thread = [t if c == 0 else b.xor(t, b.mul(on, ir.Constant(I32, c))) for t, c in zip(thread, basis)]
    return [[t if c == 0 else b.xor(t, ir.Constant(I32, c)) for t, c in zip(thread, layout.combine("register", r))]
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


def through_shared(low: KernelLowering, regs: Regs, target: LinearLayout, writer: ir.Value | None = None) -> Regs:
    """Every thread (or only those where `writer` holds) writes its elements to shared memory at
    their row-major index; after a barrier every thread reads those of `target`."""
    b = low.b
    reg_type = regs.values[0].type
    slot_type = I8 if reg_type == I1 else reg_type
    low.shared.reserve(prod(target.shape) * type_bytes(slot_type))

    sources = low.coordinates(regs.layout)  # outside the branch: cached for later uses

    def write() -> None:
        for value, coords in zip(regs.values, sources):
            address = low.shared.address(b, row_major_index(b, coords, regs.layout.shape), slot_type)
            b.store(b.zext(value, I8) if reg_type == I1 else value, address)
    if writer is None:
        write()
    else:
        with b.if_then(writer):
            write()
    barrier(b)
    values = []
    for coords in low.coordinates(target):
        address = low.shared.address(b, row_major_index(b, coords, target.shape), slot_type)
        value = b.load(address, typ=slot_type)
        values.append(b.trunc(value, I1) if reg_type == I1 else value)
    barrier(b)
    return Regs(target, values)


def type_bytes(t: ir.Type) -> int:
    """The size of an LLVM scalar or pointer in memory."""
    if isinstance(t, ir.IntType):
        return max(1, t.width // 8)
    return {"half": 2, "float": 4, "double": 8}.get(str(t), 8)
