"""The CPU lowering of `dot`: a triple loop accumulating in the result type.

`out = acc` (copied, so the accumulator's buffer stays intact), then for each
batch index (one for 2D operands), each row m and each k,
`out[m, :] += a[m, k] * b[k, :]`: the innermost loop runs
over N on contiguous rows of `b` and `out`, which LLVM vectorises. Operands
widen exactly to the result type first; products and sums use the
elementwise emitters, so fp16 results round after every operation as fp16
arithmetic does everywhere else. Register tiling is later work.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE, cast
from kdsl.backend.cpu.llvm_types import I64
from kdsl.backend.cpu.loops import Buffer, element_loop, memcpy
from kdsl.ir.core import Operation

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering


def lower_dot(lowering: "KernelLowering", op: Operation) -> None:
    lhs: Buffer = lowering.values[op.operands[0]]
    rhs: Buffer = lowering.values[op.operands[1]]
    acc: Buffer = lowering.values[op.operands[2]]
    *batch, m_size, k_size = lhs.type.dims
    n_size = rhs.type.dims[-1]
    src, dst = lhs.type.elem, acc.type.elem
    out = lowering.buffer(acc.type)
    b = lowering.b
    memcpy(b, out.ptr, acc.ptr, acc.nbytes())
    mul, add = ELEMENTWISE["mul"], ELEMENTWISE["add"]

    def const(value: int) -> ir.Constant:
        return ir.Constant(I64, value)

    with element_loop(b, batch[0] if batch else 1, "dot.batch") as batch_index:
        lhs_base, rhs_base, out_base = (b.mul(batch_index, const(size)) for size in
                                        (m_size * k_size, k_size * n_size, m_size * n_size))
        with element_loop(b, m_size, "dot.m") as m:
            with element_loop(b, k_size, "dot.k") as k:
                a_mk = cast(b, lhs.load(b, b.add(lhs_base, b.add(b.mul(m, const(k_size)), k))), src, dst)
                rhs_row = b.add(rhs_base, b.mul(k, const(n_size)))
                out_row = b.add(out_base, b.mul(m, const(n_size)))
                with element_loop(b, n_size, "dot.n") as n:
                    b_kn = cast(b, rhs.load(b, b.add(rhs_row, n)), src, dst)
                    index = b.add(out_row, n)
                    total = add(b, [out.load(b, index), mul(b, [a_mk, b_kn], dst, dst, {})], dst, dst, {})
                    out.store(b, index, total)
    lowering.define(op, out)
