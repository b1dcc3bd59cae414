"""Inline every `call` into its caller, then drop the device functions.

Callees are inlined bottom-up (a device function's own calls first), so each
call site receives a call-free body. Cloned ops keep their `loc`, so errors in
inlined code still name the device function's source line.
"""
from __future__ import annotations

from kdsl.ir.clone import clone_op, erase, insert_before
from kdsl.ir.core import Function, Module, Operation, Value, replace_uses
from kdsl.ir.ops import VerificationError
from kdsl.ir.passes import Pass


class Inline(Pass):
    name = "inline"

    def run(self, module: Module) -> None:
        done: set[str] = set()
        for fn in list(module.functions.values()):
            _inline_into(fn, module, [], done)
        for name in [n for n, fn in module.functions.items() if not fn.is_kernel]:
            del module.functions[name]


def _inline_into(fn: Function, module: Module, stack: list[str], done: set[str]) -> None:
    """Inline every call in `fn`, after inlining each callee's calls (a cycle is an error)."""
    if fn.name in done:
        return
    stack.append(fn.name)
    for call in [op for op in fn.walk() if op.name == "call"]:
        callee = module.functions.get(call.attrs["callee"])
        if callee is None:
            raise VerificationError(f"call to unknown function '{call.attrs['callee']}'", call)
        if callee.name in stack:
            cycle = " -> ".join(stack[stack.index(callee.name):] + [callee.name])
            raise VerificationError(f"recursive device functions cannot be inlined: {cycle}", call)
        _inline_into(callee, module, stack, done)
        _inline_call(fn, call, callee)
    stack.pop()
    done.add(fn.name)


def _inline_call(fn: Function, call: Operation, callee: Function) -> None:
    mapping: dict[Value, Value] = dict(zip(callee.args, call.operands))
    body = callee.body.ops
    cloned = [clone_op(op, mapping) for op in body[:-1]]
    insert_before(call, cloned)
    returned = [mapping.get(v, v) for v in body[-1].operands]
    erase(call)
    replace_uses(fn.body, dict(zip(call.results, returned)))
