"""Launch values as the bit patterns of their kdsl types: the CPU's argument slots, the GPU's
kernel parameters and the constants in generated code. Plain Python (no LLVM), so that a
process launching kernels from the disk cache never imports LLVM's IR builder."""
from __future__ import annotations

import struct
from typing import Callable

import numpy as np

from kdsl.interpreter.dtypes import fp8_bits, nearest_bf16_bits, round_fp8
from kdsl.ir.types import PointerType, ScalarType


def float_bits(value: float, t: ScalarType) -> int:
    """The bit pattern of `value` rounded to the float type `t` (round to nearest even)."""
    if t.is_fp8:
        return int(fp8_bits(round_fp8(np.float64(value), t), t))
    if t.name == "bf16":
        return int(nearest_bf16_bits(np.float64(value)))
    fmt = {16: "e", 32: "f", 64: "d"}[t.bits]
    try:
        packed = struct.pack("<" + fmt, value)
    except OverflowError:
        packed = struct.pack("<" + fmt, float("inf") if value > 0 else float("-inf"))
    return int.from_bytes(packed, "little")


def scalar_bits(value: bool | int | float, t: ScalarType | PointerType) -> int:
    """`value` as the unsigned bit pattern of `t` (pointers are 64-bit addresses)."""
    return bits_of(t)(value)


def bits_of(t: ScalarType | PointerType) -> Callable[[bool | int | float], int]:
    """`scalar_bits` for values of `t`, its type's case picked once (a CPU launch packs each
    argument with one of these)."""
    if isinstance(t, ScalarType) and t.is_float:
        return lambda value: float_bits(float(value), t)
    mask = (1 << (64 if isinstance(t, PointerType) else t.bits)) - 1
    return lambda value: int(value) & mask
