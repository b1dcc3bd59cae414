"""PTX from LLVM's NVPTX backend (llvmlite 0.50 / LLVM 22): untyped .b32 registers used as f32."""
import numpy as np
import pytest

llvm = pytest.importorskip("llvmlite.binding")

import kdsl.sim as sim  # noqa: E402
from kdsl.sim.types import f32_to_bf16  # noqa: E402

IR = r'''
target triple = "nvptx64-nvidia-cuda"
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()
declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
declare float @llvm.nvvm.shfl.sync.bfly.f32(i32, float, i32, i32)
define ptx_kernel void @k(ptr addrspace(1) %x, ptr addrspace(1) %out, i32 %n) {
entry:
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %c = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %b = mul i32 %c, 64
  %i = add i32 %b, %t
  %ok = icmp slt i32 %i, %n
  %p = getelementptr float, ptr addrspace(1) %x, i32 %i
  %v0 = load float, ptr addrspace(1) %p
  %v = select i1 %ok, float %v0, float 0.0
  %s1 = call float @llvm.nvvm.shfl.sync.bfly.f32(i32 -1, float %v, i32 1, i32 31)
  %a1 = fadd float %v, %s1
  %e = call float @llvm.exp2.f32(float %a1)
  %h = fptrunc float %e to half
  %bf = fptrunc float %a1 to bfloat
  %hb = bitcast half %h to i16
  %bb = bitcast bfloat %bf to i16
  %hz = zext i16 %hb to i32
  %bz = zext i16 %bb to i32
  %bs = shl i32 %bz, 16
  %packed = or i32 %hz, %bs
  %q = getelementptr i32, ptr addrspace(1) %out, i32 %i
  br i1 %ok, label %store, label %done
store:
  store i32 %packed, ptr addrspace(1) %q
  br label %done
done:
  ret void
}
declare float @llvm.exp2.f32(float)
'''


@pytest.fixture(scope="module")
def ptx() -> str:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    target = llvm.Target.from_triple("nvptx64-nvidia-cuda")
    tm = target.create_target_machine(cpu="sm_80", features="+ptx80", opt=3)
    return tm.emit_assembly(llvm.parse_assembly(IR))


def test_untyped_registers_shuffle_exp2_and_half_conversions(ptx):
    assert "add.rn.f32" in ptx and ".reg .f32" not in ptx
    n = 100  # the kernel loads before its bounds check, so the input covers every thread
    x = np.random.default_rng().standard_normal(128).astype(np.float32)
    out = np.full(128, 0xABABABAB, np.uint32)
    sim.launch_ptx(ptx, "k", (2, 1, 1), (64, 1, 1), [x, out, ("s32", n)])
    v = np.where(np.arange(128) < n, x, 0).astype(np.float32)
    pair = v + v[np.arange(128) ^ 1]
    h = (out[:n] & 0xFFFF).astype(np.uint16).view(np.float16)
    np.testing.assert_allclose(h, np.exp2(pair[:n]).astype(np.float16), rtol=1e-3)
    np.testing.assert_array_equal((out[:n] >> 16).astype(np.uint16), f32_to_bf16(pair[:n]))
    assert (out[n:] == 0xABABABAB).all()
