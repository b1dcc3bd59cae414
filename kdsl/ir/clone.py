"""Copying operations and regions with value remapping, for passes that move code.

`mapping` sends each value of the original to its counterpart in the copy; a
value not in the mapping (defined outside what is being cloned) is used as is.
Clones keep the original's `loc`, attributes and region structure.
"""
from __future__ import annotations

from kdsl.ir.core import Operation, Region, Value


def clone_op(op: Operation, mapping: dict[Value, Value]) -> Operation:
    """A copy of `op` (nested regions included) with operands remapped; adds its results to `mapping`."""
    regions = [clone_region(r, mapping) for r in op.regions]
    new = Operation(op.name, [mapping.get(v, v) for v in op.operands],
                    [r.type for r in op.results], dict(op.attrs), regions, op.loc)
    for old, fresh in zip(op.results, new.results):
        mapping[old] = fresh
    return new


def clone_region(region: Region, mapping: dict[Value, Value]) -> Region:
    """A copy of `region` with fresh arguments (recorded in `mapping`) and cloned operations."""
    new = Region([a.type for a in region.args], [a.hint for a in region.args])
    for old, fresh in zip(region.args, new.args):
        mapping[old] = fresh
    for op in region.ops:
        new.append(clone_op(op, mapping))
    return new


def insert_before(anchor: Operation, ops: list[Operation]) -> None:
    """Place `ops` in the anchor's region just before it."""
    region = anchor.parent
    assert region is not None, "anchor must be in a region"
    at = region.ops.index(anchor)
    for op in ops:
        op.parent = region
    region.ops[at:at] = ops


def erase(op: Operation) -> None:
    """Remove `op` from its region (its results must be unused or remapped)."""
    assert op.parent is not None
    op.parent.ops.remove(op)
    op.parent = None
