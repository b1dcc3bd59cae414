"""Host arrays staged on the simulator keep their address modulo 16, the divisibility kernels are
specialised for (see runtime/binding.py), however their memory spans group into regions."""
import numpy as np

from kdsl.backend.cuda.device import SimDevice
from kdsl.backend.cuda.staging import staged
from kdsl.runtime.binding import DIVISIBILITY
from tests.helpers import random_array


def test_views_sharing_a_region_keep_their_alignment():
    buffer = random_array(np.random.default_rng(), 64, np.float32)
    views = {0: buffer[1:], 1: buffer[4:40], 2: buffer[7::2]}
    with staged(SimDevice(), views) as pointers:
        for i, view in views.items():
            assert pointers[i] % DIVISIBILITY == view.ctypes.data % DIVISIBILITY


def test_round_trip_of_an_array_off_a_16_byte_boundary():
    device = SimDevice()
    parent = random_array(np.random.default_rng(), 40, np.float64)
    x, expected = parent[1::3], parent[1::3].copy()
    copy = device.to_device(x)
    assert copy.pointer % DIVISIBILITY == x.ctypes.data % DIVISIBILITY
    parent[:] = np.nan
    device.to_host(copy, x)
    np.testing.assert_array_equal(x, expected)
