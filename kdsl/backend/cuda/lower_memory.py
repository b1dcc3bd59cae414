"""Global loads and stores: one access per group of registers, predicated by its mask.

A group is `vector_width` consecutive registers of the layout's register run
(consecutive elements along one dimension in one thread) that the axis analysis
shows to be consecutive in memory, aligned to the group's size, and under one
mask value: it becomes one LLVM vector load or store (`<4 x float>`, `align 16`),
which NVPTX emits as `ld.global.v4`/`st.global.v4`, inside a branch on the mask.
Otherwise a group is one register: one access per element. A store moves its value to a layout
whose groups are wider where that pays (`store_layout`).

A block store writes each element once: registers that are copies are
skipped, and lanes and warps that hold copies (the free bits of the layout
set) write nothing; a scalar store, a block of rank 0, comes from thread 0 only. Masked-off loads
give `other`, or zero where there is none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I32, from_memory, mem_type, to_memory
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs, pack, type_bytes, unpack
from kdsl.ir.core import Operation, Value
from kdsl.ir.passes.axis_info import AxisInfo, pow2_divisor
from kdsl.ir.types import PointerType

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

MAX_VECTOR_BYTES = 16  # the widest global access: ld.global.v4.b32

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


def _access_type(elem, width: int) -> tuple[ir.Type, int]:
    """The LLVM type of `width` consecutive elements in memory, and its alignment."""
    memory_type = mem_type(elem)
    return (memory_type if width == 1 else ir.VectorType(memory_type, width)), width * type_bytes(memory_type)


def _load_run(b: ir.IRBuilder, address: ir.Value, mask: ir.Value | None, others: list[ir.Value] | None,
              elem, width: int) -> list[ir.Value]:
    """`width` consecutive elements from `address` in one access where `mask` holds, else `others` (or zeros)."""
    typ, align = _access_type(elem, width)
    fallback = pack(b, [to_memory(b, o, elem) for o in others]) if others is not None else ir.Constant(typ, None)
    loaded = guarded(b, mask, lambda: b.load(address, typ=typ, align=align), fallback)
    return [from_memory(b, v, elem) for v in unpack(b, loaded, width)]


def _store_run(b: ir.IRBuilder, address: ir.Value, values: list[ir.Value], condition: ir.Value | None,
               elem) -> None:
    """`values` to consecutive elements from `address` in one access where `condition` holds."""
    _, align = _access_type(elem, len(values))
    packed = pack(b, [to_memory(b, v, elem) for v in values])
    if condition is None:
        b.store(packed, address, align=align)
        return
    with b.if_then(condition):
        b.store(packed, address, align=align)


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


def coalesced_order(info: AxisInfo) -> tuple[int, ...]:
    """A block's dimensions for a load's layout, fastest first: the pointer's longest contiguous
    runs first (ties keep the last dimension first), as Triton's coalescing pass orders them."""
    return tuple(sorted(reversed(range(info.rank)), key=lambda d: -info.contiguity[d]))


def vector_width(low: KernelLowering, layout: LinearLayout, ptr: Value, mask: Value | None, elem) -> int:
    """How many consecutive registers of `layout` one access covers (a power of two): within the
    layout's register run, at most 16 bytes, within one contiguous run of the pointer, aligned to
    the access size by the pointer's divisibility, and under one mask value (its constancy)."""
    if isinstance(elem, PointerType):
        return 1
    dim, run = layout.register_run()
    nbytes = type_bytes(mem_type(elem))
    info = low.axis[ptr]
    limits = [run, MAX_VECTOR_BYTES // nbytes, pow2_divisor(info.contiguity[dim]), info.divisibility[dim] // nbytes]
    if mask is not None and mask.type.is_block:
        limits.append(pow2_divisor(low.axis[mask].constancy[dim]))
    width = max(1, min(limits))
    return 1 << (width.bit_length() - 1)


def store_layout(low: KernelLowering, value: Value, ptr: Value, mask: Value | None) -> LinearLayout:
    """The layout a block store runs in: its value's (or, for index arithmetic, its first computed
    operand's), unless the default layout ordered along the pointer's contiguity gives wider
    vectors and the pointer and mask are index arithmetic recomputed in any layout. Then the value
    moves there (through shared memory, once, as Triton's coalescing pass converts a `dot`'s
    accumulator for the epilogue's store): a round trip that pays back in fewer, wider stores."""
    elem = value.type.scalar
    operands = [value, ptr] + ([mask] if mask is not None else [])
    layout = low.layout_for(operands, value.type)
    if not all(low.rematerialized(v) for v in operands[1:] if v.type.is_block):
        return layout
    coalesced = low.default_layout(value.type, coalesced_order(low.axis[ptr]))
    wider = vector_width(low, coalesced, ptr, mask, elem) > vector_width(low, layout, ptr, mask, elem)
    return coalesced if wider else layout


def load(low: KernelLowering, op: Operation) -> None:
    ptr, mask, other = (op.operands + [None, None])[:3]
    t = op.result.type
    elem = t.scalar
    if not t.is_block:
        m, o = (None if v is None else low.values[v] for v in (mask, other))
        low.define(op, _load_run(low.b, low.values[ptr], m, None if o is None else [o], elem, 1)[0])
        return
    layout = low.layout_for(op.operands, t, coalesced_order(low.axis[ptr]))
    n = layout.num_registers
    width = vector_width(low, layout, ptr, mask, elem)
    ptrs = low.block(ptr, layout).values
    masks = low.block(mask, layout).values if mask is not None else [None] * n
    others = low.block(other, layout).values if other is not None else None
    values: list[ir.Value] = []
    for r in range(0, n, width):
        values += _load_run(low.b, ptrs[r], masks[r], others and others[r:r + width], elem, width)
    low.define(op, Regs(layout, values))


def store(low: KernelLowering, op: Operation) -> None:
    ptr, value, mask = (op.operands + [None])[:3]
    elem = value.type.scalar
    b = low.b
    if not value.type.is_block:
        thread0 = owner(low, L.scalar(low.num_warps))
        _store_run(b, low.values[ptr], [low.values[value]], both(b, thread0, mask and low.values[mask]), elem)
        return
    layout = store_layout(low, value, ptr, mask)
    n = layout.num_registers
    width = vector_width(low, layout, ptr, mask, elem)
    ptrs, values = low.block(ptr, layout).values, low.block(value, layout).values
    masks = low.block(mask, layout).values if mask is not None else [None] * n
    acting = owner(low, layout)
    copies = sum(1 << bit for bit in layout.free_bits("register"))
    for r in range(0, n, width):
        if r & copies == 0:
            _store_run(b, ptrs[r], values[r:r + width], both(b, masks[r], acting), elem)
