"""The device interface: memory spans copied to a device and back, any strides, on the simulator and a GPU."""
import numpy as np
import pytest

from kdsl.backend.cuda.device import SimDevice
from kdsl.runtime.arrays import host_view
from tests.cuda.lowered import VECTOR_ADD, needs_gpu
from tests.helpers import random_array

LAYOUTS = {
    "contiguous": lambda a: a,
    "every_other_row": lambda a: a[::2],
    "transposed": lambda a: a.T,
    "column_slice": lambda a: a[:, 3:7],
    "reversed_rows": lambda a: a[::-1],
    "negative_both": lambda a: a[::-2, ::-3],
    "negative_transposed": lambda a: a[1:, ::-1].T,
    "empty": lambda a: a[:0],
}


def device_view(device, buffer, like: np.ndarray) -> np.ndarray:
    """The device's copy of `like`, read back and seen through `like`'s own strides from the kernel pointer."""
    raw = np.zeros(buffer.nbytes, np.uint8)
    device.read(buffer.base, raw)
    return np.ndarray(like.shape, like.dtype, raw, buffer.pointer - buffer.base, like.strides)


def round_trip(device, view: np.ndarray) -> None:
    expected = view.copy()
    buffer = device.to_device(view)
    np.testing.assert_array_equal(device_view(device, buffer, view), expected)
    view[...] = -1
    device.to_host(buffer, view)
    device.free(buffer.base)
    np.testing.assert_array_equal(view, expected)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
def test_sim_round_trip_keeps_pointer_and_strides(layout, dtype):
    base = random_array(np.random.default_rng(), (12, 10), dtype)
    untouched = base.copy()
    view = layout(base)
    round_trip(SimDevice(), view)
    np.testing.assert_array_equal(base, untouched)


@pytest.mark.parametrize("make", [lambda torch: torch.randn(6, 5), lambda torch: torch.randn(6, 5).t(),
                                  lambda torch: torch.randn(8, 4, dtype=torch.bfloat16)[::2],
                                  lambda torch: torch.arange(7, dtype=torch.int64)])
def test_sim_round_trip_of_torch_cpu_tensors(make):
    torch = pytest.importorskip("torch")
    tensor = make(torch)
    expected = tensor.clone()
    view = host_view(tensor)
    assert view.ctypes.data == tensor.data_ptr()
    round_trip(SimDevice(), view)
    assert torch.equal(tensor, expected)


def test_freed_memory_is_reused_once_nothing_above_is_live():
    device = SimDevice()
    first = device.allocate(1000)
    device.free(device.allocate(4096))
    assert device.allocate(4096) > first
    device.free(first)
    assert device.memory.top > 0
    device.free(device.memory.starts[-1].item())
    assert device.memory.top == 0


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_cuda_round_trip_keeps_pointer_and_strides(layout):
    from kdsl.backend.cuda.driver import cuda_device

    round_trip(cuda_device(0), layout(random_array(np.random.default_rng(), (12, 10), np.float32)))


@needs_gpu
@pytest.mark.gpu
def test_cuda_device_launches_a_hand_written_kernel():
    from kdsl.backend.cuda.driver import cuda_device
    from kdsl.backend.cuda.program import pack_args
    from kdsl.backend.cuda.ptx import llvm_to_ptx
    from kdsl.ir import types as t

    device = cuda_device(0)
    _, ptx = llvm_to_ptx(VECTOR_ADD, device.arch)
    rng = np.random.default_rng()
    x, y = random_array(rng, 1000, np.float32), random_array(rng, 1000, np.float32)
    out = np.full(1024, np.nan, np.float32)
    bx, by, bout = device.to_device(x), device.to_device(y), device.to_device(out)
    pointer = t.PointerType(t.f32)
    device.launch(device.load_module(ptx), "k", (8, 1, 1), (128, 1, 1), 0,
                  pack_args([pointer, pointer, pointer, t.i32], [bx.pointer, by.pointer, bout.pointer, x.size]))
    device.synchronize()
    device.to_host(bout, out)
    np.testing.assert_array_equal(out[:1000], x + y)
    assert np.isnan(out[1000:]).all()
