"""`dot` on CUDA cores: each thread computes its accumulator elements with scalar multiply-adds,
streaming K through shared memory, as Triton's FMA dot does. Dots that `lower_mma` takes (f16, bf16,
tf32, int8 operands in blocks of at least one mma tile) go to tensor cores instead; this path keeps
fp64, fp8, batched dots, f32 with input_precision "ieee" or "tf32x3", and small blocks.

The result takes the accumulator's default layout. Every thread first writes its
elements of `a` (MxK, or BxMxK batched) and `b` (KxN, or BxKxN) to shared memory,
each as [batch, k, row] (`a` transposed, `b` as it is) with rows padded by one bank:
at one k the lanes of a warp read consecutive or equal addresses, and the padding
spreads the writes of lanes that differ along k over the banks. After a barrier a
loop over k (`UNROLL` steps per iteration, an LLVM loop, so the code does not grow
with K) loads, per step, a[m, k] for each accumulator row m the thread holds and
b[k, n] for each of its columns n (`operand_rows`: the accumulator's bases
projected onto the operand, the batch coordinate included) and does the thread's
multiply-adds; a closing barrier frees the buffer for the next use (a dot in a
loop). Registers hold the accumulator, a base address per operand (each row is the
base plus a constant, `_Staged.indices`) and one k step's operand values, whatever K is.

Each element is `acc + a[m, 0] * b[0, n] + ... + a[m, K-1] * b[K-1, n]`,
k increasing, operands widened exactly to the result type, each step the shared
`multiply_add` (fused on f32/f64): the CPU backend's order and rounding, so the
results are the CPU's bit for bit. Every fp32 product here is exact fp32 (tf32 is `lower_mma`'s).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.elementwise import cast, multiply_add
from kdsl.backend.cpu.llvm_types import I32
from kdsl.backend.cuda import lower_mma
from kdsl.backend.cuda.layouts import Basis, LinearLayout
from kdsl.backend.cuda.lower_layout import Regs, type_bytes
from kdsl.backend.cuda.nvvm import barrier
from kdsl.ir.core import Operation, Value

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

UNROLL = 4  # k steps per iteration of the k loop
BANK_BYTES = 4
# Shared-memory indices are far from overflowing: saying so lets LLVM fold constant parts of an
# index into the address.
NO_WRAP = ("nuw", "nsw")


def operand_rows(acc: LinearLayout, shape: tuple[int, ...], k_dim: int) -> tuple[LinearLayout, list[int]]:
    """The rows of `a` (columns of `b`) that the accumulator elements of a thread need: a layout
    of the operand's `shape` with K (along `k_dim`) collapsed to 1, and the accumulator register
    bits it keeps (those moving along the operand's other dimensions).

    The accumulator's dimension that the operand lacks (N for `a`, M for `b`) sits where the
    operand has K, so an accumulator basis projects onto the operand by dropping that coordinate.
    Register `sum(1 << i)` (i over the kept bits set in accumulator register r) holds the row
    (or column) that accumulator register r needs."""
    def project(basis: Basis) -> Basis:
        return tuple(0 if d == k_dim else c for d, c in enumerate(basis))
    kept = [bit for bit, basis in enumerate(acc.register) if any(project(basis))]
    rows = tuple(1 if d == k_dim else n for d, n in enumerate(shape))
    registers = tuple(project(acc.register[bit]) for bit in kept)
    return LinearLayout(rows, registers, tuple(map(project, acc.lane)), tuple(map(project, acc.warp))), kept


def _row_register(r: int, kept: list[int]) -> int:
    return sum(1 << i for i, bit in enumerate(kept) if r >> bit & 1)


@dataclass(frozen=True)
class _Staged:
    """An operand in shared memory as [batch, k, row], rows `stride` elements apart, from element
    `start` of the buffer seen as an array of `slot`."""

    shape: tuple[int, ...]
    k_dim: int
    slot: ir.Type
    start: int

    @property
    def row_dim(self) -> int:
        rank = len(self.shape)
        return (rank - 2) + (rank - 1) - self.k_dim  # of the last two dimensions, the one that is not K

    @property
    def stride(self) -> int:
        return self.shape[self.row_dim] + max(1, BANK_BYTES // type_bytes(self.slot))

    @property
    def elements(self) -> int:
        return prod(self.shape[:-2]) * self.shape[self.k_dim] * self.stride

    def index(self, b: ir.IRBuilder, coords: list) -> ir.Value | int:
        """The buffer index of the element at `coords` (i32 values, or ints: then an int)."""
        def mul_add(x, n: int, y):
            if isinstance(x, int) and isinstance(y, int):
                return x * n + y
            return _add(b, b.mul(_i32(x), ir.Constant(I32, n), flags=NO_WRAP), _i32(y))
        batch = 0
        for c, n in zip(coords[:-2], self.shape[:-2]):
            batch = mul_add(batch, n, c)
        k_row = mul_add(batch, self.shape[self.k_dim], coords[self.k_dim])
        return mul_add(k_row, self.stride, coords[self.row_dim])

    def indices(self, low: KernelLowering, layout: LinearLayout) -> list[ir.Value]:
        """Per register of `layout` (over the operand's shape, or its rows: K collapsed to 1), the
        buffer index of its element. Where no register moves a coordinate along a bit that a lane
        or a warp moves, each is the thread's index (register 0's) plus a constant, which LLVM folds
        into the address: one base per thread however many registers."""
        b = low.b
        coords = low.coordinates(layout)
        thread_bits = [0] * layout.rank
        for basis in layout.lane + layout.warp:
            thread_bits = [m | c for m, c in zip(thread_bits, basis)]
        apart = not any(c & m for basis in layout.register for c, m in zip(basis, thread_bits))
        start = ir.Constant(I32, self.start)
        if not apart:
            return [_add(b, self.index(b, c), start) for c in coords]
        base = _add(b, self.index(b, coords[0]), start)
        return [_add(b, base, ir.Constant(I32, self.index(b, list(layout.combine("register", r)))))
                for r in range(layout.num_registers)]


def _i32(x) -> ir.Value:
    return ir.Constant(I32, x) if isinstance(x, int) else x


def _add(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.add(x, y, flags=NO_WRAP)


def _stage(low: KernelLowering, value: Value, k_dim: int, start_byte: int) -> _Staged:
    """Write each element of operand `value` this thread holds (copies once) to shared memory."""
    b = low.b
    regs = low.block(value)
    slot = regs.values[0].type
    staged = _Staged(value.type.shape, k_dim, slot, start_byte // type_bytes(slot))
    copies = sum(1 << bit for bit in regs.layout.free_bits("register"))
    for r, (v, index) in enumerate(zip(regs.values, staged.indices(low, regs.layout))):
        if not r & copies:
            b.store(v, low.shared.address(b, index, slot))
    return staged


def _load_rows(low: KernelLowering, staged: _Staged, starts: list[ir.Value], k: ir.Value, src, dst) -> list[ir.Value]:
    """Element k of each row from `starts` (the rows' indices at k = 0), widened from `src` to `dst`."""
    b = low.b
    offset = b.mul(k, ir.Constant(I32, staged.stride), flags=NO_WRAP)
    return [cast(b, b.load(low.shared.address(b, _add(b, start, offset), staged.slot), typ=staged.slot), src, dst)
            for start in starts]


def _align(nbytes: int, to: int = 16) -> int:
    return -(-nbytes // to) * to


def dot(low: KernelLowering, op: Operation) -> None:
    """On tensor cores where `lower_mma` takes the dot, else on CUDA cores."""
    inst = lower_mma.instruction(op, low.arch)
    if inst is not None:
        lower_mma.dot(low, op, inst)
        return
    a_value, b_value, acc_value = op.operands
    rank = len(a_value.type.shape)
    k_size = a_value.type.shape[-1]
    layout = low.layout_for([acc_value], op.result.type)
    acc = low.block(acc_value, layout)
    b = low.b
    a_staged = _stage(low, a_value, rank - 1, 0)
    b_start = _align(a_staged.elements * type_bytes(a_staged.slot))
    b_staged = _stage(low, b_value, rank - 2, b_start)
    low.shared.reserve(b_start + b_staged.elements * type_bytes(b_staged.slot))
    dst = op.result.type.scalar
    operands = []  # per operand: (staged, scalar type, row addresses at k = 0, kept accumulator bits)
    for value, staged in ((a_value, a_staged), (b_value, b_staged)):
        rows, kept = operand_rows(layout, value.type.shape, staged.k_dim)
        operands.append((staged, value.type.scalar, staged.indices(low, rows), kept))
    barrier(b)

    def k_step(k: ir.Value, totals: list[ir.Value]) -> list[ir.Value]:
        (a_rows, a_kept), (b_rows, b_kept) = ((_load_rows(low, staged, starts, k, src, dst), kept)
                                              for staged, src, starts, kept in operands)
        return [multiply_add(b, total, a_rows[_row_register(r, a_kept)], b_rows[_row_register(r, b_kept)], dst)
                for r, total in enumerate(totals)]

    def k_steps(k0: ir.Value, totals: list[ir.Value]) -> list[ir.Value]:
        for j in range(min(k_size, UNROLL)):
            totals = k_step(b.add(k0, ir.Constant(I32, j)), totals)
        return totals
    values = k_steps(ir.Constant(I32, 0), acc.values) if k_size <= UNROLL else _k_loop(low, k_size, acc.values,
                                                                                         k_steps)
    barrier(b)
    low.define(op, Regs(layout, values))


def _k_loop(low: KernelLowering, k_size: int, totals: list[ir.Value], k_steps) -> list[ir.Value]:
    """`k_steps(k, totals)` for k = 0, UNROLL, 2 * UNROLL, ... below `k_size` (a power of two
    above UNROLL, so a multiple of it), in an LLVM loop carrying the totals."""
    b = low.b
    before = b.block
    head, done = (low.func.append_basic_block(f"dot.{part}") for part in ("k", "done"))
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(I32)
    phis = [b.phi(v.type) for v in totals]
    k.add_incoming(ir.Constant(I32, 0), before)
    for phi, v in zip(phis, totals):
        phi.add_incoming(v, before)
    stepped = k_steps(k, phis)
    next_k = b.add(k, ir.Constant(I32, UNROLL))
    k.add_incoming(next_k, b.block)
    for phi, v in zip(phis, stepped):
        phi.add_incoming(v, b.block)
    b.cbranch(b.icmp_unsigned("<", next_k, ir.Constant(I32, k_size)), head, done)
    b.position_at_end(done)
    return stepped
