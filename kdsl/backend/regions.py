"""What every backend does with a region: lower its ops in order up to the terminator."""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from kdsl.errors import CompilationError
from kdsl.ir.core import Operation, Region, Value

TERMINATORS = ("yield", "return", "condition")


def lower_ops(region: Region, lower_op: Callable[[Operation], None], b: ir.IRBuilder) -> list[Value]:
    """Lower `region`'s ops with `lower_op` (a `return` becomes `ret void`); returns the terminator's operands.

    A CompilationError raised while lowering an op gets that op's source location."""
    for op in region.ops:
        if op.name in TERMINATORS:
            if op.name == "return":
                b.ret_void()
            return op.operands
        try:
            lower_op(op)
        except CompilationError as err:
            raise err.with_context(loc=op.loc) from None
    return []


def inline_region(lowering, region: Region, args: list[ir.Value]) -> list[ir.Value]:
    """Lower `region` in place with its arguments bound to `args` (scalars); the values it yields.

    `lowering` is a backend's KernelLowering: its `values` map and `region` method."""
    for arg, value in zip(region.args, args):
        lowering.values[arg] = value
    return [lowering.values[v] for v in lowering.region(region)]
