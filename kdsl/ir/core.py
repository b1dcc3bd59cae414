"""Values, operations, regions, functions and modules of kdsl IR.

The IR is SSA with structured control flow: `for` and `if` own regions (one
block each) whose arguments and `yield` carry values in and out, so there are
no phi nodes. Every operation carries the source `Loc` of the Python expression
it came from, through every pass.
"""
from __future__ import annotations

from typing import Any, Iterator

from kdsl.errors import UNKNOWN_LOC, Loc
from kdsl.ir.types import Type


class Value:
    """An SSA value: an operation's result or a region's argument."""

    __slots__ = ("type", "hint")

    def __init__(self, type: Type, hint: str | None = None):
        self.type = type
        self.hint = hint


class OpResult(Value):
    __slots__ = ("op", "index")

    def __init__(self, type: Type, op: "Operation", index: int):
        super().__init__(type)
        self.op = op
        self.index = index


class BlockArg(Value):
    __slots__ = ("region", "index")

    def __init__(self, type: Type, region: "Region", index: int, hint: str | None = None):
        super().__init__(type, hint)
        self.region = region
        self.index = index


class Region:
    """A single block of operations with typed arguments."""

    __slots__ = ("args", "ops", "parent")

    def __init__(self, arg_types: list[Type] = (), hints: list[str | None] | None = None):
        hints = hints or [None] * len(arg_types)
        self.args = [BlockArg(t, self, i, h) for i, (t, h) in enumerate(zip(arg_types, hints))]
        self.ops: list[Operation] = []
        self.parent: Operation | Function | None = None

    def append(self, op: "Operation") -> "Operation":
        op.parent = self
        self.ops.append(op)
        return op

    def walk(self) -> Iterator["Operation"]:
        """Every operation in this region and, depth first, in nested regions."""
        for op in self.ops:
            yield op
            for region in op.regions:
                yield from region.walk()

    @property
    def terminator(self) -> "Operation | None":
        return self.ops[-1] if self.ops else None


class Operation:
    """One operation: `name` indexes the op table in `kdsl.ir.ops`."""

    __slots__ = ("name", "operands", "results", "attrs", "regions", "loc", "parent")

    def __init__(
        self,
        name: str,
        operands: list[Value],
        result_types: list[Type],
        attrs: dict[str, Any] | None = None,
        regions: list[Region] | None = None,
        loc: Loc = UNKNOWN_LOC,
    ):
        self.name = name
        self.operands = list(operands)
        self.results = [OpResult(t, self, i) for i, t in enumerate(result_types)]
        self.attrs = dict(attrs or {})
        self.regions = list(regions or [])
        for region in self.regions:
            region.parent = self
        self.loc = loc
        self.parent: Region | None = None

    @property
    def result(self) -> OpResult:
        """The single result of a one-result operation."""
        assert len(self.results) == 1, f"{self.name} has {len(self.results)} results"
        return self.results[0]

    def __repr__(self) -> str:
        return f"<Operation {self.name} at {self.loc}>"


class Function:
    """A kernel (`is_kernel`) or a device function: typed arguments, a body, result types."""

    def __init__(
        self,
        name: str,
        arg_types: list[Type],
        result_types: list[Type] = (),
        arg_names: list[str | None] | None = None,
        arg_attrs: list[dict[str, Any]] | None = None,
        is_kernel: bool = True,
        loc: Loc = UNKNOWN_LOC,
    ):
        self.name = name
        self.body = Region(list(arg_types), arg_names)
        self.body.parent = self
        self.result_types = list(result_types)
        self.arg_attrs = arg_attrs or [{} for _ in arg_types]
        self.is_kernel = is_kernel
        self.loc = loc

    @property
    def args(self) -> list[BlockArg]:
        return self.body.args

    def walk(self) -> Iterator[Operation]:
        return self.body.walk()


class Module:
    """An ordered collection of functions; the first kernel is the entry point."""

    def __init__(self, functions: list[Function] | None = None):
        self.functions: dict[str, Function] = {}
        for fn in functions or []:
            self.add(fn)

    def add(self, fn: Function) -> Function:
        self.functions[fn.name] = fn
        return fn

    @property
    def kernel(self) -> Function:
        for fn in self.functions.values():
            if fn.is_kernel:
                return fn
        raise LookupError("module has no kernel")


def replace_uses(root: Region, mapping: dict[Value, Value]) -> None:
    """Rewrite every operand in `root` (nested regions included) through `mapping`."""
    if not mapping:
        return
    for op in root.walk():
        for i, v in enumerate(op.operands):
            while v in mapping:
                v = mapping[v]
            op.operands[i] = v
