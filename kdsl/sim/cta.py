"""The execution state of a batch of CTAs and the scheduler that steps their threads.

All threads of a batch step together: registers are uint64 arrays over the
threads of its CTAs, one CTA after another (a batch is one CTA unless the
launch can run several at once, see `module.Module.launch`); each CTA has its
own slice of the shared-memory buffer. Each thread has its own program counter; every step runs the
instruction at the smallest PC among live threads, for the threads at that PC
(the active mask). For the structured control flow compilers emit this
reconverges threads at the immediate post-dominator, as the hardware does.
Threads at a CTA barrier wait there (their PC moved out of reach by WAIT)
until all live threads have arrived, so blocks laid out after the barrier
(cold blocks placed at the end of a function) still run before it is passed.
Warp-synchronous instructions (`shfl.sync`, `vote.sync`, ...) likewise hold
the lanes that reach them first (PC moved by PARK) until every live lane of
their warp is there, as the hardware converges the lanes a `.sync` names;
lanes whose warp-mates can no longer arrive run on alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kdsl.errors import MemoryAccessError
from kdsl.sim.async_copies import AsyncCopies
from kdsl.sim.memory import GLOBAL_BASE, LOCAL_WINDOW, SHARED_WINDOW, WINDOW_SIZE, Access, DeviceMemory

Mask = np.ndarray | None
OpFn = Callable[["CtaState", Mask], None]
DONE = np.iinfo(np.int64).max
# A thread waiting at a CTA barrier has WAIT added to its PC, which keeps it out
# of scheduling until every live thread waits; then all of them pass together.
WAIT = 1 << 40
# A lane held at a warp-synchronous instruction has PARK added to its PC.
PARK = 1 << 30


@dataclass
class CtaState:
    n: int
    regs: dict[str, np.ndarray]
    memory: DeviceMemory
    shared: np.ndarray
    local: np.ndarray  # (n, local_size) bytes
    params: dict[str, np.ndarray]  # kernel params: bytes; call params: (n, size) bytes
    ctaid: np.ndarray  # (n, 3): each thread's CTA
    tid: np.ndarray  # (n, 3)
    shared_size: int = 0  # bytes of shared memory of each CTA
    shared_base: np.ndarray | None = None  # (n,) each thread's CTA's offset in `shared`; None: one CTA
    steps: int = 0
    warp_steps: int = 0
    copies: AsyncCopies = field(init=False)  # cp.async copies in flight

    def __post_init__(self) -> None:
        self.copies = AsyncCopies(self.n)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.n, np.uint64)

    def get(self, name: str) -> np.ndarray:
        r = self.regs.get(name)
        if r is None:
            r = self.regs[name] = np.zeros(self.n, np.uint64)
        return r

    def put(self, name: str, bits: np.ndarray, m: Mask) -> None:
        bits = np.asarray(bits, np.uint64)
        if m is None:
            self.regs[name] = bits if bits.shape == (self.n,) else np.broadcast_to(bits, (self.n,)).copy()
        else:
            self.regs[name] = np.where(m, bits, self.get(name))

    def where(self, lane: int) -> str:
        t = self.tid[lane]
        return f"thread ({t[0]}, {t[1]}, {t[2]}) of block {self.block(lane)}"

    def block(self, lane: int) -> tuple[int, int, int]:
        return tuple(int(x) for x in self.ctaid[lane])

    def fault(self, text: str, lane: int, address: int, why: str) -> MemoryAccessError:
        return MemoryAccessError(f"{text}: {why} at address {address:#x} in {self.where(lane)}",
                                 instruction=text, thread=tuple(int(x) for x in self.tid[lane]),
                                 block=self.block(lane), address=address, why=why)

    def resolve(self, space: str, addrs: np.ndarray, size: int, text: str, lanes: np.ndarray) -> list[Access]:
        """Byte offsets for an access of `size` bytes at `addrs` (one per lane in `lanes`)."""
        addrs = np.asarray(addrs, np.uint64)
        bad = np.flatnonzero(addrs % np.uint64(size))
        if bad.size:
            raise self.fault(text, int(lanes[bad[0]]), int(addrs[bad[0]]), f"misaligned {size}-byte access")
        if space == "generic":
            out = []
            sh = (addrs >= np.uint64(SHARED_WINDOW)) & (addrs < np.uint64(SHARED_WINDOW + WINDOW_SIZE))
            lo = (addrs >= np.uint64(LOCAL_WINDOW)) & (addrs < np.uint64(LOCAL_WINDOW + WINDOW_SIZE))
            for sel, sp, base in ((sh, "shared", SHARED_WINDOW), (lo, "local", LOCAL_WINDOW),
                                  (~(sh | lo), "global", 0)):
                if sel.any():
                    idx = np.flatnonzero(sel)
                    for acc in self.resolve(sp, addrs[idx] - np.uint64(base), size, text, lanes[idx]):
                        out.append(Access(acc.buffer, acc.offsets, idx[acc.lanes]))
            return out
        every = np.arange(addrs.size)
        if space == "global" or space == "const":
            bad = self.memory.first_outside(addrs, size)
            if bad is not None:
                raise self.fault(text, int(lanes[bad]), int(addrs[bad]),
                                 f"out-of-bounds {size}-byte access outside every global allocation")
            return [Access(self.memory.data, addrs - np.uint64(GLOBAL_BASE), every)]
        if space == "shared":
            over = np.flatnonzero(addrs + np.uint64(size) > np.uint64(self.shared_size))
            if over.size:
                raise self.fault(text, int(lanes[over[0]]), int(addrs[over[0]]),
                                 f"out-of-bounds shared access (shared size {self.shared_size} bytes)")
            offsets = addrs if self.shared_base is None else addrs + self.shared_base[lanes]
            return [Access(self.shared, offsets, every)]
        if space == "local":
            width = self.local.shape[1]
            over = np.flatnonzero(addrs + np.uint64(size) > np.uint64(width))
            if over.size:
                raise self.fault(text, int(lanes[over[0]]), int(addrs[over[0]]), "out-of-bounds local access")
            return [Access(self.local.reshape(-1), addrs + lanes.astype(np.uint64) * np.uint64(width), every)]
        raise MemoryAccessError(f"{text}: unsupported state space .{space}", instruction=text)



@dataclass
class Op:
    """A decoded instruction: `fn` runs it for the active threads.

    Control ops (`control` set) update the PCs themselves; `fn` then has the
    signature (state, pcs, executing_mask, at_pc_mask).
    """

    fn: Callable
    text: str
    guard: str | None = None
    negated: bool = False
    control: bool = False
    warp_sync: bool = False
    source: tuple[str, int, int] | None = None  # the instruction's `.loc`: file, line, column


def _park_or_join(pc: np.ndarray, p: int, m: np.ndarray, alone: np.ndarray) -> np.ndarray:
    """The lanes at `p` (mask `m`) that run a warp-synchronous instruction now: those whose live
    warp-mates are all there or parked there (released to join); the others are parked."""
    run_now = m.copy()
    for warp in np.unique(np.flatnonzero(m & ~alone) >> 5):
        span = slice(32 * warp, 32 * warp + 32)
        w = pc[span]  # a view: parking and releasing write the PCs
        live = w != DONE
        if np.all(~live | (w == p) | (w == p + PARK)):
            w[w == p + PARK] = p
            run_now[span] |= pc[span] == p
        else:
            here = (w == p) & ~alone[span]
            w[here] = p + PARK
            run_now[span] &= ~here
    return run_now


def run(ops: list[Op], st: CtaState) -> None:
    """Step the CTA until every thread has exited. A memory fault gets the source line of the
    faulting instruction (`source`) where the PTX gives one."""
    pc = np.zeros(st.n, np.int64)
    try:
        _step(ops, st, pc)
    except MemoryAccessError as err:
        source = ops[int(pc.min())].source
        if source is not None and "source" not in err.details:
            err.details["source"] = err.source = source
            err.args = (f"{err.args[0]} ({source[0]}:{source[1]})",)
        raise


def _step(ops: list[Op], st: CtaState, pc: np.ndarray) -> None:
    end = len(ops)
    warps = -(-st.n // 32)
    alone = np.zeros(st.n, bool)  # parked lanes whose warp-mates cannot arrive: they run on alone
    while True:
        p = int(pc.min())
        if p >= end:
            if p == DONE:  # every thread has exited (the program ends with an exit op)
                return
            if p < WAIT:  # only parked lanes can run
                parked = (pc >= PARK) & (pc < WAIT)
                pc[parked] -= PARK
                alone |= parked
                continue
            waiting = pc != DONE
            pc[waiting] -= WAIT - 1
            continue
        m = pc == p
        if ops[p].warp_sync:
            m = _park_or_join(pc, p, m, alone)
            if not m.any():
                continue
            alone[m] = False
        full = bool(m.all())
        op = ops[p]
        st.steps += int(m.sum())
        st.warp_steps += warps if full else int(np.unique(np.flatnonzero(m) >> 5).size)
        if op.guard is not None:
            g = st.get(op.guard) != 0
            em = (m & ~g) if op.negated else (m & g)
        else:
            em = m
        if op.control:
            op.fn(st, pc, em, m)
            continue
        if em is m:
            op.fn(st, None if full else m)
        elif em.any():
            op.fn(st, None if em.all() else em)
        if full:
            pc += 1
        else:
            pc[m] += 1


@dataclass
class LaunchStats:
    """Simulated work: thread-instructions and warp-instructions executed."""

    thread_instructions: int = 0
    warp_instructions: int = 0

    def add(self, st: CtaState) -> None:
        self.thread_instructions += st.steps
        self.warp_instructions += st.warp_steps
