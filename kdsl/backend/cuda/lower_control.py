"""Structured control flow: `for`, `if` and `while` as LLVM blocks with one phi per carried register.

A carried block keeps the layout of its initial value (of the `then` yield for
`if`); values yielded in another layout are converted to it. Conditions are
scalars, the same in every thread, so branches never diverge.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

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


def for_(low: KernelLowering, op: Operation) -> None:
    lb, ub, step, *inits = op.operands
    body = op.regions[0]
    b = low.b
    flat, layouts = _flatten(low, inits)
    header = low.func.append_basic_block("for.header")
    loop = low.func.append_basic_block("for.body")
    done = low.func.append_basic_block("for.done")
    before = b.block
    b.branch(header)
    b.position_at_end(header)
    iv = b.phi(low.values[lb].type)
    iv.add_incoming(low.values[lb], before)
    phis = _phis(b, flat, before)
    signed = lb.type.is_signed
    test = b.icmp_signed if signed else b.icmp_unsigned
    b.cbranch(test("<", iv, low.values[ub]), loop, done)
    b.position_at_end(loop)
    yielded, _ = _lower_region(low, body, [iv, *_unflatten(phis, layouts)], layouts)
    iv.add_incoming(b.add(iv, low.values[step]), b.block)
    for phi, v in zip(phis, yielded):
        phi.add_incoming(v, b.block)
    b.branch(header)
    b.position_at_end(done)
    _bind(low, op.results, _unflatten(phis, layouts))


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
    flat, layouts = _flatten(low, op.operands)
    test = low.func.append_basic_block("while.test")
    body = low.func.append_basic_block("while.body")
    done = low.func.append_basic_block("while.done")
    entry = b.block
    b.branch(test)
    b.position_at_end(test)
    phis = _phis(b, flat, entry)
    low.push_scope()
    _bind(low, before_region.args, _unflatten(phis, layouts))
    cond, *forwarded = low.region(before_region)
    condition = low.values[cond]
    forwarded_flat, _ = _flatten(low, forwarded, layouts)
    low.pop_scope()
    b.cbranch(condition, body, done)
    b.position_at_end(body)
    yielded, _ = _lower_region(low, after_region, _unflatten(forwarded_flat, layouts), layouts)
    for phi, v in zip(phis, yielded):
        phi.add_incoming(v, b.block)
    b.branch(test)
    b.position_at_end(done)
    _bind(low, op.results, _unflatten(forwarded_flat, layouts))
