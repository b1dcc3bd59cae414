"""Multi-dimensional blocks, reductions, loops, ifs, grids and scalar arguments."""
import numpy as np
import pytest

from tests.cpu.helpers import compiled, launch, poisoned


def offsets_ir(shape: tuple[int, ...], name: str = "off") -> list[str]:
    """IR lines defining %{name}: the row-major element offsets of a block of `shape`."""
    t = "x".join(map(str, shape))
    lines, stride, terms = [], 1, []
    for axis in reversed(range(len(shape))):
        n = shape[axis]
        lines.append(f"  %{name}_a{axis} = arange {{end = {n}, start = 0}} : block<{n}xi32>")
        cur, cur_shape = f"%{name}_a{axis}", [n]
        for pos in range(len(shape)):
            if pos != axis:
                cur_shape.insert(pos, 1)
                shape_text = "x".join(map(str, cur_shape))
                lines.append(f"  %{name}_e{axis}_{pos} = expand_dims {cur} {{axis = {pos}}} : block<{shape_text}xi32>")
                cur = f"%{name}_e{axis}_{pos}"
        lines.append(f"  %{name}_b{axis} = broadcast {cur} : block<{t}xi32>")
        lines.append(f"  %{name}_s{axis} = constant {{value = {stride}}} : block<{t}xi32>")
        lines.append(f"  %{name}_t{axis} = mul %{name}_b{axis}, %{name}_s{axis} : block<{t}xi32>")
        terms.append(f"%{name}_t{axis}")
        stride *= n
    acc = terms[0]
    for k, term in enumerate(terms[1:]):
        lines.append(f"  %{name}_sum{k} = add {acc}, {term} : block<{t}xi32>")
        acc = f"%{name}_sum{k}"
    lines.append(f"  %{name}_z = constant {{value = 0}} : block<{t}xi32>")
    lines.append(f"  %{name} = add {acc}, %{name}_z : block<{t}xi32>")
    return lines


def reduce_kernel(shape, axis, kind, dtype="f32"):
    t = "x".join(map(str, shape))
    out_shape = shape[:axis] + shape[axis + 1:]
    lines = [f"kernel @red(%x: *{dtype}, %out: *{dtype}) {{", *offsets_ir(shape),
             f"  %xp = splat %x : block<{t}x*{dtype}>",
             f"  %xa = addptr %xp, %off : block<{t}x*{dtype}>",
             f"  %v = load %xa : block<{t}x{dtype}>"]
    if out_shape:
        o = "x".join(map(str, out_shape))
        lines += [f"  %r = reduce %v {{axis = {axis}, kind = \"{kind}\"}} : block<{o}x{dtype}>",
                  *offsets_ir(out_shape, "oo"),
                  f"  %op = splat %out : block<{o}x*{dtype}>",
                  f"  %oa = addptr %op, %oo : block<{o}x*{dtype}>",
                  "  store %oa, %r"]
    else:
        lines += [f"  %r = reduce %v {{axis = 0, kind = \"{kind}\"}} : {dtype}", "  store %out, %r"]
    return "\n".join(lines + ["  return", "}"]) + "\n"


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("shape,axis", [((16,), 0), ((8, 16), 0), ((8, 16), 1), ((4, 8, 2), 1),
                                        ((4, 8, 2), 0), ((4, 8, 2), 2)])
def test_reduce(shape, axis, kind):
    rng = np.random.default_rng(1)
    dtype = np.int32 if kind == "sum" else np.float32
    x = rng.integers(-1000, 1000, shape).astype(dtype)
    expected = {"sum": np.sum, "max": np.max, "min": np.min}[kind](x, axis=axis)
    out = poisoned(max(1, expected.size), dtype)
    launch(reduce_kernel(shape, axis, kind, "i32" if kind == "sum" else "f32"), [x, out])
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)


def test_float_sum_in_order():
    x = np.random.default_rng(2).standard_normal((8, 16)).astype(np.float32)
    out = poisoned(8, np.float32)
    launch(reduce_kernel((8, 16), 1, "sum"), [x, out])
    expected = [np.float32(0) + x[i, 0] for i in range(8)]
    for i in range(8):
        for j in range(1, 16):
            expected[i] = np.float32(expected[i] + x[i, j])
    np.testing.assert_array_equal(out, expected)


TILE = """
kernel @tile(%x: *f32, %bias: *f32, %out: *f32, %M: i32, %N: i32) {
  %px = program_id {axis = 0} : i32
  %py = program_id {axis = 1} : i32
  %c16 = constant {value = 16} : i32
  %c32 = constant {value = 32} : i32
  %r0 = mul %py, %c16 : i32
  %c0 = mul %px, %c32 : i32
  %ar = arange {end = 16, start = 0} : block<16xi32>
  %ac = arange {end = 32, start = 0} : block<32xi32>
  %r0s = splat %r0 : block<16xi32>
  %rows = add %r0s, %ar : block<16xi32>
  %c0s = splat %c0 : block<32xi32>
  %cols = add %c0s, %ac : block<32xi32>
  %rows2 = expand_dims %rows {axis = 1} : block<16x1xi32>
  %cols2 = expand_dims %cols {axis = 0} : block<1x32xi32>
  %rowsb = broadcast %rows2 : block<16x32xi32>
  %colsb = broadcast %cols2 : block<16x32xi32>
  %Ns = splat %N : block<16x32xi32>
  %Ms = splat %M : block<16x32xi32>
  %off0 = mul %rowsb, %Ns : block<16x32xi32>
  %off = add %off0, %colsb : block<16x32xi32>
  %mr = cmp %rowsb, %Ms {pred = "lt"} : block<16x32xi1>
  %mc = cmp %colsb, %Ns {pred = "lt"} : block<16x32xi1>
  %m = and %mr, %mc : block<16x32xi1>
  %xp = splat %x : block<16x32x*f32>
  %xa = addptr %xp, %off : block<16x32x*f32>
  %xv = load %xa, %m : block<16x32xf32>
  %N1 = splat %N : block<32xi32>
  %bm = cmp %cols, %N1 {pred = "lt"} : block<32xi1>
  %bp = splat %bias : block<32x*f32>
  %ba = addptr %bp, %cols : block<32x*f32>
  %zero = constant {value = 0.0} : block<32xf32>
  %bv = load %ba, %bm, %zero : block<32xf32>
  %bv2 = expand_dims %bv {axis = 0} : block<1x32xf32>
  %bvb = broadcast %bv2 : block<16x32xf32>
  %s = add %xv, %bvb : block<16x32xf32>
  %op = splat %out : block<16x32x*f32>
  %oa = addptr %op, %off : block<16x32x*f32>
  store %oa, %s, %m
  return
}
"""


@pytest.mark.parametrize("m,n", [(16, 32), (37, 70), (5, 3)])
def test_2d_tile_with_broadcast(m, n):
    rng = np.random.default_rng(m * n)
    x = rng.standard_normal((m, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = np.full((m, n), np.nan, np.float32)
    launch(TILE, [x, bias, out, m, n], (-(-n // 32), -(-m // 16), 1))
    np.testing.assert_array_equal(out, x + bias[None, :])


LOOP = """
kernel @loop(%x: *f32, %out: *f32, %count: *i32, %k: i32) {
  %lb = constant {value = 0} : i32
  %st = constant {value = 1} : i32
  %acc0 = constant {value = 0.0} : block<32xf32>
  %n0 = constant {value = 0} : i32
  %a = arange {end = 32, start = 0} : block<32xi32>
  %c32 = constant {value = 32} : i32
  %xp = splat %x : block<32x*f32>
  %acc, %n = for %lb, %k, %st, %acc0, %n0 : block<32xf32>, i32 {
  ^(%i: i32, %cacc: block<32xf32>, %cn: i32):
    %base = mul %i, %c32 : i32
    %bs = splat %base : block<32xi32>
    %idx = add %bs, %a : block<32xi32>
    %ptrs = addptr %xp, %idx : block<32x*f32>
    %v = load %ptrs : block<32xf32>
    %nacc = add %cacc, %v : block<32xf32>
    %nn = add %cn, %st : i32
    yield %nacc, %nn
  }
  %op = splat %out : block<32x*f32>
  %oa = addptr %op, %a : block<32x*f32>
  store %oa, %acc
  store %count, %n
  return
}
"""


@pytest.mark.parametrize("k", [0, 1, 7])
def test_loop_carrying_block_accumulator(k):
    x = np.random.default_rng(k).standard_normal((max(k, 1), 32)).astype(np.float32)
    out, count = np.full(32, np.nan, np.float32), np.full(1, -5, np.int32)
    launch(LOOP, [x, out, count, k])
    expected = np.zeros(32, np.float32)
    for i in range(k):
        expected = (expected + x[i]).astype(np.float32)
    np.testing.assert_array_equal(out, expected)
    assert count[0] == k


SWAP = """
kernel @swap(%out: *i32, %k: i32) {
  %lb = constant {value = 0} : i32
  %st = constant {value = 1} : i32
  %a0 = constant {value = 1} : block<4xi32>
  %b0 = constant {value = 2} : block<4xi32>
  %s0 = constant {value = 10} : i32
  %t0 = constant {value = 20} : i32
  %a, %b, %s, %t = for %lb, %k, %st, %a0, %b0, %s0, %t0 : block<4xi32>, block<4xi32>, i32, i32 {
  ^(%i: i32, %ca: block<4xi32>, %cb: block<4xi32>, %cs: i32, %ct: i32):
    yield %cb, %ca, %ct, %cs
  }
  %ar = arange {end = 4, start = 0} : block<4xi32>
  %op = splat %out : block<4x*i32>
  %oa = addptr %op, %ar : block<4x*i32>
  store %oa, %a
  %c4 = constant {value = 4} : i32
  %p4 = addptr %out, %c4 : *i32
  store %p4, %s
  return
}
"""


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_loop_yield_permutes_carried_values(k):
    out = np.full(5, -1, np.int32)
    launch(SWAP, [out, k])
    a, s = (1, 10) if k % 2 == 0 else (2, 20)
    np.testing.assert_array_equal(out, [a, a, a, a, s])


IF = """
kernel @branch(%x: *f32, %out: *f32, %flag: *f32, %limit: i32) {
  %pid = program_id {axis = 0} : i32
  %c8 = constant {value = 8} : i32
  %base = mul %pid, %c8 : i32
  %a = arange {end = 8, start = 0} : block<8xi32>
  %bs = splat %base : block<8xi32>
  %idx = add %bs, %a : block<8xi32>
  %xp = splat %x : block<8x*f32>
  %xa = addptr %xp, %idx : block<8x*f32>
  %cond = cmp %pid, %limit {pred = "lt"} : i1
  %blk, %s = if %cond : block<8xf32>, f32 {
    %v = load %xa : block<8xf32>
    %two = constant {value = 2.0} : block<8xf32>
    %d = mul %v, %two : block<8xf32>
    %one = constant {value = 1.0} : f32
    yield %d, %one
  } {
    %m = constant {value = -1.0} : block<8xf32>
    %z = constant {value = 2.5} : f32
    yield %m, %z
  }
  %op = splat %out : block<8x*f32>
  %oa = addptr %op, %idx : block<8x*f32>
  store %oa, %blk
  %fp = addptr %flag, %pid : *f32
  store %fp, %s
  return
}
"""


def test_if_yielding_values():
    x = np.random.default_rng(3).standard_normal(32).astype(np.float32)
    out, flag = np.full(32, np.nan, np.float32), np.full(4, np.nan, np.float32)
    launch(IF, [x, out, flag, 2], (4, 1, 1))
    np.testing.assert_array_equal(out[:16], x[:16] * 2)
    np.testing.assert_array_equal(out[16:], -1.0)
    np.testing.assert_array_equal(flag, [1.0, 1.0, 2.5, 2.5])


GRID = """
kernel @grid(%out: *i32, %nums: *i32) {
  %x = program_id {axis = 0} : i32
  %y = program_id {axis = 1} : i32
  %z = program_id {axis = 2} : i32
  %gx = num_programs {axis = 0} : i32
  %gy = num_programs {axis = 1} : i32
  %gz = num_programs {axis = 2} : i32
  %t0 = mul %z, %gy : i32
  %t1 = add %t0, %y : i32
  %t2 = mul %t1, %gx : i32
  %lin = add %t2, %x : i32
  %c100 = constant {value = 100} : i32
  %c10000 = constant {value = 10000} : i32
  %vx = mul %x, %c10000 : i32
  %vy = mul %y, %c100 : i32
  %v0 = add %vx, %vy : i32
  %v = add %v0, %z : i32
  %p = addptr %out, %lin : *i32
  store %p, %v
  %g0 = mul %gx, %c10000 : i32
  %g1 = mul %gy, %c100 : i32
  %g2 = add %g0, %g1 : i32
  %g = add %g2, %gz : i32
  %np = addptr %nums, %lin : *i32
  store %np, %g
  return
}
"""


@pytest.mark.parametrize("grid", [(5, 1, 1), (3, 4, 1), (2, 3, 4), (0, 3, 1), (4, 0, 2), (1, 1, 0)])
def test_grids(grid):
    total = int(np.prod(grid))
    out, nums = np.full(total + 1, -7, np.int32), np.full(total + 1, -7, np.int32)
    launch(GRID, [out, nums], grid)
    gx, gy, gz = grid
    expected = [x * 10000 + y * 100 + z for z in range(gz) for y in range(gy) for x in range(gx)]
    np.testing.assert_array_equal(out[:total], expected)
    assert (nums[:total] == gx * 10000 + gy * 100 + gz).all()
    assert out[total] == -7 and nums[total] == -7


def scale_kernel(dtype: str, scalar: str) -> str:
    return f"""
kernel @scale(%x: *{dtype}, %out: *{dtype}, %s: {scalar}, %flip: i1) {{
  %a = arange {{end = 16, start = 0}} : block<16xi32>
  %xp = splat %x : block<16x*{dtype}>
  %xa = addptr %xp, %a : block<16x*{dtype}>
  %v = load %xa : block<16x{dtype}>
  %ss = splat %s : block<16x{dtype}>
  %m = mul %v, %ss : block<16x{dtype}>
  %n = neg %m : block<16x{dtype}>
  %fl = splat %flip : block<16xi1>
  %r = select %fl, %n, %m : block<16x{dtype}>
  %op = splat %out : block<16x*{dtype}>
  %oa = addptr %op, %a : block<16x*{dtype}>
  store %oa, %r
  return
}}
"""


@pytest.mark.parametrize("dtype", ["f16", "f32", "f64", "i64", "i8"])
@pytest.mark.parametrize("flip", [False, True])
def test_scalar_arguments(dtype, flip):
    np_type = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i64": np.int64, "i8": np.int8}[dtype]
    x = np.arange(1, 17).astype(np_type)
    s = -3 if dtype.startswith("i") else 1.5
    out = poisoned(16, np_type)
    launch(scale_kernel(dtype, dtype), [x, out, s, flip])
    expected = (x * np_type(s)).astype(np_type)
    np.testing.assert_array_equal(out, -expected if flip else expected)


def test_llvm_text_is_exposed():
    prog = compiled(scale_kernel("f32", "f32"))
    assert "define void @\"launch\"" in prog.llvm or "define void @launch" in prog.llvm
    assert "launch" in prog.llvm_optimized


NESTED = """
kernel @nested(%out: *i32, %k: i32) {
  %lb = constant {value = 0} : i32
  %st = constant {value = 1} : i32
  %two = constant {value = 2} : i32
  %zero = constant {value = 0} : i32
  %acc0 = constant {value = 1} : block<4xi32>
  %acc = for %lb, %k, %st, %acc0 : block<4xi32> {
  ^(%i: i32, %cur: block<4xi32>):
    %r = rem %i, %two : i32
    %even = cmp %r, %zero {pred = "eq"} : i1
    %next = if %even : block<4xi32> {
      %ones = constant {value = 1} : block<4xi32>
      %inc = add %cur, %ones : block<4xi32>
      yield %inc
    } {
      %twos = constant {value = 2} : block<4xi32>
      %dbl = mul %cur, %twos : block<4xi32>
      yield %dbl
    }
    %inner = for %lb, %i, %st, %next : block<4xi32> {
    ^(%j: i32, %c2: block<4xi32>):
      %ones2 = constant {value = 1} : block<4xi32>
      %s = add %c2, %ones2 : block<4xi32>
      yield %s
    }
    yield %inner
  }
  %a = arange {end = 4, start = 0} : block<4xi32>
  %op = splat %out : block<4x*i32>
  %oa = addptr %op, %a : block<4x*i32>
  store %oa, %acc
  return
}
"""


@pytest.mark.parametrize("k", [0, 1, 4, 5])
def test_if_and_loop_inside_loop(k):
    out = np.full(4, -1, np.int32)
    launch(NESTED, [out, k])
    acc = 1
    for i in range(k):
        acc = (acc + 1 if i % 2 == 0 else acc * 2) + i
    np.testing.assert_array_equal(out, [acc] * 4)
