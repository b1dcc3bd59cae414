"""The compilation pipeline, top to bottom: frontend → IR passes → a backend.

    Python AST ──frontend──▶ kdsl IR ──inline, canonicalize, cse, dce──▶ backend (cpu: LLVM → JIT)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kdsl.errors import LaunchError
from kdsl.frontend.codegen import build_module
from kdsl.ir.passes import default_passes, run_pipeline
from kdsl.ir.printer import print_module
from kdsl.ir.verifier import verify_module
from kdsl.runtime.binding import BoundLaunch

TARGETS = ("cpu", "cuda", "sim", "interpret")


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the arguments that changes the generated code."""

    target: str = "cpu"
    arch: str | None = None
    num_warps: int = 4
    num_stages: int = 3
    stages: bool = False

    def key(self) -> tuple:
        return (self.target, self.arch, self.num_warps, self.num_stages)


@dataclass
class CompiledKernel:
    """A kernel compiled for one specialization: `asm` holds every intermediate form."""

    name: str
    target: str
    asm: dict[str, Any] = field(default_factory=dict)
    program: Any = None

    def launch(self, values: list, grid: tuple[int, int, int]) -> None:
        self.program.launch(values, grid)


def compile_kernel(kernel: Any, bound: BoundLaunch, options: CompileOptions) -> CompiledKernel:
    if options.target == "interpret":
        raise LaunchError(f"'{kernel.source.name}': target 'interpret' runs the Python function and compiles "
                          "nothing; launch the kernel with target='interpret' instead")
    if options.target != "cpu":
        raise LaunchError(f"'{kernel.source.name}': target '{options.target}' is not available yet; "
                          "kdsl currently compiles for target='cpu' only")
    module = build_module(kernel, bound.constants, bound.runtime, bound.arg_attrs)
    verify_module(module)
    stages: dict[str, str] | None = {"frontend": print_module(module, locs=True)} if options.stages else None
    run_pipeline(module, default_passes(), verify=True, record=stages)
    asm: dict[str, Any] = {"ir": print_module(module)}
    if stages is not None:
        asm["ir_stages"] = stages
    from kdsl.backend.cpu import compile_cpu

    program = compile_cpu(module)
    asm["llvm"] = program.llvm
    asm["llvm_optimized"] = program.llvm_optimized
    return CompiledKernel(kernel.source.name, options.target, asm, program)
