"""The CPU lowering of `print` and `assert`.

`print` calls back into Python (`debug_runtime`). `assert` needs no callback:
the kernel takes a pointer to the launch's status (six i64: the failure's code,
program id x, y, z, linear element index, address); the first false element claims it
(`report`: an atomic compare-exchange on the first slot, so that programs running on
several threads report one failure whole), fills it and returns from the
program, and the launcher runs no further programs. A failed assertion's code is
its site's number + 1; the runtime raises `DeviceAssertionError` from the site table
(`kdsl.runtime.device_assert.AssertSite`, shared with the GPU targets). Checked
accesses (`lower_bounds`) report the same way, with negative codes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.abi import STATUS_SLOTS
from kdsl.backend.cpu.debug_runtime import PRINT_SYMBOL, site_description
from kdsl.backend.cpu.llvm_types import I8, I32, I64, PTR, mem_type, to_memory
from kdsl.backend.cpu.loops import Buffer, element_loop
from kdsl.ir.core import Operation
from kdsl.ir.types import BlockType
from kdsl.runtime.device_assert import AssertSite

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering



def _function(module: ir.Module, name: str, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, ir.FunctionType(ir.VoidType(), args), name)


def lower_print(lowering: "KernelLowering", op: Operation) -> None:
    b = lowering.b
    module = b.module
    text = site_description(op.attrs["prefix"], op.attrs["hex"], [str(v.type) for v in op.operands])
    site = ir.GlobalVariable(module, ir.ArrayType(I8, len(text)), module.get_unique_name("kdsl.print"))
    site.global_constant, site.linkage = True, "internal"
    site.initializer = ir.Constant(ir.ArrayType(I8, len(text)), bytearray(text))
    pointers = lowering.entry.alloca(PTR, size=max(1, len(op.operands)))
    for i, v in enumerate(op.operands):
        value = lowering.values[v]
        if isinstance(value, Buffer):
            data = value.ptr
        else:
            data = lowering.entry.alloca(mem_type(v.type))
            b.store(to_memory(b, value, v.type), data)
        b.store(data, b.gep(pointers, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR))
    callee = _function(module, PRINT_SYMBOL, [PTR, I32, I32, I32, PTR])
    b.call(callee, [site, *lowering.grid[:3], pointers])


def lower_assert(lowering: "KernelLowering", op: Operation) -> None:
    cond = op.operands[0]
    lowering.assert_sites.append(AssertSite(op.loc, op.attrs["message"], cond.type.shape))
    site = ir.Constant(I64, len(lowering.assert_sites))
    b = lowering.b

    def check(index: ir.Value) -> None:
        with b.if_then(b.not_(lowering.element(cond, index)), likely=False):
            report(lowering, site, index, ir.Constant(I64, 0))
    if isinstance(cond.type, BlockType):
        with element_loop(b, cond.type.numel, "assert") as i:
            check(i)
    else:
        check(ir.Constant(I64, 0))


def report(lowering: "KernelLowering", code: ir.Value, index: ir.Value, address: ir.Value) -> None:
    """Claim the launch's status for failure `code` at element `index` (and `address`) of this
    program, unless another failure has, and return from the program."""
    b = lowering.b
    claim = b.cmpxchg(lowering.status, ir.Constant(I64, 0), code, "monotonic", "monotonic")
    with b.if_then(b.extract_value(claim, 1)):
        fields = [*(b.zext(p, I64) for p in lowering.grid[:3]), index, address]
        for slot, value in enumerate(fields, 1):
            b.store(value, b.gep(lowering.status, [ir.Constant(I64, slot)], inbounds=True, source_etype=I64))
    b.ret_void()
