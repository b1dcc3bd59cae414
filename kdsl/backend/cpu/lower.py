"""kdsl IR → LLVM IR: one LLVM function per kernel.

Scalars become LLVM SSA values. Each block value is a `Buffer` (an `alloca`
in the entry block, sized by its type) and each block op a loop over its
elements. Elementwise ops on scalars and on block elements share the emitters
of `kdsl.backend.cpu.elementwise`. `for`/`if` carry values through slots:
allocas for scalars (promoted by mem2reg) and buffers for blocks.
"""
from __future__ import annotations

from math import prod
from typing import Callable, Union

from llvmlite import ir

from kdsl.backend.cpu import lower_combine, lower_shape
from kdsl.backend.cpu.elementwise import ELEMENTWISE, bind
from kdsl.backend.cpu.llvm_types import I32, I64, constant, elem_of, from_memory, mem_type, reg_type, to_memory
from kdsl.backend.regions import lower_ops
from kdsl.backend.cpu.loops import Buffer, counted_loop, element_loop, memcpy, strides
from kdsl.backend.cpu.lower_atomics import lower_atomic_cas, lower_atomic_rmw
from kdsl.backend.cpu.lower_dot import lower_dot
from kdsl.errors import CompilationError
from kdsl.ir.core import Function, Operation, Region, Value
from kdsl.ir.ops import ELEMENTWISE as ELEMENTWISE_TRAIT, has_trait
from kdsl.ir.types import BlockType, PointerType

Lowered = Union[ir.Value, Buffer]
GRID_PARAMS = ("pid_x", "pid_y", "pid_z", "num_x", "num_y", "num_z")


def kernel_signature(fn: Function) -> ir.FunctionType:
    """The kernel's LLVM type: its arguments, then program ids and grid sizes (i32)."""
    for arg in fn.args:
        if arg.type.is_block:
            raise CompilationError(f"kernel argument of block type {arg.type}", fn.loc, fn.name)
    return ir.FunctionType(ir.VoidType(), [reg_type(a.type) for a in fn.args] + [I32] * 6)


class KernelLowering:
    """Emits one kdsl kernel into an LLVM function named `name`."""

    def __init__(self, module: ir.Module, fn: Function, name: str):
        self.fn = fn
        self.func = ir.Function(module, kernel_signature(fn), name=name)
        self.func.linkage = "internal"
        allocas = self.func.append_basic_block("allocas")
        self.entry = ir.IRBuilder(allocas)
        self.body = self.func.append_basic_block("body")
        self.b = ir.IRBuilder(self.body)
        self.values: dict[Value, Lowered] = {}
        self.stack_bytes = 0
        params = list(self.func.args)
        for arg, param in zip(fn.args, params):
            self.values[arg] = param
        self.grid = params[len(fn.args):]

    def lower(self) -> ir.Function:
        try:
            self.region(self.fn.body)
        except CompilationError as err:
            raise err.with_context(kernel=self.fn.name) from None
        self.entry.branch(self.body)
        return self.func

    # values ----------------------------------------------------------------
    def buffer(self, t: BlockType) -> Buffer:
        self.stack_bytes += t.numel * (8 if isinstance(t.elem, PointerType) else t.elem.bytes) + 32
        ptr = self.entry.alloca(mem_type(t.elem), size=t.numel)
        ptr.align = 32
        return Buffer(ptr, t)

    def slot(self, t) -> ir.Value | Buffer:
        return self.buffer(t) if isinstance(t, BlockType) else self.entry.alloca(reg_type(t))

    def element(self, v: Value, index: ir.Value) -> ir.Value:
        """Element `index` of a block operand, or the scalar itself."""
        lowered = self.values[v]
        return lowered.load(self.b, index) if isinstance(lowered, Buffer) else lowered

    def define(self, op: Operation, value: Lowered) -> None:
        self.values[op.result] = value

    # regions ---------------------------------------------------------------
    def region(self, region: Region) -> list[Value]:
        """Lower a region's ops; returns the terminator's operands."""
        return lower_ops(region, self.op, self.b)

    def op(self, op: Operation) -> None:
        if has_trait(op, ELEMENTWISE_TRAIT):
            self.elementwise(op)
            return
        handler = _HANDLERS.get(op.name)
        if handler is None:
            raise CompilationError(f"internal error: '{op.name}' cannot be lowered on the CPU "
                                   "(calls must be inlined first)", op.loc)
        handler(self, op)

    def elementwise(self, op: Operation) -> None:
        emit = bind(op)
        t = op.result.type
        if not isinstance(t, BlockType):
            self.define(op, emit(self.b, [self.values[v] for v in op.operands]))
            return
        out = self.buffer(t)
        with element_loop(self.b, t.numel, op.name) as i:
            out.store(self.b, i, emit(self.b, [self.element(v, i) for v in op.operands]))
        self.define(op, out)

    def fill(self, t: BlockType, value: Callable[[ir.Value], ir.Value], name: str) -> Buffer:
        """A new buffer with element i set to `value(i)`."""
        out = self.buffer(t)
        with element_loop(self.b, t.numel, name) as i:
            out.store(self.b, i, value(i))
        return out

    # ops without regions ---------------------------------------------------
    def constant(self, op: Operation) -> None:
        t = op.result.type
        scalar = constant(self.b, elem_of(t), op.attrs["value"])
        self.define(op, self.fill(t, lambda i: scalar, "splat") if isinstance(t, BlockType) else scalar)

    def program_id(self, op: Operation) -> None:
        self.define(op, self.grid[op.attrs["axis"]])

    def num_programs(self, op: Operation) -> None:
        self.define(op, self.grid[3 + op.attrs["axis"]])

    def arange(self, op: Operation) -> None:
        start = ir.Constant(I32, op.attrs["start"])
        self.define(op, self.fill(op.result.type, lambda i: self.b.add(self.b.trunc(i, I32), start), "arange"))

    def splat(self, op: Operation) -> None:
        scalar = self.values[op.operands[0]]
        self.define(op, self.fill(op.result.type, lambda i: scalar, "splat"))

    def broadcast(self, op: Operation) -> None:
        src: Buffer = self.values[op.operands[0]]
        out_t: BlockType = op.result.type
        out_strides, src_strides = strides(out_t.dims), strides(src.type.dims)

        def source_element(i: ir.Value) -> ir.Value:
            index = ir.Constant(I64, 0)
            for dim, n, out_stride, src_stride in zip(src.type.dims, out_t.dims, out_strides, src_strides):
                if dim == 1:
                    continue
                coord = self.b.urem(self.b.udiv(i, ir.Constant(I64, out_stride)), ir.Constant(I64, n))
                index = self.b.add(index, self.b.mul(coord, ir.Constant(I64, src_stride)))
            return src.load(self.b, index)
        self.define(op, self.fill(out_t, source_element, "broadcast"))

    def expand_dims(self, op: Operation) -> None:
        src: Buffer = self.values[op.operands[0]]
        self.define(op, Buffer(src.ptr, op.result.type))

    def guarded_address(self, mask: Value | None, address: ir.Value, elem, i: ir.Value) -> ir.Value:
        """`address`, or a private scratch slot where the mask is off: masked-off lanes
        never touch user memory, and the element loop stays branch-free."""
        if mask is None:
            return address
        scratch = self.entry.alloca(mem_type(elem))
        return self.b.select(self.element(mask, i), address, scratch)

    def load(self, op: Operation) -> None:
        ptr, mask, other = (op.operands + [None, None])[:3]
        t = op.result.type
        elem = elem_of(t)
        b = self.b

        def load_one(i: ir.Value) -> ir.Value:
            address = self.guarded_address(mask, self.element(ptr, i), elem, i)
            value = from_memory(b, b.load(address, typ=mem_type(elem)), elem)
            if mask is None:
                return value
            fallback = self.element(other, i) if other is not None else ir.Constant(reg_type(elem), None)
            return b.select(self.element(mask, i), value, fallback)
        self.define(op, self.fill(t, load_one, "load") if isinstance(t, BlockType) else load_one(ir.Constant(I64, 0)))

    def store(self, op: Operation) -> None:
        ptr, value, mask = (op.operands + [None])[:3]
        elem = elem_of(value.type)
        b = self.b

        def store_one(i: ir.Value) -> None:
            address = self.guarded_address(mask, self.element(ptr, i), elem, i)
            b.store(to_memory(b, self.element(value, i), elem), address)
        if isinstance(value.type, BlockType):
            with element_loop(b, value.type.numel, "store") as i:
                store_one(i)
        else:
            store_one(ir.Constant(I64, 0))

    def reduce(self, op: Operation) -> None:
        """Combine along `axis`: the source is viewed as (outer, axis, inner), in order."""
        src: Buffer = self.values[op.operands[0]]
        axis, dims = op.attrs["axis"], src.type.dims
        outer, n, inner = prod(dims[:axis]), dims[axis], prod(dims[axis + 1:])
        combine = ELEMENTWISE[{"sum": "add", "max": "max", "min": "min"}[op.attrs["kind"]]]
        elem = src.type.elem
        b = self.b

        def reduced(j: ir.Value) -> ir.Value:
            """The reduction for output element j = o * inner + k."""
            base = b.add(b.mul(b.udiv(j, ir.Constant(I64, inner)), ir.Constant(I64, n * inner)),
                         b.urem(j, ir.Constant(I64, inner)))
            acc = self.entry.alloca(reg_type(elem))
            b.store(src.load(b, base), acc)
            step = ir.Constant(I64, inner)
            with counted_loop(b, ir.Constant(I64, 1), ir.Constant(I64, n), ir.Constant(I64, 1), name="reduce") as r:
                x = src.load(b, b.add(base, b.mul(r, step)))
                b.store(combine(b, [b.load(acc), x], elem, elem, {}), acc)
            return b.load(acc)
        t = op.result.type
        if isinstance(t, BlockType):
            assert t.numel == outer * inner
            self.define(op, self.fill(t, reduced, "reduced"))
        else:
            self.define(op, reduced(ir.Constant(I64, 0)))

    # control flow ----------------------------------------------------------
    def write_slots(self, slots: list[Lowered], values: list[Value]) -> None:
        """Copy yielded values into slots; blocks that are slots themselves go through
        temporaries first, so a yield that permutes carried values stays correct."""
        lowered = [self.values[v] for v in values]
        slot_ptrs = {s.ptr for s in slots if isinstance(s, Buffer)}
        staged: list[Lowered] = []
        for slot, value in zip(slots, lowered):
            if isinstance(value, Buffer) and value.ptr in slot_ptrs and not _same_buffer(slot, value):
                temp = self.buffer(value.type)
                memcpy(self.b, temp.ptr, value.ptr, value.nbytes())
                value = temp
            staged.append(value)
        for slot, value in zip(slots, staged):
            if isinstance(slot, Buffer):
                if not _same_buffer(slot, value):
                    memcpy(self.b, slot.ptr, value.ptr, slot.nbytes())
            else:
                self.b.store(value, slot)

    def read_slots(self, slots: list[Lowered], targets: list[Value]) -> None:
        for slot, target in zip(slots, targets):
            self.values[target] = slot if isinstance(slot, Buffer) else self.b.load(slot)

    def for_(self, op: Operation) -> None:
        lb, ub, step, *inits = op.operands
        body = op.regions[0]
        slots = [self.slot(v.type) for v in inits]
        self.write_slots(slots, inits)
        signed = elem_of(lb.type).is_signed
        iv_values = [self.values[v] for v in (lb, ub, step)]
        with counted_loop(self.b, *iv_values, signed=signed, name="for") as iv:
            self.values[body.args[0]] = iv
            self.read_slots(slots, body.args[1:])
            self.write_slots(slots, self.region(body))
        self.read_slots(slots, op.results)

    def while_(self, op: Operation) -> None:
        """Slots carry the values: the first region tests and forwards them, the second updates them."""
        before, after = op.regions
        slots = [self.slot(v.type) for v in op.operands]
        self.write_slots(slots, op.operands)
        test = self.func.append_basic_block("while.test")
        body = self.func.append_basic_block("while.body")
        done = self.func.append_basic_block("while.done")
        self.b.branch(test)
        self.b.position_at_end(test)
        self.read_slots(slots, before.args)
        cond, *forwarded = self.region(before)
        self.write_slots(slots, forwarded)
        self.b.cbranch(self.values[cond], body, done)
        self.b.position_at_end(body)
        self.read_slots(slots, after.args)
        self.write_slots(slots, self.region(after))
        self.b.branch(test)
        self.b.position_at_end(done)
        self.read_slots(slots, op.results)

    def if_(self, op: Operation) -> None:
        slots = [self.slot(r.type) for r in op.results]
        with self.b.if_else(self.values[op.operands[0]]) as (then, otherwise):
            for branch, region in zip((then, otherwise), op.regions):
                with branch:
                    self.write_slots(slots, self.region(region))
        self.read_slots(slots, op.results)


def _same_buffer(slot: Lowered, value: Buffer) -> bool:
    return isinstance(slot, Buffer) and slot.ptr is value.ptr


_HANDLERS: dict[str, Callable[[KernelLowering, Operation], None]] = {
    "constant": KernelLowering.constant,
    "program_id": KernelLowering.program_id,
    "num_programs": KernelLowering.num_programs,
    "arange": KernelLowering.arange,
    "splat": KernelLowering.splat,
    "broadcast": KernelLowering.broadcast,
    "expand_dims": KernelLowering.expand_dims,
    "load": KernelLowering.load,
    "store": KernelLowering.store,
    "reduce": KernelLowering.reduce,
    "for": KernelLowering.for_,
    "if": KernelLowering.if_,
    "while": KernelLowering.while_,
    "dot": lower_dot,
    "atomic_rmw": lower_atomic_rmw,
    "atomic_cas": lower_atomic_cas,
}
_HANDLERS.update(lower_shape.HANDLERS)
_HANDLERS.update(lower_combine.HANDLERS)
