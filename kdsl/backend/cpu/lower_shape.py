"""CPU lowering of the shape ops: reshape, permute, join, split.

Blocks are row-major buffers, so `reshape` is the same buffer seen with another
shape; the others copy, computing for each result element the index of the
element it comes from.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I64
from kdsl.backend.cpu.loops import Buffer, strides
from kdsl.ir.core import Operation
from kdsl.ir.ops import permute_order
from kdsl.ir.types import BlockType

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering


def coordinate(b: ir.IRBuilder, i: ir.Value, stride: int, size: int) -> ir.Value:
    """The coordinate along a dimension of `size` elements and row-major `stride` of linear index `i`."""
    return b.urem(b.udiv(i, ir.Constant(I64, stride)), ir.Constant(I64, size))


def reshape(low: KernelLowering, op: Operation) -> None:
    src: Buffer = low.values[op.operands[0]]
    low.define(op, Buffer(src.ptr, op.result.type))


def permute(low: KernelLowering, op: Operation) -> None:
    src: Buffer = low.values[op.operands[0]]
    out_t: BlockType = op.result.type
    order = permute_order(op.attrs)
    src_strides, out_strides = strides(src.type.dims), strides(out_t.dims)
    b = low.b

    def source_element(i: ir.Value) -> ir.Value:
        index = ir.Constant(I64, 0)
        for k, d in enumerate(order):
            coord = coordinate(b, i, out_strides[k], out_t.dims[k])
            index = b.add(index, b.mul(coord, ir.Constant(I64, src_strides[d])))
        return src.load(b, index)
    low.define(op, low.fill(out_t, source_element, "permute"))


def join(low: KernelLowering, op: Operation) -> None:
    a, c = op.operands
    b = low.b

    def element(i: ir.Value) -> ir.Value:
        half = b.lshr(i, ir.Constant(I64, 1))
        second = b.trunc(i, ir.IntType(1))
        return b.select(second, low.element(c, half), low.element(a, half))
    low.define(op, low.fill(op.result.type, element, "join"))


def split(low: KernelLowering, op: Operation) -> None:
    src: Buffer = low.values[op.operands[0]]
    b = low.b
    index = ir.Constant(I64, op.attrs["index"])

    def element(i: ir.Value) -> ir.Value:
        return src.load(b, b.add(b.shl(i, ir.Constant(I64, 1)), index))
    t = op.result.type
    low.define(op, low.fill(t, element, "split") if isinstance(t, BlockType) else element(ir.Constant(I64, 0)))


HANDLERS = {"reshape": reshape, "permute": permute, "join": join, "split": split}
