"""kdsl: a block-level kernel language embedded in Python.

Kernels are Python functions decorated with `@kdsl.kernel`, written with the
operations of `kdsl.language`, and launched with `kernel[grid](*args)`.
"""
from kdsl.errors import CompilationError, KdslError, LaunchError, MemoryAccessError

__version__ = "0.1.0"

__all__ = ["CompilationError", "KdslError", "LaunchError", "MemoryAccessError", "__version__"]
