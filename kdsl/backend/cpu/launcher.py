"""The LLVM entry point the runtime calls: unpacks arguments, walks a range of programs.

    void launch(ptr argv, i64 begin, i64 end, i32 gx, i32 gy, i32 gz, ptr status)

`argv` holds one 8-byte slot per kernel argument (its bits in the low bytes), then, for a
kernel whose accesses are checked, two per argument: the byte span [lo, hi) of an array
(see `lower_bounds`); linear program ids `begin..end` map to (x, y, z) with x fastest.
`status` (see `lower_debug`) stops the walk once a program has failed an assertion or a check.
"""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.abi import LAUNCH_NAME
from kdsl.backend.cpu.llvm_types import I32, I64, I8, PTR, from_memory, mem_type
from kdsl.backend.cpu.loops import counted_loop
from kdsl.ir.core import Function

SLOT_BYTES = 8
SIGNATURE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I32, I32, I32, PTR])  # as abi.LAUNCH_TYPE


def emit_launcher(module: ir.Module, fn: Function, kernel: ir.Function, checked: bool) -> ir.Function:
    launch = ir.Function(module, SIGNATURE, name=LAUNCH_NAME)
    argv, begin, end, gx, gy, gz, status = launch.args
    b = ir.IRBuilder(launch.append_basic_block("entry"))
    args = []
    for index, arg in enumerate(fn.args):
        slot = b.gep(argv, [ir.Constant(I64, index * SLOT_BYTES)], inbounds=True, source_etype=I8)
        args.append(from_memory(b, b.load(slot, typ=mem_type(arg.type)), arg.type))
    spans = [b.gep(argv, [ir.Constant(I64, len(fn.args) * SLOT_BYTES)], inbounds=True, source_etype=I8)] * checked
    wide_x, wide_y = b.zext(gx, I64), b.zext(gy, I64)
    rest = b.udiv(begin, wide_x)
    ids = [b.alloca(I32) for _ in range(3)]
    for slot, first in zip(ids, (b.urem(begin, wide_x), b.urem(rest, wide_y), b.udiv(rest, wide_y))):
        b.store(b.trunc(first, I32), slot)
    with counted_loop(b, begin, end, ir.Constant(I64, 1), name="program"):
        x, y, z = (b.load(slot) for slot in ids)
        b.call(kernel, args + [x, y, z] + [gx, gy, gz, status] + spans)
        failed = b.load_atomic(status, "monotonic", 8, typ=I64)
        with b.if_then(b.icmp_unsigned("!=", failed, ir.Constant(I64, 0)), likely=False):
            b.ret_void()
        carry = None  # the next program's ids, x fastest: counted on instead of divided for
        for slot, value, size in zip(ids, (x, y, z), (gx, gy, gz)):
            step = ir.Constant(I32, 1) if carry is None else b.zext(carry, I32)
            bumped = b.add(value, step)
            carry = b.icmp_unsigned("==", bumped, size)
            b.store(b.select(carry, ir.Constant(I32, 0), bumped), slot)
    b.ret_void()
    return launch
