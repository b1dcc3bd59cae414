"""Operands of tensor-core dots copied global → shared with `cp.async`, as Triton stages them
(in a K loop `mma_pipeline` may issue the copies iterations ahead; elsewhere the copies are waited
for before the dot's ldmatrix).

A dot operand (`lower_mma.async_copies` picks them) takes this path when it is a `load` of 16-bit
elements (f16, bf16) that the dot alone uses, in the dot's region with no store, atomic or op with
regions between them (so the copy may happen at the dot), with no `other` or a zero `other`, and
whose pointer the axis analysis shows in runs of 8 contiguous elements, 16-byte aligned and under
one mask value (`lower_memory.vector_width`), in the layout of the copies: the pointer block's own
where it is computed (a loop-carried pointer block), else the default blocked layout ordered by the
pointer's contiguity with 16 bytes a thread (`full_vectors`). Where the pointer's own layout holds
shorter runs, the dot lowers the load as loads are, at the dot. The tile's rows run along the
runs' dimension (`mma_operands.Tile`), and each thread issues one
`cp.async.cg.shared.global [slot], [address], 16, src_size;` a run straight into its swizzled
16-byte slot, src_size 0 where the mask is false: the copy then fills the slot with zeros, which
is what a zero `other` asks for. Threads holding copies of a run (small blocks) issue nothing.
`cp.async.commit_group` and `cp.async.wait_group 0` follow, then the barrier before ldmatrix
(where not pipelined).
The dot owns such a load: `KernelLowering.load` leaves it to the dot, so it is read once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cpu.llvm_types import I8, I32
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_memory import coalesced_order, owner, vector_width
from kdsl.backend.cuda.mma_operands import CHUNK, Tile
from kdsl.backend.cuda.nvvm import SHARED_PTR
from kdsl.ir.core import Operation, OpResult, Value

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

ELEM_BYTES = 2
WRITES = ("store", "atomic_rmw", "atomic_cas")


def _is_zero(v: Value) -> bool:
    op = v.op if isinstance(v, OpResult) else None
    while op is not None and op.name in ("splat", "broadcast") and isinstance(op.operands[0], OpResult):
        op = op.operands[0].op
    if op is None or op.name != "constant":
        return False
    value = op.attrs["value"]
    return value == 0 and math.copysign(1.0, value) > 0  # zero-fill writes +0


def _copyable_at(load: Operation, dot: Operation) -> bool:
    """Whether the load may be read at the dot instead: in one region, nothing between may write memory."""
    region = load.parent
    if dot.parent is not region:
        return False
    between = region.ops[region.ops.index(load) + 1:region.ops.index(dot)]
    return not any(op.name in WRITES or op.regions for op in between)


def full_vectors(low: KernelLowering, load: Operation) -> LinearLayout:
    """The default layout with 16 bytes a thread along the pointer's contiguous runs."""
    ptr, t = load.operands[0], load.result.type
    return L.default_blocked(t.shape, low.num_warps, 8 * ELEM_BYTES, coalesced_order(low.axis[ptr]), full_vectors=True)


def _layout(low: KernelLowering, load: Operation) -> LinearLayout:
    """The layout the copies take: the pointer's own where it is computed (pointer blocks do not
    move through shared memory), else `full_vectors`."""
    ptr = load.operands[0]
    return full_vectors(low, load) if low.rematerialized(ptr) else low.block(ptr).layout


def in_runs(low: KernelLowering, load: Operation, layout: LinearLayout) -> bool:
    """Whether each aligned group of CHUNK bytes of `layout`'s registers is one copy."""
    ptr, mask = (load.operands + [None])[:2]
    return vector_width(low, layout, ptr, mask, load.result.type.scalar) == CHUNK // ELEM_BYTES


def eligible(low: KernelLowering, value: Value, dot: Operation, users: dict[Value, list[Operation]]) -> bool:
    """Whether `dot` takes its operand `value` with cp.async where the layout allows (`Copies.prepare`)."""
    op = value.op if isinstance(value, OpResult) else None
    if op is None or op.name != "load" or users.get(value) != [dot] or value.type.scalar.bits != 8 * ELEM_BYTES:
        return False
    other = (op.operands + [None, None])[2]
    if (other is not None and not _is_zero(other)) or not _copyable_at(op, dot):
        return False
    return in_runs(low, op, full_vectors(low, op))


@dataclass
class Copies:
    """A dot operand's `load` as copies of CHUNK bytes: its pointers and masks in `layout` (lowered,
    maybe through shared memory, before any operand is written there)."""

    layout: LinearLayout
    ptrs: list[ir.Value]
    masks: list[ir.Value] | None

    @classmethod
    def prepare(cls, low: KernelLowering, load: Operation) -> Copies | None:
        """The copies, or None where the pointer's layout does not hold CHUNK-byte runs (then the
        load is lowered as loads are, here)."""
        layout = _layout(low, load)
        if not in_runs(low, load, layout):
            return None
        ptr, mask = (load.operands + [None])[:2]
        masks = low.block(mask, layout).values if mask is not None else None
        return cls(layout, low.block(ptr, layout).values, masks)

    def issue(self, low: KernelLowering, start: int | ir.Value, pinned: bool = False) -> Tile:
        """The copies into a `Tile` from byte `start` (not yet waited for; `pinned`: see `Tile`)."""
        b = low.b
        layout = self.layout
        tile = Tile(layout.shape, layout.register_run()[0], ELEM_BYTES, start, pinned)
        run = CHUNK // ELEM_BYTES
        copies = sum(1 << bit for bit in layout.free_bits("register"))
        runs = []
        for r, coords in enumerate(low.coordinates(layout)):
            if r % run == 0 and not r & copies:
                slot = b.bitcast(tile.address(low.shared, b, coords), SHARED_PTR)
                runs.append((slot, self.ptrs[r], None if self.masks is None else self.masks[r]))
        acting = owner(low, layout)
        if acting is None:
            _copy_runs(b, runs)
        else:
            with b.if_then(acting):
                _copy_runs(b, runs)
        return tile


def _copy_runs(b: ir.IRBuilder, runs: list[tuple[ir.Value, ir.Value, ir.Value | None]]) -> None:
    """One `cp.async.cg` of CHUNK bytes a run; where masked, with src_size CHUNK or 0 (zero fill)."""
    for slot, address, mask in runs:
        name, args = "llvm.nvvm.cp.async.cg.shared.global.16", [slot, address]
        if mask is not None:
            name, args = name + ".s", args + [b.select(mask, ir.Constant(I32, CHUNK), ir.Constant(I32, 0))]
        b.call(declare(b.module, name, ir.VoidType(), [a.type for a in args]), args)


def commit_group(b: ir.IRBuilder) -> None:
    """`cp.async.commit_group`: this thread's copies issued since the last commit form a group."""
    b.call(declare(b.module, "llvm.nvvm.cp.async.commit.group", ir.VoidType(), []), [])


def wait_group(b: ir.IRBuilder, pending: int) -> None:
    """`cp.async.wait_group pending`: all but this thread's `pending` newest groups have landed (a
    barrier must still follow before other threads read them)."""
    b.call(declare(b.module, "llvm.nvvm.cp.async.wait.group", ir.VoidType(), [I32]), [ir.Constant(I32, pending)])


def wait_all(b: ir.IRBuilder) -> None:
    """Commit, then wait for every group: this thread's copies have landed."""
    commit_group(b)
    wait_group(b, 0)
