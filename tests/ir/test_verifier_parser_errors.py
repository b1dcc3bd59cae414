"""Malformed IR is rejected: by the verifier with VerificationError, by the parser with IRParseError naming the line."""
from __future__ import annotations

import pytest

from kdsl.ir import (Builder, Function, IRParseError, Module, Operation, Region, VerificationError, parse_module,
                     verify_module)
from kdsl.ir.types import f32, i1, i32


def check_rejects(body: str, match: str, header: str = "kernel @k(%p: *f32, %x: f32, %n: i32, %c: i1) {") -> None:
    module = parse_module(f"{header}\n{body}\n  return\n}}\n")
    with pytest.raises(VerificationError, match=match):
        verify_module(module)


@pytest.mark.parametrize("body, match", [
    ("  %0 = add %x, %n : f32", "operand of type i32 does not match result type f32"),
    ("  %0 = and %x, %x : f32", "element type f32 is not int or uint"),
    ("  %0 = exp %n : i32", "element type i32 is not float"),
    ("  %0 = cmp %x, %x {pred = \"lt\"} : f32", "result must be i1"),
    ("  %0 = cmp %x, %x {pred = \"less\"} : i1", "unknown predicate 'less'"),
    ("  %0 = cmp %x, %x : i1", "needs attribute 'pred'"),
    ("  %0 = constant {value = 1.5} : i32", "integer constant with value 1.5"),
    ("  %0 = constant {value = \"one\"} : f32", "needs attribute 'value'"),
    ("  %0 = select %n, %x, %x : f32", "condition must be i1"),
    ("  %0 = bitcast %x : i8", "different widths"),
    ("  %0 = splat %x : block<4xi32>", "cannot splat f32 to block<4xi32>"),
    ("  %0 = load %x : f32", "loads need pointers"),
    ("  store %p, %n", "value must be f32, not i32"),
    ("  %0 = program_id {axis = 3} : i32", "axis must be 0, 1 or 2"),
    ("  %0 = frobnicate %x : f32", "unknown operation 'frobnicate'"),
    ("  %0 = add %x : f32", "takes 2 operands, got 1"),
    ("  %0 = if %c : f32 {\n    yield %n\n  } {\n    yield %x\n  }", r"region yields \[i32\], expected \[f32\]"),
    ("  %0 = if %c : f32 {\n    yield %x\n  } {\n    %1 = add %x, %x : f32\n  }", "region must end with yield"),
    ("  %0 = for %n, %n, %n, %x : f32 {\n  ^(%1: i32, %2: i32):\n    yield %x\n  }", "region arguments must be"),
    ("  %0 = for %x, %x, %x : f32 {\n  ^(%1: f32):\n    yield\n  }", "bounds and step must be integer"),
    ("  %0 = call %x {callee = \"nowhere\"} : f32", "call to unknown function 'nowhere'"),
    ("  yield %x", "must be the last operation"),
])
def test_verifier_rejects(body: str, match: str) -> None:
    check_rejects(body, match)


def test_return_type_must_match_declaration() -> None:
    module = parse_module("func @f(%x: f32) -> i32 {\n  return %x\n}\n")
    with pytest.raises(VerificationError, match=r"returns \['f32'\], declared \['i32'\]"):
        verify_module(module)


def test_use_before_definition_is_rejected() -> None:
    fn = Function("k", [f32])
    b = Builder(fn.body)
    later = Operation("add", [fn.args[0], fn.args[0]], [f32])
    b.create("mul", [later.result, fn.args[0]], [f32])
    fn.body.append(later)
    b.create("return", [], [])
    with pytest.raises(VerificationError, match="not defined before it"):
        verify_module(Module([fn]))


def test_value_from_inside_a_region_is_not_visible_after_it() -> None:
    fn = Function("k", [i1, f32])
    b = Builder(fn.body)
    then, other = Region(), Region()
    with b.at(then):
        inner = b.value("add", [fn.args[1], fn.args[1]], f32)
        b.create("yield", [], [])
    with b.at(other):
        b.create("yield", [], [])
    b.create("if", [fn.args[0]], [], regions=[then, other])
    b.create("mul", [inner, inner], [f32])
    b.create("return", [], [])
    with pytest.raises(VerificationError, match="not defined before it"):
        verify_module(Module([fn]))


def test_call_signature_must_match() -> None:
    module = parse_module('''func @f(%x: f32) -> f32 {
  return %x
}
kernel @k(%n: i32) {
  %0 = call %n {callee = "f"} : f32
  return
}
''')
    with pytest.raises(VerificationError, match="call arguments do not match 'f'"):
        verify_module(module)


def test_verification_error_names_the_location() -> None:
    module = parse_module('kernel @k(%x: f32) {\n  %0 = exp %x : i32 loc("user.py":7:4)\n  return\n}\n')
    with pytest.raises(VerificationError, match="user.py:7:4"):
        verify_module(module)


@pytest.mark.parametrize("text, line, match", [
    ("kernel @k(%x: f32) {\n  %0 = add %x, %y : f32\n  return\n}\n", 2, "value %y is used before it is defined"),
    ("kernel @k(%x: f32) {\n  %0 = add %x, %x : f32\n  %0 = add %x, %x : f32\n  return\n}\n", 3,
     "value %0 is defined twice"),
    ("kernel @k(%x: f33) {\n  return\n}\n", 1, "unknown type 'f33'"),
    ("kernel @k(%x: f32) {\n  %0 = add %x, %x : block<4xq>\n  return\n}\n", 2, "unknown type"),
    ("kernel @k(%x: f32) {\n  %0, %1 = add %x, %x : f32\n  return\n}\n", 2, "2 results but 1 result types"),
    ("kernel @k(%x: f32) {\n  %0 = add %x, %x : f32 extra\n  return\n}\n", 2, "unexpected 'extra'"),
    ("kernel @k(%x: f32) {\n  %0 = add %x, %x : f32\n", 2, "unexpected end of text"),
    ("module @k() {\n}\n", 1, "expected 'kernel' or 'func'"),
    ("kernel @k(%x: f32) {\n  %0 = constant {value = } : f32\n  return\n}\n", 2, "expected an attribute value"),
    ("kernel @k(%x: f32) {\n  return loc(\"a.py\":1)\n}\n", 2, "loc needs line:col"),
    ("kernel @k(%x: f32) {\n  %0 = add %x, %x : f32 ; comment\n  return\n}\n", 2, "unexpected text"),
])
def test_parser_rejects_with_line(text: str, line: int, match: str) -> None:
    with pytest.raises(IRParseError, match=match) as info:
        parse_module(text)
    assert info.value.line == line
    assert f"line {line}:" in str(info.value)


def test_builder_made_ir_with_wrong_yield_types_is_rejected() -> None:
    fn = Function("k", [i32, f32])
    b = Builder(fn.body)
    body = Region([i32, f32])
    with b.at(body):
        b.create("yield", [body.args[0]], [])
    n = fn.args[0]
    b.create("for", [n, n, n, fn.args[1]], [f32], regions=[body])
    b.create("return", [], [])
    with pytest.raises(VerificationError, match=r"region yields \[i32\], expected \[f32\]"):
        verify_module(Module([fn]))
