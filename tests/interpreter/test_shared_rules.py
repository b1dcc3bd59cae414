"""The interpreter and the compiler reject the same kernels with the same words: one set of typing rules."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl


@kdsl.kernel
def floor_of_floats(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 4))
    kl.store(x_ptr + kl.arange(0, 4), x // 2.0)


@kdsl.kernel
def runtime_arange(x_ptr, n):
    kl.store(x_ptr + kl.arange(0, n), 1.0)


@kdsl.kernel
def power_of_a_block(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 4))
    kl.store(x_ptr + kl.arange(0, 4), x ** 0.5)


@kdsl.kernel
def too_big_constant(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 4))
    kl.store(x_ptr + kl.arange(0, 4), x + 300)


@kdsl.kernel
def bad_index(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 4))
    kl.store(x_ptr + kl.arange(0, 4), x[0])


@pytest.mark.parametrize("kernel, args", [
    (floor_of_floats, (np.zeros(4, np.float32),)),
    (runtime_arange, (np.zeros(4, np.float32), 4)),
    (power_of_a_block, (np.zeros(4, np.float32),)),
    (too_big_constant, (np.zeros(4, np.int8),)),
    (bad_index, (np.zeros(4, np.float32),)),
])
def test_both_targets_give_one_reason_at_one_line(kernel, args):
    with pytest.raises(kdsl.CompilationError) as compiled:
        kernel.compile(*args, target="cpu")
    with pytest.raises(kdsl.CompilationError) as interpreted:
        kernel[(1,)](*args, target="interpret")
    assert interpreted.value.reason == compiled.value.reason
    assert interpreted.value.loc == compiled.value.loc
