"""The CPU backend: kdsl IR → LLVM (llvmlite) → native code through MCJIT (`program.compile_cpu`)."""
