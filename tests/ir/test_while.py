"""The `while` op: textual round trip, verifier rules, and the passes keeping it intact."""
import textwrap

import pytest

from kdsl.ir import VerificationError, parse_module, print_module, verify_module
from kdsl.ir.passes import default_passes, run_pipeline

WHILE = textwrap.dedent("""\
    kernel @k(%x: *i32, %n: i32) {
      %0 = constant {value = 0} : i32
      %1, %2 = while %0, %n : i32, i32 {
      ^(%3: i32, %4: i32):
        %5 = cmp %3, %4 {pred = "lt"} : i1
        condition %5, %3, %4
      } {
      ^(%6: i32, %7: i32):
        %8 = constant {value = 1} : i32
        %9 = add %6, %8 : i32
        %10 = mul %9, %9 : i32
        yield %9, %7
      }
      store %x, %1
      return
    }
    """)


def test_while_round_trips_and_verifies():
    module = parse_module(WHILE)
    verify_module(module)
    assert print_module(module) == WHILE


def test_passes_keep_the_loop_and_drop_dead_work_inside():
    module = parse_module(WHILE)
    run_pipeline(module, default_passes())
    text = print_module(module)
    assert "while" in text and "condition" in text
    assert "mul" not in text


@pytest.mark.parametrize("original, broken, reason", [
    ("condition %5, %3, %4", "condition %5, %3", "condition takes an i1 and the carried values"),
    ("yield %9, %7", "yield %9", "region yields"),
])
def test_verifier_rejects_mismatched_terminators(original, broken, reason):
    with pytest.raises(VerificationError, match=reason):
        verify_module(parse_module(WHILE.replace(original, broken)))
