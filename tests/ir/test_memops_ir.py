"""The `dot`, `atomic_rmw` and `atomic_cas` ops in textual IR: round trip, verifier, and the passes
(`dot` is pure and goes when unused; atomics are not pure: DCE and CSE keep them)."""
import pytest

from kdsl.ir.ops import VerificationError
from kdsl.ir.parser import parse_module
from kdsl.ir.passes import run_pipeline
from kdsl.ir.passes.cse import CSE
from kdsl.ir.passes.dce import DCE
from kdsl.ir.printer import print_module
from kdsl.ir.verifier import verify_module

SOURCE = """\
kernel @k(%a: block<4x8xf16>, %b: block<8x2xf16>, %p: block<4x*i32>, %m: block<4xi1>) {
  %0 = constant {value = 0.0} : block<4x2xf32>
  %1 = dot %a, %b, %0 {input_precision = "ieee"} : block<4x2xf32>
  %2 = constant {value = 1} : block<4xi32>
  %3 = atomic_rmw %p, %2, %m {kind = "add", scope = "gpu", sem = "acq_rel"} : block<4xi32>
  %4 = atomic_rmw %p, %2, %m {kind = "add", scope = "gpu", sem = "acq_rel"} : block<4xi32>
  %5 = atomic_cas %p, %2, %2 {scope = "sys", sem = "relaxed"} : block<4xi32>
  %6 = atomic_cas %p, %2, %2 {scope = "sys", sem = "relaxed"} : block<4xi32>
  return
}
"""


def test_round_trip():
    module = parse_module(SOURCE)
    verify_module(module)
    assert print_module(module) == SOURCE


def test_dce_removes_an_unused_dot_and_dce_cse_keep_every_atomic():
    module = run_pipeline(parse_module(SOURCE), [CSE(), DCE()])
    text = print_module(module)
    assert "dot" not in text
    assert text.count("atomic_rmw") == 2 and text.count("atomic_cas") == 2


@pytest.mark.parametrize("old, new, message", [
    ("dot %a, %b, %0", "dot %a, %a, %0", "do not chain"),
    ('kind = "add"', 'kind = "nand"', "unknown atomic kind 'nand'"),
    ('sem = "relaxed"', 'sem = "seq_cst"', "unknown sem 'seq_cst'"),
])
def test_verifier_rejects(old, new, message):
    with pytest.raises(VerificationError, match=message):
        verify_module(parse_module(SOURCE.replace(old, new)))
