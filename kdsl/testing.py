"""Tools for measuring and checking kernels."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def do_bench(fn: Callable[[], object], warmup: float = 25, rep: float = 100, max_runs: int = 10_000) -> float:
    """The median wall time of `fn()` in milliseconds.

    Runs `fn` for about `warmup` ms unmeasured, then for about `rep` ms (at least
    five runs, at most `max_runs`), as `triton.testing.do_bench` does.
    """
    start = time.perf_counter()
    fn()
    first = max(time.perf_counter() - start, 1e-7)
    for _ in range(int(warmup / 1e3 / first)):
        fn()
    runs = max(5, min(max_runs, int(rep / 1e3 / first)))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3
