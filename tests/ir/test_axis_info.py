"""The axis analysis over textual IR: hand-checked facts, and facts checked on the values they describe."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.ir import parse_module, print_module
from kdsl.ir.passes.axis_info import MAX_DIVISIBILITY, AxisAnalysis, AxisInfo
from kdsl.ir.printer import Printer

BIG = MAX_DIVISIBILITY


def axes(text: str) -> dict[str, AxisInfo]:
    """Each value's facts, by its name in `text` (written as the printer numbers values)."""
    module = parse_module(text)
    fn = module.kernel
    analysis = AxisAnalysis(fn)
    assert print_module(module) == text.strip() + "\n"  # an analysis: the IR is left as it is
    printer = Printer()
    printer.function(fn)
    return {name[1:]: analysis[v] for v, name in printer.names.items()}


def facts(info: AxisInfo) -> tuple:
    return info.contiguity, info.divisibility, info.constancy


VECTOR_ADD = """
kernel @add(%x_ptr: *f32 {divisibility = 16}, %n: i32 {divisibility = 16}, %m: i32) {
  %0 = program_id {axis = 0} : i32
  %1 = constant {value = 256} : i32
  %2 = mul %0, %1 : i32
  %3 = arange {end = 256, start = 0} : block<256xi32>
  %4 = splat %2 : block<256xi32>
  %5 = add %4, %3 : block<256xi32>
  %6 = splat %x_ptr : block<256x*f32>
  %7 = addptr %6, %5 : block<256x*f32>
  %8 = splat %n : block<256xi32>
  %9 = cmp %5, %8 {pred = "lt"} : block<256xi1>
  %10 = splat %m : block<256xi32>
  %11 = cmp %5, %10 {pred = "lt"} : block<256xi1>
  %12 = cmp %8, %5 {pred = "gt"} : block<256xi1>
  %13 = sub %5, %8 : block<256xi32>
  %14 = sub %8, %5 : block<256xi32>
  %15 = load %7, %9 : block<256xf32>
  return
}
"""


def test_program_offsets_pointers_and_masks():
    a = axes(VECTOR_ADD)
    assert facts(a["n"]) == ((1,), (16,), (1,)) and facts(a["m"]) == ((1,), (1,), (1,))
    assert facts(a["2"]) == ((1,), (256,), (1,))
    assert facts(a["3"]) == ((256,), (BIG,), (1,))
    assert facts(a["4"]) == ((1,), (256,), (256,))
    assert facts(a["5"]) == ((256,), (256,), (1,))
    assert facts(a["7"]) == ((256,), (16,), (1,))  # bytes: the base pointer's 16 bounds 256 * 4
    assert a["9"].constancy == (16,) and a["12"].constancy == (16,)  # masks decided per 16 lanes
    assert a["11"].constancy == (1,)  # m may be anything
    assert facts(a["13"]) == ((256,), (16,), (1,)) and a["14"].contiguity == (1,)
    assert facts(a["15"]) == ((1,), (1,), (1,))
    assert a["1"].value == 256 and a["2"].value is None


MATRIX = """
kernel @k(%p: *f16 {divisibility = 16}, %stride: i32 {divisibility = 16}) {
  %0 = arange {end = 8, start = 0} : block<8xi32>
  %1 = expand_dims %0 {axis = 1} : block<8x1xi32>
  %2 = splat %stride : block<8x1xi32>
  %3 = mul %1, %2 : block<8x1xi32>
  %4 = arange {end = 32, start = 0} : block<32xi32>
  %5 = expand_dims %4 {axis = 0} : block<1x32xi32>
  %6 = broadcast %3 : block<8x32xi32>
  %7 = broadcast %5 : block<8x32xi32>
  %8 = add %6, %7 : block<8x32xi32>
  %9 = splat %p : block<8x32x*f16>
  %10 = addptr %9, %8 : block<8x32x*f16>
  %11 = constant {value = 2} : block<8x32xi32>
  %12 = shl %8, %11 : block<8x32xi32>
  %13 = constant {value = 0} : block<8x32xi32>
  %14 = shl %8, %13 : block<8x32xi32>
  %15 = shr %6, %11 : block<8x32xi32>
  %16 = constant {value = 7} : block<8x32xi32>
  %17 = and %7, %16 : block<8x32xi32>
  %18 = and %16, %7 : block<8x32xi32>
  %19 = constant {value = 12} : block<8x32xi32>
  %20 = and %8, %19 : block<8x32xi32>
  %21 = cast %8 : block<8x32xi64>
  %22 = cast %8 : block<8x32xi16>
  return
}
"""


UNIT_STRIDE = """
kernel @k(%p: *f32 {divisibility = 16}, %stride: i32 {value = 1}) {
  %0 = arange {end = 64, start = 0} : block<64xi32>
  %1 = splat %stride : block<64xi32>
  %2 = mul %0, %1 : block<64xi32>
  %3 = splat %p : block<64x*f32>
  %4 = addptr %3, %2 : block<64x*f32>
  return
}
"""


def test_an_argument_specialised_as_1_keeps_offsets_contiguous():
    a = axes(UNIT_STRIDE)
    assert a["stride"].value == 1
    assert facts(a["2"]) == ((64,), (BIG,), (1,)) and facts(a["4"]) == ((64,), (16,), (1,))


def test_rows_times_stride_plus_columns():
    a = axes(MATRIX)
    assert facts(a["1"]) == ((8, 1), (BIG, 1), (1, 1))
    assert facts(a["3"]) == ((1, 1), (16, 16), (1, 1))
    assert facts(a["6"]) == ((1, 1), (16, 16), (1, 32))
    assert facts(a["7"]) == ((1, 32), (1, BIG), (8, 1))
    assert facts(a["8"]) == ((1, 32), (1, 16), (1, 1))
    assert facts(a["10"]) == ((1, 32), (2, 16), (1, 1))
    assert facts(a["12"]) == ((1, 1), (4, 4), (1, 1)) and facts(a["14"]) == facts(a["8"])
    assert facts(a["15"]) == ((1, 1), (4, 4), (1, 32))
    assert facts(a["17"]) == ((1, 8), (1, 8), (8, 1)) and facts(a["18"]) == facts(a["17"])
    assert facts(a["20"]) == ((1, 1), (4, 4), (1, 1))
    assert facts(a["21"]) == facts(a["8"]) and facts(a["22"]) == ((1, 1), (1, 1), (1, 1))


LOOP = """
kernel @k(%p: *i32 {divisibility = 16}, %n: i32) {
  %0 = constant {value = 0} : i32
  %1 = constant {value = 64} : i32
  %2 = for %0, %n, %1, %0 : i32 {
  ^(%3: i32, %4: i32):
    %5 = add %4, %3 : i32
    yield %5
  }
  %6 = mul %1, %1 : i32
  %7 = sub %0, %1 : i32
  return
}
"""


def test_loop_counters_and_scalar_constants():
    a = axes(LOOP)
    assert facts(a["3"]) == ((1,), (64,), (1,))
    # the sum starts at 0 and adds multiples of 64: so is every value it carries, and its result
    assert facts(a["4"]) == ((1,), (64,), (1,)) and facts(a["2"]) == ((1,), (64,), (1,))
    assert a["4"].value is None
    assert a["6"].value == 4096 and a["6"].divisibility == (4096,)
    assert a["7"].value == -64 and a["7"].divisibility == (64,)


ADVANCED_POINTERS = """
kernel @k(%p: *f32 {divisibility = 16}, %n: i32, %step: i32 {divisibility = 16}, %odd: i32) {
  %0 = arange {end = 64, start = 0} : block<64xi32>
  %1 = splat %p : block<64x*f32>
  %2 = addptr %1, %0 : block<64x*f32>
  %3 = constant {value = 0} : i32
  %4 = constant {value = 1} : i32
  %5, %6 = for %3, %n, %4, %2, %2 : block<64x*f32>, block<64x*f32> {
  ^(%7: i32, %8: block<64x*f32>, %9: block<64x*f32>):
    %10 = splat %step : block<64xi32>
    %11 = addptr %8, %10 : block<64x*f32>
    %12 = splat %odd : block<64xi32>
    %13 = addptr %9, %12 : block<64x*f32>
    yield %11, %13
  }
  %14 = cmp %n, %3 {pred = "lt"} : i1
  %15 = if %14 : block<64x*f32> {
    yield %5
  } {
    yield %6
  }
  return
}
"""


def test_loop_carried_pointers_keep_what_every_iteration_keeps():
    a = axes(ADVANCED_POINTERS)
    assert facts(a["2"]) == ((64,), (16,), (1,))
    # advanced by 16 elements (64 bytes): as contiguous and aligned as at the start
    assert facts(a["8"]) == ((64,), (16,), (1,)) and facts(a["5"]) == facts(a["8"])
    # advanced by an unknown number of elements: still contiguous, alignment only of one element
    assert facts(a["9"]) == ((64,), (4,), (1,)) and facts(a["6"]) == facts(a["9"])
    assert facts(a["15"]) == ((64,), (4,), (1,))


HINTED = """
kernel @k(%n: i32) {
  %0 = program_id {axis = 0} : i32
  %1 = constant {value = 64} : i32
  %2 = mul %0, %1 : i32
  %3 = splat %2 : block<64xi32>
  %4 = arange {end = 64, start = 0} : block<64xi32>
  %5 = add %3, %4 : block<64xi32>
  %6 = splat %n : block<64xi32>
  %7 = rem %5, %6 : block<64xi32>
  %8 = multiple_of %7 {values = "64"} : block<64xi32>
  %9 = max_contiguous %8 {values = "48"} : block<64xi32>
  %10 = max_contiguous %n {values = "1"} : i32
  return
}
"""


def test_hints_are_taken_as_facts():
    a = axes(HINTED)
    assert facts(a["7"]) == ((1,), (1,), (1,))
    assert facts(a["8"]) == ((1,), (64,), (1,))
    assert facts(a["9"]) == ((16,), (64,), (1,))  # 48's power-of-two part
    assert facts(a["10"]) == facts(a["n"])


WRAPPED = """
kernel @k(%n: i32 {divisibility = 16, min = 1}, %m: i32 {divisibility = 16}) {
  %0 = program_id {axis = 0} : i32
  %1 = constant {value = 64} : i32
  %2 = mul %0, %1 : i32
  %3 = arange {end = 64, start = 0} : block<64xi32>
  %4 = splat %2 : block<64xi32>
  %5 = add %4, %3 : block<64xi32>
  %6 = splat %n : block<64xi32>
  %7 = rem %5, %6 : block<64xi32>
  %8 = constant {value = 48} : block<64xi32>
  %9 = sub %3, %8 : block<64xi32>
  %10 = rem %9, %6 : block<64xi32>
  %11 = splat %m : block<64xi32>
  %12 = rem %5, %11 : block<64xi32>
  %13 = add %n, %1 : i32
  %14 = div %13, %1 : i32
  %15 = div %0, %14 : i32
  %16 = div %0, %n : i32
  %17 = div %0, %m : i32
  return
}
"""


def test_remainders_keep_runs_of_offsets_that_are_not_negative():
    """program_id * 64 + arange is not negative, so % n (n a positive multiple of 16) keeps runs
    of 16, also % m, m of unknown sign (the remainder takes the dividend's sign); arange - 48 is
    negative in part (-48 % 16 is 0, -47 % 16 is -15: no run) and keeps none. A quotient is not negative where its divisor is
    positive ((n + 64) // 64 >= 1 with n >= 1), and unknown where the divisor may be 0 (x // 0 is -1)."""
    a = axes(WRAPPED)
    assert a["5"].lower == 0 and a["n"].lower == 1 and a["m"].lower is None
    assert facts(a["7"]) == ((16,), (16,), (1,)) and a["7"].lower == 0
    assert facts(a["10"]) == ((1,), (1,), (1,)) and a["10"].lower is None
    assert facts(a["12"]) == ((16,), (16,), (1,))
    assert a["14"].lower == 1 and a["15"].lower == 0 and a["16"].lower == 0 and a["17"].lower is None


# Soundness: random expressions over one block, the facts checked on the values themselves.

N = 64


class Expressions:
    """Emits IR lines and evaluates them with numpy (int64, wrapped to i32 as the IR does) side by side."""

    def __init__(self, n_value: int, pid: int):
        self.lines: list[str] = []
        self.values: list[np.ndarray] = []
        self.n_value, self.pid = n_value, pid

    def emit(self, text: str, value: np.ndarray) -> str:
        name = f"%{len(self.values)}"
        self.lines.append(f"  {name} = {text}")
        self.values.append(value.astype(np.int64).astype(np.int32).astype(np.int64))
        return name


def leaf(draw, ex: Expressions, n: int) -> str:
    kind = draw(st.sampled_from(["arange", "constant", "n", "program"]))
    if kind == "arange":
        start = draw(st.sampled_from([0, 16, 5]))
        return ex.emit(f"arange {{end = {start + n}, start = {start}}} : block<{n}xi32>", np.arange(start, start + n))
    if kind == "constant":
        c = draw(st.integers(-100, 100))
        return ex.emit(f"constant {{value = {c}}} : block<{n}xi32>", np.full(n, c))
    if kind == "n":
        return ex.emit(f"splat %n : block<{n}xi32>", np.full(n, ex.n_value))
    block = draw(st.sampled_from([1, 8, 64, 96]))
    pid = ex.emit("program_id {axis = 0} : i32", np.array(ex.pid))
    size = ex.emit(f"constant {{value = {block}}} : i32", np.array(block))
    offset = ex.emit(f"mul {pid}, {size} : i32", np.array(ex.pid * block))
    return ex.emit(f"splat {offset} : block<{n}xi32>", np.full(n, ex.pid * block))


def expression(draw, ex: Expressions, depth: int, shape: tuple[int, ...] = (N,)) -> str:
    """A random expression of the given shape; 2D ones combine broadcast rows and columns."""
    if len(shape) == 2 and (depth == 0 or draw(st.integers(0, 2)) == 0):
        axis = draw(st.integers(0, 1))
        line = ex.values[int((src := expression(draw, ex, depth, (shape[1 - axis],)))[1:])]
        kept = (1, shape[1]) if axis == 0 else (shape[0], 1)
        one = ex.emit(f"expand_dims {src} {{axis = {axis}}} : block<{kept[0]}x{kept[1]}xi32>", line.reshape(kept))
        return ex.emit(f"broadcast {one} : block<{shape[0]}x{shape[1]}xi32>", np.broadcast_to(line.reshape(kept), shape))
    if len(shape) == 1 and (depth == 0 or draw(st.integers(0, 3)) == 0):
        return leaf(draw, ex, shape[0])
    ty = f"block<{'x'.join(map(str, shape))}xi32>"
    op = draw(st.sampled_from(["add", "sub", "mul", "shl", "shr", "and", "rem", "div", "min", "max"]))
    lhs = expression(draw, ex, depth - 1, shape)
    x = ex.values[int(lhs[1:])]
    if op in ("rem", "div") and draw(st.booleans()):
        c = draw(st.sampled_from([-7, -1, 3, 16, 48]))
        rhs = ex.emit(f"constant {{value = {c}}} : {ty}", np.full(shape, c))
        value = _truncating(op, x, np.full(shape, c))
    elif op in ("shl", "shr", "and"):
        c = draw(st.integers(0, 4)) if op != "and" else draw(st.sampled_from([0, 1, 3, 7, 15, 12, -16, 255]))
        rhs = ex.emit(f"constant {{value = {c}}} : {ty}", np.full(shape, c))
        value = {"shl": x << c, "shr": x >> c, "and": x & c}[op]
    else:
        rhs = expression(draw, ex, depth - 1, shape)
        y = ex.values[int(rhs[1:])]
        value = _truncating(op, x, y) if op in ("rem", "div") else \
            {"add": x + y, "sub": x - y, "mul": x * y, "min": np.minimum(x, y), "max": np.maximum(x, y)}[op]
    return ex.emit(f"{op} {lhs}, {rhs} : {ty}", value)


def _truncating(op: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x // y and x % y as kdsl's integers have them: rounded toward zero; by 0, -1 and x."""
    safe = np.where(y == 0, 1, y)
    q = np.sign(x) * np.sign(safe) * (np.abs(x) // np.abs(safe))
    return np.where(y == 0, -1, q) if op == "div" else np.where(y == 0, x, x - safe * q)


def assert_facts_hold(info: AxisInfo, values: np.ndarray) -> None:
    values = np.atleast_1d(values)
    for dim, (c, d, k) in enumerate(zip(info.contiguity, info.divisibility, info.constancy)):
        lines = np.moveaxis(values, dim, -1).reshape(-1, values.shape[dim])
        assert lines.shape[1] % c == 0 and lines.shape[1] % k == 0
        for v in lines:
            for start in range(0, v.size, c):
                assert ((v[start: start + c] - v[start] - np.arange(c)) % 2**32 == 0).all(), f"contiguity {c}"
                assert int(v[start]) % min(d, 2**32) == 0, f"divisibility {d} of {v[start]} along {dim}"
            for start in range(0, v.size, k):
                assert (v[start: start + k] == v[start]).all(), f"constancy {k} along {dim}"
    if info.value is not None:
        assert (values == info.value).all()
    if info.lower is not None:
        assert (values >= info.lower).all(), f"lower bound {info.lower}"


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(0, 50), st.sampled_from([(16, 48), (16, 0), (1, 37), (1, 64), (1, -37), (16, -48)]),
       st.sampled_from([(N,), (8, 32), (16, 4)]))
def test_facts_hold_on_the_values(data, pid, n_arg, shape):
    divisibility, n_value = n_arg
    ex = Expressions(n_value, pid)
    top = expression(data.draw, ex, 3, shape)
    ty = "x".join(map(str, shape))
    bound = ex.emit(f"splat %n : block<{ty}xi32>", np.full(shape, n_value))
    ex.emit(f"cmp {top}, {bound} {{pred = \"lt\"}} : block<{ty}xi1>", ex.values[int(top[1:])] < n_value)
    specialised = (["divisibility = 16"] if divisibility == 16 else []) + ([f"min = {min(n_value, 1)}"] if n_value >= 0 else [])
    attrs = f" {{{', '.join(specialised)}}}" if specialised else ""
    text = "\n".join([f"kernel @k(%n: i32{attrs}) {{", *ex.lines, "  return", "}"])
    a = axes(text)
    for i, v in enumerate(ex.values):
        assert_facts_hold(a[str(i)], v)
