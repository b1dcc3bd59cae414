"""Reads the textual IR that `kdsl.ir.printer` writes (see its docstring for the form)."""
from __future__ import annotations

import json
import re
from typing import Any

from kdsl.errors import UNKNOWN_LOC, KdslError, Loc
from kdsl.ir.core import Function, Module, Operation, Region, Value
from kdsl.ir.types import Type, parse_type


class IRParseError(KdslError):
    def __init__(self, message: str, line: int):
        self.line = line
        super().__init__(f"IR text, line {line}: {message}")


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<value>%[A-Za-z0-9_]+)
    | (?P<symbol>@[A-Za-z0-9_.$]+)
    | (?P<type>block<[^>]*>|\*[A-Za-z0-9]+)
    | (?P<number>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf)\b|nan\b)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<punct>->|[(){},:=^])
    )""",
    re.VERBOSE,
)

_NEWLINE = ("newline", "\n")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    for lineno, line in enumerate(text.splitlines(), 1):
        pos, line = 0, line.rstrip()
        while pos < len(line):
            m = _TOKEN.match(line, pos)
            if m is None or m.end() == pos:
                raise IRParseError(f"unexpected text {line[pos:].strip()[:20]!r}", lineno)
            tokens.append((m.lastgroup, m.group(m.lastgroup), lineno))
            pos = m.end()
            if not line[pos:].strip():
                break
        tokens.append((*_NEWLINE, lineno))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.values: dict[str, Value] = {}

    # token helpers -------------------------------------------------------
    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("eof", "", self.tokens[-1][2] if self.tokens else 0)

    def next(self) -> tuple[str, str, int]:
        tok = self.peek()
        self.pos += 1
        return tok

    def error(self, message: str) -> IRParseError:
        return IRParseError(message, self.peek()[2])

    def expect(self, text: str) -> None:
        kind, tok, _ = self.next()
        if tok != text:
            self.pos -= 1
            raise self.error(f"expected {text!r}, found {tok!r}")

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] != "string":
            self.pos += 1
            return True
        return False

    def skip_newlines(self) -> None:
        while self.peek()[0] == "newline":
            self.pos += 1

    # pieces --------------------------------------------------------------
    def type(self) -> Type:
        kind, tok, _ = self.next()
        try:
            return parse_type(tok)
        except ValueError as e:
            self.pos -= 1
            raise self.error(str(e)) from None

    def types(self) -> list[Type]:
        result = [self.type()]
        while self.accept(","):
            result.append(self.type())
        return result

    def use(self) -> Value:
        kind, tok, _ = self.next()
        if kind != "value":
            self.pos -= 1
            raise self.error(f"expected a value, found {tok!r}")
        if tok not in self.values:
            self.pos -= 1
            raise self.error(f"value {tok} is used before it is defined")
        return self.values[tok]

    def define(self, name: str, value: Value) -> None:
        if name in self.values:
            raise self.error(f"value {name} is defined twice")
        self.values[name] = value
        if not name[1:].isdigit():
            value.hint = name[1:]

    def attr_value(self) -> Any:
        kind, tok, _ = self.next()
        if kind == "number" or tok == "nan":
            return float(tok) if any(c in tok for c in ".eE") or tok.lstrip("-") in ("inf", "nan") else int(tok)
        if kind == "string":
            return json.loads(tok)
        if tok in ("true", "false"):
            return tok == "true"
        self.pos -= 1
        raise self.error(f"expected an attribute value, found {tok!r}")

    def attrs(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self.expect("{")
        while True:
            kind, key, _ = self.next()
            if kind != "ident":
                self.pos -= 1
                raise self.error(f"expected an attribute name, found {key!r}")
            self.expect("=")
            result[key] = self.attr_value()
            if not self.accept(","):
                break
        self.expect("}")
        return result

    def at_attrs(self) -> bool:
        return self.peek()[1] == "{" and self.peek(1)[0] == "ident" and self.peek(2)[1] == "="

    def loc(self) -> Loc:
        if not (self.peek()[1] == "loc" and self.peek(1)[1] == "("):
            return UNKNOWN_LOC
        self.pos += 2
        kind, file, _ = self.next()
        if kind != "string":
            raise self.error("expected a file name in loc(...)")
        parts = []
        while self.accept(":"):
            parts.append(int(self.next()[1]))
        self.expect(")")
        if len(parts) not in (2, 3):
            raise self.error("loc needs line:col or line:col:end_col")
        return Loc(json.loads(file), *parts)

    # structure -----------------------------------------------------------
    def module(self) -> Module:
        module = Module()
        self.skip_newlines()
        while self.peek()[0] != "eof":
            module.add(self.function())
            self.skip_newlines()
        return module

    def function(self) -> Function:
        kind, word, _ = self.next()
        if word not in ("kernel", "func"):
            self.pos -= 1
            raise self.error(f"expected 'kernel' or 'func', found {word!r}")
        kind, symbol, _ = self.next()
        if kind != "symbol":
            raise self.error("expected @name")
        self.values = {}
        names, types, attrs = [], [], []
        self.expect("(")
        while not self.accept(")"):
            kind, name, _ = self.next()
            if kind != "value":
                raise self.error(f"expected a parameter, found {name!r}")
            self.expect(":")
            names.append(name)
            types.append(self.type())
            attrs.append(self.attrs() if self.peek()[1] == "{" and self.peek(1)[0] == "ident" else {})
            self.accept(",")
        results = self.types() if self.accept("->") else []
        loc = self.loc()
        hints = [n[1:] if not n[1:].isdigit() else None for n in names]
        fn = Function(symbol[1:], types, results, hints, attrs, is_kernel=word == "kernel", loc=loc)
        for name, arg in zip(names, fn.args):
            self.define(name, arg)
        self.expect("{")
        self.region_body(fn.body)
        self.expect("}")
        return fn

    def region_body(self, region: Region) -> None:
        self.skip_newlines()
        if self.accept("^"):
            self.expect("(")
            types, names = [], []
            while not self.accept(")"):
                names.append(self.next()[1])
                self.expect(":")
                types.append(self.type())
                self.accept(",")
            self.expect(":")
            fresh = Region(types)
            region.args = fresh.args
            for arg in region.args:
                arg.region = region
            for name, arg in zip(names, region.args):
                self.define(name, arg)
        self.skip_newlines()
        while self.peek()[1] != "}":
            if self.peek()[0] == "eof":
                raise self.error("unexpected end of text inside a region")
            region.append(self.operation())
            self.skip_newlines()

    def operation(self) -> Operation:
        result_names = []
        if self.peek()[0] == "value":
            result_names.append(self.next()[1])
            while self.accept(","):
                result_names.append(self.next()[1])
            self.expect("=")
        kind, name, _ = self.next()
        if kind != "ident":
            self.pos -= 1
            raise self.error(f"expected an operation name, found {name!r}")
        operands = []
        if self.peek()[0] == "value":
            operands.append(self.use())
            while self.accept(","):
                operands.append(self.use())
        attrs = self.attrs() if self.at_attrs() else {}
        types = self.types() if self.accept(":") else []
        if len(types) != len(result_names):
            raise self.error(f"{len(result_names)} results but {len(types)} result types")
        loc = self.loc()
        regions = []
        if self.accept("{"):
            while True:
                region = Region()
                self.region_body(region)
                self.expect("}")
                regions.append(region)
                if not self.accept("{"):
                    break
        op = Operation(name, operands, types, attrs, regions, loc)
        for rname, result in zip(result_names, op.results):
            self.define(rname, result)
        if self.peek()[0] not in ("newline", "eof"):
            raise self.error(f"unexpected {self.peek()[1]!r} after '{name}'")
        return op


def parse_module(text: str) -> Module:
    """Parse IR text into a Module (unverified: call `verify_module` to check it)."""
    return _Parser(text).module()
