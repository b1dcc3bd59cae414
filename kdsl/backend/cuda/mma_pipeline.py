"""Software pipelining of K loops: a `for` loop's cp.async dot operands copied `num_stages` - 1
iterations ahead into `num_stages` shared-memory slots, as Triton's pipeliner does on sm_80.

A loop is pipelined (`plan`) when its body holds, at its top level, tensor-core dots with operands
that `mma_async` copies with cp.async from loads at the body's top level, in layouts that hold
16-byte runs (other operands, such as attention's K read transposed, are loaded at their dots as
ever), the body writes no
memory (nothing it stores could then be what an earlier copy read), and the loads' pointers and
masks are computed by pure ops of the body (index arithmetic, pointer arithmetic, shape ops) from
the induction variable, values from outside the loop and carried values whose next values are
computed the same way (the loop's *state*: typically the pointer blocks `a_ptrs += BLOCK_K * s`).

With S = num_stages the lowered loop runs so:

    prologue: for s in 0 .. S-2: copies of iteration s into slot s; commit_group
    iteration i (slot r = i mod S, its copies landed once the S-2 newer groups may still be pending):
        at the first pipelined dot: wait_group S-2; barrier;
            copies of iteration i+S-1 into slot (i-1) mod S; commit_group
        each dot: ldmatrix from slot r, mma
    after the loop: wait_group 0; barrier

The copies of an iteration are those of every pipelined load: its pointers and masks come from
lowering the slice of ops they depend on again, with the induction variable and the state bound
to that iteration's (`_prefetch`: the state runs S-1 iterations ahead of the loop's, carried by
extra phis, advanced by lowering the state's yields once more), and the mask is and-ed with
`iteration < end`: copies past the loop's end read nothing (src_size 0). Slot (i-1) mod S was read
in iteration i-1, which every thread has finished once it passes iteration i's barrier, so the one
barrier each iteration both publishes the landed copies and frees the slot the next copies fill;
a dot whose operands all come from slots needs no closing barrier.

The slots are pinned in shared memory (`SharedMemory.pinned`) from the prologue to the wait after
the loop; the other uses of shared memory in between (layout conversions, reductions, operands
staged from registers) start above them. Where S slots do not fit in the architecture's shared
memory, fewer stages are used (none below two).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I32
from kdsl.backend.cuda import mma_async
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.backend.cuda.mma_operands import BANKS_BYTES, Tile
from kdsl.backend.cuda.nvvm import barrier
from kdsl.ir.core import BlockArg, Operation, OpResult, Region, Value
from kdsl.ir.ops import ELEMENTWISE as ELEMENTWISE_TRAIT, has_trait

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

PURE = ("constant", "splat", "arange", "expand_dims", "broadcast", "permute", "reshape", "join", "split",
        "multiple_of", "max_contiguous", "program_id", "num_programs")
# The most dynamic shared memory a CTA may have (the opt-in limit), by sm_XY as XY.
SHARED_LIMIT = {80: 166912, 86: 101376, 87: 166912, 89: 101376, 90: 232448}


def _pure(op: Operation) -> bool:
    return not op.regions and (op.name in PURE or has_trait(op, ELEMENTWISE_TRAIT))


def _slice(body: Region, roots: list[Value]) -> tuple[list[Operation], list[int]] | None:
    """The body's ops `roots` depend on (in body order) and the carried arguments (by index) they
    and those arguments' next values depend on; None where an op among them is not pure."""
    needed: set[Operation] = set()
    state: set[int] = set()
    yielded = body.terminator.operands
    work = list(roots)
    while work:
        v = work.pop()
        if isinstance(v, BlockArg) and v.region is body:
            if v.index and v.index not in state:
                state.add(v.index)
                work.append(yielded[v.index - 1])
        elif isinstance(v, OpResult) and v.op.parent is body and v.op not in needed:
            if not _pure(v.op):
                return None
            needed.add(v.op)
            work += v.op.operands
    return [op for op in body.ops if op in needed], sorted(state)


@dataclass
class Pipeline:
    """One pipelined loop: its loads, the slice computing their addresses, and, while lowered,
    the slots and the values the body's dots and back edge need."""

    loop: Operation
    stages: int
    loads: list[Operation]
    ops: list[Operation]  # the slice, in body order
    state: list[int]  # carried arguments (region argument indices) the slice reads
    layouts: list[LinearLayout | None]  # of the region's arguments, as the loop carries them
    slot_bytes: dict[Value, int]  # of one slot of each load's
    starts: dict[Value, int] = field(default_factory=dict)  # each load's first slot's byte offset
    tiles: dict[Value, tuple[tuple[int, int], int]] = field(default_factory=dict)  # shape, inner
    depth: int = 0  # the lowering's cache scopes that enclose the loop
    iteration: ir.Value | None = None  # while the body is lowered: its induction variable,
    carried: list[ir.Value] = field(default_factory=list)  # the extra phis,
    reading: dict[Value, Tile] | None = None  # this iteration's slots (once `_ready`),
    next_values: list[ir.Value] | None = None  # and the extra phis' next values

    @property
    def body(self) -> Region:
        return self.loop.regions[0]

    # before the loop ----------------------------------------------------------
    @property
    def pinned_bytes(self) -> int:
        return self.stages * sum(self.slot_bytes.values())

    def prologue(self, low: KernelLowering, flat_state: list[ir.Value]) -> list[ir.Value]:
        """Pin the slots and issue the copies of iterations 0 .. S-2; returns the extra values the
        loop carries (`flat_state`, the loop's state, S-1 iterations ahead, then the slot to read)."""
        self.depth = len(low.scopes)
        offset = low.shared.pin(self.pinned_bytes)
        for load in self.loads:
            self.starts[load.result] = offset
            offset += self.stages * self.slot_bytes[load.result]
        lb, _, step = self.loop.operands[:3]
        iteration = low.values[lb]
        for s in range(self.stages - 1):
            flat_state = self._prefetch(low, iteration, flat_state, ir.Constant(I32, s))
            mma_async.commit_group(low.b)
            iteration = low.b.add(iteration, low.values[step])
        return flat_state + [ir.Constant(I32, 0)]

    # in the body ----------------------------------------------------------------
    def enter(self, low: KernelLowering, iteration: ir.Value, carried: list[ir.Value]) -> None:
        """The body is lowered next: `iteration` is the induction variable, `carried` the extra
        phis (`prologue`'s values as the loop carries them)."""
        self.iteration, self.carried = iteration, carried
        self.reading = self.next_values = None
        low.pipelined.update((load.result, self) for load in self.loads)

    def tile(self, low: KernelLowering, v: Value) -> Tile:
        """The slot `v`'s copies of this iteration landed in (`ready` where it is the first asked for)."""
        if self.reading is None:
            self._ready(low)
        return self.reading[v]

    def leave(self, low: KernelLowering) -> list[ir.Value]:
        """The body is lowered: the extra values for the back edge."""
        assert self.next_values is not None, "every pipelined load's dot is at the body's top level"
        for load in self.loads:
            del low.pipelined[load.result]
        return self.next_values

    def _ready(self, low: KernelLowering) -> None:
        """At the first pipelined dot: wait for this iteration's copies, then issue those S-1
        iterations ahead."""
        b = low.b
        *flat_state, slot = self.carried
        mma_async.wait_group(b, self.stages - 2)
        barrier(b)
        self.reading = {load.result: self._tile(b, load, slot) for load in self.loads}
        step = low.values[self.loop.operands[2]]
        ahead = b.add(self.iteration, b.mul(step, ir.Constant(step.type, self.stages - 1)))
        last = ir.Constant(I32, self.stages - 1)
        write = b.select(b.icmp_unsigned("==", slot, ir.Constant(I32, 0)), last, b.sub(slot, ir.Constant(I32, 1)))
        next_state = self._prefetch(low, ahead, flat_state, write)
        mma_async.commit_group(b)
        following = b.select(b.icmp_unsigned("==", slot, last), ir.Constant(I32, 0), b.add(slot, ir.Constant(I32, 1)))
        self.next_values = next_state + [following]

    # after the loop ------------------------------------------------------------
    def drain(self, low: KernelLowering) -> None:
        """Every copy landed (those past the end wrote zeros) and every slot read: the pinned
        memory is free."""
        mma_async.wait_all(low.b)
        barrier(low.b)
        low.shared.unpin(self.pinned_bytes)

    # ------------------------------------------------------------------------------
    def _slot(self, b: ir.IRBuilder, load: Operation, slot: ir.Value) -> ir.Value:
        """The byte offset of `load`'s slot number `slot`."""
        v = load.result
        return b.add(ir.Constant(I32, self.starts[v]), b.mul(slot, ir.Constant(I32, self.slot_bytes[v])))

    def _tile(self, b: ir.IRBuilder, load: Operation, slot: ir.Value) -> Tile:
        shape, inner = self.tiles[load.result]
        return Tile(shape, inner, mma_async.ELEM_BYTES, self._slot(b, load, slot), pinned=True)

    def _prefetch(self, low: KernelLowering, iteration: ir.Value, flat_state: list[ir.Value], slot: ir.Value
                  ) -> list[ir.Value]:
        """Issue the copies of the iteration whose induction variable is `iteration` and whose state
        is `flat_state` into `slot`; returns the next iteration's state."""
        b = low.b
        lb, ub = self.loop.operands[:2]
        test = b.icmp_signed if lb.type.is_signed else b.icmp_unsigned
        valid = test("<", iteration, low.values[ub])
        args = self.body.args
        bound = {args[0]: iteration}
        i = 0
        for index in self.state:
            layout = self.layouts[index]
            n = 1 if layout is None else layout.num_registers
            values = flat_state[i:i + n]
            bound[args[index]] = values[0] if layout is None else Regs(layout, values)
            i += n
        keys = list(bound) + [r for op in self.ops for r in op.results]
        saved = {k: low.values[k] for k in keys if k in low.values}
        scopes, low.scopes = low.scopes, low.scopes[:self.depth] + [{}]
        try:
            low.values.update(bound)
            for op in self.ops:
                low.op(op)
            for load in self.loads:
                copies = mma_async.Copies.prepare(low, load)
                assert copies is not None, "plan checked that the copies' layout holds 16-byte runs"
                masks = copies.masks or [None] * len(copies.ptrs)
                copies.masks = [valid if m is None else b.and_(m, valid) for m in masks]
                tile = copies.issue(low, self._slot(b, load, slot), pinned=True)
                self.tiles.setdefault(load.result, (tile.shape, tile.inner))
            yielded = self.body.terminator.operands
            out: list[ir.Value] = []
            for index in self.state:
                v, layout = yielded[index - 1], self.layouts[index]
                out += [low.values[v]] if layout is None else low.block(v, layout).values
            return out
        finally:
            low.scopes = scopes
            for k in keys:
                low.values.pop(k, None)
            low.values.update(saved)


def _copy_layout(low: KernelLowering, body: Region, v: Value, layouts: list[LinearLayout | None]
                 ) -> LinearLayout | None:
    """The layout pointer block `v` takes when `_prefetch` lowers it, or None where that is not
    simply known (then the loop is not pipelined)."""
    if isinstance(v, BlockArg) and v.region is body:
        return layouts[v.index]
    if not isinstance(v, OpResult) or v.op.parent is not body:
        return low.block(v).layout
    if not has_trait(v.op, ELEMENTWISE_TRAIT):
        return None
    computed = next(o for o in v.op.operands if o.type.is_block and not low.rematerialized(o))
    return _copy_layout(low, body, computed, layouts)


def _in_runs(low: KernelLowering, body: Region, load: Operation, layouts: list[LinearLayout | None]) -> bool:
    """Whether the copies' layout holds 16-byte runs (else the dot loads the operand as loads are)."""
    ptr = load.operands[0]
    layout = mma_async.full_vectors(low, load) if low.rematerialized(ptr) else _copy_layout(low, body, ptr, layouts)
    return layout is not None and mma_async.in_runs(low, load, layout)


def plan(low: KernelLowering, loop: Operation, layouts: list[LinearLayout | None]) -> Pipeline | None:
    """The pipeline of `loop` for `low.num_stages` (None where it is not pipelined); `layouts`:
    those of the region's arguments as the loop carries them (None for scalars)."""
    body = loop.regions[0]
    if low.num_stages < 2 or any(op.name in mma_async.WRITES for op in body.walk()):
        return None
    loads = [v.op for dot in body.ops if dot.name == "dot" for v in dot.operands[:2]
             if v in low.async_copies and v.op.parent is body and _in_runs(low, body, v.op, layouts)]
    sliced = _slice(body, [v for load in loads for v in load.operands[:2]]) if loads else None
    if sliced is None:
        return None
    slot_bytes = {load.result: -(-math.prod(load.result.type.shape) * mma_async.ELEM_BYTES // BANKS_BYTES) * BANKS_BYTES
                  for load in loads}
    limit = SHARED_LIMIT.get(int(low.arch[3:5]), SHARED_LIMIT[80])
    stages = min(low.num_stages, (limit - low.shared.floor) // sum(slot_bytes.values()))
    if stages < 2:
        return None
    ops, state = sliced
    return Pipeline(loop, stages, loads, ops, state, layouts, slot_bytes)
