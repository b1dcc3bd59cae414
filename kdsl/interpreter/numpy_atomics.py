"""The numpy semantics of `atomic_rmw` and `atomic_cas`: sequential read-modify-write in lane order.

Lanes are applied in rounds: round r holds the r-th active lane of each
distinct address (in lane order), so every round reads and writes distinct
addresses with one vectorised access, and a lane sees every earlier lane with
its address applied, exactly as one element at a time would. Masked-off lanes
touch no memory and give 0. `cas` compares bit patterns, as Triton does on floats
(-0.0 is not 0.0, a NaN matches the same NaN).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kdsl.interpreter.dtypes import elem_bytes, from_bits, payload_dtype, to_bits
from kdsl.ir.types import ScalarType, Type

Update = Callable[[np.ndarray], np.ndarray]


def _rounds(addresses: np.ndarray, active: np.ndarray) -> np.ndarray:
    """For each lane, how many earlier active lanes share its address (-1 where inactive)."""
    lanes = np.flatnonzero(active)
    order = lanes[np.argsort(addresses[lanes], kind="stable")]
    ordered = addresses[order]
    positions = np.arange(order.size)
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if order.size else np.zeros(0, np.bool_)
    rank = np.full(addresses.shape, -1, np.int64)
    rank[order] = positions - np.maximum.accumulate(np.where(starts, positions, 0))
    return rank


def _read_modify_write(env: Any, ptr: np.ndarray, mask: np.ndarray, elem: ScalarType, update: Update) -> np.ndarray:
    """Old values at `ptr` (0 where masked off) after writing `update(old)` lane by lane."""
    addresses = ptr.reshape(-1)
    rank = _rounds(addresses, np.broadcast_to(mask, ptr.shape).reshape(-1))
    old = np.zeros(addresses.shape, payload_dtype(elem))
    for r in range(int(rank.max(initial=-1)) + 1):
        lanes = rank == r
        values = from_bits(env.memory.read(addresses, elem_bytes(elem), lanes), elem)
        env.memory.write(addresses, to_bits(update(values), elem), lanes)
        old = np.where(lanes, values, old)
    return old.reshape(ptr.shape)


def _float_extreme(old: np.ndarray, val: np.ndarray, elem: ScalarType, larger: bool) -> np.ndarray:
    """Triton's float max/min on bit patterns: signed max (min) when `val`'s sign bit is clear,
    unsigned min (max) when it is set."""
    unsigned_old, unsigned_val = to_bits(old, elem), to_bits(val, elem)
    signed = np.dtype(f"i{unsigned_old.itemsize}")
    signed_old, signed_val = unsigned_old.view(signed), unsigned_val.view(signed)
    if larger:
        positive, negative = np.maximum(signed_old, signed_val), np.minimum(unsigned_old, unsigned_val)
    else:
        positive, negative = np.minimum(signed_old, signed_val), np.maximum(unsigned_old, unsigned_val)
    bits = np.where(signed_val >= 0, positive.view(unsigned_old.dtype), negative)
    return from_bits(bits, elem)


def _extreme(larger: bool) -> Callable[[np.ndarray, np.ndarray, ScalarType], np.ndarray]:
    def combine(old: np.ndarray, val: np.ndarray, elem: ScalarType) -> np.ndarray:
        if elem.is_float:
            return _float_extreme(old, val, elem, larger)
        return np.maximum(old, val) if larger else np.minimum(old, val)
    return combine


_COMBINE: dict[str, Callable[[np.ndarray, np.ndarray, ScalarType], np.ndarray]] = {
    "add": lambda old, val, elem: old + val,
    "max": _extreme(True),
    "min": _extreme(False),
    "and": lambda old, val, elem: old & val,
    "or": lambda old, val, elem: old | val,
    "xor": lambda old, val, elem: old ^ val,
    "xchg": lambda old, val, elem: np.broadcast_to(val, old.shape),
}


def atomic_rmw(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Any) -> np.ndarray:
    ptr, val = args[0], np.broadcast_to(args[1], args[0].shape).reshape(-1)
    mask = args[2] if len(args) > 2 else np.ones(ptr.shape, np.bool_)
    elem, combine = attrs["pointee"], _COMBINE[attrs["kind"]]
    return _read_modify_write(env, ptr, mask, elem, lambda old: combine(old, val, elem))


def atomic_cas(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Any) -> np.ndarray:
    ptr, cmp, val = args[0], *(np.broadcast_to(a, args[0].shape).reshape(-1) for a in args[1:])
    mask, elem = np.ones(ptr.shape, np.bool_), attrs["pointee"]
    expected = to_bits(cmp, elem)
    return _read_modify_write(env, ptr, mask, elem, lambda old: np.where(to_bits(old, elem) == expected, val, old))
