"""The CPU lowering of `dot`: `out = acc + a @ b` per batch index (one for 2D operands).

Each element is `acc + a[m, 0] * b[0, n] + ... + a[m, K-1] * b[K-1, n]`, k increasing, each
step one `multiply_add` of the shared emitters (a fused multiply-add on f32/f64, so one
rounding per step; elsewhere a product and a sum rounded in the result type, as fp16 and
integer arithmetic do everywhere else). Operands widen exactly to the result type first.

Where the result is f32 or f64 from operands LLVM holds as floats (f16, f32, f64) and N
fills whole vectors of the host (512 bits with AVX-512, else 256), a register-tiled
micro-kernel computes it: per tile of MR rows and NR vectors of columns, the MR x NR
accumulator vectors stay in registers through the K loop (LLVM promotes them out of the
loop: `out` is a buffer no operand shares), each k step broadcasting MR elements of `a` and
loading NR vectors of a row of `b`. `out` is the accumulator's own buffer where nothing else
reads the accumulator (`acc = dot(a, b, acc)` in a loop), else a copy of it. Otherwise a loop
over m, k and then n (contiguous rows of `b` and `out`, which LLVM vectorises) does it.
Both orders give the same results: each element's steps run in the same order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from llvmlite import ir

from kdsl.backend.cpu.elementwise import cast, multiply_add, reg_type
from kdsl.backend.cpu.fusion import VIEWS
from kdsl.backend.cpu.jit import vector_bits
from kdsl.backend.cpu.llvm_types import I32, I64
from kdsl.backend.cpu.loops import Buffer, element_loop, memcpy
from kdsl.ir.core import OpResult, Operation
from kdsl.ir.types import ScalarType

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering

MAX_TILE_ROWS = 4
# 4 rows x 2 vectors: 8 accumulators + 2 operands of AVX2's 16 registers; AVX-512 has 32
MAX_TILE_VECTORS = {256: 2, 512: 4}
_LLVM_FLOATS = ("f16", "f32", "f64")


def _const(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def lower_dot(lowering: "KernelLowering", op: Operation) -> None:
    lhs: Buffer = lowering.values[op.operands[0]]
    rhs: Buffer = lowering.values[op.operands[1]]
    acc: Buffer = lowering.values[op.operands[2]]
    *batch, m_size, k_size = lhs.type.dims
    n_size = rhs.type.dims[-1]
    b = lowering.b
    acc_value = op.operands[2]
    if lowering.users[acc_value] == [op] and not (isinstance(acc_value, OpResult) and acc_value.op.name in VIEWS):
        out = acc
    else:
        out = lowering.buffer(acc.type)
        memcpy(b, out.ptr, acc.ptr, acc.nbytes())
    bits = vector_bits()
    width = _vector_width(lhs.type.elem, acc.type.elem, bits)
    body = _tiled if width and n_size % width == 0 else _rows
    with element_loop(b, batch[0] if batch else 1, "dot.batch") as batch_index:
        bases = [b.mul(batch_index, _const(size)) for size in (m_size * k_size, k_size * n_size, m_size * n_size)]
        body(b, _Matmul(lhs, rhs, out, *bases, m_size, k_size, n_size), width)
    lowering.define(op, out)


class _Matmul(NamedTuple):
    """One batch index's product: the buffers, where the batch index starts in each, the sizes."""

    lhs: Buffer
    rhs: Buffer
    out: Buffer
    lhs_base: ir.Value
    rhs_base: ir.Value
    out_base: ir.Value
    m_size: int
    k_size: int
    n_size: int


def _vector_width(src: ScalarType, dst: ScalarType, bits: int) -> int:
    """Elements per vector for the micro-kernel, 0 where it does not apply."""
    if dst.name not in ("f32", "f64") or src.name not in _LLVM_FLOATS or src.bits > dst.bits:
        return 0
    return bits // dst.bits


def _rows(b: ir.IRBuilder, mm: _Matmul, width: int) -> None:
    lhs, rhs, out, lhs_base, rhs_base, out_base, m_size, k_size, n_size = mm
    src, dst = lhs.type.elem, out.type.elem
    with element_loop(b, m_size, "dot.m") as m:
        with element_loop(b, k_size, "dot.k") as k:
            a_mk = cast(b, lhs.load(b, b.add(lhs_base, b.add(b.mul(m, _const(k_size)), k))), src, dst)
            rhs_row = b.add(rhs_base, b.mul(k, _const(n_size)))
            out_row = b.add(out_base, b.mul(m, _const(n_size)))
            with element_loop(b, n_size, "dot.n") as n:
                b_kn = cast(b, rhs.load(b, b.add(rhs_row, n)), src, dst)
                index = b.add(out_row, n)
                out.store(b, index, multiply_add(b, out.load(b, index), a_mk, b_kn, dst))


def _tiled(b: ir.IRBuilder, mm: _Matmul, width: int) -> None:
    lhs, rhs, out, lhs_base, rhs_base, out_base, m_size, k_size, n_size = mm
    src, dst = lhs.type.elem, out.type.elem
    rows = min(MAX_TILE_ROWS, m_size)
    most = MAX_TILE_VECTORS[width * dst.bits]
    vectors = next(v for v in (most, 2, 1) if n_size % (v * width) == 0)
    vector = ir.VectorType(reg_type(dst), width)
    src_vector = ir.VectorType(reg_type(src), width)

    def widen(v: ir.Value) -> ir.Value:
        return v if src == dst else b.fpext(v, vector)

    def load_vector(buffer: Buffer, index: ir.Value, t: ir.VectorType) -> ir.Value:
        return b.load(buffer.element_ptr(b, index), typ=t, align=buffer.type.elem.bytes)

    def splat(x: ir.Value) -> ir.Value:
        one = b.insert_element(ir.Constant(vector, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(I32, width), None))

    with element_loop(b, m_size // rows, "dot.mt") as mt:
        m0 = b.mul(mt, _const(rows))
        with element_loop(b, n_size // (vectors * width), "dot.nt") as nt:
            n0 = b.mul(nt, _const(vectors * width))
            out_at = [[b.add(out_base, b.add(b.mul(b.add(m0, _const(i)), _const(n_size)), b.add(n0, _const(j * width))))
                       for j in range(vectors)] for i in range(rows)]
            with element_loop(b, k_size, "dot.k") as k:
                rhs_row = b.add(rhs_base, b.add(b.mul(k, _const(n_size)), n0))
                b_k = [widen(load_vector(rhs, b.add(rhs_row, _const(j * width)), src_vector)) for j in range(vectors)]
                for i in range(rows):
                    a_ik = lhs.load(b, b.add(lhs_base, b.add(b.mul(b.add(m0, _const(i)), _const(k_size)), k)))
                    a_splat = splat(cast(b, a_ik, src, dst))
                    for j in range(vectors):
                        total = load_vector(out, out_at[i][j], vector)
                        b.store(multiply_add(b, total, a_splat, b_k[j], dst),
                                b.bitcast(out.element_ptr(b, out_at[i][j]), vector.as_pointer()), align=dst.bytes)
