"""The device interface shared by target="cuda" (`driver.CudaDevice`) and target="sim" (`SimDevice`).

A device has global memory (allocate, free, copies), loads PTX modules and launches
their entries. Arguments reach a launch packed: one `bytes` per kernel parameter,
little-endian, of the parameter's size.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from kdsl.runtime.arrays import memory_span
from kdsl.runtime.binding import DIVISIBILITY
from kdsl.sim import DeviceMemory, Module, load_module

Dims = tuple[int, int, int]


@dataclass(frozen=True)
class DeviceArray:
    """A host array's memory span copied to a device."""

    base: int  # the allocation
    pointer: int  # where the array's first element landed: what a kernel receives
    nbytes: int  # of the allocation, from `base`


class Device(ABC):
    """Global memory, modules and launches of one device."""

    target: str

    def __init__(self) -> None:
        self.lock = threading.RLock()  # held across a launch's copies, run and frees

    @abstractmethod
    def allocate(self, nbytes: int) -> int:
        """Reserve `nbytes` of global memory; returns their device address."""

    @abstractmethod
    def free(self, address: int) -> None: ...

    @abstractmethod
    def write(self, address: int, data: np.ndarray) -> None:
        """Copy the contiguous bytes `data` to `address`."""

    @abstractmethod
    def read(self, address: int, out: np.ndarray) -> None:
        """Fill the contiguous byte array `out` from `address`."""

    @abstractmethod
    def load_module(self, ptx: str) -> Any:
        """Load PTX text; the handle goes to `launch`."""

    @abstractmethod
    def launch(self, module: Any, entry: str, grid: Dims, block: Dims, shared_bytes: int,
               args: Sequence[bytes], stream: int = 0) -> None:
        """Run `entry` of `module` over `grid` × `block` with `shared_bytes` of dynamic shared memory."""

    def synchronize(self) -> None:
        """Wait for the work queued on the device (the simulator runs each launch to its end)."""

    def to_device(self, array: np.ndarray) -> DeviceArray:
        """Copy `array`'s memory span (any strides, negative too) to a new allocation, at the same
        address modulo DIVISIBILITY as on the host: a kernel specialised for a host pointer's
        divisibility (its vector accesses) gets a device pointer that has it too."""
        span, offset = memory_span(array)
        pad = span.ctypes.data % DIVISIBILITY if span.nbytes else 0
        base = self.allocate(pad + span.nbytes)
        self.write(base + pad, span)
        return DeviceArray(base, base + pad + offset, pad + span.nbytes)

    def to_host(self, buffer: DeviceArray, array: np.ndarray) -> None:
        """Copy `buffer` back over the memory span of `array`, the array it came from."""
        span, offset = memory_span(array)
        self.read(buffer.pointer - offset, span)


class SimDevice(Device):
    """kdsl.sim's simulated GPU: PTX runs on the CPU over a `DeviceMemory`."""

    target = "sim"

    def __init__(self, memory: DeviceMemory | None = None) -> None:
        super().__init__()
        self.memory = memory or DeviceMemory()

    def allocate(self, nbytes: int) -> int:
        return self.memory.allocate(nbytes)

    def free(self, address: int) -> None:
        self.memory.free(address)

    def write(self, address: int, data: np.ndarray) -> None:
        self.memory.copy_in(address, data)

    def read(self, address: int, out: np.ndarray) -> None:
        self.memory.copy_out(address, out)

    def load_module(self, ptx: str) -> Module:
        return load_module(ptx, self.memory)

    def launch(self, module: Module, entry: str, grid: Dims, block: Dims, shared_bytes: int,
               args: Sequence[bytes], stream: int = 0) -> None:
        raw = [(f"b{8 * len(a)}", int.from_bytes(a, "little")) for a in args]
        module.launch(entry, grid, block, raw, shared_bytes)


@lru_cache(maxsize=None)
def sim_device() -> SimDevice:
    """The process's simulated GPU (its memory is reused launch after launch)."""
    return SimDevice()
