"""Provenance over textual IR: which pointer arguments each pointer value, and each store, reaches."""
import textwrap

from kdsl.ir import parse_module, print_module, verify_module
from kdsl.ir.passes.provenance import Provenance
from kdsl.ir.printer import Printer


def provenance(text: str):
    """(each pointer value's arguments by its name in `text`, the arguments stores write)."""
    module = parse_module(textwrap.dedent(text))
    verify_module(module)
    fn = module.kernel
    analysis = Provenance(fn)
    assert print_module(module) == textwrap.dedent(text).strip() + "\n"  # an analysis: the IR stays
    printer = Printer()
    printer.function(fn)
    names = {name[1:]: analysis.of[v] for v, name in printer.names.items() if v in analysis.of}
    return names, set(analysis.stores())


def test_arithmetic_shapes_and_select_carry_their_arguments():
    names, stores = provenance("""
        kernel @k(%a: *f32, %b: *f32, %c: *f32, %n: i32) {
          %0 = arange {end = 16, start = 0} : block<16xi32>
          %1 = splat %a : block<16x*f32>
          %2 = addptr %1, %0 : block<16x*f32>
          %3 = splat %b : block<16x*f32>
          %4 = splat %n : block<16xi32>
          %5 = cmp %0, %4 {pred = "lt"} : block<16xi1>
          %6 = select %5, %2, %3 : block<16x*f32>
          %7 = load %6 : block<16xf32>
          %8 = addptr %c, %n : *f32
          %9 = constant {value = 1.0} : f32
          store %6, %7
          store %8, %9
          return
        }
        """)
    assert names["2"] == {0} and names["6"] == {0, 1} and names["8"] == {2}
    assert stores == {0, 1, 2}


def test_pointers_carried_by_loops_and_ifs_gather_what_is_yielded():
    names, stores = provenance("""
        kernel @k(%a: *f32, %b: *f32, %n: i32) {
          %0 = constant {value = 0} : i32
          %1 = constant {value = 1} : i32
          %2 = for %0, %n, %1, %a : *f32 {
          ^(%3: i32, %4: *f32):
            %5 = cmp %3, %1 {pred = "lt"} : i1
            %6 = if %5 : *f32 {
              yield %b
            } {
              %7 = addptr %4, %1 : *f32
              yield %7
            }
            yield %6
          }
          %8 = constant {value = 1.0} : f32
          store %2, %8
          return
        }
        """)
    assert names["4"] == {0, 1} and names["2"] == {0, 1}
    assert stores == {0, 1}
