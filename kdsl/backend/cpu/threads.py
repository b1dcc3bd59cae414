"""Running a launch's programs on several native threads.

A launch hands out chunks of consecutive program ids, one at a time, to the
calling thread and to a pool of native worker threads (`pool_code`: they never
take the GIL, and stay awake for about 150 microseconds after each launch, so that
launches in a row do not pay for waking them); each chunk is one call of the
compiled launcher. The calling thread makes one ctypes call for the whole
launch, which releases the GIL. A program always runs whole on one thread, so
its `device_print` lines keep their order; lines of different programs may
interleave. A failed `device_assert` claims the launch's status, and every
thread stops after its current program (see `lower_debug`). Launches from
several Python threads take turns on the pool; a forked child starts its own.
Without Linux futexes (the pool waits on them) the programs run on the calling
thread, or on one worker where their stacks need more than it has.

The thread count is `len(os.sched_getaffinity(0))`, or `KDSL_NUM_THREADS`, or
what `kdsl.set_num_threads(n)` set last.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import threading
from functools import lru_cache
from typing import Any, Callable

from kdsl.backend.cpu.abi import POOL_RUN, POOL_SLOT, POOL_SLOTS, POOL_STOP, POOL_WORKER, pool_supported
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
    """`size` native workers (`pool_code`) with stacks of `stack` bytes, waiting on `state`."""

    def __init__(self, size: int, stack: int):
        code = _pool_code()
        self.size, self.stack = size, stack
        self.state = (ctypes.c_int64 * len(POOL_SLOTS))()
        self.state[POOL_SLOT["workers"]] = size
        self._run = _RUN_TYPE(code.address(POOL_RUN))
        self._stop = _STOP_TYPE(code.address(POOL_STOP))
        self._worker_args = [(ctypes.c_int64 * 2)(ctypes.addressof(self.state), k) for k in range(size)]
        self._threads: list[ctypes.c_ulong] = []
        libc = _libc()
        attr = ctypes.create_string_buffer(_PTHREAD_ATTR_BYTES)
        libc.pthread_attr_init(attr)
        libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(stack))
        try:
            for args in self._worker_args:
                thread = ctypes.c_ulong()
                if libc.pthread_create(ctypes.byref(thread), attr, ctypes.c_void_p(code.address(POOL_WORKER)),
                                       ctypes.c_void_p(ctypes.addressof(args))) != 0:
                    self.retire()
                    raise LaunchError(f"could not start a thread for CPU programs ({len(self._threads)} running)")
                self._threads.append(thread)
        finally:
            libc.pthread_attr_destroy(attr)
        self._code = code

    def run(self, entry: int, argv: int, total: int, chunk: int, grid: tuple[int, int, int], status: int,
            workers: int, caller_runs: bool) -> None:
        """Run programs 0..total on the first `workers` workers (and the caller if it `caller_runs`)."""
        self._run(ctypes.addressof(self.state), entry, argv, total, chunk, *grid, status, workers, int(caller_runs))

    def retire(self) -> None:
        """Stop the workers and wait for them to end."""
        self._stop(ctypes.addressof(self.state))
        for thread in self._threads:
            _libc().pthread_join(thread, None)
        self._threads = []


_RUN_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                             ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64,
                             ctypes.c_int64)
_STOP_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PTHREAD_ATTR_BYTES = 128  # glibc's pthread_attr_t is 56 bytes on 64-bit machines


@lru_cache(maxsize=None)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    libc.pthread_attr_setstacksize.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


@lru_cache(maxsize=None)
def _pool_code() -> Any:
    """The pool's machine code: from the on-disk cache, else compiled by LLVM (and stored)."""
    from kdsl import cache
    from kdsl.backend.cpu.program import load_code

    entry = pool_cache_key()
    data = cache.load(entry)
    if not isinstance(data, bytes):
        from llvmlite import ir

        from kdsl.backend.cpu import pool_code
        from kdsl.backend.cpu.jit import compile_object, host_triple

        module = ir.Module(name="kdsl_pool")
        module.triple = host_triple()
        pool_code.emit(module)
        data = compile_object(str(module))[1]
        cache.store(entry, data)
    return load_code(data)


def pool_cache_key() -> str:
    """The on-disk cache's key for the pool's code."""
    from kdsl import cache
    from kdsl.backend.cpu.host import host_identity

    return cache.key("cpu thread pool", host_identity())


def _workers(count: int, stack: int) -> _Pool:
    """A pool of at least `count` workers with stacks of at least `stack` bytes."""
    global _pool
    if _pool is None or _pool.size < count or _pool.stack < stack:
        first = _pool is None
        if not first:
            _pool.retire()
        _pool = _Pool(count, max(stack, MIN_WORKER_STACK))
        if first:  # after the pool's code is loaded: exit handlers run last-registered first, and
            atexit.register(_retire)  # the one that unmaps code (weakref.finalize's) may be the code's
    return _pool


def _forget_pool() -> None:
    """In a forked child: the workers stayed in the parent (their state too), so the next launch
    starts a pool of its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _retire() -> None:
    """At exit, before the code the workers wait in is unmapped."""
    with _pool_lock:
        if _pool is not None:
            _pool.retire()


def run_programs(entry: int, direct: Callable[..., None], argv: int, total: int, grid: tuple[int, int, int],
                 status: int, threads: int, stack: int, caller_may_run: bool) -> None:
    """Run programs 0..total of the compiled launcher at `entry` (see `launcher`; `direct` calls
    it from Python) on `threads` threads (the caller's among them when `caller_may_run`), in
    chunks of consecutive ids, until done or a program fails an assertion (`status`)."""
    if not pool_supported():
        _on_one_thread(lambda: direct(argv, 0, total, *grid, status), None if caller_may_run else stack)
        return
    workers = threads - 1 if caller_may_run else threads
    if workers == 0:
        direct(argv, 0, total, *grid, status)
        return
    chunk = max(1, -(-total // (threads * CHUNKS_PER_THREAD)))
    with _pool_lock:
        _workers(workers, stack).run(entry, argv, total, chunk, grid, status, workers, caller_may_run)


def _on_one_thread(run: Callable[[], None], stack: int | None) -> None:
    """`run()` on the calling thread, or where `stack` bytes are needed, on a thread of its own
    with that much stack (the ctypes call inside releases the GIL)."""
    if stack is None:
        run()
        return
    previous = threading.stack_size(max(stack, MIN_WORKER_STACK))
    try:
        thread = threading.Thread(target=run, name="kdsl-program")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
