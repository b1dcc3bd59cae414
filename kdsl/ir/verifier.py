"""Whole-module checks: every op against the op table, SSA dominance, calls, returns."""
from __future__ import annotations

from kdsl.ir.core import Function, Module, Region, Value
from kdsl.ir.ops import VerificationError, verify_op


def verify_module(module: Module) -> None:
    for fn in module.functions.values():
        verify_function(fn, module)


def verify_function(fn: Function, module: Module | None = None) -> None:
    _verify_region(fn.body, set(), fn, module)
    term = fn.body.terminator
    if term is None or term.name != "return":
        raise VerificationError(f"function '{fn.name}' must end with return")
    if [v.type for v in term.operands] != fn.result_types:
        raise VerificationError(f"function '{fn.name}' returns {[str(v.type) for v in term.operands]}, "
                                f"declared {[str(t) for t in fn.result_types]}", term)


def _verify_region(region: Region, visible: set[Value], fn: Function, module: Module | None) -> None:
    scope = set(visible)
    scope.update(region.args)
    for op in region.ops:
        if op.parent is not region:
            raise VerificationError("operation's parent link is wrong", op)
        for v in op.operands:
            if v not in scope:
                raise VerificationError(f"'{op.name}' uses a value that is not defined before it", op)
        verify_op(op)
        if op.name == "return" and region is not fn.body:
            raise VerificationError("return inside a nested region", op)
        if op.name == "call" and module is not None:
            _verify_call(op, module)
        for nested in op.regions:
            _verify_region(nested, scope, fn, module)
        scope.update(op.results)


def _verify_call(op, module: Module) -> None:
    callee = module.functions.get(op.attrs["callee"])
    if callee is None:
        raise VerificationError(f"call to unknown function '{op.attrs['callee']}'", op)
    if [v.type for v in op.operands] != [a.type for a in callee.args]:
        raise VerificationError(f"call arguments do not match '{callee.name}'", op)
    if [r.type for r in op.results] != callee.result_types:
        raise VerificationError(f"call results do not match '{callee.name}'", op)
