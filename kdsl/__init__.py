"""kdsl: a block-level kernel language embedded in Python.

Kernels are Python functions decorated with `@kdsl.kernel`, written with the
operations of `kdsl.language` (conventionally `kl`), and launched with
`kernel[grid](*args)` on numpy arrays or torch tensors.
"""
from kdsl.backend.cpu.threads import get_num_threads, set_num_threads
from kdsl.errors import CompilationError, DeviceAssertionError, KdslError, LaunchError, MemoryAccessError
from kdsl.language import constexpr
from kdsl.runtime.autotune import Config, autotune, heuristics
from kdsl.runtime.kernel import Kernel, kernel

__version__ = "0.1.0"


def cdiv(a: int, b: int) -> int:
    """Ceiling division of integers: the number of blocks of size `b` that cover `a`."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of two that is at least `n` (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


__all__ = [
    "CompilationError", "Config", "DeviceAssertionError", "KdslError", "Kernel", "LaunchError",
    "MemoryAccessError", "__version__",
    "autotune", "cdiv", "constexpr", "get_num_threads", "heuristics", "kernel", "next_power_of_2",
    "set_num_threads",
]
