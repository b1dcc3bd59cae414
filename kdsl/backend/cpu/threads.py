"""Running a launch's programs on several native threads.

A launch hands out chunks of consecutive program ids, one at a time, to the
calling thread and to workers of a pool; each chunk is one call of the
compiled launcher through ctypes, which releases the GIL for the call, so the
chunks run in parallel. A program always runs whole on one thread, so its
`device_print` lines keep their order; lines of different programs may
interleave. A failed `device_assert` claims the launch's status, and every
thread stops after its current program (see `lower_debug`).

The thread count is `len(os.sched_getaffinity(0))`, or `KDSL_NUM_THREADS`, or
what `kdsl.set_num_threads(n)` set last.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
from typing import Callable

from kdsl.errors import LaunchError

THREADS_ENV = "KDSL_NUM_THREADS"
CHUNKS_PER_THREAD = 4
MIN_WORKER_STACK = 8 << 20

_num_threads: int | None = None
_pool_lock = threading.Lock()
_pool: _Pool | None = None


def _valid(n: object, source: str) -> int:
    try:
        count = int(n)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise LaunchError(f"{source} must be a positive number of threads, got {n!r}")
    return count


def set_num_threads(n: int) -> None:
    """Run the programs of later CPU launches on `n` threads."""
    global _num_threads
    _num_threads = _valid(n, "kdsl.set_num_threads")


def get_num_threads() -> int:
    """The number of threads CPU launches run on."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get(THREADS_ENV)
    if env is not None:
        return _valid(env, THREADS_ENV)
    return len(os.sched_getaffinity(0))


class _Pool:
    """Daemon worker threads with stacks of `stack` bytes, running jobs from a queue."""

    def __init__(self, size: int, stack: int):
        self.size, self.stack = size, stack
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        previous = threading.stack_size(stack)
        try:
            for k in range(size):
                threading.Thread(target=self._work, name=f"kdsl-worker-{k}", daemon=True).start()
        finally:
            threading.stack_size(previous)

    def _work(self) -> None:
        while True:
            job, done = self.jobs.get()
            if job is None:
                return
            try:
                job()
            finally:
                done.release()

    def run(self, job: Callable[[], None], copies: int) -> threading.Semaphore:
        """Start `copies` runs of `job`; the semaphore is released once per finished run."""
        done = threading.Semaphore(0)
        for _ in range(copies):
            self.jobs.put((job, done))
        return done

    def retire(self) -> None:
        for _ in range(self.size):
            self.jobs.put((None, None))


def _workers(count: int, stack: int) -> _Pool:
    """A pool of at least `count` workers with stacks of at least `stack` bytes."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size < count or _pool.stack < stack:
            if _pool is not None:
                _pool.retire()
            _pool = _Pool(count, max(stack, MIN_WORKER_STACK))
        return _pool


def run_programs(run_range: Callable[[int, int], None], total: int, threads: int, stack: int,
                 caller_may_run: bool, stopped: Callable[[], bool]) -> None:
    """Call `run_range(begin, end)` over chunks covering programs 0..total on `threads` threads
    (the caller's among them when `caller_may_run`), until done or `stopped()`."""
    chunk = max(1, -(-total // (threads * CHUNKS_PER_THREAD)))
    starts = itertools.count(0, chunk)

    def job() -> None:
        for begin in starts:
            if begin >= total or stopped():
                return
            run_range(begin, min(begin + chunk, total))
    helpers = threads - 1 if caller_may_run else threads
    done = _workers(helpers, stack).run(job, helpers)
    try:
        if caller_may_run:
            job()
    finally:
        for _ in range(helpers):
            done.acquire()
