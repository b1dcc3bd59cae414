"""PTX scalar types: storage widths, bit reinterpretation, bf16/fp8 rounding.

Registers hold raw bits in uint64 arrays; `from_bits`/`to_bits` reinterpret
them per instruction type. bf16 and fp8 values are handled as float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PtxType:
    name: str
    bits: int
    kind: str  # 'u' unsigned, 's' signed, 'b' bits, 'f' float, 'bf' bfloat16, 'pred', 'x2' packed pair

    @property
    def size(self) -> int:
        return max(self.bits // 8, 1)

    @property
    def udtype(self) -> np.dtype:
        return _UINT[self.bits]

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype values of this type are computed in."""
        if self.kind == "s":
            return _SINT[self.bits]
        if self.kind == "f":
            return _FLOAT[self.bits]
        if self.kind == "bf":
            return np.dtype(np.float32)
        if self.kind == "pred":
            return np.dtype(bool)
        return _UINT[self.bits]


_UINT = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32), 64: np.dtype(np.uint64),
         1: np.dtype(np.uint8)}
_SINT = {8: np.dtype(np.int8), 16: np.dtype(np.int16), 32: np.dtype(np.int32), 64: np.dtype(np.int64)}
_FLOAT = {16: np.dtype(np.float16), 32: np.dtype(np.float32), 64: np.dtype(np.float64)}

TYPES: dict[str, PtxType] = {"pred": PtxType("pred", 1, "pred"), "bf16": PtxType("bf16", 16, "bf"),
                             "f16x2": PtxType("f16x2", 32, "x2"), "bf16x2": PtxType("bf16x2", 32, "x2"),
                             "tf32": PtxType("tf32", 32, "b"), "e4m3": PtxType("e4m3", 8, "b"),
                             "e5m2": PtxType("e5m2", 8, "b"), "e4m3x2": PtxType("e4m3x2", 16, "x2"),
                             "e5m2x2": PtxType("e5m2x2", 16, "x2"), "b128": PtxType("b128", 64, "b")}
for _k, _widths in (("u", (8, 16, 32, 64)), ("s", (8, 16, 32, 64)), ("b", (8, 16, 32, 64)), ("f", (16, 32, 64))):
    for _w in _widths:
        TYPES[f"{_k}{_w}"] = PtxType(f"{_k}{_w}", _w, _k)


def find_type(mods: tuple[str, ...], index: int = -1) -> PtxType:
    """The `index`-th type modifier of an instruction (default: the last)."""
    found = [TYPES[m] for m in mods if m in TYPES]
    return found[index]


def from_bits(bits: np.ndarray, t: PtxType) -> np.ndarray:
    """Reinterpret uint64 register bits as values of type `t`."""
    if t.kind == "pred":
        return bits != 0
    raw = bits.astype(t.udtype) if bits.dtype != t.udtype else bits
    if t.kind == "bf":
        return bf16_to_f32(raw)
    return raw.view(t.dtype) if t.dtype != t.udtype else raw


def to_bits(values, t: PtxType) -> np.ndarray:
    """Values of type `t` (any numeric array) → uint64 register bits."""
    v = np.asarray(values)
    if t.kind == "pred":
        return v.astype(np.uint64)
    if t.kind == "bf":
        return f32_to_bf16(v.astype(np.float32)).astype(np.uint64)
    if t.kind == "f":
        return v.astype(t.dtype).view(t.udtype).astype(np.uint64)
    if v.dtype.kind == "f":
        v = v.astype(np.int64)
    if t.kind == "s":  # a signed value narrower than its register is sign-extended into it (ld, cvt)
        return v.astype(t.dtype).astype(np.int64).view(np.uint64)
    return v.astype(t.dtype).view(t.udtype).astype(np.uint64) if v.dtype != t.udtype else v.astype(np.uint64)


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 → bf16 bits, to nearest even; NaN stays a quiet NaN."""
    u = np.asarray(x, np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    nan = np.isnan(np.asarray(x, np.float32))
    return np.where(nan, (u >> np.uint32(16)) | np.uint32(0x40), rounded).astype(np.uint16)


@dataclass(frozen=True)
class MiniFloat:
    """An 8-bit float format (PTX ISA §5.2.5 "Alternate floating point data formats")."""

    exp_bits: int
    man_bits: int
    bias: int
    max_finite: float
    has_inf: bool
    nan_code: int


E4M3 = MiniFloat(4, 3, 7, 448.0, False, 0x7F)
E5M2 = MiniFloat(5, 2, 15, 57344.0, True, 0x7E)


def f32_to_minifloat(x: np.ndarray, fmt: MiniFloat, satfinite: bool) -> np.ndarray:
    """Round to nearest even into `fmt`; `.satfinite` clamps ±inf and overflow to ±max.

    Works on the integer exponent (frexp) and an exact float64 quantisation:
    every float32 divided by a power of two is exact in float64.
    """
    x = np.asarray(x, np.float32).astype(np.float64)
    sign = np.signbit(x).astype(np.uint8) << np.uint8(7)
    a = np.abs(x)
    nan = np.isnan(a)
    a = np.where(nan, 0.0, a)
    _, e = np.frexp(a)
    exp = np.maximum(e - 1, 1 - fmt.bias)  # unbiased exponent, clamped into the subnormal range
    quantum = np.ldexp(1.0, exp - fmt.man_bits)
    r = np.round(a / quantum) * quantum
    over = r > fmt.max_finite
    _, e2 = np.frexp(r)
    exp2 = np.maximum(e2 - 1, 1 - fmt.bias)
    sub = (r < np.ldexp(1.0, 1 - fmt.bias))
    field_e = np.where(sub, 0, exp2 + fmt.bias)
    mant = np.where(sub, r / np.ldexp(1.0, 1 - fmt.bias - fmt.man_bits),
                    r / np.ldexp(1.0, exp2 - fmt.man_bits) - (1 << fmt.man_bits))
    code = ((field_e.astype(np.int64) << fmt.man_bits) | mant.astype(np.int64)).astype(np.uint8)
    max_code = np.uint8(_encode_max(fmt))
    if satfinite or not fmt.has_inf:
        code = np.where(over, max_code, code)
    else:
        code = np.where(over, np.uint8(0x7C), code)
    code = np.where(nan, np.uint8(fmt.nan_code), code | sign)
    return code.astype(np.uint8)


def _encode_max(fmt: MiniFloat) -> int:
    return 0x7E if fmt is E4M3 else 0x7B


def minifloat_to_f32(code: np.ndarray, fmt: MiniFloat) -> np.ndarray:
    return _minifloat_table(fmt)[np.asarray(code, np.uint8)]


_TABLES: dict[int, np.ndarray] = {}


def _minifloat_table(fmt: MiniFloat) -> np.ndarray:
    key = id(fmt)
    if key not in _TABLES:
        c = np.arange(256)
        e = (c >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
        m = c & ((1 << fmt.man_bits) - 1)
        val = np.where(e == 0, np.ldexp(m.astype(np.float64), 1 - fmt.bias - fmt.man_bits),
                       np.ldexp(1.0 + m / (1 << fmt.man_bits), e - fmt.bias))
        top = (1 << fmt.exp_bits) - 1
        if fmt.has_inf:
            val = np.where((e == top) & (m == 0), np.inf, val)
            val = np.where((e == top) & (m != 0), np.nan, val)
        else:
            val = np.where((e == top) & (m == (1 << fmt.man_bits) - 1), np.nan, val)
        _TABLES[key] = np.where(c & 0x80, -val, val).astype(np.float32)
    return _TABLES[key]
