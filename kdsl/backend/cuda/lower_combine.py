"""`reduce_with` and `scan` on the GPU: a left fold along the axis inside each thread, the combine
region inlined once per step.

The IR defines both as left folds in index order (`kdsl.ir.ops`), and combine
functions need not be associative (the conformance suite folds
`acc + x * x`) nor commutative (`scan` composing affine maps), so partial
results are never combined in a tree: the operands are converted to a layout
that puts the whole axis in the registers of each thread (`layouts.axis_in_registers`),
the other dimensions spread over lanes and warps as the default layout of the
reduced shape spreads them, and every thread folds its rows in order. Results
are then the reference's bit for bit, floats included. A reduction's result
keeps that default layout; a scan's keeps the operands'.

Threads holding copies of a row (a block with fewer rows than threads) fold
it too, so a long 1D fold costs its full length in every thread.

`lower_reduce` folds fp8 sums here too (`left_fold`): each partial sum rounds to
fp8, so the order of the additions shows in the result, and the IR's order is the
CPU's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.backend.regions import inline_region
from kdsl.ir.core import Operation
from kdsl.ir.types import BlockType

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering


def _rows(low: KernelLowering, op: Operation) -> tuple[LinearLayout, int, list[list[ir.Value]]]:
    """The operands in an `L.axis_in_registers` layout: (that layout, the axis length, their registers)."""
    block, axis = op.operands[0].type, op.attrs["axis"]
    rest_shape = block.shape[:axis] + block.shape[axis + 1:]
    if rest_shape:
        rest = low.default_layout(BlockType(rest_shape, block.scalar))
    else:  # every thread holds the whole of a 1D block
        rest = L.everywhere(low.num_warps)
    layout = L.axis_in_registers(rest, axis, block.shape[axis])
    return layout, block.shape[axis], [low.block(v, layout).values for v in op.operands]


Combine = Callable[[list[ir.Value]], list[ir.Value]]
"""A fold step: the k accumulated values and the k current ones in, the k new accumulated ones out."""


def _region_combine(low: KernelLowering, op: Operation) -> Combine:
    return lambda args: inline_region(low, op.regions[0], args)


def _running(low: KernelLowering, op: Operation, reverse: bool,
             combine: Combine) -> tuple[LinearLayout, int, list[list[ir.Value]]]:
    """(layout, axis length, per operand the running values of each row's fold, register for register)."""
    layout, n, operands = _rows(low, op)
    running = [list(values) for values in operands]
    order = range(n - 1, -1, -1) if reverse else range(n)
    for row in range(0, layout.num_registers, n):
        positions = [row + i for i in order]
        for previous, current in zip(positions, positions[1:]):
            args = [out[previous] for out in running] + [out[current] for out in running]
            for out, value in zip(running, combine(args)):
                out[current] = value
    return layout, n, running


def left_fold(low: KernelLowering, op: Operation, combine: Combine) -> None:
    """Define `op`'s results (one per operand, `op.attrs["axis"]` reduced) as the left folds of `combine`."""
    layout, n, running = _running(low, op, False, combine)
    reduced = L.sliced(layout, op.attrs["axis"])
    for result, values in zip(op.results, running):
        last = values[n - 1::n]
        low.values[result] = Regs(reduced, last) if result.type.is_block else last[0]


def reduce_with(low: KernelLowering, op: Operation) -> None:
    left_fold(low, op, _region_combine(low, op))


def scan(low: KernelLowering, op: Operation) -> None:
    layout, _, running = _running(low, op, op.attrs["reverse"], _region_combine(low, op))
    for result, values in zip(op.results, running):
        low.values[result] = Regs(layout, values)
