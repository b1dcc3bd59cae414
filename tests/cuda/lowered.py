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


def substitute_lowering(monkeypatch, llvm_ir: str) -> None:
    """Make every GPU compile lower to `llvm_ir` (entry @k).

    Kernels keep their compiled specializations, so a test kernel must always be given the same `llvm_ir`.
    """
    def lower(name, module, options):
        return Lowered(llvm_ir, "k", options.num_warps, 0, [a.type for a in module.kernel.args])

    monkeypatch.setattr(kdsl.compiler, "lower_for_gpu", lower)


def global_index() -> str:
    """LLVM instructions computing %i = ctaid.x * ntid.x + tid.x (i32)."""
    return """
  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %ntid = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %cta = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %base = mul i32 %cta, %ntid
  %i = add i32 %base, %tid
"""


def has_gpu() -> bool:
    try:
        cuda_device(0)
    except LaunchError:
        return False
    return True


needs_gpu = pytest.mark.skipif(not has_gpu(), reason="needs a CUDA GPU, its driver and cuda-python")
