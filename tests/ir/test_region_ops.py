"""Golden textual IR: passes on `reduce_with`/`scan`, ops with a region that are neither `for` nor `if`.

DCE removes an unused pure region op; CSE never merges two region ops (it
does not compare regions); the printer and parser round-trip them.
"""
import textwrap

from kdsl.ir import parse_module, print_module, verify_module
from kdsl.ir.passes import run_pipeline
from kdsl.ir.passes.cse import CSE
from kdsl.ir.passes.dce import DCE

SOURCE = textwrap.dedent("""\
    kernel @k(%x: *f32, %out: *f32) {
      %0 = arange {end = 8, start = 0} : block<8xi32>
      %1 = splat %x : block<8x*f32>
      %2 = addptr %1, %0 : block<8x*f32>
      %3 = load %2 : block<8xf32>
      %4 = reduce_with %3 {axis = 0} : f32 {
      ^(%5: f32, %6: f32):
        %7 = add %5, %6 : f32
        yield %7
      }
      %8 = reduce_with %3 {axis = 0} : f32 {
      ^(%9: f32, %10: f32):
        %11 = add %9, %10 : f32
        yield %11
      }
      %12 = scan %3 {axis = 0, reverse = true} : block<8xf32> {
      ^(%13: f32, %14: f32):
        %15 = mul %13, %14 : f32
        yield %15
      }
      %16 = add %4, %8 : f32
      store %out, %16
      return
    }
    """)


def _after(passes):
    module = parse_module(SOURCE)
    verify_module(module)
    return print_module(run_pipeline(module, passes))


def test_region_ops_round_trip():
    assert print_module(parse_module(SOURCE)) == SOURCE


def test_dce_removes_unused_scan_and_cse_keeps_both_reductions():
    assert _after([CSE(), DCE()]) == textwrap.dedent("""\
        kernel @k(%x: *f32, %out: *f32) {
          %0 = arange {end = 8, start = 0} : block<8xi32>
          %1 = splat %x : block<8x*f32>
          %2 = addptr %1, %0 : block<8x*f32>
          %3 = load %2 : block<8xf32>
          %4 = reduce_with %3 {axis = 0} : f32 {
          ^(%5: f32, %6: f32):
            %7 = add %5, %6 : f32
            yield %7
          }
          %8 = reduce_with %3 {axis = 0} : f32 {
          ^(%9: f32, %10: f32):
            %11 = add %9, %10 : f32
            yield %11
          }
          %12 = add %4, %8 : f32
          store %out, %12
          return
        }
        """)
