"""`dot` on CUDA cores: each thread computes its accumulator elements with scalar multiply-adds.

The result takes the accumulator's default layout. `a` (MxK, or BxMxK batched) is
converted to a layout giving each thread, for each of its accumulator rows, the
whole row of `a`; `b` (KxN, or BxKxN) to one giving it the whole columns of `b`
its accumulator columns need (`operand_layout`): the K coordinate lives in the
low register bits, the other coordinates (the batch one included) follow the
accumulator's bases. `convert` moves them (through shared memory when threads
must exchange elements).

Each element is then `acc + a[m, 0] * b[0, n] + ... + a[m, K-1] * b[K-1, n]`,
k increasing, operands widened exactly to the result type, each step the shared
`multiply_add` (fused on f32/f64): the CPU backend's order and rounding, so the
results are the CPU's bit for bit. `input_precision` changes
nothing here: every fp32 product is exact fp32 (tensor cores are later work).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kdsl.backend.cpu.elementwise import cast, multiply_add
from kdsl.backend.cuda.layouts import Basis, LinearLayout
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.ir.core import Operation

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering


def operand_layout(acc: LinearLayout, shape: tuple[int, ...], k_dim: int) -> tuple[LinearLayout, list[int]]:
    """The layout of a dot operand of `shape` (K along `k_dim`) for accumulator layout `acc`, and the
    accumulator register bits it keeps (those moving along the operand's other dimensions).

    The accumulator's dimension that the operand lacks (N for `a`, M for `b`) sits where the
    operand has K, so an accumulator basis projects onto the operand by dropping that coordinate.
    Register `k + (K << i)` of the operand (i over the kept bits of accumulator register r) holds
    element k of the row (or column) that accumulator register r needs."""
    rank = len(shape)

    def project(basis: Basis) -> Basis:
        return tuple(0 if d == k_dim else c for d, c in enumerate(basis))
    k_bases = tuple(tuple(1 << i if d == k_dim else 0 for d in range(rank))
                    for i in range(shape[k_dim].bit_length() - 1))
    kept = [bit for bit, basis in enumerate(acc.register) if any(project(basis))]
    registers = k_bases + tuple(project(acc.register[bit]) for bit in kept)
    layout = LinearLayout(shape, registers, tuple(map(project, acc.lane)), tuple(map(project, acc.warp)))
    return layout, kept


def _operand_register(r: int, kept: list[int], k: int, k_size: int) -> int:
    return k + k_size * sum(1 << i for i, bit in enumerate(kept) if r >> bit & 1)


def dot(low: KernelLowering, op: Operation) -> None:
    a_value, b_value, acc_value = op.operands
    rank = len(a_value.type.shape)
    k_size = a_value.type.shape[-1]
    layout = low.layout_for([acc_value], op.result.type)
    acc = low.block(acc_value, layout)
    a_layout, a_kept = operand_layout(layout, a_value.type.shape, rank - 1)
    b_layout, b_kept = operand_layout(layout, b_value.type.shape, rank - 2)
    src, dst = a_value.type.scalar, op.result.type.scalar
    builder = low.b
    a, b = ([cast(builder, v, src, dst) for v in low.block(x, x_layout).values]
            for x, x_layout in ((a_value, a_layout), (b_value, b_layout)))
    values = []
    for r, total in enumerate(acc.values):
        for k in range(k_size):
            total = multiply_add(builder, total, a[_operand_register(r, a_kept, k, k_size)],
                                 b[_operand_register(r, b_kept, k, k_size)], dst)
        values.append(total)
    low.define(op, Regs(layout, values))
