"""The CPU backend: kdsl IR → LLVM (llvmlite) → native code through MCJIT."""
from kdsl.backend.cpu.program import CpuBinary, CpuProgram, compile_cpu

__all__ = ["CpuBinary", "CpuProgram", "compile_cpu"]
