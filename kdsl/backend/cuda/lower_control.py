"""Structured control flow: `for`, `if` and `while` as LLVM blocks with one phi per carried register.

A carried block keeps the layout of its initial value (of the `then` yield for
`if`); values yielded in another layout are converted to it. Conditions are
scalars, the same in every thread, so branches never diverge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cuda import mma_pipeline
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.ir.core import Operation, Region, Value

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering, Lowered

Layouts = list[LinearLayout | None]


def _flatten(low: KernelLowering, values: list[Value], layouts: Layouts | None = None) -> tuple[list[ir.Value], Layouts]:
    """The LLVM values of `values` (blocks register by register, in `layouts` where given) and their layouts."""
    flat: list[ir.Value] = []
    out: Layouts = []
    for i, v in enumerate(values):
        if v.type.is_block:
            regs = low.block(v, layouts[i] if layouts is not None else None)
            flat += regs.values
            out.append(regs.layout)
        else:
            flat.append(low.values[v])
            out.append(None)
    return flat, out


def _unflatten(flat: list[ir.Value], layouts: Layouts) -> list[Lowered]:
    out: list[Lowered] = []
    i = 0
    for layout in layouts:
        if layout is None:
            out.append(flat[i])
            i += 1
        else:
            out.append(Regs(layout, flat[i:i + layout.num_registers]))
            i += layout.num_registers
    return out


def _bind(low: KernelLowering, targets: list[Value], lowered: list[Lowered]) -> None:
    for target, value in zip(targets, lowered):
        low.values[target] = value


def _phis(b: ir.IRBuilder, flat: list[ir.Value], incoming: ir.Block) -> list[ir.PhiInstr]:
    phis = []
    for v in flat:
        phi = b.phi(v.type)
        phi.add_incoming(v, incoming)
        phis.append(phi)
    return phis


def _lower_region(low: KernelLowering, region: Region, args: list[Lowered], layouts: Layouts | None):
    """Lower `region` with its arguments bound, in a scope of its own; returns its flattened yields."""
    low.push_scope()
    _bind(low, region.args, args)
    results = low.region(region)
    flat, out = _flatten(low, results, layouts)
    low.pop_scope()
    return flat, out


@dataclass
class _Loop:
    phis: list[ir.PhiInstr]
    layouts: Layouts
    head: ir.Block
    body: ir.Block
    done: ir.Block

    def back(self, b: ir.IRBuilder, values: list[ir.Value]) -> None:
        """Branch back to the head with the next carried values."""
        for phi, v in zip(self.phis, values):
            phi.add_incoming(v, b.block)
        b.branch(self.head)


def _loop_head(low: KernelLowering, flat: list[ir.Value], layouts: Layouts, name: str) -> _Loop:
    """Branch to a new `name.head` block holding one phi per carried register (`flat`, whose
    blocks are in `layouts`; incoming from here)."""
    b = low.b
    head, body, done = (low.func.append_basic_block(f"{name}.{part}") for part in ("head", "body", "done"))
    before = b.block
    b.branch(head)
    b.position_at_end(head)
    return _Loop(_phis(b, flat, before), layouts, head, body, done)


def for_(low: KernelLowering, op: Operation) -> None:
    """The induction variable is carried first, then the loop's values, then what a pipelined
    loop carries besides (`mma_pipeline`)."""
    lb, ub, step, *inits = op.operands
    b = low.b
    flat, layouts = _flatten(low, [lb, *inits])
    pipeline = mma_pipeline.plan(low, op, layouts)
    extra = pipeline.prologue(low, _state(pipeline, flat, layouts)) if pipeline else []
    loop = _loop_head(low, flat + extra, layouts + [None] * len(extra), "for")
    iv, *phis = loop.phis[:len(flat)]
    carried = layouts[1:]
    test = b.icmp_signed if lb.type.is_signed else b.icmp_unsigned
    b.cbranch(test("<", iv, low.values[ub]), loop.body, loop.done)
    b.position_at_end(loop.body)
    if pipeline:
        pipeline.enter(low, iv, loop.phis[len(flat):])
    yielded, _ = _lower_region(low, op.regions[0], [iv, *_unflatten(phis, carried)], carried)
    loop.back(b, [b.add(iv, low.values[step]), *yielded, *(pipeline.leave(low) if pipeline else [])])
    b.position_at_end(loop.done)
    if pipeline:
        pipeline.drain(low)
    _bind(low, op.results, _unflatten(phis, carried))


def _state(pipeline: mma_pipeline.Pipeline, flat: list[ir.Value], layouts: Layouts) -> list[ir.Value]:
    """The registers of `flat` (the loop's carried registers, the induction variable first) of the
    arguments the pipeline's state is."""
    starts = [0]
    for layout in layouts:
        starts.append(starts[-1] + (1 if layout is None else layout.num_registers))
    return [v for index in pipeline.state for v in flat[starts[index]:starts[index + 1]]]


def if_(low: KernelLowering, op: Operation) -> None:
    b = low.b
    then_block = low.func.append_basic_block("if.then")
    else_block = low.func.append_basic_block("if.else")
    merge = low.func.append_basic_block("if.end")
    b.cbranch(low.values[op.operands[0]], then_block, else_block)
    b.position_at_end(then_block)
    then_values, layouts = _lower_region(low, op.regions[0], [], None)
    then_end = b.block
    b.branch(merge)
    b.position_at_end(else_block)
    else_values, _ = _lower_region(low, op.regions[1], [], layouts)
    else_end = b.block
    b.branch(merge)
    b.position_at_end(merge)
    phis = _phis(b, then_values, then_end)
    for phi, v in zip(phis, else_values):
        phi.add_incoming(v, else_end)
    _bind(low, op.results, _unflatten(phis, layouts))


def while_(low: KernelLowering, op: Operation) -> None:
    """The first region tests and forwards the carried values; the second updates them."""
    before_region, after_region = op.regions
    b = low.b
    loop = _loop_head(low, *_flatten(low, op.operands), "while")
    layouts = loop.layouts
    low.push_scope()
    _bind(low, before_region.args, _unflatten(loop.phis, layouts))
    cond, *forwarded = low.region(before_region)
    condition = low.values[cond]
    forwarded_flat, _ = _flatten(low, forwarded, layouts)
    low.pop_scope()
    b.cbranch(condition, loop.body, loop.done)
    b.position_at_end(loop.body)
    yielded, _ = _lower_region(low, after_region, _unflatten(forwarded_flat, layouts), layouts)
    loop.back(b, yielded)
    b.position_at_end(loop.done)
    _bind(low, op.results, _unflatten(forwarded_flat, layouts))
