"""Building IR: an insertion point (a region) and a current source location."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from kdsl.errors import UNKNOWN_LOC, Loc
from kdsl.ir.core import Operation, Region, Value
from kdsl.ir.types import Type


class Builder:
    def __init__(self, region: Region, loc: Loc = UNKNOWN_LOC):
        self.region = region
        self.loc = loc

    def create(
        self,
        name: str,
        operands: list[Value],
        result_types: list[Type],
        attrs: dict[str, Any] | None = None,
        regions: list[Region] | None = None,
    ) -> Operation:
        """Append a new operation at the insertion point, located at `self.loc`."""
        return self.region.append(Operation(name, operands, result_types, attrs, regions, self.loc))

    def value(self, name: str, operands: list[Value], result_type: Type, **attrs: Any) -> Value:
        """Append a one-result operation and return its result."""
        return self.create(name, operands, [result_type], attrs).result

    def combining(self, name: str, operands: list[Value], result_types: list[Type], attrs: dict[str, Any],
                  body: Callable[[list[Value]], list[Value]]) -> Operation:
        """An op with one region of 2k scalar arguments (k accumulated values, then k new
        ones, of the operands' element types); `body` builds the values it yields."""
        elems = [v.type.scalar for v in operands]
        region = Region(elems + elems)
        with self.at(region):
            self.create("yield", body(list(region.args)), [])
        return self.create(name, operands, result_types, attrs, [region])

    @contextmanager
    def at(self, region: Region) -> Iterator["Builder"]:
        """Insert into `region` for the duration of the block."""
        saved = self.region
        self.region = region
        try:
            yield self
        finally:
            self.region = saved

    @contextmanager
    def located(self, loc: Loc) -> Iterator["Builder"]:
        saved = self.loc
        self.loc = loc
        try:
            yield self
        finally:
            self.loc = saved
