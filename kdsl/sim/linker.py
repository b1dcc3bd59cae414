"""Inline `.func` calls into the calling kernel.

Each `call` is replaced by the callee's body with its registers and labels
renamed per call site, its formal parameters renamed to the caller's actual
`.param` variables, and `ret` turned into a branch past the inlined body.
Threads then diverge and reconverge through calls like any other branch.
"""
from __future__ import annotations

from dataclasses import replace

from kdsl.sim.errors import UnsupportedInstruction
from kdsl.sim.parser import Addr, Function, Instruction, Not, Pair, Reg, Sym, Variable, Vec

_SPECIAL = ("%tid", "%ntid", "%ctaid", "%nctaid", "%laneid", "%warpid", "%nwarpid", "%lanemask", "%smid",
            "%nsmid", "%clock", "%globaltimer", "%dynamic_smem_size", "%total_smem_size", "%cc")
_MAX_DEPTH = 16


def _rename(op, regs: str, names: dict[str, str]):
    if isinstance(op, Reg):
        return op if op.name.startswith(_SPECIAL) else Reg(op.name + regs)
    if isinstance(op, Sym):
        return Sym(names.get(op.name, op.name))
    if isinstance(op, Addr):
        return Addr(_rename(op.base, regs, names) if op.base is not None else None, op.offset)
    if isinstance(op, Vec):
        return Vec(tuple(_rename(x, regs, names) for x in op.items))
    if isinstance(op, Pair):
        return Pair(_rename(op.first, regs, names), _rename(op.second, regs, names))
    if isinstance(op, Not):
        return Not(_rename(op.reg, regs, names))
    return op


def inline_calls(func: Function, functions: dict[str, Function]) -> tuple[list, list[Variable]]:
    """The body of `func` (instructions and label strings) with every call inlined."""
    counter = [0]
    variables = list(func.variables)

    def expand(body: list, depth: int) -> list:
        out: list = []
        for item in body:
            if isinstance(item, str) or item.opcode != "call":
                out.append(item)
                continue
            if depth >= _MAX_DEPTH:
                raise UnsupportedInstruction(f"call nesting deeper than {_MAX_DEPTH} (recursion?): '{item.text}'")
            out.extend(expand_call(item, depth))
        return out

    def expand_call(inst: Instruction, depth: int) -> list:
        ops = list(inst.operands)
        rets = ops.pop(0).items if isinstance(ops[0], Vec) else ()
        target = ops.pop(0)
        args = ops.pop(0).items if ops else ()
        callee = functions.get(target.name) if isinstance(target, Sym) else None
        if callee is None or not callee.body:
            raise UnsupportedInstruction(f"call of a function without a body in this module: '{inst.text}'")
        counter[0] += 1
        tag = f"@call{counter[0]}"
        names = {p.name: a.name for p, a in zip(callee.params, args)}
        names.update({p.name: r.name for p, r in zip(callee.returns, rets)})
        end = f"$ret{tag}"
        for var in callee.variables:
            names[var.name] = var.name + tag
            variables.append(replace(var, name=var.name + tag))
        inlined: list = []
        for item in callee.body:
            if isinstance(item, str):
                inlined.append(item + tag)
                continue
            names_here = {**names, **{lab: lab + tag for lab in _labels(callee)}}
            new = replace(item, operands=[_rename(o, tag, names_here) for o in item.operands],
                          guard=_rename(item.guard, tag, names) if item.guard is not None else None)
            if new.opcode == "ret":
                new = replace(new, opcode="bra", mods=("uni",), operands=[Sym(end)], text=f"{item.text} (return)")
            inlined.append(new)
        guard = inst.guard
        body = expand(inlined, depth + 1)
        if guard is not None:
            skip = f"$skip{tag}"
            body = [Instruction("bra", (), [Sym(skip)], inst.text, guard, not inst.guard_negated)] + body + [skip]
        return body + [end]

    return expand(func.body, 0), variables


def _labels(func: Function) -> list[str]:
    return [x for x in func.body if isinstance(x, str)]
