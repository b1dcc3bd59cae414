"""Parser coverage on hand-written PTX: data initialisers, scopes, predicates, directives."""
import numpy as np
import pytest

import kdsl.sim as sim
from kdsl.sim.parser import Addr, Imm, Reg, Sym, Vec, parse

PTX = r"""
//
// hand-written
.version 8.0
.target sm_80
.address_size 64
.file 1 "k.py"
.global .align 4 .u32 table[4] = {10, 20, 0x1E, 40};
.const .align 4 .f32 scale = 0f40000000;
.extern .shared .align 16 .b8 dyn[];

.visible .entry k(.param .u64 .ptr .global .align 4 k_out)   /* block comment */
{
  .reg .b32 %r<6>;
  .reg .pred %p<2>;
  .reg .b64 %rd<4>;
  .loc 1 3 0
  .pragma "nounroll";
  ld.param.u64 %rd1, [k_out];
  mov.u32 %r1, %tid.x;
  and.b32 %r2, %r1, 3;
  mul.wide.u32 %rd2, %r2, 4;
  mov.u64 %rd3, table;
  add.s64 %rd3, %rd3, %rd2;
  ld.global.u32 %r3, [%rd3];
  ld.const.f32 %r4, [scale];
  {
    .reg .pred %p1;
    .reg .b32 %r1;
    setp.eq.u32 %p1, %r2, 0;
    mov.u32 %r1, 1000;
    @!%p1 mov.u32 %r1, 0;
    add.u32 %r3, %r3, %r1;
  }
  cvt.rn.f32.u32 %r5, %r3;
  mul.f32 %r5, %r5, %r4;
  shl.b32 %r2, %r1, 2;
  st.shared.u32 [dyn+0], %r3;
  mul.wide.u32 %rd2, %r1, 4;
  add.s64 %rd1, %rd1, %rd2;
  setp.lt.u32 %p1, %r1, 8;
  @%p1 st.global.f32 [%rd1], %r5;
$L_end:
  ret;
}
"""


def test_parse_structure():
    m = parse(PTX)
    k = m.functions["k"]
    assert m.version == "8.0" and m.target == "sm_80"
    assert [v.name for v in m.variables] == ["table", "scale", "dyn"] and m.variables[2].extern
    assert m.variables[0].init == b"".join(int(v).to_bytes(4, "little") for v in (10, 20, 30, 40))
    assert k.params[0].name == "k_out" and k.params[0].size == 8
    scoped = [i for i in k.body if not isinstance(i, str) and i.opcode == "setp"][0]
    assert scoped.operands[0].name.startswith("%p1#")  # the inner block's own %p1
    guarded = [i for i in k.body if not isinstance(i, str) and i.guard is not None]
    assert guarded[0].guard_negated and not guarded[1].guard_negated
    assert guarded[1].guard == Reg("%p1")
    st = [i for i in k.body if not isinstance(i, str) and i.opcode == "st"][0]
    assert st.operands[0] == Addr(Sym("dyn"), 0) and k.body[-2] == "$L_end"


def test_run_with_module_data_and_scopes():
    out = np.full(8, np.nan, np.float32)
    sim.launch_ptx(PTX, "k", 1, 12, [out], shared_bytes=16)
    base = np.array([10, 20, 30, 40] * 2, np.float32)
    np.testing.assert_array_equal(out, (base + np.where(np.arange(8) % 4 == 0, 1000, 0)) * 2)


def test_operands():
    inst = parse(PTX.replace("ret;", "mov.b64 %rd3, {%r1, %r2}; ret;")).functions["k"].body[-2]
    assert inst.operands[1] == Vec((Reg("%r1"), Reg("%r2")))
    assert parse(PTX).functions["k"].body[2].operands[2] == Imm(3)


@pytest.mark.parametrize("bad", ["mov.u32 %r1, ;", ".weird_directive 3;"])
def test_parse_errors_name_the_statement(bad):
    with pytest.raises((sim.PtxParseError, sim.UnsupportedInstruction)):
        text = PTX.replace("ret;", bad + " ret;") if not bad.startswith(".weird") else PTX + bad
        sim.launch_ptx(text, "k", 1, 1, [np.zeros(8, np.float32)], shared_bytes=16)
