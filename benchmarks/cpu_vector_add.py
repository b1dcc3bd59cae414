"""Compile time and throughput of a masked fp32 vector add on the CPU backend.

    python -m benchmarks.cpu_vector_add [log2 n] [block]
"""
from __future__ import annotations

import sys
import time

import numpy as np

from kdsl.backend.cpu import compile_cpu
from kdsl.ir import parse_module, verify_module
from tests.cpu.helpers import elementwise_kernel


def main(log2n: int = 24, block: int = 1024, repeats: int = 10) -> None:
    module = parse_module(elementwise_kernel("add", ["f32", "f32"], "f32", block))
    verify_module(module)
    start = time.perf_counter()
    prog = compile_cpu(module)
    print(f"compile: {(time.perf_counter() - start) * 1e3:.0f} ms (block {block})")
    n = 1 << log2n
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(n, np.float32), rng.standard_normal(n, np.float32)
    out = np.full(n, np.nan, np.float32)
    values, grid = [x.ctypes.data, y.ctypes.data, out.ctypes.data, n], (-(-n // block), 1, 1)
    prog.launch(values, grid)
    assert np.array_equal(out, x + y)
    best = min(_timed(lambda: prog.launch(values, grid)) for _ in range(repeats))
    numpy_best = min(_timed(lambda: np.add(x, y, out=out)) for _ in range(repeats))
    moved = 3 * 4 * n
    print(f"kdsl cpu: {best * 1e3:.2f} ms, {moved / best / 1e9:.1f} GB/s (1 thread)")
    print(f"numpy:    {numpy_best * 1e3:.2f} ms, {moved / numpy_best / 1e9:.1f} GB/s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
