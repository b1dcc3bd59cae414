"""`compile_cpu` and `CpuProgram`: the CPU backend's interface to the runtime."""
from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from kdsl.backend.cpu import elf_loader
from kdsl.backend.cpu.debug_runtime import symbols
from kdsl.backend.cpu.abi import LAUNCH_NAME, LAUNCH_TYPE, STATUS_SLOTS
from kdsl.backend.cpu.threads import get_num_threads, run_programs
from kdsl.errors import CompilationError, KdslError, LaunchError
from kdsl.ir.core import Module
from kdsl.ir.types import PointerType, ScalarType
from kdsl.runtime.scalar_bits import bits_of
from kdsl.runtime.bounds import AccessSite, Span, array_span
from kdsl.runtime.device_assert import AssertSite

if TYPE_CHECKING:
    from kdsl.backend.cpu.jit import Jitted  # imports LLVM: only where the loader cannot


# Block buffers live on the stack. A kernel needing more than this runs only on
# worker threads whose stacks are sized for it, never overflowing the caller's.
CALLER_STACK_BUDGET = 256 * 1024


@dataclass
class CpuBinary:
    """A kernel compiled for this host as plain data (what the on-disk cache keeps): the LLVM
    text before and after optimisation, the object file and what the launcher needs."""

    name: str
    llvm: str
    llvm_optimized: str
    object: bytes
    arg_types: list[ScalarType | PointerType]
    arg_names: list[str]
    stack_bytes: int = 0
    assert_sites: list[AssertSite] = field(default_factory=list)
    access_sites: list[AccessSite] | None = None  # None: accesses are not checked


class CpuProgram:
    """A compiled kernel loaded for running."""

    def __init__(self, binary: CpuBinary):
        self.binary = binary
        self.name = binary.name
        self.llvm, self.llvm_optimized = binary.llvm, binary.llvm_optimized
        self.stack_bytes, self.assert_sites = binary.stack_bytes, binary.assert_sites
        self._code = load_code(binary.object)
        self._entry = self._code.address(LAUNCH_NAME)
        self._direct = LAUNCH_TYPE(self._entry)
        self._packers = [bits_of(t) for t in binary.arg_types]
        self._itemsizes = [t.elem.bytes if isinstance(t, PointerType) else None for t in binary.arg_types]

    def launch(self, values: Sequence[object], grid: Sequence[int], objects: Sequence[object]) -> None:
        """Run the kernel over `grid` (gx, gy, gz) on `get_num_threads()` threads; `values`: one per
        argument; `objects`: what was passed for each (where accesses are checked, an array
        argument's accesses are kept in the bytes it spans, `bounds.array_span`)."""
        if len(values) != len(self._packers):
            raise LaunchError(f"kernel '{self.name}' takes {len(self._packers)} arguments, got {len(values)}")
        gx, gy, gz = (int(g) for g in grid)
        if min(gx, gy, gz) < 0 or max(gx, gy, gz) >= 2**31:
            raise LaunchError(f"grid {tuple(grid)} must hold non-negative 32-bit sizes")
        total = gx * gy * gz
        if total == 0:
            return
        slots = [pack(v) for pack, v in zip(self._packers, values)]
        spans: list[tuple[int, int]] = []
        if self.binary.access_sites is not None:  # only checked code reads the spans
            spans = [array_span(obj, value, size) if size is not None else (0, 0)  # type: ignore[arg-type]
                     for obj, value, size in zip(objects, values, self._itemsizes)]
            slots += [bound for span in spans for bound in span]
        argv = array.array("Q", slots or [0])  # array.array: a third of the time ctypes arrays take to fill
        status = array.array("q", bytes(8 * STATUS_SLOTS))
        run_programs(self._entry, self._direct, argv.buffer_info()[0], total, (gx, gy, gz), status.buffer_info()[0],
                     min(get_num_threads(), total), self.stack_bytes + (1 << 20),
                     caller_may_run=self.stack_bytes <= CALLER_STACK_BUDGET)
        if status[0]:
            raise self._failure(list(status), values, spans)

    def _failure(self, status: list[int], values: Sequence[object], spans: Sequence[tuple[int, int]]) -> KdslError:
        """The error a failed launch's status describes (see `lower_debug`)."""
        code, x, y, z, index, address = status
        if code > 0:
            return self.assert_sites[code - 1].error(self.name, (x, y, z), index)
        arrays = [Span(lo, hi, name, int(value), t.elem.bytes) if isinstance(t, PointerType) else None  # type: ignore[arg-type]
                  for (lo, hi), name, value, t in zip(spans, self.binary.arg_names, values, self.binary.arg_types)]
        return self.binary.access_sites[-code - 1].error(self.name, (x, y, z), index, address % 2**64, arrays)


def load_code(data: bytes) -> elf_loader.LoadedCode | Jitted:
    """The object file's code in memory: loaded by `elf_loader` (no LLVM), or where it cannot, by
    LLVM's JIT linker."""
    try:
        return elf_loader.load(data, symbols())
    except elf_loader.Unsupported:
        from kdsl.backend.cpu.jit import load_object

        return load_object(data)


def compile_cpu(module: Module, checked: bool = True) -> CpuProgram:
    """Lower the (verified, inlined) kernel of `module` to native code for this host, its memory
    accesses checked (`lower_bounds`) where `checked`."""
    from llvmlite import ir

    from kdsl.backend.cpu.jit import compile_object, host_triple
    from kdsl.backend.cpu.launcher import emit_launcher
    from kdsl.backend.cpu.lower import KernelLowering

    fn = module.kernel
    for op in fn.walk():
        if op.name == "call":
            raise CompilationError(f"internal error: call to '{op.attrs['callee']}' left after inlining",
                                   op.loc, fn.name)
    llmod = ir.Module(name=fn.name)
    llmod.triple = host_triple()
    lowering = KernelLowering(llmod, fn, f"kdsl.{fn.name}", checked)
    kernel = lowering.lower()
    emit_launcher(llmod, fn, kernel, checked)
    text = str(llmod)
    optimized, obj = compile_object(text)
    binary = CpuBinary(fn.name, text, optimized, obj, [arg.type for arg in fn.args],  # type: ignore[misc]
                       [arg.hint or f"argument {i}" for i, arg in enumerate(fn.args)], lowering.stack_bytes,
                       lowering.assert_sites, lowering.checks.sites if lowering.checks is not None else None)
    return CpuProgram(binary)
