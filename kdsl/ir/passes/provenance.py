"""Provenance: which pointer arguments of a kernel each pointer value may point into.

A pointer argument points into itself; pointer arithmetic (`addptr`), the shape ops
(`splat`, `broadcast`, `expand_dims`, `reshape`, `permute`, `join`, `split`), `select`,
`bitcast`, the axis hints and the values loops and ifs carry pass the arguments of their
pointer operands on. A pointer any other op made (none does today: the IR has no pointers to
pointers or integer-to-pointer casts) would have an unknown provenance (None) and name no
argument. This is an analysis: the IR stays as it is.
The launch uses it to refuse read-only arrays that a kernel stores through (`stores`); the CPU
checks each access against the arguments it may access, and the simulator's faults are reported
against them (`accesses`).
"""
from __future__ import annotations

from kdsl.errors import Loc
from kdsl.ir.core import Function, Operation, Region, Value
from kdsl.ir.types import PointerType

Arguments = frozenset  # of argument indices
_PASSING = {"addptr": (0,), "splat": (0,), "broadcast": (0,), "expand_dims": (0,), "reshape": (0,),
            "permute": (0,), "join": (0, 1), "split": (0,), "select": (1, 2), "bitcast": (0,),
            "multiple_of": (0,), "max_contiguous": (0,)}
WRITES = ("store", "atomic_rmw", "atomic_cas")
ACCESSES = ("load",) + WRITES


def _is_pointer(v: Value) -> bool:
    return isinstance(v.type.scalar, PointerType)


def _union(facts: list[Arguments | None]) -> Arguments | None:
    if any(f is None for f in facts):
        return None
    return Arguments().union(*facts)


class Provenance:
    """The arguments every pointer value of `fn` may point into (None: unknown)."""

    def __init__(self, fn: Function):
        self.fn = fn
        self.of: dict[Value, Arguments | None] = {}
        for index, arg in enumerate(fn.args):
            if _is_pointer(arg):
                self.of[arg] = Arguments({index})
        self._region(fn.body)

    def __getitem__(self, value: Value) -> Arguments | None:
        return self.of.get(value, Arguments())

    def stores(self) -> dict[int, Loc | None]:
        """Each argument some store or atomic surely writes through, with the first such op's place;
        accesses whose provenance is unknown name no argument."""
        written: dict[int, Loc | None] = {}
        for op in self.fn.walk():
            if op.name in WRITES:
                for index in sorted(self[op.operands[0]] or ()):
                    written.setdefault(index, op.loc)
        return written

    def accesses(self) -> dict[Loc, Arguments]:
        """The arguments the loads, stores and atomics at each source place may access (the
        union where several share a place; all pointer arguments where one's provenance is
        unknown)."""
        pointers = Arguments(i for i, arg in enumerate(self.fn.args) if _is_pointer(arg))
        places: dict[Loc, Arguments] = {}
        for op in self.fn.walk():
            if op.name in ACCESSES:
                places[op.loc] = places.get(op.loc, Arguments()) | (self[op.operands[0]] or pointers)
        return places

    def _region(self, region: Region) -> list[Arguments | None]:
        for op in region.ops:
            self._visit(op)
        term = region.terminator
        return [self[v] for v in term.operands] if term is not None and term.name in ("yield", "condition") else []

    def _visit(self, op: Operation) -> None:
        if op.name in ("for", "while"):
            self._loop(op)
            return
        if op.name == "if":
            yielded = [self._region(region) for region in op.regions]
            for result, *facts in zip(op.results, *yielded):
                if _is_pointer(result):
                    self.of[result] = _union(list(facts))
            return
        for region in op.regions:
            self._region(region)
        for result in op.results:
            if _is_pointer(result):
                passing = _PASSING.get(op.name)
                self.of[result] = None if passing is None else _union([self[op.operands[k]] for k in passing])

    def _loop(self, op: Operation) -> None:
        """Carried pointers point where their initial values or anything yielded for them do:
        the body is analysed again until that stops growing. (A `while` forwards its carried
        values from the test region to the body through its `condition`.)"""
        facts = [self[v] for v in (op.operands[3:] if op.name == "for" else op.operands)]
        while True:
            if op.name == "for":
                self._bind(op.regions[0].args[1:], facts)
                forwarded, yielded = facts, self._region(op.regions[0])
            else:
                self._bind(op.regions[0].args, facts)
                forwarded = self._region(op.regions[0])[1:]
                self._bind(op.regions[1].args, forwarded)
                yielded = self._region(op.regions[1])
            grown = [_union([fact, y]) for fact, y in zip(facts, yielded)]
            if grown == facts:
                break
            facts = grown
        self._bind(op.results, facts if op.name == "for" else forwarded)

    def _bind(self, values: list[Value], facts: list[Arguments | None]) -> None:
        for value, fact in zip(values, facts):
            if _is_pointer(value):
                self.of[value] = fact
