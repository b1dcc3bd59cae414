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
"""
from __future__ import annotations

from typing import TYPE_CHECKING

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


def _running(low: KernelLowering, op: Operation, reverse: bool) -> tuple[LinearLayout, int, list[list[ir.Value]]]:
    """(layout, axis length, per operand the running values of each row's fold, register for register)."""
    layout, n, operands = _rows(low, op)
    running = [list(values) for values in operands]
    order = range(n - 1, -1, -1) if reverse else range(n)
    for row in range(0, layout.num_registers, n):
        positions = [row + i for i in order]
        for previous, current in zip(positions, positions[1:]):
            args = [out[previous] for out in running] + [out[current] for out in running]
            for out, value in zip(running, inline_region(low, op.regions[0], args)):
                out[current] = value
    return layout, n, running


def reduce_with(low: KernelLowering, op: Operation) -> None:
    layout, n, running = _running(low, op, reverse=False)
    reduced = L.sliced(layout, op.attrs["axis"])
    for result, values in zip(op.results, running):
        last = values[n - 1::n]
        low.values[result] = Regs(reduced, last) if result.type.is_block else last[0]


def scan(low: KernelLowering, op: Operation) -> None:
    layout, _, running = _running(low, op, op.attrs["reverse"])
    for result, values in zip(op.results, running):
        low.values[result] = Regs(layout, values)
