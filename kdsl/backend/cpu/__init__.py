"""The CPU backend: kdsl IR → LLVM (llvmlite) → native code through MCJIT."""
from kdsl.backend.cpu.program import CpuProgram, compile_cpu

__all__ = ["CpuProgram", "compile_cpu"]
