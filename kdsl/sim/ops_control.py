"""Control flow and synchronisation: bra, exit/ret, bar/barrier (§9.7.12), trap."""
from __future__ import annotations

import numpy as np

from kdsl.sim.cta import DONE
from kdsl.sim.operands import DecodeContext
from kdsl.sim.parser import Instruction


def build_bra(inst: Instruction, ctx: DecodeContext):
    target = ctx.labels.get(inst.operands[0].name)
    if target is None:
        raise ctx.unsupported(f"branch to unknown label {inst.operands[0].name}")

    def run(st, pc, taken, at):
        pc[at & ~taken] += 1
        pc[taken] = target
    return run


def build_exit(inst: Instruction, ctx: DecodeContext):
    def run(st, pc, done, at):
        pc[at & ~done] += 1
        pc[done] = DONE
    return run


def build_barrier(inst: Instruction, ctx: DecodeContext):
    """Threads are stepped lowest-PC first, so every thread that can reach a barrier
    has done so before any thread passes it: the barrier itself has nothing to do."""
    if "red" in inst.mods:
        raise ctx.unsupported("barrier reductions")
    return lambda st, m: None


def build_trap(inst: Instruction, ctx: DecodeContext):
    def run(st, m):
        lane = int(np.flatnonzero(m)[0]) if m is not None else 0
        raise RuntimeError(f"kernel executed 'trap' in {st.where(lane)}")
    return run


CONTROL = {"bra": build_bra, "exit": build_exit, "ret": build_exit}
HANDLERS = {"bar": build_barrier, "barrier": build_barrier, "trap": build_trap, "nanosleep": build_barrier,
            "pmevent": build_barrier}
