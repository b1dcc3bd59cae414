"""Global loads and stores: one access per register, predicated by its mask element.

A block store writes each element once: registers that are copies are
skipped, and lanes and warps that hold copies (the free bits of the layout
set) write nothing; a scalar store, a block of rank 0, comes from thread 0 only. Masked-off loads
give `other`, or zero where there is none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I32, from_memory, mem_type, reg_type, to_memory
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs, type_bytes
from kdsl.ir.core import Operation

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering


def guarded(b: ir.IRBuilder, condition: ir.Value | None, make: Callable[[], ir.Value], fallback: ir.Value) -> ir.Value:
    """`make()` emitted where `condition` holds (always when None), else `fallback`."""
    if condition is None:
        return make()
    before = b.block
    with b.if_then(condition):
        made = make()
        made_in = b.block
    merged = b.phi(made.type)
    merged.add_incoming(made, made_in)
    merged.add_incoming(fallback, before)
    return merged


def _load_one(b: ir.IRBuilder, address: ir.Value, mask: ir.Value | None, other: ir.Value | None, elem) -> ir.Value:
    memory_type = mem_type(elem)

    def read() -> ir.Value:
        return from_memory(b, b.load(address, typ=memory_type, align=type_bytes(memory_type)), elem)
    return guarded(b, mask, read, other if other is not None else ir.Constant(reg_type(elem), None))


def _store_one(b: ir.IRBuilder, address: ir.Value, value: ir.Value, condition: ir.Value | None, elem) -> None:
    memory_type = mem_type(elem)

    def write() -> None:
        b.store(to_memory(b, value, elem), address, align=type_bytes(memory_type))
    if condition is None:
        write()
        return
    with b.if_then(condition):
        write()


def both(b: ir.IRBuilder, x: ir.Value | None, y: ir.Value | None) -> ir.Value | None:
    return y if x is None else x if y is None else b.and_(x, y)


def owner(low: KernelLowering, layout: LinearLayout) -> ir.Value | None:
    """True in the one thread of each group holding the same elements (its free lane and warp bits zero)."""
    def make() -> ir.Value | None:
        condition = None
        for name, index in (("lane", low.lane), ("warp", low.warp)):
            free = sum(1 << bit for bit in layout.free_bits(name))
            if free:
                clear = low.b.icmp_unsigned("==", low.b.and_(index, ir.Constant(I32, free)), ir.Constant(I32, 0))
                condition = both(low.b, condition, clear)
        return condition
    return low.cached(("owner", layout), make)


def load(low: KernelLowering, op: Operation) -> None:
    ptr, mask, other = (op.operands + [None, None])[:3]
    t = op.result.type
    elem = t.scalar
    if not t.is_block:
        operands = [None if v is None else low.values[v] for v in (mask, other)]
        low.define(op, _load_one(low.b, low.values[ptr], *operands, elem))
        return
    layout = low.layout_for(op.operands, t)
    n = layout.num_registers
    ptrs = low.block(ptr, layout).values
    masks = low.block(mask, layout).values if mask is not None else [None] * n
    others = low.block(other, layout).values if other is not None else [None] * n
    low.define(op, Regs(layout, [_load_one(low.b, p, m, o, elem) for p, m, o in zip(ptrs, masks, others)]))


def store(low: KernelLowering, op: Operation) -> None:
    ptr, value, mask = (op.operands + [None])[:3]
    elem = value.type.scalar
    b = low.b
    if not value.type.is_block:
        thread0 = owner(low, L.scalar(low.num_warps))
        _store_one(b, low.values[ptr], low.values[value], both(b, thread0, mask and low.values[mask]), elem)
        return
    layout = low.layout_for([value, ptr] + ([mask] if mask is not None else []), value.type)
    n = layout.num_registers
    ptrs, values = low.block(ptr, layout).values, low.block(value, layout).values
    masks = low.block(mask, layout).values if mask is not None else [None] * n
    acting = owner(low, layout)
    copies = sum(1 << bit for bit in layout.free_bits("register"))
    for r in range(n):
        if r & copies == 0:
            _store_one(b, ptrs[r], values[r], both(b, masks[r], acting), elem)
