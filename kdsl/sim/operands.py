"""Operand access compiled once per instruction: readers and writers of typed values."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kdsl.sim.cta import CtaState, Mask
from kdsl.sim.errors import UnsupportedInstruction
from kdsl.sim.parser import Addr, Imm, Instruction, Not, Pair, Reg, Sym, Vec
from kdsl.sim.types import TYPES, PtxType, from_bits, to_bits

Reader = Callable[[CtaState], np.ndarray]
Writer = Callable[[CtaState, np.ndarray, Mask], None]


@dataclass
class DecodeContext:
    """What decoding needs to know about the module: symbol addresses and labels."""

    symbols: dict[str, tuple[str, int]]  # name -> (state space, address)
    labels: dict[str, int] = field(default_factory=dict)
    inst: Instruction | None = None

    def unsupported(self, why: str = "") -> UnsupportedInstruction:
        text = self.inst.text if self.inst else "?"
        return UnsupportedInstruction(f"unsupported PTX instruction '{text}'" + (f" ({why})" if why else ""))


def imm_value(imm: Imm, t: PtxType):
    """An immediate as a value of `t`; a float immediate given to a bit type keeps its bits."""
    if t.kind in ("f", "bf"):
        return np.asarray(imm.value, t.dtype)
    if imm.is_float:
        ft = np.float64 if t.bits == 64 else np.float32
        return np.asarray(imm.value, ft).view(t.udtype)
    return np.asarray(int(imm.value) & ((1 << t.bits) - 1) if t.bits < 64 else int(imm.value) % (1 << 64),
                      t.udtype).view(t.dtype) if t.kind != "pred" else np.asarray(bool(imm.value))


def reader(op, t: PtxType, ctx: DecodeContext) -> Reader:
    if isinstance(op, Reg):
        name = op.name
        return lambda st: from_bits(st.get(name), t)
    if isinstance(op, Not):
        inner = reader(op.reg, t, ctx)
        return lambda st: ~inner(st)
    if isinstance(op, Imm):
        value = imm_value(op, t)
        return lambda st: value
    if isinstance(op, Sym) and op.name in ctx.symbols:
        value = np.asarray(ctx.symbols[op.name][1], np.uint64).astype(t.dtype)
        return lambda st: value
    raise ctx.unsupported(f"operand {op!r} cannot be read as .{t.name}")


def writer(op, t: PtxType, ctx: DecodeContext) -> Writer:
    if isinstance(op, Reg):
        name = op.name
        return lambda st, v, m: st.put(name, to_bits(v, t), m)
    if isinstance(op, Sym) and op.name == "_":
        return lambda st, v, m: None
    raise ctx.unsupported(f"operand {op!r} is not a register")


def bits_reader(op, bits: int, ctx: DecodeContext) -> Reader:
    """Raw register bits, as uint64, truncated to `bits`."""
    t = TYPES[f"b{bits}"]
    r = reader(op, t, ctx)
    return lambda st: np.asarray(r(st), np.uint64)


def address(op, ctx: DecodeContext) -> tuple[Reader, str | None]:
    """A reader of the byte address of `[...]`, and the state space a symbol base implies."""
    if not isinstance(op, Addr):
        raise ctx.unsupported("expected an address operand")
    off = np.uint64(op.offset % (1 << 64))
    if op.base is None:
        return (lambda st: off), None
    if isinstance(op.base, Reg):
        name = op.base.name
        return (lambda st: st.get(name) + off), None
    space, base = ctx.symbols.get(op.base.name, ("param", 0))
    if space == "param":
        return None, "param"
    value = np.uint64((base + op.offset) % (1 << 64))
    return (lambda st: value), space


def vector_items(op) -> list:
    return list(op.items) if isinstance(op, Vec) else [op]


def pair(op) -> tuple:
    return (op.first, op.second) if isinstance(op, Pair) else (op, None)
