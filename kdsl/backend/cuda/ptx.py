"""LLVM IR → PTX through llvmlite's NVPTX target (see GPU-NOTES.md)."""
from __future__ import annotations

import threading
from functools import lru_cache

import llvmlite.binding as llvm

from kdsl.errors import LaunchError

TRIPLE = "nvptx64-nvidia-cuda"
# The PTX ISA version asked of LLVM per architecture; ptxas 13.0 accepts up to 9.0. sm_89 and newer
# ask for 8.4, the first with fp8 (e4m3, e5m2) mma.
ARCHES = {"sm_80": "+ptx80", "sm_86": "+ptx80", "sm_89": "+ptx84", "sm_90": "+ptx84", "sm_90a": "+ptx84"}
_emit_lock = threading.Lock()


def check_arch(arch: str) -> str:
    if arch not in ARCHES:
        raise LaunchError(f"unknown GPU architecture {arch!r}; kdsl compiles for {', '.join(ARCHES)}")
    return arch


@lru_cache(maxsize=None)
def target_machine(arch: str) -> llvm.TargetMachine:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=check_arch(arch), features=ARCHES[arch], opt=3)


def llvm_to_ptx(llvm_ir: str, arch: str) -> tuple[str, str]:
    """Optimise `llvm_ir` at O3 for `arch`; returns (optimised LLVM IR, PTX)."""
    tm = target_machine(arch)
    with _emit_lock:  # one target machine per arch is shared between threads
        mod = llvm.parse_assembly(llvm_ir)
        mod.triple = TRIPLE
        mod.data_layout = str(tm.target_data)
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        return str(mod), tm.emit_assembly(mod)
