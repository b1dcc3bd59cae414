"""`kl.device_print` and `kl.device_assert` on the GPU targets: the hidden debug buffer.

Design. A kernel containing `print` or `assert` ops takes one more parameter
than its IR function, after the others: a global pointer to a debug buffer the
host allocates for each launch. It works the same on `sim` and on a real GPU
(`cuda`), as it needs nothing but global loads, stores and atomics; PTX's
`vprintf`/`__assertfail` would need the simulator to implement CUDA's printf
buffer format, and could not stop other programs or carry kdsl's error. Kernels
without `print`/`assert` have no hidden parameter and pay nothing.

The buffer is 32-bit words: a header (`CURSOR` ... `FAILED_INDEX`), then the
record area of `capacity` words (`BUFFER_BYTES` minus the header; the host
writes the capacity into the header).

- A `print` is one record per thread holding any of its elements (thread 0
  for scalars and for a print without values): site id, program id x, y, z,
  the program's print counter (every thread counts the prints it runs; control
  flow is uniform across a program, so the counters agree), then for each
  operand and each register of its layout that is not a copy: the element's
  row-major index (`NO_ELEMENT` in threads holding only copies of it) and its
  bits (one word, two for 64-bit types; pointers as addresses). A thread claims
  its record's words with one `atom.global.add` on `CURSOR`; a record that does
  not fit in the capacity is not written but counted in `DROPPED`, and lowers
  `END` (initially the capacity) to its start with `atom.global.min`: every
  claim before it fits and every one after it starts past the capacity, so the
  written records are exactly the words before both `END` and `CURSOR`. After
  the launch the host reads the records, reassembles each print's values from
  its threads' records, and writes the lines, sorted by program (in launch
  order: z, then y, then x) and by print counter within a program, through
  `sys.stdout` (`kdsl.runtime.device_print`, shared with the CPU). A print some
  of whose records were dropped writes no lines; a `RuntimeWarning` gives the
  number of records dropped.
- An `assert` finds the program's first false element (the minimum row-major
  index of the failing elements, reduced across the CTA as `kl.min` is; a
  scalar condition every thread holds alike). Where one fails, thread 0 claims
  `FAILED_SITE` (compare-and-swap from 0 to site id + 1) and, if it won, fills
  `FAILED_PID` and `FAILED_INDEX`; then every thread of the program returns
  (the whole CTA together, so no barrier is left waiting). Kernels with asserts
  check `FAILED_SITE` at their start (thread 0 reads it, the CTA agrees through
  shared memory) and return at once when it is set: programs starting after a
  failure do nothing. Programs already running when another fails still run to
  their end or their own failed assertion (on a GPU these may be many, and the
  failure reported is the first to claim `FAILED_SITE`, not necessarily the
  lowest program id; the simulator runs the CTAs of such a kernel one after
  another, in launch order, so it reports the first in launch order and no
  other program runs). After the launch
  the host raises `kdsl.DeviceAssertionError` for the claimed failure (built by
  `kdsl.runtime.device_assert`, shared with the CPU), after the copy-back of
  host arrays (on `sim`) and after writing the prints' lines.

On `sim`, pointer values print as the host addresses of the user's arrays (the
simulator runs on copies; `staging.host_address` maps back); on `cuda` they are
device addresses, as in Triton.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from kdsl.backend.cuda.device import Device
from kdsl.interpreter.dtypes import elem_bytes
from kdsl.ir.types import PointerType, ScalarType, Type
from kdsl.runtime.device_assert import AssertSite
from kdsl.runtime.device_print import print_bits

CURSOR, CAPACITY, DROPPED, END, FAILED_SITE, FAILED_PID, FAILED_INDEX = 0, 1, 2, 3, 4, 5, 8
HEADER_WORDS = 9
RECORD_HEAD = 5  # site id, program id x, y, z, print counter
NO_ELEMENT = 0xFFFFFFFF
WORD_BYTES = 4
# The buffer each launch gets (header included): room for about half a million printed 32-bit elements.
BUFFER_BYTES = 4 << 20


def value_words(elem: ScalarType | PointerType) -> int:
    """Words of a printed element's bits: two for 64-bit types, else one (zero-extended)."""
    return 2 if elem_bytes(elem) == 8 else 1


@dataclass(frozen=True)
class PrintSite:
    """A `print` op: its prefix, hex flag and operand types, and the registers (not copies) of
    each operand's layout, which fix the size of its records."""

    prefix: str
    hex: bool
    types: tuple[Type, ...]
    registers: tuple[int, ...]

    @property
    def record_words(self) -> int:
        return RECORD_HEAD + sum(n * (1 + value_words(t.scalar)) for t, n in zip(self.types, self.registers))


DebugSite = Union[PrintSite, AssertSite]


@dataclass
class _Print:
    """One print run by one program, reassembled from its threads' records."""

    site: PrintSite
    pid: tuple[int, int, int]
    bits: list[np.ndarray]
    seen: list[np.ndarray]


@dataclass
class DebugOutput:
    """What a launch's debug buffer held: the prints, the records dropped, the failed assertion."""

    sites: Sequence[DebugSite]
    prints: dict[tuple[int, int, int, int], _Print]
    dropped: int
    failure: tuple[int, tuple[int, int, int], int] | None  # (site id, program id, element index)

    def report(self, kernel: str, host_address: Callable[[int], int]) -> None:
        """Write the prints' lines, warn about lost ones, raise the failed assertion's error."""
        for key in sorted(self.prints):
            p = self.prints[key]
            if not all(seen.all() for seen in p.seen):
                continue  # some of its records were dropped: the warning below says so
            operands = [(t, _addresses(bits, host_address) if isinstance(t.scalar, PointerType) else bits)
                        for t, bits in zip(p.site.types, p.bits)]
            print_bits(p.site.prefix, p.site.hex, p.pid, operands)
        if self.dropped:
            warnings.warn(f"kernel '{kernel}': {self.dropped} device_print records did not fit in the "
                          f"{BUFFER_BYTES}-byte debug buffer; the prints they belong to wrote no lines", RuntimeWarning,
                          stacklevel=5)  # the user's launch, through GpuProgram.launch and the Kernel
        if self.failure is not None:
            site_id, pid, index = self.failure
            site = self.sites[site_id]
            assert isinstance(site, AssertSite)
            raise site.error(kernel, pid, index)


def _addresses(bits: np.ndarray, host_address: Callable[[int], int]) -> np.ndarray:
    return np.array([host_address(int(a)) for a in bits], np.uint64)


def run_with_debug_buffer(device: Device, sites: Sequence[DebugSite],
                          launch: Callable[[list[bytes]], None]) -> DebugOutput | None:
    """`launch(extra_args)` with a fresh debug buffer as the extra argument where the kernel has
    debug sites (else no extra argument, and None); returns what the buffer held."""
    if not sites:
        launch([])
        return None
    capacity = BUFFER_BYTES // WORD_BYTES - HEADER_WORDS
    address = device.allocate(BUFFER_BYTES)
    try:
        header = np.zeros(HEADER_WORDS, np.uint32)
        header[CAPACITY] = header[END] = capacity
        device.write(address, header.view(np.uint8))
        launch([address.to_bytes(8, "little")])
        device.synchronize()
        device.read(address, header.view(np.uint8))
        used = min(int(header[CURSOR]), int(header[END]))
        records = np.zeros(used, np.uint32)
        device.read(address + HEADER_WORDS * WORD_BYTES, records.view(np.uint8))
    finally:
        device.free(address)
    failure = None
    if header[FAILED_SITE]:
        pid = tuple(int(p) for p in header[FAILED_PID:FAILED_PID + 3])
        failure = (int(header[FAILED_SITE]) - 1, pid, int(header[FAILED_INDEX]))
    return DebugOutput(sites, _prints(sites, records), int(header[DROPPED]), failure)  # type: ignore[arg-type]


def _prints(sites: Sequence[DebugSite], records: np.ndarray) -> dict[tuple[int, int, int, int], _Print]:
    """The records' prints by (z, y, x, print counter): launch order, then program order."""
    prints: dict[tuple[int, int, int, int], _Print] = {}
    at = 0
    while at < len(records):
        site = sites[int(records[at])]
        assert isinstance(site, PrintSite)
        x, y, z, counter = (int(w) for w in records[at + 1:at + RECORD_HEAD])
        key = (z, y, x, counter)
        if key not in prints:
            numels = [t.numel if t.is_block else 1 for t in site.types]
            prints[key] = _Print(site, (x, y, z), [np.zeros(n, np.uint64) for n in numels],
                                 [np.zeros(n, bool) for n in numels])
        p = prints[key]
        at += RECORD_HEAD
        for k, (t, n) in enumerate(zip(site.types, site.registers)):
            width = 1 + value_words(t.scalar)
            entries = records[at:at + n * width].reshape(n, width).astype(np.uint64)
            at += n * width
            held = entries[entries[:, 0] != NO_ELEMENT]
            value = held[:, 1] if width == 2 else held[:, 1] | held[:, 2] << np.uint64(32)
            p.bits[k][held[:, 0]] = value
            p.seen[k][held[:, 0]] = True
    return prints
