"""The `print` and `assert` ops in textual IR: they read back as written, survive every pass
(neither is pure, so DCE keeps them and CSE never merges two), and the verifier checks them."""
from __future__ import annotations

import pytest

from kdsl.ir import VerificationError, parse_module, print_module, verify_module
from kdsl.ir.passes import default_passes, run_pipeline

TEXT = '''kernel @k(%p: *f32, %n: i32) {
  %0 = arange {end = 4, start = 0} : block<4xi32>
  %1 = splat %p : block<4x*f32>
  %2 = addptr %1, %0 : block<4x*f32>
  %3 = load %2 : block<4xf32>
  print %3, %n {hex = false, prefix = " x \\"quoted\\": "}
  print %3, %n {hex = false, prefix = " x \\"quoted\\": "}
  print {hex = true, prefix = "\\tno values\\n"}
  %4 = splat %n : block<4xi32>
  %5 = cmp %0, %4 {pred = "lt"} : block<4xi1>
  assert %5 {message = "offs < n: \\u00e9"}
  assert %5 {message = ""}
  return
}
'''


def test_print_and_assert_read_back_as_written() -> None:
    module = parse_module(TEXT)
    verify_module(module)
    assert print_module(module) == TEXT
    with_locs = print_module(module, locs=True)
    assert print_module(parse_module(with_locs), locs=True) == with_locs


def test_passes_keep_every_print_and_assert() -> None:
    module = parse_module(TEXT)
    run_pipeline(module, default_passes(), verify=True)
    names = [op.name for op in module.kernel.walk()]
    assert names.count("print") == 3 and names.count("assert") == 2


@pytest.mark.parametrize("body, match", [
    ("  assert %n {message = \"m\"}", "condition must be i1 or a block of i1, not i32"),
    ("  assert %c", "needs attribute 'message'"),
    ("  print %n {prefix = \"p\"}", "needs attribute 'hex'"),
    ("  print %n {hex = 1, prefix = \"p\"}", "needs attribute 'hex'"),
    ("  %0 = print %n {hex = false, prefix = \"p\"} : i32", "has 0 results, got 1"),
])
def test_verifier_rejects_malformed_print_and_assert(body: str, match: str) -> None:
    module = parse_module(f"kernel @k(%n: i32, %c: i1) {{\n{body}\n  return\n}}\n")
    with pytest.raises(VerificationError, match=match):
        verify_module(module)
