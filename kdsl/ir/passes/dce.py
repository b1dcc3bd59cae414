"""Dead-code elimination, to a fixpoint, in every region.

Removed: pure ops whose results are unused; `for`/`if` and pure region ops
(`reduce_with`, `scan`) whose results are unused and whose regions hold only
removable ops (no `store`, no `call`); and
loop-carried values of `for` that neither the results nor the rest of the body
use (the init, the region argument, the yielded value and the result go
together). Never removed: `store`, `call`, `load` (it may fault), terminators,
and ops with regions that contain any of those.
"""
from __future__ import annotations

from collections import Counter

from kdsl.ir.clone import erase
from kdsl.ir.core import Module, Operation, Region, Value
from kdsl.ir.ops import PURE, has_trait
from kdsl.ir.passes import Pass


class DCE(Pass):
    name = "dce"

    def run(self, module: Module) -> None:
        for fn in module.functions.values():
            while _dce_region(fn.body, _use_counts(fn.body)):
                pass


def _use_counts(region: Region) -> Counter[Value]:
    return Counter(v for op in region.walk() for v in op.operands)


def _removable(op: Operation) -> bool:
    """Whether `op` has no effect besides its results."""
    if op.regions:
        return (op.name in ("for", "if") or has_trait(op, PURE)) and all(
            _removable(inner) or inner.name == "yield" for r in op.regions for inner in r.ops)
    return has_trait(op, PURE)


def _dce_region(region: Region, uses: Counter[Value]) -> bool:
    """One backward sweep over `region` and its nested regions; True if anything was removed."""
    changed = False
    for op in reversed(list(region.ops)):
        if all(uses[r] == 0 for r in op.results) and _removable(op):
            for v in op.operands:
                uses[v] -= 1
            erase(op)
            changed = True
            continue
        for nested in op.regions:
            changed |= _dce_region(nested, uses)
        if op.name == "for":
            changed |= _drop_dead_carried(op, uses)
    return changed


def _drop_dead_carried(op: Operation, uses: Counter[Value]) -> bool:
    """Remove carried values whose result is unused and whose region argument only feeds its own yield."""
    body = op.regions[0]
    term = body.terminator
    assert term is not None
    users = _users(body)
    dead = [i for i, result in enumerate(op.results) if uses[result] == 0 and _feeds_only_yield(body, i, users)]
    if not dead:
        return False
    for i in reversed(dead):
        for v in (op.operands[3 + i], term.operands[i]):
            uses[v] -= 1
        del op.operands[3 + i], term.operands[i], op.results[i], body.args[i + 1]
    for index, result in enumerate(op.results):
        result.index = index
    for index, arg in enumerate(body.args):
        arg.index = index
    return True


def _users(body: Region) -> dict[Value, list[tuple[Operation, int]]]:
    users: dict[Value, list[tuple[Operation, int]]] = {}
    for op in body.walk():
        for index, v in enumerate(op.operands):
            users.setdefault(v, []).append((op, index))
    return users


def _feeds_only_yield(body: Region, i: int, users: dict[Value, list[tuple[Operation, int]]]) -> bool:
    """Whether everything computed from carried value `i` is pure, at the body's top level,
    and used only as the yielded value `i` (so the chain dies with the carried value)."""
    term = body.terminator
    pending, seen = [body.args[i + 1]], set()
    while pending:
        v = pending.pop()
        for user, index in users.get(v, []):
            if user is term and index == i:
                continue
            if user.parent is not body or user.regions or not has_trait(user, PURE):
                return False
            if user not in seen:
                seen.add(user)
                pending.extend(user.results)
    return True
