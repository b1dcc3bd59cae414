"""The CPU lowers atomics to LLVM atomics with the ordering `sem` asks for (what keeps them correct
once programs run on several threads): integer kinds are `atomicrmw`, float add/max/min and
`atomic_cas` are `cmpxchg`."""
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
    llvm = one_atomic.compile(np.zeros(4, np.int32), np.zeros(4, np.float32), SEM=sem).asm["llvm"]
    assert "atomicrmw max ptr" in llvm and f"i32 1 {ordering}" in llvm
    assert llvm.count("cmpxchg ptr") == 2
    assert f"{ordering} {failure}" in llvm
