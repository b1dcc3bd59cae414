"""Opcode → instruction builder table, and decoding of one instruction into an `Op`."""
from __future__ import annotations

from kdsl.sim import ops_control, ops_convert, ops_float, ops_int, ops_memory, ops_tensorcore, ops_warp
from kdsl.sim.cta import Op
from kdsl.sim.errors import UnsupportedInstruction
from kdsl.sim.operands import DecodeContext
from kdsl.sim.parser import Instruction
from kdsl.sim.types import TYPES

BUILDERS = {**ops_int.HANDLERS, **ops_float.HANDLERS, **ops_convert.HANDLERS, **ops_memory.HANDLERS,
            **ops_control.HANDLERS, **ops_warp.HANDLERS, **ops_tensorcore.HANDLERS}


def _builder(inst: Instruction):
    if ops_control.is_control(inst):
        return ops_control.control_builder(inst)
    if inst.opcode in ops_int.INT_ARITH:
        types = [TYPES[m] for m in inst.mods if m in TYPES]
        if types and ops_float.is_float(types[-1]):
            return ops_float.FLOAT_ARITH.get(inst.opcode)
        return ops_int.INT_ARITH[inst.opcode]
    return BUILDERS.get(inst.opcode)


def _warp_synchronous(inst: Instruction) -> bool:
    """`shfl/vote/match/redux.sync` and `bar.warp.sync`: the lanes of a warp execute them together."""
    return "sync" in inst.mods and (inst.opcode in ("shfl", "vote", "match", "redux")
                                    or (inst.opcode == "bar" and "warp" in inst.mods))


def decode(inst: Instruction, ctx: DecodeContext) -> Op:
    """Build the op; an instruction that cannot be built becomes an op that raises when run."""
    ctx.inst = inst
    build = _builder(inst)
    guard = inst.guard.name if inst.guard is not None else None
    control = ops_control.is_control(inst)
    try:
        if build is None:
            raise ctx.unsupported()
        fn = build(inst, ctx)
    except UnsupportedInstruction as err:
        fn = _raiser(err)
    except (KeyError, IndexError, StopIteration, AttributeError, ValueError) as err:
        fn = _raiser(ctx.unsupported(f"cannot decode: {type(err).__name__} {err}"))
    return Op(fn, inst.text, guard, inst.guard_negated, control, _warp_synchronous(inst), inst.source)


def _raiser(err: UnsupportedInstruction):
    def fail(*args):
        raise err
    return fail
