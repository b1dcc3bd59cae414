"""Tools for measuring and checking kernels: `do_bench`, and `compare_targets` (kdsl.compare)."""
from __future__ import annotations

import statistics
import time
from typing import Callable

from kdsl.compare import Comparison, Difference, compare_targets

__all__ = ["Comparison", "Difference", "compare_targets", "do_bench", "wall_time_ms"]


def wall_time_ms(fn: Callable[[], object]) -> float:
    """How long one call of `fn` takes by the host's clock, in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def do_bench(fn: Callable[[], object], warmup: float = 25, rep: float = 100, max_runs: int = 10_000,
             time_ms: Callable[[Callable[[], object]], float] = wall_time_ms) -> float:
    """The median time of `fn()` in milliseconds, each call measured by `time_ms` (the host's
    clock by default; GPU work is timed with CUDA events, `driver.CudaDevice.time_ms`).

    Runs `fn` for about `warmup` ms unmeasured, then for about `rep` ms (at least
    five runs, at most `max_runs`), as `triton.testing.do_bench` does.
    """
    first = max(time_ms(fn), 1e-4)
    for _ in range(int(warmup / first)):
        fn()
    runs = max(5, min(max_runs, int(rep / first)))
    return statistics.median(time_ms(fn) for _ in range(runs))
