"""kdsl IR → LLVM IR: one LLVM function per kernel.

Scalars become LLVM SSA values. Block ops become loops over their elements; runs of element
ops share one loop (`fusion`), and a block read outside its run goes to a `Buffer` (an
`alloca` in the entry block, sized by its type). Not every such block does: index arithmetic
and cheap float ops (`fusion.recomputable_op`) are computed again in the loops that read them,
and a load is loaded again where no op writes memory between it and its readers, so that the
row softmax and layer norm read in three loops is loaded in each (from the cache), not copied.
Element ops on scalars and on block elements share their rules (`_ELEMENT_RULES`, with the
emitters of `kdsl.backend.cpu.elementwise`). `for`/`if` carry values through slots: allocas
for scalars (promoted by mem2reg) and buffers for blocks.
"""
from __future__ import annotations

from contextlib import contextmanager
from math import prod
from typing import Callable, Iterator, NamedTuple, Union

from llvmlite import ir

from kdsl.backend.cpu import lower_combine, lower_shape
from kdsl.backend.cpu.fusion import (VIEWS, block_size, element_op, precomputable_masks, recomputable_op, reloadable_loads,
                                     run_size, schedule, whole_reduction)
from kdsl.backend.cpu.elementwise import ELEMENTWISE, bind, declare, divide_by_uniform
from kdsl.backend.cpu.llvm_types import I32, I64, PTR, constant, elem_of, from_memory, mem_type, reg_type, to_memory
from kdsl.backend.cpu.loops import Buffer, counted_loop, element_loop, memcpy, strides
from kdsl.backend.cpu.lower_shape import coordinate
from kdsl.backend.cpu.lower_atomics import lower_atomic_cas, lower_atomic_rmw
from kdsl.backend.cpu.lower_bounds import BoundsChecks
from kdsl.backend.cpu.lower_debug import lower_assert, lower_print
from kdsl.backend.cpu.lower_dot import lower_dot
from kdsl.errors import CompilationError
from kdsl.ir.core import Function, OpResult, Operation, Region, Value
from kdsl.ir.ops import ELEMENTWISE as ELEMENTWISE_TRAIT, has_trait
from kdsl.ir.passes.axis_info import AxisAnalysis
from kdsl.ir.passes.provenance import ACCESSES
from kdsl.ir.types import BlockType, PointerType, ScalarType, f32
from kdsl.runtime.device_assert import AssertSite

Lowered = Union[ir.Value, Buffer]


class _LoopIndex(NamedTuple):
    """An element loop's linear index and, where it runs along rows, its outer and inner ones."""

    index: ir.Value
    outer: ir.Value | None
    inner: ir.Value
    row: int


# a cache line, and the widest vector: a 512-bit access to a buffer never spans two lines
BUFFER_ALIGN = 64
GRID_PARAMS = ("pid_x", "pid_y", "pid_z", "num_x", "num_y", "num_z")


def kernel_signature(fn: Function, checked: bool) -> ir.FunctionType:
    """The kernel's LLVM type: its arguments, then program ids and grid sizes (i32), then
    the launch's status (see `lower_debug`) and, where its accesses are checked, the
    arguments' spans (see `lower_bounds`)."""
    for arg in fn.args:
        if arg.type.is_block:
            raise CompilationError(f"kernel argument of block type {arg.type}", fn.loc, fn.name)
    return ir.FunctionType(ir.VoidType(), [reg_type(a.type) for a in fn.args] + [I32] * 6 + [PTR] * (1 + checked))


class KernelLowering:
    """Emits one kdsl kernel into an LLVM function named `name`, its accesses checked (`lower_bounds`)
    where `checked`."""

    def __init__(self, module: ir.Module, fn: Function, name: str, checked: bool = True):
        self.fn = fn
        self.func = ir.Function(module, kernel_signature(fn, checked), name=name)
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
        self.grid = params[len(fn.args):len(fn.args) + 6]
        self.status = params[len(fn.args) + 6]
        self.assert_sites: list[AssertSite] = []
        self.iteration: dict[tuple[Value, int], ir.Value] = {}  # (value, id(index)): elements computed so far
        self.unmasked: set[Value] = set()  # masks known to be all true in the loop being emitted
        self.recompute_at: set[int] = set()  # id()s of the element indices `recomputable` values are computed at
        self.loop: _LoopIndex | None = None  # the element loop being emitted
        self.axis = AxisAnalysis(fn)
        self._recomputable: dict[tuple[Value, bool], bool] = {}
        self.reloads = True  # whether loads of `reloadable` are loaded again (not after a staged store)
        self.recompute_off: set[Value] = set()  # values read from their buffers even where recomputable
        self.reloadable: set[Value] = set()  # loads loaded again where used, not kept in buffers
        self.exact_uniform_division = True  # see `element_loop`
        self.users: dict[Value, list[Operation]] = {}
        for user in fn.walk():
            for operand in user.operands:
                self.users.setdefault(operand, []).append(user)
        self.checks = BoundsChecks(self, params[-1]) if checked else None

    def lower(self) -> ir.Function:
        try:
            self.region(self.fn.body)
        except CompilationError as err:
            raise err.with_context(kernel=self.fn.name) from None
        self.entry.branch(self.body)
        return self.func

    # values ----------------------------------------------------------------
    def buffer(self, t: BlockType) -> Buffer:
        self.stack_bytes += t.numel * (8 if isinstance(t.elem, PointerType) else t.elem.bytes) + BUFFER_ALIGN
        ptr = self.entry.alloca(mem_type(t.elem), size=t.numel)
        ptr.align = BUFFER_ALIGN
        return Buffer(ptr, t)

    def slot(self, t) -> ir.Value | Buffer:
        return self.buffer(t) if isinstance(t, BlockType) else self.entry.alloca(reg_type(t))

    def element(self, v: Value, index: ir.Value) -> ir.Value:
        """Element `index` of a block operand, or the scalar itself. In a fused loop, index
        arithmetic (and cheap float ops) is computed again and a `reloadable` load loaded again
        rather than read back from a buffer: a few instructions, where the buffer would cost a
        store and a load per element and hide from LLVM that addresses are consecutive."""
        if v in self.unmasked:
            return ir.Constant(ir.IntType(1), 1)
        known = self.iteration.get((v, id(index)))
        if known is not None:
            return known
        if id(index) in self.recompute_at and v not in self.recompute_off:
            if v in self.reloadable and self.reloads:
                return self.reloaded(v, index)
            if self.recomputable(v):
                return self.recomputed(v, index)
        lowered = self.values[v]
        return lowered.load(self.b, index) if isinstance(lowered, Buffer) else lowered

    def reloaded(self, v: Value, index: ir.Value) -> ir.Value:
        """Element `index` of a load of an earlier run, loaded again (from the cache, likely)."""
        value = self.define_element(v.op, index)
        self.iteration[(v, id(index))] = value
        return value

    def define(self, op: Operation, value: Lowered) -> None:
        self.values[op.result] = value

    # regions ---------------------------------------------------------------
    def region(self, region: Region) -> list[Value]:
        """Lower a region's ops; returns the terminator's operands."""
        self.reloadable |= {v for v in reloadable_loads(region.ops, self.users)
                            if all(self.available(o) for o in v.op.operands)}
        for run in schedule(region.ops):
            op = run[0]
            if op.name in ("yield", "return", "condition"):
                if op.name == "return":
                    self.b.ret_void()
                return op.operands
            if len(run) > 1 or op.name in _ELEMENT_RULES or has_trait(op, ELEMENTWISE_TRAIT) or whole_reduction(op):
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
        """Element ops (see `fusion`): on scalars one at a time, on blocks all in one element loop
        (`emit_run`); a closing whole-block reduction accumulates in a slot as the loop goes."""
        first = run[0]
        numel = run_size(first)
        self.check_accesses(run, set(run))
        if numel is None:
            self.define_element(first, ir.Constant(I64, 0))
            return
        sums = {op: self.entry.alloca(reg_type(op.result.type)) for op in run if whole_reduction(op)}
        self.emit_run(run, sums, numel)
        for op, acc in sums.items():
            self.define(op, self.b.load(acc))

    def check_accesses(self, ops: list[Operation], within: set[Operation] | None) -> None:
        """Where accesses are checked, check those among `ops` (see `BoundsChecks.check`)."""
        if self.checks is not None:
            for op in ops:
                if op.name in ACCESSES:
                    self.checks.check(op, within)

    def emit_run(self, run: list[Operation], sums: dict[Operation, ir.Value], numel: int) -> None:
        """The loop (or loops) of one run. Where the masks of its loads and stores can be computed
        first (and for the conditions of its selects that are index arithmetic, such as a
        `where(mask, x - mean, 0)`), the loop comes twice: without them, taken when they are all
        true (plain vector accesses, no selects), and with them; ops after the last access then
        follow in a loop of their own, unless a reduction is among them. A store after loads
        (the run's, or earlier ones it loads again) shares their loop only where `overlap_free`
        shows, as the program runs, that no load reads what an earlier element's store wrote;
        otherwise (and where it cannot tell) `staged_store`."""
        again = self.reloaded_loads(run)
        masks = precomputable_masks(run, again) | {op.operands[0] for op in run if op.name == "select"
                                             and isinstance(op.operands[0].type, BlockType)
                                             and self.recomputable(op.operands[0])}
        hazards = [(load, run[-1]) for load in again + [op for op in run if op.name == "load"]
                   if run[-1].name == "store"]
        if masks:
            self.prefetch_next_program(run)
        if hazards:
            checks = self.overlap_free(run, hazards, numel)
            if checks is None:
                self.staged_store(run, sums, numel)
                return
            if masks:
                checks = self.b.and_(checks, self.all_true(run, masks, numel))
            with self.b.if_else(checks, likely=True) as (fused, split):
                with fused:
                    self.unmasked_loop(run, sums, numel, masks)
                with split:
                    self.staged_store(run, sums, numel)
            return
        last_access = max((k for k, op in enumerate(run) if op.name in ("load", "store")), default=len(run))
        tail = run[last_access + 1:]
        if masks and tail and not any(whole_reduction(op) for op in tail):
            self.emit_run(run[:last_access + 1], sums, numel)
            self.emit_run(tail, sums, numel)
            return
        if masks:
            with self.b.if_else(self.all_true(run, masks, numel), likely=True) as (unmasked, masked):
                with unmasked:
                    self.unmasked_loop(run, sums, numel, masks)
                with masked:
                    self.element_loop(run, sums, numel)
        else:
            self.element_loop(run, sums, numel)

    def prefetch_next_program(self, run: list[Operation]) -> None:
        """Prefetch the rows the next program (program id + 1 along axis 0) will load or store, for
        the accesses of a run with masks whose pointer blocks are consecutive addresses computed
        from the program id. From memory beyond the caches a masked loop ran 4-6x slower than an
        all-true one here (too few of its loads in flight, it seems), and starting the next row's
        misses a program early wins that back, and some of the all-true loop's time too. The
        scalars between the program id and the pointers (`x_ptr + row * n_cols`) are computed
        again too: reading them as the program computed them prefetched its own row (layer norm
        4096x1000, checked, one thread: 1.9-2.0 -> 1.45-1.5 ms once they were). A prefetch never
        faults, so the last program's, past the grid, is harmless; pointers computed from loaded
        values are left alone, since recomputing them would load at the next program's
        addresses."""
        b = self.b
        for op in run:
            if op.name not in ("load", "store") or not self.consecutive(op.operands[0]):
                continue
            ptr = op.operands[0]
            ancestors = _ancestors(ptr)
            pids = {v for v in ancestors if v.op.name == "program_id" and v.op.attrs["axis"] == 0}
            moving = {v for v in ancestors if not isinstance(v.type, BlockType) and pids & set(_ancestors(v))} - pids
            if (not pids or any(v.op.name in ACCESSES for v in ancestors) or not self.recomputable(ptr)
                    or not all(element_op(v.op) for v in moving)):
                continue
            zero = ir.Constant(I64, 0)

            def at_next_program(v: Value) -> None:
                """The scalars that move with the program id, computed for the next program."""
                if v in moving and (v, id(zero)) not in self.iteration:
                    for operand in v.op.operands:
                        at_next_program(operand)
                    self.iteration[(v, id(zero))] = self.elementwise(v.op, zero)
            with self.at_element(zero):
                for pid in pids:
                    self.iteration[(pid, id(zero))] = b.add(self.values[pid], ir.Constant(I32, 1))
                for scalar in moving:
                    at_next_program(scalar)
                first = b.ptrtoint(self.recomputed(ptr, zero), I64)
            nbytes = ptr.type.numel * elem_of(ptr.type).elem.bytes
            prefetch = declare(b.module, "llvm.prefetch.p0", ir.VoidType(), [PTR, I32, I32, I32])
            with counted_loop(b, zero, ir.Constant(I64, nbytes), ir.Constant(I64, 64), name="prefetch",
                              vectorise=False, unroll=False) as offset:
                address = b.inttoptr(b.add(first, offset), PTR)
                b.call(prefetch, [address, ir.Constant(I32, int(op.name == "store")), ir.Constant(I32, 3),
                                  ir.Constant(I32, 1)])

    def unmasked_loop(self, run: list[Operation], sums: dict[Operation, ir.Value], numel: int,
                      masks: set[Value]) -> None:
        """`element_loop` where `masks` are known to be all true."""
        self.unmasked = masks
        self.element_loop(run, sums, numel)
        self.unmasked = set()

    def staged_store(self, run: list[Operation], sums: dict[Operation, ir.Value], numel: int) -> None:
        """A run closed by a store, in two loops: the rest of the run, which also puts the
        elements of the store's operands in buffers of their own, then the store from those,
        after every load. Operands that are index arithmetic (its pointers and mask, as a rule)
        are computed again in the store's loop instead, so that LLVM sees the addresses are
        consecutive there (from a buffer of pointers it stores with a scatter)."""
        store = run[-1]
        self.reloads = False
        try:
            staged = {o: self.buffer(o.type) for o in store.operands
                      if isinstance(o.type, BlockType) and not self.recomputable(o)}
        finally:
            self.reloads = True

        def stage(i: ir.Value) -> None:
            for operand, buffer in staged.items():
                buffer.store(self.b, i, self.element(operand, i))
        self.element_loop(run[:-1], sums, numel, stage)
        kept = {o: self.values.get(o) for o in staged}
        self.values.update(staged)
        self.reloads, self.recompute_off = False, set(staged)
        try:
            self.element_loop([store], {}, numel)
        finally:
            self.reloads, self.recompute_off = True, set()
            for o, v in kept.items():
                if v is None:
                    del self.values[o]
                else:
                    self.values[o] = v

    def element_loop(self, run: list[Operation], sums: dict[Operation, ir.Value], numel: int,
                     then: Callable[[ir.Value], None] | None = None) -> None:
        """One loop over the elements of `run` (and `then(i)` after each); the values that ops
        outside it read go to buffers."""
        inside = set(run)
        for op in run:
            if op in sums:
                self.b.store(self.reduction_start(op, run), sums[op])
        # LLVM 22's vectoriser aborts the process (an assertion: its two cost models disagree) on a
        # loop whose min or max reduction takes `divide_by_uniform`'s f64 products: such a loop
        # divides with a plain `fdiv`
        self.exact_uniform_division = not any(op.attrs["kind"] in ("min", "max") for op in sums)
        with self.fused_loop(_loop_dims(run[0]), run[0].name) as i:
            for op in run:
                if op in sums:
                    self.b.store(self.combined(op, self.b.load(sums[op]), self.element(op.operands[0], i)), sums[op])
                    continue
                value = self.define_element(op, i)
                if op.results:
                    self.iteration[(op.result, id(i))] = value
                    if op.result not in self.reloadable and any(user not in inside for user in self.users.get(op.result, ())):
                        self.out_buffer(op).store(self.b, i, value)
            if then is not None:
                then(i)
        self.exact_uniform_division = True

    @contextmanager
    def fused_loop(self, dims: tuple[int, ...], name: str) -> Iterator[ir.Value]:
        """A loop over the elements of a block of shape `dims`, yielding the linear index: two
        nested loops where the last dimension is one of several (the inner one runs along rows,
        so that LLVM sees consecutive addresses where a row is contiguous), else one."""
        b, numel, last = self.b, prod(dims), dims[-1]
        if 1 < last < numel:
            with element_loop(b, numel // last, f"{name}.rows") as outer:
                with element_loop(b, last, name) as inner:
                    i = b.add(b.mul(outer, ir.Constant(I64, last), flags=["nuw", "nsw"]), inner, flags=["nuw", "nsw"])
                    with self.at_element(i, _LoopIndex(i, outer, inner, last)):
                        yield i
        else:
            with element_loop(b, numel, name) as i:
                with self.at_element(i, _LoopIndex(i, None, i, numel)):
                    yield i

    @contextmanager
    def at_element(self, index: ir.Value, loop: _LoopIndex | None = None) -> Iterator[None]:
        """Code for element `index` (of an element loop, `loop`): `recomputable` values may be computed
        at it, and what is computed for it is forgotten afterwards."""
        saved = self.iteration, self.recompute_at, self.loop
        self.iteration, self.recompute_at, self.loop = {}, {id(index)}, loop
        try:
            yield
        finally:
            self.iteration, self.recompute_at, self.loop = saved

    def coordinates(self, dims: tuple[int, ...], i: ir.Value) -> list[ir.Value]:
        """The coordinates of linear index `i` in a block of shape `dims`; along rows in an
        element loop, its inner index is the last coordinate."""
        loop = self.loop
        if loop is not None and i is loop.index and loop.outer is not None and dims[-1] == loop.row:
            return self.coordinates(dims[:-1], loop.outer) + [loop.inner]
        return [coordinate(self.b, i, stride, dim) for stride, dim in zip(strides(dims), dims)]

    def out_buffer(self, op: Operation) -> Buffer:
        """The buffer holding the block `op` computes, made on first use."""
        out = self.values.get(op.result)
        if not isinstance(out, Buffer):
            out = self.buffer(op.result.type)
            self.define(op, out)
        return out

    def reduction_start(self, op: Operation, run: list[Operation]) -> ir.Value:
        """A whole-block reduction's starting value: the sum's identity (-0.0 + x is x), or for max
        and min the block's first element (combining it with itself is harmless), computed before
        the loop, so that the loop runs over all elements with no scalar tail."""
        identity = _sum_identity(self.b, op)
        if identity is not None:
            return identity
        zero = ir.Constant(I64, 0)
        with self.at_element(zero):
            return self.recomputed(op.operands[0], zero, set(run))

    def combined(self, op: Operation, acc: ir.Value, x: ir.Value) -> ir.Value:
        """`acc` combined with `x` by the reduction `op`."""
        combine = ELEMENTWISE[{"sum": "add", "max": "max", "min": "min"}[op.attrs["kind"]]]
        elem = op.operands[0].type.elem
        return _reassociable(combine(self.b, [acc, x], elem, elem, {}))

    def overlap_free(self, run: list[Operation], pairs: list[tuple[Operation, Operation]],
                     numel: int) -> ir.Value | None:
        """Whether, for each (load, store) pair, element j's load reads nothing that the store of an
        element i < j writes, or None where this cannot be told from the first addresses: both
        pointer blocks must be runs of consecutive elements (axis analysis). With equal element
        sizes that holds where the store's run starts at or before the load's, else where they
        are disjoint."""
        b = self.b
        ok: ir.Value = ir.Constant(ir.IntType(1), 1)
        for load, store in pairs:
            p, q = load.operands[0], store.operands[0]
            if not (self.consecutive(p) and self.consecutive(q)):
                return None
            p_size, q_size = (elem_of(v.type).elem.bytes for v in (p, q))
            zero = ir.Constant(I64, 0)
            with self.at_element(zero):
                p0, q0 = (b.ptrtoint(self.recomputed(v, zero, set(run)), I64) for v in (p, q))
            p_end = b.add(p0, ir.Constant(I64, numel * p_size))
            before = (b.icmp_unsigned("<=", q0, p0) if p_size == q_size
                      else b.icmp_unsigned("<=", b.add(q0, ir.Constant(I64, numel * q_size)), p0))
            ok = b.and_(ok, b.or_(before, b.icmp_unsigned(">=", q0, p_end)))
        return ok

    def consecutive(self, ptrs: Value) -> bool:
        """Whether the pointer block's elements, in row-major order, are consecutive addresses."""
        dims = ptrs.type.dims
        return prod(dims[:-1]) == 1 and self.axis[ptrs].contiguity[-1] >= dims[-1]

    def all_true(self, run: list[Operation], masks: set[Value], numel: int) -> ir.Value:
        """Whether every element of every mask is true (one vectorisable loop)."""
        b = self.b
        acc = self.entry.alloca(ir.IntType(1))
        b.store(ir.Constant(ir.IntType(1), 1), acc)
        inside = set(run)
        with self.fused_loop(_loop_dims(run[0]), "all_true") as i:
            for mask in masks:
                b.store(b.and_(b.load(acc), self.recomputed(mask, i, inside)), acc)
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
        args = [self.element(v, i) for v in op.operands]
        if op.name == "div" and _is_block_of(op.result, f32) and _uniform(op.operands[1]) and self.exact_uniform_division:
            return divide_by_uniform(self.b, *args)
        return bind(op)(self.b, args)

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
        return self.element(op.operands[0], i)

    def broadcast(self, op: Operation, i: ir.Value) -> ir.Value:
        """The source's element at the coordinates of element i, those of its size-1 dimensions 0."""
        src = op.operands[0]
        src_dims, dims = src.type.dims, op.result.type.dims
        if src_dims == dims:
            return self.element(src, i)
        b = self.b
        index: ir.Value = ir.Constant(I64, 0)
        for coord, dim, stride in zip(self.coordinates(dims, i), src_dims, strides(src_dims)):
            if dim != 1:
                index = b.add(index, b.mul(coord, ir.Constant(I64, stride)))
        self.recompute_at.add(id(index))
        return self.element(src, index)

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
        address = self.element(ptr, i)

        def load_one() -> ir.Value:
            return from_memory(b, b.load(address, typ=mem_type(elem)), elem)
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
        address = self.element(ptr, i)
        stored = to_memory(b, self.element(value, i), elem)
        if mask is None or mask in self.unmasked:
            b.store(stored, address)
            return
        with b.if_then(self.element(mask, i)):
            b.store(stored, address)

    def recomputed(self, v: Value, i: ir.Value, within: set[Operation] | None = None) -> ir.Value:
        """Element `i` of `v`, recomputed from the ops of `within` that made it or, without
        `within`, from what is `recomputable`; other operands are read from their buffers."""
        key = (v, id(i))
        if key not in self.iteration and v not in self.unmasked and isinstance(v, OpResult) and (
                v.op in within if within is not None else self.recomputable(v)):
            if v.op.name in VIEWS:
                self.iteration[key] = self.recomputed(v.op.operands[0], i, within)
            else:
                if v.op.name != "broadcast":  # its operand is read at other indices
                    for operand in v.op.operands:
                        self.recomputed(operand, i, within)
                self.iteration[key] = self.define_element(v.op, i)
        return self.element(v, i)

    def available(self, v: Value) -> bool:
        """Whether `v`'s elements can be had in any element loop: a scalar, a block no element op
        made (it has its buffer), or one that is `recomputable`."""
        return not isinstance(v.type, BlockType) or not _made_in_loop(v) or self.recomputable(v)

    def recomputable(self, v: Value) -> bool:
        """Whether `v` is made by ops that may compute it again where it is used (`recomputable_op`,
        views) from loads that may load again and blocks that are no element ops' results (so
        their buffers always exist)."""
        known = self._recomputable.get((v, self.reloads))
        if known is None:
            known = (isinstance(v, OpResult) and (recomputable_op(v.op) or v.op.name in VIEWS)
                     and all(not (_made_in_loop(o) or _is_view(o)) or (self.reloads and o in self.reloadable)
                             or self.recomputable(o) for o in v.op.operands))
            self._recomputable[(v, self.reloads)] = known
        return known

    def reloaded_loads(self, run: list[Operation]) -> list[Operation]:
        """The loads of earlier runs that `run` loads again, directly or through what it computes
        again (`recomputable`)."""
        inside, seen, found = set(run), set(), []

        def visit(v: Value) -> None:
            if not isinstance(v, OpResult) or v.op in inside or v in seen:
                return
            seen.add(v)
            if v in self.reloadable:
                found.append(v.op)
            elif self.recomputable(v):
                for operand in v.op.operands:
                    visit(operand)
        for op in run:
            for operand in op.operands:
                visit(operand)
        return found

    def reduce(self, op: Operation) -> None:
        """Combine along `axis` into a block (reductions of a whole block are run by `emit_run`):
        the source is viewed as (outer, axis, inner), in order."""
        src: Buffer = self.values[op.operands[0]]
        axis, dims = op.attrs["axis"], src.type.dims
        outer, n, inner = prod(dims[:axis]), dims[axis], prod(dims[axis + 1:])
        b = self.b

        def reduced(j: ir.Value) -> ir.Value:
            """The reduction for output element j = o * inner + k, started as `reduction_start` says."""
            base = b.add(b.mul(b.udiv(j, ir.Constant(I64, inner)), ir.Constant(I64, n * inner)),
                         b.urem(j, ir.Constant(I64, inner)))
            acc = self.entry.alloca(reg_type(src.type.elem))
            b.store(_sum_identity(self.b, op) or src.load(b, base), acc)
            step = ir.Constant(I64, inner)
            with counted_loop(b, ir.Constant(I64, 0), ir.Constant(I64, n), ir.Constant(I64, 1), name="reduce") as r:
                b.store(self.combined(op, b.load(acc), src.load(b, b.add(base, b.mul(r, step)))), acc)
            return b.load(acc)
        assert op.result.type.numel == outer * inner
        self.define(op, self.fill(op.result.type, reduced, "reduced"))

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


def _sum_identity(b: ir.IRBuilder, op: Operation) -> ir.Value | None:
    """The identity a sum starts from, None for max and min."""
    elem = op.operands[0].type.elem
    return constant(b, elem, -0.0 if elem.is_float else 0) if op.attrs["kind"] == "sum" else None


def _is_block_of(v: Value, elem: ScalarType) -> bool:
    return isinstance(v.type, BlockType) and v.type.elem == elem


def _uniform(v: Value) -> bool:
    """Whether every element of `v` is one value: a scalar, or a block splat from one."""
    return not isinstance(v.type, BlockType) or isinstance(v, OpResult) and v.op.name == "splat"


def _is_view(v: Value) -> bool:
    return isinstance(v, OpResult) and v.op.name in VIEWS


def _loop_dims(op: Operation) -> tuple[int, ...]:
    """The shape of the block an element loop starting with `op` runs over."""
    return (op.operands[1] if op.name == "store" else op.operands[0] if whole_reduction(op) else op.result).type.dims


def _ancestors(v: Value) -> list[OpResult]:
    """The op results `v` is computed from, itself included."""
    seen: dict[Value, None] = {}
    stack = [v]
    while stack:
        w = stack.pop()
        if isinstance(w, OpResult) and w not in seen:
            seen[w] = None
            stack.extend(w.op.operands)
    return list(seen)


def _made_in_loop(v: Value) -> bool:
    """Whether `v` is a block computed by an element op (in an element loop)."""
    return isinstance(v, OpResult) and block_size(v.op) is not None


def _same_buffer(slot: Lowered, value: Buffer) -> bool:
    return isinstance(slot, Buffer) and slot.ptr is value.ptr


_ELEMENT_RULES: dict[str, Callable[[KernelLowering, Operation, ir.Value], ir.Value | None]] = {
    "constant": KernelLowering.constant,
    "arange": KernelLowering.arange,
    "splat": KernelLowering.splat,
    "broadcast": KernelLowering.broadcast,
    "load": KernelLowering.load,
    "store": KernelLowering.store,
}
_HANDLERS: dict[str, Callable[[KernelLowering, Operation], None]] = {
    "program_id": KernelLowering.program_id,
    "num_programs": KernelLowering.num_programs,
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
