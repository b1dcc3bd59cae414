"""The memory an array argument spans, and what an access outside it reports.

An array's span is the bytes its elements cover, from its shape and strides (negative strides
included), not the allocation it may be a view of: a kernel given `x[1:]` has no business with
`x[0]`. The interpreter checks every access against the spans of all arguments; compiled CPU code
checks each access against the arguments its pointer derives from (`AccessSite`). Both report an
access outside them with `out_of_bounds`, which names the kernel, the program, the source line
and the element offset from the nearest argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kdsl.errors import Loc, MemoryAccessError
from kdsl.runtime.arrays import is_torch_tensor


@dataclass
class Span:
    """Bytes [lo, hi) of host memory, and the argument whose first element is at `base`."""

    lo: int
    hi: int
    name: str
    base: int
    itemsize: int
    readonly: bool = False


def array_span(obj: Any, address: int, itemsize: int) -> tuple[int, int]:
    """The byte range [lo, hi) the elements of `obj` (whose first element is at `address`)
    cover; empty (address, address) when it has no elements."""
    contiguous = obj.flags.c_contiguous if isinstance(obj, np.ndarray) else is_torch_tensor(obj) and obj.is_contiguous()
    if contiguous:
        return address, address + obj.nbytes
    if isinstance(obj, int):  # a bare address, as tests of compiled IR pass: no elements of its own
        return address, address
    shape, strides = _layout(obj, itemsize)
    if any(d == 0 for d in shape):
        return address, address
    lo = address + sum(min(0, (d - 1) * s) for d, s in zip(shape, strides))
    hi = address + sum(max(0, (d - 1) * s) for d, s in zip(shape, strides)) + itemsize
    return lo, hi


def _layout(obj: Any, itemsize: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shape and byte strides of an array-like object."""
    if isinstance(obj, np.ndarray):
        return obj.shape, obj.strides
    if hasattr(obj, "stride") and hasattr(obj, "shape") and callable(obj.stride):
        return tuple(obj.shape), tuple(s * itemsize for s in obj.stride())
    iface = getattr(obj, "__array_interface__", None) or getattr(obj, "__cuda_array_interface__", None)
    if iface is None:
        array = np.from_dlpack(obj)
        return array.shape, array.strides
    shape = tuple(iface["shape"])
    strides = iface.get("strides")
    if strides is None:
        strides = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * itemsize for i in range(len(shape)))
    return shape, tuple(strides)


def nearest(spans: list[Span], address: int) -> Span | None:
    """The span holding `address`, else the one closest to it; None if there are none."""
    if not spans:
        return None
    return min(spans, key=lambda s: 0 if s.lo <= address < s.hi else min(abs(address - s.lo), abs(address - s.hi)))


def out_of_bounds(kernel: str, pid: tuple[int, int, int], loc: Loc | None, what: str, address: int,
                  spans: list[Span], problem: str, index: tuple[int, ...] | None = None) -> MemoryAccessError:
    """The error for a `what` ("load", "store", ...) at `address` that `problem` describes; the
    offset is counted in elements from the first element of the nearest of `spans`."""
    span = nearest(spans, address)
    if span is not None:
        offset: int | None = (address - span.base) // span.itemsize
        place = f"'{span.name}' + {offset} elements (address {address:#x})"
    else:
        offset, place = None, f"address {address:#x}"
    known = loc is not None and loc.line > 0
    where = f"{loc.file}:{loc.line}" if known else "an unknown line"
    element = "" if index is None else f", element {index}"
    excerpt = loc.excerpt() if known else ""
    return MemoryAccessError(
        f"kernel '{kernel}', program {pid}, {where}{element}: {what} of {place}: {problem}"
        + (f"\n{excerpt}" if excerpt else ""),
        kernel=kernel, pid=pid, file=loc.file if known else None, line=loc.line if known else None,
        index=index, offset=offset, argument=span.name if span is not None else None, address=address)


@dataclass(frozen=True)
class AccessSite:
    """A checked load, store or atomic of compiled code: where it is, what it does, the shape of its
    pointer block (() for a scalar) and the arguments (their indices) its pointer may point into."""

    loc: Loc
    what: str
    shape: tuple[int, ...]
    arguments: tuple[int, ...]

    def error(self, kernel: str, pid: tuple[int, int, int], index: int, address: int,
              spans: list[Span | None]) -> MemoryAccessError:
        """The error for row-major element `index` of program `pid` accessing `address`, given
        the span of each kernel argument (None for the ones that are not arrays)."""
        mine = [span for span in (spans[i] for i in self.arguments) if span is not None]
        names = " or ".join(f"'{span.name}' ({(span.hi - span.lo) // span.itemsize} elements)" for span in mine)
        coords = tuple(int(i) for i in np.unravel_index(index, self.shape)) if self.shape else None
        return out_of_bounds(kernel, tuple(int(p) for p in pid), self.loc, self.what, address, mine,  # type: ignore[arg-type]
                             f"outside the array {names}", coords)
