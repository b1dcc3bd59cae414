"""The CPU lowers atomics to LLVM atomics with the ordering `sem` asks for (what keeps them correct
once programs run on several threads): integer kinds are `atomicrmw`, float add/max/min and
`atomic_cas` are `cmpxchg` (read without checked accesses, whose failure reports claim the launch's
status with a `cmpxchg` of their own)."""
import threading

import numpy as np
import pytest

import kdsl
import kdsl.language as kl


@kdsl.kernel
def one_atomic(i_ptr, f_ptr, SEM: kl.constexpr):
    offs = kl.arange(0, 4)
    kl.atomic_max(i_ptr + offs, 1, sem=SEM)
    kl.atomic_add(f_ptr + offs, 1.0, mask=offs < 2, sem=SEM)
    kl.atomic_cas(i_ptr, 0, 1, sem=SEM)


@pytest.mark.parametrize("sem, ordering, failure", [(None, "acq_rel", "acquire"), ("relaxed", "monotonic", "monotonic"),
                                                    ("acquire", "acquire", "acquire"),
                                                    ("release", "release", "monotonic")])
def test_sem_picks_the_llvm_ordering(sem, ordering, failure):
    llvm = one_atomic.compile(np.zeros(4, np.int32), np.zeros(4, np.float32), SEM=sem, checked=False).asm["llvm"]
    assert "atomicrmw max ptr" in llvm and f"i32 1 {ordering}" in llvm
    assert llvm.count("cmpxchg ptr") == 2
    assert f"{ordering} {failure}" in llvm


@kdsl.kernel
def seesaw(dst_ptr, n, SLOTS: kl.constexpr, BLOCK: kl.constexpr):
    """Lane i adds +1 or -1 to slot i % SLOTS, alternating along each slot: one launch leaves every
    slot as it was, and every partial sum of concurrent launches stays a small integer (exact in bf16)."""
    lane = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    step = kl.where((lane // SLOTS) % 2 == 0, 1.0, -1.0)
    kl.atomic_add(dst_ptr + lane % SLOTS, step, mask=lane < n, sem="relaxed")


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "bfloat16", np.float32, np.float64])
def test_concurrent_launches_lose_no_update(dtype):
    """Launches from several threads run the same kernel at once (ctypes releases the GIL): with
    anything but atomic read-modify-writes, updates to the shared slots would get lost."""
    dtype = np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    n, slots = 1 << 22, 4
    dst = np.zeros(slots, dtype)
    seesaw[(1,)](dst, 64, SLOTS=slots, BLOCK=64)  # compile before the threads start
    threads = [threading.Thread(target=lambda: seesaw[(n // 1024,)](dst, n, SLOTS=slots, BLOCK=1024))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(dst.astype(np.float64), np.zeros(slots))
