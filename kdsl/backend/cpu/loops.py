"""Loop and memory helpers shared by the lowering: counted loops, block buffers."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I1, I64, PTR, from_memory, mem_type, to_memory
from kdsl.ir.types import BlockType, PointerType


@dataclass(frozen=True)
class Buffer:
    """A block value in memory: `numel` elements of the block's memory type, row-major."""

    ptr: ir.Value
    type: BlockType

    def element_ptr(self, b: ir.IRBuilder, index: ir.Value) -> ir.Value:
        return b.gep(self.ptr, [index], inbounds=True, source_etype=mem_type(self.type.elem))

    def load(self, b: ir.IRBuilder, index: ir.Value) -> ir.Value:
        raw = b.load(self.element_ptr(b, index), typ=mem_type(self.type.elem))
        return from_memory(b, raw, self.type.elem)

    def store(self, b: ir.IRBuilder, index: ir.Value, value: ir.Value) -> None:
        b.store(to_memory(b, value, self.type.elem), self.element_ptr(b, index))

    def nbytes(self) -> int:
        t = self.type.elem
        size = 8 if isinstance(t, PointerType) else t.bytes
        return size * self.type.numel


@contextmanager
def counted_loop(b: ir.IRBuilder, start: ir.Value, stop: ir.Value, step: ir.Value, signed: bool = True,
                 name: str = "loop", vectorise: bool = True, unroll: bool = True) -> Iterator[ir.Value]:
    """`for (iv = start; iv < stop; iv += step)`; the body is emitted inside the `with`.
    `vectorise=False`, `unroll=False` ask LLVM not to (see `_loop_hints`)."""
    pre = b.block
    header = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.end")
    b.branch(header)
    b.position_at_end(header)
    iv = b.phi(start.type, name=f"{name}.iv")
    iv.add_incoming(start, pre)
    more = b.icmp_signed("<", iv, stop) if signed else b.icmp_unsigned("<", iv, stop)
    b.cbranch(more, body, done)
    b.position_at_end(body)
    yield iv
    iv.add_incoming(b.add(iv, step), b.block)
    back_edge = b.branch(header)
    if not (vectorise and unroll):
        back_edge.set_metadata("llvm.loop", _loop_hints(b.module, vectorise, unroll))
    b.position_at_end(done)


def _loop_hints(module: ir.Module, vectorise: bool, unroll: bool) -> ir.values.MDValue:
    """Loop metadata that turns off vectorising, or unrolling and interleaving, for code that is
    rarely run or runs few iterations, such as the checks of a masked tail or the search for the
    access that failed a check: LLVM vectorises even such early-exit loops, and compiling that code
    cost as much as the kernel's own loops. A loop's ID must be a node of its own that refers to
    itself, which `Module.add_metadata` (it shares equal nodes) cannot build, hence the node made
    directly."""
    def hint(name: str, *value: ir.Constant) -> ir.values.MDValue:
        return module.add_metadata([ir.MetaDataString(module, name), *value])
    hints = [] if vectorise else [hint("llvm.loop.vectorize.enable", ir.Constant(I1, 0))]
    if not unroll:
        hints += [hint("llvm.loop.unroll.disable"), hint("llvm.loop.interleave.count", ir.Constant(ir.IntType(32), 1))]
    loop = ir.values.MDValue(module, [], name=str(len(module.metadata)))
    loop.operands = (loop, *hints)
    return loop


@contextmanager
def element_loop(b: ir.IRBuilder, count: int, name: str = "elem", vectorise: bool = True,
                 unroll: bool = True) -> Iterator[ir.Value]:
    """Loop over the `count` elements of a block: yields an i64 linear index (no loop for one
    element: the checks of a 1D block's one row, say, would otherwise give LLVM two loops more per
    access to analyse)."""
    if count == 1:
        yield ir.Constant(I64, 0)
        return
    with counted_loop(b, ir.Constant(I64, 0), ir.Constant(I64, count), ir.Constant(I64, 1), name=name,
                      vectorise=vectorise, unroll=unroll) as i:
        yield i


def memcpy(b: ir.IRBuilder, dst: ir.Value, src: ir.Value, nbytes: int) -> None:
    name = "llvm.memcpy.p0.p0.i64"
    fn = b.module.globals.get(name) or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I1]), name=name)
    b.call(fn, [dst, src, ir.Constant(I64, nbytes), ir.Constant(I1, 0)])


def strides(shape: tuple[int, ...]) -> list[int]:
    """Row-major element strides of `shape`."""
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]
