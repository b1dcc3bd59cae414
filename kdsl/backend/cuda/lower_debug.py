"""The GPU lowering of `print` and `assert`: records in the hidden debug buffer.

The buffer's layout, the protocol and what the host does with it are in
`debug_buffer`'s docstring. `DebugChannel` holds the kernel's hidden parameter,
its site table and the per-thread print counter; `lower_print` and
`lower_assert` are the ops' handlers.
"""
from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I32, I64
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda.debug_buffer import (
    CAPACITY, CURSOR, DROPPED, END, FAILED_INDEX, FAILED_PID, FAILED_SITE, HEADER_WORDS, NO_ELEMENT, DebugSite,
    PrintSite,
)
from kdsl.backend.cuda.lower_layout import row_major_index
from kdsl.backend.cuda.lower_memory import owner
from kdsl.backend.cuda.lower_reduce import reduce_registers
from kdsl.backend.cuda.nvvm import barrier, special_register
from kdsl.ir.core import Function, Operation, Value
from kdsl.ir.types import PointerType
from kdsl.runtime.device_assert import AssertSite

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

DEBUG_OPS = ("print", "assert")


def needs_debug_buffer(fn: Function) -> bool:
    return any(op.name in DEBUG_OPS for op in fn.walk())


def _i32(value: int) -> ir.Constant:
    return ir.Constant(I32, value)


class DebugChannel:
    """The hidden debug-buffer parameter of one kernel and the code its prints and asserts share."""

    def __init__(self, low: KernelLowering, buffer: ir.Value):
        self.low, self.buffer = low, buffer
        buffer.name = "debug_buffer"
        self.sites: list[DebugSite] = []
        b = low.b
        self.thread0 = owner(low, L.scalar(low.num_warps))
        self.capacity = b.load(self.word(_i32(CAPACITY)), typ=I32)
        self.counter = b.alloca(I32, name="prints")
        b.store(_i32(0), self.counter)
        self.pid = [special_register(b, "ctaid." + axis) for axis in "xyz"]
        if any(op.name == "assert" for op in low.fn.walk()):
            self._return_if_failed()

    def word(self, index: ir.Value) -> ir.Value:
        """The address of header word `index` (record words follow at HEADER_WORDS)."""
        return self.low.b.gep(self.buffer, [self.low.b.zext(index, I64)], source_etype=I32)

    def site(self, site: DebugSite) -> int:
        self.sites.append(site)
        return len(self.sites) - 1

    def _return_if_failed(self) -> None:
        """Every thread returns where an assertion has already failed; thread 0 reads the flag and
        shares it through shared memory, so that the CTA decides as one."""
        low, b = self.low, self.low.b
        low.shared.reserve(4)
        slot = low.shared.address(b, _i32(0), I32)
        with b.if_then(self.thread0):
            b.store(b.load_atomic(self.word(_i32(FAILED_SITE)), "monotonic", 4, typ=I32), slot)
        barrier(b)
        failed = b.load(slot, typ=I32)
        barrier(b)
        with b.if_then(b.icmp_unsigned("!=", failed, _i32(0)), likely=False):
            b.ret_void()

    def append(self, acting: ir.Value | None, words: list[ir.Value]) -> None:
        """Where `acting` holds (everywhere when None): claim room for `words` and write them, or
        count the record as dropped when it does not fit and end the written records before it."""
        b = self.low.b
        size = _i32(len(words))

        def write() -> None:
            start = b.atomic_rmw("add", self.word(_i32(CURSOR)), size, "monotonic")
            end = b.add(b.zext(start, I64), ir.Constant(I64, len(words)))
            with b.if_else(b.icmp_unsigned("<=", end, b.zext(self.capacity, I64))) as (fits, dropped):
                with fits:
                    first = b.add(start, _i32(HEADER_WORDS))
                    for k, w in enumerate(words):
                        b.store(w, self.word(b.add(first, _i32(k))))
                with dropped:
                    b.atomic_rmw("add", self.word(_i32(DROPPED)), _i32(1), "monotonic")
                    b.atomic_rmw("umin", self.word(_i32(END)), start, "monotonic")
        if acting is None:
            write()
        else:
            with b.if_then(acting):
                write()


def _words(b: ir.IRBuilder, value: ir.Value, elem) -> list[ir.Value]:
    """An element's bits as i32 words (low word first); narrower values zero-extended."""
    if isinstance(elem, PointerType):
        value = b.ptrtoint(value, I64)
    elif not isinstance(value.type, ir.IntType):
        value = b.bitcast(value, ir.IntType(elem.bits))
    if value.type.width <= 32:
        return [b.zext(value, I32) if value.type.width < 32 else value]
    return [b.trunc(value, I32), b.trunc(b.lshr(value, ir.Constant(I64, 32)), I32)]


def _entries(low: KernelLowering, v: Value) -> tuple[ir.Value | None, list[ir.Value], int]:
    """(where this thread holds elements of `v` (None: everywhere), the words of its entries
    (index and bits per register that is not a copy; the index is NO_ELEMENT in threads holding
    only copies), the number of entries)."""
    b, elem = low.b, v.type.scalar
    if not v.type.is_block:
        acting = low.debug.thread0
        pairs = [(_i32(0), low.values[v])]
    else:
        regs = low.block(v)
        acting = owner(low, regs.layout)
        coords = low.coordinates(regs.layout)
        copies = sum(1 << bit for bit in regs.layout.free_bits("register"))
        pairs = [(row_major_index(b, coords[r], v.type.shape), regs.values[r])
                 for r in range(regs.layout.num_registers) if r & copies == 0]
    words = []
    for index, value in pairs:
        words.append(index if acting is None else b.select(acting, index, _i32(NO_ELEMENT)))
        words += _words(b, value, elem)
    return acting, words, len(pairs)


def lower_print(low: KernelLowering, op: Operation) -> None:
    channel, b = low.debug, low.b
    helds, payload, registers = [], [], []
    for v in op.operands:
        held, words, n = _entries(low, v)
        helds.append(held)
        payload += words
        registers.append(n)
    if not helds:
        acting: ir.Value | None = channel.thread0
    elif any(held is None for held in helds):
        acting = None
    else:
        acting = reduce(b.or_, helds)
    site = channel.site(PrintSite(op.attrs["prefix"], op.attrs["hex"], tuple(v.type for v in op.operands),
                                  tuple(registers)))
    counter = b.load(channel.counter, typ=I32)
    b.store(b.add(counter, _i32(1)), channel.counter)
    channel.append(acting, [_i32(site), *channel.pid, counter, *payload])


def lower_assert(low: KernelLowering, op: Operation) -> None:
    channel, b = low.debug, low.b
    cond = op.operands[0]
    site = channel.site(AssertSite(op.loc, op.attrs["message"], cond.type.shape))
    if cond.type.is_block:
        regs = low.block(cond)
        coords = low.coordinates(regs.layout)
        failing = [b.select(ok, _i32(NO_ELEMENT), row_major_index(b, coords[r], cond.type.shape))
                   for r, ok in enumerate(regs.values)]

        def first(x: ir.Value, y: ir.Value) -> ir.Value:
            return b.select(b.icmp_unsigned("<", x, y), x, y)
        flat = L.reshape(regs.layout, (cond.type.numel,))
        index = reduce_registers(low, flat, 0, failing, first)[0]
        failed = b.icmp_unsigned("!=", index, _i32(NO_ELEMENT))
    else:
        index, failed = _i32(0), b.not_(low.values[cond])
    with b.if_then(failed, likely=False):
        with b.if_then(channel.thread0):
            claim = b.cmpxchg(channel.word(_i32(FAILED_SITE)), _i32(0), _i32(site + 1), "monotonic", "monotonic")
            with b.if_then(b.extract_value(claim, 1)):
                slots = [FAILED_PID, FAILED_PID + 1, FAILED_PID + 2, FAILED_INDEX]
                for slot, value in zip(slots, [*channel.pid, index]):
                    b.store(value, channel.word(_i32(slot)))
        b.ret_void()
