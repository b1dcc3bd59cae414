"""A loaded PTX module: parse once, launch many times."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdsl.errors import LaunchError
from kdsl.runtime.arrays import memory_span
from kdsl.sim import cta
from kdsl.sim.dispatch import decode
from kdsl.sim.linker import inline_calls
from kdsl.sim.memory import DeviceMemory
from kdsl.sim.operands import DecodeContext
from kdsl.sim.parser import Function, Instruction, ParsedModule, parse
from kdsl.sim.types import TYPES


# The most threads simulated in one batch of CTAs: enough to amortise numpy's per-instruction
# overhead over many CTAs, few enough to keep a batch's registers in cache.
BATCH_THREADS = 4096


@dataclass
class Program:
    ops: list[cta.Op]
    static_shared: int
    local_size: int
    function: Function
    independent_ctas: bool  # no CTA can wait for another: CTAs may run as one batch


def _may_wait_on_other_ctas(inst: Instruction) -> bool:
    """Whether `inst` can observe another CTA's progress: global or generic atomics and
    volatile/relaxed/acquire loads (what a spin loop waits with). Without them no CTA can wait
    for another, so running CTAs in lockstep is one of the schedules the hardware may pick."""
    if inst.opcode in ("atom", "red"):
        return "shared" not in inst.mods
    return inst.opcode == "ld" and any(m in inst.mods for m in ("volatile", "relaxed", "acquire"))


def _align(x: int, a: int) -> int:
    return -(-x // max(a, 1)) * max(a, 1)


class Module:
    """PTX parsed once; `launch` runs an entry on `memory` (kept across launches)."""

    def __init__(self, ptx: str, memory: DeviceMemory | None = None) -> None:
        self.parsed: ParsedModule = parse(ptx)
        self.memory = memory or DeviceMemory()
        self.symbols: dict[str, tuple[str, int]] = {}
        self.module_shared = 0
        for var in self.parsed.variables:
            if var.space == "shared":
                if not var.extern:
                    self.module_shared = _align(self.module_shared, var.align)
                    self.symbols[var.name] = ("shared", self.module_shared)
                    self.module_shared += var.size
                continue
            addr = self.memory.allocate(max(var.size, 1), var.align)
            if var.init:
                self.memory.copy_in(addr, var.init)
            self.symbols[var.name] = (var.space, addr)
        self._programs: dict[str, Program] = {}

    def program(self, entry: str) -> Program:
        if entry not in self._programs:
            self._programs[entry] = self._decode(entry)
        return self._programs[entry]

    def _decode(self, entry: str) -> Program:
        func = self.parsed.functions.get(entry)
        if func is None or not func.is_entry:
            raise LaunchError(f"no kernel entry named {entry!r} in the PTX module "
                              f"(entries: {[f.name for f in self.parsed.functions.values() if f.is_entry]})")
        symbols = dict(self.symbols)
        shared, local = self.module_shared, 0
        externs = []
        full_body, variables = inline_calls(func, self.parsed.functions)
        for var in variables:
            if var.space == "shared" and var.extern:
                externs.append(var)
            elif var.space == "shared":
                shared = _align(shared, var.align)
                symbols[var.name] = ("shared", shared)
                shared += var.size
            elif var.space == "local":
                local = _align(local, var.align)
                symbols[var.name] = ("local", local)
                local += var.size
        for var in self.parsed.variables + externs:
            if var.space == "shared" and var.extern:
                symbols[var.name] = ("shared", _align(shared, max(var.align, 16)))
        for p in func.params:
            symbols[p.name] = ("param", 0)
        body, labels = [], {}
        for item in full_body:
            if isinstance(item, str):
                labels[item] = len(body)
            else:
                body.append(item)
        ctx = DecodeContext(symbols, labels)
        ops = [decode(inst, ctx) for inst in body]
        ops.append(decode(Instruction("exit", (), [], "exit (end of kernel)"), ctx))
        independent = not any(_may_wait_on_other_ctas(inst) for inst in body)
        return Program(ops, _align(shared, 16), _align(local, 16), func, independent)

    def launch(self, entry: str, grid, block, args: list, shared_bytes: int = 0) -> cta.LaunchStats:
        """Run `entry` over `grid` × `block`; numpy arrays in `args` are copied in and back."""
        prog = self.program(entry)
        grid, block = _dims(grid), _dims(block)
        params = prog.function.params
        if len(args) != len(params):
            raise LaunchError(f"kernel {entry!r} takes {len(params)} parameters, got {len(args)} arguments")
        staged, values = [], {}
        try:
            for p, arg in zip(params, args):
                values[p.name] = self._param_bytes(p, arg, staged)
            stats = cta.LaunchStats()
            n = block[0] * block[1] * block[2]
            if not 1 <= n <= 1024 or min(block) < 1 or min(grid) < 0:
                raise LaunchError(f"invalid launch: grid {grid}, block {block} ({n} threads; 1 to 1024 allowed)")
            ctaids = [(x, y, z) for z in range(grid[2]) for y in range(grid[1]) for x in range(grid[0])]
            per_batch = max(1, BATCH_THREADS // n) if prog.independent_ctas and n % 32 == 0 else 1
            for first in range(0, len(ctaids), per_batch):
                st = self._cta_state(prog, ctaids[first:first + per_batch], grid, block, values, shared_bytes)
                with np.errstate(all="ignore"):  # IEEE overflow, invalid and x/0 are results on the GPU
                    cta.run(prog.ops, st)
                stats.add(st)
            for addr, arr in staged:
                self.memory.copy_out(addr, arr)
            return stats
        finally:
            for addr, _ in staged:
                self.memory.free(addr)

    def _param_bytes(self, p, arg, staged: list) -> np.ndarray:
        if isinstance(arg, np.ndarray):
            span, offset = memory_span(arg)
            addr = self.memory.allocate(span.nbytes)
            self.memory.copy_in(addr, span)
            staged.append((addr, span))
            value, t = addr + offset, TYPES["u64"]
        elif arg is None:
            value, t = 0, TYPES["u64"]
        elif isinstance(arg, tuple) and len(arg) == 2 and arg[0] in TYPES:
            t, value = TYPES[arg[0]], arg[1]
        else:
            raise LaunchError(f"argument for parameter {p.name} must be a numpy array, None or (ptx_type, value); "
                              f"got {type(arg).__name__}")
        raw = np.zeros((1, max(p.size, t.size)), np.uint8)
        if t.kind == "f":
            enc = np.asarray(value, t.dtype).tobytes()
        else:
            enc = (int(value) % (1 << t.bits)).to_bytes(t.size, "little")
        raw[0, : len(enc)] = np.frombuffer(enc, np.uint8)
        return raw

    def _cta_state(self, prog: Program, ctaids: list, grid, block, params, shared_bytes) -> cta.CtaState:
        """The state of the CTAs `ctaids` run as one batch: their threads one CTA after another."""
        per_cta = block[0] * block[1] * block[2]
        n = per_cta * len(ctaids)
        i = np.arange(n) % per_cta
        tid = np.stack([i % block[0], (i // block[0]) % block[1], i // (block[0] * block[1])], axis=1)
        ctaid = np.repeat(np.asarray(ctaids, np.int64), per_cta, axis=0)
        u = np.uint64
        lane = (i & 31).astype(u)
        regs = {"%laneid": lane, "%warpid": (i >> 5).astype(u), "%nwarpid": np.full(n, -(-per_cta // 32), u),
                "%lanemask_eq": u(1) << lane, "%lanemask_lt": (u(1) << lane) - u(1),
                "%lanemask_le": (u(2) << lane) - u(1), "%lanemask_gt": ~((u(2) << lane) - u(1)) & u(0xFFFFFFFF),
                "%lanemask_ge": ~((u(1) << lane) - u(1)) & u(0xFFFFFFFF), "%smid": np.zeros(n, u),
                "%nsmid": np.ones(n, u), "%dynamic_smem_size": np.full(n, shared_bytes, u),
                "%clock": np.zeros(n, u), "%clock64": np.zeros(n, u), "%globaltimer": np.zeros(n, u)}
        for k, axis in enumerate("xyz"):
            regs[f"%tid.{axis}"] = tid[:, k].astype(u)
            regs[f"%ntid.{axis}"] = np.full(n, block[k], u)
            regs[f"%ctaid.{axis}"] = ctaid[:, k].astype(u)
            regs[f"%nctaid.{axis}"] = np.full(n, grid[k], u)
        shared_size = prog.static_shared + shared_bytes
        stride = max(_align(shared_size, 16), 16)
        base = None if len(ctaids) == 1 else (np.arange(n) // per_cta).astype(u) * u(stride)
        st = cta.CtaState(n=n, regs=regs, memory=self.memory, shared=np.zeros(stride * len(ctaids), np.uint8),
                          local=np.zeros((n, max(prog.local_size, 16)), np.uint8), params=dict(params),
                          ctaid=ctaid, tid=tid, shared_size=shared_size, shared_base=base)
        return st


def _dims(d) -> tuple[int, int, int]:
    d = (d,) if isinstance(d, int) else tuple(d)
    return tuple(int(x) for x in d) + (1,) * (3 - len(d))


def load_module(ptx: str, memory: DeviceMemory | None = None) -> Module:
    """Parse `ptx` once, for many launches, with its globals in `memory` (a new `DeviceMemory`
    when None)."""
    return Module(ptx, memory)


def launch_ptx(ptx: str, entry: str, grid, block, args: list, shared_bytes: int = 0) -> None:
    """Parse `ptx` and run `entry` once (see `Module.launch`)."""
    load_module(ptx).launch(entry, grid, block, args, shared_bytes)
