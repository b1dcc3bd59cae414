"""The compilation pipeline, top to bottom: frontend → IR passes → a backend.

    Python AST ──frontend──▶ kdsl IR ──inline, canonicalize, cse, dce──▶ backend
        cpu:        LLVM → JIT
        cuda, sim:  lower_for_gpu (LLVM NVPTX) → PTX → the CUDA driver, or kdsl.sim
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kdsl import cache
from kdsl.errors import LaunchError, Loc
from kdsl.frontend.codegen import build_module
from kdsl.ir.core import Module
from kdsl.ir.passes import default_passes, run_pipeline
from kdsl.ir.passes.provenance import Provenance
from kdsl.ir.printer import print_module
from kdsl.ir.verifier import verify_module
from kdsl.runtime.arrays import adapt_array
from kdsl.runtime.binding import BoundLaunch

TARGETS = ("cpu", "cuda", "sim", "interpret")
GPU_TARGETS = ("cuda", "sim")
SIM_ARCH = "sm_80"


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the arguments that changes the generated code."""

    target: str = "cpu"
    arch: str | None = None
    num_warps: int = 4
    num_stages: int = 3
    stages: bool = False
    cubin: bool = False
    checked: bool = True  # the CPU's accesses checked against the arrays' bounds

    def key(self) -> tuple:
        return (self.target, self.arch, self.num_warps, self.num_stages, self.stages, self.cubin, self.checked)


@dataclass
class CompiledKernel:
    """A kernel compiled for one specialization (what `Kernel.compile` returns): `asm` holds every
    intermediate form: "ir" (kdsl IR after the passes, as text), "llvm" and "llvm_optimized" (the
    LLVM IR before and after LLVM's optimiser), on the GPU targets "ptx", and on request
    "ir_stages", "cubin" and "ptxas" (see `Kernel.compile`)."""

    name: str
    target: str
    asm: dict[str, Any] = field(default_factory=dict)
    program: Any = None
    writes: dict[int, Loc | None] = field(default_factory=dict)  # arguments stored through: `provenance`

    def launch(self, bound: BoundLaunch, grid: tuple[int, int, int]) -> None:
        self.check_writable(bound)
        if self.target == "cpu":
            self.program.launch(bound.values, grid, bound.arrays)
        else:
            self.program.launch(bound, grid)

    def check_writable(self, bound: BoundLaunch) -> None:
        """Refuse a read-only array (numpy's `writeable=False`) for an argument the kernel
        stores through, naming the store."""
        for index, loc in self.writes.items():
            if _read_only(bound.arrays[index]):
                where = f" at {loc.file}:{loc.line}:\n{loc.excerpt()}" if loc is not None and loc.line > 0 else ""
                raise LaunchError(f"'{self.name}': argument '{bound.runtime[index][0]}' is a read-only array, "
                                  f"but the kernel stores through it{where}")


def _read_only(value: Any) -> bool:
    array = adapt_array(value)
    return array is not None and array.readonly


def resolve_arch(target: str, arch: str | None, bound: BoundLaunch) -> str | None:
    """The GPU architecture to compile for: the one asked for, else sm_80 on the simulator and
    the GPU's own on "cuda" (which needs the GPU); None on the CPU targets."""
    if target not in GPU_TARGETS:
        return None
    from kdsl.backend.cuda.ptx import check_arch

    if arch is not None:
        return check_arch(arch)
    if target == "sim":
        return SIM_ARCH
    from kdsl.backend.cuda.driver import device_for

    try:
        device, _ = device_for(bound.arrays)
    except LaunchError as e:
        raise LaunchError(f"{e} (kernel.compile(..., target='cuda', arch='sm_80') compiles without one)") from None
    return device.arch


def lower_for_gpu(name: str, module: Module, options: CompileOptions) -> Any:
    """The seam between the IR and the GPU backend: the kernel in LLVM NVPTX (`lower.GpuKernel`)."""
    from kdsl.backend.cuda.lower import lower_to_llvm

    return lower_to_llvm(module, options.arch, options.num_warps, options.num_stages)


def compile_kernel(kernel: Any, bound: BoundLaunch, options: CompileOptions) -> CompiledKernel:
    if options.target == "interpret":
        raise LaunchError(f"'{kernel.source.name}': target 'interpret' runs the Python function and compiles "
                          "nothing; launch the kernel with target='interpret' instead")
    module = build_module(kernel, bound.constants, bound.runtime, bound.arg_attrs)
    verify_module(module)
    stages: dict[str, str] | None = {"frontend": print_module(module, locs=True)} if options.stages else None
    run_pipeline(module, default_passes(), verify=True, record=stages)
    asm: dict[str, Any] = {"ir": print_module(module)}
    if stages is not None:
        asm["ir_stages"] = stages
    writes = Provenance(module.kernel).stores()
    if options.target in GPU_TARGETS:
        program, gpu_asm = _gpu_program(kernel.source.name, module, options)
        asm.update(gpu_asm)
        return CompiledKernel(kernel.source.name, options.target, asm, program, writes)
    program = _cpu_program(module, options)
    asm["llvm"] = program.llvm
    asm["llvm_optimized"] = program.llvm_optimized
    return CompiledKernel(kernel.source.name, options.target, asm, program, writes)


def cache_key(module: Module, options: CompileOptions, machine: str) -> str:
    """The on-disk cache's key for `module` (after the IR passes) compiled with `options` for
    `machine`. The IR with source locations stands for the kernel's source, the kernels it calls
    and every value it is specialised on; `cache.key` adds kdsl's own code."""
    return cache.key(print_module(module, locs=True), repr(options.key()), machine)


def _gpu_program(name: str, module: Module, options: CompileOptions) -> tuple[Any, dict[str, Any]]:
    """The GPU program for `module` and its `asm` entries: from the on-disk cache, else lowered,
    compiled to PTX (and a cubin if asked) and stored."""
    from kdsl.backend.cuda.program import GpuProgram, compile_gpu, toolchain_identity

    entry = cache_key(module, options, toolchain_identity(options.cubin))
    cached = cache.load(entry)
    if isinstance(cached, tuple) and len(cached) == 2 and isinstance(cached[0], GpuProgram):
        return cached
    built = compile_gpu(lower_for_gpu(name, module, options), name, options.target, options.arch,
                        cubin=options.cubin, accesses=Provenance(module.kernel).accesses())
    cache.store(entry, built)
    return built


def _cpu_program(module: Module, options: CompileOptions) -> Any:
    """The CPU program for `module`: loaded from the on-disk cache, else compiled by LLVM and stored."""
    from kdsl.backend.cpu.program import CpuBinary, CpuProgram, compile_cpu
    from kdsl.backend.cpu.host import host_identity

    entry = cache_key(module, options, host_identity())
    binary = cache.load(entry)
    if isinstance(binary, CpuBinary):
        return CpuProgram(binary)
    program = compile_cpu(module, options.checked)
    cache.store(entry, program.binary)
    return program
