"""Which consecutive block ops the CPU lowering fuses into one element loop.

Elementwise ops, `constant`, `splat`, `arange`, `load` and `store` compute
element i of their block from element i of their operands, so a run of them
over blocks of one size becomes a single loop in which each value is an SSA
value of the iteration: no buffer round trip between them, far less IR for
LLVM to optimise, and addresses LLVM can see are consecutive (so it
vectorises). Each result still gets its buffer, for the ops outside the loop;
LLVM deletes those nobody reads.

Scalar arithmetic met inside a run (an offset, a loop-invariant constant) is
moved before the run rather than cutting it: it reads only scalars, which
are all defined before the run.

Memory order within a program stays that of the program: a store ends a
group and never joins one holding a load, since element j's load would
otherwise run after element i's store (i < j) where they may alias.
"""
from __future__ import annotations

from kdsl.ir.core import Operation
from kdsl.ir.ops import ELEMENTWISE, has_trait
from kdsl.ir.types import BlockType

ELEMENT_OPS = frozenset({"constant", "splat", "arange", "load", "store"})


def element_op(op: Operation) -> bool:
    """Whether `op` computes element i from elements i of its operands."""
    return op.name in ELEMENT_OPS or has_trait(op, ELEMENTWISE)


def block_size(op: Operation) -> int | None:
    """The number of elements an element op works on, None for scalar ones and other ops."""
    if not element_op(op):
        return None
    t = op.operands[1].type if op.name == "store" else op.result.type
    return t.numel if isinstance(t, BlockType) else None


def _scalar_arithmetic(op: Operation) -> bool:
    return element_op(op) and op.name not in ("load", "store") and block_size(op) is None


def _joins(group: list[Operation], op: Operation, size: int) -> bool:
    if block_size(op) != size or group[-1].name == "store":
        return False
    return op.name != "store" or all(g.name != "load" for g in group)


def schedule(ops: list[Operation]) -> list[list[Operation]]:
    """`ops` cut into runs, in order: fused groups, and single ops."""
    runs: list[list[Operation]] = []
    for op in ops:
        size = block_size(op)
        last = runs[-1] if runs else None
        if size is None and last is not None and block_size(last[0]) is not None and _scalar_arithmetic(op):
            runs.insert(len(runs) - 1, [op])
        elif size is not None and last is not None and block_size(last[0]) == size and _joins(last, op, size):
            last.append(op)
        else:
            runs.append([op])
    return runs
