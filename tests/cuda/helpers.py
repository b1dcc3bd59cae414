"""Compile kdsl kernels through the GPU lowering and run their PTX on the simulator."""
from __future__ import annotations

import numpy as np

import kdsl.sim
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.lower import GpuKernel, lower_to_llvm
from kdsl.backend.cuda.ptx import llvm_to_ptx
from kdsl.frontend.codegen import build_module
from kdsl.ir.passes import default_passes, run_pipeline
from kdsl.ir.types import PointerType
from kdsl.ir.verifier import verify_module
from kdsl.runtime.binding import bind, resolve_grid

# kdsl scalar types as the simulator's parameter types
PTX_PARAM = {"i1": "u8", "i8": "s8", "i16": "s16", "i32": "s32", "i64": "s64", "u8": "u8", "u16": "u16",
             "u32": "u32", "u64": "u64", "f16": "f16", "bf16": "b16", "f32": "f32", "f64": "f64"}


def lower_kernel(kernel, args, constants, num_warps=4, arch="sm_80", num_stages=3) -> tuple[GpuKernel, str, object]:
    """(the lowered kernel, its PTX for `arch`, the bound launch) for example arguments."""
    bound = bind(kernel.source, tuple(args), dict(constants))
    module = build_module(kernel, bound.constants, bound.runtime, bound.arg_attrs)
    verify_module(module)
    run_pipeline(module, default_passes())
    gpu = lower_to_llvm(module, arch, num_warps, num_stages)
    return gpu, llvm_to_ptx(gpu.llvm_ir, arch)[1], bound


def run_sim(kernel, grid, *args, num_warps=4, arch="sm_80", num_stages=3, **constants) -> GpuKernel:
    """Launch `kernel` on the simulator as `kernel[grid](*args, **constants)` would on a GPU."""
    gpu, ptx, bound = lower_kernel(kernel, args, constants, num_warps, arch, num_stages)
    sim_args = []
    for (name, t), value in zip(bound.runtime, bound.values):
        if isinstance(t, PointerType):
            sim_args.append(bound.by_name[name])
        else:
            sim_args.append((PTX_PARAM[str(t)], _param_value(value, str(t))))
    dims = resolve_grid(kernel.source.name, grid, bound.by_name)
    if 0 not in dims:
        kdsl.sim.launch_ptx(ptx, gpu.entry, dims, (32 * num_warps, 1, 1), sim_args, gpu.shared_bytes)
    return gpu


def _param_value(value, type_name: str):
    if type_name == "bf16":
        return int(np.array(value, np.float32).view(np.uint32)) >> 16
    if type_name == "i1":
        return int(bool(value))
    return value


def assemble_all_arches(kernel, args, constants, num_warps=4, num_stages=3) -> None:
    """The kernel's PTX for sm_80 and sm_90 assembles with ptxas."""
    for arch in ("sm_80", "sm_90"):
        _, ptx, _ = lower_kernel(kernel, args, constants, num_warps, arch, num_stages)
        ptxas.assemble(ptx, arch)
