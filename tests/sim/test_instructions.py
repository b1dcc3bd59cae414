"""Hand-written PTX for instruction semantics, and fault reporting."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kdsl.sim as sim
from kdsl.errors import MemoryAccessError
from kdsl.sim.parser import parse

HEAD = ".version 8.0\n.target sm_80\n.address_size 64\n"


def unary_kernel(body: str, in_type: str = "b32", out_type: str = "b32") -> str:
    """A kernel reading %a from in[tid] and storing %d to out[tid]; `body` computes %d from %a."""
    isz = {"b32": 4, "b64": 8, "b16": 2}[in_type]
    osz = {"b32": 4, "b64": 8, "b16": 2}[out_type]
    return HEAD + f"""
.visible .entry k(.param .u64 pin, .param .u64 pout)
{{
  .reg .b32 %r<4>; .reg .b32 %rt; .reg .b64 %rd<8>; .reg .pred %p<4>; .reg .{in_type} %a; .reg .{out_type} %d;
  .reg .b16 %h<4>; .reg .f32 %f<4>;
  ld.param.u64 %rd1, [pin];
  ld.param.u64 %rd2, [pout];
  mov.u32 %rt, %tid.x;
  mul.wide.u32 %rd3, %rt, {isz};
  add.s64 %rd4, %rd1, %rd3;
  ld.global.{in_type} %a, [%rd4];
  {body}
  mul.wide.u32 %rd5, %rt, {osz};
  add.s64 %rd6, %rd2, %rd5;
  st.global.{out_type} [%rd6], %d;
  ret;
}}
"""


def run_unary(body, x, out_dtype, in_type="b32", out_type="b32"):
    out = np.full(x.size, 0xAB, out_dtype)
    sim.launch_ptx(unary_kernel(body, in_type, out_type), "k", (1, 1, 1), (x.size, 1, 1), [x, out])
    return out


def test_cvt_rounding_modes_f32_to_int():
    x = np.array([2.5, -2.5, 3.5, -0.7, 0.7, 1e10, -1e10, np.nan], np.float32)
    for mode, ref in (("rni", np.rint), ("rzi", np.trunc), ("rmi", np.floor), ("rpi", np.ceil)):
        out = run_unary(f"mov.b32 %f1, %a; cvt.{mode}.s32.f32 %d, %f1;", x, np.int32)
        expect = np.clip(np.nan_to_num(ref(x.astype(np.float64)), nan=0), -2**31, 2**31 - 1).astype(np.int32)
        np.testing.assert_array_equal(out, expect, err_msg=mode)


def test_cvt_f32_to_f16_directed():
    x = np.array([1.0 + 2**-12, -(1.0 + 2**-12), 65519.0, 1e-8], np.float32)
    out = {m: run_unary(f"mov.b32 %f1, %a; cvt.{m}.f16.f32 %h1, %f1; cvt.u32.u16 %d, %h1;", x, np.uint32)
           .astype(np.uint16).view(np.float16) for m in ("rn", "rz", "rm", "rp")}
    assert out["rn"][0] == 1.0 and out["rp"][0] == np.float16(1.0009765625) and out["rz"][0] == 1.0
    assert out["rm"][1] == np.float16(-1.0009765625) and out["rz"][1] == -1.0
    assert out["rn"][2] == np.float16(65504) and out["rp"][3] > 0 and out["rm"][3] == 0


def test_cvt_bf16x2_and_e4m3x2():
    x = np.array([1.00390625, 3.14159, -448.0, 1000.0], np.float32)
    out = run_unary("mov.b32 %f1, %a; cvt.rn.bf16x2.f32 %d, %f1, %f1;", x, np.uint32)
    bf = (out & 0xFFFF).astype(np.uint32) << 16
    np.testing.assert_array_equal(bf.view(np.float32), [1.0, 3.140625, -448.0, 1000.0])
    out = run_unary("mov.b32 %f1, %a; cvt.rn.satfinite.e4m3x2.f32 %h1, %f1, %f1; cvt.rn.f16x2.e4m3x2 %d, %h1;",
                    x, np.uint32)
    np.testing.assert_array_equal((out & 0xFFFF).astype(np.uint16).view(np.float16), [1.0, 3.25, -448.0, 448.0])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=32, max_size=32), st.integers(0, 2**32 - 1))
def test_prmt_default(values, sel):
    x = np.array(values, np.uint32)
    out = run_unary(f"prmt.b32 %d, %a, 0x89abcdef, {sel};", x, np.uint32)
    for v, o in zip(x, out):
        b = int(v).to_bytes(4, "little") + (0x89ABCDEF).to_bytes(4, "little")
        exp = 0
        for i in range(4):
            nib = (sel >> (4 * i)) & 0xF
            byte = b[nib & 7]
            exp |= ((0xFF if byte & 0x80 else 0) if nib & 8 else byte) << (8 * i)
        assert o == exp


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(0, 40))
def test_bfe_signed(value, pos, length):
    out = run_unary(f"bfe.s32 %d, %a, {pos}, {length};", np.full(32, value, np.uint32), np.int32)
    bits = [(value >> min(pos + i, 31)) & 1 if pos + i <= 31 else None for i in range(32)]
    sbit = 0 if length == 0 else (value >> min(pos + length - 1, 31)) & 1
    exp = 0
    for i in range(32):
        bit = bits[i] if i < length and pos + i <= 31 else sbit
        exp |= bit << i
    assert out[0] == np.array(exp, np.uint32).view(np.int32)


def test_signed_narrow_values_sign_extend_into_wider_registers():
    x = np.array([-33, 79, -128, 127], np.int8)
    out = np.full(x.size, 0xAB, np.int32)
    sim.launch_ptx(HEAD + """
.visible .entry k(.param .u64 pin, .param .u64 pout)
{
  .reg .b16 %h<2>; .reg .b32 %r<4>; .reg .b64 %rd<6>;
  ld.param.u64 %rd1, [pin];
  ld.param.u64 %rd2, [pout];
  mov.u32 %r1, %tid.x;
  cvt.u64.u32 %rd3, %r1;
  add.s64 %rd4, %rd1, %rd3;
  ld.global.s8 %h1, [%rd4];
  mul.wide.s16 %r2, %h1, 3;
  cvt.s8.s32 %h1, %r2;
  mul.wide.s16 %r3, %h1, 1;
  add.s32 %r2, %r2, %r3;
  mul.wide.u32 %rd5, %r1, 4;
  add.s64 %rd5, %rd2, %rd5;
  st.global.b32 [%rd5], %r2;
  ret;
}
""", "k", (1, 1, 1), (x.size, 1, 1), [x, out])
    np.testing.assert_array_equal(out, x.astype(np.int32) * 3 + (x * np.int8(3)).astype(np.int32))


def test_setp_unordered_and_minmax_nan():
    x = np.array([1.0, np.nan, -2.0, 0.0], np.float32)
    body = ("mov.b32 %f1, %a; mov.f32 %f2, 0f00000000; setp.ltu.f32 %p1, %f1, %f2; setp.lt.f32 %p2, %f1, %f2;"
            "setp.nan.f32 %p3, %f1, %f1; selp.u32 %r2, 1, 0, %p1; selp.u32 %r3, 2, 0, %p2; add.u32 %d, %r2, %r3;"
            "selp.u32 %r3, 4, 0, %p3; add.u32 %d, %d, %r3;")
    np.testing.assert_array_equal(run_unary(body, x, np.uint32), [0, 1 + 4, 3, 0])
    out = run_unary("mov.b32 %f1, %a; mov.f32 %f2, 0f3F000000; min.f32 %f3, %f1, %f2; mov.b32 %d, %f3;",
                    x, np.float32)
    np.testing.assert_array_equal(out, [0.5, 0.5, -2.0, 0.0])
    out = run_unary("mov.b32 %f1, %a; mov.f32 %f2, 0f3F000000; max.NaN.f32 %f3, %f1, %f2; mov.b32 %d, %f3;",
                    x, np.float32)
    assert np.isnan(out[1]) and out[0] == 1.0


def test_shf_and_lop3_and_mul_hi():
    x = np.random.default_rng().integers(1, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    out = run_unary("shf.l.wrap.b32 %d, %a, 0x12345678, 36;", x, np.uint32)
    expect = (((np.uint64(0x12345678) << np.uint64(32)) | x.astype(np.uint64)) << np.uint64(4)) >> np.uint64(32)
    np.testing.assert_array_equal(out, expect.astype(np.uint32))
    out = run_unary("lop3.b32 %d, %a, 0xF0F0F0F0, 0x0FF00FF0, 0x96;", x, np.uint32)
    np.testing.assert_array_equal(out, x ^ np.uint32(0xF0F0F0F0) ^ np.uint32(0x0FF00FF0))
    out = run_unary("mul.hi.u64 %d, %a, -3;", x.astype(np.uint64) << np.uint64(31), np.uint64, "b64", "b64")
    big = [(int(v) << 31) * (2**64 - 3) >> 64 for v in x]
    np.testing.assert_array_equal(out, np.array(big, np.uint64))


def test_out_of_bounds_fault_names_instruction_thread_and_address():
    x = np.zeros(4, np.uint32)
    with pytest.raises(MemoryAccessError) as info:
        sim.launch_ptx(unary_kernel("mov.u32 %d, %a;"), "k", (1, 1, 1), (8, 1, 1), [x, np.zeros(8, np.uint32)])
    msg = str(info.value)
    assert "ld.global.b32 %a, [%rd4]" in msg and "thread (4, 0, 0)" in msg and "block (0, 0, 0)" in msg
    assert "0x" in msg and info.value.address > 0


def test_a_fault_names_the_source_line_of_the_loc_before_it():
    """`.loc file line column` (PTX ISA §11.6.1) places the instructions after it; `.file` may come
    after the function, as NVPTX writes it; line 0 places nothing."""
    ptx = unary_kernel("mov.u32 %d, %a;").replace(
        "  ld.global.b32 %a, [%rd4];", "\t.loc\t1 0 5\n  add.s64 %rd4, %rd4, 0;\n\t.loc\t1 12 7\n  ld.global.b32 %a, [%rd4];")
    ptx += '\t.file\t1 "/src/kernels.py"\n'
    with pytest.raises(MemoryAccessError) as info:
        sim.launch_ptx(ptx, "k", (1, 1, 1), (8, 1, 1), [np.zeros(4, np.uint32), np.zeros(8, np.uint32)])
    assert info.value.source == ("/src/kernels.py", 12, 7) and "(/src/kernels.py:12)" in str(info.value)
    parsed = parse(ptx).functions["k"].body
    placed = {inst.text: inst.source for inst in parsed if not isinstance(inst, str)}
    assert placed["add.s64 %rd4, %rd4, 0"] is None and placed["st.global.b32 [%rd6], %d"] == ("/src/kernels.py", 12, 7)


def test_misaligned_fault():
    ptx = unary_kernel("mov.u32 %d, %a;").replace("add.s64 %rd4, %rd1, %rd3;", "add.s64 %rd4, %rd1, 2;")
    with pytest.raises(MemoryAccessError, match="misaligned"):
        sim.launch_ptx(ptx, "k", 1, 4, [np.zeros(8, np.uint32), np.zeros(4, np.uint32)])


VECTOR_COPY = HEAD + """
.visible .entry k(.param .u64 pin, .param .u64 pout, .param .u64 offset)
{
  .reg .b32 %r<4>; .reg .b64 %rd<4>;
  ld.param.u64 %rd1, [pin];
  ld.param.u64 %rd2, [pout];
  ld.param.u64 %rd3, [offset];
  add.s64 %rd1, %rd1, %rd3;
  ld.global.v4.b32 {%r0, %r1, %r2, %r3}, [%rd1];
  st.global.v4.b32 [%rd2], {%r0, %r1, %r2, %r3};
  ret;
}
"""


def test_vector_access_must_be_aligned_to_its_whole_size():
    x, out = np.arange(8, dtype=np.uint32), np.zeros(4, np.uint32)
    sim.launch_ptx(VECTOR_COPY, "k", 1, 1, [x, out, ("u64", 16)])
    np.testing.assert_array_equal(out, x[4:])
    with pytest.raises(MemoryAccessError, match="misaligned 16-byte vector access"):
        sim.launch_ptx(VECTOR_COPY, "k", 1, 1, [x, out, ("u64", 4)])


def test_unsupported_instruction_is_named():
    with pytest.raises(sim.UnsupportedInstruction, match="frobnicate.b32"):
        run_unary("frobnicate.b32 %d, %a;", np.ones(4, np.uint32), np.uint32)


def test_parse_error():
    with pytest.raises(sim.PtxParseError):
        sim.load_module(HEAD + "bogus directive here;")


def test_module_and_memory_persist_across_launches():
    mem = sim.DeviceMemory()
    mod = sim.load_module(unary_kernel("add.u32 %d, %a, 1;"), mem)
    buf = mem.allocate(64)
    mem.copy_in(buf, np.arange(16, dtype=np.uint32))
    for _ in range(3):
        mod.launch("k", 1, 16, [("u64", buf), ("u64", buf)])
    out = np.zeros(16, np.uint32)
    mem.copy_out(buf, out)
    np.testing.assert_array_equal(out, np.arange(16) + 3)
    mem.free(buf)


def _directed_f32(x: float, mode: str) -> np.float32:
    """Reference: the float32 neighbours of x, picked per rounding direction."""
    r = np.float32(x)
    if float(r) > x:
        lo, hi = np.nextafter(r, np.float32(-np.inf)), r
    elif float(r) < x:
        lo, hi = r, np.nextafter(r, np.float32(np.inf))
    else:
        return r
    return {"rz": lo if x > 0 else hi, "rm": lo, "rp": hi}[mode] if mode != "rn" else r


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-1e30, 1e30, allow_nan=False), min_size=32, max_size=32))
def test_cvt_f64_to_f32_rounding_modes(values):
    x = np.array(values, np.float64)
    for mode in ("rn", "rz", "rm", "rp"):
        out = run_unary(f"mov.b64 %fd1, %a; cvt.{mode}.f32.f64 %f1, %fd1; mov.b32 %d, %f1;", x, np.float32,
                        "b64").astype(np.float32)
        np.testing.assert_array_equal(out, [_directed_f32(v, mode) for v in values], err_msg=mode)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=32, max_size=32))
def test_cvt_s32_to_f32_rounding_modes(values):
    x = np.array(values, np.int32)
    for mode in ("rn", "rz", "rm", "rp"):
        out = run_unary(f"cvt.{mode}.f32.s32 %f1, %a; mov.b32 %d, %f1;", x, np.float32)
        np.testing.assert_array_equal(out, [_directed_f32(float(v), mode) for v in values], err_msg=mode)


def test_cvt_rna_tf32_and_relu():
    x = np.array([1.0 + 2**-11, 1.0 + 3 * 2**-12, -(1.0 + 2**-11), np.inf], np.float32)
    out = run_unary("cvt.rna.tf32.f32 %d, %a;", x, np.uint32).view(np.float32)
    np.testing.assert_array_equal(out, [1.0 + 2**-10, 1.0 + 2**-10, -(1.0 + 2**-10), np.inf])
    h = np.array([1.5, -2.0, 0.25, -0.0], np.float16).view(np.uint16).astype(np.uint32)
    packed = h | (h[::-1] << 16)
    out = run_unary("fma.rn.relu.f16x2 %d, %a, %a, %a;", packed, np.uint32)
    lo = (out & 0xFFFF).astype(np.uint16).view(np.float16)
    np.testing.assert_array_equal(lo, [3.75, 2.0, 0.3125, 0.0])


def test_red_bf16_add_and_atom_cas_exch():
    body = ("cvta.to.global.u64 %rd7, %rd2; mov.b16 %h1, 0x3F80; red.global.add.noftz.bf16 [%rd7], %h1;"
            "atom.global.cas.b32 %r2, [%rd7+4], 5, %a; atom.global.exch.b32 %r3, [%rd7+8], %a;"
            "atom.global.inc.u32 %r3, [%rd7+12], 3; mov.u32 %d, %r2;")
    ptx = unary_kernel(body).replace("st.global.b32 [%rd6], %d;", "")
    out = np.array([0x4000, 5, 0, 0], np.uint32)  # bf16 2.0 in the low half of out[0]
    x = np.arange(10, 42, dtype=np.uint32)
    sim.launch_ptx(ptx, "k", 1, 32, [x, out])
    assert out[0] & 0xFFFF == 0x4208  # 2 + 32 * 1.0 = 34.0 in bf16
    assert out[1] == 10  # only the first thread's compare succeeds
    assert out[2] in x and out[3] == 32 % 4


def test_atom_cas_b16_touches_only_its_halfword():
    """atom.cas.b16 (sm_70+) on each element of a 3-element u16 array (the last one ends the
    allocation): lanes alone at an element swap when they match, a lane that does not match leaves it."""
    body = ("cvta.to.global.u64 %rd7, %rd2; cvt.u16.u32 %h1, %a; add.u16 %h2, %h1, 100;"
            "mul.wide.u32 %rd5, %rt, 2; add.s64 %rd6, %rd7, %rd5;"
            "atom.relaxed.sys.global.cas.b16 %h3, [%rd6], %h1, %h2; cvt.u32.u16 %d, %h3;")
    ptx = unary_kernel(body).replace("st.global.b32 [%rd6], %d;", "st.global.b32 [%rd4], %d;")
    x = np.array([7, 8, 65535], np.uint32)  # compare values; stored back over x: the old halfwords
    out = np.array([7, 9, 65535], np.uint16)
    sim.launch_ptx(ptx, "k", 1, 3, [x, out])
    np.testing.assert_array_equal(out, [107, 9, 99])  # 65535 + 100 wraps to 99
    np.testing.assert_array_equal(x, [7, 9, 65535])


def test_barrier_reduction_is_reported_unsupported():
    with pytest.raises(sim.UnsupportedInstruction, match="bar.red.popc.u32"):
        run_unary("setp.ne.u32 %p1, %a, 0; bar.red.popc.u32 %d, 0, %p1;", np.ones(32, np.uint32), np.uint32)


M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def _s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


INT_CASES = {
    # body computing %d (b64) from %a (b64): python reference on the unsigned 64-bit input
    "mov.b64 {%r1, %r2}, %a; mov.b64 %d, {%r2, %r1};": lambda a: ((a & M32) << 32) | (a >> 32),
    "mov.b64 {%r1, %r2}, %a; add.cc.u32 %r3, %r1, %r1; addc.u32 %r2, %r2, %r2; mov.b64 %d, {%r3, %r2};":
        lambda a: (a * 2) & M64,
    "mov.b64 {%r1, %r2}, %a; mul.wide.s32 %d, %r1, %r2;": lambda a: (_s32(a) * _s32(a >> 32)) & M64,
    "mov.b64 {%r1, %r2}, %a; mad.hi.u32 %r3, %r1, %r2, 7; cvt.u64.u32 %d, %r3;":
        lambda a: (((a & M32) * (a >> 32) >> 32) + 7) & M32,
    "mov.b64 {%r1, %r2}, %a; shr.s32 %r3, %r1, %r2; cvt.s64.s32 %d, %r3;":
        lambda a: (_s32(a) >> min(a >> 32, 31)) & M64,
    "mov.b64 {%r1, %r2}, %a; shl.b32 %r3, %r1, %r2; cvt.u64.u32 %d, %r3;":
        lambda a: 0 if (a >> 32) >= 32 else ((a & M32) << (a >> 32)) & M32,
    "mov.b64 {%r1, %r2}, %a; bfi.b32 %r3, %r1, %r2, 5, 9; cvt.u64.u32 %d, %r3;":
        lambda a: ((a >> 32) & ~(0x1FF << 5) | ((a & 0x1FF) << 5)) & M32,
    "brev.b64 %d, %a;": lambda a: int(f"{a:064b}"[::-1], 2),
    "clz.b64 %r1, %a; popc.b64 %r2, %a; mul.wide.u32 %d, %r1, 1000; cvt.u64.u32 %rd7, %r2; add.u64 %d, %d, %rd7;":
        lambda a: (64 - a.bit_length()) * 1000 + bin(a).count("1"),
    "mov.b64 {%r1, %r2}, %a; slct.u32.s32 %r3, 11, 22, %r2; cvt.u64.u32 %d, %r3;":
        lambda a: 11 if _s32(a >> 32) >= 0 else 22,
    "mov.b64 {%r1, %r2}, %a; set.lo.u32.u32 %r3, %r1, %r2; cvt.u64.u32 %d, %r3;":
        lambda a: M32 if (a & M32) < (a >> 32) else 0,
    "mov.b64 {%r1, %r2}, %a; div.s32 %r3, %r1, %r2; rem.s32 %r1, %r1, %r2; mov.b64 %d, {%r3, %r1};":
        lambda a: 0 if _s32(a >> 32) == 0 else (
            (int(_s32(a) / _s32(a >> 32)) & M32) | ((_s32(a) - int(_s32(a) / _s32(a >> 32)) * _s32(a >> 32)) & M32) << 32),
    "mul.hi.s64 %d, %a, -5;": lambda a: (((a - (1 << 64) if a >> 63 else a) * -5) >> 64) & M64,
}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, M64), min_size=32, max_size=32))
def test_integer_instructions_against_python(values):
    x = np.array(values, np.uint64)
    for body, ref in INT_CASES.items():
        if "div.s32" in body:
            x = np.where((x >> np.uint64(32)) == 0, x | np.uint64(1 << 32), x)
        out = run_unary(body, x, np.uint64, "b64", "b64")
        np.testing.assert_array_equal(out, np.array([ref(int(v)) for v in x], np.uint64), err_msg=body)


def _bf(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.uint32) << 16).view(np.float32)


def test_half_precision_arithmetic():
    r = np.random.default_rng()
    a = r.standard_normal(32).astype(np.float16)
    b = r.standard_normal(32).astype(np.float16)
    packed = a.view(np.uint16).astype(np.uint32) | (b.view(np.uint16).astype(np.uint32) << 16)
    out = run_unary("mov.b32 {%h1, %h2}, %a; add.f16 %h3, %h1, %h2; mul.rn.f16 %h1, %h3, %h2;"
                    "fma.rn.f16 %h2, %h1, %h3, %h2; mov.b32 %d, {%h3, %h2};", packed, np.uint32)
    s = (a.astype(np.float64) + b).astype(np.float16)
    p = (s.astype(np.float64) * b).astype(np.float16)
    f = (p.astype(np.float64) * s + b).astype(np.float16)
    np.testing.assert_array_equal((out & 0xFFFF).astype(np.uint16).view(np.float16), s)
    np.testing.assert_array_equal((out >> 16).astype(np.uint16).view(np.float16), f)
    bits = f32_to_bf16_ref(r.standard_normal(64).astype(np.float32)).reshape(32, 2)
    packed = bits[:, 0].astype(np.uint32) | (bits[:, 1].astype(np.uint32) << 16)
    out = run_unary("fma.rn.bf16x2 %d, %a, %a, %a;", packed, np.uint32)
    x = _bf(bits).astype(np.float64)
    expect = f32_to_bf16_ref((x * x + x).astype(np.float32))
    np.testing.assert_array_equal(np.stack([out & 0xFFFF, out >> 16], 1).astype(np.uint16), expect)


def f32_to_bf16_ref(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even on the float64 value, by choosing the nearer bf16 neighbour."""
    u = x.astype(np.float32).view(np.uint32)
    lo = (u >> 16).astype(np.uint32)
    down, up = _bf(lo).astype(np.float64), _bf(lo + 1).astype(np.float64)
    v = np.abs(x.astype(np.float64))
    pick_up = (np.abs(up) - v < v - np.abs(down)) | ((np.abs(up) - v == v - np.abs(down)) & (lo & 1 == 1))
    return np.where(pick_up, lo + 1, lo).astype(np.uint16)


def test_f32_math_and_approximations():
    r = np.random.default_rng()
    x = (r.random(32) * 10 + 0.1).astype(np.float32)
    for body, ref, rtol in (
            ("div.rn.f32 %f2, %f1, 0f40400000;", lambda v: v / np.float32(3), 0),
            ("sqrt.rn.f32 %f2, %f1;", np.sqrt, 0),
            ("rcp.rn.f32 %f2, %f1;", lambda v: np.float32(1) / v, 0),
            ("ex2.approx.ftz.f32 %f2, %f1;", np.exp2, 2**-22),
            ("lg2.approx.f32 %f2, %f1;", np.log2, 2**-21),
            ("rsqrt.approx.f32 %f2, %f1;", lambda v: 1 / np.sqrt(v), 2**-22),
            ("sin.approx.f32 %f2, %f1;", np.sin, 1e-6),
            ("tanh.approx.f32 %f2, %f1;", np.tanh, 2**-10),
            ("neg.f32 %f3, %f1; abs.f32 %f2, %f3;", lambda v: v, 0),
            ("add.rn.sat.f32 %f2, %f1, 0fBF800000;", lambda v: np.clip(v - 1, 0, 1), 0)):
        out = run_unary(f"mov.b32 %f1, %a; {body} mov.b32 %d, %f2;", x, np.float32)
        np.testing.assert_allclose(out, ref(x).astype(np.float32), rtol=rtol, atol=1e-6 if rtol else 0,
                                   err_msg=body)


def test_cvt_saturating_integer_conversions():
    x = np.array([300, -300, 100, -5] * 8, np.int32)
    out = run_unary("cvt.sat.s8.s32 %r2, %a; cvt.sat.u8.s32 %r3, %a; and.b32 %r2, %r2, 255; shl.b32 %r3, %r3, 8;"
                    "or.b32 %d, %r2, %r3;", x, np.uint32)
    s8 = np.clip(x, -128, 127).astype(np.int8).view(np.uint8).astype(np.uint32)
    np.testing.assert_array_equal(out, s8 | (np.clip(x, 0, 255).astype(np.uint32) << 8))


def test_shared_out_of_bounds_through_generic_address():
    body = ("mul.wide.u32 %rd7, %rt, 4; mov.u64 %rd6, smem;"
            "cvta.shared.u64 %rd6, %rd6; add.s64 %rd6, %rd6, %rd7; st.u32 [%rd6], %a; ld.u32 %d, [%rd6];")
    ptx = unary_kernel(body).replace("{\n  .reg", "{\n  .shared .align 4 .b8 smem[64];\n  .reg")
    x = np.arange(16, dtype=np.uint32) + 5
    out = np.zeros(16, np.uint32)
    sim.launch_ptx(ptx, "k", 1, 16, [x, out])
    np.testing.assert_array_equal(out, x)
    with pytest.raises(MemoryAccessError, match=r"st.u32 \[%rd6\], %a.*shared.*thread \(16, 0, 0\)"):
        sim.launch_ptx(ptx, "k", 1, 17, [np.arange(17, dtype=np.uint32), np.zeros(17, np.uint32)])


def test_barrier_waits_for_blocks_laid_out_after_it():
    """Threads sent to a block placed after `ret` must still store before anyone passes bar.sync."""
    ptx = HEAD + """
.visible .entry k(.param .u64 pout)
{
  .shared .align 4 .b8 smem[128];
  .reg .b32 %r<8>; .reg .b64 %rd<4>; .reg .pred %p1;
  ld.param.u64 %rd1, [pout];
  mov.u32 %r1, %tid.x;
  shl.b32 %r2, %r1, 2;
  mov.u32 %r3, smem;
  add.u32 %r4, %r3, %r2;
  setp.lt.u32 %p1, %r1, 16;
  @%p1 bra FAR;
  st.shared.u32 [%r4], 1;
BACK:
  bar.sync 0;
  add.u32 %r5, %r1, 16;
  and.b32 %r5, %r5, 31;
  shl.b32 %r5, %r5, 2;
  add.u32 %r5, %r3, %r5;
  ld.shared.u32 %r6, [%r5];
  mul.wide.u32 %rd2, %r1, 4;
  add.s64 %rd3, %rd1, %rd2;
  st.global.u32 [%rd3], %r6;
  ret;
FAR:
  st.shared.u32 [%r4], 2;
  bra BACK;
}
"""
    out = np.zeros(32, np.uint32)
    sim.launch_ptx(ptx, "k", 1, 32, [out])
    np.testing.assert_array_equal(out, np.where(np.arange(32) < 16, 1, 2))


def test_cvt_f64_to_64_bit_integers_saturate():
    x = np.array([1e19, -1e19, 2.0**63 + 2**11, -3.7, np.nan, 1e300, 12345.9, 2.0**64] * 4)
    out = run_unary("mov.b64 %fd1, %a; cvt.rzi.u64.f64 %d, %fd1;", x, np.uint64, "b64", "b64")
    np.testing.assert_array_equal(out[:8], np.array([10**19, 0, 2**63 + 2**11, 0, 0, 2**64 - 1, 12345, 2**64 - 1],
                                                    np.uint64))
    out = run_unary("mov.b64 %fd1, %a; cvt.rni.s64.f64 %d, %fd1;", x, np.int64, "b64", "b64")
    big = 2**63 - 1
    np.testing.assert_array_equal(out[:8], np.array([big, -big - 1, big, -4, 0, big, 12346, big], np.int64))


def test_cp_async_zero_fills_past_src_size_and_vector_shared_loads():
    ptx = HEAD + """
.visible .entry k(.param .u64 pin, .param .u64 pout)
{
  .shared .align 16 .b8 smem[512];
  .reg .b32 %r<12>; .reg .b64 %rd<8>;
  ld.param.u64 %rd1, [pin];
  ld.param.u64 %rd2, [pout];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 16;
  add.s64 %rd4, %rd1, %rd3;
  shl.b32 %r2, %r1, 4;
  mov.u32 %r3, smem;
  add.u32 %r4, %r3, %r2;
  and.b32 %r5, %r1, 15;
  cp.async.ca.shared.global [%r4], [%rd4], 16, %r5;
  cp.async.commit_group;
  cp.async.wait_all;
  bar.sync 0;
  ld.shared.v2.b64 {%rd5, %rd6}, [%r4];
  add.s64 %rd7, %rd2, %rd3;
  st.global.v2.b64 [%rd7], {%rd5, %rd6};
  ret;
}
"""
    src = np.random.default_rng().integers(1, 256, 32 * 16).astype(np.uint8)
    out = np.full(32 * 16, 0xAB, np.uint8)
    sim.launch_ptx(ptx, "k", 1, 32, [src, out])
    expect = src.reshape(32, 16).copy()
    expect[np.arange(16)[None, :] >= (np.arange(32) % 16)[:, None]] = 0
    np.testing.assert_array_equal(out.reshape(32, 16), expect)


CP_ASYNC_GROUPS = HEAD + """
.visible .entry k(.param .u64 pin, .param .u64 pout)
{
  .shared .align 16 .b8 smem[1024];
  .reg .b32 %r<8>; .reg .b64 %rd<12>;
  ld.param.u64 %rd1, [pin];
  ld.param.u64 %rd2, [pout];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 16;
  add.s64 %rd4, %rd1, %rd3;
  add.s64 %rd5, %rd4, 512;
  shl.b32 %r2, %r1, 4;
  mov.u32 %r3, smem;
  add.u32 %r4, %r3, %r2;
  add.u32 %r5, %r4, 512;
  mov.b64 %rd6, -1;
  st.shared.v2.b64 [%r4], {%rd6, %rd6};
  st.shared.v2.b64 [%r5], {%rd6, %rd6};
  cp.async.cg.shared.global [%r4], [%rd4], 16;
  cp.async.commit_group;
  cp.async.cg.shared.global [%r5], [%rd5], 16;
  cp.async.commit_group;
  WAIT
  ld.shared.v2.b64 {%rd7, %rd8}, [%r4];
  ld.shared.v2.b64 {%rd9, %rd10}, [%r5];
  add.s64 %rd11, %rd2, %rd3;
  st.global.v2.b64 [%rd11], {%rd7, %rd8};
  add.s64 %rd11, %rd11, 512;
  st.global.v2.b64 [%rd11], {%rd9, %rd10};
  ret;
}
"""


@pytest.mark.parametrize("wait, landed", [("cp.async.wait_group 1;", [True, False]),
                                          ("cp.async.wait_group 0;", [True, True]),
                                          ("cp.async.wait_all;", [True, True]),
                                          ("", [False, False])])
def test_cp_async_groups_land_only_when_waited_for(wait, landed):
    """wait_group N lands all but the N newest committed groups; until then the destination keeps
    its old contents (here all ones), as it may on the hardware."""
    src = np.random.default_rng().integers(0, 255, 2 * 32 * 16).astype(np.uint8)
    out = np.full(src.size, 0xAB, np.uint8)
    sim.launch_ptx(CP_ASYNC_GROUPS.replace("WAIT", wait), "k", 1, 32, [src, out])
    for got, copied, done in zip(np.split(out, 2), np.split(src, 2), landed):
        np.testing.assert_array_equal(got, copied if done else 0xFF)


def test_atom_f16x2_add_and_nc_vector_load():
    body = ("cvta.to.global.u64 %rd7, %rd2; atom.global.add.noftz.f16x2 %r2, [%rd7], %a;"
            "ld.global.nc.v4.f32 {%f1, %f2, %f3, %r3}, [%rd1]; mov.b32 %d, %f2;")
    ptx = unary_kernel(body).replace("st.global.b32 [%rd6], %d;", "")
    h = np.array([0.5, -0.25], np.float16).view(np.uint16).astype(np.uint32)
    x = np.full(32, h[0] | (h[1] << 16), np.uint32)
    out = np.array(np.array([1.0, 2.0], np.float16).view(np.uint32)[0], ndmin=1).astype(np.uint32)
    sim.launch_ptx(ptx, "k", 1, 32, [x, out])
    np.testing.assert_array_equal(out.view(np.float16), [17.0, -6.0])


SHUFFLE_AFTER_A_COLD_BLOCK = HEAD + """
.visible .entry k(.param .u64 pout)
{
  .reg .b32 %r<6>; .reg .b64 %rd<4>; .reg .pred %p;
  ld.param.u64 %rd1, [pout];
  mov.u32 %r1, %tid.x;
  mov.u32 %r2, 1;
  and.b32 %r3, %r1, 1;
  setp.eq.u32 %p, %r3, 1;
  @%p bra ODD;
JOIN:
  shfl.sync.bfly.b32 %r4, %r2, 1, 31, -1;
  mul.wide.u32 %rd2, %r1, 4;
  add.s64 %rd3, %rd1, %rd2;
  st.global.u32 [%rd3], %r4;
  ret;
ODD:
  mov.u32 %r2, 7;
  bra JOIN;
}
"""


@pytest.mark.parametrize("threads", [32, 64, 48])
def test_shfl_sync_waits_for_every_lane_of_its_warp(threads):
    """The odd lanes reach the shuffle through a block laid out after it; the even lanes, at a lower
    PC, must wait for them (shfl.sync converges the warp) and read their 7, not a stale value."""
    out = np.full(threads, -1, np.int32)
    sim.launch_ptx(SHUFFLE_AFTER_A_COLD_BLOCK, "k", 1, threads, [out])
    lane = np.arange(threads)
    np.testing.assert_array_equal(out, np.where(lane % 2 == 0, 7, 1))
