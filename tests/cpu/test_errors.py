"""What the CPU backend refuses, and how it says so."""
import numpy as np
import pytest

from kdsl.backend.cpu.program import compile_cpu
from kdsl.errors import CompilationError, LaunchError
from kdsl.ir import parse_module, verify_module
from tests.cpu.helpers import compiled, elementwise_kernel, launch

CALL = """
func @twice(%a: i32) -> i32 {
  %b = add %a, %a : i32
  return %b
}
kernel @k(%out: *i32) {
  %c = constant {value = 3} : i32
  %r = call %c {callee = "twice"} : i32
  store %out, %r
  return
}
"""


def test_remaining_call_is_an_internal_error():
    module = parse_module(CALL)
    verify_module(module)
    with pytest.raises(CompilationError, match="internal error: call to 'twice'"):
        compile_cpu(module)


def test_wrong_argument_count_and_grid():
    text = elementwise_kernel("add", ["f32", "f32"], "f32")
    with pytest.raises(LaunchError, match="takes 4 arguments"):
        compiled(text).launch([0, 0], (1, 1, 1), [0, 0])
    with pytest.raises(LaunchError, match="non-negative"):
        compiled(text).launch([0, 0, 0, 0], (-1, 1, 1), [0, 0, 0, 0])


SCALAR_DIV = """
kernel @sdiv(%out: *i32, %a: i32, %b: i32) {
  %q = div %a, %b : i32
  %r = rem %a, %b : i32
  %one = constant {value = 1} : i32
  %p1 = addptr %out, %one : *i32
  store %out, %q
  store %p1, %r
  return
}
"""


@pytest.mark.parametrize("a,b,q,r", [(7, 0, -1, 7), (-2**31, -1, -2**31, 0), (-7, 2, -3, -1), (7, -2, -3, 1)])
def test_scalar_division_rules(a, b, q, r):
    out = np.zeros(2, np.int32)
    launch(SCALAR_DIV, [out, a, b])
    assert out.tolist() == [q, r]
