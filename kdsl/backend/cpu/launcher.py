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


def emit_launcher(module: ir.Module, fn: Function, kernel: ir.Function, checked: bool) -> ir.Function:
    sig = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I32, I32, I32, PTR])
    launch = ir.Function(module, sig, name=LAUNCH_NAME)
    argv, begin, end, gx, gy, gz, status = launch.args
    b = ir.IRBuilder(launch.append_basic_block("entry"))
    args = []
    for index, arg in enumerate(fn.args):
        slot = b.gep(argv, [ir.Constant(I64, index * SLOT_BYTES)], inbounds=True, source_etype=I8)
        args.append(from_memory(b, b.load(slot, typ=mem_type(arg.type)), arg.type))
    spans = [b.gep(argv, [ir.Constant(I64, len(fn.args) * SLOT_BYTES)], inbounds=True, source_etype=I8)] * checked
    wide_x, wide_y = b.zext(gx, I64), b.zext(gy, I64)
    with counted_loop(b, begin, end, ir.Constant(I64, 1), name="program") as pid:
        rest = b.udiv(pid, wide_x)
        x, y, z = b.urem(pid, wide_x), b.urem(rest, wide_y), b.udiv(rest, wide_y)
        b.call(kernel, args + [b.trunc(v, I32) for v in (x, y, z)] + [gx, gy, gz, status] + spans)
        failed = b.load_atomic(status, "monotonic", 8, typ=I64)
        with b.if_then(b.icmp_unsigned("!=", failed, ir.Constant(I64, 0)), likely=False):
            b.ret_void()
    b.ret_void()
    return launch
