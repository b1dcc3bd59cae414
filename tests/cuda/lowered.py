"""Hand-written LLVM NVPTX kernels standing in for the GPU lowering, injected at `kdsl.compiler.lower_for_gpu`."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import kdsl.compiler
from kdsl.backend.cuda.driver import cuda_device
from kdsl.errors import LaunchError
from kdsl.ir.types import Type

SREGS = "".join(f"declare i32 @llvm.nvvm.read.ptx.sreg.{r}.{a}()\n" for r in ("tid", "ntid", "ctaid", "nctaid")
                for a in "xyz")


@dataclass
class Lowered:
    """What `lower_to_llvm` returns (see `kdsl.backend.cuda.program.LoweredKernel`)."""

    llvm_ir: str
    entry: str = "k"
    num_warps: int = 4
    shared_bytes: int = 0
    params: list[Type] = field(default_factory=list)
    debug_sites: tuple = ()


def substitute_lowering(monkeypatch, llvm_ir: str) -> None:
    """Make every GPU compile lower to `llvm_ir` (entry @k).

    Kernels keep their compiled specializations, so a test kernel must always be given the same `llvm_ir`.
    """
    def lower(name, module, options):
        return Lowered(llvm_ir, "k", options.num_warps, 0, [a.type for a in module.kernel.args])

    monkeypatch.setattr(kdsl.compiler, "lower_for_gpu", lower)


def elementwise(params: str, body: str) -> str:
    """A kernel @k(params, ..., i32 %n) running `body` for %i = ctaid.x * ntid.x + tid.x when %i < %n."""
    return SREGS + f"""
define ptx_kernel void @k({params}, i32 %n) {{
  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %ntid = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %cta = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %base = mul i32 %cta, %ntid
  %i = add i32 %base, %tid
  %ok = icmp slt i32 %i, %n
  br i1 %ok, label %body, label %done
body:
{body}
  br label %done
done:
  ret void
}}"""


VECTOR_ADD = elementwise("ptr addrspace(1) %x, ptr addrspace(1) %y, ptr addrspace(1) %out", """
  %px = getelementptr float, ptr addrspace(1) %x, i32 %i
  %py = getelementptr float, ptr addrspace(1) %y, i32 %i
  %vx = load float, ptr addrspace(1) %px
  %vy = load float, ptr addrspace(1) %py
  %s = fadd float %vx, %vy
  %po = getelementptr float, ptr addrspace(1) %out, i32 %i
  store float %s, ptr addrspace(1) %po""")


def has_gpu() -> bool:
    try:
        cuda_device(0)
    except LaunchError:
        return False
    return True


needs_gpu = pytest.mark.skipif(not has_gpu(), reason="needs a CUDA GPU, its driver and cuda-python")
