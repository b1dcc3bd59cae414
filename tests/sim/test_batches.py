"""CTAs that cannot wait for one another are simulated several at once (`Module.launch`):
each keeps its own shared memory, special registers and fault reports."""
import numpy as np
import pytest

import kdsl.sim as sim
from kdsl.errors import MemoryAccessError
from kdsl.sim import module

rng = np.random.default_rng()


def test_only_kernels_without_cross_cta_waiting_run_in_batches(cuda_ptx):
    m = sim.load_module(cuda_ptx)
    assert m.program("transpose").independent_ctas and m.program("saxpy").independent_ctas
    assert not m.program("histogram").independent_ctas  # global atomics: a CTA may spin on another
    assert m.program("shared_atomics").independent_ctas


@pytest.mark.parametrize("batch_threads", [1, 4096])
def test_each_cta_of_a_batch_has_its_own_shared_memory(cuda_ptx, monkeypatch, batch_threads):
    monkeypatch.setattr(module, "BATCH_THREADS", batch_threads)
    rows, cols = 150, 90  # 3 x 5 CTAs of 32x32 threads, four to a batch
    a = rng.random((rows, cols), np.float32)
    out = np.full((cols, rows), np.nan, np.float32)
    sim.launch_ptx(cuda_ptx, "transpose", (3, 5, 1), (32, 32, 1), [a, out, ("s32", rows), ("s32", cols)])
    np.testing.assert_array_equal(out, a.T)


def test_a_fault_in_a_batch_names_the_first_faulting_cta(cuda_ptx):
    n, block = 5000, 128
    x, y = rng.random(n, np.float32), rng.random(n, np.float32)
    out = np.zeros(1500, np.float32)  # element 1500 lies in CTA 11, which shares a batch with CTAs 0-31
    with pytest.raises(MemoryAccessError) as err:
        sim.launch_ptx(cuda_ptx, "saxpy", (-(-n // block), 1, 1), (block, 1, 1),
                       [x, y, out, ("f32", 2.0), ("s32", n)])
    assert err.value.block == (1500 // block, 0, 0)
    assert err.value.thread == (1500 % block, 0, 0)
