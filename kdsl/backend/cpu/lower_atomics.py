"""The CPU lowering of `atomic_rmw` and `atomic_cas`: one LLVM atomic per element.

Integer kinds are single `atomicrmw`s; `cas` is a `cmpxchg` on the bits. Float kinds work
on the element's bits: `xchg` is an integer `atomicrmw xchg`, and `add`,
`max`, `min` are compare-and-swap loops whose new value comes from the
elementwise emitters (fp16 and bf16 included) or, for max/min, from Triton's
bit-pattern comparison. Masked-off lanes act on a private scratch slot
(`KernelLowering.guarded_address`), so the element loop has no branch per
mask and user memory is never touched; their result is whatever the slot held.
`sem` maps to LLVM orderings; the CPU has one scope.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from kdsl.backend.cpu.elementwise import ELEMENTWISE
from kdsl.backend.cpu.llvm_types import I64, elem_of, reg_type
from kdsl.ir.core import Operation
from kdsl.ir.types import BlockType, ScalarType

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering

ORDERING = {"relaxed": "monotonic", "acquire": "acquire", "release": "release", "acq_rel": "acq_rel"}
FAILURE_ORDERING = {"relaxed": "monotonic", "acquire": "acquire", "release": "monotonic", "acq_rel": "acquire"}
_INT_RMW = {"add": "add", "and": "and", "or": "or", "xor": "xor", "xchg": "xchg"}
# Triton's float max/min on bits: (op when val's sign bit is clear, op when it is set)
_FLOAT_EXTREME = {"max": (">", "<"), "min": ("<", ">")}

BitsUpdate = Callable[[ir.IRBuilder, ir.Value], ir.Value]
CompareSwap = Callable[[ir.IRBuilder, ir.Value, ir.Value, ir.Value, str], tuple[ir.Value, ir.Value]]
"""`(b, address, expected, new, sem) -> (old bits, swapped)`: one atomic compare-and-swap."""


def _bits_type(elem: ScalarType) -> ir.IntType:
    return ir.IntType(elem.bits)


def llvm_cmpxchg(b: ir.IRBuilder, address: ir.Value, expected: ir.Value, new: ir.Value, sem: str) -> tuple[ir.Value, ir.Value]:
    """LLVM's `cmpxchg`."""
    pair = b.cmpxchg(address, expected, new, ORDERING[sem], FAILURE_ORDERING[sem])
    return b.extract_value(pair, 0), b.extract_value(pair, 1)


def _cas_loop(b: ir.IRBuilder, address: ir.Value, bits: ir.IntType, update: BitsUpdate, sem: str,
              cmpxchg: CompareSwap) -> ir.Value:
    """Atomically replace the bits at `address` by `update(old)`; returns the old bits."""
    first = b.load_atomic(address, "monotonic", bits.width // 8, typ=bits)
    before = b.block
    retry = b.append_basic_block("atomic.retry")
    done = b.append_basic_block("atomic.done")
    b.branch(retry)
    b.position_at_end(retry)
    old = b.phi(bits)
    old.add_incoming(first, before)
    seen, swapped = cmpxchg(b, address, old, update(b, old), sem)
    old.add_incoming(seen, b.block)
    b.cbranch(swapped, done, retry)
    b.position_at_end(done)
    return old


def _float_update(kind: str, value: ir.Value, elem: ScalarType) -> BitsUpdate:
    """The new bits of a float `add`, `max` or `min` from the old bits."""
    bits = _bits_type(elem)
    if kind == "add":
        add = ELEMENTWISE["add"]
        return lambda b, old: b.bitcast(add(b, [b.bitcast(old, reg_type(elem)), value], elem, elem, {}), bits)
    when_clear, when_set = _FLOAT_EXTREME[kind]

    def extreme(b: ir.IRBuilder, old: ir.Value) -> ir.Value:
        v = b.bitcast(value, bits)
        clear = b.select(b.icmp_signed(when_clear, old, v), old, v)
        set_ = b.select(b.icmp_unsigned(when_set, old, v), old, v)
        return b.select(b.icmp_signed("<", v, ir.Constant(bits, 0)), set_, clear)
    return extreme


def rmw(b: ir.IRBuilder, kind: str, address: ir.Value, value: ir.Value, elem: ScalarType, sem: str,
        cmpxchg: CompareSwap = llvm_cmpxchg) -> ir.Value:
    """One atomic read-modify-write of `elem` at `address`; returns the old value."""
    if elem.is_float and kind != "xchg":
        old = _cas_loop(b, address, _bits_type(elem), _float_update(kind, value, elem), sem, cmpxchg)
        return b.bitcast(old, reg_type(elem))
    if elem.is_float:
        old = b.atomic_rmw("xchg", address, b.bitcast(value, _bits_type(elem)), ORDERING[sem])
        return b.bitcast(old, reg_type(elem))
    op = _INT_RMW.get(kind) or ("" if elem.is_signed else "u") + kind
    return b.atomic_rmw(op, address, value, ORDERING[sem])


def _per_element(lowering: "KernelLowering", op: Operation, one: Callable[[ir.Value], ir.Value]) -> None:
    lowering.check_accesses([op], None)
    t = op.result.type
    lowering.define(op, lowering.fill(t, one, op.name) if isinstance(t, BlockType) else one(ir.Constant(I64, 0)))


def lower_atomic_rmw(lowering: "KernelLowering", op: Operation) -> None:
    ptr, value, mask = (op.operands + [None])[:3]
    elem = elem_of(value.type)
    b = lowering.b

    def one(i: ir.Value) -> ir.Value:
        address = lowering.guarded_address(mask, lowering.element(ptr, i), elem, i)
        return rmw(b, op.attrs["kind"], address, lowering.element(value, i), elem, op.attrs["sem"])
    _per_element(lowering, op, one)


def lower_atomic_cas(lowering: "KernelLowering", op: Operation) -> None:
    ptr, cmp, value = op.operands
    b = lowering.b
    sem = op.attrs["sem"]

    elem = elem_of(value.type)

    def one(i: ir.Value) -> ir.Value:
        return cas(b, lowering.element(ptr, i), lowering.element(cmp, i), lowering.element(value, i), elem, sem)
    _per_element(lowering, op, one)


def cas(b: ir.IRBuilder, address: ir.Value, cmp: ir.Value, value: ir.Value, elem: ScalarType, sem: str,
        cmpxchg: CompareSwap = llvm_cmpxchg) -> ir.Value:
    """One compare-and-swap on the element's bits (floats compare bits, as Triton); returns the old value."""
    bits = _bits_type(elem)
    expected, new = (b.bitcast(v, bits) for v in (cmp, value))
    return b.bitcast(cmpxchg(b, address, expected, new, sem)[0], reg_type(elem))
