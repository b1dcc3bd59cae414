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


def reduce_with(low: KernelLowering, op: Operation) -> None:
    layout, n, operands = _rows(low, op)
    region = op.regions[0]
    results: list[list[ir.Value]] = [[] for _ in operands]
    for row in range(0, layout.num_registers, n):
        acc = [values[row] for values in operands]
        for i in range(row + 1, row + n):
            acc = inline_region(low, region, acc + [values[i] for values in operands])
        for out, value in zip(results, acc):
            out.append(value)
    reduced = L.sliced(layout, op.attrs["axis"])
    for result, values in zip(op.results, results):
        low.values[result] = Regs(reduced, values) if result.type.is_block else values[0]


def scan(low: KernelLowering, op: Operation) -> None:
    layout, n, operands = _rows(low, op)
    region = op.regions[0]
    results: list[list[ir.Value]] = [list(values) for values in operands]
    order = range(n - 1, -1, -1) if op.attrs["reverse"] else range(n)
    for row in range(0, layout.num_registers, n):
        previous = None
        for i in order:
            if previous is not None:
                news = [out[row + i] for out in results]
                for out, value in zip(results, inline_region(low, region, [out[previous] for out in results] + news)):
                    out[row + i] = value
            previous = row + i
    for result, values in zip(op.results, results):
        low.values[result] = Regs(layout, values)
