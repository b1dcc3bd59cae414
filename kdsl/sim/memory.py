"""Simulated memory: device (global) memory and the per-CTA address spaces.

Every space is a flat uint8 buffer; an access resolves addresses to byte
offsets into one buffer, after bounds and alignment checks. Generic addresses
(PTX ISA §6.4.1.1) map the shared and local windows below onto the state
spaces; everything else in a generic address is global.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdsl.errors import MemoryAccessError

GLOBAL_BASE = 1 << 40
SHARED_WINDOW = 0x7F00_0000_0000
LOCAL_WINDOW = 0x7E00_0000_0000
WINDOW_SIZE = 1 << 32
_ALIGN = 256
# unallocated bytes between allocations, so that an access running past one array's end (or
# before its start) faults rather than landing in the next array (as AddressSanitizer's red zones)
RED_ZONE = 1 << 16


def _align_up(x: int, a: int) -> int:
    return -(-x // a) * a


class DeviceMemory:
    """Global memory: a bump allocator over one growable byte buffer.

    Addresses start at `GLOBAL_BASE` so that null and small integers are never
    valid pointers; allocations are `RED_ZONE` bytes apart. A freed range is reused only once nothing above it is live (the
    top of the heap comes back down, so launch after launch needs no more memory);
    until then a stale pointer faults.
    """

    def __init__(self) -> None:
        self.data = np.zeros(1 << 16, np.uint8)
        self.top = 0
        self.starts = np.zeros(0, np.uint64)
        self.ends = np.zeros(0, np.uint64)

    def allocate(self, nbytes: int, align: int = _ALIGN) -> int:
        """Reserve `nbytes` and return their device address."""
        off = _align_up(self.top + (RED_ZONE if self.starts.size else 0), max(align, _ALIGN))
        need = off + max(nbytes, 1)
        if need > self.data.size:
            grown = np.zeros(_align_up(max(need * 2, self.data.size * 2), 1 << 16), np.uint8)
            grown[: self.data.size] = self.data
            self.data = grown
        self.top = need
        addr = GLOBAL_BASE + off
        self.starts = np.append(self.starts, np.uint64(addr))
        self.ends = np.append(self.ends, np.uint64(addr + nbytes))
        return addr

    def free(self, addr: int) -> None:
        i = np.flatnonzero(self.starts == np.uint64(addr))
        if i.size == 0:
            raise MemoryAccessError(f"free of {addr:#x}, which is not an allocation", address=addr)
        self.starts = np.delete(self.starts, i)
        self.ends = np.delete(self.ends, i)
        if i[0] == self.starts.size:  # the topmost allocation (they are in address order)
            self.top = int(self.starts[-1]) - GLOBAL_BASE + max(int(self.ends[-1] - self.starts[-1]), 1) \
                if self.starts.size else 0

    def copy_in(self, addr: int, array: np.ndarray | bytes) -> None:
        raw = np.frombuffer(bytes(array) if isinstance(array, (bytes, bytearray)) else
                            np.ascontiguousarray(array).tobytes(), np.uint8)
        off = self._host_offset(addr, raw.size)
        self.data[off: off + raw.size] = raw

    def copy_out(self, addr: int, out: np.ndarray) -> None:
        """Fill `out` (in place, any layout) from device memory at `addr`."""
        off = self._host_offset(addr, out.nbytes)
        flat = self.data[off: off + out.nbytes].view(out.dtype).reshape(out.shape)
        out[...] = flat

    def _host_offset(self, addr: int, nbytes: int) -> int:
        if self.first_outside(np.array([addr], np.uint64), nbytes) is not None:
            raise MemoryAccessError(f"host copy at {addr:#x}: address {addr:#x} is outside every global allocation",
                                    address=addr)
        return addr - GLOBAL_BASE

    def first_outside(self, addrs: np.ndarray, size: int) -> int | None:
        """The index of the first [addr, addr+size) not inside one live allocation, None if there is none."""
        idx = np.searchsorted(self.starts, addrs, side="right") - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        if self.ends.size:
            ok &= (addrs + np.uint64(size)) <= self.ends[safe]
        else:
            ok[:] = False
        return None if ok.all() else int(np.flatnonzero(~ok)[0])


@dataclass
class Access:
    """Resolved accesses: a flat byte buffer and byte offsets into it."""

    buffer: np.ndarray
    offsets: np.ndarray
    lanes: np.ndarray  # which of the requested addresses these are (index array)


def gather(buffer: np.ndarray, offsets: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Aligned loads of `dtype` at byte `offsets` (alignment checked by the caller)."""
    size = np.dtype(dtype).itemsize
    return buffer.view(dtype)[(offsets // np.uint64(size)).astype(np.intp)]


def scatter(buffer: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    size = values.dtype.itemsize
    buffer.view(values.dtype)[(offsets // np.uint64(size)).astype(np.intp)] = values
