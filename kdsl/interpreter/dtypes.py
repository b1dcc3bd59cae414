"""How kdsl scalar types live in numpy: storage dtypes, rounding, and bit patterns.

Every value the interpreter holds is a numpy array in its type's *payload*
dtype. Types numpy lacks are emulated: `bf16` and both fp8 types are float32
arrays whose every element is exactly representable in the narrow type (each
op rounds its float32 result back, round-to-nearest-even). Pointers are uint64
addresses. `to_bits`/`from_bits` convert payloads to and from the raw bits
memory holds.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from kdsl.ir import types as t
from kdsl.ir.types import PointerType, ScalarType, Type

_PAYLOAD: dict[ScalarType, type] = {
    t.i1: np.bool_, t.i8: np.int8, t.i16: np.int16, t.i32: np.int32, t.i64: np.int64,
    t.u8: np.uint8, t.u16: np.uint16, t.u32: np.uint32, t.u64: np.uint64,
    t.f16: np.float16, t.bf16: np.float32, t.f32: np.float32, t.f64: np.float64,
    t.fp8e4nv: np.float32, t.fp8e5: np.float32,
}

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def payload_dtype(ty: ScalarType | PointerType) -> type:
    """The numpy dtype holding values of `ty`."""
    return np.uint64 if isinstance(ty, PointerType) else _PAYLOAD[ty]


def elem_bytes(ty: ScalarType | PointerType) -> int:
    return 8 if isinstance(ty, PointerType) else ty.bytes


def bits_dtype(ty: ScalarType | PointerType) -> type:
    """The unsigned integer dtype of `ty`'s bit pattern in memory (i1 takes a byte)."""
    return _UINT[elem_bytes(ty)]


# bf16 ------------------------------------------------------------------------

def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bf16 bit patterns (uint16), round-to-nearest-even; NaN stays a quiet NaN."""
    u = np.asarray(x, np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    quiet_nan = (u >> np.uint32(16)) | np.uint32(0x40)
    return np.where(np.isnan(x), quiet_nan, rounded).astype(np.uint16)


def bf16_value(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits).astype(np.uint32) << np.uint32(16)).view(np.float32)


def round_bf16(x: np.ndarray) -> np.ndarray:
    return bf16_value(nearest_bf16_bits(x))


def nearest_bf16_bits(x: np.ndarray) -> np.ndarray:
    """The bit patterns of the bf16 nearest to each value (ties to even), rounded once."""
    return bf16_bits(_to_float32_round_to_odd(np.asarray(x)))


def _to_float32_round_to_odd(x: np.ndarray) -> np.ndarray:
    """float64 → float32 rounding to odd, so that rounding on to bf16 is not a double rounding."""
    if x.dtype != np.float64:
        return x.astype(np.float32)
    with np.errstate(over="ignore"):  # beyond float32, and so bf16: infinity
        narrow = x.astype(np.float32)
    inexact = np.isfinite(narrow) & (narrow.astype(np.float64) != x)
    u = narrow.view(np.uint32)
    too_far = inexact & (np.abs(narrow.astype(np.float64)) > np.abs(x))
    u = np.where(too_far, u - np.uint32(1), u)
    return np.where(inexact, u | np.uint32(1), u).astype(np.uint32).view(np.float32)


# fp8 -------------------------------------------------------------------------

_FP8 = {t.fp8e4nv: (4, 3, 7), t.fp8e5: (5, 2, 15)}  # exponent bits, mantissa bits, bias


@lru_cache(maxsize=None)
def fp8_table(ty: ScalarType) -> np.ndarray:
    """The float32 value of each of the 256 bit patterns of `ty`."""
    ebits, mbits, bias = _FP8[ty]
    codes = np.arange(256)
    e = (codes >> mbits) & ((1 << ebits) - 1)
    f = codes & ((1 << mbits) - 1)
    mag = np.where(e == 0, f * 2.0 ** (1 - bias - mbits), (1 + f / 2.0**mbits) * 2.0 ** (e - bias))
    if ty == t.fp8e4nv:
        mag = np.where((codes & 0x7F) == 0x7F, np.nan, mag)
    else:
        mag = np.where(e == 31, np.where(f == 0, np.inf, np.nan), mag)
    table = np.where(codes >= 128, -mag, mag).astype(np.float32)
    bits = table.view(np.uint32)
    nan = np.isnan(table)
    bits[nan] = _NAN_TAG | (codes[nan] & 0x7F) | ((codes[nan] >= 128).astype(np.uint32) << np.uint32(31))
    return table


_NAN_TAG = np.uint32(0x7FC00000)  # a quiet float32 NaN whose low bits name the fp8 NaN it came from


def _fp8_max(ty: ScalarType) -> float:
    return 448.0 if ty == t.fp8e4nv else 57344.0


def round_fp8(x: np.ndarray, ty: ScalarType) -> np.ndarray:
    """Round to the nearest `ty` value (ties to even); NaN stays NaN. Finite values beyond the
    largest finite one saturate to it (±448, ±57344), as Triton's GPU conversions
    (`cvt.rn.satfinite`) do. Infinities become ±448 in e4m3, which has none, and stay infinities
    in e5m2, so that rounding is the identity on every value of `ty` (`.satfinite` would clamp
    them to ±57344 too)."""
    _, mbits, bias = _FP8[ty]
    x = np.asarray(x, np.float64)
    mag = np.abs(x)
    finite = np.isfinite(mag) & (mag > 0)
    exp = np.floor(np.log2(np.where(finite, mag, 1.0)))
    quantum = np.exp2(np.maximum(exp, 1 - bias) - mbits)
    with np.errstate(over="ignore"):
        rounded = np.where(finite, np.round(x / quantum) * quantum, x)
    top = _fp8_max(ty)
    overflow = (np.abs(rounded) > top) & (np.isfinite(x) | (ty == t.fp8e4nv))
    return np.where(overflow, np.copysign(top, x), rounded).astype(np.float32)


def fp8_bits(x: np.ndarray, ty: ScalarType) -> np.ndarray:
    """Bit patterns (uint8) of values already rounded to `ty`. A NaN read from fp8 memory keeps its
    bits (`fp8_table` tags it); other NaNs become 0x7f with their sign."""
    table = fp8_table(ty)
    positive = table[:0x7F if ty == t.fp8e4nv else 0x7D]
    x = np.asarray(x, np.float32)
    code = np.searchsorted(positive, np.abs(x)).astype(np.uint8)
    low = (x.view(np.uint32) & np.uint32(0x7F)).astype(np.uint8)
    tagged = (x.view(np.uint32) & np.uint32(0x7FFFFF80)) == _NAN_TAG
    code = np.where(np.isnan(x), np.where(tagged & np.isnan(table[low]), low, np.uint8(0x7F)), code)
    return (code | (np.signbit(x).astype(np.uint8) << np.uint8(7))).astype(np.uint8)


# conversions -----------------------------------------------------------------

def finish(ty: Type, x: object) -> np.ndarray:
    """`x` as a payload of `ty`'s element type: converted, wrapped or rounded as the type demands.

    Python integers (which must fit the type) convert exactly, never through float64.
    """
    elem = ty.scalar
    exact = not isinstance(x, np.ndarray) and (isinstance(elem, PointerType) or elem.is_int)
    arr = np.asarray(x, payload_dtype(elem) if exact else None)
    if elem == t.bf16:
        return round_bf16(arr.astype(np.float64))  # exact for every float and 32-bit int: one rounding
    if isinstance(elem, ScalarType) and elem.is_fp8:
        return round_fp8(arr, elem)
    if isinstance(elem, ScalarType) and elem.is_bool:
        return arr.astype(np.bool_) if arr.dtype.kind == "b" else (arr & 1).astype(np.bool_)
    return arr.astype(payload_dtype(elem))


def to_bits(x: np.ndarray, ty: ScalarType | PointerType) -> np.ndarray:
    """The raw bits memory holds for payload `x` of type `ty`."""
    if ty == t.bf16:
        return bf16_bits(x)
    if isinstance(ty, ScalarType) and ty.is_fp8:
        return fp8_bits(x, ty)
    x = np.asarray(x, payload_dtype(ty))
    return np.ascontiguousarray(x).view(bits_dtype(ty)).reshape(x.shape)


def from_bits(bits: np.ndarray, ty: ScalarType | PointerType) -> np.ndarray:
    """The payload of type `ty` whose raw bits are `bits`."""
    bits = np.ascontiguousarray(bits, bits_dtype(ty)).reshape(np.shape(bits))
    if ty == t.bf16:
        return bf16_value(bits)
    if isinstance(ty, ScalarType) and ty.is_fp8:
        return fp8_table(ty)[bits]
    if isinstance(ty, ScalarType) and ty.is_bool:
        return bits != 0
    return bits.view(payload_dtype(ty))
