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

The analyses the lowering asks of a region: which ops it may compute again where
their results are read (`recomputable_op`), which loads it may load again there
(`reloadable_loads`), and which masks of a run can be known before it
(`precomputable_masks`).
"""
from __future__ import annotations

from kdsl.ir.core import Operation, Value
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


def _writes_memory(op: Operation) -> bool:
    return op.name in ("store", "atomic_rmw", "atomic_cas") or any(
        _writes_memory(inner) for region in op.regions for inner in region.ops)


def reloadable_loads(ops: list[Operation], users: dict[Value, list[Operation]]) -> set[Value]:
    """The block loads of a region that may be loaded again where used instead of being kept in
    a buffer: every user is an element op of the same region, and no op after the load writes
    memory before its last user, which may be a store (checked against the load as against its
    run's own loads: `lower.KernelLowering.overlap_free`, `staged_store`)."""
    position = {op: k for k, op in enumerate(ops)}
    writes = [k for k, op in enumerate(ops) if _writes_memory(op)]
    found = set()
    for k, op in enumerate(ops):
        if op.name != "load" or not isinstance(op.result.type, BlockType):
            continue
        last = _last_use(op.result, position, users, {})
        if last is not None and not any(k < w < last or w == last and ops[w].name != "store" for w in writes):
            found.add(op.result)
    return found


def _last_use(v: Value, position: dict[Operation, int], users: dict[Value, list[Operation]],
              known: dict[Value, int | None]) -> int | None:
    """The position of the last op of the region that reads `v`, directly or through ops that may
    compute their elements again where they are used; None where an op elsewhere, or one that is
    no element op, reads it."""
    if v not in known:
        last: int | None = -1
        for user in users.get(v, []):
            if user not in position or run_size(user) is None or user.name == "load":
                last = None
                break
            at: int | None = position[user]
            if recomputable_op(user):
                further = _last_use(user.result, position, users, known)
                at = None if further is None else max(at, further)
            if at is None:
                last = None
                break
            last = max(last, at)
        known[v] = last
    return known[v]


def precomputable_masks(run: list[Operation], again: list[Operation]) -> set[Value]:
    """The block masks of `run`'s loads (and of the loads it loads `again`) and stores, when all
    of them can be computed before the run: none of them depends on a load of the run."""
    inside = {op.result: op for op in run if op.results}
    known: dict[Value, bool] = {}

    def before_run(v: Value) -> bool:
        if v not in inside:
            return True
        if v not in known:
            op = inside[v]
            known[v] = op.name != "load" and all(before_run(o) for o in op.operands)
        return known[v]
    accesses = again + [op for op in run if op.name in ("load", "store")]
    masks = {op.operands[{"load": 1, "store": 2}[op.name]] for op in accesses
             if len(op.operands) > {"load": 1, "store": 2}[op.name]}
    blocks = {m for m in masks if isinstance(m.type, BlockType)}
    return blocks if blocks and all(before_run(m) for m in blocks) else set()
