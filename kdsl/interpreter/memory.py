"""Checked memory for interpreted kernels: the byte spans of a launch's arrays, nothing else.

Each array argument registers the bytes its elements cover (from its shape and
strides, negative strides included). Loads and stores go through numpy views of
those spans; an address outside every span, or misaligned for its type, raises
`MemoryAccessError` instead of touching memory.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Iterator

import numpy as np

from kdsl.errors import LaunchError
from kdsl.runtime.arrays import ArrayArg
from kdsl.runtime.bounds import Span, array_span, out_of_bounds


class WriteLog:
    """Which store wrote each address last, in an interpreted launch: the source line of every
    write, by address (what `kdsl.testing.compare_targets` reports next to a difference)."""

    def __init__(self) -> None:
        self.sites: list[tuple[str | None, int | None]] = []
        self._site_index: dict[tuple[str | None, int | None], int] = {}
        self._last: dict[int, int] = {}

    def site(self, where: dict[str, Any]) -> int:
        key = (where.get("file"), where.get("line"))
        if key not in self._site_index:
            self._site_index[key] = len(self.sites)
            self.sites.append(key)
        return self._site_index[key]

    def record(self, addresses: np.ndarray, site: int) -> None:
        self._last.update(dict.fromkeys(addresses.tolist(), site))

    def writer(self, address: int) -> tuple[str | None, int | None] | None:
        """(file, line) of the last store to the element at `address`, None if none wrote it."""
        site = self._last.get(address)
        return None if site is None else self.sites[site]


class CheckedMemory:
    """Reads and writes raw bits at uint64 addresses inside registered spans only.

    `where()` gives the details an error reports besides the address (kernel,
    line, program id).
    """

    def __init__(self, where: Callable[[], dict[str, Any]], writes: WriteLog | None = None):
        self.where = where
        self.writes = writes
        self.spans: list[Span] = []
        self._views: list[np.ndarray] = []

    def register(self, name: str, obj: Any, array: ArrayArg) -> None:
        """Make the elements of argument `name` (the array `obj`, adapted as `array`) accessible."""
        if array.device != "cpu":
            raise LaunchError(f"argument '{name}': the interpret target reads host memory only; "
                              f"this array lives on '{array.device}'")
        lo, hi = array_span(obj, array.address, array.dtype.bytes)
        if lo < hi:
            self.spans.append(Span(lo, hi, name, array.address, array.dtype.bytes, array.readonly))
        self._rebuild()

    def _rebuild(self) -> None:
        """Merge overlapping spans (aliasing arguments) so each address has one view."""
        merged: list[list[int]] = []
        for lo, hi in sorted((s.lo, s.hi) for s in self.spans):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._los = np.array([m[0] for m in merged], np.uint64)
        self._his = np.array([m[1] for m in merged], np.uint64)
        self._views = [np.ctypeslib.as_array((ctypes.c_uint8 * (hi - lo)).from_address(lo)) for lo, hi in merged]

    def read(self, addresses: np.ndarray, nbytes: int, mask: np.ndarray) -> np.ndarray:
        """The `nbytes`-wide bits at each address where `mask` holds; 0 elsewhere."""
        out = np.zeros(addresses.size, np.dtype(f"u{nbytes}"))
        for view, offsets, lanes in self._locate(addresses, nbytes, mask, "load"):
            raw = view[offsets[:, None] + np.arange(nbytes)]
            out[lanes] = np.ascontiguousarray(raw).view(out.dtype).reshape(-1)
        return out.reshape(addresses.shape)

    def write(self, addresses: np.ndarray, bits: np.ndarray, mask: np.ndarray) -> None:
        """Store `bits` at each address where `mask` holds (lanes in order: the last write wins)."""
        nbytes = bits.dtype.itemsize
        self._check_writable(addresses, mask)
        site = self.writes.site(self.where()) if self.writes is not None else None
        for view, offsets, lanes in self._locate(addresses, nbytes, mask, "store"):
            raw = np.ascontiguousarray(bits.reshape(-1)[lanes]).view(np.uint8).reshape(-1, nbytes)
            view[offsets[:, None] + np.arange(nbytes)] = raw
            if site is not None:
                self.writes.record(view.ctypes.data + offsets, site)

    def _locate(self, addresses: np.ndarray, nbytes: int, mask: np.ndarray,
                what: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per span: its view, the byte offsets of the active lanes in it, and those lanes' flat indices.

        Every active lane is checked before the first span is yielded, so a bad
        access raises before any memory is touched.
        """
        lanes = np.flatnonzero(np.broadcast_to(mask, addresses.shape))
        addr = addresses.reshape(-1)[lanes].astype(np.uint64)
        index = np.searchsorted(self._los, addr, side="right").astype(np.int64) - 1
        his = np.append(self._his, np.uint64(0))
        inside = (index >= 0) & (addr + np.uint64(nbytes) <= his[index])
        bad = ~inside | (addr % np.uint64(nbytes) != 0)
        if bad.any():
            first = np.argmax(bad)
            self._fail(int(addr[first]), what, f"misaligned for {nbytes}-byte elements" if inside[first]
                       else "outside every array argument")
        for i in np.unique(index):
            pick = index == i
            yield self._views[i], (addr[pick] - self._los[i]).astype(np.int64), lanes[pick]

    def _check_writable(self, addresses: np.ndarray, mask: np.ndarray) -> None:
        addr = addresses[np.broadcast_to(mask, addresses.shape)].astype(np.uint64)
        for span in (s for s in self.spans if s.readonly):
            hit = (addr >= np.uint64(span.lo)) & (addr < np.uint64(span.hi))
            if hit.any():
                self._fail(int(addr[np.argmax(hit)]), "store", f"into the read-only array '{span.name}'")

    def _fail(self, address: int, what: str, problem: str) -> None:
        where = self.where()
        raise out_of_bounds(where["kernel"], where["pid"], where["loc"], what, address, self.spans, problem)
