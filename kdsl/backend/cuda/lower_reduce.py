"""Reductions sum/max/min along one axis: in each thread, across lanes, then across warps.

The result has the `sliced` layout of the operand's. Each step combines only
elements that differ along the axis -- copies (zero bases) are never combined
twice: registers over their distinct elements in order, then a butterfly of
`shfl.sync.bfly` over the lane bits along the axis (every lane ends with the
same value, as the combine is commutative), then, when warps split the axis,
each thread writes its partial results to shared memory and reads back those
of the warps that differ from it only along the axis, in warp order. Every
thread holding an element of the result holds the same value; a reduction to a
scalar leaves it in every thread.

fp8 sums are the exception: every partial sum rounds to fp8, so the tree's order
would show in the result. They are left folds in index order instead
(`lower_combine.left_fold`), the IR's order and the CPU's, bit for bit. Other
sums, max and min take the tree.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE
from kdsl.backend.cpu.llvm_types import I1, I8, I32
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.lower_combine import left_fold
from kdsl.backend.cuda.lower_layout import Regs, type_bytes
from kdsl.backend.cuda.nvvm import barrier, shuffle_xor
from kdsl.errors import CompilationError
from kdsl.ir.core import Operation

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

COMBINE = {"sum": "add", "max": "max", "min": "min"}


def _along(basis: tuple[int, ...], axis: int) -> bool:
    """Whether a basis moves along `axis` only; one moving along it and another axis cannot be reduced."""
    if basis[axis] and any(c for d, c in enumerate(basis) if d != axis):
        raise CompilationError(f"internal error: layout basis {basis} mixes the reduced axis with others")
    return basis[axis] != 0


def _in_thread(layout: L.LinearLayout, axis: int, values: list[ir.Value], combine) -> list[ir.Value]:
    """One partial per register of the sliced layout, over this thread's distinct elements in order."""
    kept = [bit for bit, basis in enumerate(layout.register) if any(basis) and not _along(basis, axis)]
    copies = sum(1 << bit for bit in layout.free_bits("register"))
    partial: dict[int, ir.Value] = {}
    for r, value in enumerate(values):
        if r & copies:
            continue
        out = sum(1 << i for i, bit in enumerate(kept) if r >> bit & 1)
        partial[out] = combine(partial[out], value) if out in partial else value
    return [partial[i] for i in range(len(partial))]


def _across_warps(low: KernelLowering, layout: L.LinearLayout, axis: int, values: list[ir.Value],
                  combine) -> list[ir.Value]:
    """Each partial combined with those of the warps differing from this one along the axis only."""
    along = [bit for bit, basis in enumerate(layout.warp) if _along(basis, axis)]
    if not along:
        return values
    b = low.b
    num_warps = layout.num_warps
    reg_type = values[0].type
    slot_type = I8 if reg_type == I1 else reg_type
    low.shared.reserve(len(values) * L.WARP_SIZE * num_warps * type_bytes(slot_type))

    def slot(r: int, warp: ir.Value) -> ir.Value:
        index = b.add(b.mul(b.add(ir.Constant(I32, r * L.WARP_SIZE), low.lane), ir.Constant(I32, num_warps)), warp)
        return low.shared.address(b, index, slot_type)
    for r, value in enumerate(values):
        b.store(b.zext(value, I8) if reg_type == I1 else value, slot(r, low.warp))
    barrier(b)
    others = b.and_(low.warp, ir.Constant(I32, ~sum(1 << bit for bit in along) & 0xFFFFFFFF))
    combined = []
    for r in range(len(values)):
        acc = None
        for k in range(1 << len(along)):
            warp = b.or_(others, ir.Constant(I32, sum(1 << bit for i, bit in enumerate(along) if k >> i & 1)))
            value = b.load(slot(r, warp), typ=slot_type)
            value = b.trunc(value, I1) if reg_type == I1 else value
            acc = value if acc is None else combine(acc, value)
        combined.append(acc)
    barrier(b)
    return combined


def reduce_registers(low: KernelLowering, layout: L.LinearLayout, axis: int, values: list[ir.Value],
                     combine) -> list[ir.Value]:
    """The registers of the `sliced(layout, axis)` result of folding `values` (a block in
    `layout`) along `axis` with the commutative `combine`."""
    values = _in_thread(layout, axis, values, combine)
    for bit, basis in enumerate(layout.lane):
        if _along(basis, axis):
            values = [combine(v, shuffle_xor(low.b, v, 1 << bit)) for v in values]
    return _across_warps(low, layout, axis, values, combine)


def reduce(low: KernelLowering, op: Operation) -> None:
    elem = op.result.type.scalar
    emit = ELEMENTWISE[COMBINE[op.attrs["kind"]]]

    def combine(x: ir.Value, y: ir.Value) -> ir.Value:
        return emit(low.b, [x, y], elem, elem, {})
    if elem.is_fp8 and op.attrs["kind"] == "sum":
        left_fold(low, op, lambda args: [combine(*args)])
        return
    src = low.block(op.operands[0])
    layout, axis = src.layout, op.attrs["axis"]
    values = reduce_registers(low, layout, axis, src.values, combine)
    result = L.sliced(layout, axis)
    assert result.num_registers == len(values)
    low.define(op, Regs(result, values) if op.result.type.is_block else values[0])
