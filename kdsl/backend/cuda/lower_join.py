"""`join` and `split`: the size-2 minor dimension lives in the lowest register bit.

`join a, b` converts `b` to `a`'s layout and interleaves their registers under
`layouts.axis_in_registers` (register 2r holds a's register r, 2r + 1 b's).
`split` converts its operand to that layout over the default layout of its
result (no move when it comes from a `join` in that layout) and keeps every
other register.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.ir.core import Operation

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering


def join(low: KernelLowering, op: Operation) -> None:
    if op.operands[0].type.is_block:
        layout = low.layout_for(op.operands, op.operands[0].type)
        a, b = (low.block(v, layout).values for v in op.operands)
    else:  # two scalars make a (2,) block every thread holds
        layout = L.everywhere(low.num_warps)
        a, b = ([low.values[v]] for v in op.operands)
    values = [v for pair in zip(a, b) for v in pair]
    low.define(op, Regs(L.axis_in_registers(layout, layout.rank, 2), values))


def split(low: KernelLowering, op: Operation) -> None:
    t = op.result.type
    half = low.default_layout(t) if t.is_block else L.everywhere(low.num_warps)
    values = low.block(op.operands[0], L.axis_in_registers(half, half.rank, 2)).values[op.attrs["index"]::2]
    low.define(op, Regs(half, values) if t.is_block else values[0])
