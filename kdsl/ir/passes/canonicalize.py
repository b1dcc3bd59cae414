"""Constant folding and canonicalisation: a table of rewrite rules keyed by op name.

A rule looks at one op and returns the values that replace its results (new
ops it needs are inserted just before it, at its `loc`), or None to leave it.
Rules run over every region, innermost first, until nothing changes.

What is folded: elementwise ops, `cmp`, `cast`, `bitcast`, `splat`,
`broadcast`, `expand_dims`, and `reduce` (min, max, integer sum) on constants
(a block `constant` means every element has `value`), with the semantics in `kdsl.ir.passes.fold`; identities that hold
bit for bit (`x + 0`, `x * 0`, `x - x`, `x ^ x`, `cmp x, x` on ints; `x * 1`;
`x - 0` with +0.0 on floats; `x & x`, `x | x`, `min x, x`, `max x, x`;
`addptr p, 0`; `select` on a constant condition or of one value twice; no-op
`cast`/`broadcast`; `splat`/`broadcast` chains); `for` loops that never run;
`if` on a constant condition. Never folded: anything that changes float
results (`x + 0.0` is not `x` for -0.0, `x * 0.0` is not 0 for inf/NaN).
"""
from __future__ import annotations

import math
from typing import Callable

from kdsl.ir.clone import erase, insert_before
from kdsl.ir.core import Module, Operation, OpResult, Region, Value, replace_uses
from kdsl.ir.passes import Pass
from kdsl.ir.passes.fold import (Number, fold_binary, fold_bitcast, fold_cast, fold_cmp, fold_reduce, fold_unary,
                                 foldable, wrap)
from kdsl.ir.types import ScalarType, Type

Rule = Callable[[Operation], "list[Value] | None"]

_MAX_SWEEPS = 32


class Canonicalize(Pass):
    name = "canonicalize"

    def run(self, module: Module) -> None:
        for fn in module.functions.values():
            mapping: dict[Value, Value] = {}
            for _ in range(_MAX_SWEEPS):
                if not _sweep(fn.body, mapping):
                    break
            replace_uses(fn.body, mapping)


def _resolve(mapping: dict[Value, Value], v: Value) -> Value:
    while v in mapping:
        v = mapping[v]
    return v


def _sweep(region: Region, mapping: dict[Value, Value]) -> bool:
    """Apply the rules once to every op of `region`, nested regions first; True if anything changed."""
    changed = False
    for op in list(region.ops):
        op.operands = [_resolve(mapping, v) for v in op.operands]
        for nested in op.regions:
            changed |= _sweep(nested, mapping)
        rule = RULES.get(op.name)
        replacement = rule(op) if rule is not None else None
        if replacement is not None:
            mapping.update(zip(op.results, replacement))
            erase(op)
            changed = True
    return changed


# helpers ---------------------------------------------------------------------

def _defining(v: Value, name: str) -> Operation | None:
    return v.op if isinstance(v, OpResult) and v.op.name == name else None


def const_value(v: Value) -> Number | None:
    """The element value of `v` when it is a foldable `constant`, wrapped to its type."""
    op = _defining(v, "constant")
    elem = v.type.scalar
    if op is None or not foldable(elem):
        return None
    return wrap(op.attrs["value"], elem)  # type: ignore[arg-type]


def _is(v: Value, value: float) -> bool:
    c = const_value(v)
    return c is not None and c == value and math.copysign(1.0, c) == math.copysign(1.0, value)


def _new(anchor: Operation, name: str, operands: list[Value], t: Type, **attrs: object) -> Value:
    """A new one-result op before `anchor`, at its location."""
    op = Operation(name, operands, [t], attrs, loc=anchor.loc)
    insert_before(anchor, [op])
    return op.result


def _constant(anchor: Operation, value: Number | None) -> list[Value] | None:
    """A constant of the anchor's result type replacing it, or None when `value` is None."""
    if value is None:
        return None
    t = anchor.result.type
    return [_new(anchor, "constant", [], t, value=wrap(value, t.scalar))]  # type: ignore[arg-type]


# rules -----------------------------------------------------------------------

def _binary(op: Operation) -> list[Value] | None:
    a, b = op.operands
    t = op.result.type.scalar
    ca, cb = const_value(a), const_value(b)
    if ca is not None and cb is not None:
        return _constant(op, fold_binary(op.name, t, ca, cb))
    return _same_operands(op, a, t) if a is b else _identity(op, a, b, t)


def _same_operands(op: Operation, x: Value, t: ScalarType) -> list[Value] | None:
    """`x op x`: `and`, `or`, `min`, `max` give x (fmin/fmax too); on ints `x - x`, `x ^ x` give 0."""
    if op.name in ("and", "or", "min", "max"):
        return [x]
    if op.name in ("sub", "xor") and t.is_int:
        return _constant(op, 0)
    return None


def _identity(op: Operation, a: Value, b: Value, t: ScalarType) -> list[Value] | None:
    """`x + 0`, `x * 1`, `x * 0`, `x - 0`, and their commuted forms, where exact for `t`."""
    is_int = t.is_int
    for x, k in ((a, b), (b, a)) if op.name in ("add", "mul") else ((a, b),):
        if op.name == "add" and is_int and _is(k, 0):
            return [x]
        if op.name == "sub" and _is(k, 0):
            return [x]
        if op.name == "mul" and _is(k, 1):
            return [x]
        if op.name == "mul" and is_int and _is(k, 0):
            return _constant(op, 0)
    return None


def _unary(op: Operation) -> list[Value] | None:
    c = const_value(op.operands[0])
    return None if c is None else _constant(op, fold_unary(op.name, op.result.type.scalar, c))


def _cmp(op: Operation) -> list[Value] | None:
    """Constants, or an integer compared with itself (a float may be NaN)."""
    x, y = op.operands
    if x is y and x.type.scalar.is_int:  # type: ignore[union-attr]
        return _constant(op, op.attrs["pred"] in ("eq", "le", "ge"))
    a, b = const_value(x), const_value(y)
    return None if a is None or b is None else _constant(op, fold_cmp(op.attrs["pred"], a, b))


def _select(op: Operation) -> list[Value] | None:
    cond, a, b = op.operands
    c = const_value(cond)
    if c is not None:
        return [a if c else b]
    return [a] if a is b else None


def _cast(op: Operation) -> list[Value] | None:
    """`cast`/`bitcast` to the operand's own type, or of a constant."""
    (x,) = op.operands
    if x.type == op.result.type:
        return [x]
    c, dst = const_value(x), op.result.type.scalar
    if c is None or not foldable(dst):
        return None
    fold = fold_cast if op.name == "cast" else fold_bitcast
    return _constant(op, fold(x.type.scalar, dst, c))  # type: ignore[arg-type]


def _reduce(op: Operation) -> list[Value] | None:
    (x,) = op.operands
    c = const_value(x)
    if c is None:
        return None
    count = x.type.shape[op.attrs["axis"]]
    return _constant(op, fold_reduce(op.attrs["kind"], x.type.scalar, c, count))  # type: ignore[arg-type]


def _reshape_constant(op: Operation) -> list[Value] | None:
    """`splat`/`broadcast`/`expand_dims` of a constant: a constant of the new shape."""
    c = _defining(op.operands[0], "constant")
    return None if c is None else [_new(op, "constant", [], op.result.type, value=c.attrs["value"])]


def _splat(op: Operation) -> list[Value] | None:
    return _reshape_constant(op)


def _broadcast(op: Operation) -> list[Value] | None:
    (x,) = op.operands
    t = op.result.type
    if x.type == t:
        return [x]
    inner = _defining(x, "splat") or _defining(x, "broadcast")
    if inner is not None:
        return [_new(op, inner.name, [inner.operands[0]], t)]
    return _reshape_constant(op)


def _addptr(op: Operation) -> list[Value] | None:
    p, offset = op.operands
    return [p] if _is(offset, 0) else None


def _for(op: Operation) -> list[Value] | None:
    lb, ub = const_value(op.operands[0]), const_value(op.operands[1])
    if lb is None or ub is None or lb < ub:
        return None
    return list(op.operands[3:])


def _if(op: Operation) -> list[Value] | None:
    c = const_value(op.operands[0])
    if c is None:
        return None
    taken = op.regions[0 if c else 1]
    *body, term = taken.ops
    insert_before(op, body)
    return list(term.operands)


RULES: dict[str, Rule] = {
    **{name: _binary for name in ("add", "sub", "mul", "div", "rem", "min", "max",
                                  "and", "or", "xor", "shl", "shr")},
    **{name: _unary for name in ("neg", "abs", "not", "sqrt")},
    "cmp": _cmp, "select": _select, "cast": _cast, "bitcast": _cast, "reduce": _reduce,
    "splat": _splat, "broadcast": _broadcast,
    "expand_dims": _reshape_constant, "addptr": _addptr, "for": _for, "if": _if,
}
