import numpy as np
import pytest

import kdsl.sim
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.ptx import llvm_to_ptx
from kdsl.errors import KdslError

STORE_TID = """
define ptx_kernel void @k(ptr addrspace(1) %p) {
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %f = uitofp i32 %t to float
  %q = getelementptr float, ptr addrspace(1) %p, i32 %t
  store float %f, ptr addrspace(1) %q
  ret void
}
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()
"""


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_llvm_to_ptx_runs_on_the_simulator_and_assembles(arch):
    _, ptx = llvm_to_ptx(STORE_TID, arch)
    assert f".target {arch}" in ptx
    out = np.full(64, np.nan, np.float32)
    kdsl.sim.launch_ptx(ptx, "k", 1, 64, [out])
    np.testing.assert_array_equal(out, np.arange(64, dtype=np.float32))
    if not ptxas.available():
        pytest.skip("ptxas is not on the PATH")
    assert b"k" in ptxas.assemble(ptx, arch).cubin


def test_unknown_arch_is_a_kdsl_error():
    with pytest.raises(KdslError, match="unknown GPU architecture 'sm_10'"):
        llvm_to_ptx(STORE_TID, "sm_10")


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
def test_ptxas_rejection_is_reported_with_its_message():
    with pytest.raises(ptxas.PtxasError, match="ptxas -arch=sm_80 rejected"):
        ptxas.assemble(".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k() { bogus; }", "sm_80")
