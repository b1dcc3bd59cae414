"""Common-subexpression elimination of pure ops, scoped by region nesting.

Two pure ops are the same expression when they have the same name, operands
(in canonical order for commutative ops), attributes and result types. A value
defined in an outer region may replace one inside a nested region, never the
reverse: each region starts from a copy of its parent's table.
"""
from __future__ import annotations

from typing import Hashable

from kdsl.ir.clone import erase
from kdsl.ir.core import Module, Operation, Region, Value, replace_uses
from kdsl.ir.ops import COMMUTATIVE, PURE, has_trait
from kdsl.ir.passes import Pass


class CSE(Pass):
    name = "cse"

    def run(self, module: Module) -> None:
        for fn in module.functions.values():
            mapping: dict[Value, Value] = {}
            _cse_region(fn.body, {}, mapping)
            replace_uses(fn.body, mapping)


def _key(op: Operation, mapping: dict[Value, Value]) -> Hashable:
    """The identity of a pure op's result; attributes are keyed by type and repr so that
    1, 1.0 and True differ, -0.0 differs from 0.0 and NaN equals NaN."""
    operands = [id(mapping.get(v, v)) for v in op.operands]
    if has_trait(op, COMMUTATIVE):
        operands.sort()
    attrs = tuple(sorted((k, type(v).__name__, repr(v)) for k, v in op.attrs.items()))
    return op.name, tuple(operands), attrs, tuple(str(r.type) for r in op.results)


def _cse_region(region: Region, seen: dict[Hashable, Operation], mapping: dict[Value, Value]) -> None:
    scope = dict(seen)
    for op in list(region.ops):
        op.operands = [mapping.get(v, v) for v in op.operands]
        for nested in op.regions:
            _cse_region(nested, scope, mapping)
        if op.regions or not has_trait(op, PURE):
            continue
        key = _key(op, mapping)
        earlier = scope.get(key)
        if earlier is None:
            scope[key] = op
            continue
        mapping.update(zip(op.results, earlier.results))
        erase(op)
