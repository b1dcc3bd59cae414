"""CPU lowering of `reduce_with` and `scan`: the region is emitted inline, once per loop body.

A block operand of shape (outer, n, inner) around `axis` is walked as `reduce`
walks it: for each of the outer*inner lanes, a loop over the n positions along
the axis, carrying the k accumulated values in allocas (promoted to registers
by mem2reg). The region's arguments are bound to the accumulated and the new
scalars, and its ops lowered in place, so no call is left.

The loop along the axis runs to a trip count LLVM cannot see (`opaque`): fully
unrolled, a fold whose combine compares floats and selects (argmax) becomes a
select chain that LLVM's InstCombine rewrites in time exponential in its length
(seconds at 16 elements, minutes at 32).
"""
from __future__ import annotations

from math import prod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I64, reg_type
from kdsl.backend.cpu.loops import Buffer, counted_loop, element_loop
from kdsl.backend.regions import inline_region
from kdsl.ir.core import Operation, Region
from kdsl.ir.types import BlockType

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering


def lane_base(b: ir.IRBuilder, j: ir.Value, n: int, inner: int) -> ir.Value:
    """The linear index of position 0 along the axis for lane j = o * inner + k."""
    return b.add(b.mul(b.udiv(j, ir.Constant(I64, inner)), ir.Constant(I64, n * inner)),
                 b.urem(j, ir.Constant(I64, inner)))


def opaque(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """`value`, through an empty inline asm, so the optimiser cannot use it as a constant."""
    asm = ir.InlineAsm(ir.FunctionType(value.type, [value.type]), "", "=r,0")
    return b.call(asm, [value])


def _along(b: ir.IRBuilder, n: int, name: str) -> AbstractContextManager[ir.Value]:
    """The loop over positions 1..n-1 along the axis (see the module docstring)."""
    return counted_loop(b, ir.Constant(I64, 1), opaque(b, ir.Constant(I64, n)), ir.Constant(I64, 1), name=name)


def _geometry(src: Buffer, axis: int) -> tuple[int, int, int]:
    dims = src.type.dims
    return prod(dims[:axis]), dims[axis], prod(dims[axis + 1:])


class _Fold:
    """The k accumulators of one lane, in allocas."""

    def __init__(self, low: KernelLowering, srcs: list[Buffer], region: Region):
        self.low, self.srcs, self.region = low, srcs, region
        self.slots = [low.entry.alloca(reg_type(s.type.elem)) for s in srcs]

    def start(self, index: ir.Value) -> list[ir.Value]:
        b = self.low.b
        values = [s.load(b, index) for s in self.srcs]
        for slot, v in zip(self.slots, values):
            b.store(v, slot)
        return values

    def step(self, index: ir.Value) -> list[ir.Value]:
        b = self.low.b
        accs = [b.load(slot) for slot in self.slots]
        values = inline_region(self.low, self.region, accs + [s.load(b, index) for s in self.srcs])
        for slot, v in zip(self.slots, values):
            b.store(v, slot)
        return values

    def current(self) -> list[ir.Value]:
        return [self.low.b.load(slot) for slot in self.slots]


def reduce_with(low: KernelLowering, op: Operation) -> None:
    srcs: list[Buffer] = [low.values[v] for v in op.operands]
    outer, n, inner = _geometry(srcs[0], op.attrs["axis"])
    b = low.b

    def lane(j: ir.Value) -> list[ir.Value]:
        base = lane_base(b, j, n, inner)
        fold = _Fold(low, srcs, op.regions[0])
        fold.start(base)
        with _along(b, n, "fold") as r:
            fold.step(b.add(base, b.mul(r, ir.Constant(I64, inner))))
        return fold.current()
    if not isinstance(op.results[0].type, BlockType):
        for result, value in zip(op.results, lane(ir.Constant(I64, 0))):
            low.values[result] = value
        return
    outs = [low.buffer(r.type) for r in op.results]
    with element_loop(b, outer * inner, "reduce_with") as j:
        for out, value in zip(outs, lane(j)):
            out.store(b, j, value)
    for result, out in zip(op.results, outs):
        low.values[result] = out


def scan(low: KernelLowering, op: Operation) -> None:
    srcs: list[Buffer] = [low.values[v] for v in op.operands]
    outer, n, inner = _geometry(srcs[0], op.attrs["axis"])
    reverse = op.attrs["reverse"]
    outs = [low.buffer(r.type) for r in op.results]
    b = low.b

    def position(base: ir.Value, r: ir.Value) -> ir.Value:
        along = b.sub(ir.Constant(I64, n - 1), r) if reverse else r
        return b.add(base, b.mul(along, ir.Constant(I64, inner)))

    def store(index: ir.Value, values: list[ir.Value]) -> None:
        for out, value in zip(outs, values):
            out.store(b, index, value)
    with element_loop(b, outer * inner, "scan") as j:
        base = lane_base(b, j, n, inner)
        fold = _Fold(low, srcs, op.regions[0])
        first = position(base, ir.Constant(I64, 0))
        store(first, fold.start(first))
        with _along(b, n, "scan") as r:
            index = position(base, r)
            store(index, fold.step(index))
    for result, out in zip(op.results, outs):
        low.values[result] = out


HANDLERS = {"reduce_with": reduce_with, "scan": scan}
