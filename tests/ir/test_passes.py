"""Pass behaviour that golden text cannot show: locations, recording, errors, idempotence."""
from __future__ import annotations

import pytest

from kdsl.ir import VerificationError, parse_module, print_module
from kdsl.ir.passes import Pass, default_passes, run_pipeline
from kdsl.ir.passes.canonicalize import Canonicalize
from kdsl.ir.passes.inline import Inline

CALLS = '''func @sq(%a: i32) -> i32 loc("dev.py":3:0) {
  %0 = mul %a, %a : i32 loc("dev.py":4:11:16)
  return %0 loc("dev.py":4:4)
}
kernel @k(%p: *i32, %x: i32) loc("k.py":1:0) {
  %0 = constant {value = 3} : i32 loc("k.py":2:8)
  %1 = call %0 {callee = "sq"} : i32 loc("k.py":3:8:13)
  %2 = add %x, %1 : i32 loc("k.py":4:8)
  store %p, %2 loc("k.py":5:4)
  return loc("k.py":6:4)
}
'''


def test_inline_keeps_callee_locations() -> None:
    module = parse_module(CALLS)
    run_pipeline(module, [Inline()])
    assert list(module.functions) == ["k"]
    text = print_module(module, locs=True)
    assert '%1 = mul %0, %0 : i32 loc("dev.py":4:11:16)' in text


def test_folded_constant_takes_the_replaced_ops_location() -> None:
    module = parse_module(CALLS)
    run_pipeline(module, [Inline(), Canonicalize()])
    text = print_module(module, locs=True)
    assert '= constant {value = 9} : i32 loc("dev.py":4:11:16)' in text
    assert '= add %x, %' in text and 'loc("k.py":4:8)' in text


def test_recursion_is_rejected_with_the_cycle_named() -> None:
    module = parse_module('''func @f(%a: i32) -> i32 {
  %0 = call %a {callee = "g"} : i32
  return %0
}
func @g(%a: i32) -> i32 {
  %0 = call %a {callee = "f"} : i32
  return %0
}
kernel @k(%x: i32) {
  %0 = call %x {callee = "f"} : i32
  return
}
''')
    with pytest.raises(VerificationError, match="recursive device functions cannot be inlined: f -> g -> f"):
        run_pipeline(module, [Inline()])


def test_record_keeps_ir_after_each_pass() -> None:
    module = parse_module(CALLS)
    record: dict[str, str] = {}
    run_pipeline(module, default_passes(), record=record)
    assert list(record) == ["inline", "canonicalize", "cse", "canonicalize.2", "dce"]
    assert "call" in CALLS and "call" not in record["inline"]
    assert record["dce"] == print_module(module)


def test_verify_after_each_pass_catches_a_broken_pass() -> None:
    class DropReturn(Pass):
        name = "drop-return"

        def run(self, module) -> None:
            module.kernel.body.ops.pop()

    with pytest.raises(VerificationError, match="must end with return"):
        run_pipeline(parse_module(CALLS), [DropReturn()])
    run_pipeline(parse_module(CALLS), [DropReturn()], verify=False)


def test_default_pipeline_is_idempotent_on_its_output() -> None:
    module = parse_module(CALLS)
    run_pipeline(module, default_passes())
    once = print_module(module, locs=True)
    run_pipeline(module, default_passes())
    assert print_module(module, locs=True) == once
