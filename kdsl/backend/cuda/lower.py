"""kdsl IR → per-thread LLVM IR for NVPTX: one `ptx_kernel` function per kdsl kernel.

Every block value gets a linear layout (`layouts.py`) and becomes a list of
per-thread LLVM values, one per register of its layout; scalars are single
values every thread of the CTA holds alike (so `if`/`while` on scalars never
diverge and may contain barriers).

Layout assignment happens as the IR is walked. Index arithmetic (`arange`,
`constant`, `splat`, `expand_dims`, `broadcast` and elementwise ops on them)
is rematerialized in whatever layout its consumer needs; other values take
the layout their op gives (loads and elementwise ops: their first operand's
that is not rematerialized, else `default_blocked`, for loads in the order of
the pointer's contiguity; reductions: `sliced`;
`expand_dims`, `permute`, `reshape`, `join`, `split`: derived; `broadcast`:
`default_blocked`; tensor-core dots: the mma accumulator layout, which a `for` loop carrying the
accumulator from a rematerialized start takes too; stores: their value's, or the load's coalescing
order where that vectorises wider, see `lower_memory.store_layout`).
Where an operand has another layout it is converted: in registers when the
threads hold the same elements, else through shared memory (`lower_layout`).

Lowered: program_id/num_programs, arange, constant/splat/broadcast/expand_dims,
every elementwise op (emitters shared with the CPU; math functions in
`lower_math`, whose docstring gives their accuracy), cast/bitcast with f16,
bf16 and fp8 (fp8 in software: see `kdsl.backend.cpu.fp8`), load/store with
mask/other (in vectors of up to 16 bytes where the axis
analysis allows, see `lower_memory`, else per element; predicated; stores only from
the thread owning an element, never from its copies), reductions sum/max/min
(in thread, across lanes with shuffles, across warps through shared memory;
fp8 sums as in-thread left folds),
permute, reshape, join and split (new layouts over the same registers), for/if/while
carrying scalars and blocks, atomics (each element's owner acts once; system scope),
dot on tensor cores (mma.sync for f16, bf16, tf32 and i8: `lower_mma`; operands staged for
ldmatrix: `mma_operands`, 16-bit loads copied straight to shared memory with cp.async where
aligned and contiguous: `mma_async`) and on CUDA cores
(the other types, batched, small blocks: `lower_dot`), reduce_with and scan as in-thread left folds
(`lower_combine`).
print and assert through a hidden debug-buffer parameter (`lower_debug`, design in `debug_buffer`).
K loops over such dots pipelined over `num_stages` shared-memory slots (`mma_pipeline`).
Not yet: wgmma.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from llvmlite import ir

from kdsl.backend.cpu.elementwise import bind
from kdsl.backend.cpu.llvm_types import I32, constant, reg_type
from kdsl.backend.cuda import layouts as L
from kdsl.backend.cuda import lower_atomics, lower_combine, lower_control, lower_dot, lower_memory, lower_reduce
from kdsl.backend.cuda import lower_mma, mma_pipeline
from kdsl.backend.cuda import lower_debug
from kdsl.backend.cuda.debug_buffer import DebugSite
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.line_info import LineInfo
from kdsl.backend.cuda.lower_layout import Regs, convert, thread_coordinates
from kdsl.backend.cuda.lower_math import GPU_ELEMENTWISE
from kdsl.backend.cuda.nvvm import GLOBAL_PTR, SharedMemory, special_register
from kdsl.backend.cuda.ptx import TRIPLE, check_arch
from kdsl.backend.regions import lower_ops
from kdsl.errors import CompilationError
from kdsl.ir.core import Function, Module, OpResult, Operation, Region, Value
from kdsl.ir.ops import ELEMENTWISE as ELEMENTWISE_TRAIT, has_trait, permute_order
from kdsl.ir.passes.axis_info import AxisAnalysis
from kdsl.ir.types import PointerType, Type

Lowered = Union[ir.Value, Regs]
REMATERIALIZED = ("constant", "splat", "arange", "expand_dims", "broadcast")


@dataclass
class GpuKernel:
    """A kernel lowered for NVPTX: what `llvm_to_ptx` compiles and a launch needs.

    `shared_bytes` is the dynamic shared memory (`extern .shared global_smem`) the
    launch must ask for; the kernel declares no static shared memory. Where there are
    `debug_sites`, the kernel takes the debug buffer after `params` (`debug_buffer`).
    """

    llvm_ir: str
    entry: str
    num_warps: int
    shared_bytes: int
    params: list[Type]
    debug_sites: tuple[DebugSite, ...] = ()


def param_type(t: Type) -> ir.Type:
    """Global pointers are `ptr addrspace(1)`; scalars are passed by value."""
    return GLOBAL_PTR if isinstance(t, PointerType) else reg_type(t)


def elem_bits(t: Type) -> int:
    """The element size a block's default layout is sized for: a block of pointers takes its
    pointees' (it is laid out for the loads and stores it feeds, 16 bytes of them per thread)."""
    elem = t.scalar
    return max(8, (elem.elem if isinstance(elem, PointerType) else elem).bits)


def _check_supported(fn: Function) -> None:
    for op in fn.walk():
        if op.name == "call":
            raise CompilationError(f"not supported on the GPU yet: {op.name}", op.loc)


def lower_to_llvm(module: Module, arch: str, num_warps: int, num_stages: int = 3) -> GpuKernel:
    """Lower `module`'s kernel (after the target-independent passes) for `num_warps` warps per CTA,
    its K loops pipelined over `num_stages` stages (`mma_pipeline`)."""
    check_arch(arch)
    if num_warps < 1 or num_warps & (num_warps - 1) or num_warps > 32:
        raise CompilationError(f"num_warps must be a power of two from 1 to 32, got {num_warps}")
    fn = module.kernel
    try:
        _check_supported(fn)
        llvm_module = ir.Module(name=fn.name)
        llvm_module.triple = TRIPLE
        lowering = KernelLowering(llvm_module, fn, arch, num_warps, num_stages)
        lowering.lower()
    except CompilationError as err:
        raise err.with_context(kernel=fn.name) from None
    sites = tuple(lowering.debug.sites) if lowering.debug else ()
    return GpuKernel(str(llvm_module), fn.name, num_warps, lowering.shared.bytes, [a.type for a in fn.args], sites)


class KernelLowering:
    """Emits one kdsl kernel as a `ptx_kernel` LLVM function."""

    def __init__(self, module: ir.Module, fn: Function, arch: str, num_warps: int, num_stages: int = 3):
        self.fn = fn
        self.arch = arch
        self.num_warps = num_warps
        self.num_stages = num_stages
        for arg in fn.args:
            if arg.type.is_block:
                raise CompilationError(f"kernel argument of block type {arg.type}", fn.loc)
        debug = lower_debug.needs_debug_buffer(fn)
        ftype = ir.FunctionType(ir.VoidType(), [param_type(a.type) for a in fn.args] + [GLOBAL_PTR] * debug)
        self.func = ir.Function(module, ftype, name=fn.name)
        self.func.calling_convention = "ptx_kernel"
        for param, arg in zip(self.func.args, fn.args):
            param.name = arg.hint or ""
        self.b = ir.IRBuilder(self.func.append_basic_block("entry"))
        self.lines = LineInfo(module, self.func, fn)
        self.shared = SharedMemory(module)
        self.values: dict[Value, Lowered] = dict(zip(fn.args, self.func.args))
        self.axis = AxisAnalysis(fn)
        self.scopes: list[dict] = [{}]
        self._remat: dict[Value, bool] = {}
        self.preferred = lower_mma.carried_accumulators(fn, arch, num_warps)
        self.async_copies = lower_mma.async_copies(self)
        self.pipelined: dict[Value, mma_pipeline.Pipeline] = {}  # loads of the loops being lowered
        tid = special_register(self.b, "tid.x")
        self.tid = tid
        self.lane = self.b.urem(tid, ir.Constant(I32, L.WARP_SIZE))
        self.warp = self.b.udiv(tid, ir.Constant(I32, L.WARP_SIZE))
        self.debug = lower_debug.DebugChannel(self, self.func.args[-1]) if debug else None

    def lower(self) -> None:
        self.region(self.fn.body)

    # values ------------------------------------------------------------------
    def default_layout(self, t: Type, order: tuple[int, ...] | None = None) -> LinearLayout:
        return L.default_blocked(t.shape, self.num_warps, elem_bits(t), order)

    def cached(self, key, make: Callable[[], object]):
        """`make()` emitted once per region nesting: a value cached in an enclosing region dominates here."""
        for scope in reversed(self.scopes):
            if key in scope:
                return scope[key]
        value = self.scopes[-1][key] = make()
        return value

    def push_scope(self) -> None:
        self.scopes.append({})

    def pop_scope(self) -> None:
        self.scopes.pop()

    def coordinates(self, layout: LinearLayout) -> list[list[ir.Value]]:
        return self.cached(("coords", layout), lambda: thread_coordinates(self.b, layout, self.lane, self.warp))

    def rematerialized(self, v: Value) -> bool:
        """Whether `v` is index arithmetic recomputed in each layout a consumer asks for."""
        if v not in self._remat:
            op = v.op if isinstance(v, OpResult) else None
            self._remat[v] = bool(
                v.type.is_block and op is not None
                and (op.name in REMATERIALIZED or has_trait(op, ELEMENTWISE_TRAIT))
                and all(self.rematerialized(o) for o in op.operands if o.type.is_block))
        return self._remat[v]

    def block(self, v: Value, layout: LinearLayout | None = None) -> Regs:
        """Block `v` in `layout` (its own when None; for index arithmetic, its preferred one or the default)."""
        if v in self.values:
            regs = self.values[v]
            return regs if layout is None else convert(self, regs, layout)
        layout = layout or self.preferred.get(v) or self.default_layout(v.type)
        return self.cached((v, layout), lambda: self.rematerialize(v.op, layout))

    def lowered(self, v: Value) -> Lowered:
        return self.block(v) if v.type.is_block else self.values[v]

    def operand(self, v: Value, layout: LinearLayout) -> list[ir.Value] | None:
        """Per register: a block operand's values in `layout`; None for a scalar operand."""
        return self.block(v, layout).values if v.type.is_block else None

    def layout_for(self, operands: list[Value], t: Type, order: tuple[int, ...] | None = None) -> LinearLayout:
        """The layout of an op on `operands`: the first computed block operand's, else the default
        (with the dimensions in `order`, fastest first, where given)."""
        for v in operands:
            if v.type.is_block and not self.rematerialized(v):
                return self.block(v).layout
        return self.default_layout(t, order)

    def per_register(self, op: Operation, layout: LinearLayout) -> Regs:
        """An elementwise op on every register of `layout`."""
        emit = bind(op, GPU_ELEMENTWISE)
        columns = [self.operand(v, layout) for v in op.operands]
        values = [emit(self.b, [self.values[v] if col is None else col[r] for v, col in zip(op.operands, columns)])
                  for r in range(layout.num_registers)]
        return Regs(layout, values)

    def rematerialize(self, op: Operation, layout: LinearLayout) -> Regs:
        n = layout.num_registers
        if op.name == "constant":
            return Regs(layout, [constant(self.b, op.result.type.scalar, op.attrs["value"])] * n)
        if op.name == "splat":
            return Regs(layout, [self.values[op.operands[0]]] * n)
        if op.name == "arange":
            start = ir.Constant(I32, op.attrs["start"])
            return Regs(layout, [self.b.add(c[0], start) for c in self.coordinates(layout)])
        if op.name == "expand_dims":
            return Regs(layout, self.block(op.operands[0], L.squeeze(layout, op.attrs["axis"])).values)
        if op.name == "broadcast":
            return Regs(layout, self.block(op.operands[0], L.collapse(layout, op.operands[0].type.shape)).values)
        return self.per_register(op, layout)

    def define(self, op: Operation, value: Lowered) -> None:
        self.values[op.result] = value

    # regions -----------------------------------------------------------------
    def region(self, region: Region) -> list[Value]:
        """Lower a region's ops; returns the terminator's operands."""
        return lower_ops(region, self.op, self.b)

    def op(self, op: Operation) -> None:
        """Lower `op`, its instructions at its source line (`line_info`)."""
        enclosing = self.b.debug_metadata
        self.b.debug_metadata = self.lines.at(op.loc) or enclosing
        try:
            self.lower_op(op)
        finally:
            self.b.debug_metadata = enclosing

    def lower_op(self, op: Operation) -> None:
        if len(op.results) == 1 and self.rematerialized(op.result):
            return
        if has_trait(op, ELEMENTWISE_TRAIT):
            if op.result.type.is_block:
                self.define(op, self.per_register(op, self.layout_for(op.operands, op.result.type)))
            else:
                self.define(op, bind(op, GPU_ELEMENTWISE)(self.b, [self.values[v] for v in op.operands]))
            return
        handler = _HANDLERS.get(op.name)
        if handler is None:
            raise CompilationError(f"not supported on the GPU yet: {op.name}", op.loc)
        handler(self, op)

    # ops ----------------------------------------------------------------------
    def constant(self, op: Operation) -> None:
        self.define(op, constant(self.b, op.result.type, op.attrs["value"]))

    def program_id(self, op: Operation) -> None:
        self.define(op, special_register(self.b, "ctaid." + "xyz"[op.attrs["axis"]]))

    def num_programs(self, op: Operation) -> None:
        self.define(op, special_register(self.b, "nctaid." + "xyz"[op.attrs["axis"]]))

    def expand_dims(self, op: Operation) -> None:
        src = self.block(op.operands[0])
        self.define(op, Regs(L.expand_dims(src.layout, op.attrs["axis"]), src.values))

    def broadcast(self, op: Operation) -> None:
        layout = self.default_layout(op.result.type)
        src = self.block(op.operands[0], L.collapse(layout, op.operands[0].type.shape))
        self.define(op, Regs(layout, src.values))

    def permute(self, op: Operation) -> None:
        src = self.block(op.operands[0])
        self.define(op, Regs(L.permute(src.layout, permute_order(op.attrs)), src.values))

    def load(self, op: Operation) -> None:
        """A load a tensor-core dot copies to shared memory with cp.async is lowered by that dot."""
        if op.result not in self.async_copies:
            lower_memory.load(self, op)

    def reshape(self, op: Operation) -> None:
        src = self.block(op.operands[0])
        self.define(op, Regs(L.reshape(src.layout, op.result.type.shape), src.values))


    def join(self, op: Operation) -> None:
        a, b = op.operands
        layout = self.layout_for([a, b], a.type) if a.type.is_block else L.scalar(self.num_warps)
        halves = [self.block(v, layout).values if v.type.is_block else [self.values[v]] for v in (a, b)]
        self.define(op, Regs(L.joined(layout), halves[0] + halves[1]))

    def split(self, op: Operation) -> None:
        x = self.block(op.operands[0])
        bit = L.minor_register_bit(x.layout)
        if bit is None:
            t = op.result.type
            x = convert(self, x, L.joined(self.default_layout(t) if t.is_block else L.scalar(self.num_warps)))
            bit = L.minor_register_bit(x.layout)
        values = [v for r, v in enumerate(x.values) if (r >> bit & 1) == op.attrs["index"]]
        self.define(op, Regs(L.unjoined(x.layout, bit), values) if op.result.type.is_block else values[0])


_HANDLERS: dict[str, Callable[[KernelLowering, Operation], None]] = {
    "constant": KernelLowering.constant,
    "program_id": KernelLowering.program_id,
    "num_programs": KernelLowering.num_programs,
    "expand_dims": KernelLowering.expand_dims,
    "broadcast": KernelLowering.broadcast,
    "permute": KernelLowering.permute,
    "reshape": KernelLowering.reshape,
    "join": KernelLowering.join,
    "split": KernelLowering.split,
    "load": KernelLowering.load,
    "store": lower_memory.store,
    "reduce": lower_reduce.reduce,
    "atomic_rmw": lower_atomics.atomic_rmw,
    "atomic_cas": lower_atomics.atomic_cas,
    "reduce_with": lower_combine.reduce_with,
    "scan": lower_combine.scan,
    "dot": lower_dot.dot,
    "print": lower_debug.lower_print,
    "assert": lower_debug.lower_assert,
    "for": lower_control.for_,
    "if": lower_control.if_,
    "while": lower_control.while_,
}
