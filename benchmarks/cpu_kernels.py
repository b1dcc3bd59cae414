"""The tutorial kernels on the CPU side by side with numpy and torch (when installed), in one process.

    python -m benchmarks.cpu_kernels [--quick]

Prints, per workload, the median time of each implementation, its bandwidth or
rate, and its ratio to kdsl (>1: kdsl is faster), plus kdsl's cold compile time.
Every result is checked against numpy before it is timed. kdsl and torch run on
`kdsl.get_num_threads()` threads (set it with KDSL_NUM_THREADS); numpy on one.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

import kdsl
import kdsl.language as kl
from kdsl.testing import do_bench


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) + kl.load(y_ptr + offs, mask=mask), mask=mask)


@kdsl.kernel
def softmax(out_ptr, in_ptr, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    offs = kl.arange(0, BLOCK)
    mask = offs < n_cols
    x = kl.load(in_ptr + row * n_cols + offs, mask=mask, other=-float("inf"))
    num = kl.exp(x - kl.max(x, axis=0))
    kl.store(out_ptr + row * n_cols + offs, num / kl.sum(num, axis=0), mask=mask)


@kdsl.kernel
def layer_norm(x_ptr, w_ptr, b_ptr, y_ptr, n_cols, eps, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    mean = kl.sum(x, axis=0) / n_cols
    xc = kl.where(mask, x - mean, 0.0)
    rstd = 1 / kl.sqrt(kl.sum(xc * xc, axis=0) / n_cols + eps)
    w = kl.load(w_ptr + cols, mask=mask)
    b = kl.load(b_ptr + cols, mask=mask)
    kl.store(y_ptr + row * n_cols + cols, xc * rstd * w + b, mask=mask)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def report(name: str, nbytes: int, runs: dict[str, Callable[[], object]], compile_ms: float) -> None:
    times = {impl: do_bench(fn, warmup=20, rep=200) for impl, fn in runs.items()}
    kdsl_ms = times["kdsl"]
    print(f"\n{name}  (kdsl cold compile {compile_ms:.0f} ms)")
    for impl, ms in times.items():
        print(f"  {impl:<8} {ms:9.3f} ms  {nbytes / ms / 1e6:7.1f} GB/s  kdsl speed-up x{ms / kdsl_ms:5.2f}")


def cold_compile_ms(kernel: kdsl.Kernel, *args, **meta) -> float:
    start = time.perf_counter()
    kernel.compile(*args, **meta)
    return (time.perf_counter() - start) * 1e3


def main(quick: bool = False) -> None:
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(kdsl.get_num_threads())
    rng = np.random.default_rng(0)
    n = 1 << (20 if quick else 24)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out = np.empty_like(x)
    compile_ms = cold_compile_ms(add, x, y, out, n, BLOCK=1024)
    launch = lambda: add[(kdsl.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)  # noqa: E731
    launch()
    np.testing.assert_array_equal(out, x + y)
    runs = {"kdsl": launch, "numpy": lambda: np.add(x, y, out=out)}
    if torch is not None:
        tx, ty, tout = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(out)
        runs["torch"] = lambda: torch.add(tx, ty, out=tout)
    report(f"vector add fp32, {n} elements", 3 * 4 * n, runs, compile_ms)

    rows, cols = (1024 if quick else 4096), 1024
    m = rng.standard_normal((rows, cols), dtype=np.float32)
    res = np.empty_like(m)
    compile_ms = cold_compile_ms(softmax, res, m, cols, BLOCK=1024)
    launch = lambda: softmax[(rows,)](res, m, cols, BLOCK=1024)  # noqa: E731
    launch()
    e = np.exp(m - m.max(axis=1, keepdims=True))
    np.testing.assert_allclose(res, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)

    def numpy_softmax():
        z = np.exp(m - m.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    runs = {"kdsl": launch, "numpy": numpy_softmax}
    if torch is not None:
        tm = torch.from_numpy(m)
        runs["torch"] = lambda: torch.softmax(tm, dim=1)
    report(f"row softmax fp32, {rows}x{cols}", 2 * 4 * rows * cols, runs, compile_ms)

    w, b = rng.standard_normal(cols, dtype=np.float32), rng.standard_normal(cols, dtype=np.float32)
    compile_ms = cold_compile_ms(layer_norm, m, w, b, res, cols, 1e-5, BLOCK=1024)
    launch = lambda: layer_norm[(rows,)](m, w, b, res, cols, 1e-5, BLOCK=1024)  # noqa: E731
    launch()
    mean = m.mean(axis=1, keepdims=True)
    ref = (m - mean) / np.sqrt(((m - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(res, ref, rtol=1e-4, atol=1e-4)

    def numpy_layer_norm():
        mu = m.mean(axis=1, keepdims=True)
        return (m - mu) / np.sqrt(m.var(axis=1, keepdims=True) + 1e-5) * w + b

    runs = {"kdsl": launch, "numpy": numpy_layer_norm}
    if torch is not None:
        tm, tw, tb = torch.from_numpy(m), torch.from_numpy(w), torch.from_numpy(b)
        runs["torch"] = lambda: torch.nn.functional.layer_norm(tm, (cols,), tw, tb, 1e-5)
    report(f"layer norm fp32, {rows}x{cols}", 2 * 4 * rows * cols, runs, compile_ms)
    print(f"\nkdsl threads: {kdsl.get_num_threads()}" + (f", torch threads: {torch.get_num_threads()}" if torch else ""))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
