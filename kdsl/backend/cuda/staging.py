"""Host arrays on a device for one launch: copied in, the kernel run, copied back.

Each array travels as its whole memory span, so the kernel's pointer to the first
element and the user's strides mean there what they mean on the host. Arrays whose
spans overlap (one array passed twice, views of one buffer) share one device copy of
their joint span: the kernel sees one memory, as it would on the host, and copying
back cannot undo another argument's writes. Every writable array is copied back
(kdsl does not track which pointers a kernel stores through); read-only ones are not,
and nothing is copied back when the launch fails.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from kdsl.backend.cuda.device import Device
from kdsl.runtime.arrays import host_bytes, memory_span


@dataclass
class _Region:
    """Host bytes [low, high) holding the spans of `members` (argument index → first element address)."""

    low: int
    high: int
    members: dict[int, int] = field(default_factory=dict)
    writable: bool = False


def _regions(arrays: dict[int, np.ndarray]) -> list[_Region]:
    spans = []
    for index, array in arrays.items():
        span, offset = memory_span(array)
        low = span.ctypes.data
        spans.append((low, low + span.nbytes, index, low + offset, array.flags.writeable))
    regions: list[_Region] = []
    for low, high, index, first, writable in sorted(spans):
        if not regions or low >= regions[-1].high:
            regions.append(_Region(low, high))
        region = regions[-1]
        region.high = max(region.high, high)
        region.members[index] = first
        region.writable |= writable
    return regions


@contextmanager
def staged(device: Device, arrays: dict[int, np.ndarray]) -> Iterator[dict[int, int]]:
    """Device pointers for host `arrays` (by argument index), live inside the `with` block."""
    pointers: dict[int, int] = {}
    copies = []
    try:
        for region in _regions(arrays):
            host = host_bytes(region.low, region.high - region.low)
            copy = device.to_device(host)
            copies.append((region, host, copy))
            pointers.update({i: copy.pointer + first - region.low for i, first in region.members.items()})
        yield pointers
        for region, host, copy in copies:
            if region.writable:
                device.to_host(copy, host)
    finally:
        for _, _, copy in copies:
            device.free(copy.base)


def host_address(arrays: dict[int, np.ndarray], pointers: dict[int, int]) -> Callable[[int], int]:
    """Maps a device address within (or just past) a staged array's span to the host address it
    stands for, and any other address to itself: what a kernel's pointer values mean to the user."""
    spans = []
    for index, array in arrays.items():
        span, offset = memory_span(array)
        low = pointers[index] - offset
        spans.append((low, low + span.nbytes, span.ctypes.data - low))

    def to_host(address: int) -> int:
        return next((address + shift for low, high, shift in spans if low <= address <= high), address)
    return to_host
