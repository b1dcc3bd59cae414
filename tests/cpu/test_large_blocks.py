"""Blocks at the element limit do not overflow the caller's stack."""
import numpy as np

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned


@kdsl.kernel
def normalise(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    y = kl.exp(x) * 2 + x
    kl.store(out_ptr + offs, y / kl.sum(y, axis=0))


def test_block_of_a_million_elements():
    n = 1 << 20
    x = np.random.default_rng(0).random(n).astype(np.float32)
    out = poisoned(n, np.float32)
    normalise[(1,)](x, out, BLOCK=n)
    y = np.exp(x.astype(np.float64)) * 2 + x
    np.testing.assert_allclose(out, y / y.sum(), rtol=1e-3)
    assert normalise.compile(x, out, BLOCK=n).program.stack_bytes > 8 * n
