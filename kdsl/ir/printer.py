"""The textual form of kdsl IR; `kdsl.ir.parser` reads back exactly what this writes.

    kernel @add(%x: *f32 {divisibility = 16}, %n: i32) {
      %0 = program_id {axis = 0} : i32
      %1 = for %lb, %ub, %step, %init : f32 {
      ^(%2: i32, %3: f32):
        yield %3
      }
      return
    }

Operands are printed without types (their definitions carry them); results
are followed by `: type, ...`; attributes are sorted by name; regions follow
in braces; `loc(...)` is printed when asked for.
"""
from __future__ import annotations

import json
import re
from typing import Any

from kdsl.errors import Loc
from kdsl.ir.core import Function, Module, Operation, Region, Value

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot print attribute value {value!r}")


def format_attrs(attrs: dict[str, Any]) -> str:
    if not attrs:
        return ""
    return "{" + ", ".join(f"{k} = {format_attr(attrs[k])}" for k in sorted(attrs)) + "}"


def format_loc(loc: Loc) -> str:
    end = f":{loc.end_col}" if loc.end_col is not None else ""
    return f"loc({json.dumps(loc.file)}:{loc.line}:{loc.col}{end})"


class Printer:
    def __init__(self, locs: bool = False):
        self.locs = locs
        self.names: dict[Value, str] = {}
        self.counter = 0
        self.lines: list[str] = []

    def name(self, v: Value) -> str:
        if v not in self.names:
            self.names[v] = f"%{self.counter}"
            self.counter += 1
        return self.names[v]

    def function(self, fn: Function) -> None:
        self.names, self.counter = {}, 0
        taken: set[str] = set()
        params = []
        for arg, attrs in zip(fn.args, fn.arg_attrs):
            if arg.hint and _IDENT.match(arg.hint) and arg.hint not in taken:
                self.names[arg] = f"%{arg.hint}"
                taken.add(arg.hint)
            text = f"{self.name(arg)}: {arg.type}"
            params.append(text + (f" {format_attrs(attrs)}" if attrs else ""))
        results = f" -> {', '.join(map(str, fn.result_types))}" if fn.result_types else ""
        kind = "kernel" if fn.is_kernel else "func"
        loc = f" {format_loc(fn.loc)}" if self.locs else ""
        self.lines.append(f"{kind} @{fn.name}({', '.join(params)}){results}{loc} {{")
        self.region_body(fn.body, 1)
        self.lines.append("}")

    def region_body(self, region: Region, depth: int) -> None:
        for op in region.ops:
            self.op(op, depth)

    def op(self, op: Operation, depth: int) -> None:
        pad = "  " * depth
        text = ""
        if op.results:
            text = ", ".join(self.name(r) for r in op.results) + " = "
        text += op.name
        if op.operands:
            text += " " + ", ".join(self.name(v) for v in op.operands)
        if op.attrs:
            text += " " + format_attrs(op.attrs)
        if op.results:
            text += " : " + ", ".join(str(r.type) for r in op.results)
        if self.locs:
            text += " " + format_loc(op.loc)
        if not op.regions:
            self.lines.append(pad + text)
            return
        for i, region in enumerate(op.regions):
            opener = pad + text + " {" if i == 0 else pad + "} {"
            self.lines.append(opener)
            if region.args:
                args = ", ".join(f"{self.name(a)}: {a.type}" for a in region.args)
                self.lines.append(f"{pad}^({args}):")
            self.region_body(region, depth + 1)
        self.lines.append(pad + "}")


def print_module(module: Module, locs: bool = False) -> str:
    p = Printer(locs)
    for fn in module.functions.values():
        p.function(fn)
    return "\n".join(p.lines) + "\n"


def print_function(fn: Function, locs: bool = False) -> str:
    p = Printer(locs)
    p.function(fn)
    return "\n".join(p.lines) + "\n"
