"""Atomics on the GPU: one LLVM atomic per element, performed by the thread that owns it.

The read-modify-write is the CPU backend's (`rmw`: `atomicrmw`, or a
compare-and-swap loop for float max/min and bf16 add; `cas`: `cmpxchg`), which NVPTX
lowers to `atom.global`; f16/f32/f64 add is `atomicrmw fadd` (`atom.add.f16/f32/f64`;
`atom.add.bf16` needs sm_90 and the LLVM IR is the same for every arch).
16-bit compare-and-swaps are `atom.cas.b16` (sm_70+) as inline PTX: LLVM would
widen them to the 32-bit word holding the element, touching the neighbour
(and past the end of an allocation of odd length). Only an element's owner acts -- never its copies in
other registers, lanes or warps, as each copy would apply the update once
more -- under the element's mask; the old values reach the copies through
shared memory. A scalar atomic is a block of rank 0: thread 0 acts and every
thread gets the old value. Masked-off elements give zero. Every atomic uses
LLVM's default (system) scope, at least as strong as any `scope` asked for.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import reg_type
from kdsl.backend.cpu.llvm_types import I16
from kdsl.backend.cpu.lower_atomics import ORDERING, cas, llvm_cmpxchg, rmw
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.lower_layout import Regs, through_shared
from kdsl.backend.cuda.lower_memory import both, guarded, owner
from kdsl.ir.core import Operation, Value
from kdsl.ir.types import bf16 as BF16

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

Atomic = Callable[[ir.IRBuilder, list[ir.Value]], ir.Value]


def _per_owner(low: KernelLowering, op: Operation, operands: list[Value], mask: Value | None, one: Atomic) -> None:
    t = op.result.type
    b = low.b
    layout = low.layout_for([*operands, *([mask] if mask else [])], t) if t.is_block else L.scalar(low.num_warps)
    n = layout.num_registers

    def columns(v: Value) -> list[ir.Value]:
        return low.block(v, layout).values if v.type.is_block else [low.values[v]] * n
    args = list(zip(*(columns(v) for v in operands)))
    masks = columns(mask) if mask is not None else [None] * n
    acting = owner(low, layout)
    copies = sum(1 << bit for bit in layout.free_bits("register"))
    zero = ir.Constant(reg_type(t.scalar), None)
    olds: list[ir.Value] = []
    for r in range(n):
        if r & copies:
            olds.append(olds[r & ~copies])
        else:
            olds.append(guarded(b, both(b, masks[r], acting), lambda: one(b, list(args[r])), zero))
    result = Regs(layout, olds)
    if acting is not None:
        result = through_shared(low, result, layout, writer=acting)
    low.define(op, result if t.is_block else result.values[0])


def _cmpxchg(b: ir.IRBuilder, address: ir.Value, expected: ir.Value, new: ir.Value, sem: str) -> tuple[ir.Value, ir.Value]:
    """LLVM's `cmpxchg`, but `atom.<sem>.sys.global.cas.b16` on 16-bit values."""
    if expected.type != I16:
        return llvm_cmpxchg(b, address, expected, new, sem)
    asm = ir.InlineAsm(ir.FunctionType(I16, [address.type, I16, I16]),
                       f"atom.{sem}.sys.global.cas.b16 $0, [$1], $2, $3;", "=h,l,h,h,~{memory}", side_effect=True)
    old = b.call(asm, [address, expected, new])
    return old, b.icmp_unsigned("==", old, expected)


def atomic_rmw(low: KernelLowering, op: Operation) -> None:
    """f16/f32/f64 add is the hardware's `atom.add`; the other kinds are the CPU's."""
    ptr, value, mask = (op.operands + [None])[:3]
    kind, sem = op.attrs["kind"], op.attrs["sem"]
    elem = value.type.scalar
    if elem.is_float and kind == "add" and elem != BF16:
        _per_owner(low, op, [ptr, value], mask, lambda b, a: b.atomic_rmw("fadd", a[0], a[1], ORDERING[sem]))
    else:
        _per_owner(low, op, [ptr, value], mask, lambda b, a: rmw(b, kind, a[0], a[1], elem, sem, _cmpxchg))


def atomic_cas(low: KernelLowering, op: Operation) -> None:
    sem, elem = op.attrs["sem"], op.operands[2].type.scalar
    _per_owner(low, op, list(op.operands), None, lambda b, a: cas(b, *a, elem, sem, _cmpxchg))
