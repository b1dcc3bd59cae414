"""kdsl IR → LLVM IR: one LLVM function per kernel.

Scalars become LLVM SSA values. Each block value is a `Buffer` (an `alloca`
in the entry block, sized by its type) and each block op a loop over its
elements; runs of element ops share one loop (`fusion`). Element ops on
scalars and on block elements share their rules (`_ELEMENT_RULES`, with the
emitters of `kdsl.backend.cpu.elementwise`). `for`/`if` carry values through slots:
allocas for scalars (promoted by mem2reg) and buffers for blocks.
"""
from __future__ import annotations

from math import prod
from typing import Callable, Union

from llvmlite import ir

from kdsl.backend.cpu import lower_combine, lower_shape
from kdsl.backend.cpu.fusion import block_size, schedule
from kdsl.backend.cpu.elementwise import ELEMENTWISE, bind
from kdsl.backend.cpu.llvm_types import I32, I64, PTR, constant, elem_of, from_memory, mem_type, reg_type, to_memory
from kdsl.backend.cpu.loops import Buffer, counted_loop, element_loop, memcpy, strides
from kdsl.backend.cpu.lower_atomics import lower_atomic_cas, lower_atomic_rmw
from kdsl.backend.cpu.lower_debug import lower_assert, lower_print
from kdsl.backend.cpu.lower_dot import lower_dot
from kdsl.errors import CompilationError
from kdsl.ir.core import Function, OpResult, Operation, Region, Value
from kdsl.ir.ops import ELEMENTWISE as ELEMENTWISE_TRAIT, has_trait
from kdsl.ir.types import BlockType, PointerType
from kdsl.runtime.device_assert import AssertSite

Lowered = Union[ir.Value, Buffer]
GRID_PARAMS = ("pid_x", "pid_y", "pid_z", "num_x", "num_y", "num_z")


def kernel_signature(fn: Function) -> ir.FunctionType:
    """The kernel's LLVM type: its arguments, then program ids and grid sizes (i32), then
    the launch's status (see `lower_debug`)."""
    for arg in fn.args:
        if arg.type.is_block:
            raise CompilationError(f"kernel argument of block type {arg.type}", fn.loc, fn.name)
    return ir.FunctionType(ir.VoidType(), [reg_type(a.type) for a in fn.args] + [I32] * 6 + [PTR])


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
        self.grid = params[len(fn.args):-1]
        self.status = params[-1]
        self.assert_sites: list[AssertSite] = []
        self.iteration: dict[Value, ir.Value] = {}  # the elements computed so far in a fused loop
        self.unmasked: set[Value] = set()  # masks known to be all true in the loop being emitted

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
        if v in self.iteration:
            return self.iteration[v]
        lowered = self.values[v]
        return lowered.load(self.b, index) if isinstance(lowered, Buffer) else lowered

    def define(self, op: Operation, value: Lowered) -> None:
        self.values[op.result] = value

    # regions ---------------------------------------------------------------
    def region(self, region: Region) -> list[Value]:
        """Lower a region's ops; returns the terminator's operands."""
        for run in schedule(region.ops):
            op = run[0]
            if op.name in ("yield", "return", "condition"):
                if op.name == "return":
                    self.b.ret_void()
                return op.operands
            if len(run) > 1 or op.name in _ELEMENT_RULES or has_trait(op, ELEMENTWISE_TRAIT):
                self.element_ops(run)
            else:
                self.op(op)
        return []

    def op(self, op: Operation) -> None:
        try:
            handler = _HANDLERS.get(op.name)
            if handler is None:
                raise CompilationError(f"internal error: '{op.name}' cannot be lowered on the CPU "
                                       "(calls must be inlined first)", op.loc)
            handler(self, op)
        except CompilationError as err:
            raise err.with_context(loc=op.loc) from None

    def element_ops(self, run: list[Operation]) -> None:
        """Element ops (see `fusion`): on scalars one at a time, on blocks all in one element loop.
        Where the masks of the loop's loads and stores can be computed first, the loop up to the
        last access comes twice: without masks, taken when they are all true (plain vector
        accesses), and with them; the ops after it follow in a loop of their own."""
        first = run[0]
        t = first.operands[1].type if first.name == "store" else first.result.type
        if not isinstance(t, BlockType):
            self.define_element(first, ir.Constant(I64, 0))
            return
        masks = _precomputable_masks(run)
        last_access = max((k for k, op in enumerate(run) if op.name in ("load", "store")), default=len(run))
        if masks and last_access + 1 < len(run):
            self.element_ops(run[:last_access + 1])
            self.element_ops(run[last_access + 1:])
            return
        outs = {op: self.buffer(op.result.type) for op in run if op.results}
        if masks:
            with self.b.if_else(self.all_true(masks, t.numel), likely=True) as (unmasked, masked):
                with unmasked:
                    self.unmasked = masks
                    self.element_loop(run, outs, t.numel)
                    self.unmasked = set()
                with masked:
                    self.element_loop(run, outs, t.numel)
        else:
            self.element_loop(run, outs, t.numel)
        for op, out in outs.items():
            self.define(op, out)

    def element_loop(self, run: list[Operation], outs: dict[Operation, Buffer], numel: int) -> None:
        with element_loop(self.b, numel, run[0].name) as i:
            for op in run:
                value = self.define_element(op, i)
                if op in outs:
                    self.iteration[op.result] = value
                    outs[op].store(self.b, i, value)
            self.iteration = {}

    def all_true(self, masks: set[Value], numel: int) -> ir.Value:
        """Whether every element of every mask is true (one vectorisable loop)."""
        b = self.b
        acc = self.entry.alloca(ir.IntType(1))
        b.store(ir.Constant(ir.IntType(1), 1), acc)
        with element_loop(b, numel, "all_true") as i:
            for mask in masks:
                b.store(b.and_(b.load(acc), self.recomputed(mask, i)), acc)
            self.iteration = {}
        return b.load(acc)

    def define_element(self, op: Operation, i: ir.Value) -> ir.Value | None:
        """Element `i` of `op`'s result (the scalar result itself when `op` works on scalars)."""
        try:
            rule = _ELEMENT_RULES.get(op.name, KernelLowering.elementwise)
            value = rule(self, op, i)
        except CompilationError as err:
            raise err.with_context(loc=op.loc) from None
        if op.results and not isinstance(op.result.type, BlockType):
            self.define(op, value)
        return value

    def elementwise(self, op: Operation, i: ir.Value) -> ir.Value:
        return bind(op)(self.b, [self.element(v, i) for v in op.operands])

    def fill(self, t: BlockType, value: Callable[[ir.Value], ir.Value], name: str) -> Buffer:
        """A new buffer with element i set to `value(i)`."""
        out = self.buffer(t)
        with element_loop(self.b, t.numel, name) as i:
            out.store(self.b, i, value(i))
        return out

    # ops without regions ---------------------------------------------------
    def constant(self, op: Operation, i: ir.Value) -> ir.Value:
        return constant(self.b, elem_of(op.result.type), op.attrs["value"])

    def program_id(self, op: Operation) -> None:
        self.define(op, self.grid[op.attrs["axis"]])

    def num_programs(self, op: Operation) -> None:
        self.define(op, self.grid[3 + op.attrs["axis"]])

    def arange(self, op: Operation, i: ir.Value) -> ir.Value:
        return self.b.add(self.b.trunc(i, I32), ir.Constant(I32, op.attrs["start"]))

    def splat(self, op: Operation, i: ir.Value) -> ir.Value:
        return self.values[op.operands[0]]

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

    def load(self, op: Operation, i: ir.Value) -> ir.Value:
        """A masked-off element takes `other` without touching memory: a branch around the
        load, which LLVM's vectoriser turns into a masked vector load."""
        ptr, mask, other = (op.operands + [None, None])[:3]
        elem = elem_of(op.result.type)
        b = self.b

        def load_one() -> ir.Value:
            return from_memory(b, b.load(self.element(ptr, i), typ=mem_type(elem)), elem)
        if mask is None:
            return load_one()
        if mask in self.unmasked:
            return load_one()
        fallback = self.element(other, i) if other is not None else ir.Constant(reg_type(elem), None)
        before = b.block
        with b.if_then(self.element(mask, i)):
            loaded = load_one()
            loaded_in = b.block
        value = b.phi(reg_type(elem))
        value.add_incoming(loaded, loaded_in)
        value.add_incoming(fallback, before)
        return value

    def store(self, op: Operation, i: ir.Value) -> None:
        ptr, value, mask = (op.operands + [None])[:3]
        elem = elem_of(value.type)
        b = self.b
        address = self.recomputed(ptr, i)
        if mask is None or mask in self.unmasked:
            b.store(to_memory(b, self.element(value, i), elem), address)
            return
        with b.if_then(self.recomputed(mask, i)):
            b.store(to_memory(b, self.element(value, i), elem), address)

    def recomputed(self, v: Value, i: ir.Value) -> ir.Value:
        """Element `i` of a store's address or mask, recomputed in the store's loop from the element
        ops (loads aside) that made it: cheap, and it shows LLVM consecutive addresses to vectorise."""
        if isinstance(v, OpResult) and v not in self.iteration and v.op.name != "load" and block_size(v.op):
            for operand in v.op.operands:
                self.recomputed(operand, i)
            self.iteration[v] = self.define_element(v.op, i)
        return self.element(v, i)

    def reduce(self, op: Operation) -> None:
        """Combine along `axis`: the source is viewed as (outer, axis, inner), in order."""
        src: Buffer = self.values[op.operands[0]]
        axis, dims = op.attrs["axis"], src.type.dims
        outer, n, inner = prod(dims[:axis]), dims[axis], prod(dims[axis + 1:])
        combine = ELEMENTWISE[{"sum": "add", "max": "max", "min": "min"}[op.attrs["kind"]]]
        elem = src.type.elem
        b = self.b

        def reduced(j: ir.Value) -> ir.Value:
            """The reduction for output element j = o * inner + k: from the sum's identity (-0.0 +
            x is x), or from the first element for max and min (combining it with itself is
            harmless), over all n elements, so that the vectorised loop needs no scalar tail."""
            base = b.add(b.mul(b.udiv(j, ir.Constant(I64, inner)), ir.Constant(I64, n * inner)),
                         b.urem(j, ir.Constant(I64, inner)))
            acc = self.entry.alloca(reg_type(elem))
            first = constant(b, elem, -0.0 if elem.is_float else 0) if op.attrs["kind"] == "sum" else src.load(b, base)
            b.store(first, acc)
            step = ir.Constant(I64, inner)
            with counted_loop(b, ir.Constant(I64, 0), ir.Constant(I64, n), ir.Constant(I64, 1), name="reduce") as r:
                x = src.load(b, b.add(base, b.mul(r, step)))
                b.store(_reassociable(combine(b, [b.load(acc), x], elem, elem, {})), acc)
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


def _reassociable(value: ir.Value) -> ir.Value:
    """A float sum whose terms LLVM may regroup (as Triton's tree reductions do), so that it
    vectorises; integer sums, max and min vectorise as they are."""
    if isinstance(value, ir.Instruction) and value.opname == "fadd":
        value.flags.append("reassoc")
    return value


def _precomputable_masks(run: list[Operation]) -> set[Value]:
    """The block masks of `run`'s loads and stores, when all of them can be computed before the
    run: none of them depends on a load of the run."""
    inside = {op.result: op for op in run if op.results}
    known: dict[Value, bool] = {}

    def before_run(v: Value) -> bool:
        if v not in inside:
            return True
        if v not in known:
            op = inside[v]
            known[v] = op.name != "load" and all(before_run(o) for o in op.operands)
        return known[v]
    masks = {op.operands[{"load": 1, "store": 2}[op.name]] for op in run
             if op.name in ("load", "store") and len(op.operands) > {"load": 1, "store": 2}[op.name]}
    blocks = {m for m in masks if isinstance(m.type, BlockType)}
    return blocks if blocks and all(before_run(m) for m in blocks) else set()


def _same_buffer(slot: Lowered, value: Buffer) -> bool:
    return isinstance(slot, Buffer) and slot.ptr is value.ptr


_ELEMENT_RULES: dict[str, Callable[[KernelLowering, Operation, ir.Value], ir.Value | None]] = {
    "constant": KernelLowering.constant,
    "arange": KernelLowering.arange,
    "splat": KernelLowering.splat,
    "load": KernelLowering.load,
    "store": KernelLowering.store,
}
_HANDLERS: dict[str, Callable[[KernelLowering, Operation], None]] = {
    "program_id": KernelLowering.program_id,
    "num_programs": KernelLowering.num_programs,
    "broadcast": KernelLowering.broadcast,
    "expand_dims": KernelLowering.expand_dims,
    "reduce": KernelLowering.reduce,
    "for": KernelLowering.for_,
    "if": KernelLowering.if_,
    "while": KernelLowering.while_,
    "dot": lower_dot,
    "atomic_rmw": lower_atomic_rmw,
    "atomic_cas": lower_atomic_cas,
    "print": lower_print,
    "assert": lower_assert,
}
_HANDLERS.update(lower_shape.HANDLERS)
_HANDLERS.update(lower_combine.HANDLERS)
