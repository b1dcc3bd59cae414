"""target="cuda": a GPU through the CUDA driver API of cuda-python (`cuda.bindings.driver`), imported lazily.

kdsl works in the device's primary context (the one torch and the CUDA runtime use), loads
PTX with `cuModuleLoadData` (the driver compiles it for the GPU) and launches on the
current stream: torch's when torch CUDA tensors are passed, else the default stream.
Anything missing on the way (cuda-python, the driver, a GPU) is a `LaunchError` naming
the target.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from kdsl.backend.cuda.device import Device, Dims
from kdsl.backend.cuda.ptx import ARCHES
from kdsl.errors import LaunchError

# Above this much dynamic shared memory a kernel must opt in (cuFuncSetAttribute).
DEFAULT_SHARED_LIMIT = 48 * 1024


def _driver() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError:
        raise LaunchError("target 'cuda' needs cuda-python: pip install 'kdsl[cuda]'") from None
    return driver


@dataclass
class CudaModule:
    """A loaded module and the functions looked up in it so far."""

    handle: Any
    functions: dict[str, Any] = field(default_factory=dict)


class CudaDevice(Device):
    """One GPU, through its primary context."""

    target = "cuda"

    def __init__(self, ordinal: int = 0) -> None:
        super().__init__()
        self.driver = _driver()
        try:
            self._check(self.driver.cuInit(0), "cuInit")
            self.device = self._check(self.driver.cuDeviceGet(ordinal), "cuDeviceGet")
            self.context = self._check(self.driver.cuDevicePrimaryCtxRetain(self.device), "cuDevicePrimaryCtxRetain")
        except LaunchError:
            raise
        except Exception as e:  # cuda-python raises when it finds no driver library at all
            raise LaunchError(f"target 'cuda' is not available: {e}") from None
        self.ordinal = ordinal
        major, minor = (self._check(self.driver.cuDeviceGetAttribute(getattr(
            self.driver.CUdevice_attribute, f"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{part}"), self.device),
            "cuDeviceGetAttribute") for part in ("MAJOR", "MINOR"))
        self.arch = arch_for(major, minor)

    def _check(self, result: tuple, call: str) -> Any:
        err, *values = result
        if err != self.driver.CUresult.CUDA_SUCCESS:
            _, name = self.driver.cuGetErrorName(err)
            what = name.decode() if isinstance(name, bytes) else str(err)
            raise LaunchError(f"target 'cuda': {call} failed with {what}")
        return values[0] if len(values) == 1 else tuple(values)

    def _enter(self) -> None:
        self._check(self.driver.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")

    def allocate(self, nbytes: int) -> int:
        self._enter()
        return int(self._check(self.driver.cuMemAlloc(max(nbytes, 1)), "cuMemAlloc"))

    def free(self, address: int) -> None:
        self._enter()
        self._check(self.driver.cuMemFree(address), "cuMemFree")

    def write(self, address: int, data: np.ndarray) -> None:
        self._enter()
        if data.nbytes:
            self._check(self.driver.cuMemcpyHtoD(address, data.ctypes.data, data.nbytes), "cuMemcpyHtoD")

    def read(self, address: int, out: np.ndarray) -> None:
        self._enter()
        if out.nbytes:
            self._check(self.driver.cuMemcpyDtoH(out.ctypes.data, address, out.nbytes), "cuMemcpyDtoH")

    def load_module(self, ptx: str) -> CudaModule:
        self._enter()
        return CudaModule(self._check(self.driver.cuModuleLoadData(ptx.encode() + b"\0"), "cuModuleLoadData"))

    def launch(self, module: CudaModule, entry: str, grid: Dims, block: Dims, shared_bytes: int,
               args: Sequence[bytes], stream: int = 0) -> None:
        self._enter()
        function = self._function(module, entry, shared_bytes)
        values = [ctypes.create_string_buffer(a, len(a)) for a in args]
        pointers = (ctypes.c_void_p * max(len(values), 1))(*(ctypes.addressof(v) for v in values))
        self._check(self.driver.cuLaunchKernel(function, *grid, *block, shared_bytes, stream,
                                               ctypes.addressof(pointers), 0), "cuLaunchKernel")

    def synchronize(self) -> None:
        self._enter()
        self._check(self.driver.cuCtxSynchronize(), "cuCtxSynchronize")

    def time_ms(self, fn: Any, stream: int = 0) -> float:
        """How long the GPU work `fn()` enqueues on `stream` takes, by CUDA events (as Triton's
        do_bench), not the host's clock, which sees only the asynchronous enqueueing."""
        self._enter()
        flags = self.driver.CUevent_flags.CU_EVENT_DEFAULT
        start, end = (self._check(self.driver.cuEventCreate(flags), "cuEventCreate") for _ in range(2))
        try:
            self._check(self.driver.cuEventRecord(start, stream), "cuEventRecord")
            fn()
            self._check(self.driver.cuEventRecord(end, stream), "cuEventRecord")
            self._check(self.driver.cuEventSynchronize(end), "cuEventSynchronize")
            return float(self._check(self.driver.cuEventElapsedTime(start, end), "cuEventElapsedTime"))
        finally:
            for event in (start, end):
                self.driver.cuEventDestroy(event)

    def _function(self, module: CudaModule, entry: str, shared_bytes: int) -> Any:
        function = module.functions.get(entry)
        if function is None:
            function = self._check(self.driver.cuModuleGetFunction(module.handle, entry.encode()),
                                   f"cuModuleGetFunction({entry!r})")
            module.functions[entry] = function
        if shared_bytes > DEFAULT_SHARED_LIMIT:
            attribute = self.driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            self._check(self.driver.cuFuncSetAttribute(function, attribute, shared_bytes), "cuFuncSetAttribute")
        return function


def arch_for(major: int, minor: int) -> str:
    """The newest architecture kdsl compiles for that a GPU of compute capability major.minor runs.

    PTX for an older architecture runs on newer GPUs (the driver compiles it); the "a"
    variants (sm_90a) run only on their own GPU and are chosen only by asking for them.
    """
    capability = major * 10 + minor
    usable = [a for a in ARCHES if not a.endswith("a") and int(a[3:]) <= capability]
    if not usable:
        raise LaunchError(f"target 'cuda': the GPU has compute capability {major}.{minor}; "
                          f"kdsl compiles for {', '.join(ARCHES)}")
    return max(usable, key=lambda a: int(a[3:]))


@lru_cache(maxsize=None)
def cuda_device(ordinal: int = 0) -> CudaDevice:
    return CudaDevice(ordinal)


def _torch_cuda_tensors(arrays: Sequence[Any]) -> list[Any]:
    return [a for a in arrays if type(a).__module__.startswith("torch") and getattr(a, "is_cuda", False)]


def device_for(arrays: Sequence[Any]) -> tuple[CudaDevice, int]:
    """The GPU a launch runs on and the stream: the torch tensors' device and torch's current stream
    there when torch CUDA tensors are among `arrays`, else device 0 and its default stream."""
    tensors = _torch_cuda_tensors(arrays)
    if not tensors:
        return cuda_device(0), 0
    import torch

    ordinal = tensors[0].device.index or 0
    return cuda_device(ordinal), torch.cuda.current_stream(ordinal).cuda_stream
