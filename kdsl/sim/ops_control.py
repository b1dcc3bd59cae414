"""Control flow and synchronisation: bra, exit/ret, bar/barrier (§9.7.12), trap."""
from __future__ import annotations

import numpy as np

from kdsl.sim.cta import DONE, WAIT
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
    """`bar.sync`/`barrier.sync` (§9.7.13.1): arriving threads wait until every live thread
    of the CTA waits at a barrier. Named barriers with thread counts are treated as CTA-wide."""
    if "red" in inst.mods:
        raise ctx.unsupported("barrier reductions")

    def run(st, pc, arriving, at):
        pc[at & ~arriving] += 1
        pc[arriving] += WAIT
    return run


def build_noop(inst: Instruction, ctx: DecodeContext):
    """`bar.warp.sync`, `bar.arrive`, `nanosleep`, `pmevent`: threads of a warp already step
    together, and arriving without waiting orders nothing in a sequential simulation."""
    return lambda st, m: None


def _is_waiting_barrier(inst: Instruction) -> bool:
    return inst.opcode in ("bar", "barrier") and "warp" not in inst.mods and "arrive" not in inst.mods


def build_trap(inst: Instruction, ctx: DecodeContext):
    def run(st, m):
        lane = int(np.flatnonzero(m)[0]) if m is not None else 0
        raise RuntimeError(f"kernel executed 'trap' in {st.where(lane)}")
    return run


CONTROL = {"bra": build_bra, "exit": build_exit, "ret": build_exit}
HANDLERS = {"bar": build_noop, "barrier": build_noop, "trap": build_trap, "nanosleep": build_noop,
            "pmevent": build_noop}


def is_control(inst: Instruction) -> bool:
    return inst.opcode in CONTROL or _is_waiting_barrier(inst)


def control_builder(inst: Instruction):
    return build_barrier if _is_waiting_barrier(inst) else CONTROL[inst.opcode]
