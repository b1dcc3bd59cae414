"""`compile_gpu` and `GpuProgram`: the GPU path's interface to the runtime, for targets "cuda" and "sim".

The lowering hands over a kernel in LLVM IR (`LoweredKernel`); from there both targets
share everything: LLVM → PTX, argument packing, launch geometry. They differ in the
device only: "sim" copies host arrays to the simulator's memory and back around each
launch, "cuda" takes arrays already on the GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from kdsl.runtime.scalar_bits import scalar_bits
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.debug_buffer import DebugSite, run_with_debug_buffer
from kdsl.backend.cuda.device import Device, Dims, sim_device
from kdsl.backend.cuda.ptx import llvm_to_ptx
from kdsl.backend.cuda.staging import host_address, staged
from kdsl.errors import LaunchError, Loc, MemoryAccessError
from kdsl.ir.types import PointerType, ScalarType, Type
from kdsl.runtime.arrays import host_view
from kdsl.runtime.binding import BoundLaunch
from kdsl.runtime.bounds import Span, array_span, nearest, out_of_bounds

WARP_SIZE = 32
POINTER_BYTES = 8
_ACCESS_NAMES = {"ld": "load", "st": "store", "atom": "atomic", "red": "atomic", "cp": "copy"}


class LoweredKernel(Protocol):
    """What the lowering produces: `define ptx_kernel void @entry(...)` taking the IR function's
    parameters in order (global pointers as `ptr addrspace(1)`, scalars by value), run with
    32 * num_warps threads per program and `shared_bytes` of dynamic shared memory; with
    `debug_sites`, a debug buffer's address follows them (`debug_buffer`)."""

    llvm_ir: str
    entry: str
    num_warps: int
    shared_bytes: int
    params: Sequence[Type]
    debug_sites: Sequence[DebugSite]


def pack_args(params: Sequence[Type], values: Sequence[Any]) -> list[bytes]:
    """Each value as the little-endian bytes of its parameter type (pointers are 64-bit addresses)."""
    return [scalar_bits(v, t).to_bytes(_param_bytes(t), "little")  # type: ignore[arg-type]
            for t, v in zip(params, values)]


def _param_bytes(t: Type) -> int:
    if isinstance(t, PointerType):
        return POINTER_BYTES
    assert isinstance(t, ScalarType)
    return max(t.bits // 8, 1)


@dataclass
class GpuProgram:
    """A kernel in PTX for one architecture, launched on its target's device."""

    name: str
    target: str
    arch: str
    entry: str
    ptx: str
    params: list[Type]
    num_warps: int
    shared_bytes: int
    debug_sites: tuple[DebugSite, ...] = ()
    accesses: dict[Loc, frozenset[int]] = field(default_factory=dict)  # `Provenance.accesses`
    _modules: dict[int, Any] = field(default_factory=dict)

    @property
    def block(self) -> Dims:
        return (WARP_SIZE * self.num_warps, 1, 1)

    def launch(self, bound: BoundLaunch, grid: Dims) -> None:
        """Run over `grid` with the bound arguments (see `staging` for how "sim" treats host arrays)."""
        if len(bound.values) != len(self.params):
            raise LaunchError(f"kernel '{self.name}' takes {len(self.params)} arguments, got {len(bound.values)}")
        device, stream = self._device(bound)
        host = {i: host_view(a) for i, a in enumerate(bound.arrays) if a is not None} if self.target == "sim" else {}
        with device.lock:
            module = self._module(device)
            with staged(device, host) as pointers:
                args = pack_args(self.params, [pointers.get(i, v) for i, v in enumerate(bound.values)])
                try:
                    debug = run_with_debug_buffer(device, self.debug_sites, lambda extra: device.launch(
                        module, self.entry, grid, self.block, self.shared_bytes, args + extra, stream))
                except MemoryAccessError as fault:
                    if "block" not in fault.details:  # not the simulator's fault of a kernel's access
                        raise
                    raise self._out_of_bounds(fault, bound, pointers) from None
        if debug is not None:
            debug.report(self.name, host_address(host, pointers))

    def _out_of_bounds(self, fault: MemoryAccessError, bound: BoundLaunch,
                       pointers: dict[int, int]) -> MemoryAccessError:
        """The simulator's fault in the user's terms, as the CPU reports a failed check
        (`bounds.out_of_bounds`): the kernel, the block, the source line of the faulting
        instruction (its `.loc`), and the address and element offset in the host array whose
        device copy is nearest to the faulting address (the one the pointer derives from, most
        likely: the simulator cannot tell)."""
        file, line, column = fault.details.get("source") or ("<unknown>", 0, 1)
        loc = Loc(file, line, column - 1)
        words = fault.details["instruction"].split()
        opcode = (words[1] if words[0].startswith("@") else words[0]).split(".")[0]  # past a guard
        address = fault.details["address"]
        may_access = next((args for place, args in self.accesses.items()
                           if (place.file, place.line, place.col) == (loc.file, loc.line, loc.col)), pointers)
        copies = []  # (the device copy's span, device address - host address)
        for index, device in pointers.items():
            if index in may_access:
                (name, t), host = bound.runtime[index], int(bound.values[index])
                lo, hi = array_span(bound.arrays[index], host, t.elem.bytes)  # type: ignore[union-attr]
                copies.append((Span(lo + device - host, hi + device - host, name, device, t.elem.bytes), device - host))
        copy = nearest([span for span, _ in copies], address)
        if copy is None:
            return fault
        shift = next(shift for span, shift in copies if span is copy)
        on_host = Span(copy.lo - shift, copy.hi - shift, copy.name, copy.base - shift, copy.itemsize)
        return out_of_bounds(self.name, fault.details["block"], loc, _ACCESS_NAMES.get(opcode, opcode),
                             address - shift, [on_host], fault.details["why"])

    def _device(self, bound: BoundLaunch) -> tuple[Device, int]:
        if self.target == "sim":
            if "cuda" in bound.devices:
                raise LaunchError(f"'{self.name}': target 'sim' runs on host arrays (numpy, torch CPU tensors); "
                                  "the arguments include arrays on a CUDA device")
            return sim_device(), 0
        if bound.devices - {"cuda"}:
            raise LaunchError(f"'{self.name}': target 'cuda' needs arrays on the GPU (torch CUDA tensors, "
                              "__cuda_array_interface__); the arguments include host arrays, which run with "
                              "target='cpu' or 'sim'")
        from kdsl.backend.cuda.driver import device_for

        return device_for(bound.arrays)

    def _module(self, device: Device) -> Any:
        module = self._modules.get(id(device))
        if module is None:
            module = self._modules[id(device)] = device.load_module(self.ptx)
        return module


def toolchain_identity(cubin: bool) -> str:
    """What the PTX (and cubin) depend on besides the IR and the options: LLVM's version, and
    ptxas's presence where a cubin is asked for."""
    import llvmlite.binding as llvm

    version = ".".join(map(str, llvm.llvm_version_info))
    return f"nvptx llvm {version}" + (f" ptxas {ptxas.available()}" if cubin else "")


def compile_gpu(kernel: LoweredKernel, name: str, target: str, arch: str, cubin: bool = False,
                accesses: dict[Loc, frozenset[int]] | None = None) -> tuple[GpuProgram, dict[str, Any]]:
    """PTX for `arch` from the lowered kernel; returns the program and its `asm` entries
    ("llvm", "llvm_optimized", "ptx", and with `cubin` where ptxas is installed "cubin" and
    ptxas's resource report "ptxas"). `accesses`: the arguments each access's source place may
    touch, by which the simulator's faults are reported."""
    optimized, ptx = llvm_to_ptx(kernel.llvm_ir, arch)
    asm: dict[str, Any] = {"llvm": kernel.llvm_ir, "llvm_optimized": optimized, "ptx": ptx}
    if cubin and ptxas.available():
        assembled = ptxas.assemble(ptx, arch)
        asm["cubin"], asm["ptxas"] = assembled.cubin, assembled.report
    program = GpuProgram(name, target, arch, kernel.entry, ptx, list(kernel.params), kernel.num_warps,
                         kernel.shared_bytes, tuple(kernel.debug_sites), accesses or {})
    return program, asm
