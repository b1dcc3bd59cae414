"""Which consecutive block ops the CPU lowering fuses into one element loop.

Elementwise ops, `constant`, `splat`, `arange`, `load` and `store` compute
element i of their block from element i of their operands (`broadcast` from
its operand's element at i's coordinates), so a run of them
over blocks of one size becomes a single loop in which each value is an SSA
value of the iteration: no buffer round trip between them, far less IR for
LLVM to optimise, and addresses LLVM can see are consecutive (so it
vectorises). Each result still gets its buffer, for the ops outside the loop;
LLVM deletes those nobody reads.

A reduction of a whole block to a scalar (`sum`, `max`, `min`) closes a run
over its source's elements: it accumulates as the loop goes, so softmax's
`max(x)` is taken in the loop that loads x.

Scalar arithmetic met inside an open run (an offset, a loop-invariant constant)
is moved before the run rather than cutting it: it reads only scalars, which
are all defined before the run.

A store closes its run too. It may share the loop of the run's loads only where
the lowering can show, when the program runs, that element j's load never reads
what the store of element i < j wrote (`lower.KernelLowering.emit_run`).
"""
from __future__ import annotations

from kdsl.ir.core import Operation
from kdsl.ir.ops import ELEMENTWISE, has_trait
from kdsl.ir.types import BlockType, ScalarType

VIEWS = ("expand_dims", "reshape")  # ops whose result is their operand's buffer, seen with another shape
ELEMENT_OPS = frozenset({"constant", "splat", "arange", "broadcast", "load", "store"})


# Float element ops of a few instructions, recomputed where used rather than kept in buffers.
CHEAP_FLOAT_OPS = frozenset({"constant", "splat", "broadcast", "add", "sub", "mul", "neg", "abs", "min", "max",
                             "select", "cmp", "cast", "bitcast", "fma", "multiple_of", "max_contiguous"})


def recomputable_op(op: Operation) -> bool:
    """Whether the lowering may compute `op`'s elements again where they are used: an element op
    on blocks other than a load or store whose result is integer, boolean or pointer (index arithmetic) or
    which is one of the cheap float ops."""
    if block_size(op) is None or op.name in ("load", "store"):
        return False
    elem = op.result.type.scalar
    return not (isinstance(elem, ScalarType) and elem.is_float) or op.name in CHEAP_FLOAT_OPS


def element_op(op: Operation) -> bool:
    """Whether `op` computes element i from elements i of its operands."""
    return op.name in ELEMENT_OPS or has_trait(op, ELEMENTWISE)


def block_size(op: Operation) -> int | None:
    """The number of elements an element op works on, None for scalar ones and other ops."""
    if not element_op(op):
        return None
    t = op.operands[1].type if op.name == "store" else op.result.type
    return t.numel if isinstance(t, BlockType) else None


def whole_reduction(op: Operation) -> bool:
    """A sum, max or min of every element of a block, to a scalar."""
    return op.name == "reduce" and not isinstance(op.result.type, BlockType)


def run_size(op: Operation) -> int | None:
    """The number of elements of the loop `op` can be part of, None where it is in none."""
    return op.operands[0].type.numel if whole_reduction(op) else block_size(op)


def closes(op: Operation) -> bool:
    """Whether nothing may follow `op` in its run."""
    return op.name == "store" or whole_reduction(op)


def _scalar_arithmetic(op: Operation) -> bool:
    return element_op(op) and op.name not in ("load", "store") and block_size(op) is None


def schedule(ops: list[Operation]) -> list[list[Operation]]:
    """`ops` cut into runs, in order: fused groups, and single ops."""
    runs: list[list[Operation]] = []
    for op in ops:
        size = run_size(op)
        last = runs[-1] if runs else None
        open_size = run_size(last[0]) if last is not None and not closes(last[-1]) else None
        if size is None and open_size is not None and _scalar_arithmetic(op):
            runs.insert(len(runs) - 1, [op])
        elif size is not None and size == open_size:
            last.append(op)
        else:
            runs.append([op])
    return runs
