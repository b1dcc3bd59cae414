"""Targets "cuda" and "sim" through the runtime: target selection, and the errors a launch gets without a GPU."""
import sys

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.testing import wall_time_ms
from tests.cuda.kernels import add
from tests.cuda.lowered import VECTOR_ADD, has_gpu, needs_gpu, substitute_lowering
from tests.helpers import poisoned, random_array

no_gpu = pytest.mark.skipif(has_gpu(), reason="a CUDA GPU is present")


@pytest.fixture
def torch_cuda(monkeypatch):
    """torch with CUDA, and the vector add kernel lowered by hand."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    substitute_lowering(monkeypatch, VECTOR_ADD)
    return torch


@kdsl.kernel
def fill(out_ptr, value, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, value, mask=offs < n)


class DeviceArray:
    """An array on a CUDA device as far as `__cuda_array_interface__` says (never dereferenced here)."""

    def __init__(self, n: int):
        self.__cuda_array_interface__ = {"shape": (n,), "typestr": "<f4", "data": (0x7000_0000, False),
                                         "version": 3}


@no_gpu
def test_cuda_launch_without_a_gpu_is_a_launch_error_naming_the_target():
    out = np.zeros(8, np.float32)
    with pytest.raises(kdsl.LaunchError, match="target 'cuda'"):
        fill[(1,)](out, 1.0, 8, BLOCK=8, target="cuda")
    with pytest.raises(kdsl.LaunchError, match="target 'cuda'"):
        fill.compile(out, 1.0, 8, BLOCK=8, target="cuda")  # no arch: the GPU's is needed


@no_gpu
def test_device_arrays_select_the_cuda_target():
    with pytest.raises(kdsl.LaunchError, match="target 'cuda'"):
        fill[(1,)](DeviceArray(8), 1.0, 8, BLOCK=8)


def test_sim_rejects_device_arrays(monkeypatch):
    substitute_lowering(monkeypatch, VECTOR_ADD)
    x = DeviceArray(16)
    with pytest.raises(kdsl.LaunchError, match="target 'sim' runs on host arrays"):
        add[(1,)](x, x, x, 16, BLOCK=16, target="sim")


@needs_gpu
@pytest.mark.gpu
def test_cuda_rejects_host_arrays(monkeypatch):
    substitute_lowering(monkeypatch, VECTOR_ADD)
    x = np.zeros(16, np.float32)
    with pytest.raises(kdsl.LaunchError, match="target 'cuda' needs arrays on the GPU"):
        add[(1,)](x, x, x, 16, BLOCK=16, target="cuda")


@needs_gpu
@pytest.mark.gpu
def test_vector_add_on_torch_cuda_tensors(torch_cuda):
    torch = torch_cuda
    n = 1000
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.full((n,), float("nan"), device="cuda")
    add[(kdsl.cdiv(n, 128),)](x, y, out, n, BLOCK=128, num_warps=4)
    torch.cuda.synchronize()
    assert torch.equal(out, x + y)


@needs_gpu
@pytest.mark.gpu
def test_sim_and_cuda_agree(torch_cuda):
    rng = np.random.default_rng()
    x, y = random_array(rng, 300, np.float32), random_array(rng, 300, np.float32)
    out = poisoned(300, np.float32)
    add[(3,)](x, y, out, 300, BLOCK=128, target="sim")
    gx, gy, gout = (torch_cuda.from_numpy(a).cuda() for a in (x, y, out))
    add[(3,)](gx, gy, gout, 300, BLOCK=128)
    np.testing.assert_array_equal(gout.cpu().numpy(), out)


def test_missing_cuda_python_is_a_launch_error(monkeypatch):
    from kdsl.backend.cuda.driver import CudaDevice

    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(kdsl.LaunchError, match=r"target 'cuda' needs cuda-python: pip install 'kdsl\[cuda\]'"):
        CudaDevice(0)


@needs_gpu
@pytest.mark.gpu
def test_gpu_work_is_timed_with_cuda_events(torch_cuda):
    from kdsl.backend.cuda.driver import cuda_device

    torch = torch_cuda
    a = torch.randn(4096, 4096, device="cuda")
    device = cuda_device(0)
    stream = torch.cuda.current_stream().cuda_stream
    # the host's clock sees only the enqueueing of an asynchronous matmul; events see its run
    assert device.time_ms(lambda: a @ a, stream) > 0.5 * wall_time_ms(
        lambda: (a @ a, torch.cuda.synchronize()))
